"""The one error type the pipeline raises, and the exit codes front ends map it to."""

from __future__ import annotations

EXIT_OK = 0
EXIT_PURGE_FAILED = 1
EXIT_USAGE = 2


class CfPurgeError(Exception):
    """A failure a user can act on. The message names the option or file at fault.

    `exit_code` tells front ends how to end: 2 for configuration and input problems (nothing was
    sent), 1 for purges that failed or stayed incomplete (what is owed is kept as pending).
    `codes` carries Cloudflare's error codes when the API answered.
    """

    def __init__(
        self,
        message: str,
        *,
        exit_code: int = EXIT_USAGE,
        codes: tuple[int, ...] = (),
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.codes = codes
        self.status = status

    def __str__(self) -> str:
        return self.message


class ConfigError(CfPurgeError):
    """A bad option value; `option` names it, `problem` says what is wrong with it."""

    def __init__(self, option: str, problem: str) -> None:
        super().__init__(f"option '{option}': {problem}", exit_code=EXIT_USAGE)
        self.option = option
        self.problem = problem


def config_error(option: str, problem: str) -> ConfigError:
    """A configuration error that names the option at fault."""
    return ConfigError(option, problem)
