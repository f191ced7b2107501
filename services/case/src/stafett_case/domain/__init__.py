"""The pure relay log: state and events (case.py), commands, who may act (access.py), and the
rules (rules.py, handing each command to progress.py or sharing.py)."""

from stafett_case.domain.case import Case, fold
from stafett_case.domain.rules import decide

__all__ = ["Case", "decide", "fold"]
