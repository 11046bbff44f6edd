"""The small error hierarchy every command raises (and the CLI turns into a non-zero exit)."""

from __future__ import annotations


class DolmaError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(DolmaError):
    """A configuration key, value or tagger name is wrong."""


class DataFormatError(DolmaError):
    """An input file or line is malformed; the message names the file and line."""

    def __init__(self, path: str, line: int | None, problem: str):
        self.path, self.line, self.problem = path, line, problem
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):  # keep the fields when the error crosses a process boundary (Ray)
        return (type(self), (self.path, self.line, self.problem))

    @property
    def file_level(self) -> bool:
        """Errors without a line (truncated archive, empty file) can only be skipped per file."""
        return self.line is None


class InputNotFoundError(DolmaError):
    """A path, directory or glob matched no files."""
