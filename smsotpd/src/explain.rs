//! What a login would meet (policy rule, machine, trust, lockout), without
//! sending anything: `smsotpctl explain`.

use smsotp_proto::{ExplainKey, ExplainLine, LoginContext};

use crate::authz::Root;
use crate::config::Unenrolled;
use crate::daemon::Daemon;
use crate::error::LoginError;
use crate::machine;
use crate::names::UserName;
use crate::nss;
use crate::policy::{self, Facts};
use crate::provider::Provider;
use crate::trust;

impl<P: Provider> Daemon<P> {
    /// What a login with this context would meet, without sending anything.
    pub fn explain(&self, _root: &Root, user: &str, ctx: &LoginContext) -> Result<Vec<ExplainLine>, LoginError> {
        let mut out: Vec<ExplainLine> = Vec::new();
        let mut say = |key: ExplainKey, text: String| out.push(ExplainLine { key, text });
        let parsed = UserName::parse(user);
        let origin = policy::parse_rhost(&ctx.rhost);
        let groups = parsed.as_ref().map(nss::user_groups).unwrap_or_default();
        let decision = self.cfg.policy.decide(&Facts { user, service: &ctx.service, origin: &origin, groups: &groups });
        let machine = machine::identify(&ctx.service, &ctx.rhost, &ctx.auth_info);
        say(ExplainKey::Decision, decision.action.to_string());
        say(ExplainKey::Rule, decision.source().to_owned());
        say(ExplainKey::Groups, if groups.is_empty() { "-".into() } else { groups.join(",") });
        say(ExplainKey::Machine, format!("{} ({})", machine.id, machine.class.name()));
        let now = self.clock.unix_now();
        let record = match &parsed {
            Ok(n) => self.store.load(n),
            Err(_) => Ok(None),
        };
        let enrolled = match &record {
            Ok(Some(r)) => format!("yes, {}", r.phone_at(now).masked()),
            Ok(None) => "no".into(),
            Err(_) => "record unusable".into(),
        };
        say(ExplainKey::Enrolled, enrolled);
        let outcome = match (decision.action, &record) {
            (policy::Action::Deny, _) => "denied (no code is sent)".to_owned(),
            (policy::Action::Skip, _) => "allowed without a code (logged)".to_owned(),
            (_, Err(_)) => "refused: the user's record is unusable".to_owned(),
            (_, Ok(None)) => match decision.unenrolled.unwrap_or(self.cfg.unenrolled) {
                Unenrolled::Allow => "not enrolled: pam_sms returns PAM_IGNORE".to_owned(),
                Unenrolled::Deny => "not enrolled: prompted like anyone else, never passes".to_owned(),
                Unenrolled::Enroll => {
                    "not enrolled: asked for a mobile number, enrolled once the code sent there is typed".to_owned()
                }
            },
            (_, Ok(Some(r))) if r.locked_until > now => {
                format!("locked out until {}", crate::clock::format_utc(r.locked_until))
            }
            (policy::Action::Trust { .. }, Ok(Some(r))) => {
                match trust::find(&r.trust, &machine, &ctx.service, &self.hostname, now) {
                    Some(t) => format!("allowed without a code: trusted until {}", crate::clock::format_utc(t.expires)),
                    None => "a code is sent; a right code trusts this machine".to_owned(),
                }
            }
            (_, Ok(Some(_))) => "a code is sent".to_owned(),
        };
        say(ExplainKey::Outcome, outcome);
        Ok(out)
    }
}
