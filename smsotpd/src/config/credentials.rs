//! Where smsotpctl finds the credentials systemd gives smsotpd.
//!
//! The daemon reads `$CREDENTIALS_DIRECTORY`, which exists only inside its
//! unit. `smsotpctl check-config` and `doctor` run outside it, so they look
//! where the unit says: the service's credentials directory while it runs,
//! else the `LoadCredential=` lines of smsotpd.service and its drop-ins.

use std::path::{Path, PathBuf};

use super::{CREDENTIAL_API_KEY_SECRET, CREDENTIAL_AUTH_TOKEN, ConfigError, ExternalCredentials, read_credential};

pub const UNIT: &str = "smsotpd.service";

/// Unit directories, most important first (systemd.unit(5)).
pub const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// The credentials, and a sentence saying where they came from.
pub fn for_tools(unit_dirs: &[&str]) -> Result<(ExternalCredentials, String), ConfigError> {
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from) {
        let creds = super::read_credentials(&dir)?;
        return Ok((creds, format!("$CREDENTIALS_DIRECTORY ({})", dir.display())));
    }
    let running = Path::new("/run/credentials").join(UNIT);
    if running.is_dir() {
        let creds = super::read_credentials(&running)?;
        return Ok((creds, format!("{} (the running service's)", running.display())));
    }
    let texts = unit_texts(unit_dirs);
    let loaded = load_credential_lines(texts.iter().map(String::as_str));
    let mut creds = ExternalCredentials::default();
    let mut from = Vec::new();
    for (id, path) in &loaded {
        let slot = match id.as_str() {
            CREDENTIAL_AUTH_TOKEN => &mut creds.auth_token,
            CREDENTIAL_API_KEY_SECRET => &mut creds.api_key_secret,
            super::CREDENTIAL_PLIVO_AUTH_TOKEN => &mut creds.plivo_auth_token,
            super::fleet::CREDENTIAL_POSTGRESQL_PASSWORD => &mut creds.postgresql_password,
            super::fleet::CREDENTIAL_LDAP_BIND_PASSWORD => &mut creds.ldap_bind_password,
            _ => continue,
        };
        *slot = read_credential(path)?;
        if slot.is_some() {
            from.push(format!("{id} from {}", path.display()));
        }
    }
    let said = if from.is_empty() {
        "none outside the file (no LoadCredential= in smsotpd.service)".to_owned()
    } else {
        format!("{} (LoadCredential= in {UNIT})", from.join(", "))
    };
    Ok((creds, said))
}

/// The unit file and its drop-ins, in the order systemd applies them: the
/// main file from the most important directory that has one, then every
/// `smsotpd.service.d/*.conf` by file name (a name in a more important
/// directory hides the same name in a less important one).
fn unit_texts(unit_dirs: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(main) = unit_dirs.iter().map(|d| Path::new(d).join(UNIT)).find(|p| p.is_file()) {
        out.extend(std::fs::read_to_string(main).ok());
    }
    let mut dropins: std::collections::BTreeMap<String, PathBuf> = std::collections::BTreeMap::new();
    for dir in unit_dirs.iter().rev() {
        let Ok(entries) = std::fs::read_dir(Path::new(dir).join(format!("{UNIT}.d"))) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".conf") {
                dropins.insert(name, e.path());
            }
        }
    }
    out.extend(dropins.values().filter_map(|p| std::fs::read_to_string(p).ok()));
    out
}

/// `LoadCredential=ID:PATH` lines of [Service] sections, in order; an empty
/// `LoadCredential=` forgets the earlier ones, as systemd does.
pub fn load_credential_lines<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for text in texts {
        let mut in_service = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                in_service = line == "[Service]";
                continue;
            }
            let Some(value) = line.strip_prefix("LoadCredential=").filter(|_| in_service) else { continue };
            let value = value.trim();
            if value.is_empty() {
                out.clear();
            } else if let Some((id, path)) = value.split_once(':') {
                out.retain(|(known, _)| known != id);
                out.push((id.to_owned(), PathBuf::from(path)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_credential_lines_as_systemd_reads_them() {
        let main = "[Unit]\nLoadCredential=ignored:/x\n[Service]\n#LoadCredential=twilio-auth-token:/commented\n\
                    LoadCredential=twilio-auth-token:/etc/smsotpd/twilio-auth-token\n";
        let dropin = "[Service]\nLoadCredential=twilio-api-key-secret:/etc/smsotpd/key\n";
        let got = load_credential_lines([main, dropin]);
        assert_eq!(
            got,
            [
                ("twilio-auth-token".to_owned(), PathBuf::from("/etc/smsotpd/twilio-auth-token")),
                ("twilio-api-key-secret".to_owned(), PathBuf::from("/etc/smsotpd/key")),
            ]
        );
        let reset = "[Service]\nLoadCredential=\nLoadCredential=twilio-auth-token:/elsewhere\n";
        assert_eq!(
            load_credential_lines([main, reset]),
            [("twilio-auth-token".to_owned(), PathBuf::from("/elsewhere"))]
        );
    }

    #[test]
    fn a_dropin_supplies_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        let lib = dir.path().join("lib");
        std::fs::create_dir_all(etc.join("smsotpd.service.d")).unwrap();
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::write(lib.join(UNIT), "[Service]\nExecStart=/usr/sbin/smsotpd\n").unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "f00dfeedf00dfeedf00dfeedf00dfeed\n").unwrap();
        std::fs::write(
            etc.join("smsotpd.service.d/override.conf"),
            format!("[Service]\nLoadCredential=twilio-auth-token:{}\n", token.display()),
        )
        .unwrap();
        let dirs = [etc.to_str().unwrap(), lib.to_str().unwrap()];
        let (creds, said) = for_tools(&dirs).unwrap();
        assert_eq!(creds.auth_token.as_ref().map(|s| s.expose()), Some("f00dfeedf00dfeedf00dfeedf00dfeed"));
        assert!(said.contains("twilio-auth-token from") && said.contains("LoadCredential="), "{said}");
    }
}
