//! Enrollment at login (`unenrolled = "enroll"`): a user without a number
//! who has passed the password gives one, gets a code there, and is
//! enrolled with it only once the code is typed (proof of possession).
//! Numbers are normalised where that is unambiguous and must start with a
//! calling code of `enrollment.countries` before anything is sent, so a
//! stranger's script cannot make us text premium ranges. Unknown names are
//! asked the same questions and never get enrolled.

use std::sync::Arc;

use smsotp_proto::LoginContext;

use crate::audit::{self, Event};
use crate::authz::Root;
use crate::challenge::{self, AfterWrong, ChallengeId, Enrolling, Secret};
use crate::clock::Tick;
use crate::daemon::Daemon;
use crate::delivery::{SendJob, pretend_sent};
use crate::error::LoginError;
use crate::names::{PhoneNumber, UserName};
use crate::nss;
use crate::pace::ANSWER_FLOOR;
use crate::provider::Provider;
use crate::store::UserRecord;

/// "+1 (415) 555-0123", "+44 20 7946 0958", "0044 20...": the E.164 form,
/// or why not. Only unambiguous rewrites: spaces, dashes, dots, brackets
/// go, a leading 00 becomes +; a national number (no country code) is
/// refused, never guessed.
pub fn normalize(typed: &str) -> Result<PhoneNumber, String> {
    let kept: String = typed.trim().chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}')).collect();
    let kept = match kept.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => kept,
    };
    if !kept.starts_with('+') {
        return Err("write the number with + and the country code, e.g. +14155550123".into());
    }
    PhoneNumber::parse(&kept).map_err(|e| e.to_string())
}

pub use crate::limits::allowed;

impl<P: Provider> Daemon<P> {
    /// Why Lookup refuses a number given for enrollment (twilio.lookup_refuse),
    /// or None. Lookup failing refuses nothing but the enrollment, now.
    pub(crate) async fn line_type_refusal(&self, phone: &PhoneNumber) -> Result<Option<String>, LoginError> {
        self.provider.refuses_number(phone, self.deadline()).await.map_err(|e| {
            tracing::warn!("{}: Lookup failed for {}: {e}", self.provider.name(), phone.masked());
            LoginError::DeliveryFailed(format!("the number could not be checked now: {e}"))
        })
    }
}

impl<P: Provider> Daemon<P> {
    /// The right code proved the number: the user is enrolled with it,
    /// unless an administrator enrolled them meanwhile.
    pub(crate) fn enroll_at_login(&self, name: &UserName, phone: &PhoneNumber) -> Result<(), LoginError> {
        if let Ok(Some(_)) = self.store.load(name) {
            tracing::warn!("{name} was enrolled by an administrator meanwhile; that number stays");
            return Ok(());
        }
        let mut record = UserRecord::new(phone.clone());
        let approval = self.cfg.enrollment.as_ref().is_some_and(|e| e.approval);
        record.awaiting_approval = approval;
        self.store.save(name, &record).map_err(|e| {
            tracing::error!("could not enroll {name} at login: {e}");
            LoginError::Storage(e.to_string())
        })?;
        if let Err(e) = self.store.remove_reset(name) {
            tracing::warn!("{name} is enrolled; the reset mark stays behind: {e}");
        }
        let event = if approval { Event::AwaitingApproval } else { Event::EnrolledAtLogin };
        audit::event(event).field("user", name.as_str()).field("to", &phone.masked()).log();
        Ok(())
    }

    /// The number an enrolling user typed: checked, then the code goes to
    /// it. The masked number comes back. A refused number counts as a
    /// wrong answer.
    pub async fn enroll_number(self: &Arc<Self>, _root: &Root, id: &str, typed: &str) -> Result<String, LoginError> {
        let id = Self::parse_id(id)?;
        let Some(enrollment) = &self.cfg.enrollment else {
            return Err(LoginError::InvalidArgument(
                "enrollment at login is off (unenrolled is not \"enroll\")".into(),
            ));
        };
        let mut checked = normalize(typed).and_then(|p| {
            if allowed(&p, &enrollment.countries) && self.destination_allowed(&p) {
                Ok(p)
            } else {
                Err(format!(
                    "numbers from that country cannot be used here (allowed: {})",
                    enrollment.countries.join(", ")
                ))
            }
        });
        // Lookup for every name alike: its time must not tell real ones apart.
        if let Ok(p) = &checked
            && let Some(why) = self.line_type_refusal(p).await?
        {
            checked = Err(why);
        }
        // From here the work differs for real and unknown names (pace.rs).
        let ready = self.clock.tick();
        let answer = self.take_number(id, checked, ready);
        self.pace(ready, ANSWER_FLOOR).await;
        answer
    }

    fn take_number(
        self: &Arc<Self>,
        id: ChallengeId,
        checked: Result<PhoneNumber, String>,
        since: Tick,
    ) -> Result<String, LoginError> {
        let mut state = self.lock();
        let Some(c) = state.challenges.get_mut(&id) else {
            return Err(LoginError::UnknownChallenge);
        };
        if c.enrolling != Enrolling::AwaitingNumber {
            return Err(LoginError::InvalidArgument("this login is not waiting for a number".into()));
        }
        let (user, service, rhost) = (c.user.clone(), c.service.clone(), c.rhost.clone());
        let line = |e: Event| audit::event(e).field("user", &user).field("service", &service).field("rhost", &rhost);
        let phone = match checked {
            Ok(p) => p,
            Err(why) => {
                line(Event::EnrollNumberRefused).field("reason", &why).log();
                if c.wrong() == AfterWrong::NoTriesLeft {
                    state.challenges.remove(&id);
                    line(Event::TooManyTries).log();
                    return Err(LoginError::InvalidArgument(why));
                }
                return Err(LoginError::InvalidArgument(why));
            }
        };
        // Real users get the code; unknown names are answered alike and
        // sent nothing (their secret stays a decoy).
        let real = UserName::parse(&user).is_ok() && nss::user_exists(&user);
        c.destination = phone.masked();
        c.enrolling = Enrolling::Sent(phone.clone());
        let job = if real && matches!(c.secret, Secret::Decoy) {
            let code = if self.provider.makes_codes() {
                c.secret = Secret::Remote { reference: String::new() };
                None
            } else {
                let code =
                    challenge::new_code(self.cfg.codes.length).map_err(|e| LoginError::Internal(e.to_string()))?;
                c.secret = Secret::Local(code.clone());
                Some(code)
            };
            c.delivery = challenge::Delivery::Pending;
            let ctx = LoginContext { service: service.clone(), rhost: rhost.clone(), ..LoginContext::default() };
            Some(SendJob {
                user: user.clone(),
                phone: phone.clone(),
                code,
                ctx,
                event: Event::EnrollCodeSent,
                round: None,
                channel: crate::provider::Channel::Sms,
                since,
            })
        } else {
            pretend_sent(&mut state, &id, since);
            None
        };
        drop(state);
        if let Some(job) = job {
            self.send_in_background(id, job);
        }
        Ok(phone.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_normalised_only_where_unambiguous() {
        assert_eq!(normalize("+1 (415) 555-0123").unwrap().e164(), "+14155550123");
        assert_eq!(normalize(" 0044 20.7946.0958 ").unwrap().e164(), "+442079460958");
        assert!(normalize("415 555 0123").unwrap_err().contains("+ and the country code"));
        assert!(normalize("+1 415 CALL NOW").is_err());
        assert!(normalize("").is_err());
    }

    #[test]
    fn only_listed_calling_codes_pass() {
        let c = vec!["+1".to_owned(), "+44".to_owned()];
        assert!(allowed(&normalize("+14155550123").unwrap(), &c));
        assert!(allowed(&normalize("+447911123456").unwrap(), &c));
        assert!(!allowed(&normalize("+8821234567890").unwrap(), &c), "premium satellite range");
        assert!(!allowed(&normalize("+33612345678").unwrap(), &c));
    }
}
