"""The one error family the pipeline raises, each with the exit code front ends end with."""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING

from mkdocs_cfpurge.redact import redact

if TYPE_CHECKING:
    from mkdocs_cfpurge.plan.bodies import Body


class ExitCode(IntEnum):
    """How a command ends (the CLI's exit status; the plugin fails the build on anything but OK)."""

    OK = 0
    # A purge failed or stayed incomplete (what is owed is kept as pending), Cloudflare refused
    # some entries, another run holds the lock, or a file could not be written: nothing is wrong
    # with the input, a later run can succeed.
    PURGE_FAILED = 1
    # Bad options or input files: nothing was sent, nothing was written.
    USAGE = 2


class CfPurgeError(Exception):
    """A failure a user can act on. The message names the option or file at fault.

    The message is redacted (redact.py) when the error is made: whatever text from an answer, a
    request or another exception it quotes, no credential (nor a piece of one) gets out in it.

    `exit_code` is stated by whoever raises it: there is no default, so no failure ends with a
    code nobody chose. `codes` and `status` carry Cloudflare's error codes and HTTP status when
    the API answered.
    """

    def __init__(
        self,
        message: str,
        *,
        exit_code: ExitCode,
        codes: tuple[int, ...] = (),
        status: int | None = None,
    ) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.codes = codes
        self.status = status

    def __str__(self) -> str:
        return self.message


class UsageError(CfPurgeError):
    """Bad input: an option, a file read, a command line (exit 2; nothing sent or written)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=ExitCode.USAGE)


class ConfigError(UsageError):
    """A bad option value; `option` names it, `problem` says what is wrong with it."""

    def __init__(self, option: str, problem: str) -> None:
        super().__init__(f"option '{option}': {problem}")
        self.option = option
        self.problem = problem


class PurgeFailed(CfPurgeError):
    """A purge step that did not happen or did not finish (exit 1; what is owed is kept)."""

    def __init__(
        self, message: str, *, codes: tuple[int, ...] = (), status: int | None = None
    ) -> None:
        super().__init__(message, exit_code=ExitCode.PURGE_FAILED, codes=codes, status=status)


class WriteFailed(CfPurgeError):
    """A file could not be written (disk full, no permission): exit 1, as nothing is wrong with
    the input and a later run can succeed. The file keeps its old content; what is owed is kept."""

    def __init__(self, path: Path, error: OSError) -> None:
        reason = error.strerror or str(error) or type(error).__name__
        super().__init__(
            f"cannot write {str(path)!r}: {reason}; the file was left as it was",
            exit_code=ExitCode.PURGE_FAILED,
        )
        self.path = path


class PurgeIncomplete(PurgeFailed):
    """A purge that stopped part-way; `unsent` holds every body not confirmed by Cloudflare."""

    def __init__(self, cause: CfPurgeError, unsent: list[Body]) -> None:
        super().__init__(
            f"{cause.message} ({len(unsent)} request(s) not confirmed)",
            codes=cause.codes,
            status=cause.status,
        )
        self.unsent = unsent
