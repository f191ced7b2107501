"""The staircase (`stafett_contracts.staircase`), the one table of level exits the case and the
meeting services both decide by: DOMAIN.md, "The levels"."""

from __future__ import annotations

import pytest

from stafett_contracts.case import DecisionKind
from stafett_contracts.staircase import (
    exits,
    refusal_of_decision,
    refusal_to_continue,
    refusal_to_go_down,
    refusal_to_go_up,
)


@pytest.mark.parametrize(
    ("level", "up", "down"),
    [(0, (1,), ()), (1, (2, 3), ()), (2, (3,), (1,)), (3, (), (1, 2))],
)
def test_level_exits_each_level_goes_where_domain_md_says(
    level: int, up: tuple[int, ...], down: tuple[int, ...]
) -> None:
    assert exits(level) == tuple(sorted(up + down))
    for to_level in range(4):
        assert (refusal_to_go_up(level, to_level) is None) == (to_level in up)
        assert (refusal_to_go_down(level, to_level) is None) == (to_level in down)


def test_level_exits_at_level_0_the_case_goes_to_level_1_or_closes_it_does_not_continue() -> None:
    assert refusal_to_continue(0) is not None
    assert [refusal_to_continue(level) for level in (1, 2, 3)] == [None, None, None]


def test_level_exits_a_meeting_decides_only_what_the_staircase_allows() -> None:
    assert refusal_of_decision(DecisionKind.MOVE_TO_LEVEL, 1, 0) == (
        "from level 1 the case moves to 2 or 3, not to 0"
    )
    assert refusal_of_decision(DecisionKind.MOVE_TO_LEVEL, 3, 1) is None
    assert refusal_of_decision(DecisionKind.CONTINUE, 0, None) is not None
    assert refusal_of_decision(DecisionKind.CLOSE, 0, None) is None
    assert refusal_of_decision(DecisionKind.SYSTEM_MEASURE, 2, None) is None
