"""``sandbox doctor``: what this host offers a run, and why no run can be made if so."""

from __future__ import annotations

import json
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from sandbox.errors import HarnessError
from sandbox.host import discover


def doctor_command(as_json: bool) -> int:
    """Print the host's facts (a table, or JSON), what runs will lack and how to fix it, and
    one last line: whether runs can be made here. Exit 3 when they cannot."""
    facts = discover()
    problems = facts.problems()
    lacks = facts.lacks()
    if as_json:
        print(json.dumps({**facts.to_dict(), "problems": problems,
                          "lacks": [asdict(lack) for lack in lacks],
                          "summary": facts.summary()}, indent=2))
    else:
        console = Console()
        console.print(_table(facts.to_dict()))
        for lack in lacks:
            console.print(f"missing: {lack.what}: {lack.why}; fix: {lack.fix}",
                          highlight=False, soft_wrap=True)
        console.print(facts.summary(), highlight=False, soft_wrap=True)
    return HarnessError.exit_code if problems else 0


def _table(facts: dict) -> Table:
    table = Table(title="sandbox doctor", show_header=False)
    for key, value in facts.items():
        if key == "cgroup":
            table.add_row("cgroup mode", value["mode"] + (f" ({value['reason']})"
                                                         if value["reason"] else ""))
            for hier, path in value["parents"].items():
                table.add_row(f"  {hier}", path)
        elif key == "browsers":
            for browser in value or [{"path": "none found", "source": "", "problem": None}]:
                table.add_row(f"browser ({browser['source']})" if browser["source"]
                              else "browser", browser["path"] + (
                                  f": refused: {browser['problem']}" if browser["problem"]
                                  else ""))
        else:
            table.add_row(key.replace("_", " "), "—" if value is None else str(value))
    return table
