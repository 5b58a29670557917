//! The D-Bus interface as served matches etc/dbus-1/org.smsotp.SmsOtp1.xml,
//! and works end to end over a peer-to-peer connection (no bus needed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use smsotpd::clock::{SharedClock, SystemClock};
use smsotpd::config::{Config, ExternalCredentials};
use smsotpd::dbus::{OBJECT_PATH, SmsOtp};
use smsotpd::error::{ERROR_NAMES, SmsOtpError};
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
    let server =
        Builder::unix_stream(a).server(guid).unwrap().p2p().serve_at(OBJECT_PATH, SmsOtp::new(daemon)).unwrap();
    let client = Builder::unix_stream(b).p2p();
    let (server, client) = tokio::try_join!(server.build(), client.build()).unwrap();
    Fixture { _dir: dir, outbox, _server: server, client }
}

fn our_interface<'a>(node: &'a zbus_xml::Node<'a>) -> &'a zbus_xml::Interface<'a> {
    node.interfaces().iter().find(|i| i.name() == IFACE).expect("interface present")
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
}

#[test]
fn every_error_is_documented_and_named_as_documented() {
    for name in ERROR_NAMES {
        assert!(
            XML.contains(&format!("    {name}  ")) || XML.contains(&format!("    {name} ")),
            "{name} undocumented in the XML"
        );
    }
    let made = [
        SmsOtpError::PermissionDenied(String::new()),
        SmsOtpError::InvalidArgument(String::new()),
        SmsOtpError::UnknownChallenge(String::new()),
        SmsOtpError::Busy(String::new()),
        SmsOtpError::RateLimited(String::new()),
        SmsOtpError::DeliveryFailed(String::new()),
        SmsOtpError::StorageFailed(String::new()),
        SmsOtpError::NotEnrolled(String::new()),
        SmsOtpError::Internal(String::new()),
    ];
    let names: Vec<String> = made.iter().map(|e| e.name().to_string()).collect();
    let expected: Vec<String> = ERROR_NAMES.iter().map(|n| format!("{IFACE}.Error.{n}")).collect();
    assert_eq!(names, expected);
    // Every "Errors:" line in the XML only names real errors.
    for line in XML.lines().filter(|l| {
        l.trim_start().starts_with("Errors:")
            || l.trim_start().starts_with("DeliveryFailed,")
            || l.contains("StorageFailed, Internal")
    }) {
        for word in
            line.split([' ', ',', '.', ':']).filter(|w| !w.is_empty() && w.chars().next().unwrap().is_uppercase())
        {
            if word != "Errors" {
                assert!(ERROR_NAMES.contains(&word), "{word} in {line:?} is not an error name");
            }
        }
    }
}

#[tokio::test]
async fn a_login_over_p2p() {
    let f = fixture().await;
    let call = |method: &'static str| {
        let client = f.client.clone();
        async move { (client, method) }
    };
    let (client, _) = call("").await;
    let enroll =
        client.call_method(None::<&str>, OBJECT_PATH, Some(IFACE), "Enroll", &("root", "+14155550123")).await.unwrap();
    let masked: String = enroll.body().deserialize().unwrap();
    assert_eq!(masked, "******0123");
    let mut ctx = HashMap::new();
    ctx.insert("service", "sshd");
    let reply = client.call_method(None::<&str>, OBJECT_PATH, Some(IFACE), "StartLogin", &("root", ctx)).await.unwrap();
    let (action, challenge, destination): (String, String, String) = reply.body().deserialize().unwrap();
    assert_eq!((action.as_str(), destination.as_str()), ("code", "******0123"));
    let outbox = std::fs::read_to_string(&f.outbox).unwrap();
    let body = outbox.split("body=").nth(1).unwrap();
    let code: String = body.chars().take_while(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 6);
    let reply = client
        .call_method(None::<&str>, OBJECT_PATH, Some(IFACE), "CheckCode", &(&challenge, "000000x"))
        .await
        .unwrap();
    let (status, left): (String, u32) = reply.body().deserialize().unwrap();
    assert_eq!((status.as_str(), left), ("wrong", 2));
    let reply =
        client.call_method(None::<&str>, OBJECT_PATH, Some(IFACE), "CheckCode", &(&challenge, &code)).await.unwrap();
    let (status, _): (String, u32) = reply.body().deserialize().unwrap();
    assert_eq!(status, "accepted");
    let err = client
        .call_method(None::<&str>, OBJECT_PATH, Some(IFACE), "CheckCode", &(&challenge, &code))
        .await
        .unwrap_err();
    match err {
        zbus::Error::MethodError(name, _, _) => {
            assert_eq!(name.as_str(), "org.smsotp.SmsOtp1.Error.UnknownChallenge")
        }
        other => panic!("{other:?}"),
    }
    let err =
        client.call_method(None::<&str>, OBJECT_PATH, Some(IFACE), "Enroll", &("root", "12345")).await.unwrap_err();
    match err {
        zbus::Error::MethodError(name, Some(text), _) => {
            assert_eq!(name.as_str(), "org.smsotp.SmsOtp1.Error.InvalidArgument");
            assert!(text.contains("E.164"), "{text}");
        }
        other => panic!("{other:?}"),
    }
}
