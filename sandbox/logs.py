"""Logging in the seed's format, to stderr and to the run's memory_leak_detection.log."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import TracebackType

from sandbox.rundir import FILE_MODE, RUN_LOG
from sandbox.untrusted import shown

#: What ``sys.exc_info()`` returns, as logging passes it to ``formatException``.
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]

SEED_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


class SafeFormatter(logging.Formatter):
    """The seed's format, each record one line: names a message embeds (process titles,
    file names) and tracebacks' lines shown escaped (sandbox.untrusted), so no control
    character or undecodable byte reaches a terminal or the run log."""

    def __init__(self) -> None:
        super().__init__(SEED_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        return shown(super().formatMessage(record))

    def formatException(self, ei: ExcInfo) -> str:  # noqa: N802
        return "\n".join(map(shown, super().formatException(ei).split("\n")))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return "\n".join(map(shown, super().formatStack(stack_info).split("\n")))


def configure(verbosity: int = 0) -> None:
    """stderr handler: -q shows errors only, default warnings and up, -v info, -vv debug."""
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(
        max(-1, min(verbosity, 2)), logging.DEBUG)
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    handler = logging.StreamHandler()
    handler.setLevel(level)
    handler.setFormatter(SafeFormatter())
    root.addHandler(handler)


class _RunLogHandler(logging.FileHandler):
    """A file handler that stays quiet when the disk is full (the run reports that itself in
    one line; logging's default prints a traceback per record)."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        return None


def add_run_log(run_dir: Path) -> logging.Handler:
    """Log everything from INFO up into the run directory; remove it with remove_run_log."""
    os.close(os.open(run_dir / RUN_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE))
    handler = _RunLogHandler(run_dir / RUN_LOG)
    handler.setLevel(logging.INFO)
    handler.setFormatter(SafeFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    return handler


def remove_run_log(handler: logging.Handler) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()
