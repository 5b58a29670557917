//! What the system's user database says, resolved by the daemon (never
//! taken from the caller).

use crate::names::UserName;

/// Whether the system knows this user (getent passwd).
pub fn user_exists(name: &str) -> bool {
    nix::unistd::User::from_name(name).ok().flatten().is_some()
}

/// The user's primary and supplementary group names, resolved through NSS
/// by the daemon (never taken from the caller).
pub fn user_groups(name: &UserName) -> Vec<String> {
    let Ok(Some(user)) = nix::unistd::User::from_name(name.as_str()) else {
        return Vec::new();
    };
    let Ok(cname) = std::ffi::CString::new(name.as_str()) else {
        return Vec::new();
    };
    let gids = match nix::unistd::getgrouplist(&cname, user.gid) {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!("cannot list the groups of {name}: {e}; group rules will not match");
            vec![user.gid]
        }
    };
    gids.into_iter().filter_map(|g| nix::unistd::Group::from_gid(g).ok().flatten()).map(|g| g.name).collect()
}
