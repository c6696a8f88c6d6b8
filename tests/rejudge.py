"""One verdict for a run, whoever reads it: re-judge the run directories a test made (as
``sandbox report RUN_DIR`` does) and compare with the exit code the run itself recorded."""

from __future__ import annotations

import json
from pathlib import Path

from sandbox.analysis import analyze
from sandbox.runreader import read_run


def rejudged(root: Path, depth: int = 3) -> list[str]:
    """One line per run directory under ``root`` (a finished run: its run.json has an
    ``exit_code``) whose re-read verdict differs from the one it had."""
    out = []
    for level in range(1, depth + 1):
        for meta in root.glob("/".join(["*"] * level) + "/run.json"):
            try:
                recorded = json.loads(meta.read_text()).get("exit_code")
            except (OSError, ValueError):
                continue
            if not isinstance(recorded, int):
                continue
            again = analyze(read_run(meta.parent)).exit_code
            if again != recorded:
                out.append(f"{meta.parent}: the run said exit {recorded}, re-read says {again}")
    return out
