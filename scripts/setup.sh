#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu host for sandbox, as root: system packages (Chromium, bpftrace,
# bpftool), tracefs for the eBPF tracer, and the project's venv in .venv. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: must run as root (apt-get, tracefs mount, cgroups)" >&2
  exit 3
fi

bash scripts/apt-ensure.sh chromium bpftrace bpftool python3-venv iproute2 util-linux \
  fonts-dejavu-core
# The sampler's C fast path (setup.py; optional: without it high rates are sampled in Python).
bash scripts/apt-ensure.sh gcc python3-dev \
  || echo "setup: no C compiler: high sampling rates will use the Python fast path"

# The eBPF tracer's tracepoints live in tracefs.
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing

# Debian's interpreter, so the workload's unprivileged user can run the venv's Python.
python=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
[ -x .venv/bin/python ] || "$python" -m venv .venv
# The build backend in the venv too, so `pip wheel --no-build-isolation` works (Debian 12's
# venv has setuptools 66; 77 reads the SPDX license string).
.venv/bin/pip install -q --disable-pip-version-check 'setuptools>=77'
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
echo "setup: ready ($(.venv/bin/sandbox doctor --json | .venv/bin/python -c \
  'import json,sys; print("cgroup mode", json.load(sys.stdin)["cgroup"]["mode"])'))"
