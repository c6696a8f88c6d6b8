"""sandbox: find memory leaks and resource-cleanup bugs in long-running browser workloads.

``sandbox.checkpoint()``, ``sandbox.settle(page)`` and ``sandbox.settle_async(page)`` mark a
workload's settle points (sandbox.settle_points, standard library only)."""

from sandbox.settle_points import checkpoint, settle, settle_async

__all__ = ["checkpoint", "settle", "settle_async"]
