//! Login flow tests: scripted provider, manual clock, real store in a temp dir.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smsotp_proto::{Action, LoginContext, Status};

use crate::authz::Root;
use crate::clock::{Clock, ManualClock, Tick};
use crate::config::{Codes, Config, Lockout, Unenrolled};
use crate::daemon::{Answer, Daemon, Start};
use crate::error::LoginError;
use crate::names::UserName;
use crate::provider::{Outgoing, Provider, ProviderError, RemoteVerdict};
use crate::store::{Store, UserRecord};
use crate::template::Template;

const NUMBER: &str = "+14155550123";

/// A provider that records what it was asked and answers from a script.
#[derive(Clone, Default)]
struct Fake {
    inner: Arc<Mutex<FakeState>>,
}

#[derive(Default)]
struct FakeState {
    verify: bool,
    sent: Vec<(String, String)>,
    send_script: VecDeque<Result<String, ProviderError>>,
    check_script: VecDeque<Result<RemoteVerdict, ProviderError>>,
    checks: Vec<(String, String)>,
    /// Every send waits forever (a provider that never answers).
    hang: bool,
    /// What `status` says of any message (None: the provider cannot tell).
    status: Option<crate::provider::DeliveryStatus>,
    /// Each send and check takes this long on the test's clock.
    takes: Option<(ManualClock, Duration)>,
}

/// Scripted answers that were never asked for mean the test did not run
/// the way it says.
impl Drop for FakeState {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(self.send_script.is_empty(), "unused scripted sends: {}", self.send_script.len());
            assert!(self.check_script.is_empty(), "unused scripted checks: {}", self.check_script.len());
        }
    }
}

impl Fake {
    fn verify() -> Self {
        let f = Fake::default();
        f.inner.lock().unwrap().verify = true;
        f
    }
    fn sent(&self) -> Vec<(String, String)> {
        self.inner.lock().unwrap().sent.clone()
    }
    /// The code in the last SMS.
    fn last_code(&self) -> String {
        let sent = self.sent();
        let body = &sent.last().expect("an SMS was sent").1;
        body.split_whitespace().next().unwrap().to_owned()
    }
    fn fail_next_send(&self, e: ProviderError) {
        self.inner.lock().unwrap().send_script.push_back(Err(e));
    }
    fn next_check(&self, v: Result<RemoteVerdict, ProviderError>) {
        self.inner.lock().unwrap().check_script.push_back(v);
    }
}

impl Provider for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn makes_codes(&self) -> bool {
        self.inner.lock().unwrap().verify
    }
    async fn send(&self, msg: &Outgoing<'_>, _deadline: Tick) -> Result<String, ProviderError> {
        let hang = self.inner.lock().unwrap().hang;
        if hang {
            std::future::pending::<()>().await;
        }
        let mut s = self.inner.lock().unwrap();
        if let Some((clock, d)) = &s.takes {
            clock.advance(*d);
        }
        if let Some(r) = s.send_script.pop_front() {
            return r;
        }
        s.sent.push((msg.to.e164().to_owned(), msg.body.to_owned()));
        Ok(format!("SM{}", s.sent.len()))
    }
    async fn check(&self, reference: &str, code: &str, _deadline: Tick) -> Result<RemoteVerdict, ProviderError> {
        let mut s = self.inner.lock().unwrap();
        if let Some((clock, d)) = &s.takes {
            clock.advance(*d);
        }
        s.checks.push((reference.to_owned(), code.to_owned()));
        s.check_script.pop_front().unwrap_or(Ok(RemoteVerdict::Wrong))
    }
    async fn status(
        &self,
        _reference: &str,
        _deadline: Tick,
    ) -> Result<crate::provider::DeliveryStatus, ProviderError> {
        Ok(self.inner.lock().unwrap().status.unwrap_or(crate::provider::DeliveryStatus::Unknown))
    }
}

/// The log lines of one test, to prove secrets never reach one. Each test
/// has its own (a thread-local subscriber; tokio::test runs on one thread),
/// so a "log contains" check cannot pass on another test's line.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut text = crate::logging::Text::default();
        event.record(&mut text);
        self.0.lock().unwrap().push(text.0);
    }
}

thread_local! {
    static LINES: std::cell::RefCell<Option<Capture>> = const { std::cell::RefCell::new(None) };
}

/// This test's log lines so far.
fn logs() -> Vec<String> {
    LINES.with(|l| l.borrow().as_ref().map(|c| c.0.lock().unwrap().clone()).unwrap_or_default())
}

/// Starts capturing this thread's log lines; keep the guard for the test.
fn capture_logs() -> tracing::subscriber::DefaultGuard {
    use tracing_subscriber::layer::SubscriberExt;
    let capture = Capture::default();
    LINES.with(|l| *l.borrow_mut() = Some(capture.clone()));
    tracing::subscriber::set_default(tracing_subscriber::registry().with(capture))
}

fn config(dir: &std::path::Path) -> Config {
    Config {
        provider: crate::config::Provider::Outbox { path: dir.join("unused") },
        unenrolled: Unenrolled::Deny,
        state_directory: dir.to_owned(),
        codes: Codes {
            length: 6,
            expiry: Duration::from_secs(300),
            attempts: 3,
            resend_interval: Duration::from_secs(30),
            resends: 3,
            max_pending: 100,
            sms_per_user_per_hour: 100,
            sms_per_host_per_day: 10_000,
            sms_per_host_per_hour: 10_000,
            sms_per_user_per_day: 1_000,
            deadline: Duration::from_secs(10),
        },
        lockout: Lockout { failures: 10, duration: Duration::from_secs(900) },
        template: Template::parse("{code} is your code for {host} ({service}), {minutes} min").unwrap(),
        hostname: None,
        policy: crate::policy::Policy::default(),
        enrollment: None,
        destinations: None,
        self_service: crate::config::SelfService {
            status: true,
            change_number: true,
            trust: true,
            totp: true,
            recovery_codes: true,
            cooldown: Duration::from_secs(24 * 3600),
        },
        voice: None,
        failover: Vec::new(),
        failover_poll: Duration::from_secs(5),
        store: crate::config::fleet::StoreKind::Files,
        ldap: None,
    }
}

struct World {
    _logs: tracing::subscriber::DefaultGuard,
    dir: tempfile::TempDir,
    clock: ManualClock,
    fake: Fake,
    daemon: Arc<Daemon<Fake>>,
}

/// Lets the background send of the last StartLogin or Resend run (the
/// scripted provider answers at once; tokio::test runs on one thread).
async fn settle() {
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
}

fn root(conn: &str) -> Root {
    Root::for_tests(conn)
}

fn ctx() -> LoginContext {
    LoginContext { service: "sshd".into(), rhost: "192.0.2.7".into(), tty: "ssh".into(), auth_info: String::new() }
}

/// "root" exists on every system; tests enroll it to have a real account.
const USER: &str = "root";

impl World {
    fn new() -> World {
        World::with(Fake::default(), |_| {})
    }

    fn with(fake: Fake, tweak: impl FnOnce(&mut Config)) -> World {
        let logs = capture_logs();
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        tweak(&mut cfg);
        let clock = ManualClock::new(1_800_000_000);
        let store = Store::open(dir.path()).unwrap();
        let daemon = Arc::new(Daemon::new(cfg, "web1".into(), store, fake.clone(), Arc::new(clock.clone())).unwrap());
        // As `smsotpctl enroll` leaves it (admin_operations runs Enroll itself).
        let record = UserRecord::new(crate::names::PhoneNumber::parse(NUMBER).unwrap());
        daemon.store.save(&UserName::parse(USER).unwrap(), &record).unwrap();
        World { _logs: logs, dir, clock, fake, daemon }
    }

    /// The same state directory, as after a daemon restart.
    fn restart(self) -> World {
        let cfg = self.daemon.config().clone();
        let store = Store::open(self.dir.path()).unwrap();
        let daemon =
            Arc::new(Daemon::new(cfg, "web1".into(), store, self.fake.clone(), Arc::new(self.clock.clone())).unwrap());
        World { daemon, ..self }
    }

    async fn start(&self, user: &str) -> Start {
        let s = self.daemon.start_login(&root(":1.9"), user, &ctx()).await.unwrap();
        settle().await;
        s
    }

    async fn check(&self, id: &str, code: &str) -> Answer {
        self.daemon.check_code(&root(":1.9"), id, code).await.unwrap()
    }

    async fn resend(&self, id: &str) -> Answer {
        let a = self.daemon.resend(&root(":1.9"), id).await.unwrap();
        settle().await;
        a
    }

    fn record(&self) -> UserRecord {
        self.daemon.store.load(&UserName::parse(USER).unwrap()).unwrap().unwrap()
    }
}

fn wrong_code(right: &str) -> String {
    right.chars().map(|c| if c == '9' { '0' } else { char::from(c as u8 + 1) }).collect()
}

#[tokio::test]
async fn correct_code_is_accepted_once() {
    let w = World::new();
    let s = w.start(USER).await;
    assert_eq!(s.action, Action::Code);
    assert_eq!(s.destination, "******0123");
    let (to, body) = w.fake.sent().last().unwrap().clone();
    assert_eq!(to, NUMBER);
    assert!(body.ends_with(" is your code for web1 (sshd), 5 min"), "{body}");
    let code = w.fake.last_code();
    assert_eq!(w.check(&s.challenge, &code).await.status, Status::Accepted);
    let again = w.daemon.check_code(&root(":1.9"), &s.challenge, &code).await;
    assert_eq!(again, Err(LoginError::UnknownChallenge), "single use");
    let lines = logs();
    assert!(!lines.iter().any(|l| l.contains(&code) || l.contains("4155550123")), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| { l.contains("event=code-accepted user=root service=sshd rhost=192.0.2.7 to=******0123") })
    );
}

#[tokio::test]
async fn three_wrong_answers_end_the_challenge() {
    let w = World::new();
    let s = w.start(USER).await;
    let bad = wrong_code(&w.fake.last_code());
    assert_eq!(w.check(&s.challenge, &bad).await, Answer { status: Status::Wrong, attempts_left: 2 });
    assert_eq!(w.check(&s.challenge, &bad).await, Answer { status: Status::Wrong, attempts_left: 1 });
    assert_eq!(w.check(&s.challenge, &bad).await.status, Status::TooManyTries);
    let right = w.fake.last_code();
    assert_eq!(w.daemon.check_code(&root(":1.9"), &s.challenge, &right).await, Err(LoginError::UnknownChallenge));
    assert_eq!(w.record().failures, 3, "failures are persisted per user");
    assert!(!logs().iter().any(|l| l.contains(&bad)), "typed answers are never logged");
}

#[tokio::test]
async fn malformed_answers_count_as_wrong() {
    let w = World::new();
    let s = w.start(USER).await;
    let code = w.fake.last_code();
    let fullwidth: String = code.chars().map(|c| char::from_u32(c as u32 - 0x30 + 0xFF10).unwrap()).collect();
    assert_eq!(w.check(&s.challenge, &fullwidth).await.status, Status::Wrong);
    assert_eq!(w.check(&s.challenge, &format!("{code}0")).await.status, Status::Wrong);
    assert_eq!(w.check(&s.challenge, "").await.status, Status::TooManyTries);
}

#[tokio::test]
async fn expiry_is_exact() {
    let w = World::new();
    let s = w.start(USER).await;
    let code = w.fake.last_code();
    w.clock.advance(Duration::from_secs(299));
    let bad = wrong_code(&code);
    assert_eq!(w.check(&s.challenge, &bad).await.status, Status::Wrong);
    w.clock.advance(Duration::from_secs(1));
    assert_eq!(w.check(&s.challenge, &code).await.status, Status::Expired, "dead at exactly 300 s");
    assert_eq!(w.daemon.pending(), 0);
}

#[tokio::test]
async fn resend_rules_and_the_failure_count() {
    let w = World::new();
    let s = w.start(USER).await;
    let first = w.fake.last_code();
    // Too soon: refused, and it costs a try.
    assert_eq!(w.resend(&s.challenge).await, Answer { status: Status::ResendRefused, attempts_left: 2 });
    assert_eq!(w.fake.sent().len(), 1);
    w.clock.advance(Duration::from_secs(30));
    assert_eq!(
        w.resend(&s.challenge).await,
        Answer { status: Status::Resent, attempts_left: 2 },
        "a resend never resets the count"
    );
    let second = w.fake.last_code();
    assert_eq!(w.fake.sent().len(), 2);
    if first != second {
        assert_eq!(w.check(&s.challenge, &first).await.status, Status::Wrong, "the old code is dead");
        assert_eq!(w.check(&s.challenge, &second).await.status, Status::Accepted);
    }
}

#[tokio::test]
async fn at_most_three_resends() {
    let w = World::with(Fake::default(), |c| c.codes.attempts = 10);
    let s = w.start(USER).await;
    for _ in 0..3 {
        w.clock.advance(Duration::from_secs(30));
        assert_eq!(w.resend(&s.challenge).await.status, Status::Resent);
    }
    w.clock.advance(Duration::from_secs(30));
    assert_eq!(w.resend(&s.challenge).await.status, Status::ResendRefused);
    assert_eq!(w.fake.sent().len(), 4);
}

#[tokio::test]
async fn lockout_after_ten_failures_survives_restart_and_unlock_lifts_it() {
    let w = World::new();
    let mut failures = 0;
    let mut last = Status::Wrong;
    while failures < 10 {
        let s = w.start(USER).await;
        let bad = wrong_code(&w.fake.last_code());
        for _ in 0..3 {
            last = w.check(&s.challenge, &bad).await.status;
            failures += 1;
            if failures == 10 || last != Status::Wrong {
                break;
            }
        }
    }
    assert_eq!(last, Status::LockedOut);
    let sent = w.fake.sent().len();
    let w = w.restart();
    let s = w.start(USER).await;
    assert_eq!(s.action, Action::LockedOut, "the lockout is persisted");
    assert_eq!(w.fake.sent().len(), sent, "no SMS while locked out");
    w.clock.advance(Duration::from_secs(899));
    assert_eq!(w.start(USER).await.action, Action::LockedOut);
    w.clock.advance(Duration::from_secs(1));
    assert_eq!(w.start(USER).await.action, Action::Code, "15 minutes later it lifts");
    // Lock again, then unlock by hand.
    let mut r = w.record();
    r.locked_until = w.clock.unix_now() + 900;
    w.daemon.store.save(&UserName::parse(USER).unwrap(), &r).unwrap();
    assert_eq!(w.start(USER).await.action, Action::LockedOut);
    w.daemon.unlock(&root(":1.1"), USER).unwrap();
    assert_eq!(w.start(USER).await.action, Action::Code);
}

#[tokio::test]
async fn a_correct_code_clears_the_failure_count() {
    let w = World::new();
    let s = w.start(USER).await;
    w.check(&s.challenge, &wrong_code(&w.fake.last_code())).await;
    assert_eq!(w.record().failures, 1);
    assert_eq!(w.check(&s.challenge, &w.fake.last_code()).await.status, Status::Accepted);
    assert_eq!(w.record().failures, 0);
}

/// The module connects for each call (issue 13): the next call of the same
/// login comes from a new connection, and the challenge id alone finds it.
#[tokio::test]
async fn a_login_continues_on_a_new_connection() {
    let w = World::new();
    let s = w.daemon.start_login(&root(":1.9"), USER, &ctx()).await.unwrap();
    settle().await;
    let code = w.fake.last_code();
    let wrong = wrong_code(&code);
    assert_eq!(w.daemon.check_code(&root(":1.10"), &s.challenge, &wrong).await.unwrap().status, Status::Wrong);
    assert_eq!(w.daemon.check_code(&root(":1.11"), &s.challenge, &code).await.unwrap().status, Status::Accepted);
    assert_eq!(w.daemon.check_code(&root(":1.12"), &s.challenge, &code).await, Err(LoginError::UnknownChallenge));
    assert_eq!(w.daemon.check_code(&root(":1.9"), "not-an-id", &code).await, Err(LoginError::UnknownChallenge));
    let s = w.start(USER).await;
    assert_eq!(w.daemon.cancel(&root(":1.13"), &s.challenge), Ok(()));
    assert_eq!(w.daemon.cancel(&root(":1.13"), &s.challenge), Err(LoginError::UnknownChallenge), "cancelled once");
}

#[tokio::test]
async fn unknown_and_unenrolled_users_look_the_same_and_never_pass() {
    let w = World::new();
    for user in ["nosuchuser", "daemon", " root", "root\n", "../root"] {
        let s = w.start(user).await;
        assert_eq!(s.action, Action::Code, "{user:?}");
        assert_eq!(s.destination.len(), 10, "{user:?}");
        assert!(s.destination.starts_with("******"));
        assert_eq!(w.start(user).await.destination, s.destination, "stable per name");
        for guess in ["000000", "123456", ""] {
            let a = w.check(&s.challenge, guess).await;
            assert_ne!(a.status, Status::Accepted, "{user:?} {guess:?}");
        }
    }
    assert_eq!(w.fake.sent().len(), 0, "nobody was sent anything");
}

#[tokio::test]
async fn decoys_lock_out_like_real_users() {
    let w = World::new();
    let mut last = Status::Wrong;
    for _ in 0..4 {
        let s = w.start("nosuchuser").await;
        if s.action == Action::LockedOut {
            last = Status::LockedOut;
            break;
        }
        for _ in 0..3 {
            last = w.check(&s.challenge, "000000").await.status;
            if last != Status::Wrong {
                break;
            }
        }
        if last == Status::LockedOut {
            break;
        }
    }
    assert_eq!(last, Status::LockedOut);
    assert_eq!(w.start("nosuchuser").await.action, Action::LockedOut);
}

#[tokio::test]
async fn unenrolled_allow_means_ignore() {
    let w = World::with(Fake::default(), |c| c.unenrolled = Unenrolled::Allow);
    assert_eq!(w.start("daemon").await.action, Action::Ignore);
    assert_eq!(w.start(USER).await.action, Action::Code, "enrolled users still need a code");
}

#[tokio::test]
async fn a_corrupt_record_blocks_only_its_user() {
    let w = World::new();
    std::fs::write(w.dir.path().join("users").join(USER), "garbage").unwrap();
    let e = w.daemon.start_login(&root(":1.9"), USER, &ctx()).await.unwrap_err();
    assert!(matches!(e, LoginError::Storage(_)), "{e:?}");
    assert!(logs().iter().any(|l| l.contains("record-unusable") && l.contains("user=root")));
    w.daemon.enroll(&root(":1.1"), "daemon", "+14155550199").await.unwrap();
    assert_eq!(w.start("daemon").await.action, Action::Code);
}

#[tokio::test]
async fn pending_logins_are_capped() {
    let w = World::with(Fake::default(), |c| c.codes.max_pending = 2);
    w.start(USER).await;
    w.start("nosuchuser").await;
    assert_eq!(w.daemon.start_login(&root(":1.9"), USER, &ctx()).await, Err(LoginError::Busy));
    w.clock.advance(Duration::from_secs(300));
    assert_eq!(w.start(USER).await.action, Action::Code, "expired ones make room");
}

#[tokio::test]
async fn hourly_sms_budget() {
    let w = World::with(Fake::default(), |c| c.codes.sms_per_user_per_hour = 2);
    // Logins from three machines (one machine's new rounds reuse its code).
    let at = |n: u8| from(&format!("192.0.2.{n}"), "sshd");
    w.start_ctx(USER, &at(1)).await;
    w.start_ctx(USER, &at(2)).await;
    assert_eq!(w.daemon.start_login(&root(":1.9"), USER, &at(3)).await, Err(LoginError::RateLimited));
    assert_eq!(w.fake.sent().len(), 2);
    w.clock.advance(Duration::from_secs(3600));
    assert_eq!(w.start_ctx(USER, &at(3)).await.action, Action::Code);
}

#[tokio::test]
async fn provider_failures_leave_nothing_behind() {
    let w = World::new();
    w.fake.fail_next_send(ProviderError::Credentials { status: 401, code: Some(20003) });
    // StartLogin answers before the provider does; the failure surfaces at
    // the next call of the login.
    let s = w.start(USER).await;
    assert_eq!(s.action, Action::Code);
    let e = w.daemon.check_code(&root(":1.9"), &s.challenge, "123456").await.unwrap_err();
    assert!(matches!(e, LoginError::DeliveryFailed(_)), "{e:?}");
    assert_eq!(w.daemon.pending(), 0);
    assert!(logs().iter().any(|l| l.contains("event=provider-failure user=root")));
    assert!(logs().iter().any(|l| l.contains("rejected our credentials (HTTP 401, error 20003)")));
}

#[tokio::test]
async fn verify_provider_checks_remotely() {
    let fake = Fake::verify();
    let w = World::with(fake.clone(), |_| {});
    let s = w.start(USER).await;
    fake.next_check(Ok(RemoteVerdict::Wrong));
    assert_eq!(w.check(&s.challenge, "123456").await.status, Status::Wrong);
    assert_eq!(w.record().failures, 1);
    fake.next_check(Ok(RemoteVerdict::Approved));
    assert_eq!(w.check(&s.challenge, "654321").await.status, Status::Accepted);
    assert_eq!(
        fake.inner.lock().unwrap().checks,
        vec![("SM1".to_string(), "123456".to_string()), ("SM1".into(), "654321".into())]
    );
    let s = w.start(USER).await;
    fake.next_check(Ok(RemoteVerdict::Gone));
    assert_eq!(w.check(&s.challenge, "111111").await.status, Status::Expired);
    let s = w.start(USER).await;
    assert_eq!(w.check(&s.challenge, "12ab56").await.status, Status::Wrong, "not sent to the provider");
    assert_eq!(fake.inner.lock().unwrap().checks.len(), 3);
}

#[tokio::test]
async fn admin_operations() {
    let w = World::new();
    let e = w.daemon.enroll(&root(":1.1"), "nosuchuser", NUMBER).await.unwrap_err();
    assert!(e.to_string().contains("there is no user nosuchuser"), "{e}");
    let e = w.daemon.enroll(&root(":1.1"), USER, "0123").await.unwrap_err();
    assert!(e.to_string().contains("E.164"), "{e}");
    let list = w.daemon.list(&root(":1.1")).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].destination, "******0123");
    assert_eq!(list[0].state, smsotp_proto::UserState::Ok);
    // A new number resets the counters.
    let s = w.start(USER).await;
    w.check(&s.challenge, &wrong_code(&w.fake.last_code())).await;
    w.daemon.enroll(&root(":1.1"), USER, "+14155550999").await.unwrap();
    assert_eq!(w.record().failures, 0);
    assert_eq!(
        w.daemon.check_code(&root(":1.9"), &s.challenge, "1").await,
        Err(LoginError::UnknownChallenge),
        "pending logins end with the old number"
    );
    w.daemon.unenroll(&root(":1.1"), USER).unwrap();
    assert_eq!(w.daemon.unenroll(&root(":1.1"), USER), Err(LoginError::NotEnrolled(USER.into())));
    assert!(matches!(w.daemon.show(&root(":1.1"), USER), Err(LoginError::NotEnrolled(_))));
}

#[tokio::test]
async fn test_send_carries_no_code() {
    let w = World::new();
    assert_eq!(w.daemon.test_send(&root(":1.1"), USER).await.unwrap(), "******0123");
    assert_eq!(w.daemon.test_send(&root(":1.1"), "+4915112345678").await.unwrap(), "******5678");
    let bodies: Vec<String> = w.fake.sent().into_iter().map(|(_, b)| b).collect();
    assert!(bodies.iter().all(|b| b.starts_with("smsotp test message from web1")));
}

/// Issue 13, finding 1: StartLogin answers before the provider does, for
/// enrolled users and decoys alike, so its timing cannot tell them apart.
/// Here the provider never answers at all, and both still get a prompt.
#[tokio::test]
async fn start_login_never_waits_for_the_provider() {
    let w = World::new();
    w.fake.inner.lock().unwrap().hang = true;
    // Polled once: an answer that had to wait for anything is a failure here.
    let (caller, context) = (root(":1.9"), ctx());
    let once = |user: &'static str| futures_lite::future::poll_once(w.daemon.start_login(&caller, user, &context));
    let enrolled = once(USER).await.expect("answered without waiting").unwrap();
    let unknown = once("nosuchuser").await.expect("answered without waiting").unwrap();
    assert_eq!((enrolled.action, unknown.action), (Action::Code, Action::Code));
    assert_eq!(w.daemon.pending(), 2);
    let floor = crate::pace::ANSWER_FLOOR;
    assert_eq!(w.clock.slept(), [floor, floor], "no wait but the answer floor (pace.rs)");
}

/// Issue 13, finding 7: OpenSSH starts keyboard-interactive again after a
/// failed round; the same user, service and machine get the live code
/// back instead of a new SMS, and the counts go on where they were.
#[tokio::test]
async fn a_new_round_reuses_the_live_code_and_keeps_the_counts() {
    let w = World::new();
    let first = w.start(USER).await;
    let code = w.fake.last_code();
    assert_eq!(w.check(&first.challenge, &wrong_code(&code)).await.attempts_left, 2);
    let again = w.start(USER).await;
    assert_eq!(again, first, "same challenge, same destination");
    assert_eq!(w.fake.sent().len(), 1, "no second SMS");
    assert!(logs().iter().any(|l| l.starts_with("event=code-reused user=root")), "{:?}", logs());
    assert_eq!(w.check(&again.challenge, &wrong_code(&code)).await.attempts_left, 1, "counts are not reset");
    // Another machine is another login.
    let other = w.start_ctx(USER, &from("198.51.100.1", "sshd")).await;
    assert_ne!(other.challenge, first.challenge);
    assert_eq!(w.fake.sent().len(), 2);
    // After the resend interval a new round gets a new code.
    w.clock.advance(Duration::from_secs(31));
    let later = w.start(USER).await;
    assert_ne!(later.challenge, first.challenge);
    assert_eq!(w.fake.sent().len(), 3);
    assert_eq!(w.check(&later.challenge, &w.fake.last_code()).await.status, Status::Accepted);
}

/// A failing provider is asked once per resend interval for one login,
/// not once per round; a sent-but-unanswered code keeps the login going.
#[tokio::test]
async fn failed_rounds_do_not_ask_the_provider_again() {
    let w = World::new();
    w.fake.fail_next_send(ProviderError::Unavailable { detail: "HTTP 500".into() });
    let s = w.start(USER).await;
    let e = w.daemon.check_code(&root(":1.9"), &s.challenge, "123456").await.unwrap_err();
    assert!(matches!(e, LoginError::DeliveryFailed(_)), "{e:?}");
    let e = w.daemon.start_login(&root(":1.9"), USER, &ctx()).await.unwrap_err();
    assert!(e.to_string().contains("not asking the provider again yet"), "{e}");
    assert_eq!(w.fake.sent().len(), 0);
    w.clock.advance(Duration::from_secs(31));
    assert_eq!(w.start(USER).await.action, Action::Code, "later, a new attempt");
    assert_eq!(w.fake.sent().len(), 1);
    // Sent but not answered in time: the SMS may still come, so the login
    // goes on with that code and a new round sends nothing.
    let other = from("198.51.100.7", "sshd");
    w.fake.fail_next_send(ProviderError::NoAnswer);
    let s = w.start_ctx(USER, &other).await;
    assert_eq!(w.check(&s.challenge, "000000").await.status, Status::Wrong, "the login is still on");
    let again = w.start_ctx(USER, &other).await;
    assert_eq!(again.challenge, s.challenge);
    assert_eq!(w.fake.sent().len(), 1, "no second request");
}

#[tokio::test]
async fn each_call_reads_the_record_once() {
    let w = World::new();
    let reads = |before: u64| w.daemon.store.reads() - before;
    let before = w.daemon.store.reads();
    let s = w.start(USER).await;
    assert_eq!(reads(before), 1, "StartLogin");
    let code = w.fake.last_code();
    let before = w.daemon.store.reads();
    assert_eq!(w.check(&s.challenge, &wrong_code(&code)).await.status, Status::Wrong);
    assert_eq!(reads(before), 1, "a wrong CheckCode");
    w.clock.advance(Duration::from_secs(31));
    let before = w.daemon.store.reads();
    assert_eq!(w.resend(&s.challenge).await.status, Status::Resent);
    assert_eq!(reads(before), 1, "Resend");
    let code = w.fake.last_code();
    let before = w.daemon.store.reads();
    assert_eq!(w.check(&s.challenge, &code).await.status, Status::Accepted);
    assert_eq!(reads(before), 1, "a right CheckCode");
    assert_eq!(w.record().failures, 0, "and what it changed was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_guesses_are_all_counted() {
    let w = Arc::new(World::with(Fake::default(), |c| {
        c.codes.attempts = 10;
        c.lockout.failures = 100;
    }));
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(w.start_ctx(USER, &from(&format!("192.0.2.{n}"), "sshd")).await.challenge);
    }
    let mut tasks = Vec::new();
    for id in ids {
        for _ in 0..10 {
            let (w, id) = (w.clone(), id.clone());
            tasks.push(tokio::spawn(async move { w.check(&id, "x").await }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(w.record().failures, 50, "no lost updates");
}

/// A daemon whose policy trusts machines for 30 days.
fn trusting(w: impl FnOnce(&mut Config)) -> World {
    World::with(Fake::default(), |c| {
        c.policy.default = crate::policy::Action::Trust { days: 30 };
        w(c);
    })
}

/// A login from `rhost` to `service`.
fn from(rhost: &str, service: &str) -> LoginContext {
    LoginContext { service: service.into(), rhost: rhost.into(), tty: String::new(), auth_info: String::new() }
}

impl World {
    async fn start_ctx(&self, user: &str, ctx: &LoginContext) -> Start {
        let s = self.daemon.start_login(&root(":1.9"), user, ctx).await.unwrap();
        settle().await;
        s
    }

    /// A full login with the right code; returns whether an SMS was needed.
    async fn login(&self, user: &str, ctx: &LoginContext) -> Action {
        let s = self.start_ctx(user, ctx).await;
        if s.action == Action::Code {
            let a = self.check(&s.challenge, &self.fake.last_code()).await;
            assert!(matches!(a.status, Status::Accepted | Status::AcceptedOfferTrust), "{a:?}");
        }
        s.action
    }
}

#[path = "account_tests.rs"]
mod account;

#[path = "failover_tests.rs"]
mod failover;

#[path = "policy_tests.rs"]
mod policy;

#[path = "enroll_tests.rs"]
mod enroll;

#[path = "pace_tests.rs"]
mod pace;
