//! The contract between pam_sms.so, smsotpctl and smsotpd, in Rust.
//!
//! etc/dbus-1/org.smsotp.SmsOtp1.xml documents it for people; this crate is
//! the only place the Rust code spells a bus name, a method, a status string
//! or an error name. `tests/contract.rs` checks every value here against the
//! XML, and smsotpd's interface test checks its introspection against it.

mod connect;
mod context;
mod error;
mod proxy;
mod rows;
mod wire;

pub use connect::{connect_patiently, turned_away};
pub use context::{LoginContext, context_key, limits, truncate_bytes};
pub use error::Error;
pub use proxy::{SmsOtp1Proxy, User1Proxy};
pub use rows::{
    AccountStatus, ExplainKey, ExplainLine, Factor, FactorsRow, Happening, HistoryRow, TrustClass, TrustRow, UserRow,
    UserState,
};
pub use wire::{Action, Status, WireEnum};

/// The well-known name smsotpd owns on the system bus.
pub const BUS_NAME: &str = "org.smsotp.SmsOtp1";
/// The one object smsotpd serves.
pub const OBJECT_PATH: &str = "/org/smsotp/SmsOtp1";
/// The interface; the trailing 1 is its version (a breaking change is SmsOtp2).
pub const INTERFACE: &str = "org.smsotp.SmsOtp1";
/// The interface any user may call, acting only on their own account (the
/// daemon takes the account from the bus, never from an argument).
pub const USER_INTERFACE: &str = "org.smsotp.User1";
/// Where the system bus listens. The module never takes the address from the
/// environment (a sudo user controls DBUS_SYSTEM_BUS_ADDRESS).
pub const SYSTEM_BUS_ADDRESS: &str = "unix:path=/run/dbus/system_bus_socket";
