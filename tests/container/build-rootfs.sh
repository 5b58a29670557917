#!/usr/bin/env bash
# Builds the Debian 12 root filesystem the container tests run in, once:
# debootstrap minbase plus what a small SSH server needs. Cached in
# tests/.cache/rootfs-bookworm; the recipe's hash decides when to rebuild.
#   bash tests/container/build-rootfs.sh        (prints the rootfs path)
# The same recipe as a Containerfile: tests/container/Containerfile.
set -euo pipefail
cd "$(dirname "$0")/../.."
mirror=${SMSOTP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
include=openssh-server,dbus,ca-certificates,libfaketime,procps,init-system-helpers,libpam-runtime,login,passwd
cache=${SMSOTP_CONTAINER_CACHE:-$PWD/tests/.cache}
rootfs=$cache/rootfs-bookworm
stamp=$(printf '%s\n' "$include" "$mirror" "$(sha256sum "$0")" | sha256sum | cut -c1-16)

if [ -f "$rootfs/.smsotp-recipe" ] && [ "$(cat "$rootfs/.smsotp-recipe")" = "$stamp" ]; then
  echo "$rootfs"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "building the container root filesystem needs root" >&2; exit 1; }

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/rootfs-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "== debootstrap bookworm into $tmp (once; cached in $rootfs)" >&2
debootstrap --variant=minbase --include="$include" bookworm "$tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 \
  || { tail -20 "$cache/debootstrap.log" >&2; echo "debootstrap failed; full log: $cache/debootstrap.log" >&2; exit 1; }
# Host keys belong to the image; sshd refuses to start without them.
chroot "$tmp" ssh-keygen -A >/dev/null
# No daemon may start while packages are installed into the tree later.
printf '#!/bin/sh\nexit 101\n' > "$tmp/usr/sbin/policy-rc.d"
chmod 0755 "$tmp/usr/sbin/policy-rc.d"
chroot "$tmp" apt-get clean
echo "$stamp" > "$tmp/.smsotp-recipe"
rm -rf "$rootfs"
mv "$tmp" "$rootfs"
trap - EXIT
echo "$rootfs"
