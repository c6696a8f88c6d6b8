#!/usr/bin/env bash
# Set up the host (scripts/setup.sh) and run the test suite: ruff and mypy, then pytest on real
# cgroups, real Chromium and real eBPF. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Servers the tests start themselves on loopback; their system services are not started.
bash scripts/apt-ensure.sh --no-start prometheus-pushgateway prometheus sudo
.venv/bin/ruff check sandbox tests bench
.venv/bin/mypy sandbox
.venv/bin/pytest --durations=30 "$@"

# The pure cgroup v2 proof: a Debian guest with systemd as PID 1 under qemu (TCG), built once
# and cached in /var/cache/sandbox-v2-guest (first run ~5 min, then ~2.5 min).
bash scripts/apt-ensure.sh qemu-system-x86 mmdebstrap e2fsprogs \
  || echo "test: qemu or mmdebstrap cannot be installed here: the guest test will skip"
.venv/bin/pytest -m guest tests/test_v2_guest.py
