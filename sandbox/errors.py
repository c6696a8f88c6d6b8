"""Errors that end a run before it could be judged; the CLI maps them to exit code 3."""


class HarnessError(RuntimeError):
    """Bad input or a host that cannot make the run: one clear line, exit code 3."""
