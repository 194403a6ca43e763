//! Unit tests without sockets: configuration, backoff, sealing, queue bookkeeping.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use clearway_gallery::{Authority, DocumentKind};
use prometheus::Registry;

use super::outbox::{open_bytes, parse_envelope, seal_bytes, seal_bytes_v1};
use super::*;
use crate::lane::procedure::{AuthorityRecord, ClearanceMethod, Delivery, DocumentKey};

fn record(n: u32) -> AuthorityRecord {
    AuthorityRecord::Clearance {
        document: DocumentKey {
            kind: DocumentKind::PermitHkMacao,
            number: format!("C{n:08}"),
        },
        method: ClearanceMethod::Card,
        cleared_at: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
        channel: "hengqin/passenger-hall/1".into(),
        direction: "Macao → Hengqin".into(),
    }
}

/// A fresh outbox keyring in its own directory (kept while the first element lives).
fn keys() -> (tempfile::TempDir, OutboxKeys) {
    let dir = tempfile::tempdir().unwrap();
    let ring = crate::store::keyring::Keyring::load(
        &dir.path().join("outbox.keyring"),
        true,
        std::sync::Arc::new(crate::store::custody::Custody::plain()),
    )
    .unwrap();
    (dir, OutboxKeys::new(std::sync::Arc::new(ring)))
}

fn metrics() -> AuthorityMetrics {
    AuthorityMetrics::new(&Registry::new()).unwrap()
}

fn config() -> AuthorityConfig {
    AuthorityConfig {
        base_url: "https://macao.example:8443".into(),
        ca_cert: PathBuf::from("ca.pem"),
        client_cert: PathBuf::from("client.pem"),
        client_key: PathBuf::from("client.key"),
        timeout_ms: 2000,
    }
}

#[test]
fn config_parses_with_defaults_and_refuses_unknown_fields() {
    let c: AuthorityConfig = toml::from_str(
        "base_url = \"https://a.example\"\nca_cert = \"c\"\nclient_cert = \"d\"\nclient_key = \"e\"\n",
    )
    .unwrap();
    assert_eq!(c.timeout_ms, DEFAULT_TIMEOUT_MS);
    c.validate().unwrap();
    let e = toml::from_str::<AuthorityConfig>(
        "base_url = \"https://a.example\"\nca_cert = \"c\"\nclient_cert = \"d\"\nclient_key = \"e\"\nverify = false\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown field"), "{e}");
}

#[test]
fn config_validation() {
    config().validate().unwrap();
    for (url, needle) in [
        ("http://macao.example", "https"),
        ("ftp://macao.example", "https"),
        ("https://", "not a URL"),
        ("https://a.example/?x=1", "query"),
        ("https://u:p@a.example/", "credentials"),
        ("not a url", "not a URL"),
    ] {
        let c = AuthorityConfig {
            base_url: url.into(),
            ..config()
        };
        let e = c.validate().unwrap_err();
        assert!(e.to_string().contains(needle), "{url}: {e}");
    }
    for t in [0, 60_001] {
        let c = AuthorityConfig {
            timeout_ms: t,
            ..config()
        };
        assert!(c.validate().is_err());
    }
    let c = AuthorityConfig {
        ca_cert: PathBuf::new(),
        ..config()
    };
    assert!(c.validate().unwrap_err().to_string().contains("ca_cert"));
}

#[test]
fn base_url_keeps_its_prefix() {
    let u = parse_base_url("https://a.example/gateway").unwrap();
    assert_eq!(
        u.join("v1/records").unwrap().as_str(),
        "https://a.example/gateway/v1/records"
    );
    let u = parse_base_url("https://a.example").unwrap();
    assert_eq!(
        u.join("v1/records").unwrap().as_str(),
        "https://a.example/v1/records"
    );
}

#[test]
fn unreadable_tls_material_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not pem at all").unwrap();
    let c = AuthorityConfig {
        ca_cert: garbage.clone(),
        client_cert: garbage.clone(),
        client_key: garbage.clone(),
        ..config()
    };
    let e = AuthorityClient::new(Authority::Macao, &c, metrics()).unwrap_err();
    assert!(matches!(e, AuthorityError::Tls { .. }), "{e}");
    assert!(e.to_string().contains("garbage.pem"), "{e}");
}

#[test]
fn error_classes() {
    let a = "macao";
    let retryable = [
        AuthorityError::Connect {
            authority: a,
            reason: String::new(),
        },
        AuthorityError::Timeout {
            authority: a,
            timeout: Duration::from_secs(1),
        },
        AuthorityError::Unavailable {
            authority: a,
            status: 503,
            retry_after: None,
        },
        AuthorityError::Unavailable {
            authority: a,
            status: 429,
            retry_after: Some(Duration::from_secs(3)),
        },
        AuthorityError::Transport {
            authority: a,
            reason: String::new(),
        },
    ];
    for e in &retryable {
        assert!(e.is_retryable(), "{e}");
        assert!(metrics::OUTCOMES.contains(&e.code()));
    }
    assert_eq!(retryable[3].retry_after(), Some(Duration::from_secs(3)));
    let permanent = [
        AuthorityError::Rejected {
            authority: a,
            status: 400,
            reason: String::new(),
        },
        AuthorityError::BadResponse {
            authority: a,
            reason: String::new(),
        },
        AuthorityError::Config(String::new()),
    ];
    for e in &permanent {
        assert!(!e.is_retryable(), "{e}");
        assert!(metrics::OUTCOMES.contains(&e.code()));
    }
}

#[test]
fn backoff_grows_caps_and_jitters_down() {
    let b = Backoff::default();
    assert_eq!(b.delay(0, 0.0), Duration::from_millis(200));
    assert_eq!(b.delay(1, 0.0), Duration::from_millis(400));
    assert_eq!(b.delay(3, 0.0), Duration::from_millis(1600));
    assert_eq!(b.delay(20, 0.0), Duration::from_secs(30));
    assert_eq!(b.delay(u32::MAX, 0.0), Duration::from_secs(30));
    // Jitter takes away up to half.
    assert_eq!(b.delay(0, 0.999_999).as_millis(), 100);
    for attempt in 0..40 {
        for r in [0.0, 0.3, 0.7, 0.99] {
            let d = b.delay(attempt, r);
            assert!(d <= b.max, "{attempt} {r}: {d:?}");
            assert!(d >= Duration::from_millis(100), "{attempt} {r}: {d:?}");
        }
    }
    // Nonsense parameters do not panic.
    let odd = Backoff {
        initial: Duration::from_secs(1),
        factor: f64::NAN,
        max: Duration::from_secs(2),
        jitter: 7.0,
    };
    assert!(odd.delay(5, 0.5) <= Duration::from_secs(2));
}

#[test]
fn envelope_seals_opens_and_detects_damage() {
    let (_dir, key) = keys();
    let env = seal_bytes(&key, "lane-macao-abc-1", b"{\"x\":1}", 1234).unwrap();
    let parsed = parse_envelope(&env).unwrap();
    assert_eq!(parsed.queued_at_ms, 1234);
    assert_eq!(parsed.key, "lane-macao-abc-1");
    let (k, plain) = open_bytes(&key, &env).unwrap();
    assert_eq!(k, "lane-macao-abc-1");
    assert_eq!(plain.as_slice(), b"{\"x\":1}");
    // The plaintext is not in the envelope.
    assert!(!env.windows(5).any(|w| w == b"\"x\":1"));
    // Two seals of the same record differ (fresh nonce).
    assert_ne!(
        env,
        seal_bytes(&key, "lane-macao-abc-1", b"{\"x\":1}", 1234).unwrap()
    );

    assert!(open_bytes(&keys().1, &env).is_err(), "another key");
    for i in 0..env.len() {
        let mut bad = env.clone();
        bad[i] ^= 0x40;
        assert!(
            open_bytes(&key, &bad).is_err(),
            "flipped byte {i} went unnoticed"
        );
    }
    for n in 0..env.len() {
        assert!(open_bytes(&key, &env[..n]).is_err(), "truncated to {n}");
    }
    assert!(open_bytes(&key, &[]).is_err());
}

#[test]
fn seal_key_is_never_printed() {
    let k = SealKey::from_bytes([0xAB; 32]);
    let s = format!("{k:?}");
    assert!(
        !s.contains("171") && !s.to_lowercase().contains("ab, "),
        "{s}"
    );
}

#[test]
fn lane_id_is_checked() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    for bad in ["", "a b", "lane\n", &"x".repeat(65), "lané"] {
        let e = Outbox::open(&db, bad, keys().1, metrics()).unwrap_err();
        assert!(matches!(e, OutboxError::Config(_)), "{bad:?}: {e}");
    }
    Outbox::open(&db, "hengqin/passenger-hall/12", keys().1, metrics()).unwrap();
}

#[test]
fn keys_are_sequential_per_authority_and_fifo() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let m = metrics();
    let (_dir, k) = keys();
    let outbox = Outbox::open(&db, "lane-7", k, m.clone()).unwrap();
    let k1 = outbox
        .push(Delivery {
            authority: Authority::Macao,
            record: record(1),
        })
        .unwrap();
    let both = outbox.push_both(&record(2)).unwrap();
    let k3 = outbox
        .push(Delivery {
            authority: Authority::Macao,
            record: record(3),
        })
        .unwrap();
    let prefix = k1.strip_suffix("-1").unwrap();
    assert!(prefix.starts_with("lane-7-macao-"), "{k1}");
    assert_eq!(both[0], format!("{prefix}-2"));
    assert_eq!(k3, format!("{prefix}-3"));
    assert!(
        both[1].starts_with("lane-7-mainland-") && both[1].ends_with("-1"),
        "{both:?}"
    );
    assert_eq!(outbox.depth(Authority::Macao), 3);
    assert_eq!(outbox.depth(Authority::Mainland), 1);
    assert_eq!(
        outbox.pending_keys(Authority::Macao).unwrap(),
        vec![k1.clone(), both[0].clone(), k3]
    );
    assert_eq!(
        outbox.peek(Authority::Macao).unwrap(),
        Some((k1, record(1)))
    );
    assert_eq!(
        outbox.peek(Authority::Mainland).unwrap(),
        Some((both[1].clone(), record(2)))
    );
    assert!(outbox.oldest_age(Authority::Macao).unwrap() < Duration::from_secs(60));
    assert_eq!(m.depth.with_label_values(&["macao"]).get(), 3);

    // Personal data is sealed on disk.
    let tree = db.open_tree(Outbox::tree_name(Authority::Macao)).unwrap();
    for entry in tree.iter() {
        let (_, v) = entry.unwrap();
        assert!(
            !v.windows(9).any(|w| w == b"C00000001"),
            "document number in the clear"
        );
    }
}

#[test]
fn a_different_database_is_a_different_incarnation() {
    let m = metrics();
    let a = sled::Config::new().temporary(true).open().unwrap();
    let b = sled::Config::new().temporary(true).open().unwrap();
    let ka = Outbox::open(&a, "lane", keys().1, m.clone())
        .unwrap()
        .push(Delivery {
            authority: Authority::Macao,
            record: record(1),
        })
        .unwrap();
    let kb = Outbox::open(&b, "lane", keys().1, m)
        .unwrap()
        .push(Delivery {
            authority: Authority::Macao,
            record: record(1),
        })
        .unwrap();
    assert_ne!(ka, kb, "a recreated database must not reuse keys");
}

#[tokio::test]
async fn run_refuses_a_mismatched_client_and_a_second_runner() {
    let pki = DemoPki::generate(&[]).unwrap();
    let db = sled::Config::new().temporary(true).open().unwrap();
    let m = metrics();
    let (_dir, k) = keys();
    let outbox = Outbox::open(&db, "lane", k, m.clone()).unwrap();
    let client = |a| {
        AuthorityClient::from_pem(
            a,
            "https://127.0.0.1:9",
            pki.ca_pem.as_bytes(),
            pki.client_cert_pem.as_bytes(),
            pki.client_key_pem.as_bytes(),
            Duration::from_millis(100),
            m.clone(),
        )
        .unwrap()
    };
    let e = outbox
        .clone()
        .run(Authority::Macao, client(Authority::Mainland), async {})
        .await
        .unwrap_err();
    assert!(matches!(e, OutboxError::Config(_)), "{e}");

    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let first = tokio::spawn(outbox.clone().run(
        Authority::Macao,
        client(Authority::Macao),
        async move {
            let _ = rx.await;
        },
    ));
    // Wait until the first runner has registered itself.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match outbox
            .clone()
            .run(Authority::Macao, client(Authority::Macao), async {})
            .await
        {
            Err(OutboxError::AlreadyRunning(_)) => break,
            Ok(()) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "first runner never started"
                );
                tokio::task::yield_now().await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    tx.send(()).unwrap();
    first.await.unwrap().unwrap();
    // After it stopped, a runner may start again.
    outbox
        .clone()
        .run(Authority::Macao, client(Authority::Macao), async {})
        .await
        .unwrap();
}

#[tokio::test]
async fn reference_args_parse_and_start() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        reference: ReferenceArgs,
    }
    let pki = DemoPki::generate(&["authority.test"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    pki.write(dir.path()).unwrap();
    let p = |f: &str| dir.path().join(f).display().to_string();
    let cli = Cli::try_parse_from([
        "x",
        "--listen",
        "127.0.0.1:0",
        "--cert",
        &p("server.pem"),
        "--key",
        &p("server.key"),
        "--client-ca",
        &p("ca.pem"),
        "--records-file",
        &p("records.jsonl"),
        "--refer",
        "H1,H2",
        "--refer",
        "H3",
        "--name",
        "macao",
    ])
    .unwrap();
    let config = cli.reference.to_config().unwrap();
    assert_eq!(config.refer, ["H1", "H2", "H3"]);
    assert_eq!(config.slow_delay, Duration::from_secs(10));
    let handle = ReferenceAuthority::start(config).await.unwrap();
    assert_ne!(handle.local_addr().port(), 0);
    assert!(handle.base_url().starts_with("https://127.0.0.1:"));
    handle.shutdown().await;

    // A missing file is named.
    let bad = Cli::try_parse_from([
        "x",
        "--cert",
        &p("nope.pem"),
        "--key",
        &p("server.key"),
        "--client-ca",
        &p("ca.pem"),
    ])
    .unwrap();
    let e = bad.reference.to_config().unwrap_err();
    assert!(e.to_string().contains("nope.pem"), "{e}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("client.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "keys are private");
    }
}

#[test]
fn rotation_destroys_the_old_key_and_keeps_what_is_queued() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let (dir, k) = keys();
    let m = metrics();
    let outbox = Outbox::open(&db, "lane", k.clone(), m.clone()).unwrap();
    let both = outbox.push_both(&record(1)).unwrap();
    outbox
        .push(Delivery {
            authority: Authority::Macao,
            record: record(2),
        })
        .unwrap();
    // What a copy of the disk taken before the cancellation holds.
    let tree = db.open_tree(Outbox::tree_name(Authority::Macao)).unwrap();
    let before: Vec<Vec<u8>> = tree.iter().map(|e| e.unwrap().1.to_vec()).collect();
    assert!(open_bytes(&k, &before[0]).is_ok());
    assert_eq!(outbox.key_epoch(), 1);

    assert_eq!(outbox.rotate().unwrap(), 2);
    assert_eq!(m.key_epoch.get(), 2);
    for old in &before {
        assert!(
            open_bytes(&k, old).is_err(),
            "an envelope sealed before the rotation still opens"
        );
    }
    let text = std::fs::read_to_string(dir.path().join("outbox.keyring")).unwrap();
    assert_eq!(
        text.lines().count(),
        2,
        "header and one key: {}",
        text.lines().next().unwrap()
    );
    // Nothing queued is lost, and the order holds.
    assert_eq!(
        outbox.peek(Authority::Macao).unwrap(),
        Some((both[0].clone(), record(1)))
    );
    assert_eq!(outbox.pending_keys(Authority::Macao).unwrap().len(), 2);
    assert_eq!(
        outbox.peek(Authority::Mainland).unwrap(),
        Some((both[1].clone(), record(1)))
    );
    // The outbox opens again with the rotated keyring (its seal check was re-sealed too).
    drop(outbox);
    let ring = crate::store::keyring::Keyring::load(
        &dir.path().join("outbox.keyring"),
        false,
        std::sync::Arc::new(crate::store::custody::Custody::plain()),
    )
    .unwrap();
    let again = Outbox::open(
        &db,
        "lane",
        OutboxKeys::new(std::sync::Arc::new(ring)),
        metrics(),
    )
    .unwrap();
    assert_eq!(again.key_epoch(), 2);
    assert_eq!(again.depth(Authority::Macao), 2);
}

#[test]
fn follow_erasure_rotates_once_per_cancellation_and_remembers() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let (_dir, k) = keys();
    let outbox = Outbox::open(&db, "lane", k.clone(), metrics()).unwrap();
    assert_eq!(
        outbox.follow_erasure(0).unwrap(),
        None,
        "no cancellation yet"
    );
    assert_eq!(outbox.follow_erasure(5).unwrap(), Some(2));
    assert_eq!(outbox.follow_erasure(5).unwrap(), None);
    assert_eq!(outbox.follow_erasure(7).unwrap(), Some(3));
    drop(outbox);
    let outbox = Outbox::open(&db, "lane", k, metrics()).unwrap();
    assert_eq!(
        outbox.follow_erasure(7).unwrap(),
        None,
        "remembered across opens"
    );
    assert_eq!(outbox.follow_erasure(8).unwrap(), Some(4));
}

#[test]
fn an_outbox_from_before_key_epochs_is_resealed_at_open() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let legacy = SealKey::generate();
    // A version 1 outbox as the previous release left it: seal check and one queued record.
    let meta = db.open_tree("outbox_meta").unwrap();
    meta.insert("incarnation", b"00aa11bb22cc".as_slice())
        .unwrap();
    meta.insert(
        "seal_check",
        seal_bytes_v1(&legacy, "seal_check", b"clearway outbox seal key check", 0),
    )
    .unwrap();
    meta.insert("seq/macao", &2u64.to_be_bytes()).unwrap();
    let plain = serde_json::to_vec(&record(9)).unwrap();
    let tree = db.open_tree(Outbox::tree_name(Authority::Macao)).unwrap();
    let old = seal_bytes_v1(&legacy, "lane-macao-00aa11bb22cc-1", &plain, 1234);
    tree.insert(1u64.to_be_bytes(), old.clone()).unwrap();

    let (_dir, k) = keys();
    // Without the legacy key the old outbox is refused, not silently emptied.
    assert!(matches!(
        Outbox::open(&db, "lane", k.clone(), metrics()).unwrap_err(),
        OutboxError::WrongKey
    ));
    let outbox = Outbox::open(&db, "lane", k.clone().with_legacy(legacy), metrics()).unwrap();
    assert_eq!(
        outbox.peek(Authority::Macao).unwrap(),
        Some(("lane-macao-00aa11bb22cc-1".to_owned(), record(9)))
    );
    let now = tree.get(1u64.to_be_bytes()).unwrap().unwrap();
    assert_eq!(now[0], 2, "re-sealed as version 2");
    drop(outbox);
    // From now on the keyring alone opens it; the next record follows in sequence.
    let outbox = Outbox::open(&db, "lane", k, metrics()).unwrap();
    assert_eq!(
        outbox
            .push(Delivery {
                authority: Authority::Macao,
                record: record(10),
            })
            .unwrap(),
        "lane-macao-00aa11bb22cc-2"
    );
}

/// The reference authority over real mutual TLS: prerequisites per document, the consent, and
/// a withdrawal that stops a late consent from being recorded.
#[tokio::test]
async fn prerequisites_and_consent_withdrawal_over_mutual_tls() {
    use crate::lane::procedure::PrerequisiteStatus;
    let pki = DemoPki::generate(&[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("book.json");
    std::fs::write(
        &book,
        r#"{"documents": {"C00000001": {"fingerprint_read_authorised_at": "2024-05-01T00:00:00Z"}}}"#,
    )
    .unwrap();
    let mut config = pki.reference_config();
    config.prerequisites = PrerequisiteBook::read(&book).unwrap();
    let handle = ReferenceAuthority::start(config).await.unwrap();
    let m = metrics();
    let client = AuthorityClient::from_pem(
        Authority::Macao,
        &handle.base_url(),
        pki.ca_pem.as_bytes(),
        pki.client_cert_pem.as_bytes(),
        pki.client_key_pem.as_bytes(),
        Duration::from_secs(5),
        m.clone(),
    )
    .unwrap();
    let doc = |n: &str| DocumentKey {
        kind: DocumentKind::PermitHkMacao,
        number: n.into(),
    };

    // From the book's file; nothing for anyone else; then set one by one.
    let held = client.prerequisites(&doc("C00000001")).await.unwrap();
    assert!(held.fingerprint_read_authorised_at.is_some() && held.automated_clearance.is_none());
    assert_eq!(
        client.prerequisites(&doc("C00000002")).await.unwrap(),
        PrerequisiteStatus::default()
    );
    let registered = PrerequisiteStatus {
        automated_clearance: Some(clearway_gallery::Registration {
            registered_at: Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap(),
            location: "Macao automated clearance desk".into(),
        }),
        fingerprint_read_authorised_at: None,
    };
    handle.set_prerequisites(Some("C00000002"), registered.clone());
    assert_eq!(
        client.prerequisites(&doc("C00000002")).await.unwrap(),
        registered
    );
    assert_eq!(handle.prerequisite_requests(), 3);
    assert_eq!(m.requests(Authority::Macao, "prerequisites", "answered"), 3);
    handle.set_mode(FailMode::Unavailable, None);
    let e = client.prerequisites(&doc("C00000002")).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    // An answer of megabytes is a bad response; the client stops reading at its cap.
    handle.set_mode(FailMode::Flood, None);
    let e = client.prerequisites(&doc("C00000002")).await.unwrap_err();
    assert!(
        matches!(&e, AuthorityError::BadResponse { reason, .. } if reason.contains("larger than")),
        "{e}"
    );
    handle.set_mode(FailMode::Ok, None);

    // A consent, its withdrawal, and a late consent under the withdrawn key: refused (410).
    let consent = |n: &str| AuthorityRecord::RegistrationConsent {
        document: doc(n),
        name: "LI, MING".into(),
        given_at: Utc.with_ymd_and_hms(2026, 12, 6, 1, 0, 0).unwrap(),
        channel: "hq/ph/1".into(),
        direction: String::new(),
    };
    let withdrawal = |key: &str| AuthorityRecord::ConsentWithdrawn {
        document: doc("C00000003"),
        consent_key: key.into(),
        reason: "registration not completed: mainland: no answer".into(),
        withdrawn_at: Utc.with_ymd_and_hms(2026, 12, 6, 1, 0, 10).unwrap(),
        channel: "hq/ph/1".into(),
    };
    client
        .deliver("consent-a", &consent("C00000003"))
        .await
        .unwrap();
    client
        .deliver("withdraw-a", &withdrawal("consent-a"))
        .await
        .unwrap();
    client
        .deliver("consent-a", &consent("C00000003"))
        .await
        .unwrap(); // a retry: 409, fine
    client
        .deliver("withdraw-b", &withdrawal("consent-b"))
        .await
        .unwrap();
    let late = client
        .deliver("consent-b", &consent("C00000003"))
        .await
        .unwrap_err();
    assert!(
        matches!(late, AuthorityError::Rejected { status: 410, .. }),
        "{late}"
    );
    let stored: Vec<String> = handle.records().into_iter().map(|r| r.key).collect();
    assert_eq!(stored, ["consent-a", "withdraw-a", "withdraw-b"]);
    handle.shutdown().await;
}
