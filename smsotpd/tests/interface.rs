//! The D-Bus interface as served matches etc/dbus-1/org.smsotp.SmsOtp1.xml,
//! and works end to end over a peer-to-peer connection (no bus needed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use smsotp_proto::{Action, Error as WireError, OBJECT_PATH, SmsOtp1Proxy, Status};
use smsotpd::clock::{SharedClock, SystemClock};
use smsotpd::config::{Config, ExternalCredentials};
use smsotpd::dbus::SmsOtp;
use smsotpd::error::LoginError;
use zbus::DBusError;
use zbus::connection::Builder;

const XML: &str = include_str!("../../etc/dbus-1/org.smsotp.SmsOtp1.xml");
const IFACE: &str = "org.smsotp.SmsOtp1";

struct Fixture {
    _dir: tempfile::TempDir,
    outbox: std::path::PathBuf,
    _server: zbus::Connection,
    client: zbus::Connection,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let outbox = dir.path().join("outbox");
    let text = format!(
        "version = 1\nprovider = \"outbox\"\nstate_directory = \"{}\"\n[outbox]\npath = \"{}\"\n",
        dir.path().join("state").display(),
        outbox.display()
    );
    let cfg = Config::parse(&text, "test", &ExternalCredentials::default()).unwrap();
    let clock: SharedClock = Arc::new(SystemClock);
    let daemon = Arc::new(smsotpd::server::daemon(cfg, clock).unwrap());
    let (a, b) = tokio::net::UnixStream::pair().unwrap();
    let guid = zbus::Guid::generate();
    let server = Builder::unix_stream(a)
        .server(guid)
        .unwrap()
        .p2p()
        .serve_at(OBJECT_PATH, SmsOtp::new(smsotpd::dbus::Current::new(daemon.clone())))
        .unwrap()
        .serve_at(OBJECT_PATH, smsotpd::dbus_user::User::new(smsotpd::dbus::Current::new(daemon)))
        .unwrap();
    let client = Builder::unix_stream(b).p2p();
    let (server, client) = tokio::try_join!(server.build(), client.build()).unwrap();
    Fixture { _dir: dir, outbox, _server: server, client }
}

fn our_interface<'a>(node: &'a zbus_xml::Node<'a>) -> &'a zbus_xml::Interface<'a> {
    named(node, IFACE)
}

fn named<'a>(node: &'a zbus_xml::Node<'a>, name: &str) -> &'a zbus_xml::Interface<'a> {
    node.interfaces().iter().find(|i| i.name() == name).expect("interface present")
}

/// A comparable description: members with their typed, named, directed args.
fn shape(i: &zbus_xml::Interface<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for m in i.methods() {
        let args: Vec<String> =
            m.args().iter().map(|a| format!("{}:{:?}:{:?}", a.name().unwrap_or("?"), a.ty(), a.direction())).collect();
        out.push(format!("method {}({})", m.name(), args.join(", ")));
    }
    for s in i.signals() {
        let args: Vec<String> = s.args().iter().map(|a| format!("{}:{:?}", a.name().unwrap_or("?"), a.ty())).collect();
        out.push(format!("signal {}({})", s.name(), args.join(", ")));
    }
    for p in i.properties() {
        out.push(format!("property {}:{:?}:{:?}", p.name(), p.ty(), p.access()));
    }
    out.sort();
    out
}

#[tokio::test]
async fn introspection_matches_the_contract() {
    let f = fixture().await;
    let reply = f
        .client
        .call_method(None::<&str>, OBJECT_PATH, Some("org.freedesktop.DBus.Introspectable"), "Introspect", &())
        .await
        .unwrap();
    let served: String = reply.body().deserialize().unwrap();
    let served = zbus_xml::Node::from_reader(served.as_bytes()).unwrap();
    let contract = zbus_xml::Node::from_reader(XML.as_bytes()).unwrap();
    assert_eq!(shape(our_interface(&served)), shape(our_interface(&contract)));
    assert!(shape(our_interface(&contract)).len() >= 11, "the contract lists every method");
    let user = smsotp_proto::USER_INTERFACE;
    assert_eq!(shape(named(&served, user)), shape(named(&contract, user)));
}

#[test]
fn every_internal_error_becomes_a_named_wire_error() {
    let text = || String::new();
    let internal = [
        LoginError::PermissionDenied(text()),
        LoginError::InvalidArgument(text()),
        LoginError::UnknownChallenge,
        LoginError::Busy,
        LoginError::RateLimited,
        LoginError::DeliveryFailed(text()),
        LoginError::CheckFailed(text()),
        LoginError::Storage(text()),
        LoginError::StoreUnavailable(text()),
        LoginError::NotEnrolled(text()),
        LoginError::Internal(text()),
    ];
    let mut made: Vec<String> = internal.into_iter().map(|e| WireError::from(e).name().to_string()).collect();
    let mut named: Vec<String> = WireError::every_named().iter().map(|e| e.name().to_string()).collect();
    made.sort();
    made.dedup();
    named.sort();
    assert_eq!(made, named, "error.rs maps onto every error of the contract, and only those");
}

#[tokio::test]
async fn a_login_over_p2p() {
    // Over p2p the caller is this process: the daemon answers root only.
    assert!(nix::unistd::geteuid().is_root(), "run as root (tests/run.sh does): smsotpd answers uid 0 only");
    let f = fixture().await;
    let proxy = SmsOtp1Proxy::new(&f.client).await.unwrap();
    assert_eq!(proxy.version().await.unwrap(), env!("CARGO_PKG_VERSION"));
    assert_eq!(proxy.enroll("root", "+14155550123").await.unwrap(), "******0123");
    let ctx = HashMap::from([(smsotp_proto::context_key::SERVICE, "sshd")]);
    let (action, challenge, destination) = proxy.start_login("root", ctx).await.unwrap();
    assert_eq!((action, destination.as_str()), (Action::Code, "******0123"));
    let outbox = std::fs::read_to_string(&f.outbox).unwrap();
    let body = outbox.split("body=").nth(1).unwrap();
    let code: String = body.chars().take_while(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 6);
    assert_eq!(proxy.check_code(&challenge, "000000x").await.unwrap(), (Status::Wrong, 2));
    assert_eq!(proxy.check_code(&challenge, &code).await.unwrap().0, Status::Accepted);
    let err = proxy.check_code(&challenge, &code).await.unwrap_err();
    assert!(matches!(err, WireError::UnknownChallenge(_)), "{err:?}");
    match proxy.enroll("root", "12345").await.unwrap_err() {
        WireError::InvalidArgument(text) => assert!(text.contains("E.164"), "{text}"),
        other => panic!("{other:?}"),
    }
    let rows = proxy.list_users().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, smsotp_proto::UserState::Ok);
}
