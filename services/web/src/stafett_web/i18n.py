"""Norwegian bokmål and English: which one a visitor gets, the words, and dates in their form.

The language is the one the visitor chose (a cookie, kept for a year), else the best match of
their browser's Accept-Language, else bokmål. Words are looked up by key in the catalogues of
`stafett_web.messages`, which hold the same keys in both languages (a test checks it). Dates and
times are shown in the municipality's time zone, formatted by Babel in the language's own way.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_skeleton

from stafett_contracts.personal import Erased
from stafett_web.messages import CATALOGUES

LANGUAGES = ("nb", "en")
DEFAULT_LANGUAGE = "nb"
COOKIE = "stafett_lang"
REMEMBERED_FOR = 365 * 24 * 3600  # seconds the chosen language is kept


def negotiate(chosen: str | None, accept_language: str | None) -> str:
    """The language to answer in: the visitor's choice, else their browser's, else bokmål."""
    if chosen in LANGUAGES:
        return chosen
    for tag in _preferences(accept_language or ""):
        language = _language_of(tag)
        if language in LANGUAGES:
            return language
    return DEFAULT_LANGUAGE


def _preferences(header: str) -> list[str]:
    """The language tags of an Accept-Language header, most preferred first."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, parameters = part.strip().partition(";")
        quality = 1.0
        if parameters.strip().startswith("q="):
            try:
                quality = float(parameters.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            weighted.append((-quality, position, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


def _language_of(tag: str) -> str | None:
    # "no" and "nn" readers read bokmål far better than English.
    try:
        language = Locale.parse(tag, sep="-").language
    except (ValueError, UnknownLocaleError):
        return None
    return "nb" if language in ("nb", "no", "nn") else language


class Translator:
    """The words and date formats of one language, in one time zone."""

    def __init__(self, language: str, zone: ZoneInfo, **known: Any) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        self.zone = zone
        self._words = CATALOGUES[self.language]
        self._known = known

    def __call__(self, key: str, /, **values: Any) -> str:
        text = self._words.get(key)
        if text is None:
            raise KeyError(f"no words for {key!r} in {self.language}")
        values = {**self._known, **values}
        return text.format(**values) if values else text

    def knowing(self, **known: Any) -> Translator:
        """The same words, with values every sentence may name (`{who}` in the relay log)."""
        return Translator(self.language, self.zone, **{**self._known, **known})

    def has(self, key: str) -> bool:
        return key in self._words

    def words(self, text: str | Erased | None) -> str:
        """Free text as a page shows it: the text, or that it was erased with the child."""
        if isinstance(text, Erased):
            return self("text.erased")
        return text or ""

    def when(self, moment: datetime | None) -> str:
        """A moment as people read it, in the municipality's time zone."""
        if moment is None:
            return ""
        local = moment.astimezone(self.zone)
        day = format_skeleton("yMMMd", local, locale=self.language)
        return f"{day} {format_skeleton('Hm', local, locale=self.language)}"

    def day(self, value: date | datetime | None) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            value = value.astimezone(self.zone).date()
        return format_date(value, "long", locale=self.language)

    def local_input(self, moment: datetime | None) -> str:
        """A moment as a `datetime-local` field shows it: local time, to the second."""
        if moment is None:
            return ""
        return moment.astimezone(self.zone).strftime("%Y-%m-%dT%H:%M:%S")
