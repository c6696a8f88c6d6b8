#!/usr/bin/env bash
# Set up the host (scripts/setup.sh) and run the test suite: ruff, then pytest on real cgroups,
# real Chromium and real eBPF. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check sandbox tests bench
.venv/bin/pytest "$@"
