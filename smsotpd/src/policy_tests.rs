//! Policy and trust (modes, rules, "trust this machine", explain), against
//! the scripted provider and the manual clock of login_tests (the parent).

use super::*;
use crate::policy::{Action as PolicyAction, Cidr, Rule};

#[tokio::test]
async fn trusted_machine_skips_the_code_until_exactly_thirty_days() {
    let w = trusting(|_| {});
    let office = from("192.0.2.7", "sshd");
    assert_eq!(w.login(USER, &office).await, Action::Code);
    assert_eq!(w.record().trust.len(), 1);
    let sent = w.fake.sent().len();
    assert_eq!(w.login(USER, &office).await, Action::Allow, "trusted: no code");
    assert_eq!(w.fake.sent().len(), sent, "no SMS");
    assert!(
        logs()
            .iter()
            .any(|l| l.contains("event=trusted-machine user=root service=sshd rhost=192.0.2.7 machine=addr:192.0.2.7"))
    );
    w.clock.advance(Duration::from_secs(30 * 86_400 - 60));
    assert_eq!(w.login(USER, &office).await, Action::Allow, "29 d 23 h 59 m");
    w.clock.advance(Duration::from_secs(60));
    assert_eq!(w.start_ctx(USER, &office).await.action, Action::Code, "exactly 30 d: asked again");
}

#[tokio::test]
async fn trust_is_per_user_machine_class_and_service() {
    let w = trusting(|_| {});
    w.daemon.enroll(&root(":1.1"), "daemon", "+14155550199").await.unwrap();
    assert_eq!(w.login(USER, &from("192.0.2.7", "sshd")).await, Action::Code);
    assert_eq!(w.login(USER, &from("192.0.2.7", "sshd")).await, Action::Allow);
    assert_eq!(w.start_ctx("daemon", &from("192.0.2.7", "sshd")).await.action, Action::Code, "another user");
    assert_eq!(w.start_ctx(USER, &from("192.0.2.8", "sshd")).await.action, Action::Code, "another address");
    assert_eq!(w.start_ctx(USER, &from("", "login")).await.action, Action::Code, "a local login");
    assert_eq!(w.start_ctx(USER, &from("", "sshd")).await.action, Action::Code, "local class even for sshd");
    assert_eq!(
        w.start_ctx(USER, &from("::ffff:192.0.2.7", "sshd")).await.action,
        Action::Allow,
        "IPv4-mapped is the same address"
    );
}

#[tokio::test]
async fn a_clock_stepped_back_invalidates_trust() {
    let w = trusting(|_| {});
    let office = from("192.0.2.7", "sshd");
    w.login(USER, &office).await;
    let now = w.clock.unix_now();
    w.clock.set_unix(now - 3600);
    assert_eq!(w.start_ctx(USER, &office).await.action, Action::Code);
}

#[tokio::test]
async fn trust_survives_a_restart_and_dies_with_the_number() {
    let w = trusting(|_| {});
    let office = from("192.0.2.7", "sshd");
    w.login(USER, &office).await;
    let w = w.restart();
    assert_eq!(w.login(USER, &office).await, Action::Allow);
    w.daemon.enroll(&root(":1.1"), USER, NUMBER).await.unwrap();
    assert_eq!(w.login(USER, &office).await, Action::Allow, "re-enrolling the same number keeps trust");
    w.daemon.enroll(&root(":1.1"), USER, "+14155550777").await.unwrap();
    assert_eq!(w.start_ctx(USER, &office).await.action, Action::Code, "a new number revokes trust");
}

#[tokio::test]
async fn revoke_one_or_all() {
    let w = trusting(|_| {});
    w.login(USER, &from("192.0.2.7", "sshd")).await;
    w.login(USER, &from("192.0.2.8", "sshd")).await;
    let list = w.daemon.list_trust(&root(":1.1"), USER).unwrap();
    assert_eq!(list.iter().map(|t| t.machine.as_str()).collect::<Vec<_>>(), ["addr:192.0.2.7", "addr:192.0.2.8"]);
    assert_eq!(w.daemon.revoke_trust(&root(":1.1"), USER, "addr:192.0.2.7").await.unwrap(), 1);
    assert!(w.daemon.revoke_trust(&root(":1.1"), USER, "addr:192.0.2.7").await.is_err(), "nothing left to revoke");
    assert_eq!(w.start_ctx(USER, &from("192.0.2.7", "sshd")).await.action, Action::Code);
    assert_eq!(w.start_ctx(USER, &from("192.0.2.8", "sshd")).await.action, Action::Allow);
    assert_eq!(w.daemon.revoke_trust(&root(":1.1"), USER, "").await.unwrap(), 1);
    assert_eq!(w.start_ctx(USER, &from("192.0.2.8", "sshd")).await.action, Action::Code);
    assert!(logs().iter().any(|l| l.contains("event=trust-revoked user=root machine=all count=1")));
}

#[tokio::test]
async fn asking_the_user_first() {
    let w = trusting(|c| c.policy.ask_user = true);
    let office = from("192.0.2.7", "sshd");
    let s = w.start_ctx(USER, &office).await;
    let a = w.check(&s.challenge, &w.fake.last_code()).await;
    assert_eq!(a, Answer { status: Status::AcceptedOfferTrust, attempts_left: 30 });
    assert!(w.record().trust.is_empty(), "nothing recorded before the user says yes");
    assert_eq!(
        w.daemon.trust_machine(&root(":1.9"), "0123456789abcdef0123456789abcdef").await,
        Err(LoginError::UnknownChallenge),
        "only the id of the offer takes it"
    );
    // The answer comes on the module's next connection.
    w.daemon.trust_machine(&root(":1.66"), &s.challenge).await.unwrap();
    assert_eq!(w.daemon.trust_machine(&root(":1.9"), &s.challenge).await, Err(LoginError::UnknownChallenge), "once");
    assert_eq!(w.start_ctx(USER, &office).await.action, Action::Allow);
    // An offer not taken up within two minutes lapses.
    let other = from("192.0.2.8", "sshd");
    let s = w.start_ctx(USER, &other).await;
    w.check(&s.challenge, &w.fake.last_code()).await;
    w.clock.advance(Duration::from_secs(121));
    assert_eq!(w.daemon.trust_machine(&root(":1.9"), &s.challenge).await, Err(LoginError::UnknownChallenge));
}

#[tokio::test]
async fn skip_and_deny_rules() {
    let w = World::with(Fake::default(), |c| {
        c.policy.rules = vec![
            Rule {
                label: "rule 1 (lab)".into(),
                from: vec![Cidr::parse("198.51.100.0/24").unwrap()],
                services: vec![],
                users: vec![],
                groups: vec![],
                local: None,
                action: PolicyAction::Skip,
                unenrolled: None,
            },
            Rule {
                label: "rule 2 (no root group)".into(),
                from: vec![],
                services: vec![],
                users: vec![],
                groups: vec!["root".into()],
                local: Some(true),
                action: PolicyAction::Deny,
                unenrolled: None,
            },
        ];
    });
    assert_eq!(w.start_ctx(USER, &from("198.51.100.9", "sshd")).await.action, Action::Allow);
    assert!(
        logs()
            .iter()
            .any(|l| l.contains("event=policy-skip user=root service=sshd rhost=198.51.100.9 rule=\"rule 1 (lab)\""))
    );
    assert_eq!(w.start_ctx(USER, &from("", "login")).await.action, Action::Deny, "root is in group root");
    assert_eq!(w.start_ctx(USER, &from("203.0.113.1", "sshd")).await.action, Action::Code);
    assert!(w.fake.sent().len() == 1);
}

#[tokio::test]
async fn explain_sends_nothing() {
    let w = trusting(|_| {});
    let text = |ctx: &LoginContext| {
        w.daemon
            .explain(&root(":1.1"), USER, ctx)
            .unwrap()
            .into_iter()
            .map(|l| format!("{}: {}", l.key, l.text))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let office = from("192.0.2.7", "sshd");
    let before = text(&office);
    assert!(before.contains("decision: trust for 30 days\nrule: default mode"), "{before}");
    assert!(before.contains("machine: addr:192.0.2.7 (remote)"), "{before}");
    assert!(before.contains("outcome: a code is sent; a right code trusts this machine"), "{before}");
    assert!(w.fake.sent().is_empty());
    w.login(USER, &office).await;
    assert!(text(&office).contains("outcome: allowed without a code: trusted until"), "{}", text(&office));
}
