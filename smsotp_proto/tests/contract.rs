//! Every value this crate puts on the wire is documented in the XML, and the
//! XML's methods are exactly the proxy's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use smsotp_proto::{
    Action, Error, ExplainKey, Factor, Happening, Status, TrustClass, UserState, WireEnum, context_key,
};

fn xml_text() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/dbus-1/org.smsotp.SmsOtp1.xml");
    std::fs::read_to_string(path).unwrap()
}

fn interface() -> zbus_xml::Interface<'static> {
    named_interface(smsotp_proto::INTERFACE)
}

fn named_interface(name: &str) -> zbus_xml::Interface<'static> {
    let text: &'static str = Box::leak(xml_text().into_boxed_str());
    let node = zbus_xml::Node::from_reader(text.as_bytes()).unwrap();
    let iface = node.interfaces().iter().find(|i| i.name() == name).cloned();
    iface.unwrap_or_else(|| panic!("the XML declares {name}"))
}

/// The XML's comments, where values and errors are documented.
fn documentation() -> String {
    let text = xml_text();
    let mut docs = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("<!--") {
        let Some(end) = rest[start..].find("-->") else { break };
        docs.push_str(&rest[start + 4..start + end]);
        docs.push('\n');
        rest = &rest[start + end + 3..];
    }
    docs
}

fn assert_documented<E: WireEnum + std::fmt::Debug>(what: &str) {
    let docs = documentation();
    for v in E::ALL {
        assert!(
            docs.contains(&format!("\"{}\"", v.wire())),
            "{what} {v:?} ({:?}) is not documented in the XML",
            v.wire()
        );
    }
}

#[test]
fn every_wire_value_is_documented_in_the_xml() {
    assert_documented::<Action>("action");
    assert_documented::<Status>("status");
    assert_documented::<UserState>("user state");
    assert_documented::<TrustClass>("trust class");
    assert_documented::<ExplainKey>("explain key");
    assert_documented::<Factor>("factor");
    assert_documented::<Happening>("history entry");
    let docs = documentation();
    for key in context_key::ALL {
        assert!(docs.contains(&format!("\"{key}\"")), "context key {key} is not documented");
    }
}

#[test]
fn every_error_name_is_documented_in_the_xml() {
    let docs = documentation();
    assert!(docs.contains("prefix org.smsotp.SmsOtp1.Error."));
    for e in Error::every_named() {
        let name = e.short_name().unwrap();
        let listed = docs.lines().any(|l| l.trim_start().starts_with(&format!("{name} ")));
        assert!(listed, "error {name} is not in the XML's error list");
    }
}

#[test]
fn the_xml_names_the_constants() {
    let text = xml_text();
    assert!(text.contains(&format!("<node name=\"{}\">", smsotp_proto::OBJECT_PATH)));
    assert!(text.contains(&format!("Bus name {} on the system bus", smsotp_proto::BUS_NAME)));
    let iface = interface();
    let methods: Vec<String> = iface.methods().iter().map(|m| m.name().to_string()).collect();
    assert_eq!(
        methods,
        [
            "StartLogin",
            "StartSignIn",
            "UseFactor",
            "EnrollNumber",
            "CheckCode",
            "Resend",
            "Cancel",
            "TrustMachine",
            "Enroll",
            "Unenroll",
            "ListUsers",
            "ShowUser",
            "Unlock",
            "IssueBypass",
            "ListTrust",
            "RevokeTrust",
            "Explain",
            "TestSend",
            "ShowFactors",
            "ResetUser",
            "Approve"
        ]
    );
    let user = named_interface(smsotp_proto::USER_INTERFACE);
    let methods: Vec<String> = user.methods().iter().map(|m| m.name().to_string()).collect();
    assert_eq!(
        methods,
        [
            "Status",
            "ChangeNumber",
            "ConfirmNumber",
            "AddApp",
            "ConfirmApp",
            "NewRecoveryCodes",
            "SetDefaultFactor",
            "ListTrust",
            "RevokeTrust"
        ]
    );
}

#[test]
fn row_signatures_match_the_xml() {
    use zbus::zvariant::Type;
    let iface = interface();
    let out = |method: &str| -> String {
        let m = iface.methods().iter().find(|m| m.name() == method).unwrap();
        let arg = m.args().iter().find(|a| a.direction() == Some(zbus_xml::ArgDirection::Out)).unwrap();
        arg.ty().to_string()
    };
    assert_eq!(out("ListUsers"), format!("a{}", smsotp_proto::UserRow::SIGNATURE));
    assert_eq!(out("ShowUser"), smsotp_proto::UserRow::SIGNATURE.to_string());
    assert_eq!(out("ListTrust"), format!("a{}", smsotp_proto::TrustRow::SIGNATURE));
    assert_eq!(out("Explain"), format!("a{}", smsotp_proto::ExplainLine::SIGNATURE));
    assert_eq!(out("StartLogin"), Action::SIGNATURE.to_string());
    assert_eq!(out("CheckCode"), Status::SIGNATURE.to_string());
    assert_eq!(out("ShowFactors"), smsotp_proto::FactorsRow::SIGNATURE.to_string());
    let user = named_interface(smsotp_proto::USER_INTERFACE);
    let m = user.methods().iter().find(|m| m.name() == "Status").unwrap();
    assert_eq!(m.args()[0].ty().to_string(), smsotp_proto::AccountStatus::SIGNATURE.to_string());
}
