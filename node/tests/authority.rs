//! The authority clients, the outbox and the reference authority, over real 127.0.0.1 sockets
//! and real mutual TLS (a throwaway PKI per test).

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use clearway_gallery::{Authority, DocumentKind};
use clearway_node::lane::authority::{
    AuthorityClient, AuthorityConfig, AuthorityError, AuthorityMetrics, Backoff, DemoPki, FailMode,
    Outbox, OutboxError, OutboxKeys, ReferenceAuthority, ReferenceConfig, ReferenceHandle,
    StoredRecord,
};
use clearway_node::lane::procedure::{
    AuthorityRecord, ClearanceMethod, Delivery, DocumentKey, FingerprintCapture, InspectionRequest,
    Verdict,
};
use prometheus::Registry;
use tokio::sync::oneshot;
use tokio::time::Instant;

const LANE: &str = "hengqin-ph-12";

/// Polls `cond` every 10 ms until it holds, failing the test after `within`.
async fn eventually(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const WITHIN: Duration = Duration::from_secs(20);

/// Opens the sled database at `path` again after its last handle was dropped. sled lets go of
/// its file lock when its background threads do, a moment after the drop: retry until then.
/// The outbox keyring a lane keeps (`dir/outbox.keyring`), created on first use.
fn seal_keys(dir: &std::path::Path) -> OutboxKeys {
    let ring = clearway_node::store::keyring::Keyring::load(
        &dir.join("outbox.keyring"),
        true,
        Arc::new(clearway_node::store::custody::Custody::plain()),
    )
    .unwrap();
    OutboxKeys::new(Arc::new(ring))
}

/// The outbox of a lane whose files are in `dir`: database `db/`, keyring `outbox.keyring`.
fn open_outbox(dir: &std::path::Path, m: &AuthorityMetrics) -> Outbox {
    Outbox::open_path(&dir.join("db"), LANE, seal_keys(dir), m.clone()).unwrap()
}

async fn reopen(path: &std::path::Path) -> sled::Db {
    let deadline = Instant::now() + WITHIN;
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "sled database does not reopen: {e}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn start(pki: &DemoPki, tweak: impl FnOnce(&mut ReferenceConfig)) -> ReferenceHandle {
    let mut config = pki.reference_config();
    tweak(&mut config);
    ReferenceAuthority::start(config)
        .await
        .expect("reference authority starts")
}

fn client(
    pki: &DemoPki,
    authority: Authority,
    service: &ReferenceHandle,
    timeout: Duration,
    metrics: &AuthorityMetrics,
) -> AuthorityClient {
    AuthorityClient::from_pem(
        authority,
        &service.base_url(),
        pki.ca_pem.as_bytes(),
        pki.client_cert_pem.as_bytes(),
        pki.client_key_pem.as_bytes(),
        timeout,
        metrics.clone(),
    )
    .expect("client builds")
}

fn metrics() -> (Registry, AuthorityMetrics) {
    let registry = Registry::new();
    let m = AuthorityMetrics::new(&registry).expect("metrics register");
    (registry, m)
}

fn fast_backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(10),
        factor: 2.0,
        max: Duration::from_millis(100),
        jitter: 0.5,
    }
}

fn document(n: u32) -> DocumentKey {
    DocumentKey {
        kind: DocumentKind::MainlandTravelPermitHkMacao,
        number: format!("M{n:08}"),
    }
}

fn clearance(n: u32) -> AuthorityRecord {
    AuthorityRecord::Clearance {
        document: document(n),
        method: ClearanceMethod::Face,
        cleared_at: Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap()
            + chrono::Duration::seconds(i64::from(n)),
        channel: "hengqin/passenger-hall/12".into(),
        direction: "Macao → Hengqin".into(),
    }
}

fn consent(n: u32) -> AuthorityRecord {
    AuthorityRecord::RegistrationConsent {
        document: document(n),
        name: format!("CHAN, TAI MAN {n}"),
        given_at: Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap(),
        channel: "hengqin/passenger-hall/12".into(),
        direction: String::new(),
    }
}

fn inspection(key: &str, number: &str) -> InspectionRequest {
    InspectionRequest {
        key: key.into(),
        channel: "hengqin/passenger-hall/12".into(),
        document: DocumentKey {
            kind: DocumentKind::MainlandTravelPermitHkMacao,
            number: number.into(),
        },
        method: ClearanceMethod::Face,
        face_score: 0.71,
        fingerprint: FingerprintCapture {
            quality: 62,
            template: vec![7; 64],
        },
        at: Utc::now(),
    }
}

/// Runs the delivery task of `authority` in the background; send on the returned channel (or drop
/// it) to stop it.
fn run(
    outbox: &Outbox,
    authority: Authority,
    client: AuthorityClient,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), OutboxError>>,
) {
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(outbox.clone().run(authority, client, async move {
        let _ = rx.await;
    }));
    (tx, task)
}

async fn stop(
    handle: (
        oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<(), OutboxError>>,
    ),
) {
    let (tx, task) = handle;
    let _ = tx.send(());
    task.await
        .expect("delivery task joins")
        .expect("delivery task ends cleanly");
}

fn keys(records: &[StoredRecord]) -> Vec<String> {
    records.iter().map(|r| r.key.clone()).collect()
}

/// A reqwest client with mutual TLS, for the service's HTTP routes.
fn raw_https(pki: &DemoPki, with_client_cert: bool) -> reqwest::Client {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = if with_client_cert {
        builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(pki.client_cert_pem.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(pki.client_key_pem.as_bytes()).unwrap(),
            )
            .unwrap()
    } else {
        builder.with_no_client_auth()
    };
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspection_cleared_refer_and_repeat() {
    let pki = DemoPki::generate(&[]).unwrap();
    let service = start(&pki, |c| c.refer = vec!["H00000002".into()]).await;
    let (registry, m) = metrics();
    let macao = client(&pki, Authority::Macao, &service, Duration::from_secs(5), &m);

    let cleared = macao
        .inspect(&inspection("p-1", "M00000001"))
        .await
        .unwrap();
    assert_eq!(cleared, Verdict::Cleared);
    let refer = macao
        .inspect(&inspection("p-2", "H00000002"))
        .await
        .unwrap();
    assert!(
        matches!(refer, Verdict::Refer { ref reason } if !reason.is_empty()),
        "{refer:?}"
    );
    // A repeated key gets the first answer, whatever the repeat carries.
    let again = macao
        .inspect(&inspection("p-1", "H00000002"))
        .await
        .unwrap();
    assert_eq!(again, Verdict::Cleared);
    assert_eq!(service.inspections(), 2);
    assert_eq!(service.inspection_requests(), 3);

    assert_eq!(m.requests(Authority::Macao, "inspection", "cleared"), 2);
    assert_eq!(m.requests(Authority::Macao, "inspection", "refer"), 1);
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    assert!(text.contains("clearway_authority_requests_total{authority=\"macao\",kind=\"inspection\",outcome=\"refer\"} 1"), "{text}");
    assert!(
        !text.contains("M00000001") && !text.contains("H00000002"),
        "document numbers in metrics"
    );
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_from_config_files() {
    let pki = DemoPki::generate(&[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    pki.write(dir.path()).unwrap();
    let service = start(&pki, |_| {}).await;
    let toml = format!(
        "base_url = \"{}\"\nca_cert = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"\ntimeout_ms = 3000\n",
        service.base_url(),
        dir.path().join("ca.pem").display(),
        dir.path().join("client.pem").display(),
        dir.path().join("client.key").display(),
    );
    let config: AuthorityConfig = toml::from_str(&toml).unwrap();
    config.validate().unwrap();
    let (_r, m) = metrics();
    let mainland = AuthorityClient::new(Authority::Mainland, &config, m).unwrap();
    assert_eq!(
        mainland.inspect(&inspection("k", "M1")).await.unwrap(),
        Verdict::Cleared
    );

    // Unknown fields, plain HTTP and missing files are refused with clear errors.
    assert!(toml::from_str::<AuthorityConfig>(&format!("{toml}insecure = true\n")).is_err());
    let plain = AuthorityConfig {
        base_url: service.base_url().replace("https", "http"),
        ..config.clone()
    };
    let e = plain.validate().unwrap_err();
    assert!(e.to_string().contains("https"), "{e}");
    let missing = AuthorityConfig {
        client_key: dir.path().join("nope.key"),
        ..config.clone()
    };
    let (_r, m) = metrics();
    let e = AuthorityClient::new(Authority::Mainland, &missing, m).unwrap_err();
    assert!(
        matches!(e, AuthorityError::Tls { .. }) && e.to_string().contains("nope.key"),
        "{e}"
    );
    // A key that is not the certificate's.
    let other = DemoPki::generate(&[]).unwrap();
    std::fs::write(dir.path().join("other.key"), &other.client_key_pem).unwrap();
    let mismatched = AuthorityConfig {
        client_key: dir.path().join("other.key"),
        ..config
    };
    let (_r, m) = metrics();
    let e = AuthorityClient::new(Authority::Mainland, &mismatched, m).unwrap_err();
    assert!(matches!(e, AuthorityError::Tls { .. }), "{e}");
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_client_certificate_refused_at_handshake() {
    let pki = DemoPki::generate(&[]).unwrap();
    let service = start(&pki, |_| {}).await;
    let anonymous = raw_https(&pki, false);
    let r = anonymous
        .post(format!("{}/v1/inspections", service.base_url()))
        .header("Idempotency-Key", "x")
        .body(serde_json::to_vec(&inspection("x", "M1")).unwrap())
        .send()
        .await;
    assert!(r.is_err(), "an anonymous client got an answer: {r:?}");
    eventually("the refused handshake is counted", WITHIN, || {
        service.handshake_failures() >= 1
    })
    .await;
    assert_eq!(service.inspection_requests(), 0);

    // With the certificate, the same route answers.
    let r = raw_https(&pki, true)
        .get(format!("{}/healthz", service.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_certificates_refused() {
    let pki = DemoPki::generate(&[]).unwrap();
    let stranger = DemoPki::generate(&[]).unwrap();
    let service = start(&pki, |_| {}).await;
    let (_r, m) = metrics();

    // A client certificate from another CA: the service refuses it at the handshake.
    let wrong_client = AuthorityClient::from_pem(
        Authority::Macao,
        &service.base_url(),
        pki.ca_pem.as_bytes(),
        stranger.client_cert_pem.as_bytes(),
        stranger.client_key_pem.as_bytes(),
        Duration::from_secs(5),
        m.clone(),
    )
    .unwrap();
    let e = wrong_client
        .inspect(&inspection("a", "M1"))
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "transport-level failure expected: {e}");
    eventually("the refused handshake is counted", WITHIN, || {
        service.handshake_failures() >= 1
    })
    .await;

    // A server certificate from a CA the client does not trust: the client refuses it.
    let wrong_root = AuthorityClient::from_pem(
        Authority::Macao,
        &service.base_url(),
        stranger.ca_pem.as_bytes(),
        pki.client_cert_pem.as_bytes(),
        pki.client_key_pem.as_bytes(),
        Duration::from_secs(5),
        m.clone(),
    )
    .unwrap();
    let e = wrong_root
        .inspect(&inspection("b", "M1"))
        .await
        .unwrap_err();
    assert!(matches!(e, AuthorityError::Connect { .. }), "{e}");
    assert_eq!(service.inspection_requests(), 0);
    assert_eq!(service.inspections(), 0);
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspection_timeout_and_unavailable_are_retryable() {
    let pki = DemoPki::generate(&[]).unwrap();
    let service = start(&pki, |c| c.slow_delay = Duration::from_secs(5)).await;
    let (_r, m) = metrics();
    let macao = client(
        &pki,
        Authority::Macao,
        &service,
        Duration::from_millis(300),
        &m,
    );

    service.set_mode(FailMode::Slow, None);
    let e = macao.inspect(&inspection("t", "M1")).await.unwrap_err();
    assert!(
        matches!(e, AuthorityError::Timeout { .. }) && e.is_retryable(),
        "{e}"
    );

    // The control route over HTTPS: unavailable for a while, then back by itself.
    let control = raw_https(&pki, true);
    let r = control
        .post(format!("{}/control/fail", service.base_url()))
        .body(r#"{"mode":"unavailable","for_ms":400}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let e = macao.inspect(&inspection("u", "M1")).await.unwrap_err();
    assert!(
        matches!(e, AuthorityError::Unavailable { status: 503, .. }) && e.is_retryable(),
        "{e}"
    );
    eventually("the service reverts to ok", WITHIN, || {
        service.mode() == FailMode::Ok
    })
    .await;
    assert_eq!(
        macao.inspect(&inspection("u", "M1")).await.unwrap(),
        Verdict::Cleared
    );
    let bad = control
        .post(format!("{}/control/fail", service.base_url()))
        .body(r#"{"mode":"explode"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(m.requests(Authority::Macao, "inspection", "timeout"), 1);
    assert_eq!(m.requests(Authority::Macao, "inspection", "unavailable"), 1);

    // Nobody listening: a connect error, retryable.
    let addr = service.local_addr();
    service.shutdown().await;
    let gone = AuthorityClient::from_pem(
        Authority::Macao,
        &format!("https://{addr}"),
        pki.ca_pem.as_bytes(),
        pki.client_cert_pem.as_bytes(),
        pki.client_key_pem.as_bytes(),
        Duration::from_secs(2),
        m.clone(),
    )
    .unwrap();
    let e = gone.inspect(&inspection("v", "M1")).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_holds_fifty_during_outage_then_drains_in_order_once() {
    let pki = DemoPki::generate(&[]).unwrap();
    let service = start(&pki, |_| {}).await;
    service.set_mode(FailMode::Unavailable, None);
    let (registry, m) = metrics();
    let dir = tempfile::tempdir().unwrap();
    let outbox = open_outbox(dir.path(), &m).with_backoff(fast_backoff());
    let macao = client(&pki, Authority::Macao, &service, Duration::from_secs(5), &m);
    let task = run(&outbox, Authority::Macao, macao);

    let mut pushed = Vec::new();
    for n in 0..50u32 {
        let key = outbox
            .push(Delivery {
                authority: Authority::Macao,
                record: if n.is_multiple_of(2) {
                    clearance(n)
                } else {
                    consent(n)
                },
            })
            .unwrap();
        pushed.push(key);
    }
    let unique: std::collections::HashSet<_> = pushed.iter().collect();
    assert_eq!(unique.len(), 50, "keys are unique");
    eventually("delivery is retried", WITHIN, || {
        m.retries(Authority::Macao) >= 3
    })
    .await;
    assert_eq!(outbox.depth(Authority::Macao), 50);
    assert!(outbox.oldest_age(Authority::Macao).is_some());
    assert!(
        service.records().is_empty(),
        "nothing stored during the outage"
    );
    assert_eq!(outbox.pending_keys(Authority::Macao).unwrap(), pushed);

    service.set_mode(FailMode::Ok, None);
    eventually("the outbox drains", WITHIN, || {
        outbox.depth(Authority::Macao) == 0
    })
    .await;
    let records = service.records();
    assert_eq!(
        keys(&records),
        pushed,
        "every record stored exactly once, in order"
    );
    for (n, r) in records.iter().enumerate() {
        let n = n as u32;
        assert_eq!(
            r.record,
            if n.is_multiple_of(2) {
                clearance(n)
            } else {
                consent(n)
            }
        );
    }
    assert_eq!(m.delivered(Authority::Macao), 50);
    assert_eq!(outbox.oldest_age(Authority::Macao), None);
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    assert!(
        text.contains("clearway_outbox_depth{authority=\"macao\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("clearway_outbox_delivered_total{authority=\"macao\"} 50"),
        "{text}"
    );
    assert!(!text.contains("M000000"), "document numbers in metrics");
    stop(task).await;
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_response_is_delivered_again_and_stored_once() {
    let pki = DemoPki::generate(&[]).unwrap();
    let service = start(&pki, |c| c.slow_delay = Duration::from_secs(5)).await;
    service.set_mode(FailMode::Slow, None);
    let (_r, m) = metrics();
    let dir = tempfile::tempdir().unwrap();
    let outbox = open_outbox(dir.path(), &m).with_backoff(fast_backoff());
    // The service stores, then holds its answer past the client's timeout: the answer is lost.
    let mainland = client(
        &pki,
        Authority::Mainland,
        &service,
        Duration::from_millis(300),
        &m,
    );
    let task = run(&outbox, Authority::Mainland, mainland);
    let key = outbox
        .push(Delivery {
            authority: Authority::Mainland,
            record: clearance(1),
        })
        .unwrap();
    eventually(
        "the service stored it and the client timed out",
        WITHIN,
        || {
            service.records().len() == 1
                && m.requests(Authority::Mainland, "record", "timeout") >= 1
        },
    )
    .await;
    assert_eq!(
        outbox.depth(Authority::Mainland),
        1,
        "not acknowledged, still queued"
    );

    service.set_mode(FailMode::Ok, None);
    eventually("the retry is acknowledged", WITHIN, || {
        outbox.depth(Authority::Mainland) == 0
    })
    .await;
    assert_eq!(keys(&service.records()), vec![key]);
    assert!(service.duplicate_records() >= 1);
    assert!(m.requests(Authority::Mainland, "record", "duplicate") >= 1);
    assert_eq!(m.delivered(Authority::Mainland), 1);
    stop(task).await;
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_survive_a_lane_crash_before_delivery() {
    let pki = DemoPki::generate(&[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_r, m) = metrics();

    let mut pushed = Vec::new();
    {
        let outbox = open_outbox(dir.path(), &m);
        for n in 0..5 {
            pushed.push(outbox.push_both(&consent(n)).unwrap());
        }
        assert_eq!(outbox.depth(Authority::Macao), 5);
        assert_eq!(outbox.depth(Authority::Mainland), 5);
        // The lane "crashes": the outbox and its database are dropped, nothing was delivered.
    }

    // The wrong key does not open the outbox; the right one does.
    let db = reopen(&dir.path().join("db")).await;
    let other = tempfile::tempdir().unwrap();
    let e = Outbox::open(&db, LANE, seal_keys(other.path()), m.clone()).unwrap_err();
    assert!(matches!(e, OutboxError::WrongKey), "{e}");
    let outbox = Outbox::open(&db, LANE, seal_keys(dir.path()), m.clone())
        .unwrap()
        .with_backoff(fast_backoff());
    assert_eq!(outbox.depth(Authority::Macao), 5);
    assert_eq!(outbox.depth(Authority::Mainland), 5);
    let macao_keys: Vec<String> = pushed.iter().map(|k| k[0].clone()).collect();
    let mainland_keys: Vec<String> = pushed.iter().map(|k| k[1].clone()).collect();
    assert_eq!(outbox.pending_keys(Authority::Macao).unwrap(), macao_keys);

    // Keys keep counting after the restart: no key is ever reused.
    let next = outbox.push_both(&consent(5)).unwrap();
    assert!(!macao_keys.contains(&next[0]) && !mainland_keys.contains(&next[1]));

    let macao_service = start(&pki, |c| c.name = "macao".into()).await;
    let mainland_service = start(&pki, |c| c.name = "mainland".into()).await;
    let t1 = run(
        &outbox,
        Authority::Macao,
        client(
            &pki,
            Authority::Macao,
            &macao_service,
            Duration::from_secs(5),
            &m,
        ),
    );
    let t2 = run(
        &outbox,
        Authority::Mainland,
        client(
            &pki,
            Authority::Mainland,
            &mainland_service,
            Duration::from_secs(5),
            &m,
        ),
    );
    eventually("both queues drain", WITHIN, || {
        outbox.depth(Authority::Macao) == 0 && outbox.depth(Authority::Mainland) == 0
    })
    .await;
    let mut want_macao = macao_keys;
    want_macao.push(next[0].clone());
    let mut want_mainland = mainland_keys;
    want_mainland.push(next[1].clone());
    assert_eq!(keys(&macao_service.records()), want_macao);
    assert_eq!(keys(&mainland_service.records()), want_mainland);
    assert_eq!(mainland_service.records()[2].record, consent(2));
    stop(t1).await;
    stop(t2).await;
    macao_service.shutdown().await;
    mainland_service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_entries_become_dead_letters() {
    let pki = DemoPki::generate(&[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_r, m) = metrics();
    let mut pushed = Vec::new();
    {
        let outbox = open_outbox(dir.path(), &m);
        for n in 0..4 {
            pushed.push(
                outbox
                    .push(Delivery {
                        authority: Authority::Macao,
                        record: clearance(n),
                    })
                    .unwrap(),
            );
        }
    }
    {
        // Damage the disk: entry 2 is garbage, entry 3 has one flipped bit in its ciphertext.
        let db = reopen(&dir.path().join("db")).await;
        let tree = db.open_tree(Outbox::tree_name(Authority::Macao)).unwrap();
        let entries: Vec<_> = tree.iter().map(|e| e.unwrap()).collect();
        assert_eq!(entries.len(), 4);
        tree.insert(&entries[1].0, &b"\x01garbage"[..]).unwrap();
        let mut flipped = entries[2].1.to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x01;
        tree.insert(&entries[2].0, flipped).unwrap();
        db.flush().unwrap();
    }

    let outbox = Outbox::open(
        &reopen(&dir.path().join("db")).await,
        LANE,
        seal_keys(dir.path()),
        m.clone(),
    )
    .unwrap()
    .with_backoff(fast_backoff());
    // Reading the queue names the damage instead of panicking.
    let e = outbox.pending_keys(Authority::Macao).unwrap_err();
    assert!(matches!(e, OutboxError::Corrupt { seq: 2, .. }), "{e}");
    assert_eq!(outbox.peek(Authority::Macao).unwrap().unwrap().0, pushed[0]);

    let service = start(&pki, |_| {}).await;
    let task = run(
        &outbox,
        Authority::Macao,
        client(&pki, Authority::Macao, &service, Duration::from_secs(5), &m),
    );
    eventually("the queue drains", WITHIN, || {
        outbox.depth(Authority::Macao) == 0
    })
    .await;
    assert_eq!(
        keys(&service.records()),
        vec![pushed[0].clone(), pushed[3].clone()]
    );
    let dead = outbox.dead_letters(Authority::Macao).unwrap();
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert_eq!(dead[0].seq, 2);
    assert!(dead[0].reason.contains("unreadable"), "{dead:?}");
    assert_eq!(dead[1].key.as_deref(), Some(pushed[2].as_str()));
    assert!(dead[1].reason.contains("seal key"), "{dead:?}");
    assert_eq!(m.dead_letters(Authority::Macao), 2);
    // A damaged dead letter cannot be put back.
    let e = outbox.requeue_dead_letter(Authority::Macao, 3).unwrap_err();
    assert!(matches!(e, OutboxError::Corrupt { .. }), "{e}");
    stop(task).await;
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_refusal_is_a_dead_letter_and_the_queue_moves_on() {
    let pki = DemoPki::generate(&[]).unwrap();
    let service = start(&pki, |_| {}).await;
    let (registry, m) = metrics();
    let dir = tempfile::tempdir().unwrap();
    let outbox = open_outbox(dir.path(), &m).with_backoff(fast_backoff());
    let macao = client(&pki, Authority::Macao, &service, Duration::from_secs(5), &m);

    // Queue a record, and have its key taken at the authority by a different record: the
    // authority refuses the delivery for good (422).
    let refused = outbox
        .push(Delivery {
            authority: Authority::Macao,
            record: clearance(1),
        })
        .unwrap();
    macao.deliver(&refused, &clearance(99)).await.unwrap();
    let fine = outbox
        .push(Delivery {
            authority: Authority::Macao,
            record: clearance(2),
        })
        .unwrap();

    let task = run(&outbox, Authority::Macao, macao.clone());
    eventually("the queue drains", WITHIN, || {
        outbox.depth(Authority::Macao) == 0
    })
    .await;
    let dead = outbox.dead_letters(Authority::Macao).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].key.as_deref(), Some(refused.as_str()));
    assert!(dead[0].reason.contains("422"), "{dead:?}");
    assert_eq!(m.dead_letters(Authority::Macao), 1);
    assert_eq!(m.requests(Authority::Macao, "record", "rejected"), 1);
    let stored = service.records();
    assert_eq!(keys(&stored), vec![refused.clone(), fine]);
    assert_eq!(stored[0].record, clearance(99));
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    assert!(
        text.contains("clearway_outbox_dead_letters_total{authority=\"macao\"} 1"),
        "{text}"
    );

    // An operator puts it back: same key, refused again.
    assert_eq!(
        outbox
            .requeue_dead_letter(Authority::Macao, dead[0].seq)
            .unwrap(),
        refused
    );
    eventually("refused again", WITHIN, || {
        m.dead_letters(Authority::Macao) == 2
    })
    .await;
    assert_eq!(outbox.depth(Authority::Macao), 0);

    // A direct refusal is not retryable.
    let e = macao.deliver(&refused, &clearance(5)).await.unwrap_err();
    assert!(
        matches!(e, AuthorityError::Rejected { status: 422, .. }) && !e.is_retryable(),
        "{e}"
    );
    stop(task).await;
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_records_survive_its_restart() {
    let pki = DemoPki::generate(&[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("records.jsonl");
    let (_r, m) = metrics();
    let service = start(&pki, |c| c.records_file = Some(file.clone())).await;
    let addr = service.local_addr();
    let macao = client(&pki, Authority::Macao, &service, Duration::from_secs(5), &m);
    for n in 0..3 {
        macao
            .deliver(&format!("k-{n}"), &clearance(n))
            .await
            .unwrap();
    }
    macao.deliver("k-1", &clearance(1)).await.unwrap(); // a repeat: 409, success
    assert_eq!(service.duplicate_records(), 1);
    service.shutdown().await;
    let lines = std::fs::read_to_string(&file).unwrap();
    assert_eq!(lines.lines().count(), 3);

    let service = start(&pki, |c| {
        c.records_file = Some(file.clone());
        c.listen = addr;
    })
    .await;
    assert_eq!(keys(&service.records()), vec!["k-0", "k-1", "k-2"]);
    // The old client's pooled connection was closed by the restart: the client tries once more.
    macao.deliver("k-2", &clearance(2)).await.unwrap();
    assert_eq!(
        service.duplicate_records(),
        1,
        "a repeat after the restart is still a repeat"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 3);

    // GET /v1/records over HTTPS.
    let list: Vec<StoredRecord> = raw_https(&pki, true)
        .get(format!("{}/v1/records", service.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, service.records());
    // Bad requests are permanent refusals.
    let r = raw_https(&pki, true)
        .post(format!("{}/v1/records", service.base_url()))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "missing key");
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_answers_and_unknown_routes_are_clear_errors() {
    let pki = DemoPki::generate(&[]).unwrap();
    let service = start(&pki, |_| {}).await;
    let (_r, m) = metrics();
    let macao = client(&pki, Authority::Macao, &service, Duration::from_secs(5), &m);
    service.set_mode(FailMode::Garbage, None);
    let e = macao.inspect(&inspection("g", "M1")).await.unwrap_err();
    assert!(
        matches!(e, AuthorityError::BadResponse { .. }) && !e.is_retryable(),
        "{e}"
    );
    assert!(e.to_string().contains("not a verdict"), "{e}");
    assert_eq!(
        m.requests(Authority::Macao, "inspection", "bad_response"),
        1
    );
    service.set_mode(FailMode::Ok, None);

    // A base URL with a path prefix is kept; here the prefix leads nowhere: 404, permanent.
    let odd = AuthorityClient::from_pem(
        Authority::Macao,
        &format!("{}/elsewhere", service.base_url()),
        pki.ca_pem.as_bytes(),
        pki.client_cert_pem.as_bytes(),
        pki.client_key_pem.as_bytes(),
        Duration::from_secs(5),
        m,
    )
    .unwrap();
    let e = odd.inspect(&inspection("z", "M1")).await.unwrap_err();
    assert!(
        matches!(e, AuthorityError::Rejected { status: 404, .. }) && !e.is_retryable(),
        "{e}"
    );
    service.shutdown().await;
}
