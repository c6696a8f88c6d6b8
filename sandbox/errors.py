"""The one error base of the harness: anything that ends a command before a run could be
judged. Each error carries its exit code; the CLI maps them in one place (sandbox.cli.main)."""


class HarnessError(RuntimeError):
    """Bad input or a host that cannot make the run: one clear line, exit code 3. Modules
    derive their own errors from it (SliceError, LaunchError, ...) instead of re-wrapping."""

    exit_code = 3
