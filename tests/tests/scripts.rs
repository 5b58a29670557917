//! The scripts a new admin runs first stop at once, with the fix, when the
//! Rust toolchain is missing or too old (Debian 12's own is 1.63; the code
//! needs Cargo.toml's rust-version), instead of failing later in apt or
//! with a compiler error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use smsotp_tests::tools::workspace_root;

const SCRIPTS: [&str; 5] =
    ["tests/run.sh", "tests/demo.sh", "tests/container/demo.sh", "tests/bench.sh", "packaging/build.sh"];

/// Runs `script` with `path` as PATH; its exit code and stderr.
fn run(script: &str, path: &str) -> (Option<i32>, String) {
    let out = Command::new("/bin/bash")
        .arg(workspace_root().join(script))
        .env("PATH", path)
        .current_dir("/")
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn without_cargo_every_script_says_how_to_get_rust() {
    for script in SCRIPTS {
        let (code, err) = run(script, "/usr/sbin:/usr/bin:/sbin:/bin");
        assert_eq!(code, Some(2), "{script}: {err}");
        assert!(err.contains("cargo is missing") && err.contains("rustup"), "{script}: {err}");
    }
}

#[test]
fn with_debian_12s_rust_every_script_says_it_is_too_old() {
    let fake = tempfile::tempdir().unwrap();
    for (tool, text) in [("rustc", "rustc 1.63.0"), ("cargo", "cargo 1.65.0")] {
        let p = fake.path().join(tool);
        std::fs::write(&p, format!("#!/bin/sh\necho '{text}'\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", fake.path().display());
    let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
    let want = manifest.lines().find_map(|l| l.strip_prefix("rust-version = \"")).unwrap().trim_end_matches('"');
    for script in SCRIPTS {
        let (code, err) = run(script, &path);
        assert_eq!(code, Some(2), "{script}: {err}");
        assert!(
            err.contains("rustc 1.63.0 is too old") && err.contains(&format!("needs {want} or newer")),
            "{script}: {err}"
        );
        assert!(err.contains("rustup"), "{script}: {err}");
    }
}
