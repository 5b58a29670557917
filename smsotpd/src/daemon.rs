//! The daemon's state and the helpers every operation shares.
//!
//! [`Daemon`] owns the challenges, the store and the provider. Everything
//! that decides an outcome happens under one lock, so parallel guesses are
//! counted exactly and a code is consumed once; the lock is never held while
//! a provider is called. The operations live beside it, one file per
//! concern: login.rs, answer.rs, resend.rs, decoy.rs, offers.rs, admin.rs,
//! explain.rs.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use smsotp_proto::{Action, LoginContext, Status};
use zeroize::Zeroizing;

use crate::audit::{self, Event};
use crate::challenge::{ChallengeId, Challenges, Limits};
use crate::clock::{SharedClock, Tick};
use crate::config::Config;
use crate::error::LoginError;
use crate::names::UserName;
use crate::provider::Provider;
use crate::store::{Store, StoreError};
use crate::template::Fields;
use crate::trust::TrustPlan;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub action: Action,
    /// Empty unless a code is asked for.
    pub challenge: String,
    /// The masked destination, e.g. `******1234`; empty unless `Code`.
    pub destination: String,
    /// The factors the login may switch to, the one asked first first.
    pub factors: Vec<smsotp_proto::Factor>,
    /// Tell the user after success that SMS is the weakest factor.
    pub remind: bool,
}

impl Start {
    /// An answer without a code to ask for.
    pub(crate) fn without_code(action: Action) -> Start {
        Start { action, challenge: String::new(), destination: String::new(), factors: Vec::new(), remind: false }
    }

    /// A code to ask for, SMS only.
    pub(crate) fn asking(action: Action, challenge: &ChallengeId, destination: String) -> Start {
        Start {
            action,
            challenge: challenge.as_str().to_owned(),
            destination,
            factors: vec![smsotp_proto::Factor::Sms],
            remind: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: Status,
    /// Tries left; for `AcceptedOfferTrust`, the days of trust offered.
    pub attempts_left: u32,
}

impl Answer {
    /// A right code (or factor): an answer no decoy ever gives.
    pub fn is_accepted(&self) -> bool {
        matches!(self.status, Status::Accepted | Status::AcceptedOfferTrust | Status::AwaitingApproval)
    }
}

/// Per-user bookkeeping that need not survive a restart.
#[derive(Debug, Default)]
pub(crate) struct Volatile {
    /// When each SMS went out in the last hour, per user name.
    pub(crate) sends: HashMap<String, VecDeque<Tick>>,
    /// Consecutive failures of names without a record (decoys), so that
    /// they lock out exactly like enrolled users do.
    pub(crate) decoy_failures: HashMap<String, (u32, u64)>,
    /// When each SMS of this host went out in the last 24 hours (Unix s).
    pub(crate) day: VecDeque<u64>,
    /// The same, per user name.
    pub(crate) user_day: HashMap<String, VecDeque<u64>>,
    /// When the daily cap was last reported (Unix s), to say it hourly.
    pub(crate) cap_reported: u64,
    /// When each user last made recovery codes: ten Argon2id hashes each
    /// time, which no local user may ask for in a loop (account.rs).
    pub(crate) recovery_made: HashMap<String, Tick>,
    /// How long recent real sends took, until the challenge was marked
    /// sent: a decoy's "send" takes one of them (delivery.rs).
    pub(crate) send_times: crate::pace::Latencies,
    /// How long the provider took to check recent codes (Verify): a
    /// decoy's wrong code takes one of them (answer.rs).
    pub(crate) check_times: crate::pace::Latencies,
}

pub(crate) const VOLATILE_CAP: usize = 50_000;

/// Trust offered to a user after a right code (policy.ask_user).
pub(crate) struct Offer {
    pub(crate) user: UserName,
    pub(crate) plan: TrustPlan,
    pub(crate) until: Tick,
}

pub(crate) struct State {
    pub(crate) challenges: Challenges,
    pub(crate) offers: HashMap<ChallengeId, Offer>,
    pub(crate) volatile: Volatile,
    /// Rounds whose send failed just now: a new round of the same login
    /// within the resend interval fails at once instead of asking the
    /// provider again (one ssh command must not become many requests).
    pub(crate) failed_rounds: HashMap<String, Tick>,
    /// Per-user turns of calls that read and write a record (turn.rs).
    pub(crate) turns: crate::turn::Turns,
    /// Users' proofs in progress: a new number, a new app (account.rs).
    pub(crate) proofs: crate::account::Proofs,
}

pub struct Daemon<P> {
    pub(crate) cfg: Config,
    pub(crate) hostname: String,
    pub(crate) store: Store,
    pub(crate) provider: P,
    pub(crate) clock: SharedClock,
    pub(crate) decoy_key: [u8; 32],
    pub(crate) bypass_key: [u8; 32],
    /// Shared with the daemon a reload replaces (`succeeding`), so logins
    /// in progress and sends still running carry over.
    state: Arc<Mutex<State>>,
    /// Woken whenever a background send ends (delivery.rs).
    pub(crate) deliveries: Arc<tokio::sync::Notify>,
    /// The failover routes after the provider, in order (failover.rs).
    pub(crate) failover: Vec<(P, crate::provider::Channel)>,
    /// Where numbers come from with `phone_source = "ldap"` (directory.rs).
    pub(crate) directory: Option<crate::directory::Directory>,
}

impl<P: Provider> Daemon<P> {
    pub fn new(
        cfg: Config,
        hostname: String,
        store: Store,
        provider: P,
        clock: SharedClock,
    ) -> Result<Self, StoreError> {
        let state = State {
            challenges: Challenges::new(cfg.codes.max_pending),
            offers: HashMap::new(),
            volatile: Volatile::default(),
            failed_rounds: HashMap::new(),
            turns: HashMap::new(),
            proofs: HashMap::new(),
        };
        let shared = (Arc::new(Mutex::new(state)), Arc::new(tokio::sync::Notify::new()));
        Daemon::assemble(cfg, hostname, store, provider, clock, shared).inspect(|d| d.load_ledger())
    }

    fn assemble(
        cfg: Config,
        hostname: String,
        store: Store,
        provider: P,
        clock: SharedClock,
        (state, deliveries): (Arc<Mutex<State>>, Arc<tokio::sync::Notify>),
    ) -> Result<Self, StoreError> {
        let decoy_key = store.secret_key("decoy.key")?;
        let bypass_key = store.secret_key("bypass.key")?;
        let directory = match &cfg.ldap {
            Some(l) => Some(crate::directory::Directory::new(l.clone()).map_err(|e| StoreError::Io {
                what: e,
                source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
            })?),
            None => None,
        };
        Ok(Daemon {
            cfg,
            hostname,
            store,
            provider,
            clock,
            decoy_key,
            bypass_key,
            state,
            deliveries,
            failover: Vec::new(),
            directory,
        })
    }

    /// Where codes go when the provider fails (config `failover`).
    pub fn with_failover(mut self, routes: Vec<(P, crate::provider::Channel)>) -> Self {
        self.failover = routes;
        self
    }

    /// The daemon a reload makes from a new configuration: pending logins,
    /// their sends, trust offers and the hourly budgets go on; the new
    /// settings apply from the next call.
    pub fn succeeding(
        previous: &Daemon<P>,
        cfg: Config,
        hostname: String,
        store: Store,
        provider: P,
    ) -> Result<Self, StoreError> {
        previous.lock().challenges.set_max(cfg.codes.max_pending);
        let shared = (previous.state.clone(), previous.deliveries.clone());
        Daemon::assemble(cfg, hostname, store, provider, previous.clock.clone(), shared)
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn provider(&self) -> &P {
        &self.provider
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves counters as they were;
        // carrying on is safer than refusing every login afterwards.
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub(crate) fn limits(&self) -> Limits {
        Limits {
            expiry: self.cfg.codes.expiry,
            attempts: self.cfg.codes.attempts,
            resend_interval: self.cfg.codes.resend_interval,
            resends: self.cfg.codes.resends,
        }
    }

    /// A new challenge of the login `ctx` describes, under today's limits.
    pub(crate) fn challenge(
        &self,
        user: &str,
        secret: crate::challenge::Secret,
        destination: String,
        ctx: &LoginContext,
    ) -> crate::challenge::Challenge {
        crate::challenge::Challenge::new(
            user.to_owned(),
            secret,
            destination,
            ctx.service.clone(),
            ctx.rhost.clone(),
            self.clock.tick(),
            self.limits(),
        )
    }

    /// What new trust opens (trust.rs): one host's files need no name; a
    /// shared store names this host, or every host with
    /// `store.trust_scope = "fleet"`.
    pub(crate) fn trust_host(&self) -> String {
        match &self.cfg.store {
            crate::config::fleet::StoreKind::Postgresql(pg) if pg.fleet_trust => "*".into(),
            _ if self.store.shared() => self.hostname.clone(),
            _ => String::new(),
        }
    }

    /// Adds the trust `plan` earns to `records`, for this host (or the
    /// fleet), under `policy.max_trusted_machines`.
    pub(crate) fn add_trust(&self, records: &mut Vec<crate::trust::TrustRecord>, plan: &crate::trust::TrustPlan) {
        crate::trust::add(
            records,
            &plan.machine,
            &plan.service,
            &self.trust_host(),
            plan.days,
            self.clock.unix_now(),
            self.cfg.policy.max_trusted,
        );
    }

    pub(crate) fn deadline(&self) -> Tick {
        self.clock.tick().saturating_add(self.cfg.codes.deadline)
    }

    /// The round a login belongs to: user, service and machine.
    pub(crate) fn round_key(user: &str, ctx: &LoginContext) -> String {
        let machine = crate::machine::identify(&ctx.service, &ctx.rhost, &ctx.auth_info);
        format!("{user}\n{}\n{}", ctx.service, machine.id)
    }

    /// A new round of a login whose code went out moments ago gets that
    /// code's challenge back (no second SMS); one whose send failed moments
    /// ago fails again without asking the provider. `None`: go on.
    pub(crate) fn repeat_round(
        &self,
        state: &mut State,
        round: &str,
        user: &str,
        ctx: &LoginContext,
    ) -> Option<Result<Start, LoginError>> {
        let now = self.clock.tick();
        let within = self.cfg.codes.resend_interval;
        if let Some((id, destination, factors)) = state.challenges.live_round(round, now, within) {
            audit::event(Event::CodeReused)
                .field("user", user)
                .field("service", &ctx.service)
                .field("rhost", &ctx.rhost)
                .log();
            return Some(Ok(Start { factors, ..Start::asking(Action::Code, &id, destination) }));
        }
        if state.failed_rounds.len() >= VOLATILE_CAP {
            state.failed_rounds.retain(|_, t| t.saturating_add(within) > now);
        }
        if state.failed_rounds.get(round).is_some_and(|t| t.saturating_add(within) > now) {
            return Some(Err(LoginError::DeliveryFailed(
                "sending failed moments ago for this login; not asking the provider again yet".into(),
            )));
        }
        None
    }

    pub(crate) fn sweep(&self, state: &mut State) {
        for c in state.challenges.sweep(self.clock.tick()) {
            audit::event(Event::Expired)
                .field("user", &c.user)
                .field("service", &c.service)
                .field("rhost", &c.rhost)
                .log();
        }
    }

    pub(crate) fn render(&self, code: &str, service: &str) -> Zeroizing<String> {
        self.render_with(&self.cfg.template, code, service)
    }

    pub(crate) fn render_with(
        &self,
        template: &crate::template::Template,
        code: &str,
        service: &str,
    ) -> Zeroizing<String> {
        template.render(&Fields {
            code,
            host: &self.hostname,
            service: if service.is_empty() { "login" } else { service },
            minutes: self.cfg.codes.expiry.as_secs().div_ceil(60),
        })
    }

    pub(crate) fn parse_id(id: &str) -> Result<ChallengeId, LoginError> {
        ChallengeId::from_wire(id).ok_or(LoginError::UnknownChallenge)
    }

    pub fn pending(&self) -> usize {
        self.lock().challenges.len()
    }
}
