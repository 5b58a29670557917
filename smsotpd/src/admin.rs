//! What smsotpctl asks for: enrollments, lockouts, trust records, test SMS.

use std::sync::Arc;

use smsotp_proto::{FactorsRow, TrustClass, TrustRow, UserRow, UserState, WireEnum};

use crate::audit::{self, Event};
use crate::authz::Root;
use crate::daemon::Daemon;
use crate::error::LoginError;
use crate::names::{PhoneNumber, UserName, sanitize_for_log};
use crate::nss;
use crate::provider::{Channel, Outgoing, Provider};
use crate::store::{StoreError, UserRecord};
use crate::trust;
use smsotp_proto::LoginContext;

impl<P: Provider> Daemon<P> {
    /// The database's trail of administrators' changes (a shared store;
    /// the audit log has them either way).
    fn note_admin_change(&self, action: &str, user: &UserName) {
        if let Err(e) = self.store.note_admin_change(self.clock.unix_now(), action, user.as_str()) {
            tracing::warn!("{action} of {user} is in the audit log but not in the database's trail: {e}");
        }
    }

    pub(crate) fn admin_user(user: &str) -> Result<UserName, LoginError> {
        UserName::parse(user).map_err(|e| LoginError::InvalidArgument(format!("{:?}: {e}", sanitize_for_log(user))))
    }

    pub async fn enroll(self: &Arc<Self>, _root: &Root, user: &str, number: &str) -> Result<String, LoginError> {
        let name = Self::admin_user(user)?;
        let phone = PhoneNumber::parse(number).map_err(|e| LoginError::InvalidArgument(e.to_string()))?;
        if !self.destination_allowed(&phone) {
            return Err(LoginError::InvalidArgument(format!(
                "{} is outside destinations.countries ({}); no SMS may go there",
                phone.masked(),
                self.cfg.destinations.as_deref().unwrap_or_default().join(", ")
            )));
        }
        if !nss::user_exists(name.as_str()) {
            return Err(LoginError::InvalidArgument(format!(
                "there is no user {name} on this system (getent passwd {name} finds nothing); create the account first"
            )));
        }
        if let Some(why) = self.line_type_refusal(&phone).await? {
            return Err(LoginError::InvalidArgument(format!("{} cannot be enrolled: {why}", phone.masked())));
        }
        let mut state = self.lock();
        let loaded = self.store.load(&name);
        let old_phone = match &loaded {
            Ok(Some(old)) if old.phone != phone => Some(old.phone.clone()),
            _ => None,
        };
        let record = match loaded {
            // Same number: keep the counters. A new number starts afresh and
            // drops every trust record, bound to the old one.
            Ok(Some(old)) if old.phone == phone => old,
            // Written over the old record (a shared store checks its revision).
            Ok(Some(old)) => UserRecord { revision: old.revision, ..UserRecord::new(phone.clone()) },
            Ok(None) => UserRecord::new(phone.clone()),
            Err(StoreError::Corrupt { .. }) => {
                // A shared store writes a record without a revision only
                // where there is none: the unusable one goes first.
                if self.store.shared() {
                    self.store.remove(&name).map_err(LoginError::from)?;
                }
                UserRecord::new(phone.clone())
            }
            Err(e) => return Err(LoginError::from(e)),
        };
        self.store.save(&name, &record).map_err(LoginError::from)?;
        state.challenges.remove_user(name.as_str());
        audit::event(Event::Enrolled).field("user", name.as_str()).field("to", &phone.masked()).log();
        self.note_admin_change("enroll", &name);
        drop(state);
        if let Some(old) = old_phone {
            let body = format!(
                "The number for SMS login codes of {name} on {} was changed to {} at {}. If this was not you, tell your administrator now.",
                self.hostname,
                phone.masked(),
                crate::clock::format_utc(self.clock.unix_now())
            );
            self.notify_old_number(&name, old, body);
        }
        Ok(phone.masked())
    }

    /// NIST SP 800-63B-4: a changed number is told to the old one, with the
    /// host and the time, so that "this was not me" reaches its owner. Sent
    /// in the background; a failure is logged, the change stands.
    pub(crate) fn notify_old_number(self: &Arc<Self>, name: &UserName, old: PhoneNumber, body: String) {
        let user = name.to_string();
        if self.provider.makes_codes() || !self.destination_allowed(&old) {
            tracing::warn!(
                "cannot tell the old number of {user} about the change ({}): the provider sends only codes or the number is outside destinations.countries",
                old.masked()
            );
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("cannot tell the old number of {user} about the change: no event loop");
            return;
        };
        let this = Arc::clone(self);
        runtime.spawn(async move {
            let msg =
                Outgoing { to: &old, body: &body, validity: this.cfg.codes.expiry, channel: Channel::Sms, user: "" };
            match this.provider.send(&msg, this.deadline()).await {
                Ok(reference) => audit::event(Event::NumberChangeNotified)
                    .field("user", &user)
                    .field("to", &old.masked())
                    .field("ref", &reference)
                    .log(),
                Err(e) => this.log_provider_failure(&user, &LoginContext::default(), &old, &e),
            }
        });
    }

    /// Forgets `user`; the number that stops getting codes is told.
    pub fn unenroll(self: &Arc<Self>, _root: &Root, user: &str) -> Result<(), LoginError> {
        let name = Self::admin_user(user)?;
        let mut state = self.lock();
        let now = self.clock.unix_now();
        let old = self.store.load(&name).ok().flatten().map(|r| r.phone_at(now).clone());
        let removed = self.store.remove(&name).map_err(LoginError::from)?;
        state.challenges.remove_user(name.as_str());
        drop(state);
        if !removed {
            return Err(LoginError::NotEnrolled(name.to_string()));
        }
        audit::event(Event::Unenrolled).field("user", name.as_str()).log();
        self.note_admin_change("unenroll", &name);
        if let Some(old) = old {
            let body = format!(
                "SMS login for {name} on {} was removed by an administrator at {}; codes no longer come to this number. If you did not expect this, tell your administrator.",
                self.hostname,
                crate::clock::format_utc(now)
            );
            self.notify_old_number(&name, old, body);
        }
        Ok(())
    }

    /// A user's factors, for `smsotpctl show`.
    pub fn show_factors(&self, _root: &Root, user: &str) -> Result<FactorsRow, LoginError> {
        let name = Self::admin_user(user)?;
        let now = self.clock.unix_now();
        match self.store.load(&name) {
            Ok(Some(r)) => {
                let pending = r.pending_phone.as_ref().filter(|p| p.from > now);
                Ok(FactorsRow {
                    factors: self.factors_of(&r),
                    recovery_codes_left: crate::account::recovery_left(&r),
                    pending_destination: pending.map(|p| p.phone.masked()).unwrap_or_default(),
                    pending_from: pending.map_or(0, |p| p.from),
                })
            }
            Ok(None) => Err(LoginError::NotEnrolled(name.to_string())),
            Err(e) => Err(LoginError::Storage(e.to_string())),
        }
    }

    /// Forgets every factor of `user` and has them enroll again at their
    /// next login (proof of a number, as with `unenrolled = "enroll"`). The
    /// old number is told.
    pub async fn reset_user(self: &Arc<Self>, _root: &Root, user: &str) -> Result<(), LoginError> {
        let name = Self::admin_user(user)?;
        if self.cfg.enrollment.is_none() {
            return Err(LoginError::InvalidArgument(
                "a reset user enrolls again at login, which needs an [enrollment] table with countries = [...] in smsotpd.toml".into(),
            ));
        }
        if !nss::user_exists(name.as_str()) {
            return Err(LoginError::InvalidArgument(format!("there is no user {name} on this system")));
        }
        let _turn = self.user_turn(name.as_str()).await;
        let old = match self.store.load(&name) {
            Ok(r) => r.map(|r| r.phone_at(self.clock.unix_now()).clone()),
            Err(StoreError::Corrupt { .. }) => None,
            Err(e) => return Err(LoginError::from(e)),
        };
        let now = self.clock.unix_now();
        self.store.save_reset(&name, now).map_err(LoginError::from)?;
        self.store.remove(&name).map_err(LoginError::from)?;
        self.lock().challenges.remove_user(name.as_str());
        audit::event(Event::UserReset)
            .field("user", name.as_str())
            .field("from_number", &old.as_ref().map(PhoneNumber::masked).unwrap_or_default())
            .log();
        self.note_admin_change("reset", &name);
        if let Some(old) = old {
            let body = format!(
                "SMS login for {name} on {} was reset by an administrator at {}; a number is set up again at the next login. If you did not expect this, tell your administrator.",
                self.hostname,
                crate::clock::format_utc(now)
            );
            self.notify_old_number(&name, old, body);
        }
        Ok(())
    }

    /// Lets a number enrolled at login sign in (`enrollment.approval`).
    pub async fn approve(&self, _root: &Root, user: &str) -> Result<(), LoginError> {
        let name = Self::admin_user(user)?;
        let _turn = self.user_turn(name.as_str()).await;
        let mut r = match self.store.load(&name) {
            Ok(Some(r)) => r,
            Ok(None) => return Err(LoginError::NotEnrolled(name.to_string())),
            Err(e) => return Err(LoginError::from(e)),
        };
        if !r.awaiting_approval {
            return Err(LoginError::InvalidArgument(format!("{name} is not waiting for approval")));
        }
        r.awaiting_approval = false;
        self.store.save(&name, &r).map_err(LoginError::from)?;
        audit::event(Event::Approved).field("user", name.as_str()).field("to", &r.phone.masked()).log();
        self.note_admin_change("approve", &name);
        Ok(())
    }

    pub(crate) fn info(&self, name: &UserName) -> Result<UserRow, LoginError> {
        let now = self.clock.unix_now();
        match self.store.load(name) {
            Ok(Some(r)) => Ok(UserRow {
                user: name.to_string(),
                destination: r.phone_at(now).masked(),
                failures: r.failures,
                locked_until: r.locked_until,
                state: if r.awaiting_approval {
                    UserState::AwaitingApproval
                } else if r.locked_until > now {
                    UserState::Locked
                } else {
                    UserState::Ok
                },
                trusted_machines: u32::try_from(r.trust.iter().filter(|t| t.expires > now && t.created <= now).count())
                    .unwrap_or(u32::MAX),
            }),
            Ok(None) => Err(LoginError::NotEnrolled(name.to_string())),
            Err(e) => {
                tracing::error!("{e}");
                Ok(UserRow {
                    user: name.to_string(),
                    destination: String::new(),
                    failures: 0,
                    locked_until: 0,
                    state: UserState::Unusable,
                    trusted_machines: 0,
                })
            }
        }
    }

    pub fn show(&self, _root: &Root, user: &str) -> Result<UserRow, LoginError> {
        let name = Self::admin_user(user)?;
        self.info(&name)
    }

    pub fn list(&self, _root: &Root) -> Result<Vec<UserRow>, LoginError> {
        let names = self.store.users().map_err(LoginError::from)?;
        names.iter().map(|n| self.info(n)).collect()
    }

    pub fn unlock(&self, _root: &Root, user: &str) -> Result<(), LoginError> {
        let name = Self::admin_user(user)?;
        let mut state = self.lock();
        state.volatile.decoy_failures.remove(name.as_str());
        state.volatile.sends.remove(name.as_str());
        match self.store.load(&name) {
            Ok(Some(mut r)) => {
                r.failures = 0;
                r.locked_until = 0;
                self.store.save(&name, &r).map_err(LoginError::from)?;
            }
            Ok(None) => return Err(LoginError::NotEnrolled(name.to_string())),
            Err(e) => return Err(LoginError::from(e)),
        }
        audit::event(Event::Unlocked).field("user", name.as_str()).log();
        self.note_admin_change("unlock", &name);
        Ok(())
    }

    /// A user's trust records that still apply.
    pub fn list_trust(&self, _root: &Root, user: &str) -> Result<Vec<TrustRow>, LoginError> {
        let name = Self::admin_user(user)?;
        match self.store.load(&name) {
            Ok(Some(r)) => Ok(self.trust_rows(&r)),
            Ok(None) => Err(LoginError::NotEnrolled(name.to_string())),
            Err(e) => Err(LoginError::Storage(e.to_string())),
        }
    }

    /// The trust records of `r` that still apply.
    pub(crate) fn trust_rows(&self, r: &UserRecord) -> Vec<TrustRow> {
        let now = self.clock.unix_now();
        r.trust
            .iter()
            .filter(|t| trust::applies(t, now))
            .map(|t| TrustRow {
                // Records are written by trust::add from a machine::Class.
                class: TrustClass::from_wire(&t.class).unwrap_or(TrustClass::Remote),
                machine: t.machine.clone(),
                service: t.service.clone(),
                created: t.created,
                expires: t.expires,
            })
            .collect()
    }

    /// Revokes one machine's trust (`machine` = its id) or, with "", all.
    pub async fn revoke_trust(&self, _root: &Root, user: &str, machine: &str) -> Result<u32, LoginError> {
        let name = Self::admin_user(user)?;
        let _turn = self.user_turn(name.as_str()).await;
        self.revoke_trust_of(&name, machine)
    }

    /// Within `name`'s turn.
    pub(crate) fn revoke_trust_of(&self, name: &UserName, machine: &str) -> Result<u32, LoginError> {
        let mut r = match self.store.load(name) {
            Ok(Some(r)) => r,
            Ok(None) => return Err(LoginError::NotEnrolled(name.to_string())),
            Err(e) => return Err(LoginError::from(e)),
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
        self.store.save(name, &r).map_err(LoginError::from)?;
        audit::event(Event::TrustRevoked)
            .field("user", name.as_str())
            .field("machine", if machine.is_empty() { "all" } else { machine })
            .field("count", &removed.to_string())
            .log();
        self.note_admin_change("revoke-trust", name);
        Ok(removed)
    }

    /// Sends a test SMS (no code) to an enrolled user or a number.
    pub async fn test_send(&self, _root: &Root, target: &str) -> Result<String, LoginError> {
        let (label, phone) = if target.starts_with('+') {
            ("-".to_owned(), PhoneNumber::parse(target).map_err(|e| LoginError::InvalidArgument(e.to_string()))?)
        } else {
            let name = Self::admin_user(target)?;
            match self.store.load(&name) {
                Ok(Some(r)) => (name.to_string(), r.phone_at(self.clock.unix_now()).clone()),
                Ok(None) => return Err(LoginError::NotEnrolled(name.to_string())),
                Err(e) => return Err(LoginError::from(e)),
            }
        };
        if self.provider.makes_codes() {
            return Err(LoginError::InvalidArgument(
                "twilio-verify sends its own codes only; test it with a real login instead".into(),
            ));
        }
        if !self.destination_allowed(&phone) {
            return Err(LoginError::InvalidArgument(format!(
                "{} is outside destinations.countries; no SMS may go there",
                phone.masked()
            )));
        }
        let body = format!("smsotp test message from {}. No action is needed.", self.hostname);
        let msg =
            Outgoing { to: &phone, body: &body, validity: self.cfg.codes.expiry, channel: Channel::Sms, user: "" };
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
