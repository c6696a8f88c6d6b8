"""Host layer: discovery of the host's facts and the per-run slice."""

from sandbox.host.cgroups import CgroupLayout
from sandbox.host.cleanup import cleanup_stale
from sandbox.host.facts import HostFacts, discover
from sandbox.host.slice import MARKER_ENV, Limits, Slice, SliceError
from sandbox.host.slices import open_slice

__all__ = [
    "MARKER_ENV",
    "CgroupLayout",
    "HostFacts",
    "Limits",
    "Slice",
    "SliceError",
    "cleanup_stale",
    "discover",
    "open_slice",
]
