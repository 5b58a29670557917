//! doctor's checks on sshd settings and PAM stacks, from strings.

use super::*;

const DEBIAN_COMMON_AUTH: &str = "auth\t[success=1 default=ignore]\tpam_unix.so nullok\nauth\trequisite\t\t\tpam_deny.so\nauth\trequired\t\t\tpam_permit.so\n";

fn files(sshd: &'static str) -> impl Fn(&str) -> Option<String> {
    move |name: &str| match name {
        "sshd" => Some(sshd.to_owned()),
        "common-auth" => Some(DEBIAN_COMMON_AUTH.to_owned()),
        _ => None,
    }
}

fn levels(f: &[Finding]) -> Vec<Level> {
    f.iter().map(|f| f.level.clone()).collect()
}

#[test]
fn good_sshd_settings() {
    let t = "usepam yes\nkbdinteractiveauthentication yes\nauthenticationmethods publickey,keyboard-interactive\nexposeauthinfo yes\n";
    assert!(check_sshd(t, true).iter().all(|f| f.level == Level::Ok));
}

#[test]
fn bad_sshd_settings() {
    let f =
        check_sshd("usepam no\nkbdinteractiveauthentication no\nauthenticationmethods any\nexposeauthinfo no\n", true);
    assert_eq!(levels(&f), [Level::Fail, Level::Fail, Level::Fail, Level::Warn]);
    assert!(f[2].fix.contains("AuthenticationMethods publickey,keyboard-interactive"));
    let f = check_sshd(
        "usepam yes\nkbdinteractiveauthentication yes\nauthenticationmethods publickey,keyboard-interactive publickey\n",
        false,
    );
    assert_eq!(f[2].level, Level::Fail, "a list without keyboard-interactive bypasses the code");
    let f = check_sshd(
        "usepam yes\nchallengeresponseauthentication yes\nauthenticationmethods keyboard-interactive\n",
        false,
    );
    assert!(f.iter().all(|f| f.level == Level::Ok), "older sshd spelling");
}

#[test]
fn a_good_debian_stack() {
    let lines = auth_stack("sshd", &files("@include common-auth\nauth required pam_sms.so\n")).unwrap();
    assert_eq!(lines.len(), 4);
    let f = check_stack("sshd", &lines);
    assert_eq!(levels(&f), [Level::Ok], "{f:?}");
}

#[test]
fn debian_su_stack_with_pam_rootok_is_fine() {
    let su = "auth sufficient pam_rootok.so\n@include common-auth\nauth required pam_sms.so\n";
    let lines = auth_stack("sshd", &files(su)).unwrap();
    let f = check_stack("su", &lines);
    assert_eq!(levels(&f), [Level::Ok, Level::Ok], "{f:?}");
    assert!(f[1].what.contains("pam_rootok.so (sufficient) lets root skip the code"), "{f:?}");
}

#[test]
fn pam_rootok_in_sshd_or_login_lets_everyone_in() {
    for service in ["sshd", "login"] {
        let stack = "auth sufficient pam_rootok.so\n@include common-auth\nauth required pam_sms.so\n";
        let lines = auth_stack("sshd", &files(stack)).unwrap();
        let f = check_stack(service, &lines);
        let bad = f.iter().find(|f| f.level == Level::Fail).unwrap_or_else(|| panic!("{service}: {f:?}"));
        assert!(bad.what.contains("lets everyone in without password or code"), "{bad:?}");
    }
}

/// Fedora/RHEL's stock sshd: `auth substack password-auth`, whose
/// `sufficient pam_unix.so` ends the substack only.
#[test]
fn a_substack_is_not_an_include() {
    let password_auth = "auth required pam_env.so\nauth required pam_faildelay.so delay=2000000\n\
        auth [default=1 ignore=ignore success=ok] pam_usertype.so isregular\n\
        auth [default=1 ignore=ignore success=ok] pam_localuser.so\nauth sufficient pam_unix.so nullok\n\
        auth [default=1 ignore=ignore success=ok] pam_usertype.so isregular\n\
        auth sufficient pam_sss.so forward_pass\nauth required pam_deny.so\n";
    let read = move |name: &str| match name {
        "sshd" => Some("auth substack password-auth\nauth include postlogin\nauth required pam_sms.so\n".to_owned()),
        "password-auth" => Some(password_auth.to_owned()),
        "postlogin" => Some(String::new()),
        _ => None,
    };
    let lines = auth_stack("sshd", &read).unwrap();
    assert_eq!(lines[0].control, "substack");
    assert!(lines[1..9].iter().all(|l| l.scope == 1) && lines[9].scope == 0, "{lines:?}");
    let f = check_stack("sshd", &lines);
    assert!(!f.iter().any(|f| f.what.contains("skips the code")), "no bypass through a substack: {f:?}");
    // But a wrong password inside it does not stop the stack (finding 3).
    assert_eq!(levels(&f), [Level::Ok, Level::Fail], "{f:?}");
    assert!(f[1].what.contains("a wrong password does not stop the stack"), "{f:?}");
    // The same lines included (not a substack) do skip the code.
    let read = move |name: &str| match name {
        "sshd" => Some("auth include password-auth\nauth required pam_sms.so\n".to_owned()),
        "password-auth" => Some(password_auth.to_owned()),
        _ => None,
    };
    let f = check_stack("sshd", &auth_stack("sshd", &read).unwrap());
    assert!(f.iter().any(|f| f.level == Level::Fail && f.what.contains("pam_unix.so")), "{f:?}");
    // A jump in the parent counts the substack as one line.
    let read = move |name: &str| match name {
        "sshd" => Some(
            "auth [success=1 default=ignore] pam_unix.so\nauth substack password-auth\nauth required pam_sms.so\n"
                .to_owned(),
        ),
        "password-auth" => Some(password_auth.to_owned()),
        _ => None,
    };
    let f = check_stack("sshd", &auth_stack("sshd", &read).unwrap());
    assert!(!f.iter().any(|f| f.what.contains("jumps over")), "success=1 skips the substack line, not pam_sms: {f:?}");
    let read = move |name: &str| match name {
        "sshd" => Some(
            "auth [success=2 default=ignore] pam_unix.so\nauth substack password-auth\nauth required pam_sms.so\n"
                .to_owned(),
        ),
        "password-auth" => Some(password_auth.to_owned()),
        _ => None,
    };
    let f = check_stack("sshd", &auth_stack("sshd", &read).unwrap());
    assert!(f.iter().any(|f| f.what.contains("jumps over pam_sms.so")), "{f:?}");
}

/// Issue 13, finding 3: the shapes where a wrong password still sends
/// an SMS, and the ones that stop first.
#[test]
fn a_wrong_password_must_stop_before_pam_sms() {
    let password_auth = "auth required pam_env.so\nauth sufficient pam_unix.so nullok\nauth required pam_deny.so\n";
    let stack = |sshd: &'static str| {
        let read = move |name: &str| match name {
            "sshd" => Some(sshd.to_owned()),
            "common-auth" => Some(DEBIAN_COMMON_AUTH.to_owned()),
            "password-auth" => Some(password_auth.to_owned()),
            _ => None,
        };
        check_stack("sshd", &auth_stack("sshd", &read).unwrap())
    };
    let stops = [
        "@include common-auth\nauth required pam_sms.so\n",
        "auth required pam_env.so\nauth requisite pam_unix.so nullok\nauth required pam_sms.so\n",
        "auth [success=ok default=die] pam_unix.so\nauth required pam_sms.so\n",
        // key + SMS: no password at all.
        "auth required pam_sms.so\n",
    ];
    for sshd in stops {
        let f = stack(sshd);
        assert!(f.iter().all(|f| f.level == Level::Ok), "{sshd}: {f:?}");
    }
    let sends = [
        ("auth required pam_sms.so\n@include common-auth\n", "runs before the password check (pam_unix.so"),
        ("auth substack password-auth\nauth required pam_sms.so\n", "does not stop the stack"),
        ("auth required pam_unix.so\nauth required pam_sms.so\n", "does not stop the stack"),
        ("auth optional pam_unix.so\nauth required pam_sms.so\n", "does not stop the stack"),
    ];
    for (sshd, want) in sends {
        let f = stack(sshd);
        assert!(f.iter().any(|f| f.level == Level::Fail && f.what.contains(want)), "{sshd}: {f:?}");
    }
}

#[test]
fn stacks_that_skip_the_code() {
    let cases = [
        ("auth sufficient pam_permit.so\nauth required pam_sms.so\n", "ends the stack on success"),
        ("auth [success=done default=ignore] pam_unix.so\nauth required pam_sms.so\n", "ends the stack on success"),
        (
            "auth [success=2 default=ignore] pam_unix.so\nauth requisite pam_deny.so\nauth required pam_sms.so\n",
            "jumps over pam_sms.so",
        ),
        ("@include common-auth\nauth optional pam_sms.so\n", "a wrong code does not stop the login"),
        ("@include common-auth\n", "has no pam_sms.so"),
        ("auth required pam_env.so user_readenv=1\nauth required pam_sms.so\n", "users' own environment"),
    ];
    for (sshd, want) in cases {
        let lines = auth_stack("sshd", &files(sshd)).unwrap();
        let f = check_stack("sshd", &lines);
        assert!(f.iter().any(|f| f.level != Level::Ok && f.what.contains(want)), "{sshd}: {f:?}");
    }
}

#[test]
fn includes_and_brackets() {
    let lines = auth_stack("sshd", &files("-auth [success=ok new_authtok_reqd=ok default=die] /usr/lib/x86_64-linux-gnu/security/pam_sms.so debug \\\n timeout=10\n")).unwrap();
    assert_eq!(lines[0].control, "[success=ok new_authtok_reqd=ok default=die]");
    assert_eq!(levels(&check_stack("sshd", &lines)), [Level::Ok], "a strict bracket control is fine");
    assert_eq!(lines[0].args, ["debug", "timeout=10"]);
    assert!(auth_stack("nosuch", &files("")).is_err());
}
