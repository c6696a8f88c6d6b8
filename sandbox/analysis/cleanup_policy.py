"""The seed's cleanup rules, as pure functions the verifier applies to what it found (no I/O,
like analysis.budget for the live alerts): an orphaned process older than
:data:`ORPHAN_ALERT_S` is a process-leak alert, a leftover temp file older than
:data:`FILE_ALERT_S` a file-leak alert; and the ``issues_found`` lines of cleanup.json."""

from __future__ import annotations

from typing import Any

from sandbox.model.cleanup import LeftoverFile, ProcessRecord

#: Seed thresholds: an orphan older than this is a process-leak alert ...
ORPHAN_ALERT_S = 30.0
#: ... and a leftover temp file older than this a file-leak alert.
FILE_ALERT_S = 60.0
#: After-teardown facts that are each an issue when not empty.
AFTER_TEARDOWN_KEYS = ("slice_survivors", "marked_alive", "escapes_alive", "cgroup_dirs_left",
                       "files_left", "teardown_error")


def cleanup_alerts(orphans: list[ProcessRecord], leftovers: list[LeftoverFile], *,
                   orphan_alert_s: float = ORPHAN_ALERT_S, file_alert_s: float = FILE_ALERT_S
                   ) -> list[dict[str, Any]]:
    """Old orphans are process leaks, old temp files file leaks."""
    alerts = [{"type": "process_leak", "pid": o.pid, "comm": o.comm, "age_s": o.age_s,
               "threshold_s": orphan_alert_s}
              for o in orphans if (o.age_s or 0.0) > orphan_alert_s]
    alerts += [{"type": "file_leak", "path": f.path, "age_s": f.age_s,
                "threshold_s": file_alert_s}
               for f in leftovers if (f.age_s or 0.0) > file_alert_s]
    return alerts


def cleanup_issues(orphans: list[ProcessRecord], escapes: list[ProcessRecord],
                   leftovers: list[LeftoverFile], alerts: list[dict[str, Any]],
                   after: dict[str, Any], grace_s: float) -> list[str]:
    """The ``issues_found`` lines: escapes, orphans, leftovers, alerts, then whatever the
    teardown could not remove."""
    issues = []
    if escapes:
        issues.append("CRITICAL: {} process(es) escaped the slice: {}".format(
            len(escapes), ", ".join(f"{e.pid} ({e.comm}) in {e.cgroup}" for e in escapes)))
    if orphans:
        issues.append("{} orphaned process(es) in the slice after {} s: {}".format(
            len(orphans), grace_s, ", ".join(f"{o.pid} ({o.comm})" for o in orphans)))
    if leftovers:
        issues.append("{} leftover temp file(s): {}".format(
            len(leftovers), ", ".join(f.described for f in leftovers)))
    issues += [f"{a['type']} alert: {a.get('comm') or a.get('path')} is {a['age_s']} s "
               f"old (> {a['threshold_s']} s)" for a in alerts]
    for key in AFTER_TEARDOWN_KEYS:
        if after[key]:
            issues.append(f"after teardown, {key.replace('_', ' ')}: {after[key]}")
    return issues
