//! Closed sets of kebab-case strings that travel as D-Bus `s`.

/// A closed set of values that travel as strings.
pub trait WireEnum: Sized + Copy + 'static {
    /// Every value, in the order the XML documents them.
    const ALL: &'static [Self];
    fn wire(self) -> &'static str;
    fn from_wire(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.wire() == s)
    }
}

/// Declares a [`WireEnum`] with serde and zvariant impls (signature `s`).
/// An unknown string fails to deserialize, so an answer from a newer daemon
/// is an error, never a guess.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant,)+ }

        impl $crate::wire::WireEnum for $name {
            const ALL: &'static [Self] = &[$($name::$variant,)+];
            fn wire(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad($crate::wire::WireEnum::wire(*self))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($crate::wire::WireEnum::wire(*self))
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                <Self as $crate::wire::WireEnum>::from_wire(&s).ok_or_else(|| {
                    let shown: String = s.chars().take(32).collect();
                    serde::de::Error::custom(format!(concat!("unknown ", stringify!($name), " {:?}"), shown))
                })
            }
        }

        impl zbus::zvariant::Type for $name {
            const SIGNATURE: &'static zbus::zvariant::Signature = &zbus::zvariant::Signature::Str;
        }
    };
}
pub(crate) use wire_enum;

wire_enum! {
    /// StartLogin's answer: what the module does next.
    Action {
        /// A code was sent: prompt for it.
        Code = "code",
        /// Policy needs no code for this login (the daemon logged it).
        Allow = "allow",
        /// Not enrolled and `unenrolled = "allow"`: PAM_IGNORE.
        Ignore = "ignore",
        /// Policy refuses this login.
        Deny = "deny",
        /// Too many failed codes: refused until the lockout ends.
        LockedOut = "locked-out",
        /// Not enrolled and `unenrolled = "enroll"`: ask for a number
        /// (EnrollNumber), then for the code sent to it.
        Enroll = "enroll",
        /// StartSignIn only: the default factor is the authenticator app;
        /// nothing was sent. Prompt for the app's code.
        Totp = "totp",
        /// Enrolled at login, waiting for an administrator's approval.
        AwaitingApproval = "awaiting-approval",
    }
}

wire_enum! {
    /// CheckCode's and Resend's answer.
    Status {
        Accepted = "accepted",
        /// Right code; ask whether to trust the machine (detail = days).
        AcceptedOfferTrust = "accepted-offer-trust",
        Wrong = "wrong",
        Resent = "resent",
        /// A new code is on its way by a phone call (the login's factor is
        /// "voice": asked for, or the daemon failed over to a call).
        ResentByCall = "resent-by-call",
        ResendRefused = "resend-refused",
        TooManyTries = "too-many-tries",
        Expired = "expired",
        LockedOut = "locked-out",
        /// UseFactor: answers now go to the factor asked for.
        Switched = "switched",
        /// The right code enrolled the number; an administrator must
        /// approve it before it signs anyone in.
        AwaitingApproval = "awaiting-approval",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_value_round_trips() {
        for a in Action::ALL {
            assert_eq!(Action::from_wire(a.wire()), Some(*a));
        }
        for s in Status::ALL {
            assert_eq!(Status::from_wire(s.wire()), Some(*s));
        }
        assert_eq!(Action::from_wire("Code"), None);
        assert_eq!(Status::from_wire(""), None);
    }

    #[test]
    fn an_unknown_value_does_not_deserialize() {
        use zbus::zvariant::{LE, serialized::Context, to_bytes};
        let ctxt = Context::new_dbus(LE, 0);
        let good = to_bytes(ctxt, &"resent").unwrap();
        let (s, _): (Status, _) = good.deserialize().unwrap();
        assert_eq!(s, Status::Resent);
        let bad = to_bytes(ctxt, &"accepted-by-magic").unwrap();
        let err = bad.deserialize::<Status>().unwrap_err().to_string();
        assert!(err.contains("unknown Status \"accepted-by-magic\""), "{err}");
    }
}
