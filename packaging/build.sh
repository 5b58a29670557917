#!/usr/bin/env bash
# Builds the .deb and the .rpm into target/debian/ and target/generate-rpm/.
#   bash packaging/build.sh
# Needs cargo-deb and cargo-generate-rpm (installed here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/lib/need-rust.sh
need_rust
target=${CARGO_TARGET_DIR:-target}
for tool in cargo-deb:cargo-deb cargo-generate-rpm:cargo-generate-rpm; do
  bin=${tool%%:*}; crate=${tool##*:}
  if ! command -v "$bin" >/dev/null; then
    echo "== installing $crate from crates.io (a few minutes, once)"
    cargo install --locked --quiet "$crate"
  fi
done
# The tests and tests/run.sh all call this; packaging takes ~23 s (xz and
# zstd), so it is skipped when no input changed since the last build.
stamp=$target/packages.stamp
inputs=$( { rustc -V; git ls-files -z --cached --others --exclude-standard -- \
            Cargo.toml Cargo.lock smsotp_proto pam_sms smsotpd etc packaging README.md LICENSE | xargs -0 sha256sum; } \
          2>/dev/null | sha256sum | cut -c1-32)
debs=("$target"/debian/smsotp_*.deb) rpms=("$target"/generate-rpm/smsotp-*.rpm)
if git rev-parse --git-dir >/dev/null 2>&1 && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ] \
   && [ -f "${debs[0]}" ] && [ -f "${rpms[0]}" ]; then
  ls "${debs[@]}" "${rpms[@]}"
  exit 0
fi
rm -f "$stamp"
echo "== release build of smsotpd, smsotpctl, smsotp and pam_sms.so"
cargo build --release -p smsotpd -p pam_sms
mkdir -p target/man
for page in packaging/man/*; do
  gzip -9n -c "$page" > "target/man/$(basename "$page").gz"
done
cargo deb -p smsotpd --no-build --quiet
cargo generate-rpm -p smsotpd
echo "$inputs" > "$stamp"
ls "$target"/debian/*.deb "$target"/generate-rpm/*.rpm
