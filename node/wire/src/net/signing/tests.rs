use chrono::{Duration, Utc};
use clearway_gallery::ops::{AuditDraft, GateAction, GateId, Op, OverrideAction, verify_chain};

use super::*;
use crate::net::tls::PortCa;

const PORT: &str = "hengqin";

fn batch(actor: &str) -> Vec<Op> {
    vec![
        Op::Audit(AuditDraft {
            actor: actor.into(),
            role: "supervisor".into(),
            action: "order.gate_lock".into(),
            target: "hengqin/passenger/1".into(),
            reason: "fight in the queue".into(),
            reason_salt: String::new(),
            at: Utc::now(),
            ops_digest: String::new(),
            signature: None,
        }),
        Op::Order {
            channel: "hengqin/passenger/1".into(),
            action: OverrideAction::Gate {
                gate: GateId::One,
                action: GateAction::Lock,
            },
        },
    ]
}

fn entry(ops: &[Op]) -> AuditEntry {
    ops.iter()
        .find_map(|op| match op {
            Op::Audit(d) => Some(d.entry()),
            _ => None,
        })
        .expect("an audit record")
}

/// Every way a node could try to pass off a record as a client's, and what the verifier says.
#[test]
fn only_the_clients_own_unchanged_record_verifies() {
    let ca = PortCa::create(PORT).expect("ca");
    let console = ca
        .issue(&Identity::Client("console".into()), &Role::Console)
        .expect("console bundle");
    let voter = ca.issue(&Identity::Node(1), &Role::Voter).expect("voter");
    let foreign = PortCa::create(PORT)
        .expect("another ca")
        .issue(&Identity::Client("console".into()), &Role::Console)
        .expect("foreign console");
    let verifier = AuditVerifier::new(&voter).expect("verifier");

    let mut signed = batch("ana@console");
    sign_batch(&console, &mut signed).expect("sign");
    let good = entry(&signed);

    let cases: Vec<(&str, Box<dyn Fn(&mut AuditEntry)>)> = vec![
        ("as signed", Box::new(|_| {})),
        ("unsigned", Box::new(|e| e.signature = None)),
        (
            "actor changed",
            Box::new(|e| e.actor = "wong@console".into()),
        ),
        (
            "operations changed",
            Box::new(|e| e.ops_digest = "00".repeat(32)),
        ),
        (
            "reason changed",
            Box::new(|e| e.reason_commitment = "00".repeat(32)),
        ),
        (
            "time moved past the certificate's life",
            Box::new(|e| e.at += Duration::days(3650)),
        ),
        (
            "signature bytes flipped",
            Box::new(|e| {
                if let Some(s) = &mut e.signature {
                    let last = s.signature.len() - 1;
                    s.signature[last] ^= 1;
                }
            }),
        ),
        (
            "unknown scheme",
            Box::new(|e| {
                if let Some(s) = &mut e.signature {
                    s.scheme = 0x0201;
                }
            }),
        ),
    ];
    let mut out = String::new();
    for (name, tamper) in cases {
        let mut e = good.clone();
        tamper(&mut e);
        let got = match verifier.verify(&e) {
            Ok(s) => format!("signed by {} ({})", s.identity, s.role),
            Err(e) => e.to_string(),
        };
        out.push_str(&format!("{name}: {got}\n"));
    }
    // Signed by a console of another port's CA: the certificate does not chain.
    let mut stranger = batch("ana@console");
    sign_batch(&foreign, &mut stranger).expect("sign");
    out.push_str(&format!(
        "another port's console: {}\n",
        verifier
            .verify(&entry(&stranger))
            .map(|s| s.identity.to_string())
            .unwrap_or_else(|e| e.to_string())
    ));
    let expected = "\
as signed: signed by client-console (console)
unsigned: the record is not signed
actor changed: the signature does not match the record (it was changed after signing)
operations changed: the signature does not match the record (it was changed after signing)
reason changed: the signature does not match the record (it was changed after signing)
time moved past the certificate's life: the signer's certificate does not hold at the record's time: ";
    assert!(out.starts_with(expected), "{out}");
    assert!(
        out.contains("\nsignature bytes flipped: the signature does not match the record"),
        "{out}"
    );
    assert!(
        out.contains("\nunknown scheme: unsupported signature scheme 0x0201\n"),
        "{out}"
    );
    assert!(
        out.contains("\nanother port's console: the signer's certificate does not hold"),
        "{out}"
    );
}

/// A signed batch goes through the ledger; the record it leaves verifies, both as a chain and
/// as the client's signature, and keeps verifying once the reason is erased.
#[test]
fn a_signed_batch_leaves_a_record_whose_signature_holds_after_erasure() {
    use clearway_gallery::ops::{Ledger, LedgerChanges};
    use clearway_gallery::{ModelId, Registry};
    let ca = PortCa::create(PORT).expect("ca");
    let ops_bundle = ca
        .issue(&Identity::Client("ops".into()), &Role::Operator)
        .expect("operator");
    let verifier = AuditVerifier::new(&ops_bundle).expect("verifier");
    let mut ops = batch("ops");
    sign_batch(&ops_bundle, &mut ops).expect("sign");
    let mut ledger = Ledger::default();
    let mut registry = Registry::new(ModelId::new("sface", "2021dec"), 8).expect("registry");
    let outcomes = ledger.apply(
        ops,
        1,
        1,
        &mut registry,
        &mut Vec::new(),
        &mut LedgerChanges::default(),
    );
    assert!(
        !outcomes
            .iter()
            .any(|o| matches!(o, clearway_gallery::Outcome::Refused { .. })),
        "{outcomes:?}"
    );
    let mut trail = ledger.audit().to_vec();
    assert_eq!(trail[0].reason_text(), Some("fight in the queue"));
    trail[0].reason = None;
    assert_eq!(verify_chain(&trail), Ok(()));
    let signer = verifier.verify(&trail[0].entry).expect("signature holds");
    assert_eq!(signer.identity, Identity::Client("ops".into()));
    assert_eq!(signer.role, Role::Operator);
}
