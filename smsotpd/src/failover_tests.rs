//! Failover against scripted providers and the manual clock of login_tests
//! (the parent module).

use super::*;
use crate::provider::{Channel, DeliveryStatus};

/// A world whose provider falls over to `second` by `channel`.
fn failing_over(channel: Channel) -> (World, Fake) {
    let second = Fake::default();
    let w = World::with(Fake::default(), |c| {
        c.voice = Some(crate::config::Voice {
            from: None,
            language: "en-US".into(),
            template: Template::parse(crate::config::raw::DEFAULT_VOICE_TEMPLATE).unwrap(),
            first: false,
        });
    });
    let cfg = w.daemon.config().clone();
    let store = Store::open(w.dir.path()).unwrap();
    let daemon = Daemon::new(cfg, "web1".into(), store, w.fake.clone(), Arc::new(w.clock.clone()))
        .unwrap()
        .with_failover(vec![(second.clone(), channel)]);
    (World { daemon: Arc::new(daemon), ..w }, second)
}

fn digits_said(body: &str) -> String {
    body.split("is: ").nth(1).unwrap().chars().filter(char::is_ascii_digit).collect()
}

#[tokio::test]
async fn a_failing_provider_hands_the_same_code_to_a_call_once() {
    let (w, second) = failing_over(Channel::Voice);
    w.fake.fail_next_send(ProviderError::Unavailable { detail: "HTTP 500".into() });
    let s = w.start(USER).await;
    assert_eq!(s.action, Action::Code);
    let (to, said) = second.sent().last().unwrap().clone();
    assert_eq!(to, NUMBER);
    assert!(said.starts_with("Your login code for web1 is: "), "by call: {said}");
    assert!(w.fake.sent().is_empty(), "the provider sent nothing");
    let lines = logs();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("event=failover user=root") && l.contains("channel=voice") && l.contains("HTTP 500")),
        "{lines:#?}"
    );
    // The next empty answer says the code comes by call (a new one).
    w.clock.advance(Duration::from_secs(31));
    let a = w.resend(&s.challenge).await;
    assert_eq!(a.status, Status::ResentByCall);
    assert_eq!(second.sent().len(), 2, "later messages take the route that worked");
    assert!(w.fake.sent().is_empty());
    let code = digits_said(&second.sent().last().unwrap().1);
    assert_eq!(w.check(&s.challenge, &code).await.status, Status::Accepted);
}

#[tokio::test]
async fn an_undelivered_sms_fails_over_with_the_same_code() {
    let (w, second) = failing_over(Channel::Sms);
    w.fake.inner.lock().unwrap().status = Some(DeliveryStatus::Undelivered);
    let s = w.start(USER).await;
    settle().await;
    let first = w.fake.last_code();
    let again = second.last_code();
    assert_eq!(first, again, "one code per login");
    assert!(logs().iter().any(|l| l.contains("event=failover") && l.contains("undelivered")), "{:?}", logs());
    assert_eq!(w.check(&s.challenge, &again).await.status, Status::Accepted);
}

#[tokio::test]
async fn a_delivered_sms_and_a_request_without_an_answer_do_not_fail_over() {
    let (w, second) = failing_over(Channel::Sms);
    w.fake.inner.lock().unwrap().status = Some(DeliveryStatus::Delivered);
    let s = w.start(USER).await;
    settle().await;
    assert!(second.sent().is_empty());
    w.daemon.cancel(&root(":1.9"), &s.challenge).unwrap();
    // Sent, no answer: it may arrive; a second message must not follow.
    w.fake.fail_next_send(ProviderError::NoAnswer);
    w.clock.advance(Duration::from_secs(31));
    let s = w.start(USER).await;
    assert_eq!(s.action, Action::Code);
    assert!(second.sent().is_empty(), "{:?}", second.sent());
    assert!(!logs().iter().any(|l| l.contains("event=failover")));
}
