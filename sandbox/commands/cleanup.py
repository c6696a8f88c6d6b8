"""``sandbox cleanup``: kill and remove what a harness that died left behind, and write that
run's reports (INCOMPLETE: its cleanup was never verified)."""

from __future__ import annotations

import os

from sandbox.commands.report import finish_reports
from sandbox.errors import HarnessError
from sandbox.host import cleanup_stale
from sandbox.untrusted import shown
from sandbox.workloads.network import cleanup_stale_namespaces


def cleanup_command() -> int:
    """One line per slice and network namespace removed; root only (it kills processes and
    removes cgroups of any run)."""
    if os.geteuid() != 0:
        raise HarnessError("sandbox cleanup must run as root: it kills what dead runs left "
                           "and removes their cgroups (sudo sandbox cleanup)")
    cleaned = cleanup_stale()
    for item in cleaned:
        print(f"removed {shown(item.name)}: killed {len(item.killed)} processes, "
              f"{len(item.removed_dirs)} cgroup directories, {len(item.removed_files)} files"
              + (f", spared {len(item.spared)} of another run carrying its marker"
                 if item.spared else "")
              + (f" (error: {shown(item.error)})" if item.error else ""))
        if item.run_dir and (done := finish_reports(item.run_dir)):
            print(f"  reports of {shown(item.run_dir)}: {shown(done)}")
    namespaces = cleanup_stale_namespaces()
    for name in namespaces:
        print(f"removed network namespace {shown(name)}")
    if not cleaned and not namespaces:
        print("nothing to clean up")
    return 0
