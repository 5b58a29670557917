#!/usr/bin/env bash
# The whole test suite: installs what it needs (Debian 12, as root), then
# checks formatting and lints and runs every test. CI runs exactly this.
#   bash tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Cheap prerequisites first: they fail in a second, not after apt and pip.
if [ "$(id -u)" -ne 0 ]; then
  echo "tests/run.sh must run as root: it installs Debian packages, and the integration tests run pamtester in bwrap and switch users" >&2
  exit 1
fi
. tests/lib/need-rust.sh
need_rust

packages=(libpam0g-dev pamtester bubblewrap dbus-daemon dbus-bin faketime libfaketime
          python3-venv util-linux coreutils ca-certificates
          # container tests: root filesystem, namespaces, the ssh client
          debootstrap iproute2 openssh-client mount
          # package checks
          dpkg-dev lintian rpm rpmlint systemd
          # the benchmark's baseline (tests/tests/bench.rs runs it, tiny)
          libpam-google-authenticator
          # a fleet (tests/tests/fleet.rs): real servers in temporary directories
          postgresql postgresql-client slapd ldap-utils openssl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

venv=tests/.cache/venv
if ! "$venv/bin/python" -c 'import openapi_core' 2>/dev/null; then
  echo "== creating $venv with openapi-core (validates our Twilio requests)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q openapi-core
fi

# Twilio's OpenAPI files come from the npm registry (this machine's npm, or Debian's).
if ! command -v npm >/dev/null; then
  echo "== installing: npm"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
fi
bash tests/fetch-twilio-oai.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo build"
cargo build --workspace
echo "== packages (packaging/build.sh: release build, .deb, .rpm)"
bash packaging/build.sh
echo "== container root filesystem (tests/container/build-rootfs.sh, cached)"
bash tests/container/build-rootfs.sh
echo "== cargo test"
cargo test --workspace -- --test-threads="${SMSOTP_TEST_THREADS:-4}"
echo "== all tests passed"
