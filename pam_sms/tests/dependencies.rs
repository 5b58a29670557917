//! The module runs inside sshd for every connection: it must not pull in
//! an HTTP or TLS stack (it makes no network calls; the daemon does).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

#[test]
fn no_http_or_tls_stack_in_the_module() {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["tree", "-p", "pam_sms", "-e", "normal", "--prefix", "none", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(tree.contains("smsotp_proto"), "the module speaks the shared contract:\n{tree}");
    for banned in ["reqwest", "hyper", "rustls", "h2 ", "openssl"] {
        let hit = tree.lines().find(|l| l.starts_with(banned));
        assert!(hit.is_none(), "pam_sms depends on {hit:?}:\n{tree}");
    }
}
