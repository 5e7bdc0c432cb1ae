"""The TMF reader's error type: where (path:line:column), the offending line with a caret, what was expected."""
from __future__ import annotations

import re

__all__ = ["TmfError"]


class TmfError(ValueError):
    """A malformed TMF/TMC construct.

    ``str(err)`` is ``"path:line:col: message\\n<line>\\n   ^"``: the caret sits under
    ``column`` (1-based). ``expected`` names the production that was expected there, e.g.
    ``'argument line "<expr>, Item<Type> -- <N>"'``.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "<string>",
        line: int = 0,
        column: int = 1,
        line_text: str = "",
        expected: str = "",
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.column = max(1, column)
        self.line_text = line_text
        self.expected = expected
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"{self.path}:{self.line}:{self.column}: {self.message}"
        if self.expected and not _SAYS_EXPECTED.search(self.message):
            text += f" (expected {self.expected})"
        if self.line_text:
            shown, caret = _window(self.line_text.rstrip("\r\n").expandtabs(1), self.column - 1)
            text += f"\n{shown}\n{' ' * caret}^"
        return text

    def __reduce__(self):  # keep pickling/copying working with keyword-only arguments
        return (_rebuild, (self.message, self.path, self.line, self.column, self.line_text, self.expected))


# "... (expected X)" unless the message already says what was expected ("unexpected" does not).
_SAYS_EXPECTED = re.compile(r"\bexpected\b")
SHOWN_LINE = 160  # longer lines are shown as a window around the column


def _window(line: str, offset: int) -> tuple[str, int]:
    """(shown text, caret offset): the whole line if short, else SHOWN_LINE chars around ``offset``."""
    if len(line) <= SHOWN_LINE:
        return line, offset
    start = max(0, min(offset - SHOWN_LINE // 2, len(line) - SHOWN_LINE))
    shown = line[start:start + SHOWN_LINE]
    prefix = "..." if start else ""
    suffix = "..." if start + SHOWN_LINE < len(line) else ""
    return prefix + shown + suffix, len(prefix) + offset - start


def _rebuild(message: str, path: str, line: int, column: int, line_text: str, expected: str) -> TmfError:
    return TmfError(message, path=path, line=line, column=column, line_text=line_text, expected=expected)
