"""``sandbox scenarios``: the scenarios a run can use (built-in and from a TOML file)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from sandbox import scenarios


def scenarios_command(scenario_file: Path | None) -> int:
    table = Table(title="scenarios")
    for column in ("name", "duration", "ops/min", "description"):
        table.add_column(column)
    for item in scenarios.available(scenario_file).values():
        table.add_row(item.name, f"{item.duration_s:g} s", f"{item.operations_per_minute:g}",
                      item.description)
    Console().print(table)
    return 0
