#!/usr/bin/env bash
# Builds the .deb and the .rpm into target/debian/ and target/generate-rpm/.
#   bash packaging/build.sh
# Needs cargo-deb and cargo-generate-rpm (installed here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
for tool in cargo-deb:cargo-deb cargo-generate-rpm:cargo-generate-rpm; do
  bin=${tool%%:*}; crate=${tool##*:}
  command -v "$bin" >/dev/null || cargo install --locked --quiet "$crate"
done
cargo build --release --quiet -p smsotpd -p pam_sms
mkdir -p target/man
for page in packaging/man/*; do
  gzip -9n -c "$page" > "target/man/$(basename "$page").gz"
done
cargo deb -p smsotpd --no-build --quiet
cargo generate-rpm -p smsotpd
ls "$target"/debian/*.deb "$target"/generate-rpm/*.rpm
