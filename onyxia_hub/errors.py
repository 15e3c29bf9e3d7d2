"""Errors an operator can act on.

`OnyxiaHubError` carries a message naming the problem and, when there is one, the fix.
The command line prints both on one or two lines and exits non-zero, never with a
traceback: tracebacks are for bugs, not for a busy port or a missing program.
"""


class OnyxiaHubError(Exception):
    """A problem with the environment or configuration that the operator can fix."""

    def __init__(self, message: str, fix: str | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        if self.fix:
            return f"{self.message}\n  fix: {self.fix}"
        return self.message
