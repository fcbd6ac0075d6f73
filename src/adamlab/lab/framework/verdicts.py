"""Verdict words, and how a claim's verdict follows from the verdicts of its parts.

A part's judge answers True (reproduced), False (not reproduced), None (the
run was too small to test it, as in quick mode) or UNDECIDED (a full-size run
whose numbers cannot decide, such as a confidence interval across zero).
"""

from __future__ import annotations

REPRODUCED = "reproduced"
PARTLY = "partly reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_TESTED = "not tested"
UNDECIDED = "cannot decide"
ERROR = "error"

PART_VERDICTS = (REPRODUCED, NOT_REPRODUCED, UNDECIDED, NOT_TESTED)
CLAIM_VERDICTS = (REPRODUCED, PARTLY, NOT_REPRODUCED, UNDECIDED, NOT_TESTED, ERROR)


def part_verdict(answer) -> str:
    """A judge's answer as a verdict word."""
    if answer is True:
        return REPRODUCED
    if answer is False:
        return NOT_REPRODUCED
    if answer is None:
        return NOT_TESTED
    if answer in PART_VERDICTS:
        return answer
    raise ValueError(f"a judge must answer True, False, None or {UNDECIDED!r}, not {answer!r}")


def claim_verdict(parts: list[str]) -> str:
    """Reproduced only if every part reproduces; partly if some do; not reproduced if a part was decided and
    none reproduced; otherwise "cannot decide" (a full run that could not tell) or "not tested"."""
    if not parts:
        raise ValueError("a claim needs at least one part")
    if all(p == REPRODUCED for p in parts):
        return REPRODUCED
    if REPRODUCED in parts:
        return PARTLY
    if NOT_REPRODUCED in parts:
        return NOT_REPRODUCED
    return UNDECIDED if UNDECIDED in parts else NOT_TESTED


def css_class(verdict: str) -> str:
    return verdict.replace(" ", "-")
