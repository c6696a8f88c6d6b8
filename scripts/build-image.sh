#!/usr/bin/env bash
# Build the sandbox container image (deploy/container/Containerfile) with podman, as root.
#
#   scripts/build-image.sh [--base IMAGE] [--tag TAG]
#
# Without --base no registry is needed: the base is a Debian root filesystem made with
# mmdebstrap from the host's apt sources (the host's suite, the packages of
# deploy/container/packages.txt already in it) and imported with `podman import`. Its tarball is
# cached in SANDBOX_IMAGE_CACHE (default /var/cache/sandbox-image), keyed by the package list,
# the suite and the apt sources, so a rebuild only reinstalls the wheels. With --base (e.g.
# docker.io/library/debian:bookworm) the same Containerfile installs the packages with apt.
# The wheels (the package, with the C ticker, and its dependencies) are built on this host with
# the host's pip configuration, for the host's Python, which must be the image's (bookworm: 3.11).
# Prints the image's tag on stdout; progress goes to stderr.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
here=$repo/deploy/container
cache=${SANDBOX_IMAGE_CACHE:-/var/cache/sandbox-image}
exec 3>&1 1>&2  # stdout carries only the tag

log() { echo "build-image: $*" >&2; }
die() { echo "build-image: error: $*" >&2; exit 3; }

base="" tag=localhost/sandbox:latest pull=missing
while [ $# -gt 0 ]; do
  case "$1" in
    --base) [ $# -ge 2 ] || die "--base needs an image"; base=$2; shift 2 ;;
    --tag) [ $# -ge 2 ] || die "--tag needs a name"; tag=$2; shift 2 ;;
    *) die "usage: build-image.sh [--base IMAGE] [--tag TAG]" ;;
  esac
done
[ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap and podman build as root)"
command -v podman >/dev/null || die "podman not found (bash scripts/apt-ensure.sh podman runc)"
# Debian's crun refuses hybrid cgroup hosts; runc works on every layout.
podman_run=(--runtime "$(command -v runc || echo runc)")
python=/usr/bin/python3
[ -x "$python" ] || die "no /usr/bin/python3 on this host"

suite=${SANDBOX_IMAGE_SUITE:-$(. /etc/os-release && [ "${ID:-}" = debian ] && echo "${VERSION_CODENAME:-}")}
want_py=$(case "$suite" in bookworm) echo 3.11 ;; trixie) echo 3.13 ;; *) echo "" ;; esac)
have_py=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ -z "$base" ] || [ -n "$want_py" ] || want_py=$have_py
[ -n "$want_py" ] || die "not a Debian bookworm/trixie host: set SANDBOX_IMAGE_SUITE or pass --base"
[ "$want_py" = "$have_py" ] || die "the host's Python is $have_py, the image's ($suite) is $want_py"

mkdir -p "$cache"
work=$(mktemp -d "$cache/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ -z "$base" ]; then
  command -v mmdebstrap >/dev/null || die "mmdebstrap not found (apt-get install mmdebstrap)"
  sources=()
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/debian.sources; do
    [ -f "$f" ] && grep -qE '^[[:space:]]*(deb |Types:)' "$f" && sources+=("$f")
  done
  [ ${#sources[@]} -gt 0 ] || die "no Debian apt sources found on the host"
  packages=$(grep -v '^#' "$here/packages.txt" | paste -sd, -)
  key=$( { echo "$suite $packages"; cat "${sources[@]}"; } | sha256sum | cut -c1-16)
  base=localhost/sandbox-base:$key pull=never
  tarball=$cache/base-$key.tar
  exec 9>"$cache/.lock"
  flock 9
  if [ ! -f "$tarball" ]; then
    log "building the base $key for $suite with mmdebstrap (first time: minutes)"
    mmdebstrap --variant=apt --quiet --include="$packages" \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      "$suite" "$work/base.tar" "${sources[@]}"
    # Keep only this key's base: older ones belong to older package lists.
    find "$cache" -maxdepth 1 -name 'base-*.tar' -delete
    mv "$work/base.tar" "$tarball"
  fi
  if ! podman image exists "$base"; then
    log "importing $tarball as $base"
    podman import -q "$tarball" "$base" >/dev/null
    for stale in $(podman images --format '{{.Repository}}:{{.Tag}}' localhost/sandbox-base); do
      [ "$stale" = "$base" ] || podman rmi "$stale" >/dev/null 2>&1 || true
    done
  fi
  flock -u 9
fi

log "building the wheels"
context=$work/context
mkdir -p "$context"
cp "$here/Containerfile" "$here/packages.txt" "$repo/scripts/apt-ensure.sh" "$context/"
"$python" -m venv "$work/venv"
pip=("$work/venv/bin/pip" -q --disable-pip-version-check)
"${pip[@]}" install "setuptools>=77" wheel 2> >(grep -v "^WARNING: Location" >&2)
"${pip[@]}" wheel --no-build-isolation -w "$context/wheels" "$repo" \
  2> >(grep -v "^WARNING: Location" >&2)

log "podman build $tag FROM $base"
old=$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
podman build "${podman_run[@]}" --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
  --build-arg "BASE=$base" --pull="$pull" -q -t "$tag" -f "$context/Containerfile" "$context" >/dev/null
new=$(podman image inspect --format '{{.Id}}' "$tag")
# The image this tag named before is replaced: drop it unless another tag still uses it.
if [ -n "$old" ] && [ "$old" != "$new" ]; then
  podman rmi "$old" >/dev/null 2>&1 || true
fi
log "image ready: $tag ($(podman image inspect --format '{{.Size}}' "$tag" | numfmt --to=iec))"
echo "$tag" >&3
