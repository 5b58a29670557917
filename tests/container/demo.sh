#!/usr/bin/env bash
# A real OpenSSH login through smsotp in a Debian 12 container:
#   bash tests/container/demo.sh
# Builds the .deb (packaging/build.sh), builds the container's root
# filesystem once (debootstrap, cached in tests/.cache), installs the package
# in the container with dpkg, starts dbus, smsotpd, a fake Twilio and sshd in
# it, and logs in from this machine with ssh: public key + SMS code, then
# again from the trusted machine (no SMS), then with a wrong code. Needs root
# (namespaces, overlay mounts); leaves nothing running or mounted.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "run the demo as root" >&2; exit 1; }
. tests/lib/need-rust.sh
need_rust
need=()
for p in bubblewrap debootstrap iproute2 openssh-client libpam0g-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "== building the .deb (packaging/build.sh; a first run builds release binaries and installs cargo-deb: 10-15 minutes)"
bash packaging/build.sh
echo "== building the container's Debian 12 tree (debootstrap, about 1 minute the first time, then cached)"
bash tests/container/build-rootfs.sh
echo "== building the test programs"
cargo build -p smsotp-tests --bins
target=${CARGO_TARGET_DIR:-target}
exec "$target/debug/container-demo"
