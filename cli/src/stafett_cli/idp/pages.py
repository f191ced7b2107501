"""The development identity provider's pages: plain HTML, no scripts, nothing from elsewhere.

Norwegian bokmål first, English beside it (marked `lang="en"`, so that a screen reader switches
voice). Every choice is a button in a form, so the keyboard reaches each in turn; the people are
grouped by role in fieldsets whose legends name the role.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from html import escape

from stafett_cli.idp.people import Person
from stafett_contracts.identity import Role

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #1b1b1b; background: #fff;
  line-height: 1.5; }
main { max-width: 44rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: 0.5rem 0; }
.en { color: #3d3d3d; }
.note { border-left: 4px solid #8a5300; padding: 0.25rem 0.75rem; background: #fff8ec; }
fieldset { border: 1px solid #767676; border-radius: 4px; margin: 1rem 0; padding: 0.5rem; }
legend { font-weight: bold; padding: 0 0.25rem; }
ul { list-style: none; margin: 0; padding: 0; }
li { margin: 0.25rem 0; }
button { width: 100%; text-align: left; font: inherit; padding: 0.6rem 0.75rem;
  border: 2px solid #1a4d8f; border-radius: 4px; background: #fff; color: #10233f;
  cursor: pointer; }
button:hover { background: #e8f0fb; }
button:focus-visible { outline: 3px solid #1b1b1b; outline-offset: 2px; }
button.cancel { width: auto; border-color: #767676; color: #1b1b1b; }
.who { font-weight: bold; }
"""

# The page's one style sheet is inline, allowed by its hash: no other style, no script at all.
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; frame-ancestors 'none'"
)

ROLE_NAMES: dict[Role, tuple[str, str]] = {  # bokmål, English
    Role.GUARDIAN: ("Foresatte", "Guardians"),
    Role.CHILD: ("Barn og unge", "Children and young people"),
    Role.EMPLOYEE: ("Ansatte", "Employees"),
    Role.UNIT_LEADER: ("Enhetsledere", "Unit leaders"),
    Role.AUDITOR: ("Tilsyn", "Auditors"),
    Role.ADMINISTRATOR: ("Administratorer", "Administrators"),
    Role.SYSTEM: ("System", "System"),
}


def _both(norwegian: str, english: str) -> str:
    """Bokmål, then English marked as such (both already escaped)."""
    return f'{norwegian} <span lang="en" class="en">/ {english}</span>'


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="nb">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def login_page(
    client_id: str, parameters: Sequence[tuple[str, str]], people: Sequence[Person]
) -> str:
    """Everyone in the people file, a button each; the request's parameters go along hidden, so
    that choosing someone completes this very request."""
    hidden = [
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in parameters
    ]
    groups = []
    for role, (norwegian, english) in ROLE_NAMES.items():
        buttons = [_person_button(p) for p in people if p.role == role]
        if buttons:
            groups.append(
                f"<fieldset>\n<legend>{_both(norwegian, english)}</legend>\n"
                f"<ul>\n{chr(10).join(buttons)}\n</ul>\n</fieldset>"
            )
    if not groups:
        groups.append(f"<p>{_both('Personlisten er tom.', 'The list of people is empty.')}</p>")
    warning = _both(
        "Utviklingsinnlogging: velg hvem du vil være. Det er ikke noe passord, så den må aldri "
        "brukes med ekte personer.",
        "Development sign-in: choose who you want to be. There is no password, so never use it "
        "with real people.",
    )
    signing_in_to = _both("Innlogging til", "Signing in to")
    cancel = _both("Avbryt", "Cancel")
    body = "\n".join(
        [
            f"<h1>{_both('Logg inn i Stafett', 'Sign in to Stafett')}</h1>",
            f'<p class="note">{warning}</p>',
            f"<p>{signing_in_to} <strong>{escape(client_id)}</strong></p>",
            '<form method="post" action="/authorize">',
            *hidden,
            *groups,
            f'<p><button type="submit" name="cancel" value="1" class="cancel">{cancel}</button>',
            "</p>",
            "</form>",
        ]
    )
    return _page("Logg inn &ndash; Stafett (utvikling) / Sign in", body)


def _person_button(person: Person) -> str:
    about = ", ".join(escape(part) for part in (person.title, person.unit or "") if part)
    return (
        f'<li><button type="submit" name="person" value="{escape(person.person)}">'
        f'<span class="who">{escape(person.person)}</span>'
        f"{f' &ndash; {about}' if about else ''}</button></li>"
    )


def problem_page(norwegian: str, english: str, detail: str) -> str:
    """A request the provider cannot serve, and why (the detail is in English, from the rule)."""
    body = (
        f'<h1>{_both(escape(norwegian), escape(english))}</h1>\n<p lang="en">{escape(detail)}</p>'
    )
    return _page(f"{escape(norwegian)} / {escape(english)} &ndash; Stafett", body)


def signed_out_page() -> str:
    body = (
        f"<h1>{_both('Du er logget ut', 'You are signed out')}</h1>\n"
        f"<p>{_both('Du kan lukke denne siden.', 'You may close this page.')}</p>"
    )
    return _page("Logget ut / Signed out &ndash; Stafett", body)
