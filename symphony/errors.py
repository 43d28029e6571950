"""Errors a user can cause, each rendered as one line: ``FILE:LINE: message``.

The CLI catches :class:`UserError` and prints :meth:`UserError.lines` — never a
traceback — and exits with :attr:`UserError.exit_code` (2 for bad input).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, located as precisely as we can."""

    message: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        if self.file is None:
            return self.message
        return f"{self.file}:{self.line or 1}: {self.message}"


class UserError(Exception):
    """Something the user can fix. ``exit_code`` 2 = bad input, 1 = the operation failed."""

    exit_code = 2

    def __init__(
        self, problems: Problem | str | Sequence[Problem], *, exit_code: int | None = None
    ):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: tuple[Problem, ...] = tuple(problems)
        if exit_code is not None:
            self.exit_code = exit_code
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class ManifestError(UserError):
    """Invalid manifests: YAML, schema or rule violations."""


class OperationFailed(UserError):
    """A valid request that could not be carried out (exit code 1)."""

    exit_code = 1


def raise_if(problems: Iterable[Problem]) -> None:
    found = list(problems)
    if found:
        raise ManifestError(found)
