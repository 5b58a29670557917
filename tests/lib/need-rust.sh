# Sourced by the scripts that build smsotp (tests/run.sh, tests/demo.sh,
# tests/container/demo.sh, tests/bench.sh, packaging/build.sh): stop at
# once, saying what to install, when no Rust toolchain new enough for this
# code is on PATH. The code is edition 2024 (rust-version in Cargo.toml);
# Debian 12's own cargo and rustc (1.63) cannot build it.
need_rust() {
  local want
  want=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' "$(dirname "${BASH_SOURCE[0]}")/../../Cargo.toml")
  local how="install Rust $want or newer with rustup: curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y && . \"\$HOME/.cargo/env\" (see README, \"Building and installing from source\")"
  if ! command -v cargo >/dev/null 2>&1 || ! command -v rustc >/dev/null 2>&1; then
    echo "$0: cargo is missing; $how" >&2
    exit 2
  fi
  local have
  have=$(rustc --version 2>/dev/null | awk '{print $2}')
  if [ -z "$have" ] || [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -1)" != "$want" ]; then
    echo "$0: rustc ${have:-?} is too old for smsotp (it needs $want or newer; Debian 12's packaged Rust is 1.63); $how" >&2
    exit 2
  fi
}
