//! The conversation against scripted fakes. Each fake panics on drop if its
//! script was not used up, so a test cannot pass by skipping steps.

use std::collections::VecDeque;

use super::*;
use pam::constants::PamResultCode as P;
use smsotp_proto::Error as DaemonError;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Said {
    Info(String),
    Error(String),
    Prompt(String),
}

/// Scripted user: answers prompts in order, records everything shown.
#[derive(Default)]
struct User {
    answers: VecDeque<Result<Option<Vec<u8>>, ConvError>>,
    said: Vec<Said>,
    fail_info: bool,
}

impl User {
    fn typing(answers: &[&[u8]]) -> Self {
        let mut u = User::default();
        u.answers = answers.iter().map(|a| Ok(Some(a.to_vec()))).collect();
        u
    }
}

impl Prompter for User {
    fn info(&mut self, text: &str) -> Result<(), ConvError> {
        self.said.push(Said::Info(text.into()));
        if self.fail_info { Err(ConvError) } else { Ok(()) }
    }
    fn error(&mut self, text: &str) -> Result<(), ConvError> {
        self.said.push(Said::Error(text.into()));
        Ok(())
    }
    fn prompt_visible(&mut self, text: &str) -> Result<Option<String>, ConvError> {
        self.said.push(Said::Prompt(text.into()));
        let next = self.answers.pop_front().expect("the flow prompted more often than scripted");
        next.map(|o| o.map(|b| String::from_utf8(b).unwrap()))
    }
    fn prompt_secret(&mut self, text: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ConvError> {
        self.said.push(Said::Prompt(text.into()));
        let next = self.answers.pop_front().expect("the flow prompted more often than scripted");
        next.map(|o| o.map(Zeroizing::new))
    }
}

impl Drop for User {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(self.answers.is_empty(), "unused answers: {:?}", self.answers);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Start(String, Vec<(String, String)>),
    Check(String, String),
    Resend(String),
    Cancel(String),
    Trust(String),
    Number(String, String),
    Use(String, Factor),
}

/// Scripted daemon: replies in order, records every call.
#[derive(Default)]
struct Smsotpd {
    starts: VecDeque<Result<Start, ClientError>>,
    answers: VecDeque<Result<Answer, ClientError>>,
    numbers: VecDeque<Result<String, ClientError>>,
    calls: Vec<Call>,
}

impl Smsotpd {
    fn code_sent() -> Self {
        let mut d = Smsotpd::default();
        d.starts.push_back(Ok(Start {
            action: Action::Code,
            challenge: "c1".into(),
            destination: "******1234".into(),
            factors: vec![Factor::Sms],
            remind: false,
        }));
        d
    }
    /// A user with every factor, `first` asked first.
    fn all_factors(first: Factor) -> Self {
        let mut d = Smsotpd::default();
        let mut factors = vec![Factor::Sms, Factor::Totp, Factor::Recovery];
        factors.retain(|f| *f != first);
        factors.insert(0, first);
        let action = if first == Factor::Totp { Action::Totp } else { Action::Code };
        d.starts.push_back(Ok(Start {
            action,
            challenge: "c1".into(),
            destination: "******1234".into(),
            factors,
            remind: false,
        }));
        d
    }
    fn reminding(mut self) -> Self {
        if let Some(Ok(s)) = self.starts.back_mut() {
            s.remind = true;
        }
        self
    }
    fn then(mut self, status: Status, detail: u32) -> Self {
        self.answers.push_back(Ok(Answer { status, detail }));
        self
    }
    fn then_err(mut self, e: ClientError) -> Self {
        self.answers.push_back(Err(e));
        self
    }
    fn starting(action: Action) -> Self {
        let mut d = Smsotpd::default();
        d.starts.push_back(Ok(Start {
            action,
            challenge: String::new(),
            destination: String::new(),
            factors: Vec::new(),
            remind: false,
        }));
        d
    }
    fn enrolling() -> Self {
        let mut d = Smsotpd::default();
        d.starts.push_back(Ok(Start {
            action: Action::Enroll,
            challenge: "c1".into(),
            destination: String::new(),
            factors: vec![Factor::Sms],
            remind: false,
        }));
        d
    }
    fn number(mut self, reply: Result<&str, &str>) -> Self {
        self.numbers.push_back(
            reply.map(str::to_owned).map_err(|why| ClientError::Daemon(DaemonError::InvalidArgument(why.into()))),
        );
        self
    }
    fn failing(e: ClientError) -> Self {
        let mut d = Smsotpd::default();
        d.starts.push_back(Err(e));
        d
    }
}

impl Daemon for Smsotpd {
    fn start_login(&mut self, user: &str, context: &LoginContext) -> Result<Start, ClientError> {
        let mut sent: Vec<(String, String)> =
            context.to_wire().into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        sent.sort();
        self.calls.push(Call::Start(user.into(), sent));
        self.starts.pop_front().expect("unscripted StartLogin")
    }
    fn check_code(&mut self, challenge: &str, code: &str) -> Result<Answer, ClientError> {
        self.calls.push(Call::Check(challenge.into(), code.into()));
        self.answers.pop_front().expect("unscripted CheckCode")
    }
    fn enroll_number(&mut self, challenge: &str, number: &str) -> Result<String, ClientError> {
        self.calls.push(Call::Number(challenge.into(), number.into()));
        self.numbers.pop_front().expect("unscripted EnrollNumber")
    }
    fn resend(&mut self, challenge: &str) -> Result<Answer, ClientError> {
        self.calls.push(Call::Resend(challenge.into()));
        self.answers.pop_front().expect("unscripted Resend")
    }
    fn use_factor(&mut self, challenge: &str, factor: Factor) -> Result<(Answer, String), ClientError> {
        self.calls.push(Call::Use(challenge.into(), factor));
        let a = self.answers.pop_front().expect("unscripted UseFactor")?;
        Ok((a, if factor == Factor::Sms { "******1234".into() } else { String::new() }))
    }
    fn cancel(&mut self, challenge: &str) {
        self.calls.push(Call::Cancel(challenge.into()));
    }
    fn trust_machine(&mut self, challenge: &str) -> Result<(), ClientError> {
        self.calls.push(Call::Trust(challenge.into()));
        Ok(())
    }
}

impl Drop for Smsotpd {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(
                self.starts.is_empty() && self.answers.is_empty() && self.numbers.is_empty(),
                "unused daemon replies"
            );
        }
    }
}

#[derive(Default)]
struct Lines(Vec<String>);
impl Log for Lines {
    fn warn(&mut self, text: &str) {
        self.0.push(format!("warn: {text}"));
    }
    fn debug(&mut self, text: &str) {
        self.0.push(format!("debug: {text}"));
    }
}

fn items() -> Items {
    Items {
        user: "alice".into(),
        context: LoginContext {
            service: "login".into(),
            rhost: "192.0.2.9".into(),
            tty: "ssh".into(),
            auth_info: String::new(),
        },
    }
}

struct Run {
    outcome: Outcome,
    code: P,
    said: Vec<Said>,
    calls: Vec<Call>,
    log: Vec<String>,
}

fn run_with(user: User, daemon: Smsotpd, options: Options) -> Run {
    run_items(user, daemon, options, &items())
}

fn run_items(mut user: User, mut daemon: Smsotpd, options: Options, items: &Items) -> Run {
    let mut log = Lines::default();
    let final_message = options.final_message_for(&items.context.service);
    let outcome = Flow {
        prompter: &mut user,
        daemon: &mut daemon,
        log: &mut log,
        options: &options,
        silent: false,
        final_message,
    }
    .run(items);
    let code = pam_code(&outcome, options.fail_mode);
    Run { outcome, code, said: std::mem::take(&mut user.said), calls: std::mem::take(&mut daemon.calls), log: log.0 }
}

fn run(user: User, daemon: Smsotpd) -> Run {
    run_with(user, daemon, Options::default())
}

fn sent() -> Said {
    Said::Info("A login code is on its way by SMS to ******1234.".into())
}
fn prompt() -> Said {
    Said::Prompt("SMS code: ".into())
}

#[test]
fn correct_code() {
    let r = run(User::typing(&[b" 123456 "]), Smsotpd::code_sent().then(Status::Accepted, 3));
    assert_eq!(r.outcome, Outcome::Accepted);
    assert_eq!(r.code, P::PAM_SUCCESS);
    assert_eq!(r.said, vec![sent(), prompt()]);
    // Empty values (no auth_info here) are not sent.
    let ctx = vec![
        ("rhost".to_string(), "192.0.2.9".to_string()),
        ("service".into(), "login".into()),
        ("tty".into(), "ssh".into()),
    ];
    assert_eq!(r.calls, vec![Call::Start("alice".into(), ctx), Call::Check("c1".into(), "123456".into())]);
}

#[test]
fn wrong_three_times() {
    let r = run(
        User::typing(&[b"111111", b"222222", b"333333"]),
        Smsotpd::code_sent().then(Status::Wrong, 2).then(Status::Wrong, 1).then(Status::TooManyTries, 0),
    );
    assert_eq!(r.code, P::PAM_MAXTRIES);
    assert_eq!(
        r.said,
        vec![
            sent(),
            prompt(),
            Said::Error("Wrong code. 2 tries left.".into()),
            prompt(),
            Said::Error("Wrong code. 1 try left.".into()),
            prompt(),
            Said::Error("Too many wrong codes.".into())
        ]
    );
}

#[test]
fn empty_answer_asks_for_a_resend() {
    let r = run(
        User::typing(&[b"", b"  ", b"654321"]),
        Smsotpd::code_sent().then(Status::Resent, 3).then(Status::ResendRefused, 2).then(Status::Accepted, 2),
    );
    assert_eq!(r.code, P::PAM_SUCCESS);
    assert_eq!(
        r.said,
        vec![
            sent(),
            prompt(),
            Said::Info("A new code is on its way by SMS to ******1234.".into()),
            prompt(),
            Said::Error("A new code cannot be sent yet; enter the code you received. 2 tries left.".into()),
            prompt()
        ]
    );
    assert_eq!(r.calls[1..3], [Call::Resend("c1".into()), Call::Resend("c1".into())]);
}

#[test]
fn anything_but_ascii_digits_stays_in_the_module() {
    let long = vec![b'7'; 4096];
    let inputs: Vec<&[u8]> = vec![
        "１２３４５６".as_bytes(),
        "١٢٣٤٥٦".as_bytes(),
        b"12a456",
        b"hunter2",
        b"12\x00456",
        &[0xff, 0xfe, 0x31],
        &long,
    ];
    let n = inputs.len();
    let mut daemon = Smsotpd::code_sent();
    for i in 0..n {
        daemon = daemon.then(if i + 1 == n { Status::TooManyTries } else { Status::Wrong }, 1);
    }
    let r = run(User::typing(&inputs), daemon);
    assert_eq!(r.code, P::PAM_MAXTRIES);
    for call in &r.calls[1..] {
        assert_eq!(call, &Call::Check("c1".into(), String::new()), "the typed text is never sent");
    }
}

#[test]
fn classify_inputs() {
    assert_eq!(classify(b""), Reply::Empty);
    assert_eq!(classify(b" \t\r\n"), Reply::Empty);
    assert_eq!(classify(b" 0123 \n"), Reply::Digits(Zeroizing::new("0123".into())));
    assert_eq!(classify("１２３".as_bytes()), Reply::Other);
    assert_eq!(classify(b"12 34"), Reply::Other);
    assert_eq!(classify(&[b'1'; 17]), Reply::Other);
}

#[test]
fn expired_code() {
    let r = run(User::typing(&[b"123456"]), Smsotpd::code_sent().then(Status::Expired, 0));
    assert_eq!(r.code, P::PAM_AUTH_ERR);
    assert_eq!(r.said.last(), Some(&Said::Error("The code has expired. Log in again to get a new one.".into())));
}

#[test]
fn locked_out_at_start_and_during() {
    let r = run(User::default(), Smsotpd::starting(Action::LockedOut));
    assert_eq!(r.code, P::PAM_MAXTRIES);
    assert_eq!(r.said, vec![Said::Error(text::LOCKED.into())]);
    let r = run(User::typing(&[b"1"]), Smsotpd::code_sent().then(Status::LockedOut, 0));
    assert_eq!(r.code, P::PAM_MAXTRIES);
}

#[test]
fn policy_answers() {
    assert_eq!(run(User::default(), Smsotpd::starting(Action::Allow)).code, P::PAM_SUCCESS);
    let r = run(User::default(), Smsotpd::starting(Action::Ignore));
    assert_eq!((r.code, r.said.len()), (P::PAM_IGNORE, 0));
    let r = run(User::default(), Smsotpd::starting(Action::Deny));
    assert_eq!(r.code, P::PAM_PERM_DENIED);
}

#[test]
fn answers_this_module_cannot_read_fail_closed_in_any_mode() {
    // A newer (or broken) daemon: the proxy could not read its answer.
    let safe = Options { fail_mode: FailMode::Safe, ..Options::default() };
    let protocol = || ClientError::Protocol("unknown Action \"let-me-in\"".into());
    let r = run_with(User::default(), Smsotpd::failing(protocol()), safe.clone());
    assert_eq!(r.code, P::PAM_AUTHINFO_UNAVAIL, "never IGNORE: the daemon is there");
    assert!(r.log[0].contains("does not understand"), "{:?}", r.log);
    let r = run_with(User::typing(&[b"123456"]), Smsotpd::code_sent().then_err(protocol()), safe);
    assert_eq!(r.code, P::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(r.calls.last(), Some(&Call::Cancel("c1".into())));
}

#[test]
fn daemon_unreachable_by_fail_mode() {
    let secure = run(User::default(), Smsotpd::failing(ClientError::Unreachable("no socket".into())));
    assert_eq!(secure.code, P::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(secure.said, vec![Said::Error(text::UNAVAILABLE.into())]);
    let safe_opts = Options { fail_mode: FailMode::Safe, ..Options::default() };
    let safe =
        run_with(User::default(), Smsotpd::failing(ClientError::Unreachable("no socket".into())), safe_opts.clone());
    assert_eq!(safe.code, P::PAM_IGNORE);
    assert!(safe.log[0].contains("fail_mode=safe"), "{:?}", safe.log);
    // An impostor on the bus is never "unreachable", whatever the fail mode.
    let impostor =
        run_with(User::default(), Smsotpd::failing(ClientError::Impostor("uid 1000".into())), safe_opts.clone());
    assert_eq!(impostor.code, P::PAM_AUTHINFO_UNAVAIL);
    // Losing the daemon mid-login fails closed in safe mode too.
    let lost = run_with(
        User::typing(&[b"123456"]),
        Smsotpd::code_sent().then_err(ClientError::Lost("timeout".into())),
        safe_opts,
    );
    assert_eq!(lost.code, P::PAM_AUTHINFO_UNAVAIL);
}

#[test]
fn daemon_errors() {
    let x = || "x".to_owned();
    let cases: Vec<(DaemonError, P, &str)> = vec![
        (DaemonError::DeliveryFailed(x()), P::PAM_AUTHINFO_UNAVAIL, text::DELIVERY),
        (DaemonError::CheckFailed(x()), P::PAM_AUTHINFO_UNAVAIL, text::CHECK_FAILED),
        (DaemonError::Busy(x()), P::PAM_AUTHINFO_UNAVAIL, text::BUSY),
        (DaemonError::StorageFailed(x()), P::PAM_AUTHINFO_UNAVAIL, text::UNUSABLE),
        (DaemonError::StoreUnavailable(x()), P::PAM_AUTHINFO_UNAVAIL, text::UNAVAILABLE),
        (DaemonError::RateLimited(x()), P::PAM_AUTH_ERR, text::RATE_LIMITED),
        (DaemonError::PermissionDenied(x()), P::PAM_AUTHINFO_UNAVAIL, text::UNAVAILABLE),
        (DaemonError::InvalidArgument(x()), P::PAM_AUTHINFO_UNAVAIL, text::UNAVAILABLE),
        (DaemonError::NotEnrolled(x()), P::PAM_AUTHINFO_UNAVAIL, text::UNAVAILABLE),
        (DaemonError::Internal(x()), P::PAM_AUTHINFO_UNAVAIL, text::UNAVAILABLE),
        (DaemonError::ZBus(zbus::Error::InvalidReply), P::PAM_AUTHINFO_UNAVAIL, text::UNAVAILABLE),
    ];
    for (error, code, message) in cases {
        let name = format!("{error:?}");
        let r = run(User::default(), Smsotpd::failing(ClientError::Daemon(error)));
        assert_eq!(r.code, code, "{name}");
        assert_eq!(r.said, vec![Said::Error(message.into())], "{name}");
    }
    // A failed check (Verify) is not a failed send.
    let r = run(
        User::typing(&[b"123456"]),
        Smsotpd::code_sent().then_err(ClientError::Daemon(DaemonError::CheckFailed(x()))),
    );
    assert_eq!(r.code, P::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(r.said.last(), Some(&Said::Error(text::CHECK_FAILED.into())));
    // A send that failed in the background surfaces at the next call.
    let r = run(
        User::typing(&[b"123456"]),
        Smsotpd::code_sent().then_err(ClientError::Daemon(DaemonError::DeliveryFailed(x()))),
    );
    assert_eq!(r.said.last(), Some(&Said::Error(text::DELIVERY.into())));
    let r = run(
        User::typing(&[b"1"]),
        Smsotpd::code_sent().then_err(ClientError::Daemon(DaemonError::UnknownChallenge(x()))),
    );
    assert_eq!(r.code, P::PAM_AUTH_ERR);
}

#[test]
fn conversation_failures_fail_closed_and_cancel() {
    // Esc / Ctrl-D: the application returns no answer.
    let mut user = User::default();
    user.answers.push_back(Ok(None));
    let r = run(user, Smsotpd::code_sent());
    assert_eq!(r.code, P::PAM_CONV_ERR);
    assert_eq!(r.calls.last(), Some(&Call::Cancel("c1".into())));
    let mut user = User::default();
    user.answers.push_back(Err(ConvError));
    assert_eq!(run(user, Smsotpd::code_sent()).code, P::PAM_CONV_ERR);
    let mut user = User::default();
    user.fail_info = true;
    let r = run(user, Smsotpd::code_sent());
    assert_eq!(r.code, P::PAM_CONV_ERR);
}

fn run_silent(mut user: User, mut daemon: Smsotpd) -> (Outcome, Vec<Said>) {
    let mut log = Lines::default();
    let options = Options::default();
    // Even where ending messages would go in a prompt, silence wins.
    let final_message = FinalMessage::Prompt;
    let outcome = Flow {
        prompter: &mut user,
        daemon: &mut daemon,
        log: &mut log,
        options: &options,
        silent: true,
        final_message,
    }
    .run(&items());
    (outcome, std::mem::take(&mut user.said))
}

#[test]
fn an_unenrolled_user_gives_a_number_then_the_code_sent_there() {
    let r = run(
        User::typing(&[b"415 555 0123", b" +1 (415) 555-0123 ", b"123456"]),
        Smsotpd::enrolling()
            .number(Err("write the number with + and the country code, e.g. +14155550123"))
            .number(Ok("******0123"))
            .then(Status::Accepted, 3),
    );
    assert_eq!(r.code, P::PAM_SUCCESS);
    let number = Said::Prompt(text::NUMBER_PROMPT.into());
    assert_eq!(
        r.said,
        vec![
            Said::Info(text::ENROLL_INTRO.into()),
            number.clone(),
            Said::Error(
                "That number cannot be used: write the number with + and the country code, e.g. +14155550123.".into()
            ),
            number,
            Said::Info("A login code is on its way by SMS to ******0123.".into()),
            prompt(),
        ]
    );
    assert_eq!(r.calls[1], Call::Number("c1".into(), "415 555 0123".into()));
    assert_eq!(r.calls[2], Call::Number("c1".into(), "+1 (415) 555-0123".into()), "trimmed, the rest is the daemon's");
    assert_eq!(r.calls[3], Call::Check("c1".into(), "123456".into()));
}

#[test]
fn three_unusable_numbers_end_the_login() {
    let why = "numbers from that country cannot be used here (allowed: +1)";
    let r = run(
        User::typing(&[b"+33612345678", b"+33612345678", b"+33612345678"]),
        Smsotpd::enrolling().number(Err(why)).number(Err(why)).number(Err(why)),
    );
    assert_eq!(r.code, P::PAM_MAXTRIES);
    assert_eq!(r.said.last(), Some(&Said::Error(text::TOO_MANY_NUMBERS.into())));
    assert_eq!(r.calls.last(), Some(&Call::Cancel("c1".into())));
}

#[test]
fn silent_flag_suppresses_messages_not_the_prompt() {
    let (outcome, said) =
        run_silent(User::typing(&[b"1", b"2"]), Smsotpd::code_sent().then(Status::Wrong, 1).then(Status::Accepted, 1));
    assert_eq!(outcome, Outcome::Accepted);
    // The info line is gone, so the prompt itself says where the code went.
    let silent = Said::Prompt("Code sent by SMS to ******1234 (empty answer: a new code). SMS code: ".into());
    assert_eq!(said, vec![silent.clone(), silent.clone()]);
    let (outcome, said) = run_silent(User::typing(&[b"1"]), Smsotpd::code_sent().then(Status::TooManyTries, 0));
    assert_eq!(outcome, Outcome::TooManyTries);
    assert_eq!(said, vec![silent], "no closing prompt under PAM_SILENT");
}

/// As sshd's PAM conversation gets it (service "sshd").
fn run_in_sshd(user: User, daemon: Smsotpd, options: Options) -> Run {
    let mut it = items();
    it.context.service = "sshd".into();
    run_items(user, daemon, options, &it)
}

#[test]
fn in_sshd_the_message_that_ends_a_login_comes_inside_a_last_prompt() {
    // OpenSSH shows PAM messages only with the next prompt.
    let r = run_in_sshd(
        User::typing(&[b"111111", b"222222", b"ignored"]),
        Smsotpd::code_sent().then(Status::Wrong, 1).then(Status::TooManyTries, 0),
        Options::default(),
    );
    assert_eq!(r.code, P::PAM_MAXTRIES, "the answer to the last prompt changes nothing");
    assert_eq!(
        r.said,
        vec![
            sent(),
            prompt(),
            Said::Error("Wrong code. 1 try left.".into()),
            prompt(),
            Said::Prompt("Too many wrong codes. (press Enter) ".into()),
        ]
    );
    assert_eq!(r.calls.len(), 3, "start and two checks; the last answer goes nowhere: {:?}", r.calls);
    // Every ending: policy, lockout, expiry, delivery failure, lost daemon.
    let endings: Vec<(Smsotpd, &str)> = vec![
        (Smsotpd::starting(Action::Deny), text::DENIED),
        (Smsotpd::starting(Action::LockedOut), text::LOCKED),
        (Smsotpd::code_sent().then(Status::Expired, 0), text::EXPIRED),
        (Smsotpd::code_sent().then_err(ClientError::Daemon(DaemonError::DeliveryFailed("x".into()))), text::DELIVERY),
        (Smsotpd::code_sent().then_err(ClientError::Lost("gone".into())), text::UNAVAILABLE),
    ];
    for (daemon, message) in endings {
        let prompts = if message == text::DENIED || message == text::LOCKED { 1 } else { 2 };
        let answers: Vec<&[u8]> = vec![b"123456"; prompts];
        let r = run_in_sshd(User::typing(&answers), daemon, Options::default());
        assert_eq!(r.said.last(), Some(&Said::Prompt(text::final_prompt(message))), "{message}: {:?}", r.said);
    }
    // An admin may choose plain messages (or prompts for another service).
    let options = Options { final_message: Some(FinalMessage::Message), ..Options::default() };
    let r = run_in_sshd(User::typing(&[b"1"]), Smsotpd::code_sent().then(Status::Expired, 0), options);
    assert_eq!(r.said.last(), Some(&Said::Error(text::EXPIRED.into())));
}

#[test]
fn a_chatty_daemon_cannot_loop_forever() {
    let answers: Vec<&[u8]> = vec![b"1"; MAX_ROUNDS];
    let mut daemon = Smsotpd::code_sent();
    for _ in 0..MAX_ROUNDS {
        daemon = daemon.then(Status::Wrong, 5);
    }
    let r = run(User::typing(&answers), daemon);
    assert_eq!(r.code, P::PAM_AUTHINFO_UNAVAIL);
}

#[test]
fn only_two_outcomes_succeed() {
    let all = [
        Outcome::Accepted,
        Outcome::PolicyAllowed,
        Outcome::NotEnrolledAllowed,
        Outcome::PolicyDenied,
        Outcome::Wrong,
        Outcome::TooManyTries,
        Outcome::LockedOut,
        Outcome::Expired,
        Outcome::RateLimited,
        Outcome::Unreachable,
        Outcome::Unavailable,
        Outcome::ConversationFailed,
    ];
    for mode in [FailMode::Secure, FailMode::Safe] {
        let ok: Vec<&Outcome> = all.iter().filter(|o| pam_code(o, mode) == P::PAM_SUCCESS).collect();
        assert_eq!(ok, vec![&Outcome::Accepted, &Outcome::PolicyAllowed]);
        let ignored: Vec<&Outcome> = all.iter().filter(|o| pam_code(o, mode) == P::PAM_IGNORE).collect();
        let want: Vec<&Outcome> = if mode == FailMode::Safe {
            vec![&Outcome::NotEnrolledAllowed, &Outcome::Unreachable]
        } else {
            vec![&Outcome::NotEnrolledAllowed]
        };
        assert_eq!(ignored, want);
    }
}

#[test]
fn trust_offer_yes_and_no() {
    let r = run(User::typing(&[b"123456", b" Yes "]), Smsotpd::code_sent().then(Status::AcceptedOfferTrust, 30));
    assert_eq!(r.code, P::PAM_SUCCESS);
    assert_eq!(
        r.said,
        vec![
            sent(),
            prompt(),
            Said::Prompt("Trust this machine for 30 days? [y/N] ".into()),
            Said::Info("This machine is trusted for 30 days.".into())
        ]
    );
    assert_eq!(r.calls.last(), Some(&Call::Trust("c1".into())));
    for no in [&b""[..], b"n", b"yes please", b"ja"] {
        let r = run(User::typing(&[b"123456", no]), Smsotpd::code_sent().then(Status::AcceptedOfferTrust, 30));
        assert_eq!(r.code, P::PAM_SUCCESS, "the code was right");
        assert!(!r.calls.iter().any(|c| matches!(c, Call::Trust(_))), "{no:?} is not a yes");
    }
    // Even a failed conversation at the question keeps the login.
    let mut user = User::typing(&[b"123456"]);
    user.answers.push_back(Err(ConvError));
    assert_eq!(run(user, Smsotpd::code_sent().then(Status::AcceptedOfferTrust, 30)).code, P::PAM_SUCCESS);
}

// ---- factors ------------------------------------------------------------

#[test]
fn the_app_is_asked_first_and_sms_is_one_letter_away() {
    let r = run(
        User::typing(&[b"s", b"654321"]),
        Smsotpd::all_factors(Factor::Totp).then(Status::Switched, 3).then(Status::Accepted, 3),
    );
    assert_eq!(r.code, P::PAM_SUCCESS);
    assert_eq!(
        r.said,
        vec![
            Said::Prompt("Authenticator app code (or 's' for SMS, 'r' for a recovery code): ".into()),
            sent(),
            Said::Prompt("SMS code (or 't' for your authenticator app, 'r' for a recovery code): ".into()),
        ],
        "nothing was said to be sent until SMS was asked for"
    );
    assert_eq!(
        r.calls[1..],
        [Call::Use("c1".into(), Factor::Sms), Call::Check("c1".into(), "654321".into())],
        "the letter itself never reaches CheckCode"
    );
}

#[test]
fn a_recovery_code_leaves_the_module_only_when_shaped_like_one() {
    let r = run(
        User::typing(&[b"R", b"my password", b" abcd-efgh-jkmn "]),
        Smsotpd::all_factors(Factor::Sms).then(Status::Switched, 3).then(Status::Wrong, 2).then(Status::Accepted, 2),
    );
    assert_eq!(r.code, P::PAM_SUCCESS);
    assert_eq!(
        r.calls[1..],
        [
            Call::Use("c1".into(), Factor::Recovery),
            Call::Check("c1".into(), String::new()),
            Call::Check("c1".into(), "abcd-efgh-jkmn".into()),
        ]
    );
    assert!(r.said.contains(&Said::Prompt("Recovery code (or 's' for SMS, 't' for your authenticator app): ".into())));
}

#[test]
fn letters_for_factors_the_user_lacks_are_wrong_answers() {
    // SMS only: 't' is not offered, so it is just a wrong answer.
    let r =
        run(User::typing(&[b"t", b"123456"]), Smsotpd::code_sent().then(Status::Wrong, 2).then(Status::Accepted, 2));
    assert_eq!(r.code, P::PAM_SUCCESS);
    assert_eq!(r.calls[1], Call::Check("c1".into(), String::new()));
    assert!(r.said.contains(&prompt()), "a user with SMS alone sees the plain prompt: {:?}", r.said);
}

#[test]
fn a_switch_that_ends_the_login_is_mapped_like_any_answer() {
    let r = run(User::typing(&[b"t"]), Smsotpd::all_factors(Factor::Sms).then(Status::LockedOut, 0));
    assert_eq!(r.code, P::PAM_MAXTRIES);
    let r = run(User::typing(&[b"t"]), Smsotpd::all_factors(Factor::Sms).then_err(ClientError::Lost("gone".into())));
    assert_eq!(r.code, P::PAM_AUTHINFO_UNAVAIL);
    // "switched" to a typed code is nonsense: closed.
    let r = run(User::typing(&[b"123456"]), Smsotpd::code_sent().then(Status::Switched, 3));
    assert_eq!(r.code, P::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(r.calls.last(), Some(&Call::Cancel("c1".into())));
}

#[test]
fn the_weekly_reminder_comes_only_after_success() {
    let opts = Options { final_message: Some(FinalMessage::Message), ..Options::default() };
    let r =
        run_with(User::typing(&[b"123456"]), Smsotpd::code_sent().reminding().then(Status::Accepted, 3), opts.clone());
    assert_eq!(r.said, vec![sent(), prompt(), Said::Info(text::REMIND.into())]);
    let r = run_with(
        User::typing(&[b"000000", b"123456"]),
        Smsotpd::code_sent().reminding().then(Status::Wrong, 2).then(Status::Accepted, 2),
        opts.clone(),
    );
    assert_eq!(r.said.iter().filter(|s| **s == Said::Info(text::REMIND.into())).count(), 1);
    let r = run_with(User::typing(&[b"000000"]), Smsotpd::code_sent().reminding().then(Status::TooManyTries, 0), opts);
    assert!(!r.said.iter().any(|s| matches!(s, Said::Info(t) if t == text::REMIND)), "never after a failure");
}

#[test]
fn an_enrollment_awaiting_approval_is_refused_with_its_reason() {
    let r = run(
        User::typing(&[b"+14155550123", b"123456"]),
        Smsotpd::enrolling().number(Ok("******0123")).then(Status::AwaitingApproval, 0),
    );
    assert_eq!(r.code, P::PAM_PERM_DENIED);
    assert!(
        r.said
            .iter()
            .any(|s| matches!(s, Said::Error(t) | Said::Prompt(t) if t.contains("administrator must approve"))),
        "{:?}",
        r.said
    );
    let r = run(User::default(), Smsotpd::starting(Action::AwaitingApproval));
    assert_eq!(r.code, P::PAM_PERM_DENIED);
}

#[test]
fn v_asks_for_a_call_with_a_new_code_and_empty_answers_call_again() {
    let mut d = Smsotpd::code_sent().then(Status::Switched, 3).then(Status::ResentByCall, 3).then(Status::Accepted, 3);
    if let Some(Ok(s)) = d.starts.back_mut() {
        s.factors = vec![Factor::Sms, Factor::Voice];
    }
    let r = run(User::typing(&[b"v", b"", b"123456"]), d);
    assert_eq!(r.code, P::PAM_SUCCESS);
    let calling = Said::Info("A call with a new code is on its way to ******1234.".into());
    let voice_prompt = Said::Prompt("Code from the call (or 's' for SMS): ".into());
    assert_eq!(
        r.said,
        vec![
            sent(),
            Said::Prompt("SMS code (or 'v' for a voice call): ".into()),
            calling.clone(),
            voice_prompt.clone(),
            calling,
            voice_prompt,
        ]
    );
    assert_eq!(r.calls[1..3], [Call::Use("c1".into(), Factor::Voice), Call::Resend("c1".into())]);
}
