//! "Trust this machine?" after a right code (policy.ask_user): the offer
//! lives two minutes and only the connection that earned it can take it.

use crate::audit::{self, Event};
use crate::authz::Root;
use crate::daemon::Daemon;
use crate::error::LoginError;
use crate::names::UserName;
use crate::provider::Provider;
use crate::trust::TrustPlan;

impl<P: Provider> Daemon<P> {
    pub(crate) fn audit_trust_recorded(&self, name: &UserName, rhost: &str, p: &TrustPlan) {
        audit::event(Event::TrustRecorded)
            .field("user", name.as_str())
            .field("service", &p.service)
            .field("rhost", rhost)
            .field("machine", &p.machine.id)
            .field("days", &p.days.to_string())
            .log();
    }

    /// The user said yes to "Trust this machine?" after a right code.
    /// The record is read and written under the user's turn, outside the
    /// global lock (turn.rs).
    pub async fn trust_machine(&self, _root: &Root, id: &str) -> Result<(), LoginError> {
        let id = Self::parse_id(id)?;
        let offer = {
            let mut state = self.lock();
            let now = self.clock.tick();
            match state.offers.get(&id) {
                Some(o) if o.until > now => {}
                _ => return Err(LoginError::UnknownChallenge),
            }
            state.offers.remove(&id).ok_or(LoginError::UnknownChallenge)?
        };
        let _turn = self.user_turn(offer.user.as_str()).await;
        let mut r = match self.store.load(&offer.user) {
            Ok(Some(r)) => r,
            Ok(None) => return Err(LoginError::NotEnrolled(offer.user.to_string())),
            Err(e) => return Err(LoginError::from(e)),
        };
        let p = &offer.plan;
        self.add_trust(&mut r.trust, p);
        self.store.save(&offer.user, &r).map_err(LoginError::from)?;
        self.audit_trust_recorded(&offer.user, "", p);
        Ok(())
    }
}
