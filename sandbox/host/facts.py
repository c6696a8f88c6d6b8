"""Host facts, discovered once per harness process: what a run can use on this machine."""

from __future__ import annotations

import os
import platform
import shutil
from dataclasses import asdict, dataclass
from importlib import metadata
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from sandbox.errors import HarnessError
from sandbox.host.browsers import Browser, candidates
from sandbox.host.cgroups import CgroupLayout, discover_layout

TRACEFS_DIRS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
#: The kernel's type information; bpftrace resolves ``curtask->real_parent`` with it.
BTF = Path("/sys/kernel/btf/vmlinux")
#: podman's mark in its containers (/.dockerenv is not trusted: VM images built from Docker
#: images keep it); podman and systemd-nspawn also set $container.
CONTAINER_MARK = Path("/run/.containerenv")
#: CAP_SYS_ADMIN's bit in CapEff: mounting tracefs and loading BPF programs need it.
CAP_SYS_ADMIN = 21


@dataclass(frozen=True)
class Lack:
    """Something runs made here will do without, and what fixes it."""

    what: str  # the part of a run that is missing, e.g. "the eBPF tracer"
    why: str
    fix: str


@dataclass(frozen=True)
class HostFacts:
    """Everything the harness needs to know about the host before a run."""

    cgroup: CgroupLayout
    is_root: bool
    hostname: str
    kernel: str
    systemd_pid1: bool
    in_delegated_cgroup: bool
    bpftrace: str | None
    tracefs: str | None
    proc_connector: bool
    chromium: str | None
    playwright_version: str | None
    browsers: tuple[Browser, ...] = ()  # every Chromium found, usable or not (host.browsers)
    btf: str | None = None
    ticker: bool = False  # the sampler's C fast path is built (sandbox.sampler.ticker)
    in_container: bool = False
    can_mount: bool = False  # CAP_SYS_ADMIN: tracefs can be mounted, BPF programs loaded

    @property
    def bpftrace_usable(self) -> bool:
        return bool(self.bpftrace and self.btf and (self.tracefs or self.can_mount)
                    and self.is_root)

    def problems(self, needs_browser: bool = False) -> list[str]:
        """Reasons a run cannot be made (empty when it can)."""
        found = []
        if not self.is_root:
            found.append("must run as root (cgroups, eBPF and network namespaces need it)")
        elif not self.can_mount:
            found.append("no CAP_SYS_ADMIN: the run's private /tmp and its IPC and network "
                         "namespaces need it" + (": run the container with --privileged"
                                                 if self.in_container else ""))
        if needs_browser and not self.chromium:
            refused = "; ".join(b.problem for b in self.browsers if b.problem)
            found.append("no usable Chromium: install one (apt-get install chromium, or "
                         "playwright install chromium) or pass --browser PATH"
                         + (f" ({refused})" if refused else ""))
        if needs_browser and not self.playwright_version:
            found.append("the playwright Python package is not installed")
        return found

    def lacks(self) -> list[Lack]:
        """What runs made here will do without, each with the flag or package that fixes it."""
        privileged = "run the container with --privileged" if self.in_container else ""
        found = []
        if self.cgroup.mode == "none":
            fix = ("run as root" if not self.is_root else privileged
                   or "run in a delegated scope (systemd-run --scope -p Delegate=yes)")
            found.append(Lack("cgroup limits", self.cgroup.reason, fix))
        if not self.bpftrace:
            found.append(Lack("the eBPF tracer", "bpftrace is not installed",
                              "apt-get install bpftrace"))
        elif not self.btf:
            found.append(Lack("the eBPF tracer", f"no kernel BTF at {BTF}",
                              privileged and f"{privileged} (or -v {BTF.parent}:{BTF.parent}:ro)"
                              or "a kernel built with CONFIG_DEBUG_INFO_BTF"))
        elif not self.tracefs and not self.can_mount:
            found.append(Lack("the eBPF tracer", "tracefs is not mounted and cannot be",
                              privileged and f"{privileged} (or -v {TRACEFS_DIRS[0]}:"
                              f"{TRACEFS_DIRS[0]})" or
                              f"mount -t tracefs nodev {TRACEFS_DIRS[0]}"))
        if not self.chromium or not self.playwright_version:
            why = ("no usable Chromium" if not self.chromium
                   else "the playwright package is not installed")
            found.append(Lack("browser runs (command runs work)", why,
                              "apt-get install chromium, or --browser PATH" if not self.chromium
                              else "pip install playwright"))
        if not self.ticker:
            found.append(Lack("the C ticker (sampling faster than 50 ms runs in Python)",
                              "the extension was not built",
                              "install gcc and python3-dev, then reinstall the package"))
        return found

    def summary(self, needs_browser: bool = False) -> str:
        """One line: whether runs can be made here, and what they will lack."""
        if problems := self.problems(needs_browser):
            return f"No runs can be made here: {problems[0]}."
        lacks = self.lacks()
        if not lacks:
            return "Runs can be made here, with every part (cgroups, eBPF, browser, C ticker)."
        return ("Runs can be made here; they will lack "
                + "; ".join(f"{lack.what} ({lack.why})" for lack in lacks) + ".")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["cgroup"] = self.cgroup.to_dict()
        data["bpftrace_usable"] = self.bpftrace_usable
        return data


def _systemd_is_pid1() -> bool:
    try:
        return Path("/proc/1/comm").read_text().strip() == "systemd"
    except OSError:
        return False


def _in_delegated_cgroup(layout: CgroupLayout) -> bool:
    """systemd marks a delegated cgroup with the trusted.delegate xattr (systemd >= 251)."""
    own = layout.parents.get("unified")
    if own is None:
        return False
    for path in (own, *own.parents):
        try:
            if os.getxattr(path, "trusted.delegate") == b"1":
                return True
        except OSError:
            continue
        if layout.unified_mount and path == layout.unified_mount:
            break
    return False


def _tracefs() -> str | None:
    for path in TRACEFS_DIRS:
        try:
            if (path / "events" / "sched").is_dir():
                return str(path)
        except OSError:  # not root: tracefs is not readable
            continue
    return None


def _ticker_built() -> bool:
    """The sampler's C extension is installed (looked up, not imported: the sampler package
    pulls in numpy)."""
    sampler = Path(__file__).resolve().parent.parent / "sampler"
    return any((sampler / f"_ticker{suffix}").exists() for suffix in EXTENSION_SUFFIXES)


def _in_container() -> bool:
    return CONTAINER_MARK.exists() or "container" in os.environ


def _can_mount() -> bool:
    """CAP_SYS_ADMIN in this process's effective set."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return False
    caps = next((line.split()[1] for line in status.splitlines()
                 if line.startswith("CapEff:")), "0")
    return bool(int(caps, 16) >> CAP_SYS_ADMIN & 1)


def _proc_connector_usable(is_root: bool) -> bool:
    """Subscribing to process events needs CAP_NET_ADMIN (sandbox.tracer.proc_connector)."""
    return is_root


def _playwright_version() -> str | None:
    try:
        return metadata.version("playwright")
    except metadata.PackageNotFoundError:
        return None


def discover(force_mode: str | None = None) -> HostFacts:
    """Read the host's facts; ``force_mode`` steps the cgroup mode down (for tests and users)."""
    try:
        layout = discover_layout(force_mode or os.environ.get("SANDBOX_CGROUP_MODE") or None)
    except ValueError as exc:
        raise HarnessError(str(exc)) from exc
    is_root = os.geteuid() == 0
    browsers = tuple(candidates())
    chromium = next((b.path for b in browsers if b.problem is None), None)
    if os.environ.get("SANDBOX_CHROMIUM") and browsers[0].problem:
        chromium = None  # asked for that one: no silent fallback
    return HostFacts(
        cgroup=layout,
        is_root=is_root,
        hostname=platform.node(),
        kernel=platform.release(),
        systemd_pid1=_systemd_is_pid1(),
        in_delegated_cgroup=_in_delegated_cgroup(layout),
        bpftrace=shutil.which("bpftrace"),
        tracefs=_tracefs(),
        proc_connector=_proc_connector_usable(is_root),
        chromium=chromium,
        playwright_version=_playwright_version(),
        browsers=browsers,
        btf=str(BTF) if BTF.exists() else None,
        ticker=_ticker_built(),
        in_container=_in_container(),
        can_mount=_can_mount(),
    )
