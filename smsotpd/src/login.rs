//! The login and admin operations, independent of D-Bus.
//!
//! [`Daemon`] owns the challenges, the store and the provider. Everything
//! that decides an outcome happens under one lock, so parallel guesses are
//! counted exactly and a code is consumed once; the lock is never held while
//! a provider is called.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::audit::{self, Event};
use crate::challenge::{self, AfterWrong, Challenge, ChallengeId, Challenges, Limits, ResendRefused, Secret};
use crate::clock::{SharedClock, Tick};
use crate::config::{Config, Unenrolled};
use crate::machine;
use crate::names::{PhoneNumber, UserName, mask_last_digits, sanitize_for_log};
use crate::policy::{self, Facts};
use crate::provider::{Outgoing, Provider, ProviderError, RemoteVerdict};
use crate::store::{Store, StoreError, UserRecord};
use crate::template::Fields;
use crate::trust::{self, TrustPlan};

/// What the module should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Prompt for the code that was just sent.
    Code,
    /// Policy decided no code is needed (logged).
    Allow,
    /// Not enrolled and the config says so is fine: PAM_IGNORE.
    Ignore,
    /// Policy refuses this login.
    Deny,
    /// Too many failures: refused until the lockout ends or an admin lifts it.
    LockedOut,
}

impl Action {
    pub fn wire(self) -> &'static str {
        match self {
            Action::Code => "code",
            Action::Allow => "allow",
            Action::Ignore => "ignore",
            Action::Deny => "deny",
            Action::LockedOut => "locked-out",
        }
    }
}

/// The result of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Accepted,
    /// Right code; ask the user whether to trust the machine (detail = days).
    AcceptedOfferTrust,
    Wrong,
    Resent,
    ResendRefused,
    TooManyTries,
    Expired,
    LockedOut,
}

impl Status {
    pub fn wire(self) -> &'static str {
        match self {
            Status::Accepted => "accepted",
            Status::AcceptedOfferTrust => "accepted-offer-trust",
            Status::Wrong => "wrong",
            Status::Resent => "resent",
            Status::ResendRefused => "resend-refused",
            Status::TooManyTries => "too-many-tries",
            Status::Expired => "expired",
            Status::LockedOut => "locked-out",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub action: Action,
    /// Empty unless `action` is `Code`.
    pub challenge: String,
    /// The masked destination, e.g. `******1234`; empty unless `Code`.
    pub destination: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: Status,
    /// Tries left; for `AcceptedOfferTrust`, the days of trust offered.
    pub attempts_left: u32,
}

/// Internal failures; `error.rs` turns them into D-Bus errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    PermissionDenied(String),
    InvalidArgument(String),
    UnknownChallenge,
    Busy,
    RateLimited,
    DeliveryFailed(String),
    /// The user's record cannot be read or written: no login for them.
    Storage(String),
    NotEnrolled(String),
    Internal(String),
}

impl std::fmt::Display for LoginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginError::PermissionDenied(s) => write!(f, "permission denied: {s}"),
            LoginError::InvalidArgument(s) => write!(f, "invalid argument: {s}"),
            LoginError::UnknownChallenge => f.write_str("no such challenge for this connection"),
            LoginError::Busy => f.write_str("too many logins are pending; try again shortly"),
            LoginError::RateLimited => f.write_str("too many codes were sent to this account recently"),
            LoginError::DeliveryFailed(s) => write!(f, "the code could not be sent: {s}"),
            LoginError::Storage(s) => write!(f, "state storage failed: {s}"),
            LoginError::NotEnrolled(u) => write!(f, "{u} is not enrolled"),
            LoginError::Internal(s) => write!(f, "internal error: {s}"),
        }
    }
}

/// What PAM told us about the login.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginContext {
    pub service: String,
    pub rhost: String,
    pub tty: String,
    /// sshd's SSH_AUTH_INFO_0 (with ExposeAuthInfo yes), if any.
    pub auth_info: String,
}

impl LoginContext {
    /// Reads the `a{ss}` the module sends. Unknown keys are ignored so a
    /// newer module works with an older daemon; sizes are capped.
    pub fn from_wire(map: &HashMap<String, String>) -> Result<Self, LoginError> {
        if map.len() > 32 {
            return Err(LoginError::InvalidArgument("too many context entries".into()));
        }
        let get = |key: &str, max: usize| -> Result<String, LoginError> {
            match map.get(key) {
                Some(v) if v.len() > max => {
                    Err(LoginError::InvalidArgument(format!("context {key} is longer than {max} bytes")))
                }
                Some(v) => Ok(v.clone()),
                None => Ok(String::new()),
            }
        };
        Ok(LoginContext {
            service: get("service", 256)?,
            rhost: get("rhost", 1024)?,
            tty: get("tty", 256)?,
            auth_info: get("auth_info", 16 * 1024)?,
        })
    }
}

/// Per-user bookkeeping that need not survive a restart.
#[derive(Debug, Default)]
struct Volatile {
    /// When each SMS went out in the last hour, per user name.
    sends: HashMap<String, VecDeque<Tick>>,
    /// Consecutive failures of names without a record (decoys), so that
    /// they lock out exactly like enrolled users do.
    decoy_failures: HashMap<String, (u32, u64)>,
}

const VOLATILE_CAP: usize = 50_000;

/// What a resend will do once the lock is released.
enum Resend {
    Decoy { attempts_left: u32, wait: Duration },
    Local(Zeroizing<String>),
    Remote,
}

/// Trust offered to a user after a right code (policy.ask_user).
struct Offer {
    owner: String,
    user: UserName,
    plan: TrustPlan,
    until: Tick,
}

struct State {
    challenges: Challenges,
    offers: HashMap<ChallengeId, Offer>,
    volatile: Volatile,
    /// Running average of how long a real send takes; decoys wait as long.
    send_latency: Duration,
}

pub struct Daemon<P> {
    cfg: Config,
    hostname: String,
    store: Store,
    provider: P,
    clock: SharedClock,
    decoy_key: [u8; 32],
    state: Mutex<State>,
}

/// Who is asking, as established by the transport (never by arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    /// The D-Bus unique name (or a p2p connection's stand-in).
    pub connection: String,
}

impl Caller {
    pub fn require_root(&self, what: &str) -> Result<(), LoginError> {
        if self.uid == 0 {
            Ok(())
        } else {
            log::warn!("refused {what} from uid {} ({})", self.uid, self.connection);
            Err(LoginError::PermissionDenied(format!("{what} is for root only")))
        }
    }
}

/// One trust record, for `smsotpctl trust list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustInfo {
    pub machine: String,
    pub class: String,
    pub service: String,
    pub created: u64,
    pub expires: u64,
}

/// A user's state for `smsotpctl show` and `list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub user: String,
    pub destination: String,
    pub failures: u32,
    pub locked_until: u64,
    /// "ok", "locked" or "unusable".
    pub state: String,
    pub trusted_machines: u32,
}

impl<P: Provider> Daemon<P> {
    pub fn new(
        cfg: Config,
        hostname: String,
        store: Store,
        provider: P,
        clock: SharedClock,
    ) -> Result<Self, StoreError> {
        let decoy_key = store.secret_key("decoy.key")?;
        let max = cfg.codes.max_pending;
        Ok(Daemon {
            cfg,
            hostname,
            store,
            provider,
            clock,
            decoy_key,
            state: Mutex::new(State {
                challenges: Challenges::new(max),
                offers: HashMap::new(),
                volatile: Volatile::default(),
                send_latency: Duration::from_millis(400),
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn provider(&self) -> &P {
        &self.provider
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves counters as they were;
        // carrying on is safer than refusing every login afterwards.
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn limits(&self) -> Limits {
        Limits {
            expiry: self.cfg.codes.expiry,
            attempts: self.cfg.codes.attempts,
            resend_interval: self.cfg.codes.resend_interval,
            resends: self.cfg.codes.resends,
        }
    }

    fn deadline(&self) -> Tick {
        self.clock.tick().saturating_add(self.cfg.codes.deadline)
    }

    /// Same masked digits for the same unknown name every time, and
    /// unpredictable without the daemon's key.
    fn decoy_destination(&self, user: &str) -> String {
        #[allow(deprecated)] // SipHash-2-4 is a keyed PRF, which is all this needs
        let mut h = std::hash::SipHasher::new_with_keys(
            u64::from_le_bytes(self.decoy_key[..8].try_into().unwrap_or_default()),
            u64::from_le_bytes(self.decoy_key[8..16].try_into().unwrap_or_default()),
        );
        std::hash::Hasher::write(&mut h, user.as_bytes());
        let n = std::hash::Hasher::finish(&h) % 10_000;
        mask_last_digits(&format!("{n:04}"))
    }

    fn sweep(&self, state: &mut State) {
        for c in state.challenges.sweep(self.clock.tick()) {
            audit::event(Event::Expired)
                .field("user", &c.user)
                .field("service", &c.service)
                .field("rhost", &c.rhost)
                .log();
        }
    }

    /// Records an SMS to `user` if the hourly budget allows it.
    fn take_send_budget(&self, state: &mut State, user: &str) -> bool {
        let now = self.clock.tick();
        let hour = Duration::from_secs(3600);
        if state.volatile.sends.len() >= VOLATILE_CAP {
            state.volatile.sends.retain(|_, q| q.back().is_some_and(|t| t.saturating_add(hour) > now));
        }
        let q = state.volatile.sends.entry(user.to_owned()).or_default();
        while q.front().is_some_and(|t| t.saturating_add(hour) <= now) {
            q.pop_front();
        }
        if q.len() >= self.cfg.codes.sms_per_user_per_hour as usize {
            return false;
        }
        q.push_back(now);
        true
    }

    fn render(&self, code: &str, service: &str) -> Zeroizing<String> {
        self.cfg.template.render(&Fields {
            code,
            host: &self.hostname,
            service: if service.is_empty() { "login" } else { service },
            minutes: self.cfg.codes.expiry.as_secs().div_ceil(60),
        })
    }

    /// Starts a login for `user`: policy first, then enrollment, lockout,
    /// trust, and finally a code.
    pub async fn start_login(&self, caller: &Caller, user: &str, ctx: &LoginContext) -> Result<Start, LoginError> {
        caller.require_root("StartLogin")?;
        let parsed = UserName::parse(user);
        let origin = policy::parse_rhost(&ctx.rhost);
        let groups = parsed.as_ref().map(user_groups).unwrap_or_default();
        let decision = self.cfg.policy.decide(&Facts { user, service: &ctx.service, origin: &origin, groups: &groups });
        let no_code = |action| Ok(Start { action, challenge: String::new(), destination: String::new() });
        let line =
            |e: Event| audit::event(e).field("user", user).field("service", &ctx.service).field("rhost", &ctx.rhost);
        match decision.action {
            policy::Action::Deny => {
                line(Event::PolicyDeny).field("rule", decision.source()).log();
                return no_code(Action::Deny);
            }
            policy::Action::Skip => {
                line(Event::PolicySkip).field("rule", decision.source()).log();
                return no_code(Action::Allow);
            }
            policy::Action::Always | policy::Action::Trust { .. } => {}
        }
        let (record, name) = {
            let mut state = self.lock();
            self.sweep(&mut state);
            if state.challenges.len() >= self.cfg.codes.max_pending {
                line(Event::Busy).log();
                return Err(LoginError::Busy);
            }
            match parsed {
                Err(_) => {
                    line(Event::UnknownUser).field("reason", "not a valid user name").log();
                    (None, None)
                }
                Ok(name) => match self.store.load(&name) {
                    Ok(r) => (r, Some(name)),
                    Err(e) => {
                        log::error!(
                            "{e}; {name} cannot log in until an administrator re-enrolls them (smsotpctl enroll)"
                        );
                        line(Event::RecordUnusable).log();
                        return Err(LoginError::Storage(format!("the record of {name} is unusable")));
                    }
                },
            }
        };
        let Some((record, name)) = record.zip(name.clone()) else {
            return self.start_unenrolled(caller, user, name.is_some(), ctx).await;
        };
        let now = self.clock.unix_now();
        if record.locked_until > now {
            line(Event::StillLockedOut).log();
            return no_code(Action::LockedOut);
        }
        let mut plan = None;
        if let policy::Action::Trust { days } = decision.action {
            let machine = machine::identify(&ctx.service, &ctx.rhost, &ctx.auth_info);
            if let Some(t) = trust::find(&record.trust, &machine, &ctx.service, now) {
                line(Event::Trusted)
                    .field("machine", &machine.id)
                    .field("until", &crate::clock::format_utc(t.expires))
                    .field("rule", decision.source())
                    .log();
                return no_code(Action::Allow);
            }
            plan = Some(TrustPlan { machine, service: ctx.service.clone(), days });
        }
        self.send_new_code(caller, name.as_str(), &record.phone, ctx, plan).await
    }

    async fn start_unenrolled(
        &self,
        caller: &Caller,
        user: &str,
        valid_name: bool,
        ctx: &LoginContext,
    ) -> Result<Start, LoginError> {
        let exists = valid_name && nix::unistd::User::from_name(user).ok().flatten().is_some();
        if valid_name {
            audit::event(if exists { Event::NotEnrolled } else { Event::UnknownUser })
                .field("user", user)
                .field("service", &ctx.service)
                .field("rhost", &ctx.rhost)
                .log();
        }
        if self.cfg.unenrolled == Unenrolled::Allow {
            audit::event(Event::UnenrolledAllowed)
                .field("user", user)
                .field("service", &ctx.service)
                .field("rhost", &ctx.rhost)
                .log();
            return Ok(Start { action: Action::Ignore, challenge: String::new(), destination: String::new() });
        }
        // Deny: the same prompts as a real login, with a code nobody has.
        let (id, destination, wait) = {
            let mut state = self.lock();
            let now = self.clock.unix_now();
            if state.volatile.decoy_failures.get(user).is_some_and(|&(_, until)| until > now) {
                return Ok(Start { action: Action::LockedOut, challenge: String::new(), destination: String::new() });
            }
            if !self.take_send_budget(&mut state, user) {
                return Err(LoginError::RateLimited);
            }
            let id = ChallengeId::new().map_err(|e| LoginError::Internal(e.to_string()))?;
            let destination = self.decoy_destination(user);
            let c = Challenge::new(
                user.to_owned(),
                caller.connection.clone(),
                Secret::Decoy,
                destination.clone(),
                ctx.service.clone(),
                ctx.rhost.clone(),
                self.clock.tick(),
                self.limits(),
            );
            state.challenges.insert(id.clone(), c).map_err(|_| LoginError::Busy)?;
            (id, destination, state.send_latency)
        };
        // A real send takes a network round trip; so does a decoy.
        self.clock.sleep(wait).await;
        Ok(Start { action: Action::Code, challenge: id.as_str().to_owned(), destination })
    }

    async fn send_new_code(
        &self,
        caller: &Caller,
        user: &str,
        phone: &PhoneNumber,
        ctx: &LoginContext,
        plan: Option<TrustPlan>,
    ) -> Result<Start, LoginError> {
        let id = ChallengeId::new().map_err(|e| LoginError::Internal(e.to_string()))?;
        let code = if self.provider.makes_codes() {
            None
        } else {
            Some(challenge::new_code(self.cfg.codes.length).map_err(|e| LoginError::Internal(e.to_string()))?)
        };
        {
            let mut state = self.lock();
            if !self.take_send_budget(&mut state, user) {
                audit::event(Event::RateLimited)
                    .field("user", user)
                    .field("service", &ctx.service)
                    .field("rhost", &ctx.rhost)
                    .log();
                return Err(LoginError::RateLimited);
            }
            if state.challenges.len() >= self.cfg.codes.max_pending {
                return Err(LoginError::Busy);
            }
        }
        let reference = self.deliver(user, phone, code.as_deref().map(String::as_str), ctx, Event::CodeSent).await?;
        let secret = match code {
            Some(c) => Secret::Local(c),
            None => Secret::Remote { reference },
        };
        let mut c = Challenge::new(
            user.to_owned(),
            caller.connection.clone(),
            secret,
            phone.masked(),
            ctx.service.clone(),
            ctx.rhost.clone(),
            self.clock.tick(),
            self.limits(),
        );
        c.on_success = plan;
        self.lock().challenges.insert(id.clone(), c).map_err(|_| LoginError::Busy)?;
        Ok(Start { action: Action::Code, challenge: id.as_str().to_owned(), destination: phone.masked() })
    }

    /// Sends one SMS and logs the outcome either way.
    async fn deliver(
        &self,
        user: &str,
        phone: &PhoneNumber,
        code: Option<&str>,
        ctx: &LoginContext,
        sent_event: Event,
    ) -> Result<String, LoginError> {
        let body = self.render(code.unwrap_or_default(), &ctx.service);
        let msg = Outgoing { to: phone, body: &body, validity: self.cfg.codes.expiry };
        let started = self.clock.tick();
        let result = self.provider.send(&msg, self.deadline()).await;
        let took = started.until(self.clock.tick());
        match result {
            Ok(reference) => {
                {
                    let mut state = self.lock();
                    state.send_latency = (state.send_latency * 3 + took) / 4;
                }
                audit::event(sent_event)
                    .field("user", user)
                    .field("service", &ctx.service)
                    .field("rhost", &ctx.rhost)
                    .field("to", &phone.masked())
                    .field("provider", self.provider.name())
                    .field("ref", &reference)
                    .log();
                Ok(reference)
            }
            Err(e) => {
                self.log_provider_failure(user, ctx, phone, &e);
                Err(LoginError::DeliveryFailed(e.to_string()))
            }
        }
    }

    fn log_provider_failure(&self, user: &str, ctx: &LoginContext, phone: &PhoneNumber, e: &ProviderError) {
        audit::event(Event::ProviderFailure)
            .field("user", user)
            .field("service", &ctx.service)
            .field("rhost", &ctx.rhost)
            .field("to", &phone.masked())
            .field("provider", self.provider.name())
            .log();
        match e {
            ProviderError::Credentials { .. } => log::error!("{}: {e}", self.provider.name()),
            _ => log::warn!("{}: {e}", self.provider.name()),
        }
    }

    fn parse_id(id: &str) -> Result<ChallengeId, LoginError> {
        ChallengeId::from_wire(id).ok_or(LoginError::UnknownChallenge)
    }

    /// Checks an answer. Anything but the right digits counts as wrong.
    pub async fn check_code(&self, caller: &Caller, id: &str, code: &str) -> Result<Answer, LoginError> {
        caller.require_root("CheckCode")?;
        let id = Self::parse_id(id)?;
        let remote = {
            let mut state = self.lock();
            let Some(c) = state.challenges.get_mut(&id, &caller.connection) else {
                return Err(LoginError::UnknownChallenge);
            };
            if c.in_flight {
                return Err(LoginError::Busy);
            }
            if let Some(done) = self.expired_or_locked(&mut state, &id, &caller.connection)? {
                return Ok(done);
            }
            let Some(c) = state.challenges.get_mut(&id, &caller.connection) else {
                return Err(LoginError::UnknownChallenge);
            };
            match &c.secret {
                Secret::Remote { reference } if challenge::is_code_shaped(code, 4..=10) => {
                    c.in_flight = true;
                    Some(reference.clone())
                }
                _ => {
                    let ok = challenge::is_code_shaped(code, self.cfg.codes.length..=self.cfg.codes.length)
                        && c.matches_local(code);
                    return if ok {
                        self.accept(&mut state, &id, &caller.connection)
                    } else {
                        self.wrong(&mut state, &id, &caller.connection)
                    };
                }
            }
        };
        let Some(reference) = remote else {
            return Err(LoginError::Internal("unreachable state".into()));
        };
        let verdict = self.provider.check(&reference, code, self.deadline()).await;
        let mut state = self.lock();
        let Some(c) = state.challenges.get_mut(&id, &caller.connection) else {
            return Err(LoginError::UnknownChallenge);
        };
        c.in_flight = false;
        match verdict {
            Ok(RemoteVerdict::Approved) => self.accept(&mut state, &id, &caller.connection),
            Ok(RemoteVerdict::Wrong) => self.wrong(&mut state, &id, &caller.connection),
            Ok(RemoteVerdict::Gone) => {
                if let Some(c) = state.challenges.remove(&id, &caller.connection) {
                    audit::event(Event::Expired)
                        .field("user", &c.user)
                        .field("service", &c.service)
                        .field("rhost", &c.rhost)
                        .log();
                }
                Ok(Answer { status: Status::Expired, attempts_left: 0 })
            }
            Err(e) => {
                if let Some(c) = state.challenges.remove(&id, &caller.connection) {
                    audit::event(Event::ProviderFailure)
                        .field("user", &c.user)
                        .field("service", &c.service)
                        .field("rhost", &c.rhost)
                        .field("to", &c.destination)
                        .log();
                }
                log::warn!("{}: {e}", self.provider.name());
                Err(LoginError::DeliveryFailed(e.to_string()))
            }
        }
    }

    /// Ends a challenge that expired or whose user got locked out meanwhile.
    fn expired_or_locked(
        &self,
        state: &mut State,
        id: &ChallengeId,
        owner: &str,
    ) -> Result<Option<Answer>, LoginError> {
        let now = self.clock.tick();
        let Some(c) = state.challenges.get_mut(id, owner) else {
            return Err(LoginError::UnknownChallenge);
        };
        if c.is_expired(now) {
            if let Some(c) = state.challenges.remove(id, owner) {
                audit::event(Event::Expired)
                    .field("user", &c.user)
                    .field("service", &c.service)
                    .field("rhost", &c.rhost)
                    .log();
            }
            return Ok(Some(Answer { status: Status::Expired, attempts_left: 0 }));
        }
        let user = c.user.clone();
        let locked = match (&c.secret, UserName::parse(&user)) {
            (Secret::Decoy, _) | (_, Err(_)) => {
                state.volatile.decoy_failures.get(&user).is_some_and(|&(_, until)| until > self.clock.unix_now())
            }
            (_, Ok(name)) => match self.store.load(&name) {
                Ok(Some(r)) => r.locked_until > self.clock.unix_now(),
                Ok(None) => {
                    // Unenrolled while the login was pending: nothing may succeed.
                    state.challenges.remove(id, owner);
                    return Err(LoginError::UnknownChallenge);
                }
                Err(e) => {
                    state.challenges.remove(id, owner);
                    log::error!("{e}");
                    return Err(LoginError::Storage(format!("the record of {user} is unusable")));
                }
            },
        };
        if locked {
            state.challenges.remove(id, owner);
            return Ok(Some(Answer { status: Status::LockedOut, attempts_left: 0 }));
        }
        Ok(None)
    }

    fn accept(&self, state: &mut State, id: &ChallengeId, owner: &str) -> Result<Answer, LoginError> {
        let Some(c) = state.challenges.remove(id, owner) else {
            return Err(LoginError::UnknownChallenge);
        };
        audit::event(Event::Accepted)
            .field("user", &c.user)
            .field("service", &c.service)
            .field("rhost", &c.rhost)
            .field("to", &c.destination)
            .log();
        let Ok(name) = UserName::parse(&c.user) else {
            return Err(LoginError::Internal("accepted a code for an invalid name".into()));
        };
        let mut answer = Answer { status: Status::Accepted, attempts_left: c.attempts_left() };
        let mut plan = c.on_success;
        if let Some(p) = plan.take_if(|_| self.cfg.policy.ask_user) {
            answer = Answer { status: Status::AcceptedOfferTrust, attempts_left: p.days };
            let now = self.clock.tick();
            state.offers.retain(|_, o| o.until > now);
            let until = now.saturating_add(Duration::from_secs(120));
            state.offers.insert(id.clone(), Offer { owner: owner.to_owned(), user: name.clone(), plan: p, until });
        }
        if let Ok(Some(mut r)) = self.store.load(&name) {
            let before = r.clone();
            r.failures = 0;
            r.locked_until = 0;
            if let Some(p) = &plan {
                trust::add(
                    &mut r.trust,
                    &p.machine,
                    &p.service,
                    p.days,
                    self.clock.unix_now(),
                    self.cfg.policy.max_trusted,
                );
            }
            if r != before {
                match self.store.save(&name, &r) {
                    Ok(()) => {
                        if let Some(p) = &plan {
                            self.audit_trust_recorded(&name, &c.rhost, p);
                        }
                    }
                    // A higher failure count or a missing trust record are
                    // the safe direction; the code was right.
                    Err(e) => log::error!("could not update the record of {name} after a right code: {e}"),
                }
            }
        }
        Ok(answer)
    }

    fn audit_trust_recorded(&self, name: &UserName, rhost: &str, p: &TrustPlan) {
        audit::event(Event::TrustRecorded)
            .field("user", name.as_str())
            .field("service", &p.service)
            .field("rhost", rhost)
            .field("machine", &p.machine.id)
            .field("days", &p.days.to_string())
            .log();
    }

    /// The user said yes to "Trust this machine?" after a right code.
    pub fn trust_machine(&self, caller: &Caller, id: &str) -> Result<(), LoginError> {
        caller.require_root("TrustMachine")?;
        let id = Self::parse_id(id)?;
        let mut state = self.lock();
        let now = self.clock.tick();
        match state.offers.get(&id) {
            Some(o) if o.owner == caller.connection && o.until > now => {}
            _ => return Err(LoginError::UnknownChallenge),
        }
        let Some(offer) = state.offers.remove(&id) else {
            return Err(LoginError::UnknownChallenge);
        };
        let mut r = match self.store.load(&offer.user) {
            Ok(Some(r)) => r,
            Ok(None) => return Err(LoginError::NotEnrolled(offer.user.to_string())),
            Err(e) => return Err(LoginError::Storage(e.to_string())),
        };
        let p = &offer.plan;
        trust::add(&mut r.trust, &p.machine, &p.service, p.days, self.clock.unix_now(), self.cfg.policy.max_trusted);
        self.store.save(&offer.user, &r).map_err(|e| LoginError::Storage(e.to_string()))?;
        self.audit_trust_recorded(&offer.user, "", p);
        Ok(())
    }

    /// Counts a wrong answer on the challenge and on the user.
    fn wrong(&self, state: &mut State, id: &ChallengeId, owner: &str) -> Result<Answer, LoginError> {
        self.wrong_as(state, id, owner, Status::Wrong)
    }

    fn wrong_as(&self, state: &mut State, id: &ChallengeId, owner: &str, status: Status) -> Result<Answer, LoginError> {
        let now = self.clock.unix_now();
        let lock_for = self.cfg.lockout.duration.as_secs();
        let Some(c) = state.challenges.get_mut(id, owner) else {
            return Err(LoginError::UnknownChallenge);
        };
        let after = c.wrong();
        let (user, service, rhost, decoy) =
            (c.user.clone(), c.service.clone(), c.rhost.clone(), matches!(c.secret, Secret::Decoy));
        let line = |e: Event| audit::event(e).field("user", &user).field("service", &service).field("rhost", &rhost);
        line(Event::Wrong).log();
        let locked = match UserName::parse(&user) {
            Ok(name) if !decoy => {
                let mut r = match self.store.load(&name) {
                    Ok(Some(r)) => r,
                    Ok(None) => {
                        state.challenges.remove(id, owner);
                        return Err(LoginError::UnknownChallenge);
                    }
                    Err(e) => {
                        state.challenges.remove(id, owner);
                        log::error!("{e}");
                        return Err(LoginError::Storage(format!("the record of {name} is unusable")));
                    }
                };
                r.failures = r.failures.saturating_add(1);
                let locked = r.failures >= self.cfg.lockout.failures;
                if locked {
                    r.failures = 0;
                    r.locked_until = now.saturating_add(lock_for);
                }
                if let Err(e) = self.store.save(&name, &r) {
                    // An uncounted guess is a free guess: refuse instead.
                    state.challenges.remove(id, owner);
                    log::error!("could not record a failed code for {name}: {e}");
                    return Err(LoginError::Storage(e.to_string()));
                }
                locked
            }
            _ => {
                let v = &mut state.volatile.decoy_failures;
                if v.len() >= VOLATILE_CAP {
                    v.retain(|_, &mut (_, until)| until > now);
                }
                let entry = v.entry(user.clone()).or_insert((0, 0));
                entry.0 = entry.0.saturating_add(1);
                let locked = entry.0 >= self.cfg.lockout.failures;
                if locked {
                    *entry = (0, now.saturating_add(lock_for));
                }
                locked
            }
        };
        if locked {
            state.challenges.remove(id, owner);
            line(Event::LockedOut).field("minutes", &(lock_for / 60).to_string()).log();
            return Ok(Answer { status: Status::LockedOut, attempts_left: 0 });
        }
        match after {
            AfterWrong::TryAgain { attempts_left } => Ok(Answer { status, attempts_left }),
            AfterWrong::NoTriesLeft => {
                state.challenges.remove(id, owner);
                line(Event::TooManyTries).log();
                Ok(Answer { status: Status::TooManyTries, attempts_left: 0 })
            }
        }
    }

    /// An empty answer: a new code if allowed, otherwise a wrong answer.
    pub async fn resend(&self, caller: &Caller, id: &str) -> Result<Answer, LoginError> {
        caller.require_root("Resend")?;
        let id = Self::parse_id(id)?;
        let (user, ctx, plan) = {
            let mut state = self.lock();
            if let Some(done) = self.expired_or_locked(&mut state, &id, &caller.connection)? {
                return Ok(done);
            }
            let now = self.clock.tick();
            let Some(c) = state.challenges.get_mut(&id, &caller.connection) else {
                return Err(LoginError::UnknownChallenge);
            };
            if c.in_flight {
                return Err(LoginError::Busy);
            }
            let user = c.user.clone();
            if let Err(why) = c.resend_allowed(now) {
                if let ResendRefused::TooSoon(d) = why {
                    log::info!("resend for {} refused: next one in {} s", sanitize_for_log(&user), d.as_secs());
                }
                return self.wrong_as(&mut state, &id, &caller.connection, Status::ResendRefused);
            }
            if !self.take_send_budget(&mut state, &user) {
                return self.wrong_as(&mut state, &id, &caller.connection, Status::ResendRefused);
            }
            let Some(c) = state.challenges.get_mut(&id, &caller.connection) else {
                return Err(LoginError::UnknownChallenge);
            };
            let ctx = LoginContext { service: c.service.clone(), rhost: c.rhost.clone(), ..LoginContext::default() };
            match &c.secret {
                Secret::Decoy => {
                    c.resent(Secret::Decoy, now);
                    (user, ctx, Resend::Decoy { attempts_left: c.attempts_left(), wait: state.send_latency })
                }
                Secret::Local(_) => {
                    // The old code dies now, before anything is sent.
                    let code =
                        challenge::new_code(self.cfg.codes.length).map_err(|e| LoginError::Internal(e.to_string()))?;
                    c.resent(Secret::Local(code.clone()), now);
                    c.in_flight = true;
                    (user, ctx, Resend::Local(code))
                }
                Secret::Remote { reference } => {
                    let reference = reference.clone();
                    c.resent(Secret::Remote { reference }, now);
                    c.in_flight = true;
                    (user, ctx, Resend::Remote)
                }
            }
        };
        let (new_code, remote) = match plan {
            Resend::Decoy { attempts_left, wait } => {
                self.clock.sleep(wait).await;
                return Ok(Answer { status: Status::Resent, attempts_left });
            }
            Resend::Local(code) => (Some(code), false),
            Resend::Remote => (None, true),
        };
        let phone = match UserName::parse(&user).ok().and_then(|n| self.store.load(&n).ok().flatten()) {
            Some(r) => r.phone,
            None => {
                self.lock().challenges.remove(&id, &caller.connection);
                return Err(LoginError::UnknownChallenge);
            }
        };
        let sent = self.deliver(&user, &phone, new_code.as_deref().map(String::as_str), &ctx, Event::CodeResent).await;
        let mut state = self.lock();
        match sent {
            Ok(reference) => {
                let Some(c) = state.challenges.get_mut(&id, &caller.connection) else {
                    return Err(LoginError::UnknownChallenge);
                };
                c.in_flight = false;
                if remote {
                    c.secret = Secret::Remote { reference };
                }
                Ok(Answer { status: Status::Resent, attempts_left: c.attempts_left() })
            }
            Err(e) => {
                state.challenges.remove(&id, &caller.connection);
                Err(e)
            }
        }
    }

    pub fn cancel(&self, caller: &Caller, id: &str) -> Result<(), LoginError> {
        caller.require_root("Cancel")?;
        let id = Self::parse_id(id)?;
        match self.lock().challenges.remove(&id, &caller.connection) {
            Some(c) => {
                audit::event(Event::Cancelled)
                    .field("user", &c.user)
                    .field("service", &c.service)
                    .field("rhost", &c.rhost)
                    .log();
                Ok(())
            }
            None => Err(LoginError::UnknownChallenge),
        }
    }

    /// A bus connection went away: its pending logins go with it.
    pub fn connection_closed(&self, connection: &str) -> usize {
        self.lock().challenges.remove_owner(connection)
    }

    pub fn pending(&self) -> usize {
        self.lock().challenges.len()
    }

    // ---- administration -------------------------------------------------

    fn admin_user(user: &str) -> Result<UserName, LoginError> {
        UserName::parse(user).map_err(|e| LoginError::InvalidArgument(format!("{:?}: {e}", sanitize_for_log(user))))
    }

    pub fn enroll(&self, caller: &Caller, user: &str, number: &str) -> Result<String, LoginError> {
        caller.require_root("Enroll")?;
        let name = Self::admin_user(user)?;
        let phone = PhoneNumber::parse(number).map_err(|e| LoginError::InvalidArgument(e.to_string()))?;
        if nix::unistd::User::from_name(name.as_str()).ok().flatten().is_none() {
            return Err(LoginError::InvalidArgument(format!(
                "there is no user {name} on this system (getent passwd {name} finds nothing); create the account first"
            )));
        }
        let mut state = self.lock();
        let record = match self.store.load(&name) {
            // Same number: keep the counters. A new number starts afresh and
            // drops every trust record, bound to the old one.
            Ok(Some(old)) if old.phone == phone => old,
            Ok(_) | Err(StoreError::Corrupt { .. }) => UserRecord::new(phone.clone()),
            Err(e) => return Err(LoginError::Storage(e.to_string())),
        };
        self.store.save(&name, &record).map_err(|e| LoginError::Storage(e.to_string()))?;
        state.challenges.remove_user(name.as_str());
        audit::event(Event::Enrolled).field("user", name.as_str()).field("to", &phone.masked()).log();
        Ok(phone.masked())
    }

    pub fn unenroll(&self, caller: &Caller, user: &str) -> Result<(), LoginError> {
        caller.require_root("Unenroll")?;
        let name = Self::admin_user(user)?;
        let mut state = self.lock();
        let removed = self.store.remove(&name).map_err(|e| LoginError::Storage(e.to_string()))?;
        state.challenges.remove_user(name.as_str());
        if !removed {
            return Err(LoginError::NotEnrolled(name.to_string()));
        }
        audit::event(Event::Unenrolled).field("user", name.as_str()).log();
        Ok(())
    }

    fn info(&self, name: &UserName) -> Result<UserInfo, LoginError> {
        let now = self.clock.unix_now();
        match self.store.load(name) {
            Ok(Some(r)) => Ok(UserInfo {
                user: name.to_string(),
                destination: r.phone.masked(),
                failures: r.failures,
                locked_until: r.locked_until,
                state: if r.locked_until > now { "locked" } else { "ok" }.to_owned(),
                trusted_machines: u32::try_from(r.trust.iter().filter(|t| t.expires > now && t.created <= now).count())
                    .unwrap_or(u32::MAX),
            }),
            Ok(None) => Err(LoginError::NotEnrolled(name.to_string())),
            Err(e) => {
                log::error!("{e}");
                Ok(UserInfo {
                    user: name.to_string(),
                    destination: String::new(),
                    failures: 0,
                    locked_until: 0,
                    state: "unusable".to_owned(),
                    trusted_machines: 0,
                })
            }
        }
    }

    pub fn show(&self, caller: &Caller, user: &str) -> Result<UserInfo, LoginError> {
        caller.require_root("ShowUser")?;
        let name = Self::admin_user(user)?;
        self.info(&name)
    }

    pub fn list(&self, caller: &Caller) -> Result<Vec<UserInfo>, LoginError> {
        caller.require_root("ListUsers")?;
        let names = self.store.users().map_err(|e| LoginError::Storage(e.to_string()))?;
        names.iter().map(|n| self.info(n)).collect()
    }

    pub fn unlock(&self, caller: &Caller, user: &str) -> Result<(), LoginError> {
        caller.require_root("Unlock")?;
        let name = Self::admin_user(user)?;
        let mut state = self.lock();
        state.volatile.decoy_failures.remove(name.as_str());
        state.volatile.sends.remove(name.as_str());
        match self.store.load(&name) {
            Ok(Some(mut r)) => {
                r.failures = 0;
                r.locked_until = 0;
                self.store.save(&name, &r).map_err(|e| LoginError::Storage(e.to_string()))?;
            }
            Ok(None) => return Err(LoginError::NotEnrolled(name.to_string())),
            Err(e) => return Err(LoginError::Storage(e.to_string())),
        }
        audit::event(Event::Unlocked).field("user", name.as_str()).log();
        Ok(())
    }

    /// A user's trust records that still apply.
    pub fn list_trust(&self, caller: &Caller, user: &str) -> Result<Vec<TrustInfo>, LoginError> {
        caller.require_root("ListTrust")?;
        let name = Self::admin_user(user)?;
        let now = self.clock.unix_now();
        match self.store.load(&name) {
            Ok(Some(r)) => Ok(r
                .trust
                .into_iter()
                .filter(|t| trust::applies(t, now))
                .map(|t| TrustInfo {
                    machine: t.machine,
                    class: t.class,
                    service: t.service,
                    created: t.created,
                    expires: t.expires,
                })
                .collect()),
            Ok(None) => Err(LoginError::NotEnrolled(name.to_string())),
            Err(e) => Err(LoginError::Storage(e.to_string())),
        }
    }

    /// Revokes one machine's trust (`machine` = its id) or, with "", all.
    pub fn revoke_trust(&self, caller: &Caller, user: &str, machine: &str) -> Result<u32, LoginError> {
        caller.require_root("RevokeTrust")?;
        let name = Self::admin_user(user)?;
        let _state = self.lock();
        let mut r = match self.store.load(&name) {
            Ok(Some(r)) => r,
            Ok(None) => return Err(LoginError::NotEnrolled(name.to_string())),
            Err(e) => return Err(LoginError::Storage(e.to_string())),
        };
        let before = r.trust.len();
        r.trust.retain(|t| !machine.is_empty() && t.machine != machine);
        let removed = u32::try_from(before - r.trust.len()).unwrap_or(u32::MAX);
        if removed == 0 && !machine.is_empty() {
            return Err(LoginError::InvalidArgument(format!(
                "{name} has no trust record for machine {:?}; see smsotpctl trust list {name}",
                sanitize_for_log(machine)
            )));
        }
        self.store.save(&name, &r).map_err(|e| LoginError::Storage(e.to_string()))?;
        audit::event(Event::TrustRevoked)
            .field("user", name.as_str())
            .field("machine", if machine.is_empty() { "all" } else { machine })
            .field("count", &removed.to_string())
            .log();
        Ok(removed)
    }

    /// What a login with this context would meet, without sending anything.
    pub fn explain(
        &self,
        caller: &Caller,
        user: &str,
        ctx: &LoginContext,
    ) -> Result<Vec<(String, String)>, LoginError> {
        caller.require_root("Explain")?;
        let mut out: Vec<(String, String)> = Vec::new();
        let mut say = |k: &str, v: String| out.push((k.to_owned(), v));
        let parsed = UserName::parse(user);
        let origin = policy::parse_rhost(&ctx.rhost);
        let groups = parsed.as_ref().map(user_groups).unwrap_or_default();
        let decision = self.cfg.policy.decide(&Facts { user, service: &ctx.service, origin: &origin, groups: &groups });
        let machine = machine::identify(&ctx.service, &ctx.rhost, &ctx.auth_info);
        say("decision", decision.action.to_string());
        say("rule", decision.source().to_owned());
        say("groups", if groups.is_empty() { "-".into() } else { groups.join(",") });
        say("machine", format!("{} ({})", machine.id, machine.class.name()));
        let now = self.clock.unix_now();
        let record = match &parsed {
            Ok(n) => self.store.load(n),
            Err(_) => Ok(None),
        };
        let enrolled = match &record {
            Ok(Some(r)) => format!("yes, {}", r.phone.masked()),
            Ok(None) => "no".into(),
            Err(_) => "record unusable".into(),
        };
        say("enrolled", enrolled);
        let outcome = match (decision.action, &record) {
            (policy::Action::Deny, _) => "denied (no code is sent)".to_owned(),
            (policy::Action::Skip, _) => "allowed without a code (logged)".to_owned(),
            (_, Err(_)) => "refused: the user's record is unusable".to_owned(),
            (_, Ok(None)) => match self.cfg.unenrolled {
                Unenrolled::Allow => "not enrolled: pam_sms returns PAM_IGNORE".to_owned(),
                Unenrolled::Deny => "not enrolled: prompted like anyone else, never passes".to_owned(),
            },
            (_, Ok(Some(r))) if r.locked_until > now => {
                format!("locked out until {}", crate::clock::format_utc(r.locked_until))
            }
            (policy::Action::Trust { .. }, Ok(Some(r))) => match trust::find(&r.trust, &machine, &ctx.service, now) {
                Some(t) => format!("allowed without a code: trusted until {}", crate::clock::format_utc(t.expires)),
                None => "a code is sent; a right code trusts this machine".to_owned(),
            },
            (_, Ok(Some(_))) => "a code is sent".to_owned(),
        };
        say("outcome", outcome);
        Ok(out)
    }

    /// Sends a test SMS (no code) to an enrolled user or a number.
    pub async fn test_send(&self, caller: &Caller, target: &str) -> Result<String, LoginError> {
        caller.require_root("TestSend")?;
        let (label, phone) = if target.starts_with('+') {
            ("-".to_owned(), PhoneNumber::parse(target).map_err(|e| LoginError::InvalidArgument(e.to_string()))?)
        } else {
            let name = Self::admin_user(target)?;
            match self.store.load(&name) {
                Ok(Some(r)) => (name.to_string(), r.phone),
                Ok(None) => return Err(LoginError::NotEnrolled(name.to_string())),
                Err(e) => return Err(LoginError::Storage(e.to_string())),
            }
        };
        if self.provider.makes_codes() {
            return Err(LoginError::InvalidArgument(
                "twilio-verify sends its own codes only; test it with a real login instead".into(),
            ));
        }
        let body = format!("smsotp test message from {}. No action is needed.", self.hostname);
        let msg = Outgoing { to: &phone, body: &body, validity: self.cfg.codes.expiry };
        match self.provider.send(&msg, self.deadline()).await {
            Ok(reference) => {
                audit::event(Event::TestSent)
                    .field("user", &label)
                    .field("to", &phone.masked())
                    .field("ref", &reference)
                    .log();
                Ok(phone.masked())
            }
            Err(e) => {
                self.log_provider_failure(&label, &LoginContext::default(), &phone, &e);
                Err(LoginError::DeliveryFailed(e.to_string()))
            }
        }
    }
}

/// The user's primary and supplementary group names, resolved through NSS
/// by the daemon (never taken from the caller).
pub fn user_groups(name: &UserName) -> Vec<String> {
    let Ok(Some(user)) = nix::unistd::User::from_name(name.as_str()) else {
        return Vec::new();
    };
    let Ok(cname) = std::ffi::CString::new(name.as_str()) else {
        return Vec::new();
    };
    let gids = match nix::unistd::getgrouplist(&cname, user.gid) {
        Ok(g) => g,
        Err(e) => {
            log::warn!("cannot list the groups of {name}: {e}; group rules will not match");
            vec![user.gid]
        }
    };
    gids.into_iter().filter_map(|g| nix::unistd::Group::from_gid(g).ok().flatten()).map(|g| g.name).collect()
}

#[cfg(test)]
#[path = "login_tests.rs"]
mod tests;
