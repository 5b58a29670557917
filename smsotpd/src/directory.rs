//! Numbers from the directory (`phone_source = "ldap"`): the user's entry's
//! number attribute (default `mobile`), read over LDAPS, StartTLS or ldapi,
//! cached for `ldap.cache_seconds`.
//!
//! The store keeps the number first seen (it is pinned): a directory number
//! that differs later is a number change like any other, because in many
//! directories users may edit their own `mobile`. The old number is told,
//! trust is revoked and, with `ldap.on_change = "approve"`, the new number
//! waits for `smsotpctl approve`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};

use crate::audit::{self, Event};
use crate::clock::Tick;
use crate::config::fleet::{Ldap, LdapBind};
use crate::daemon::Daemon;
use crate::error::LoginError;
use crate::names::{PhoneNumber, UserName};
use crate::provider::Provider;
use crate::store::UserRecord;

pub struct Directory {
    cfg: Ldap,
    /// user -> (when read, the number then); misses are cached too.
    cache: Mutex<HashMap<String, (Tick, Option<PhoneNumber>)>>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Directory {
    pub fn new(cfg: Ldap) -> Result<Directory, String> {
        let tls = match &cfg.ca_file {
            Some(ca) => Some(Arc::new(crate::store::schema::tls_config("ldap", ca, cfg.client_cert.as_ref())?)),
            None => None,
        };
        Ok(Directory { cfg, cache: Mutex::new(HashMap::new()), tls })
    }

    fn cached(&self, user: &str, now: Tick) -> Option<Option<PhoneNumber>> {
        let cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.get(user).filter(|(at, _)| at.saturating_add(self.cfg.cache) > now).map(|(_, n)| n.clone())
    }

    /// The user's number in the directory: Ok(None) when the entry has none
    /// (or there is no entry). Err: the directory did not answer, or the
    /// value is not a number.
    pub async fn number(&self, user: &UserName, now: Tick) -> Result<Option<PhoneNumber>, String> {
        if let Some(hit) = self.cached(user.as_str(), now) {
            return Ok(hit);
        }
        let number = tokio::time::timeout(self.cfg.timeout, self.search(user)).await.map_err(|_| {
            format!("the directory {} did not answer within {} s", self.cfg.url, self.cfg.timeout.as_secs())
        })??;
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= 4096 {
            cache.clear();
        }
        cache.insert(user.to_string(), (now, number.clone()));
        Ok(number)
    }

    async fn search(&self, user: &UserName) -> Result<Option<PhoneNumber>, String> {
        let what = |e: ldap3::LdapError| format!("the directory {}: {e}", self.cfg.url);
        let mut settings = LdapConnSettings::new().set_conn_timeout(self.cfg.timeout).set_starttls(self.cfg.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.cfg.url).await.map_err(what)?;
        ldap3::drive!(conn);
        match &self.cfg.bind {
            LdapBind::Anonymous => {}
            LdapBind::Simple { dn, password } => {
                ldap.simple_bind(dn, password.expose()).await.and_then(|r| r.success()).map_err(what)?;
            }
            LdapBind::SaslExternal => {
                ldap.sasl_external_bind().await.and_then(|r| r.success()).map_err(what)?;
            }
        }
        let filter = self.cfg.filter.replace("{user}", &ldap3::ldap_escape(user.as_str()));
        let (entries, _) = ldap
            .search(&self.cfg.base, Scope::Subtree, &filter, vec![self.cfg.attribute.as_str()])
            .await
            .and_then(|r| r.success())
            .map_err(what)?;
        let _ = ldap.unbind().await;
        if entries.len() > 1 {
            return Err(format!(
                "ldap.filter finds {} entries for {user} under {}; it must find one",
                entries.len(),
                self.cfg.base
            ));
        }
        let Some(entry) = entries.into_iter().next() else { return Ok(None) };
        let entry = SearchEntry::construct(entry);
        let value = entry
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&self.cfg.attribute))
            .and_then(|(_, v)| v.first().cloned());
        match value {
            None => Ok(None),
            Some(v) => crate::enroll::normalize(&v).map(Some).map_err(|e| {
                format!(
                    "the {} of {user} in the directory is not a number with a country code ({e})",
                    self.cfg.attribute
                )
            }),
        }
    }
}

/// What the directory's number means for a record.
enum Follow {
    /// Nothing to do (the same number, or no number and no record): the
    /// record as it was.
    Keep(Option<UserRecord>),
    /// An enrolled user's entry has no number now.
    Missing,
    /// A first number: enroll with it.
    Enroll(PhoneNumber),
    /// Another number than the one pinned in the record.
    Change(UserRecord, PhoneNumber),
}

fn follow(record: Option<UserRecord>, number: Option<&PhoneNumber>) -> Follow {
    match (record, number) {
        (None, None) => Follow::Keep(None),
        (Some(r), Some(n)) if r.phone == *n => Follow::Keep(Some(r)),
        (Some(_), None) => Follow::Missing,
        (None, Some(n)) => Follow::Enroll(n.clone()),
        (Some(r), Some(n)) => Follow::Change(r, n.clone()),
    }
}

impl<P: Provider> Daemon<P> {
    /// Brings `seen`, the record a login just read for `name`, in line with
    /// the directory, and returns it as it now stands (`seen` itself
    /// without `phone_source = "ldap"`, or when nothing changes: no second
    /// read). A number seen for the first time enrolls the user; a
    /// different one is a number change; an entry without a number refuses
    /// a user who had one.
    pub(crate) async fn follow_directory(
        self: &Arc<Self>,
        name: &UserName,
        seen: Option<UserRecord>,
    ) -> Result<Option<UserRecord>, LoginError> {
        let Some(directory) = &self.directory else { return Ok(seen) };
        let line = |e: Event| audit::event(e).field("user", name.as_str());
        let number = match directory.number(name, self.clock.tick()).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!("{e}; logins of directory users fail closed until it answers");
                line(Event::DirectoryUnavailable).log();
                return Err(LoginError::StoreUnavailable(e));
            }
        };
        let missing = || {
            line(Event::DirectoryNumberMissing).log();
            Err(LoginError::Storage(format!(
                "{name} is enrolled but the directory entry has no {} now; no login until it has one again",
                directory.cfg.attribute
            )))
        };
        match follow(seen, number.as_ref()) {
            Follow::Keep(seen) => return Ok(seen),
            Follow::Missing => return missing(),
            Follow::Enroll(phone) | Follow::Change(_, phone) if !self.destination_allowed(&phone) => {
                line(Event::DestinationRefused).field("to", &phone.masked()).log();
                return Err(LoginError::Storage(format!(
                    "the directory's number for {name} is outside destinations.countries"
                )));
            }
            Follow::Enroll(_) | Follow::Change(..) => {}
        }
        // A change: in the user's turn, on the record as it is now.
        let _turn = self.user_turn(name.as_str()).await;
        let record = self.store.load(name).map_err(LoginError::from)?;
        match follow(record, number.as_ref()) {
            Follow::Keep(record) => Ok(record),
            Follow::Missing => missing(),
            Follow::Enroll(phone) => {
                let record = UserRecord::new(phone.clone());
                self.store.save(name, &record).map_err(LoginError::from)?;
                line(Event::EnrolledFromDirectory).field("to", &phone.masked()).log();
                Ok(Some(record))
            }
            Follow::Change(mut r, phone) => {
                let old = std::mem::replace(&mut r.phone, phone.clone());
                r.pending_phone = None;
                r.trust.clear();
                r.awaiting_approval = directory.cfg.approve_changes;
                self.store.save(name, &r).map_err(LoginError::from)?;
                line(Event::DirectoryNumberChanged)
                    .field("from", &old.masked())
                    .field("to", &phone.masked())
                    .field("approval", if r.awaiting_approval { "required" } else { "no" })
                    .log();
                let body = format!(
                    "The number for SMS login codes of {name} on {} was changed in the directory to {} at {}. If this was not you, tell your administrator now.",
                    self.hostname,
                    phone.masked(),
                    crate::clock::format_utc(self.clock.unix_now())
                );
                self.notify_old_number(name, old, body);
                Ok(Some(r))
            }
        }
    }
}
