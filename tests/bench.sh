#!/usr/bin/env bash
# The login-path benchmark (README "Benchmark"): pam_permit,
# pam_google_authenticator and pam_sms side by side, with ratios to
# google-authenticator. It prints figures and asserts nothing; run it on a
# quiet machine. Options go to smsotp-bench (--help lists them).
#   sudo tests/bench.sh                 # 3 rounds, 1,000 logins at once
#   sudo tests/bench.sh --rounds 1 --at-once 200
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "tests/bench.sh: run it as root (it uses a private mount namespace)" >&2
    exit 2
fi
. tests/lib/need-rust.sh
need_rust

missing=()
for pkg in libpam-google-authenticator libpam0g-dev dbus-daemon postgresql postgresql-client openssl; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== apt-get install ${missing[*]}" >&2
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

# Two builds: with --bin, cargo would build only that binary of each package.
cargo build --release --quiet -p smsotpd -p pam_sms
cargo build --release --quiet -p smsotp-tests --bin smsotp-bench
exec target/release/smsotp-bench "$@"
