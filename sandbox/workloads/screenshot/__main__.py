"""``python -m sandbox.workloads.screenshot``: the process that runs inside the slice.

Settings come from ``--config JSON`` (what the launcher passes) or from options; options
given together with ``--config`` override it. Bad input: one line on stderr, exit code 2."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import NoReturn

from sandbox.host.slice import MARKER_ENV
from sandbox.workloads.screenshot.spec import (
    CONTEXT_POLICIES,
    INJECTIONS,
    NETWORKS,
    ScreenshotSpec,
)

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage block
        raise ValueError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m sandbox.workloads.screenshot",
                                description="Paced screenshots with Playwright and Chromium.")
    p.add_argument("--config", help="all settings as one JSON object (ScreenshotSpec fields)")
    p.add_argument("--url", action="append", dest="urls", help="page to screenshot (repeatable;"
                   " default: the built-in site)")
    p.add_argument("--duration", type=float, dest="duration_s", help="seconds of operations")
    p.add_argument("--ops-per-minute", type=float, dest="operations_per_minute")
    p.add_argument("--viewport", help="WIDTHxHEIGHT (default 1280x720)")
    p.add_argument("--context-policy", choices=CONTEXT_POLICIES)
    p.add_argument("--inject", action="append", choices=INJECTIONS)
    p.add_argument("--inject-rate", type=float, dest="inject_rate_mb", help="MB per operation")
    p.add_argument("--network", choices=NETWORKS, help="recorded only: the launcher sets it up")
    p.add_argument("--chromium", help="Chromium executable")
    p.add_argument("--settle-every", type=int, dest="settle_every", metavar="N",
                   help="a settle point every N operations (docs/settle-points.md); 0: none")
    return p


def parse_spec(argv: list[str]) -> ScreenshotSpec:
    """Settings from the command line; ValueError (one line) on bad input."""
    args = _parser().parse_args(argv)
    data = {}
    if args.config:
        try:
            data = json.loads(args.config)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--config is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError("--config must be a JSON object")
    data.update({k: v for k, v in vars(args).items() if k != "config" and v is not None})
    try:
        return ScreenshotSpec.from_dict(data)
    except TypeError as exc:
        raise ValueError(f"bad workload config: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    try:
        spec = parse_spec(sys.argv[1:] if argv is None else argv)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from sandbox.workloads.screenshot.run import main as run_main

    run_id = os.environ.get(MARKER_ENV, f"pid{os.getpid()}")
    try:
        code = run_main(spec, run_id)
    except Exception as exc:  # one line for the log, never a traceback
        print(f"error: screenshot workload failed: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # Leave at once: a hung Playwright driver thread must not keep the workload alive.
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
