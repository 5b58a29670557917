//! When answers leave (pace.rs), for enrolled users and unknown names
//! alike, on the manual clock of login_tests (the parent), whose scripted
//! provider here takes a set time for each send and check. Each test is
//! the scripted attacker: it answers the moment a prompt shows and times
//! the answer.

use std::future::Future;

use super::*;
use crate::pace::{ANSWER_FLOOR, WRONG_FLOOR};

const MS: fn(u64) -> Duration = Duration::from_millis;
const UNKNOWN: &str = "nosuchuser";
/// Wrong for everyone, and shaped alike for everyone.
const NOT_A_CODE: &str = "abcdef";

fn slow(fake: Fake, takes: Duration) -> World {
    let w = World::with(fake, |_| {});
    w.fake.inner.lock().unwrap().takes = Some((w.clock.clone(), takes));
    w
}

/// What `f` gave, and how long it took on the test's clock.
async fn timed<T>(w: &World, f: impl Future<Output = T>) -> (T, Duration) {
    let began = w.clock.tick();
    let out = f.await;
    (out, began.until(w.clock.tick()))
}

/// A login started for `user`, and a wrong code the moment it answers.
async fn wrong_code_at_once(w: &World, user: &str) -> Answer {
    let s = w.daemon.start_login(&root(":1.9"), user, &ctx()).await.unwrap();
    w.daemon.check_code(&root(":1.9"), &s.challenge, NOT_A_CODE).await.unwrap()
}

#[tokio::test]
async fn starts_leave_at_the_floor() {
    let w = slow(Fake::default(), MS(250));
    for user in [USER, UNKNOWN] {
        let (s, took) = timed(&w, w.daemon.start_login(&root(":1.9"), user, &ctx())).await;
        assert_eq!((s.unwrap().action, took), (Action::Code, ANSWER_FLOOR), "{user}");
    }
}

/// The manual clock runs one task at a time: a send's task (real or
/// pretended alike) runs after the answer that started it was paced, so
/// here a code typed at once waits for the start's floor, the send, and
/// the wrong code's floor, one after the other, for everyone.
#[tokio::test]
async fn a_wrong_code_at_once_waits_for_the_send_an_unknown_name_never_got() {
    let w = slow(Fake::default(), MS(250));
    // The enrolled user first: a decoy takes its time from real sends.
    for user in [USER, UNKNOWN] {
        let (answer, took) = timed(&w, wrong_code_at_once(&w, user)).await;
        assert_eq!(answer.status, Status::Wrong, "{user}");
        assert_eq!(took, ANSWER_FLOOR + MS(250) + WRONG_FLOOR, "{user}");
    }
    assert_eq!(w.fake.sent().len(), 1, "the unknown name was sent nothing");
}

#[tokio::test]
async fn typed_later_a_wrong_code_leaves_at_the_floor_for_everyone() {
    let w = slow(Fake::default(), MS(250));
    for user in [USER, UNKNOWN] {
        let s = w.start(user).await;
        w.clock.advance(Duration::from_secs(5));
        let (answer, took) = timed(&w, w.check(&s.challenge, NOT_A_CODE)).await;
        assert_eq!((answer.status, took), (Status::Wrong, WRONG_FLOOR), "{user}");
    }
}

#[tokio::test]
async fn before_any_real_send_a_decoy_takes_a_providers_time() {
    let w = World::new();
    let (answer, took) = timed(&w, wrong_code_at_once(&w, UNKNOWN)).await;
    assert_eq!(answer.status, Status::Wrong);
    assert!((MS(300)..MS(900)).contains(&(took - ANSWER_FLOOR - WRONG_FLOOR)), "{took:?}");
}

#[tokio::test]
async fn a_resend_and_the_code_after_it_take_as_long_for_an_unknown_name() {
    let w = slow(Fake::default(), MS(250));
    let logins = [(USER, w.start(USER).await), (UNKNOWN, w.start(UNKNOWN).await)];
    w.clock.advance(Duration::from_secs(30));
    for (user, s) in logins {
        let (answers, took) = timed(&w, async {
            let resent = w.daemon.resend(&root(":1.9"), &s.challenge).await.unwrap();
            (resent, w.daemon.check_code(&root(":1.9"), &s.challenge, NOT_A_CODE).await.unwrap())
        })
        .await;
        assert_eq!((answers.0.status, answers.1.status), (Status::Resent, Status::Wrong), "{user}");
        // The enrolled user's resend took its floor and the send, then the
        // wrong code's floor. The decoy's took as long after its call as
        // one of the two real sends took after theirs (the start's, with
        // the start's floor in it here, or the resend's), then the floor.
        let real_sends = [ANSWER_FLOOR + MS(250), WRONG_FLOOR + MS(250)];
        match user {
            USER => assert_eq!(took, real_sends[1] + WRONG_FLOOR),
            _ => assert!(real_sends.map(|s| s + WRONG_FLOOR).contains(&took), "{took:?}"),
        }
    }
}

#[tokio::test]
async fn with_verify_a_decoys_wrong_code_takes_as_long_as_a_real_check() {
    let w = slow(Fake::verify(), MS(150));
    for user in [USER, UNKNOWN] {
        let s = w.start(user).await;
        w.clock.advance(Duration::from_secs(5));
        let (answer, took) = timed(&w, w.daemon.check_code(&root(":1.9"), &s.challenge, "123456")).await;
        assert_eq!(answer.unwrap().status, Status::Wrong, "{user}");
        assert_eq!(took, MS(200), "{user}: 150 ms to check, then the floor's first doubling");
    }
    assert_eq!(w.fake.inner.lock().unwrap().checks.len(), 1, "the decoy's code went nowhere");
}

#[tokio::test]
async fn a_right_code_is_not_held_back() {
    let w = World::new();
    let s = w.start(USER).await;
    let code = w.fake.last_code();
    let (answer, took) = timed(&w, w.check(&s.challenge, &code)).await;
    assert_eq!((answer.status, took), (Status::Accepted, Duration::ZERO));
}
