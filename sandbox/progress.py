"""Run progress: a rich progress bar on a terminal, a plain line every few seconds otherwise."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from sandbox.untrusted import markup


@dataclass
class Status:
    elapsed_s: float
    duration_s: float
    operations: int
    failed: int
    working_set_mb: float | None
    slope_mb_s: float | None
    decision: str | None = None  # --until-decided: the latest look's bounds and outcome

    def line(self) -> str:
        ws = "—" if self.working_set_mb is None else f"{self.working_set_mb:.1f} MB"
        slope = "—" if self.slope_mb_s is None else f"{self.slope_mb_s:+.3f} MB/s"
        look = f" | {self.decision}" if self.decision else ""
        return (f"ops {self.operations} (failed {self.failed}) | working set {ws} | "
                f"slope {slope}{look}")


class RunProgress:
    """Context manager; call update(status) as often as convenient."""

    def __init__(self, title: str, plain_every_s: float = 10.0, enabled: bool = True) -> None:
        self.title = title
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.plain_every_s = plain_every_s
        self._last_plain = float("-inf")
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> RunProgress:
        if self.enabled and self.tty:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(),
                TextColumn("left"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                console=Console(stderr=True), transient=False,
            )
            self._progress.start()
            # the description is rich markup: a title from a command line is shown escaped
            self._task = self._progress.add_task(markup(self.title), total=None,
                                                 info="starting")
        return self

    def update(self, status: Status) -> None:
        if not self.enabled:
            return
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=status.duration_s,
                                  completed=min(status.elapsed_s, status.duration_s),
                                  info=status.line())
        elif time.monotonic() - self._last_plain >= self.plain_every_s:
            self._last_plain = time.monotonic()
            print(f"[{status.elapsed_s:5.0f}/{status.duration_s:.0f} s] {status.line()}",
                  file=sys.stderr, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
