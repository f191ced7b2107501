"""The pure relay log: commands, who may act (access.py), and the rules (rules.py, handing each
command to progress.py or sharing.py). The case's state and how its events change it are the one
fold every service reads, `stafett_contracts.casefile` (`CaseFile`, `fold`)."""

from stafett_case.domain.rules import decide

__all__ = ["decide"]
