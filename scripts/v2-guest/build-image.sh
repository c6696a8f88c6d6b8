#!/usr/bin/env bash
# Build (or reuse) the pure cgroup v2 test guest: a small Debian system with systemd as PID 1,
# python3 and a venv holding the project's runtime and test dependencies. Prints the image
# directory (vmlinuz, initrd.img, rootfs.img) on stdout; progress goes to stderr.
#
# Package sources are the host's own: apt sources from /etc/apt (or SANDBOX_GUEST_APT_SOURCES,
# a sources file), Python wheels through the host's pip and its configuration. The image is
# cached in SANDBOX_GUEST_CACHE (default /var/cache/sandbox-v2-guest), keyed by a hash of
# this directory's files, the project's dependency list and the package sources.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${SANDBOX_GUEST_CACHE:-/var/cache/sandbox-v2-guest}
exec 3>&1 1>&2  # stdout carries only the image directory; every tool's chatter goes to stderr

log() { echo "v2-guest: $*" >&2; }
die() { echo "v2-guest: error: $*" >&2; exit 3; }

[ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap builds the root filesystem as root)"
for tool in mmdebstrap mkfs.ext4 python3; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install mmdebstrap e2fsprogs python3)"
done

# Suite and apt sources: the host's (a Debian host) unless overridden.
suite=${SANDBOX_GUEST_SUITE:-$(. /etc/os-release && [ "${ID:-}" = debian ] && echo "${VERSION_CODENAME:-}")}
[ -n "$suite" ] || die "not a Debian host: set SANDBOX_GUEST_SUITE (e.g. bookworm) and SANDBOX_GUEST_APT_SOURCES"
sources=()
if [ -n "${SANDBOX_GUEST_APT_SOURCES:-}" ]; then
  [ -f "$SANDBOX_GUEST_APT_SOURCES" ] || die "SANDBOX_GUEST_APT_SOURCES: no such file: $SANDBOX_GUEST_APT_SOURCES"
  sources=("$SANDBOX_GUEST_APT_SOURCES")
else
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/debian.sources; do
    [ -f "$f" ] && grep -qE '^[[:space:]]*(deb |Types:)' "$f" && sources+=("$f")
  done
fi
[ ${#sources[@]} -gt 0 ] || die "no Debian apt sources found on the host: set SANDBOX_GUEST_APT_SOURCES"

# Python requirements: the project's dependencies without the browser (no Chromium in the guest)
# and cgroup-utils (v1 only, sdist), plus the test tools.
requirements=$(python3 - "$repo/pyproject.toml" <<'EOF'
import re, sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
skip = {"playwright", "cgroup-utils", "ruff"}
deps = project["dependencies"] + project.get("optional-dependencies", {}).get("test", [])
print("\n".join(d for d in deps if re.split(r"[<>=!~ \[;]", d, maxsplit=1)[0] not in skip))
EOF
)

key=$( { cat "$here/build-image.sh" "$here"/guest/*; echo "$suite"; cat "${sources[@]}"; \
         echo "$requirements"; } | sha256sum | cut -c1-16)
image="$cache/$key"
if [ -f "$image/rootfs.img" ]; then
  log "cached image $image"
  echo "$image" >&3
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ -f "$image/rootfs.img" ]; then echo "$image" >&3; exit 0; fi
work=$(mktemp -d "$cache/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT
log "building image $key for $suite (first time: several minutes)"

# Wheels for the guest's Python, fetched on the host with the host's pip configuration.
pip=("$repo/.venv/bin/python" -m pip)
[ -x "$repo/.venv/bin/python" ] || pip=(python3 -m pip)
mkdir "$work/wheels"
echo "$requirements" >"$work/wheels/requirements.txt"
py_version=$(case "$suite" in bookworm) echo 3.11 ;; trixie) echo 3.13 ;; *) echo "" ;; esac)
[ -n "$py_version" ] || die "unknown Python version of suite $suite"
log "downloading wheels for Python $py_version"
"${pip[@]}" download -q --disable-pip-version-check -d "$work/wheels" -r "$work/wheels/requirements.txt" \
  --only-binary=:all: --implementation cp --python-version "$py_version" \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform linux_x86_64 \
  2> >(grep -v "^WARNING: Location" >&2)

log "mmdebstrap $suite"
mmdebstrap --variant=apt --quiet \
  --include=systemd,systemd-sysv,udev,dbus,kmod,mount,procps,linux-image-amd64,initramfs-tools,python3,python3-venv \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --customize-hook='mkdir "$1/tmp/wheels"' \
  --customize-hook="sync-in '$work/wheels' /tmp/wheels" \
  --customize-hook="copy-in '$here/guest/sandbox-guest-job.service' /etc/systemd/system" \
  --customize-hook="copy-in '$here/guest/sandbox-guest-job' /usr/local/sbin" \
  --customize-hook="copy-in '$here/guest/sandbox' /usr/local/bin" \
  --customize-hook='chroot "$1" python3 -m venv /opt/sandbox-venv' \
  --customize-hook='chroot "$1" env -i PATH=/usr/bin:/bin /opt/sandbox-venv/bin/pip install -q --no-index --disable-pip-version-check --find-links /tmp/wheels -r /tmp/wheels/requirements.txt' \
  --customize-hook='rm -rf "$1/tmp/wheels"' \
  --customize-hook='chroot "$1" systemctl enable sandbox-guest-job.service' \
  --customize-hook='chroot "$1" systemctl mask serial-getty@ttyS0.service getty@tty1.service systemd-firstboot.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer' \
  --customize-hook='echo sandbox-guest >"$1/etc/hostname"' \
  --customize-hook='echo "/dev/vda / ext4 rw,noatime 0 1" >"$1/etc/fstab"' \
  --customize-hook='cp "$1"/boot/vmlinuz-* "$1/../vmlinuz" && cp "$1"/boot/initrd.img-* "$1/../initrd.img"' \
  "$suite" "$work/root" "${sources[@]}"

log "making the root filesystem"
size_mb=$(( $(du -sm "$work/root" | cut -f1) + 768 ))
mkfs.ext4 -q -L root -d "$work/root" "$work/rootfs.img" "${size_mb}M"
rm -rf "$work/root" "$work/wheels"
chmod 0644 "$work/vmlinuz" "$work/initrd.img"

# Keep only this key's image: older ones belong to older scripts or dependency lists.
find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name '.build-*' -exec rm -rf {} +
mv "$work" "$image"
trap - EXIT
log "image ready: $image ($(du -sh "$image" | cut -f1))"
echo "$image" >&3
