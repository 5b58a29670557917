//! What "this machine" is, for "trust this machine".
//!
//! Trusting an IP address alone lets everyone behind the same NAT inherit
//! the trust (google-authenticator's grace_period; why Duo refused it). With
//! sshd's `ExposeAuthInfo yes` and `AuthenticationMethods
//! publickey,keyboard-interactive`, the PAM environment carries the public
//! key that already authenticated (SSH_AUTH_INFO_0); the machine is then
//! that key's SHA256 fingerprint together with the client's network (/24 or
//! /64). Otherwise it is the exact remote address. Local logins (no remote
//! host) form their own class, so remote trust never opens the console or
//! sudo, and the reverse.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use crate::policy::{Origin, parse_rhost};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Remote,
    Local,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Remote => "remote",
            Class::Local => "local",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// Stable id stored in trust records, e.g. `key:SHA256:…@10.1.2.0/24`.
    pub id: String,
    pub class: Class,
}

/// The network a client address belongs to for key-bound trust.
fn network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// `SHA256:…` as `ssh-keygen -l` prints it, from the first `publickey`
/// line of SSH_AUTH_INFO_0 (`publickey ssh-ed25519 AAAA…`).
pub fn key_fingerprint(auth_info: &str) -> Option<String> {
    let line = auth_info.lines().find(|l| l.starts_with("publickey "))?;
    let mut parts = line.split_whitespace();
    parts.next();
    let _key_type = parts.next()?;
    let blob = base64_decode(parts.next()?)?;
    if blob.len() < 16 {
        return None;
    }
    let digest = Sha256::digest(&blob);
    Some(format!("SHA256:{}", base64_encode_unpadded(&digest)))
}

/// Identifies the machine a login comes from. `auth_info` is only believed
/// for sshd, the one service that sets it.
pub fn identify(service: &str, rhost: &str, auth_info: &str) -> Machine {
    let origin = parse_rhost(rhost);
    let key = if service == "sshd" { key_fingerprint(auth_info) } else { None };
    match (origin, key) {
        (Origin::Local, _) => Machine { id: "local".into(), class: Class::Local },
        (Origin::Address(ip), Some(fp)) => Machine { id: format!("key:{fp}@{}", network(ip)), class: Class::Remote },
        (Origin::Address(ip), None) => Machine { id: format!("addr:{ip}"), class: Class::Remote },
        (Origin::Name(name), Some(fp)) => Machine { id: format!("key:{fp}@host:{name}"), class: Class::Remote },
        (Origin::Name(name), None) => Machine { id: format!("host:{name}"), class: Class::Remote },
    }
}

/// OpenSSH prints fingerprints unpadded; SSH_AUTH_INFO_0 carries padded
/// keys, but a missing pad is no reason to lose the identity.
const SSH_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    base64::Engine::decode(&SSH_BASE64, s).ok()
}

fn base64_encode_unpadded(bytes: &[u8]) -> String {
    base64::Engine::encode(&SSH_BASE64, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    // From `ssh-keygen -t ed25519`; `ssh-keygen -lf` prints the fingerprint below.
    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIHknDtnueouadjwt27gXFJy+CfKFVaAcSTN2WnWa/gVF";
    const FP: &str = "SHA256:nenFoTNAbHqh+IVJ0roflndEnXerEyWss+9re6xstkk";

    #[test]
    fn fingerprints_match_ssh_keygen() {
        assert_eq!(key_fingerprint(&format!("publickey ssh-ed25519 {KEY}\n")).as_deref(), Some(FP));
        assert_eq!(key_fingerprint(&format!("password\npublickey ssh-ed25519 {KEY}")).as_deref(), Some(FP));
        assert_eq!(key_fingerprint("keyboard-interactive"), None);
        assert_eq!(key_fingerprint("publickey ssh-ed25519 !!!"), None);
        assert_eq!(key_fingerprint(""), None);
    }

    #[test]
    fn machines() {
        let auth = format!("publickey ssh-ed25519 {KEY}");
        let m = identify("sshd", "192.0.2.77", &auth);
        assert_eq!(m, Machine { id: format!("key:{FP}@192.0.2.0/24"), class: Class::Remote });
        assert_eq!(identify("sshd", "::ffff:192.0.2.9", &auth).id, m.id, "same key, same network");
        assert_eq!(identify("sshd", "2001:db8:1:2:3::9", &auth).id, format!("key:{FP}@2001:db8:1:2::/64"));
        assert_eq!(identify("sshd", "192.0.2.77", "").id, "addr:192.0.2.77");
        assert_eq!(identify("sudo", "192.0.2.77", &auth).id, "addr:192.0.2.77", "only sshd's auth info counts");
        assert_eq!(identify("sshd", "", &auth), Machine { id: "local".into(), class: Class::Local });
        assert_eq!(identify("login", "", ""), Machine { id: "local".into(), class: Class::Local });
        assert_eq!(identify("sshd", "Laptop.example", "").id, "host:laptop.example");
    }

    #[test]
    fn base64_round_trip() {
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            let enc = base64_encode_unpadded(s.as_bytes());
            assert_eq!(base64_decode(&enc).unwrap(), s.as_bytes());
        }
        assert_eq!(base64_encode_unpadded(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode_unpadded(b"fo"), "Zm8");
    }
}
