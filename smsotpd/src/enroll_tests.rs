//! Enrollment at login, destinations and SMS budgets, against the
//! scripted provider and the manual clock of login_tests (the parent).

use super::*;
fn enrolling() -> World {
    World::with(Fake::default(), |c| {
        c.unenrolled = Unenrolled::Enroll;
        c.enrollment = Some(crate::config::Enrollment {
            countries: vec!["+1".into()],
            template: Template::parse(crate::config::raw::DEFAULT_ENROLLMENT_TEMPLATE).unwrap(),
            approval: false,
        });
    })
}

#[tokio::test]
async fn an_unenrolled_user_is_enrolled_only_with_the_code_sent_to_the_number_given() {
    let w = enrolling();
    // "daemon" exists on every system and is not enrolled.
    let s = w.start("daemon").await;
    assert_eq!((s.action, s.destination.as_str()), (Action::Enroll, ""));
    let err = w.daemon.enroll_number(&root(":1.9"), &s.challenge, "+33 6 12 34 56 78").await.unwrap_err();
    assert!(matches!(&err, LoginError::InvalidArgument(why) if why.contains("allowed: +1")), "{err:?}");
    assert!(w.fake.sent().is_empty(), "nothing goes to a number outside the list");
    let masked = w.daemon.enroll_number(&root(":1.9"), &s.challenge, "+1 (415) 555-0199").await.unwrap();
    assert_eq!(masked, "******0199");
    settle().await;
    let sent = w.fake.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "+14155550199");
    assert!(sent[0].1.contains("to set up SMS login on web1"), "the enrollment template: {}", sent[0].1);
    let code = w.fake.last_code();
    assert_eq!(w.check(&s.challenge, &wrong_code(&code)).await.status, Status::Wrong);
    assert!(w.daemon.store.load(&UserName::parse("daemon").unwrap()).unwrap().is_none(), "no proof yet");
    assert_eq!(w.check(&s.challenge, &code).await.status, Status::Accepted);
    let r = w.daemon.store.load(&UserName::parse("daemon").unwrap()).unwrap().expect("enrolled");
    assert_eq!(r.phone.e164(), "+14155550199");
    assert!(logs().iter().any(|l| l.contains("event=enrolled-at-login user=daemon to=******0199")), "{:?}", logs());
    assert!(!logs().iter().any(|l| l.contains("4155550199")), "never the full number in a log");
    // From now on, an ordinary login to that number.
    let s = w.start("daemon").await;
    assert_eq!((s.action, s.destination.as_str()), (Action::Code, "******0199"));
}

#[tokio::test]
async fn unknown_names_are_asked_alike_and_never_enrolled() {
    let w = enrolling();
    let s = w.start("nosuchuser").await;
    assert_eq!(s.action, Action::Enroll);
    assert_eq!(w.daemon.enroll_number(&root(":1.9"), &s.challenge, "+14155550188").await.unwrap(), "******0188");
    settle().await;
    assert!(w.fake.sent().is_empty(), "nothing is sent for a name the system does not know");
    for guess in ["000000", "123456"] {
        assert_ne!(w.check(&s.challenge, guess).await.status, Status::Accepted);
    }
    assert!(w.daemon.store.load(&UserName::parse("nosuchuser").unwrap()).unwrap().is_none());
}

#[tokio::test]
async fn unusable_numbers_count_as_wrong_answers() {
    let w = enrolling();
    let s = w.start("daemon").await;
    for _ in 0..3 {
        let e = w.daemon.enroll_number(&root(":1.9"), &s.challenge, "+8821234567890").await.unwrap_err();
        assert!(matches!(&e, LoginError::InvalidArgument(why) if why.contains("allowed: +1")), "{e:?}");
    }
    let err = w.daemon.enroll_number(&root(":1.9"), &s.challenge, "+14155550199").await.unwrap_err();
    assert_eq!(err, LoginError::UnknownChallenge, "three tries and the login is over");
    assert!(logs().iter().any(|l| l.contains("event=enroll-number-refused user=daemon")));
    assert!(w.fake.sent().is_empty());
}

#[tokio::test]
async fn no_sms_leaves_for_a_number_outside_the_destination_list() {
    // Enrolled (NUMBER is +1) before the list existed; then the list says +44.
    let w = World::new();
    let mut cfg = w.daemon.config().clone();
    cfg.destinations = Some(vec!["+44".into()]);
    let store = Store::open(w.dir.path()).unwrap();
    let daemon = Arc::new(Daemon::new(cfg, "web1".into(), store, w.fake.clone(), Arc::new(w.clock.clone())).unwrap());
    let w2 = World { daemon, ..w };
    let s = w2.start(USER).await;
    assert_eq!(s.action, Action::Code);
    let err = w2.daemon.check_code(&root(":1.9"), &s.challenge, "123456").await.unwrap_err();
    assert!(matches!(&err, LoginError::DeliveryFailed(why) if why.contains("destinations.countries")), "{err:?}");
    assert!(w2.fake.sent().is_empty(), "no request reached the provider");
    assert!(logs().iter().any(|l| l.contains("event=destination-refused user=root")), "{:?}", logs());
    // Nor may an administrator enroll such a number, or test-send to it.
    let e = w2.daemon.enroll(&root(":1.1"), USER, "+14155550188").await.unwrap_err();
    assert!(matches!(&e, LoginError::InvalidArgument(why) if why.contains("outside destinations.countries")), "{e:?}");
    let e = w2.daemon.test_send(&root(":1.1"), "+14155550188").await.unwrap_err();
    assert!(matches!(&e, LoginError::InvalidArgument(why) if why.contains("outside destinations.countries")), "{e:?}");
    assert!(w2.fake.sent().is_empty());
    assert!(w2.daemon.enroll(&root(":1.1"), USER, "+447911123456").await.is_ok());
}

#[tokio::test]
async fn sms_budgets_survive_a_restart() {
    let w = World::with(Fake::default(), |c| c.codes.sms_per_user_per_hour = 2);
    for n in 0..2 {
        assert_eq!(w.start_ctx(USER, &from(&format!("192.0.2.{n}"), "sshd")).await.action, Action::Code);
    }
    let w = w.restart();
    let third = w.daemon.start_login(&root(":1.9"), USER, &from("192.0.2.9", "sshd")).await;
    assert_eq!(third.unwrap_err(), LoginError::RateLimited, "the hour's two SMS are remembered");
    w.clock.advance(Duration::from_secs(3601));
    let w = w.restart();
    assert_eq!(w.start_ctx(USER, &from("192.0.2.10", "sshd")).await.action, Action::Code, "an hour later");
}

#[tokio::test]
async fn the_daily_cap_of_the_host_holds_across_users_and_restarts() {
    let w = World::with(Fake::default(), |c| c.codes.sms_per_host_per_day = 3);
    for user in [USER, "daemon", "nosuchuser"] {
        w.start(user).await;
    }
    let w = w.restart();
    let refused = w.daemon.start_login(&root(":1.9"), USER, &from("192.0.2.77", "sshd")).await;
    assert_eq!(refused.unwrap_err(), LoginError::RateLimited);
    assert!(logs().iter().any(|l| l.contains("event=daily-cap-reached cap=3")), "{:?}", logs());
    assert!(logs().iter().any(|l| l.contains("codes.sms_per_host_per_day (3) is reached")), "{:?}", logs());
    w.clock.advance(Duration::from_secs(24 * 3600 + 1));
    let w = w.restart();
    assert_eq!(w.start_ctx(USER, &from("192.0.2.78", "sshd")).await.action, Action::Code, "a day later");
}

#[tokio::test]
async fn a_changed_number_is_told_to_the_old_one() {
    let w = World::new();
    assert_eq!(w.daemon.enroll(&root(":1.1"), USER, NUMBER).await.unwrap(), "******0123");
    settle().await;
    assert!(w.fake.sent().is_empty(), "the same number again: nothing to tell");
    w.daemon.enroll(&root(":1.1"), USER, "+14155550199").await.unwrap();
    settle().await;
    let sent = w.fake.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, NUMBER, "to the old number");
    assert!(
        sent[0].1.starts_with("The number for SMS login codes of root on web1 was changed to ******0199 at "),
        "{}",
        sent[0].1
    );
    assert!(sent[0].1.ends_with("If this was not you, tell your administrator now."));
    assert!(logs().iter().any(|l| l.contains("event=number-change-notified user=root to=******0123")), "{:?}", logs());
}

#[tokio::test]
async fn per_user_daily_and_per_host_hourly_budgets() {
    let w = World::with(Fake::default(), |c| c.codes.sms_per_user_per_day = 2);
    for n in 0..2 {
        w.start_ctx(USER, &from(&format!("192.0.2.{n}"), "sshd")).await;
        w.clock.advance(Duration::from_secs(2 * 3600));
    }
    let w = w.restart();
    let third = w.daemon.start_login(&root(":1.9"), USER, &from("192.0.2.9", "sshd")).await;
    assert_eq!(third.unwrap_err(), LoginError::RateLimited, "two a day, hours apart, across a restart");

    let w = World::with(Fake::default(), |c| c.codes.sms_per_host_per_hour = 2);
    w.start(USER).await;
    w.start("daemon").await;
    let third = w.daemon.start_login(&root(":1.9"), "nosuchuser", &ctx()).await;
    assert_eq!(third.unwrap_err(), LoginError::RateLimited, "the host's hour is used up, whoever asks");
    w.clock.advance(Duration::from_secs(3601));
    assert_eq!(w.start("nosuchuser").await.action, Action::Code, "an hour later");
}
