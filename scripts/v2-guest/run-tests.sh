#!/usr/bin/env bash
# The pure cgroup v2 proof: boot the Debian guest (systemd as PID 1, cgroup v2 only) and run the
# guest tests (tests/guest, marker `guest`) inside it, in a delegated scope as a systemd host's
# harness would be. Prints the result and exits with the in-guest pytest's exit code
# (3 when the guest could not be built or booted). Extra arguments go to pytest.
#
#   sudo scripts/v2-guest/run-tests.sh [--results DIR] [PYTEST-ARGS...]
#
# DIR keeps job.log (pytest's output), junit.xml and console.log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

results=()
if [ "${1:-}" = "--results" ]; then
  results=(--results "$2")
  shift 2
fi

set +e
"$here/run.sh" "${results[@]}" -- \
  systemd-run --scope -p Delegate=yes --quiet --collect -- \
  python -m pytest -m guest -p no:cacheprovider --junitxml=/mnt/out/junit.xml tests/guest "$@"
rc=$?
set -e
case $rc in
  0) echo "v2-guest: PASSED: guest tests passed on pure cgroup v2 with systemd as PID 1" ;;
  3) echo "v2-guest: ERROR: the guest could not run the tests (exit 3)" ;;
  *) echo "v2-guest: FAILED: guest tests exited $rc" ;;
esac
exit "$rc"
