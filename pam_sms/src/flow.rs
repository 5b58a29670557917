//! The login conversation, in plain Rust over two small traits.
//!
//! The daemon decides everything (whether a code is needed, whether an
//! answer is right, whether a resend is allowed); this only relays and then
//! [`pam_code`] maps the outcome to a PAM result in one place.

use smsotp_proto::{Action, Factor, LoginContext, Status};
use zeroize::Zeroizing;

use crate::options::{FailMode, FinalMessage, Options};

/// Talks to the user (PAM's conversation function).
pub trait Prompter {
    fn info(&mut self, text: &str) -> Result<(), ConvError>;
    fn error(&mut self, text: &str) -> Result<(), ConvError>;
    /// Asks with echo off. `Ok(None)`: the application returned no answer.
    fn prompt_secret(&mut self, text: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ConvError>;
    /// Asks with echo on (a yes/no question).
    fn prompt_visible(&mut self, text: &str) -> Result<Option<String>, ConvError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvError;

/// Talks to smsotpd.
pub trait Daemon {
    fn start_login(&mut self, user: &str, context: &LoginContext) -> Result<Start, ClientError>;
    fn check_code(&mut self, challenge: &str, code: &str) -> Result<Answer, ClientError>;
    /// The number an enrolling user typed; the masked number the code went to.
    fn enroll_number(&mut self, challenge: &str, number: &str) -> Result<String, ClientError>;
    fn resend(&mut self, challenge: &str) -> Result<Answer, ClientError>;
    /// Answers now go to `factor`; for SMS, the masked number.
    fn use_factor(&mut self, challenge: &str, factor: Factor) -> Result<(Answer, String), ClientError>;
    fn cancel(&mut self, challenge: &str);
    fn trust_machine(&mut self, challenge: &str) -> Result<(), ClientError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub action: Action,
    pub challenge: String,
    pub destination: String,
    /// The factors this login may be answered with, the one asked first first.
    pub factors: Vec<Factor>,
    /// After success, say that SMS is the weakest factor.
    pub remind: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: Status,
    /// Tries left; for [`Status::AcceptedOfferTrust`], the days offered.
    pub detail: u32,
}

#[derive(Debug)]
pub enum ClientError {
    /// No daemon: the socket is missing, the name has no owner, no answer.
    Unreachable(String),
    /// Something owns the daemon's name that must not (wrong uid).
    Impostor(String),
    /// The daemon answered with one of the interface's errors.
    Daemon(smsotp_proto::Error),
    /// The daemon stopped answering in the middle of a login.
    Lost(String),
    /// The daemon answered something this module does not understand (a
    /// newer or broken daemon): never a reason to let anyone in.
    Protocol(String),
}

/// Everything the module knows about this login.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Items {
    pub user: String,
    pub context: LoginContext,
}

/// How a login ended, before it becomes a PAM code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The right code.
    Accepted,
    /// The right code enrolled a number that an administrator must approve.
    AwaitingApproval,
    /// The daemon's policy needs no code (and logged that).
    PolicyAllowed,
    /// Not enrolled, and the daemon's config allows that.
    NotEnrolledAllowed,
    PolicyDenied,
    Wrong,
    TooManyTries,
    LockedOut,
    Expired,
    RateLimited,
    /// No daemon at the start of the login.
    Unreachable,
    /// The daemon is there but cannot help (provider, storage, busy, impostor).
    Unavailable,
    ConversationFailed,
}

/// The one mapping from outcomes to PAM results. Only a correct code or a
/// logged policy decision is PAM_SUCCESS; PAM_IGNORE only for an allowed
/// unenrolled user or fail_mode=safe with no daemon.
pub fn pam_code(outcome: &Outcome, fail_mode: FailMode) -> pam::constants::PamResultCode {
    use pam::constants::PamResultCode as P;
    match outcome {
        Outcome::Accepted | Outcome::PolicyAllowed => P::PAM_SUCCESS,
        Outcome::NotEnrolledAllowed => P::PAM_IGNORE,
        Outcome::Unreachable => match fail_mode {
            FailMode::Secure => P::PAM_AUTHINFO_UNAVAIL,
            FailMode::Safe => P::PAM_IGNORE,
        },
        Outcome::PolicyDenied | Outcome::AwaitingApproval => P::PAM_PERM_DENIED,
        Outcome::Wrong | Outcome::Expired | Outcome::RateLimited => P::PAM_AUTH_ERR,
        Outcome::TooManyTries | Outcome::LockedOut => P::PAM_MAXTRIES,
        Outcome::Unavailable => P::PAM_AUTHINFO_UNAVAIL,
        Outcome::ConversationFailed => P::PAM_CONV_ERR,
    }
}

/// What the user typed, classified without keeping more than needed.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// Nothing (after trimming spaces): a request for a new code.
    Empty,
    /// Only ASCII digits (after trimming spaces).
    Digits(Zeroizing<String>),
    /// Anything else; it never leaves the module (it may be a password).
    Other,
}

/// A letter that asks for another factor ('s', 't', 'r'), if it is one of
/// `factors` other than `current`.
pub fn switch_asked(raw: &[u8], factors: &[Factor], current: Factor) -> Option<Factor> {
    let wanted = match raw.trim_ascii() {
        b"s" | b"S" => Factor::Sms,
        b"v" | b"V" => Factor::Voice,
        b"t" | b"T" => Factor::Totp,
        b"r" | b"R" => Factor::Recovery,
        _ => return None,
    };
    (wanted != current && factors.contains(&wanted)).then_some(wanted)
}

/// A typed recovery code, if it has the shape of one (`xxxx-xxxx-xxxx`,
/// letters and digits): only then does it leave the module.
pub fn recovery_shaped(raw: &[u8]) -> Option<Zeroizing<String>> {
    let t = raw.trim_ascii();
    let symbols = t.iter().filter(|b| b.is_ascii_alphanumeric()).count();
    let only = t.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b' '));
    (only && symbols == 12 && t.len() <= 20).then(|| Zeroizing::new(t.iter().map(|&b| char::from(b)).collect()))
}

pub fn classify(raw: &[u8]) -> Reply {
    let trimmed = raw.trim_ascii();
    if trimmed.is_empty() {
        Reply::Empty
    } else if trimmed.len() <= 16 && trimmed.iter().all(u8::is_ascii_digit) {
        Reply::Digits(Zeroizing::new(trimmed.iter().map(|&b| char::from(b)).collect()))
    } else {
        Reply::Other
    }
}

pub const PROMPT: &str = "SMS code: ";
/// A daemon that never says stop cannot keep us looping.
const MAX_ROUNDS: usize = 32;
/// Numbers an enrolling user may type before the login ends.
const NUMBER_TRIES: usize = 3;

pub mod text {
    use smsotp_proto::Factor;

    /// The prompt for `factor`, naming the others the user can switch to.
    pub fn prompt(factor: Factor, factors: &[Factor]) -> String {
        let what = match factor {
            Factor::Sms => "SMS code",
            Factor::Voice => "Code from the call",
            Factor::Totp => "Authenticator app code",
            Factor::Recovery => "Recovery code",
        };
        let others: Vec<&str> = factors
            .iter()
            .filter(|f| **f != factor)
            .map(|f| match f {
                Factor::Sms => "'s' for SMS",
                Factor::Voice => "'v' for a voice call",
                Factor::Totp => "'t' for your authenticator app",
                Factor::Recovery => "'r' for a recovery code",
            })
            .collect();
        if others.is_empty() { format!("{what}: ") } else { format!("{what} (or {}): ", others.join(", ")) }
    }
    pub const REMIND: &str =
        "SMS is the weakest way to sign in. Add an authenticator app with the command: smsotp totp";
    pub const AWAITING_APPROVAL: &str =
        "Your number is confirmed. An administrator must approve it before you can log in with it.";
    pub fn sent(destination: &str) -> String {
        format!("A login code is on its way by SMS to {destination}.")
    }
    pub fn resent(destination: &str) -> String {
        format!("A new code is on its way by SMS to {destination}.")
    }
    pub fn calling(destination: &str) -> String {
        format!("A call with your login code is on its way to {destination}.")
    }
    pub fn calling_again(destination: &str) -> String {
        format!("A call with a new code is on its way to {destination}.")
    }
    pub fn wrong(left: u32) -> String {
        format!("Wrong code. {left} {} left.", if left == 1 { "try" } else { "tries" })
    }
    pub fn resend_refused(left: u32) -> String {
        format!(
            "A new code cannot be sent yet; enter the code you received. {left} {} left.",
            if left == 1 { "try" } else { "tries" }
        )
    }
    /// The prompt under PAM_SILENT (sudo passes it), where the info line
    /// that says where the code went is never shown.
    pub fn silent_prompt(destination: &str, prompt: &str) -> String {
        format!("Code sent by SMS to {destination} (empty answer: a new code). {prompt}")
    }
    pub fn trust_question(days: u32) -> String {
        format!("Trust this machine for {days} days? [y/N] ")
    }
    pub fn trusted(days: u32) -> String {
        format!("This machine is trusted for {days} days.")
    }
    /// The last prompt, which only carries the message that ends the login.
    pub fn final_prompt(message: &str) -> String {
        format!("{message} (press Enter) ")
    }
    pub const TOO_MANY: &str = "Too many wrong codes.";
    pub const ENROLL_INTRO: &str =
        "SMS login is not set up for this account yet. A code will be sent to the mobile number you give.";
    /// Says itself what it wants, for PAM_SILENT too (no intro line there).
    pub const NUMBER_PROMPT: &str = "Mobile number for login codes (+ and country code): ";
    pub fn number_refused(why: &str) -> String {
        format!("That number cannot be used: {why}.")
    }
    pub const TOO_MANY_NUMBERS: &str = "Too many numbers that cannot be used.";
    pub const EXPIRED: &str = "The code has expired. Log in again to get a new one.";
    pub const LOCKED: &str =
        "Too many failed attempts: SMS login is locked for this account. Try again later or ask an administrator.";
    pub const DENIED: &str = "SMS login is not allowed for this login.";
    pub const RATE_LIMITED: &str = "Too many codes were requested for this account. Try again later.";
    pub const DELIVERY: &str = "The login code could not be sent. Try again later.";
    pub const CHECK_FAILED: &str = "The code could not be checked. Try again later.";
    pub const BUSY: &str = "The SMS login service is busy. Try again in a moment.";
    pub const UNUSABLE: &str = "SMS login is unavailable for this account. Contact your administrator.";
    pub const UNAVAILABLE: &str = "The SMS login service is not available.";
}

/// Where the module's own log lines go (syslog in production).
pub trait Log {
    fn warn(&mut self, text: &str);
    fn debug(&mut self, text: &str);
}

pub struct Flow<'a, P: Prompter, D: Daemon, L: Log> {
    pub prompter: &'a mut P,
    pub daemon: &'a mut D,
    pub log: &'a mut L,
    pub options: &'a Options,
    /// PAM_SILENT: no informational or error messages.
    pub silent: bool,
    /// How the message that ends the login is shown (options, service).
    pub final_message: FinalMessage,
}

impl<P: Prompter, D: Daemon, L: Log> Flow<'_, P, D, L> {
    fn say_info(&mut self, text: &str) -> Result<(), ConvError> {
        if self.silent { Ok(()) } else { self.prompter.info(text) }
    }

    fn say_error(&mut self, text: &str) {
        if !self.silent {
            // The outcome is already decided; a failed message changes nothing.
            let _ = self.prompter.error(text);
        }
    }

    /// The message that ends the login: as a message, or inside one last
    /// prompt where the client shows nothing after the last prompt (OpenSSH).
    fn say_final(&mut self, text: &str) {
        if self.silent {
            return;
        }
        match self.final_message {
            FinalMessage::Message => {
                let _ = self.prompter.error(text);
            }
            FinalMessage::Prompt => {
                // Whatever is typed is dropped unread; the outcome is decided.
                let _ = self.prompter.prompt_visible(&text::final_prompt(text));
            }
        }
    }

    /// Runs one login to its outcome.
    pub fn run(&mut self, items: &Items) -> Outcome {
        let start = match self.daemon.start_login(&items.user, &items.context) {
            Ok(s) => s,
            Err(ClientError::Unreachable(why)) => {
                return match self.options.fail_mode {
                    FailMode::Secure => {
                        self.log.warn(&format!("smsotpd is unreachable ({why}); failing closed (fail_mode=secure)"));
                        self.say_final(text::UNAVAILABLE);
                        Outcome::Unreachable
                    }
                    FailMode::Safe => {
                        self.log.warn(&format!(
                            "smsotpd is unreachable ({why}); returning PAM_IGNORE because fail_mode=safe: this login gets no second factor"
                        ));
                        Outcome::Unreachable
                    }
                };
            }
            Err(e) => return self.daemon_failed(e),
        };
        match start.action {
            Action::Code | Action::Enroll | Action::Totp => {}
            Action::AwaitingApproval => {
                self.say_final(text::AWAITING_APPROVAL);
                return Outcome::AwaitingApproval;
            }
            Action::Allow => {
                self.log.debug("smsotpd's policy needs no code for this login");
                return Outcome::PolicyAllowed;
            }
            Action::Ignore => {
                self.log.debug("user not enrolled; smsotpd allows that (PAM_IGNORE)");
                return Outcome::NotEnrolledAllowed;
            }
            Action::Deny => {
                self.say_final(text::DENIED);
                return Outcome::PolicyDenied;
            }
            Action::LockedOut => {
                self.say_final(text::LOCKED);
                return Outcome::LockedOut;
            }
        }
        let challenge = start.challenge;
        let mut destination = if start.action == Action::Enroll {
            match self.enroll(&challenge) {
                Ok(d) => d,
                Err(outcome) => return outcome,
            }
        } else {
            start.destination
        };
        // An enrollment is proven by SMS only.
        let factors =
            if start.action == Action::Enroll || start.factors.is_empty() { vec![Factor::Sms] } else { start.factors };
        let mut factor = match (start.action, factors.first()) {
            (Action::Totp, _) => Factor::Totp,
            (_, Some(Factor::Voice)) => Factor::Voice,
            _ => Factor::Sms,
        };
        let mut announced = false;
        if matches!(factor, Factor::Sms | Factor::Voice) {
            let said = if factor == Factor::Voice { text::calling(&destination) } else { text::sent(&destination) };
            if self.say_info(&said).is_err() {
                self.daemon.cancel(&challenge);
                return Outcome::ConversationFailed;
            }
            announced = true;
        }
        for _ in 0..MAX_ROUNDS {
            let asked = text::prompt(factor, &factors);
            let prompt =
                if self.silent && factor == Factor::Sms { text::silent_prompt(&destination, &asked) } else { asked };
            let raw = match self.prompter.prompt_secret(&prompt) {
                Ok(Some(raw)) => raw,
                Ok(None) | Err(ConvError) => {
                    self.log.debug("the conversation returned no answer; cancelling");
                    self.daemon.cancel(&challenge);
                    return Outcome::ConversationFailed;
                }
            };
            let wanted = switch_asked(&raw, &factors, factor);
            let answer = match (wanted, factor, classify(&raw)) {
                (Some(w), _, _) => self.daemon.use_factor(&challenge, w).map(|(a, to)| {
                    if !to.is_empty() {
                        destination = to;
                    }
                    a
                }),
                (None, Factor::Sms | Factor::Voice, Reply::Empty) => self.daemon.resend(&challenge),
                // Only what looks like a recovery code leaves the module.
                (None, Factor::Recovery, _) => match recovery_shaped(&raw) {
                    Some(code) => self.daemon.check_code(&challenge, &code),
                    None => self.daemon.check_code(&challenge, ""),
                },
                (None, _, Reply::Digits(code)) => self.daemon.check_code(&challenge, &code),
                // The daemon counts "" as wrong; the typed text stays here.
                (None, _, Reply::Other | Reply::Empty) => self.daemon.check_code(&challenge, ""),
            };
            drop(raw);
            let answer = match answer {
                Ok(a) => a,
                Err(e) => {
                    if matches!(e, ClientError::Protocol(_)) {
                        self.daemon.cancel(&challenge);
                    }
                    return self.daemon_failed(e);
                }
            };
            match answer.status {
                Status::Accepted => {
                    self.remind(start.remind);
                    return Outcome::Accepted;
                }
                Status::AcceptedOfferTrust => {
                    self.offer_trust(&challenge, answer.detail);
                    self.remind(start.remind);
                    return Outcome::Accepted;
                }
                Status::Switched => {
                    let Some(w) = wanted else {
                        self.log.warn("smsotpd answered \"switched\" to a code; failing closed");
                        self.daemon.cancel(&challenge);
                        return Outcome::Unavailable;
                    };
                    factor = w;
                    let said = match factor {
                        // A call always carries a new code.
                        Factor::Voice => Some(text::calling_again(&destination)),
                        Factor::Sms if !announced => Some(text::sent(&destination)),
                        _ => None,
                    };
                    if let Some(said) = said {
                        if self.say_info(&said).is_err() {
                            self.daemon.cancel(&challenge);
                            return Outcome::ConversationFailed;
                        }
                        announced = true;
                    }
                }
                Status::ResentByCall => {
                    // Asked for, or the daemon's failover to a call.
                    factor = Factor::Voice;
                    if self.say_info(&text::calling_again(&destination)).is_err() {
                        self.daemon.cancel(&challenge);
                        return Outcome::ConversationFailed;
                    }
                }
                Status::AwaitingApproval => {
                    self.say_final(text::AWAITING_APPROVAL);
                    return Outcome::AwaitingApproval;
                }
                Status::Wrong => self.say_error(&text::wrong(answer.detail)),
                Status::ResendRefused => self.say_error(&text::resend_refused(answer.detail)),
                Status::Resent => {
                    if self.say_info(&text::resent(&destination)).is_err() {
                        self.daemon.cancel(&challenge);
                        return Outcome::ConversationFailed;
                    }
                }
                Status::TooManyTries => {
                    self.say_final(text::TOO_MANY);
                    return Outcome::TooManyTries;
                }
                Status::Expired => {
                    self.say_final(text::EXPIRED);
                    return Outcome::Expired;
                }
                Status::LockedOut => {
                    self.say_final(text::LOCKED);
                    return Outcome::LockedOut;
                }
            }
        }
        self.log.warn("smsotpd kept the login going for too many rounds; failing closed");
        self.daemon.cancel(&challenge);
        Outcome::Unavailable
    }

    /// Enrollment at login: asks for the number (three tries) until the
    /// daemon takes one; the masked number the code went to.
    fn enroll(&mut self, challenge: &str) -> Result<String, Outcome> {
        if self.say_info(text::ENROLL_INTRO).is_err() {
            self.daemon.cancel(challenge);
            return Err(Outcome::ConversationFailed);
        }
        for _ in 0..NUMBER_TRIES {
            let typed = match self.prompter.prompt_visible(text::NUMBER_PROMPT) {
                Ok(Some(t)) => t,
                Ok(None) | Err(ConvError) => {
                    self.daemon.cancel(challenge);
                    return Err(Outcome::ConversationFailed);
                }
            };
            match self.daemon.enroll_number(challenge, typed.trim()) {
                Ok(destination) => return Ok(destination),
                // The daemon says what is wrong with the number (never the
                // number itself); it counts as a wrong answer.
                Err(ClientError::Daemon(smsotp_proto::Error::InvalidArgument(why))) => {
                    let why = why.strip_prefix("invalid argument: ").unwrap_or(&why);
                    let why: String = why.chars().take(200).collect();
                    self.say_error(&text::number_refused(&why));
                }
                Err(e) => return Err(self.daemon_failed(e)),
            }
        }
        self.daemon.cancel(challenge);
        self.say_final(text::TOO_MANY_NUMBERS);
        Err(Outcome::TooManyTries)
    }

    /// After a right answer, at most weekly for users with SMS alone: shown
    /// like the message that ends a login, so that ssh users see it too.
    fn remind(&mut self, due: bool) {
        if !due || self.silent {
            return;
        }
        match self.final_message {
            FinalMessage::Message => {
                let _ = self.prompter.info(text::REMIND);
            }
            FinalMessage::Prompt => {
                let _ = self.prompter.prompt_visible(&text::final_prompt(text::REMIND));
            }
        }
    }

    /// The code was right; whatever happens here, the login succeeds.
    fn offer_trust(&mut self, challenge: &str, days: u32) {
        let yes = match self.prompter.prompt_visible(&text::trust_question(days)) {
            Ok(Some(a)) => matches!(a.trim().to_ascii_lowercase().as_str(), "y" | "yes"),
            _ => false,
        };
        if !yes {
            return;
        }
        match self.daemon.trust_machine(challenge) {
            Ok(()) => {
                let _ = self.say_info(&text::trusted(days));
            }
            Err(e) => self.log.warn(&format!("could not record trust for this machine: {e:?}")),
        }
    }

    fn daemon_failed(&mut self, e: ClientError) -> Outcome {
        use smsotp_proto::Error as E;
        match e {
            ClientError::Daemon(error) => {
                let (message, outcome) = match &error {
                    E::RateLimited(_) => (text::RATE_LIMITED, Outcome::RateLimited),
                    E::DeliveryFailed(_) => (text::DELIVERY, Outcome::Unavailable),
                    E::CheckFailed(_) => (text::CHECK_FAILED, Outcome::Unavailable),
                    E::Busy(_) => (text::BUSY, Outcome::Unavailable),
                    E::StorageFailed(_) => (text::UNUSABLE, Outcome::Unavailable),
                    E::StoreUnavailable(_) => (text::UNAVAILABLE, Outcome::Unavailable),
                    E::UnknownChallenge(_) => (text::EXPIRED, Outcome::Expired),
                    E::PermissionDenied(_)
                    | E::InvalidArgument(_)
                    | E::NotEnrolled(_)
                    | E::Internal(_)
                    | E::ZBus(_) => (text::UNAVAILABLE, Outcome::Unavailable),
                };
                let name = error.short_name().unwrap_or("D-Bus error");
                let detail = match &error {
                    E::ZBus(z) => z.to_string(),
                    other => other.text().to_owned(),
                };
                self.log.warn(&format!("smsotpd: {name}: {}", detail.chars().take(200).collect::<String>()));
                self.say_final(message);
                outcome
            }
            ClientError::Protocol(why) => {
                let why: String = why.chars().take(200).collect();
                self.log.warn(&format!(
                    "smsotpd answered something this module does not understand ({why}); failing closed"
                ));
                self.say_final(text::UNAVAILABLE);
                Outcome::Unavailable
            }
            ClientError::Impostor(why) => {
                self.log.warn(&format!("refusing to trust the D-Bus peer: {why}"));
                self.say_final(text::UNAVAILABLE);
                Outcome::Unavailable
            }
            ClientError::Unreachable(why) | ClientError::Lost(why) => {
                self.log.warn(&format!("lost smsotpd during the login ({why}); failing closed"));
                self.say_final(text::UNAVAILABLE);
                Outcome::Unavailable
            }
        }
    }
}

#[cfg(test)]
#[path = "flow_tests.rs"]
mod tests;
