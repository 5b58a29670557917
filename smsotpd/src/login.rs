//! Starting a login: policy first, then enrollment, lockout, trust, and
//! finally a code sent through the provider.

use std::sync::Arc;

use smsotp_proto::{Action, Factor, LoginContext};

use crate::audit::{self, Event};
use crate::authz::Root;
use crate::challenge::{self, ChallengeId, Delivery, Secret};
use crate::clock::Tick;
use crate::daemon::{Daemon, Start};
use crate::delivery::SendJob;
use crate::error::LoginError;
use crate::machine;
use crate::names::{PhoneNumber, UserName};
use crate::nss;
use crate::pace::ANSWER_FLOOR;
use crate::policy::{self, Facts};
use crate::provider::{Channel, Outgoing, Provider, ProviderError};
use crate::store::StoreError;
use crate::trust::{self, TrustPlan};

/// A code as a call reads it: digit by digit ("1, 2, 3, 4, 5, 6").
fn spoken(code: &str) -> zeroize::Zeroizing<String> {
    let mut out = zeroize::Zeroizing::new(String::with_capacity(code.len() * 3));
    for (i, c) in code.chars().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push(c);
    }
    out
}

/// A user with SMS alone hears at most weekly that it is the weakest factor.
const REMIND_EVERY: u64 = 7 * 24 * 3600;

impl<P: Provider> Daemon<P> {
    /// StartLogin (interface 0.1 modules): SMS only, whatever the user's
    /// other factors.
    pub async fn start_login(
        self: &Arc<Self>,
        root: &Root,
        user: &str,
        ctx: &LoginContext,
    ) -> Result<Start, LoginError> {
        let mut start = self.begin(root, user, ctx, false).await?;
        if start.action == Action::AwaitingApproval {
            start.action = Action::Deny;
        }
        Ok(start)
    }

    /// StartSignIn: the user's default factor first, the others offered.
    pub async fn start_sign_in(
        self: &Arc<Self>,
        root: &Root,
        user: &str,
        ctx: &LoginContext,
    ) -> Result<Start, LoginError> {
        self.begin(root, user, ctx, true).await
    }

    /// Starts a login, answered no sooner than [`ANSWER_FLOOR`] after the
    /// call came in, whatever the path (pace.rs).
    async fn begin(
        self: &Arc<Self>,
        root: &Root,
        user: &str,
        ctx: &LoginContext,
        sign_in: bool,
    ) -> Result<Start, LoginError> {
        let began = self.clock.tick();
        let answer = self.begin_at(root, user, ctx, sign_in, began).await;
        self.pace(began, ANSWER_FLOOR).await;
        answer
    }

    /// Starts a login for `user`: policy first, then enrollment, lockout,
    /// trust, and finally a code. `began`: when the call came in, which a
    /// send's time counts from (pace.rs).
    async fn begin_at(
        self: &Arc<Self>,
        _root: &Root,
        user: &str,
        ctx: &LoginContext,
        sign_in: bool,
        began: Tick,
    ) -> Result<Start, LoginError> {
        let parsed = UserName::parse(user);
        let origin = policy::parse_rhost(&ctx.rhost);
        let groups = match &parsed {
            Ok(name) if self.cfg.policy.uses_groups() => nss::user_groups(name),
            _ => Vec::new(),
        };
        let decision = self.cfg.policy.decide(&Facts { user, service: &ctx.service, origin: &origin, groups: &groups });
        let no_code = |action| Ok(Start::without_code(action));
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
        {
            let mut state = self.lock();
            self.sweep(&mut state);
            if state.challenges.len() >= self.cfg.codes.max_pending {
                line(Event::Busy).log();
                return Err(LoginError::Busy);
            }
        }
        // Read outside the lock: other logins need not wait for this disk.
        let (record, name) = match parsed {
            Err(_) => {
                line(Event::UnknownUser).field("reason", "not a valid user name").log();
                (None, None)
            }
            Ok(name) => match self.store.load(&name) {
                Ok(r) => (self.follow_directory(&name, r).await?, Some(name)),
                Err(e @ (StoreError::Unavailable(_) | StoreError::Schema(_))) => {
                    if let (policy::Action::Trust { .. }, true) = (decision.action, self.offline_local_trust()) {
                        let machine = machine::identify(&ctx.service, &ctx.rhost, &ctx.auth_info);
                        let copy = self.store.trust_copy(&name);
                        if self.trusted(&copy, &machine, ctx, line(Event::TrustedOffline), decision.source()) {
                            return no_code(Action::Allow);
                        }
                    }
                    line(Event::StoreUnavailable).log();
                    return Err(LoginError::from(e));
                }
                Err(e) => {
                    tracing::error!(
                        "{e}; {name} cannot log in until an administrator re-enrolls them (smsotpctl enroll)"
                    );
                    line(Event::RecordUnusable).log();
                    return Err(LoginError::Storage(format!("the record of {name} is unusable")));
                }
            },
        };
        let Some((record, name)) = record.zip(name.clone()) else {
            let unenrolled = decision.unenrolled.unwrap_or(self.cfg.unenrolled);
            let mut start = self.start_unenrolled(user, name.is_some(), ctx, unenrolled, began).await?;
            // Offered what an enrolled user with SMS alone is offered.
            if sign_in && self.cfg.voice.is_some() && start.action == Action::Code {
                start.factors = vec![Factor::Sms, Factor::Voice];
                if let Ok(id) = Self::parse_id(&start.challenge)
                    && let Some(c) = self.lock().challenges.get_mut(&id)
                {
                    c.factors = start.factors.clone();
                }
            }
            return Ok(start);
        };
        let now = self.clock.unix_now();
        if record.awaiting_approval {
            line(Event::AwaitingApproval).log();
            return no_code(Action::AwaitingApproval);
        }
        if record.locked_until > now {
            line(Event::StillLockedOut).log();
            return no_code(Action::LockedOut);
        }
        let mut plan = None;
        if let policy::Action::Trust { days } = decision.action {
            let machine = machine::identify(&ctx.service, &ctx.rhost, &ctx.auth_info);
            if self.trusted(&record.trust, &machine, ctx, line(Event::Trusted), decision.source()) {
                return no_code(Action::Allow);
            }
            plan = Some(TrustPlan { machine, service: ctx.service.clone(), days });
        }
        let phone = record.phone_at(now);
        if !sign_in {
            return self.send_new_code(name.as_str(), phone, ctx, plan, Channel::Sms, began).await;
        }
        let factors = self.factors_of(&record);
        // The reminder names `smsotp totp`: only where users may run it.
        // SMS and calls alike are the phone network's: weak.
        let remind = self.cfg.self_service.totp
            && !factors.contains(&Factor::Totp)
            && now.saturating_sub(record.reminded) >= REMIND_EVERY;
        let mut start = match factors.first() {
            Some(Factor::Totp) => self.ask_app_first(name.as_str(), phone, ctx, plan)?,
            Some(Factor::Voice) => self.send_new_code(name.as_str(), phone, ctx, plan, Channel::Voice, began).await?,
            _ => self.send_new_code(name.as_str(), phone, ctx, plan, Channel::Sms, began).await?,
        };
        if let Ok(id) = Self::parse_id(&start.challenge)
            && let Some(c) = self.lock().challenges.get_mut(&id)
        {
            c.factors = factors.clone();
            c.remind = remind;
            if factors.first() == Some(&Factor::Voice) {
                c.factor = Factor::Voice;
            }
        }
        start.factors = factors;
        start.remind = remind;
        Ok(start)
    }

    /// Whether `records` let `machine` in on this host now; if so, `line`
    /// is logged with the machine, the trust's end and the rule.
    fn trusted(
        &self,
        records: &[crate::trust::TrustRecord],
        machine: &machine::Machine,
        ctx: &LoginContext,
        line: audit::Line,
        rule: &str,
    ) -> bool {
        let now = self.clock.unix_now();
        let Some(t) = trust::find(records, machine, &ctx.service, &self.hostname, now) else { return false };
        line.field("machine", &machine.id)
            .field("until", &crate::clock::format_utc(t.expires))
            .field("rule", rule)
            .log();
        true
    }

    /// `store.offline = "local-trust"`: while the database is down, machines
    /// this host saw trusted still get in (nothing else does).
    fn offline_local_trust(&self) -> bool {
        matches!(&self.cfg.store, crate::config::fleet::StoreKind::Postgresql(pg) if pg.offline_local_trust)
    }

    /// The app is the user's default: a challenge with nothing sent.
    fn ask_app_first(
        &self,
        user: &str,
        phone: &PhoneNumber,
        ctx: &LoginContext,
        plan: Option<TrustPlan>,
    ) -> Result<Start, LoginError> {
        let id = ChallengeId::new().map_err(|e| LoginError::Internal(e.to_string()))?;
        let mut c = self.challenge(user, Secret::NotSent, phone.masked(), ctx);
        c.on_success = plan;
        c.factor = Factor::Totp;
        let mut state = self.lock();
        if state.challenges.len() >= self.cfg.codes.max_pending {
            return Err(LoginError::Busy);
        }
        state.challenges.insert(id.clone(), c).map_err(|_| LoginError::Busy)?;
        Ok(Start::asking(Action::Totp, &id, phone.masked()))
    }

    /// The factors `r` can answer with, the default first: the record's,
    /// and a call where the daemon has `[voice]`.
    pub(crate) fn factors_of(&self, r: &crate::store::UserRecord) -> Vec<Factor> {
        let mut all = r.factors();
        if self.cfg.voice.is_some() {
            let after_sms = all.iter().position(|f| *f == Factor::Sms).map_or(0, |i| i + 1);
            all.insert(after_sms, Factor::Voice);
            let policy_calls = r.default_factor.is_none() && self.cfg.voice.as_ref().is_some_and(|v| v.first);
            if r.default_factor == Some(Factor::Voice) || policy_calls {
                all.retain(|f| *f != Factor::Voice);
                all.insert(0, Factor::Voice);
            }
        }
        all
    }

    pub(crate) async fn send_new_code(
        self: &Arc<Self>,
        user: &str,
        phone: &PhoneNumber,
        ctx: &LoginContext,
        plan: Option<TrustPlan>,
        channel: Channel,
        since: Tick,
    ) -> Result<Start, LoginError> {
        let id = ChallengeId::new().map_err(|e| LoginError::Internal(e.to_string()))?;
        let code = if self.provider.makes_codes() {
            None
        } else {
            Some(challenge::new_code(self.cfg.codes.length).map_err(|e| LoginError::Internal(e.to_string()))?)
        };
        let round = Self::round_key(user, ctx);
        {
            let mut state = self.lock();
            if let Some(repeat) = self.repeat_round(&mut state, &round, user, ctx) {
                return repeat;
            }
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
        self.record_send(user);
        // The answer goes out now, for everyone alike; the provider call
        // runs in the background and the next call waits for it.
        let secret = match &code {
            Some(c) => Secret::Local(c.clone()),
            None => Secret::Remote { reference: String::new() },
        };
        let mut c = self.challenge(user, secret, phone.masked(), ctx);
        c.on_success = plan;
        c.round = round.clone();
        c.delivery = Delivery::Pending;
        self.lock().challenges.insert(id.clone(), c).map_err(|_| LoginError::Busy)?;
        let job = SendJob {
            user: user.to_owned(),
            phone: phone.clone(),
            code,
            ctx: ctx.clone(),
            event: Event::CodeSent,
            round: Some(round),
            channel,
            since,
        };
        self.send_in_background(id.clone(), job);
        Ok(Start::asking(Action::Code, &id, phone.masked()))
    }

    /// Sends one message through `provider` (the provider, or a failover
    /// route) and logs the outcome either way. On failure, also whether the
    /// message may still be on its way (sent, not answered).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn deliver_via(
        &self,
        provider: &P,
        user: &str,
        phone: &PhoneNumber,
        code: Option<&str>,
        ctx: &LoginContext,
        sent_event: Event,
        channel: Channel,
    ) -> Result<String, (LoginError, bool)> {
        let body = match (&self.cfg.enrollment, sent_event, &self.cfg.voice, channel) {
            (_, _, Some(v), Channel::Voice) => {
                self.render_with(&v.template, &spoken(code.unwrap_or_default()), &ctx.service)
            }
            (Some(e), Event::EnrollCodeSent | Event::NumberCheckSent, _, _) => {
                self.render_with(&e.template, code.unwrap_or_default(), &ctx.service)
            }
            _ => self.render(code.unwrap_or_default(), &ctx.service),
        };
        if !self.destination_allowed(phone) {
            audit::event(Event::DestinationRefused)
                .field("user", user)
                .field("service", &ctx.service)
                .field("rhost", &ctx.rhost)
                .field("to", &phone.masked())
                .log();
            return Err((LoginError::DeliveryFailed("the number is outside destinations.countries".into()), false));
        }
        let msg = Outgoing { to: phone, body: &body, validity: self.cfg.codes.expiry, channel, user };
        let result = provider.send(&msg, self.deadline()).await;
        match result {
            Ok(reference) => {
                let mut line = audit::event(sent_event)
                    .field("user", user)
                    .field("service", &ctx.service)
                    .field("rhost", &ctx.rhost)
                    .field("to", &phone.masked())
                    .field("provider", provider.name())
                    .field("ref", &reference);
                if channel == Channel::Voice {
                    line = line.field("channel", "voice");
                }
                line.log();
                Ok(reference)
            }
            Err(e) => {
                self.log_failure_of(provider, user, ctx, phone, &e);
                let maybe_sent = e == ProviderError::NoAnswer;
                match e {
                    ProviderError::Limited { .. } => Err((LoginError::RateLimited, false)),
                    other => Err((LoginError::DeliveryFailed(other.to_string()), maybe_sent)),
                }
            }
        }
    }

    pub(crate) fn log_provider_failure(&self, user: &str, ctx: &LoginContext, phone: &PhoneNumber, e: &ProviderError) {
        self.log_failure_of(&self.provider, user, ctx, phone, e);
    }

    fn log_failure_of(&self, provider: &P, user: &str, ctx: &LoginContext, phone: &PhoneNumber, e: &ProviderError) {
        audit::event(Event::ProviderFailure)
            .field("user", user)
            .field("service", &ctx.service)
            .field("rhost", &ctx.rhost)
            .field("to", &phone.masked())
            .field("provider", provider.name())
            .log();
        match e {
            ProviderError::Credentials { .. } => tracing::error!("{}: {e}", provider.name()),
            _ => tracing::warn!("{}: {e}", provider.name()),
        }
    }
}
