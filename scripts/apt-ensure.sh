#!/usr/bin/env bash
# Install the given Debian packages unless they already are (root; updates the lists once).
# --no-start: keep their services from starting (servers the tests start on loopback).
set -euo pipefail
no_start=false
if [ "${1:-}" = "--no-start" ]; then no_start=true; shift; fi
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "apt: installing ${missing[*]}"
policy=/usr/sbin/policy-rc.d
if $no_start && [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
