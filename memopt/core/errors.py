"""Errors raised for user mistakes.

Every mistake in an instance, a plan file or a command line becomes a
:class:`MemoptError`; the CLI prints its message and exits with status 2,
never a traceback. Internal bugs are ordinary exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass


class MemoptError(Exception):
    """A user mistake (bad input, impossible request) with a clear message."""


@dataclass(frozen=True)
class Problem:
    """One rule broken by an input file.

    ``where`` names the file (or ``"<instance>"``), ``item`` the task, datum
    or field concerned, ``rule`` the broken rule in words.
    """

    where: str
    item: str
    rule: str

    def __str__(self) -> str:
        return f"{self.where}: {self.item}: {self.rule}"


class InstanceError(MemoptError):
    """An instance breaks one or more rules; ``problems`` lists all of them."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        head = f"{len(self.problems)} problem(s) in the instance:" if len(self.problems) > 1 else ""
        lines = [head] if head else []
        shown = self.problems[:50]
        lines += [("  " if head else "") + str(p) for p in shown]
        if len(self.problems) > len(shown):
            lines.append(f"  ... and {len(self.problems) - len(shown)} more")
        super().__init__("\n".join(lines))


class PlanFormatError(MemoptError):
    """A plan file that cannot be read as a plan (not: a plan that is invalid)."""


class SolverUnavailableError(MemoptError):
    """A method needs a solver or an optional package that is not installed."""
