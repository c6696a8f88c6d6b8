"""Workloads: what runs inside a run's slice. ``screenshot`` (Playwright + Chromium on the
built-in site or user URLs) and any command, both started by ``launcher``."""
