#!/usr/bin/env bash
# Run a command inside the pure cgroup v2 guest and exit with its exit code.
#
#   scripts/v2-guest/run.sh [--results DIR] -- COMMAND [ARG...]
#
# The guest (scripts/v2-guest/build-image.sh, cached) boots under qemu with systemd as PID 1;
# the checkout is shared read-only at /mnt/src (the command's working directory) and a
# writable results directory at /mnt/out. The command runs as root from a plain system service
# with the guest's venv first on PATH and the checkout on PYTHONPATH; its output is shown on the
# console and kept in DIR/job.log (DIR is a temporary directory unless --results is given).
#
# Environment: SANDBOX_GUEST_ACCEL (default tcg; "kvm" where nested KVM works),
# SANDBOX_GUEST_CPU (qemu -cpu; default: max, without AVX under TCG),
# SANDBOX_GUEST_MEMORY (MB, default 2048), SANDBOX_GUEST_CPUS (default 2),
# SANDBOX_GUEST_TIMEOUT (seconds for boot + command, default 900).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

die() { echo "v2-guest: error: $*" >&2; exit 3; }

results=""
while [ $# -gt 0 ]; do
  case "$1" in
    --results) [ $# -ge 2 ] || die "--results needs a directory"; results=$2; shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || die "usage: run.sh [--results DIR] -- COMMAND [ARG...]"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"

image=$("$here/build-image.sh")

if [ -n "$results" ]; then
  mkdir -p "$results"
  out=$(cd "$results" && pwd)
  rm -f "$out/rc" "$out/job.log" "$out/console.log"
else
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
{ echo "# written by scripts/v2-guest/run.sh"; printf '%q ' "$@"; echo; } >"$out/job.sh"

accel=${SANDBOX_GUEST_ACCEL:-tcg}
# Under TCG the CPU is "max" without AVX: QEMU 7.2's TCG emulation of AVX2 (new in 7.2) makes
# numpy's AVX2 argsort segfault (a guest test's harness died in scipy's binned_statistic; a
# loop of np.argsort dies at once with -cpu max and runs 3000 rounds clean without AVX).
# KVM runs the host's CPU as it is.
default_cpu=max
if [ "$accel" = tcg ]; then default_cpu=max,-avx,-avx2,-fma,-f16c; fi
cpu=${SANDBOX_GUEST_CPU:-$default_cpu}
echo "v2-guest: booting ($accel) to run: $*" >&2
start=$(date +%s)
set +e
timeout --foreground -k 10 "${SANDBOX_GUEST_TIMEOUT:-900}" qemu-system-x86_64 \
  -accel "$accel" -machine q35 -cpu "$cpu" -smp "${SANDBOX_GUEST_CPUS:-2}" \
  -m "${SANDBOX_GUEST_MEMORY:-2048}" \
  -nographic -no-reboot -nic none -device virtio-rng-pci \
  -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
  -append "root=/dev/vda rw console=ttyS0 quiet loglevel=3 systemd.show_status=error panic=-1 systemd.unified_cgroup_hierarchy=1" \
  -drive "file=$image/rootfs.img,if=virtio,format=raw,snapshot=on" \
  -virtfs "local,path=$repo,mount_tag=src,security_model=none,readonly=on" \
  -virtfs "local,path=$out,mount_tag=out,security_model=none" \
  </dev/null 2>&1 | tee "$out/console.log"
qemu_rc=${PIPESTATUS[0]}
set -e
elapsed=$(( $(date +%s) - start ))

if [ ! -s "$out/rc" ]; then
  echo "v2-guest: error: the guest reported no result after ${elapsed}s (qemu exit $qemu_rc;" \
       "124 = timeout); the console output is above${results:+ and in $out/console.log}" >&2
  exit 3
fi
rc=$(cat "$out/rc")
echo "v2-guest: command exited $rc in the guest (boot + run ${elapsed}s)" >&2
exit "$rc"
