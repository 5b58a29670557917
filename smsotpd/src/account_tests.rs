//! Factors and self-service, against the scripted provider and the manual
//! clock of login_tests (the parent module).

use smsotp_proto::{Factor, Happening, WireEnum};

use super::*;
use crate::authz::Caller;
use crate::totp;

fn me() -> Caller {
    Caller::for_tests(0, USER)
}

impl World {
    async fn sign_in(&self) -> Start {
        let s = self.daemon.start_sign_in(&root(":1.9"), USER, &ctx()).await.unwrap();
        settle().await;
        s
    }

    /// Adds an app through AddApp and ConfirmApp; returns its secret.
    async fn add_app(&self) -> Vec<u8> {
        let (b32, uri) = self.daemon.add_app(&me()).unwrap();
        assert!(uri.starts_with("otpauth://totp/smsotp:root@web1?secret="), "{}", uri.as_str());
        let secret = totp::from_base32(&b32).unwrap().to_vec();
        let code = totp::code_at(&secret, self.clock.unix_now() / 30);
        assert_eq!(self.daemon.confirm_app(&me(), &code).await.unwrap(), (Status::Accepted, 0));
        secret
    }

    fn app_code(&self, secret: &[u8], steps_off: i64) -> String {
        let step = (self.clock.unix_now() / 30).checked_add_signed(steps_off).unwrap();
        totp::code_at(secret, step).to_string()
    }
}

#[tokio::test]
async fn an_app_is_confirmed_by_its_first_code_then_asked_first() {
    let w = World::new();
    let (b32, _) = w.daemon.add_app(&me()).unwrap();
    let secret = totp::from_base32(&b32).unwrap();
    let wrong = wrong_code(&totp::code_at(&secret, w.clock.unix_now() / 30));
    assert_eq!(w.daemon.confirm_app(&me(), &wrong).await.unwrap(), (Status::Wrong, 2));
    assert!(w.record().totp.is_none(), "not a factor before a right code");
    let right = totp::code_at(&secret, w.clock.unix_now() / 30);
    assert_eq!(w.daemon.confirm_app(&me(), &right).await.unwrap().0, Status::Accepted);
    let r = w.record();
    assert_eq!((r.default_factor, r.factors()), (Some(Factor::Totp), vec![Factor::Totp, Factor::Sms]));
    let sms_before = w.fake.sent().len();
    let s = w.sign_in().await;
    assert_eq!((s.action, s.factors.clone()), (Action::Totp, vec![Factor::Totp, Factor::Sms]));
    assert_eq!(w.fake.sent().len(), sms_before, "no SMS when the app is asked first");
    // The confirming step is used: the same code again is a replay.
    assert_eq!(w.check(&s.challenge, &right).await.status, Status::Wrong, "replayed step");
    w.clock.advance(Duration::from_secs(30));
    let next = totp::code_at(&secret, w.clock.unix_now() / 30);
    assert_eq!(w.check(&s.challenge, &next).await.status, Status::Accepted);
    assert!(logs().iter().any(|l| l.contains("event=code-accepted") && l.contains("factor=totp")));
    assert!(!logs().iter().any(|l| l.contains(b32.as_str()) || l.contains(next.as_str())), "no secret or code in logs");
}

#[tokio::test]
async fn app_codes_allow_one_step_of_skew_and_count_failures() {
    let w = World::new();
    let secret = w.add_app().await;
    w.clock.advance(Duration::from_secs(300));
    for (off, expect) in [(-2, Status::Wrong), (2, Status::Wrong), (-1, Status::Accepted)] {
        let s = w.sign_in().await;
        assert_eq!(w.check(&s.challenge, &w.app_code(&secret, off)).await.status, expect, "{off} steps off");
        if expect == Status::Wrong {
            w.daemon.cancel(&root(":1.9"), &s.challenge).unwrap();
        }
    }
    w.clock.advance(Duration::from_secs(60));
    let s = w.sign_in().await;
    assert_eq!(w.check(&s.challenge, &w.app_code(&secret, 1)).await.status, Status::Accepted, "30 s fast phone");
    let s = w.sign_in().await;
    assert_eq!(w.check(&s.challenge, &w.app_code(&secret, 1)).await.status, Status::Wrong, "that step is used");
    assert_eq!(w.record().failures, 1, "an app's wrong code counts like an SMS one");
    let history = w.record().history;
    assert_eq!(history.iter().filter(|h| h.what == Happening::SignIn.wire()).count(), 2);
    assert!(history.iter().any(|h| h.what == Happening::Failure.wire()));
}

#[tokio::test]
async fn switching_keeps_the_tries_and_sms_is_sent_only_when_asked() {
    let w = World::new();
    let secret = w.add_app().await;
    let sent = w.fake.sent().len();
    let s = w.sign_in().await;
    assert_eq!(w.check(&s.challenge, "000000").await, Answer { status: Status::Wrong, attempts_left: 2 });
    let (a, to) = w.daemon.use_factor(&root(":1.9"), &s.challenge, Factor::Sms).await.unwrap();
    settle().await;
    assert_eq!((a, to.as_str()), (Answer { status: Status::Switched, attempts_left: 2 }, "******0123"));
    assert_eq!(w.fake.sent().len(), sent + 1, "the first SMS of the login");
    let e = w.daemon.use_factor(&root(":1.9"), &s.challenge, Factor::Recovery).await.unwrap_err();
    assert!(matches!(e, LoginError::InvalidArgument(_)), "no recovery codes yet: {e:?}");
    // Back to the app and again to SMS: no second SMS.
    w.daemon.use_factor(&root(":1.9"), &s.challenge, Factor::Totp).await.unwrap();
    w.daemon.use_factor(&root(":1.9"), &s.challenge, Factor::Sms).await.unwrap();
    assert_eq!(w.fake.sent().len(), sent + 1);
    w.clock.advance(Duration::from_secs(30));
    w.daemon.use_factor(&root(":1.9"), &s.challenge, Factor::Totp).await.unwrap();
    assert_eq!(w.check(&s.challenge, &w.app_code(&secret, 0)).await.status, Status::Accepted);
}

#[tokio::test]
async fn recovery_codes_work_once_and_a_new_set_voids_the_old() {
    let w = World::new();
    let codes = w.daemon.new_recovery_codes(&me()).await.unwrap();
    assert_eq!(codes.len(), 10);
    let text = std::fs::read_to_string(w.dir.path().join("users/root")).unwrap();
    assert!(!codes.iter().any(|c| text.contains(c.as_str()) || text.contains(&c.replace('-', ""))), "hashed only");
    let s = w.sign_in().await;
    assert_eq!(s.factors, vec![Factor::Sms, Factor::Recovery]);
    w.daemon.use_factor(&root(":1.9"), &s.challenge, Factor::Recovery).await.unwrap();
    assert_eq!(w.check(&s.challenge, &codes[3]).await.status, Status::Accepted);
    assert_eq!(crate::account::recovery_left(&w.record()), 9);
    let s = w.sign_in().await;
    w.daemon.use_factor(&root(":1.9"), &s.challenge, Factor::Recovery).await.unwrap();
    assert_eq!(w.check(&s.challenge, &codes[3]).await.status, Status::Wrong, "used once");
    let e = w.daemon.new_recovery_codes(&me()).await.unwrap_err();
    assert_eq!(e, LoginError::RateLimited, "ten Argon2id hashes at most once a minute");
    w.clock.advance(Duration::from_secs(60));
    let fresh = w.daemon.new_recovery_codes(&me()).await.unwrap();
    assert_eq!(w.check(&s.challenge, &codes[4]).await.status, Status::Wrong, "the old set is void");
    assert_eq!(w.check(&s.challenge, &fresh[0]).await.status, Status::Accepted);
}

#[tokio::test]
async fn a_changed_number_waits_out_its_cooldown_and_the_old_number_is_told() {
    let w = trusting(|c| c.destinations = Some(vec!["+1".into()]));
    w.login(USER, &from("192.0.2.8", "sshd")).await;
    assert_eq!(w.record().trust.len(), 1);
    let to = w.daemon.change_number(&me(), "+1 (415) 555-0199").await.unwrap();
    assert_eq!(to, "******0199");
    let (number, body) = w.fake.sent().last().unwrap().clone();
    assert_eq!(number, "+14155550199");
    let code = body.split_whitespace().next().unwrap().to_owned();
    assert_eq!(w.daemon.confirm_number(&me(), &wrong_code(&code)).await.unwrap(), (Status::Wrong, 2, 0));
    let now = w.clock.unix_now();
    let (status, _, from_unix) = w.daemon.confirm_number(&me(), &code).await.unwrap();
    assert_eq!((status, from_unix), (Status::Accepted, now + 24 * 3600));
    settle().await;
    let (old, notice) = w.fake.sent().last().unwrap().clone();
    assert_eq!(old, NUMBER, "the notice goes to the old number");
    assert!(notice.contains("will change to ******0199") && notice.contains("not you"), "{notice}");
    assert_eq!(w.record().trust.len(), 0, "trust revoked");
    let status = w.daemon.account_status(&me()).unwrap();
    assert_eq!((status.destination.as_str(), status.pending_destination.as_str()), ("******0123", "******0199"));
    // Until the cool-down ends, codes still go to the old number.
    let s = w.sign_in().await;
    assert_eq!(s.action, Action::Code, "the machine is trusted no more");
    assert_eq!(s.destination, "******0123");
    w.daemon.cancel(&root(":1.9"), &s.challenge).unwrap();
    w.clock.advance(Duration::from_secs(24 * 3600));
    let s = w.sign_in().await;
    assert_eq!(s.destination, "******0199");
    assert_eq!(w.fake.sent().last().unwrap().0, "+14155550199");
    assert!(
        logs().iter().any(|l| l.contains("event=number-changed user=root uid=0 from_number=******0123 to=******0199"))
    );
}

#[tokio::test]
async fn self_service_can_be_switched_off_and_needs_an_allow_list() {
    let w = World::with(Fake::default(), |c| {
        c.self_service.totp = false;
        c.destinations = Some(vec!["+1".into()]);
    });
    let e = w.daemon.add_app(&me()).unwrap_err();
    assert!(e.to_string().contains("self_service.totp = false"), "{e}");
    let e = w.daemon.change_number(&me(), "+447911123456").await.unwrap_err();
    assert!(matches!(e, LoginError::InvalidArgument(_)), "outside destinations.countries: {e:?}");
    let w = World::new();
    let e = w.daemon.change_number(&me(), "+14155550199").await.unwrap_err();
    assert!(e.to_string().contains("no list of allowed countries"), "{e}");
    assert!(w.fake.sent().is_empty(), "nothing sent: {:?}", w.fake.sent());
}

#[tokio::test]
async fn the_weakest_factor_reminder_is_weekly_and_recorded_on_success() {
    let w = World::new();
    let s = w.sign_in().await;
    assert!(s.remind);
    assert_eq!(w.check(&s.challenge, &w.fake.last_code()).await.status, Status::Accepted);
    let s = w.sign_in().await;
    assert!(!s.remind, "told already this week");
    w.daemon.cancel(&root(":1.9"), &s.challenge).unwrap();
    w.clock.advance(Duration::from_secs(7 * 24 * 3600));
    assert!(w.sign_in().await.remind);
}

#[tokio::test]
async fn a_reset_user_enrolls_again_and_approval_holds_a_new_number() {
    let w = World::with(Fake::default(), |c| {
        c.enrollment = Some(crate::config::Enrollment {
            countries: vec!["+1".into()],
            template: Template::parse(crate::config::raw::DEFAULT_ENROLLMENT_TEMPLATE).unwrap(),
            approval: true,
        });
    });
    w.daemon.reset_user(&root(":1.1"), USER).await.unwrap();
    settle().await;
    assert!(w.fake.sent().last().unwrap().1.contains("was reset by an administrator"));
    assert!(w.daemon.store.load(&UserName::parse(USER).unwrap()).unwrap().is_none());
    // unenrolled = "deny", yet the reset user is asked for a number.
    let s = w.sign_in().await;
    assert_eq!(s.action, Action::Enroll);
    w.daemon.enroll_number(&root(":1.9"), &s.challenge, "+14155550177").await.unwrap();
    settle().await;
    let a = w.check(&s.challenge, &w.fake.last_code()).await;
    assert_eq!(a.status, Status::AwaitingApproval);
    assert_eq!(w.sign_in().await.action, Action::AwaitingApproval);
    assert_eq!(w.start(USER).await.action, Action::Deny, "StartLogin says deny to older modules");
    let rows = w.daemon.list(&root(":1.1")).unwrap();
    assert_eq!(rows[0].state, smsotp_proto::UserState::AwaitingApproval);
    w.daemon.approve(&root(":1.1"), USER).await.unwrap();
    let s = w.sign_in().await;
    assert_eq!((s.action, s.destination.as_str()), (Action::Code, "******0177"));
    assert!(!w.daemon.store.is_reset(&UserName::parse(USER).unwrap()), "the reset mark is gone");
}

#[tokio::test]
async fn a_rule_lets_users_without_a_number_enroll_from_one_network_only() {
    use crate::policy::{Action as PolicyAction, Cidr, Rule};
    let w = World::with(Fake::default(), |c| {
        c.enrollment = Some(crate::config::Enrollment {
            countries: vec!["+1".into()],
            template: Template::parse(crate::config::raw::DEFAULT_ENROLLMENT_TEMPLATE).unwrap(),
            approval: false,
        });
        c.policy.rules = vec![Rule {
            label: "rule 1 (office)".into(),
            from: vec![Cidr::parse("10.0.0.0/8").unwrap()],
            services: vec![],
            users: vec![],
            groups: vec![],
            local: None,
            action: PolicyAction::Always,
            unenrolled: Some(crate::config::Unenrolled::Enroll),
        }];
    });
    // "daemon" exists on every Debian system and has no number here.
    let office = w.daemon.start_sign_in(&root(":1.9"), "daemon", &from("10.1.2.3", "sshd")).await.unwrap();
    assert_eq!(office.action, Action::Enroll);
    let elsewhere = w.daemon.start_sign_in(&root(":1.9"), "daemon", &from("192.0.2.9", "sshd")).await.unwrap();
    assert_eq!(elsewhere.action, Action::Code, "unenrolled = \"deny\" elsewhere: a code nobody gets");
    let e = w.daemon.explain(&root(":1.1"), "daemon", &from("10.1.2.3", "sshd")).unwrap();
    assert!(e.iter().any(|l| l.text.contains("asked for a mobile number")), "{e:?}");
}

fn with_voice() -> World {
    World::with(Fake::default(), |c| {
        c.voice = Some(crate::config::Voice {
            from: None,
            language: "en-US".into(),
            template: Template::parse(crate::config::raw::DEFAULT_VOICE_TEMPLATE).unwrap(),
            first: false,
        });
    })
}

/// The digits a call reads out ("1, 2, 3, 4, 5, 6").
fn spoken_code(body: &str) -> String {
    body.split("is: ").nth(1).unwrap().chars().filter(char::is_ascii_digit).collect()
}

#[tokio::test]
async fn a_call_reads_the_code_digit_by_digit_and_counts_as_a_resend() {
    let w = with_voice();
    let s = w.sign_in().await;
    assert_eq!(s.factors, vec![Factor::Sms, Factor::Voice]);
    let sms_code = w.fake.last_code();
    // Right after the SMS: a call is a resend, and too soon.
    let (a, _) = w.daemon.use_factor(&root(":1.9"), &s.challenge, Factor::Voice).await.unwrap();
    assert_eq!(a, Answer { status: Status::ResendRefused, attempts_left: 2 });
    w.clock.advance(Duration::from_secs(31));
    let (a, to) = w.daemon.use_factor(&root(":1.9"), &s.challenge, Factor::Voice).await.unwrap();
    settle().await;
    assert_eq!((a.status, to.as_str()), (Status::Switched, "******0123"));
    let (number, body) = w.fake.sent().last().unwrap().clone();
    assert_eq!(number, NUMBER);
    assert!(body.starts_with("Your login code for web1 is: ") && body.contains(", "), "{body}");
    let called = spoken_code(&body);
    assert_eq!(w.check(&s.challenge, &sms_code).await.status, Status::Wrong, "the SMS code died with the call");
    assert_eq!(w.check(&s.challenge, &called).await.status, Status::Accepted);
    assert!(logs().iter().any(|l| l.contains("event=code-resent") && l.contains("channel=voice")), "{:?}", logs());
}

#[tokio::test]
async fn a_user_who_prefers_calls_gets_one_first_and_unknown_users_are_offered_calls_too() {
    let w = with_voice();
    w.daemon.set_default_factor(&me(), Factor::Voice).await.unwrap();
    let s = w.sign_in().await;
    assert_eq!(s.factors, vec![Factor::Voice, Factor::Sms]);
    let body = w.fake.sent().last().unwrap().1.clone();
    assert!(body.starts_with("Your login code for web1"), "a call first: {body}");
    assert_eq!(w.check(&s.challenge, &spoken_code(&body)).await.status, Status::Accepted);
    let unknown = w.daemon.start_sign_in(&root(":1.9"), "nosuchuser", &ctx()).await.unwrap();
    assert_eq!(unknown.factors, vec![Factor::Sms, Factor::Voice]);
    let w = World::new();
    let e = w.daemon.set_default_factor(&me(), Factor::Voice).await.unwrap_err();
    assert!(e.to_string().contains("no [voice]"), "{e}");
}

#[tokio::test]
async fn policy_can_call_first_for_users_who_chose_nothing() {
    let w = World::with(Fake::default(), |c| {
        c.voice = Some(crate::config::Voice {
            from: None,
            language: "en-US".into(),
            template: Template::parse(crate::config::raw::DEFAULT_VOICE_TEMPLATE).unwrap(),
            first: true,
        });
    });
    let s = w.sign_in().await;
    assert_eq!(s.factors, vec![Factor::Voice, Factor::Sms], "voice.first: a call first");
    w.daemon.cancel(&root(":1.9"), &s.challenge).unwrap();
    w.daemon.set_default_factor(&me(), Factor::Sms).await.unwrap();
    w.clock.advance(Duration::from_secs(31));
    assert_eq!(w.sign_in().await.factors, vec![Factor::Sms, Factor::Voice], "the user's own choice wins");
}
