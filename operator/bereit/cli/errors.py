"""Errors the CLI reports as one line, and the exit code each one gives scripts."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented in `bereit --help`; scripts branch on these."""

    OK = 0
    FAILED = 1  # the operation ran and failed: a service went Failed, scoring answered an error
    BAD_INPUT = 2  # bad flags, a missing or malformed file, a config the API types refuse
    NOT_FOUND = 3  # an unknown model, version, service or compute target
    CLUSTER = 4  # the cluster cannot be reached, refused the request, or lacks the bereit CRDs
    TIMEOUT = 5  # --wait ran out of time before the resource settled
    EXISTS = 6  # the resource already exists


class CliError(Exception):
    """A problem the user can fix: the message says what happened and what to do."""

    exit_code = ExitCode.FAILED

    def __init__(self, message: str, exit_code: ExitCode | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self)


class BadInput(CliError):
    exit_code = ExitCode.BAD_INPUT


class NotFound(CliError):
    exit_code = ExitCode.NOT_FOUND


class ClusterError(CliError):
    exit_code = ExitCode.CLUSTER


class AlreadyExists(CliError):
    exit_code = ExitCode.EXISTS


class TimedOut(CliError):
    exit_code = ExitCode.TIMEOUT
