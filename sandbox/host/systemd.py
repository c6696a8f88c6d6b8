"""On a systemd host, run the harness in a delegated scope instead of writing into systemd's tree.

systemd owns the cgroup tree below the root; a process may only create cgroups where systemd
delegated a subtree to it (``Delegate=yes``). ``sandbox run`` started from a shell or a plain
service is not delegated, so it re-executes itself once under ``systemd-run --scope -p
Delegate=yes`` (in ``sandbox.slice``) and creates its per-run cgroups there. The scope's only
process is the harness; before it enables controllers for its runs it moves itself into a leaf
cgroup (see ``V2Memory._prepare_parent`` in host/cgroup_slice.py, systemd#26311).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence

from sandbox.host.facts import HostFacts

log = logging.getLogger(__name__)

#: Set in the re-executed harness: never ask for a scope twice, whatever systemd answered.
SCOPE_ENV = "SANDBOX_DELEGATED_SCOPE"
#: The slice unit the scopes (and sandbox-run@.service) go to; systemd creates it on demand.
SLICE_UNIT = "sandbox.slice"


def scope_command(argv: Sequence[str]) -> list[str]:
    """The systemd-run command line that runs ``argv`` in a fresh delegated scope."""
    return [
        "systemd-run", "--scope", "--quiet", "--collect", f"--slice={SLICE_UNIT}",
        "-p", "Delegate=yes", "--description=sandbox harness", "--", *argv,
    ]


def _alone_in_own_cgroup(facts: HostFacts) -> bool:
    """Whether the harness is the only process of its cgroup: the no-internal-processes rule
    lets it enable controllers for its runs only then (after moving into a leaf)."""
    own = facts.cgroup.parents.get("unified")
    try:
        return own is not None and (own / "cgroup.procs").read_text().split() == [
            str(os.getpid())]
    except OSError:
        return False


def needs_delegated_scope(facts: HostFacts) -> bool:
    """True when systemd is PID 1, the harness uses cgroups, has not been re-executed for that
    already, and is not alone in a delegated cgroup (started from a shell, a plain service, or
    beside other processes in someone else's delegated scope)."""
    return (
        facts.systemd_pid1
        and facts.is_root
        and facts.cgroup.mode != "none"
        and not os.environ.get(SCOPE_ENV)
        and not (facts.in_delegated_cgroup and _alone_in_own_cgroup(facts))
    )


def ensure_delegated_scope(facts: HostFacts, argv: Sequence[str]) -> None:
    """Re-execute ``argv`` in a delegated scope when :func:`needs_delegated_scope`; otherwise
    return. ``argv`` must start with an executable, e.g. ``[sys.executable, "-m", "sandbox",
    *args]``. Does not return when it re-executes; returns (after a warning) when systemd-run
    is missing, and the run then creates its cgroups where it stands."""
    if not needs_delegated_scope(facts):
        return
    if shutil.which("systemd-run") is None:
        log.warning("systemd is PID 1 but systemd-run is missing: running outside a delegated "
                    "scope (systemd may move or remove the run's cgroups)")
        return
    os.environ[SCOPE_ENV] = "1"
    command = scope_command(argv)
    log.debug("re-executing in a delegated scope: %s", " ".join(command))
    os.execvp(command[0], command)
