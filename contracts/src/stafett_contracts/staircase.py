"""The staircase: which level a case may go to from each level (DOMAIN.md, "The levels").

| level | up to | down to | continues |
|---|---|---|---|
| 0 | 1 | | no: it goes to level 1 or closes |
| 1 | 2, 3 | | yes |
| 2 | 3 | 1 | yes |
| 3 | | 1, 2 | yes |

Closing is an exit from every level. The case service decides on it (escalate, de-escalate,
continue) and the meeting service on what a meeting's decision may ask (move to a level,
continue); both refuse with the rule `level-exits` and the message given here.
"""

from __future__ import annotations

from collections.abc import Iterable

from stafett_contracts.case import DecisionKind

LEVEL_EXITS = "level-exits"  # the rule, as a refusal names it

UP: dict[int, tuple[int, ...]] = {0: (1,), 1: (2, 3), 2: (3,), 3: ()}
DOWN: dict[int, tuple[int, ...]] = {0: (), 1: (), 2: (1,), 3: (1, 2)}


def exits(level: int) -> tuple[int, ...]:
    """Every level a case at `level` may move to, up or down."""
    return tuple(sorted(UP[level] + DOWN[level]))


def refusal_to_continue(level: int) -> str | None:
    """Why a case at `level` may not continue there, if it may not."""
    if level == 0:
        return "at level 0 the case goes to level 1 or closes: it does not continue"
    return None


def refusal_to_go_up(level: int, to_level: int) -> str | None:
    if to_level in UP[level]:
        return None
    return f"from level {level} the case goes up to {_levels(UP[level])}"


def refusal_to_go_down(level: int, to_level: int) -> str | None:
    if to_level in DOWN[level]:
        return None
    return f"from level {level} the case goes down to {_levels(DOWN[level])}"


def refusal_of_decision(kind: DecisionKind, level: int, to_level: int | None) -> str | None:
    """Why a meeting may not decide `kind` (to `to_level`) on a case at `level`, if it may not."""
    if kind == DecisionKind.CONTINUE:
        return refusal_to_continue(level)
    if kind == DecisionKind.MOVE_TO_LEVEL and to_level not in exits(level):
        return f"from level {level} the case moves to {_levels(exits(level))}, not to {to_level}"
    return None


def _levels(levels: Iterable[int]) -> str:
    return " or ".join(map(str, levels)) or "no level"
