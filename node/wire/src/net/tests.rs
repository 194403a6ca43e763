//! Tests of the transport: certificates and files, mutual TLS over loopback QUIC, refusals,
//! frames, timeouts and reconnection.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::rpc::{Handler, MAX_FRAME, RpcEndpoint, read_frame, write_frame};
use super::tls::{self, Bundle, PortCa};
use super::{Identity, NetError, Peer, Role};

const PORT: &str = "hengqin";
const T: Duration = Duration::from_secs(5);

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Answers with the caller's identity followed by the request, and counts the calls.
#[derive(Default)]
struct Echo {
    calls: AtomicUsize,
}

impl Handler for Echo {
    fn handle(&self, peer: Peer, request: Vec<u8>) -> impl Future<Output = Vec<u8>> + Send {
        self.calls.fetch_add(1, Ordering::SeqCst);
        async move {
            let mut out = peer.identity.to_string().into_bytes();
            out.extend_from_slice(&request);
            out
        }
    }
}

impl Echo {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// Never answers; counts how many of its futures were dropped.
#[derive(Default)]
struct Never {
    started: AtomicUsize,
    dropped: Arc<AtomicUsize>,
}

struct CountDrop(Arc<AtomicUsize>);

impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Handler for Never {
    fn handle(&self, _peer: Peer, _request: Vec<u8>) -> impl Future<Output = Vec<u8>> + Send {
        self.started.fetch_add(1, Ordering::SeqCst);
        let guard = CountDrop(self.dropped.clone());
        async move {
            let _guard = guard;
            std::future::pending::<Vec<u8>>().await
        }
    }
}

/// Waits until `condition` holds, polling; fails the test after 10 s.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A node bound on loopback, serving `handler`.
fn serve<H: Handler>(bundle: &Bundle, handler: Arc<H>) -> (RpcEndpoint, SocketAddr) {
    let endpoint = RpcEndpoint::bind(bundle, loopback()).expect("bind");
    let addr = endpoint.local_addr().expect("local addr");
    endpoint.serve(handler);
    (endpoint, addr)
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// An rcgen self-signed leaf naming `dns_name`, issued by nobody.
fn self_signed(dns_name: &str) -> (String, String) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec![dns_name.to_owned()]).expect("self-signed");
    (cert.pem(), signing_key.serialize_pem())
}

#[test]
fn net_error_is_send_sync_static() {
    fn check<T: Send + Sync + 'static + std::error::Error>() {}
    check::<NetError>();
}

#[test]
fn identities_display_and_parse() {
    assert_eq!(Identity::Node(3).to_string(), "node-3");
    assert_eq!(Identity::Client("admin".into()).to_string(), "client-admin");
    assert_eq!(
        Identity::Node(3).dns_name(PORT),
        "node-3.hengqin.clearway".to_owned()
    );
    assert_eq!(
        Identity::from_dns_name("client-admin.hengqin.clearway").expect("parses"),
        (Identity::Client("admin".into()), PORT.to_owned())
    );
    assert_eq!(
        Identity::from_dns_name_in("node-0.p-1.clearway", "p-1").expect("parses"),
        Identity::Node(0)
    );
    assert_eq!(
        "node-18446744073709551615"
            .parse::<Identity>()
            .expect("u64::MAX"),
        Identity::Node(u64::MAX)
    );
    assert_eq!(
        Identity::client("ops-2").expect("valid"),
        Identity::Client("ops-2".into())
    );

    for bad in [
        "node-3.hengqin",
        "node-3.hengqin.clearway.",
        "node-3.clearway",
        "node-03.hengqin.clearway",
        "node-+3.hengqin.clearway",
        "node-.hengqin.clearway",
        "node-18446744073709551616.hengqin.clearway",
        "client-.hengqin.clearway",
        "client-Admin.hengqin.clearway",
        "client-a.b.hengqin.clearway",
        "gate-1.hengqin.clearway",
        "node-1.HengQin.clearway",
        "node-1..clearway",
        "node-1.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.clearway",
    ] {
        let err = Identity::from_dns_name(bad).expect_err(bad);
        assert_eq!(err.code(), "bad_name", "{bad}: {err}");
    }
    assert!(matches!(
        Identity::from_dns_name_in("node-1.other.clearway", PORT),
        Err(NetError::WrongPort { .. })
    ));
    assert!(Identity::client(&"a".repeat(33)).is_err());
    assert!(Identity::client("").is_err());
    assert!(Identity::client("a_b").is_err());
    assert!(Identity::Client("no spaces".into()).validate().is_err());
    assert!(PortCa::create("Hengqin").is_err());
    assert!(PortCa::create("").is_err());
}

#[test]
fn ca_and_bundle_roundtrip_through_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ca_dir = tmp.path().join("ca");
    let ca = PortCa::create(PORT).expect("create ca");
    ca.save(&ca_dir).expect("save ca");
    assert_eq!(mode(&ca_dir.join("ca.key")), 0o600);
    assert_eq!(mode(&ca_dir.join("ca.pem")), 0o644);

    // A CA is never overwritten, and the existing one is untouched.
    let key_before = std::fs::read(ca_dir.join("ca.key")).expect("read key");
    let other = PortCa::create(PORT).expect("create another ca");
    let err = other.save(&ca_dir).expect_err("must not overwrite");
    assert_eq!(err.code(), "ca_exists", "{err}");
    assert_eq!(
        std::fs::read(ca_dir.join("ca.key")).expect("read key"),
        key_before
    );

    let loaded = PortCa::load(&ca_dir).expect("load ca");
    assert_eq!(loaded.port(), PORT);
    assert_eq!(loaded.cert_pem(), ca.cert_pem());

    let node_dir = tmp.path().join("node-3");
    let bundle = loaded
        .issue(&Identity::Node(3), &Role::Voter)
        .expect("issue");
    bundle.save(&node_dir).expect("save bundle");
    for file in ["ca.pem", "cert.pem", "key.pem"] {
        assert_eq!(mode(&node_dir.join(file)), 0o600, "{file}");
    }
    let back = Bundle::load(&node_dir).expect("load bundle");
    assert_eq!(back.port, PORT);
    assert_eq!(back.identity, Identity::Node(3));
    assert_eq!(back.cert_pem(), bundle.cert_pem());
    assert_eq!(back.ca_pem(), ca.cert_pem());
    // Expiry dates (for /metrics) come from the certificates: a leaf about two years out, the
    // CA later still.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let days = |t: i64| (t - now) / 86_400;
    assert_eq!(back.not_after, bundle.not_after);
    assert!(
        (700..=740).contains(&days(back.not_after)),
        "{}",
        days(back.not_after)
    );
    assert!(back.ca_not_after > back.not_after);

    // Saving again replaces the files (re-issue).
    let reissued = loaded
        .issue(&Identity::Node(3), &Role::Voter)
        .expect("re-issue");
    reissued.save(&node_dir).expect("save again");
    assert_eq!(
        Bundle::load(&node_dir).expect("load again").cert_pem(),
        reissued.cert_pem()
    );

    let admin_dir = tmp.path().join("admin");
    let admin = ca
        .issue(&Identity::Client("admin".into()), &Role::Operator)
        .expect("issue client");
    admin.save(&admin_dir).expect("save client");
    assert_eq!(
        Bundle::load(&admin_dir).expect("load client").identity,
        Identity::Client("admin".into())
    );
    assert!(
        ca.issue(&Identity::Client("Not Valid".into()), &Role::Operator)
            .is_err()
    );
}

#[test]
fn bundle_load_names_the_bad_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ca = PortCa::create(PORT).expect("ca");
    let dir = tmp.path().join("node-1");

    // Missing files.
    let err = Bundle::load(&dir).expect_err("nothing there");
    assert_eq!(err.code(), "io");
    assert!(err.to_string().contains("ca.pem"), "{err}");
    let err = PortCa::load(&dir).expect_err("nothing there");
    assert_eq!(err.code(), "io");

    let bundle = ca.issue(&Identity::Node(1), &Role::Voter).expect("issue");
    bundle.save(&dir).expect("save");

    // Not PEM.
    std::fs::write(dir.join("cert.pem"), "hello").expect("write");
    let err = Bundle::load(&dir).expect_err("not pem");
    assert_eq!(err.code(), "bad_pem", "{err}");
    assert!(err.to_string().contains("cert.pem"), "{err}");

    // A key that is not the certificate's.
    bundle.save(&dir).expect("save");
    let stranger = ca.issue(&Identity::Node(2), &Role::Voter).expect("issue");
    let stranger_dir = tmp.path().join("stranger");
    stranger.save(&stranger_dir).expect("save");
    std::fs::copy(stranger_dir.join("key.pem"), dir.join("key.pem")).expect("copy");
    let err = Bundle::load(&dir).expect_err("wrong key");
    assert_eq!(err.code(), "bad_cert", "{err}");
    assert!(err.to_string().contains("key.pem"), "{err}");

    // A certificate of a same-named port with another CA.
    let foreign = PortCa::create(PORT).expect("foreign ca");
    let foreign_dir = tmp.path().join("foreign");
    foreign
        .issue(&Identity::Node(1), &Role::Voter)
        .expect("issue")
        .save(&foreign_dir)
        .expect("save");
    bundle.save(&dir).expect("save");
    std::fs::copy(foreign_dir.join("cert.pem"), dir.join("cert.pem")).expect("copy");
    std::fs::copy(foreign_dir.join("key.pem"), dir.join("key.pem")).expect("copy");
    let err = Bundle::load(&dir).expect_err("foreign ca");
    assert_eq!(err.code(), "bad_cert", "{err}");
    assert!(err.to_string().contains("cert.pem"), "{err}");

    // A certificate of another port.
    let other_port = PortCa::create("zhuhai").expect("other port");
    let other_dir = tmp.path().join("other");
    other_port
        .issue(&Identity::Node(1), &Role::Voter)
        .expect("issue")
        .save(&other_dir)
        .expect("save");
    std::fs::copy(other_dir.join("cert.pem"), dir.join("cert.pem")).expect("copy");
    std::fs::copy(other_dir.join("key.pem"), dir.join("key.pem")).expect("copy");
    let err = Bundle::load(&dir).expect_err("other port");
    assert!(
        matches!(&err, NetError::WrongPort { expected, found, .. } if expected == PORT && found == "zhuhai"),
        "{err}"
    );

    // A leaf is not a CA.
    bundle.save(&dir).expect("save");
    std::fs::copy(dir.join("cert.pem"), dir.join("ca.pem")).expect("copy");
    let err = Bundle::load(&dir).expect_err("leaf as ca");
    assert_eq!(err.code(), "bad_cert", "{err}");
    assert!(err.to_string().contains("ca.pem"), "{err}");
}

#[tokio::test]
async fn nodes_and_clients_call_each_other() {
    let ca = PortCa::create(PORT).expect("ca");
    let echo = Arc::new(Echo::default());
    let (node1, addr1) = serve(
        &ca.issue(&Identity::Node(1), &Role::Voter).expect("issue"),
        echo.clone(),
    );
    let node2 = RpcEndpoint::bind(
        &ca.issue(&Identity::Node(2), &Role::Voter).expect("issue"),
        loopback(),
    )
    .expect("bind node-2");

    let answer = node2
        .call(addr1, &Identity::Node(1), b" hello", T)
        .await
        .expect("call");
    assert_eq!(answer, b"node-2 hello");
    assert_eq!(node2.open_connections(), 1);

    // The connection is reused, and concurrent calls share it.
    let node2 = Arc::new(node2);
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..20 {
        let node2 = node2.clone();
        calls.spawn(async move {
            let request = format!(" {i}");
            let answer = node2
                .call(addr1, &Identity::Node(1), request.as_bytes(), T)
                .await
                .expect("call");
            assert_eq!(answer, format!("node-2 {i}").into_bytes());
        });
    }
    while let Some(done) = calls.join_next().await {
        done.expect("call task");
    }
    assert_eq!(node2.open_connections(), 1);
    assert_eq!(node1.open_connections(), 0);

    // An operator client with a call-only endpoint; an empty request is fine.
    let admin = RpcEndpoint::client(
        &ca.issue(&Identity::Client("admin".into()), &Role::Operator)
            .expect("issue"),
    )
    .expect("client endpoint");
    let answer = admin
        .call(addr1, &Identity::Node(1), b"", T)
        .await
        .expect("admin call");
    assert_eq!(answer, b"client-admin");

    // A large request and response cross intact.
    let big = vec![7u8; 3 * 1024 * 1024];
    let answer = admin
        .call(addr1, &Identity::Node(1), &big, T)
        .await
        .expect("big call");
    assert_eq!(&answer[..12], b"client-admin");
    assert_eq!(&answer[12..], &big[..]);
    assert_eq!(echo.calls(), 23);

    node2.close().await;
    admin.close().await;
    node1.close().await;
}

/// A call that must fail before reaching node-1's handler.
async fn assert_refused(
    caller: &Bundle,
    addr: SocketAddr,
    expect: &Identity,
    echo: &Echo,
) -> NetError {
    let before = echo.calls();
    let endpoint = RpcEndpoint::client(caller).expect("client endpoint");
    let err = endpoint
        .call(addr, expect, b" let me in", T)
        .await
        .expect_err("must be refused");
    assert_eq!(echo.calls(), before, "the handler must never run");
    assert_eq!(endpoint.open_connections(), 0, "{err}");
    endpoint.close().await;
    err
}

#[tokio::test]
async fn foreign_and_self_signed_certificates_are_refused() {
    let ca = PortCa::create(PORT).expect("ca");
    // Another CA for a port with the very same name: it is the CA that matters.
    let foreign = PortCa::create(PORT).expect("foreign ca");
    let echo = Arc::new(Echo::default());
    let (node1, addr1) = serve(
        &ca.issue(&Identity::Node(1), &Role::Voter).expect("issue"),
        echo.clone(),
    );
    let node1_id = Identity::Node(1);

    // (a) A whole bundle from the foreign CA: each side refuses the other.
    let stranger = foreign
        .issue(&Identity::Node(2), &Role::Voter)
        .expect("issue");
    let err = assert_refused(&stranger, addr1, &node1_id, &echo).await;
    assert_eq!(err.code(), "handshake_refused", "{err}");

    // (a') A foreign certificate, but trusting the right CA: node-1 must refuse it.
    let (cert, key) = {
        let b = foreign
            .issue(&Identity::Node(2), &Role::Voter)
            .expect("issue");
        let dir = tempfile::tempdir().expect("tempdir");
        b.save(dir.path()).expect("save");
        (
            std::fs::read_to_string(dir.path().join("cert.pem")).expect("read"),
            std::fs::read_to_string(dir.path().join("key.pem")).expect("read"),
        )
    };
    let impostor = Bundle::unchecked(PORT, Identity::Node(2), ca.cert_pem().to_owned(), cert, key);
    let err = assert_refused(&impostor, addr1, &node1_id, &echo).await;
    assert_eq!(err.code(), "handshake_refused", "{err}");

    // (b) A self-signed certificate with a node name of this port.
    let (cert, key) = self_signed(&Identity::Node(2).dns_name(PORT));
    let forger = Bundle::unchecked(PORT, Identity::Node(2), ca.cert_pem().to_owned(), cert, key);
    let err = assert_refused(&forger, addr1, &node1_id, &echo).await;
    assert_eq!(err.code(), "handshake_refused", "{err}");

    // (c) The right CA, but node-1 is not who we expect at that address.
    let node2 = ca.issue(&Identity::Node(2), &Role::Voter).expect("issue");
    let err = assert_refused(&node2, addr1, &Identity::Node(7), &echo).await;
    assert_eq!(err.code(), "handshake_refused", "{err}");
    assert!(err.to_string().contains("not valid for name"), "{err}");

    // The legitimate node still gets through after all that.
    let endpoint = RpcEndpoint::client(&node2).expect("client");
    let answer = endpoint
        .call(addr1, &node1_id, b"!", T)
        .await
        .expect("legitimate call");
    assert_eq!(answer, b"node-2!");
    endpoint.close().await;
    node1.close().await;
}

#[tokio::test]
async fn a_server_with_a_foreign_certificate_is_refused() {
    let ca = PortCa::create(PORT).expect("ca");
    let foreign = PortCa::create(PORT).expect("foreign ca");
    let echo = Arc::new(Echo::default());

    // (d) A server presenting a node-1 certificate from the foreign CA.
    let (fake, fake_addr) = serve(
        &foreign
            .issue(&Identity::Node(1), &Role::Voter)
            .expect("issue"),
        echo.clone(),
    );
    let node2 = ca.issue(&Identity::Node(2), &Role::Voter).expect("issue");
    let err = assert_refused(&node2, fake_addr, &Identity::Node(1), &echo).await;
    assert!(
        matches!(err, NetError::HandshakeRefused { addr, .. } if addr == fake_addr),
        "{err}"
    );
    fake.close().await;

    // A server presenting a self-signed node-1 certificate.
    let (cert, key) = self_signed(&Identity::Node(1).dns_name(PORT));
    let forged = Bundle::unchecked(PORT, Identity::Node(1), ca.cert_pem().to_owned(), cert, key);
    let (fake, fake_addr) = serve(&forged, echo.clone());
    let err = assert_refused(&node2, fake_addr, &Identity::Node(1), &echo).await;
    assert_eq!(err.code(), "handshake_refused", "{err}");
    fake.close().await;
}

#[tokio::test]
async fn frames_are_bounded_and_checked() {
    // A declared length above the limit is refused from the header alone.
    let mut huge: &[u8] = &[0xFF, 0xFF, 0xFF, 0xFF];
    let err = read_frame(&mut huge, MAX_FRAME)
        .await
        .expect_err("too large");
    assert!(
        matches!(
            err,
            NetError::FrameTooLarge {
                len: 0xFFFF_FFFF,
                limit: MAX_FRAME
            }
        ),
        "{err}"
    );

    // A frame of exactly the limit is accepted as far as its header, then found truncated
    // (and the reader did not need to hold 64 MiB to find out).
    let header = u32::try_from(MAX_FRAME).expect("fits").to_be_bytes();
    let mut at_limit: &[u8] = &[header[0], header[1], header[2], header[3], 1, 2, 3];
    let err = read_frame(&mut at_limit, MAX_FRAME)
        .await
        .expect_err("truncated");
    assert_eq!(err.code(), "bad_frame", "{err}");
    assert!(err.to_string().contains("after 3"), "{err}");

    let mut short_body: &[u8] = &[0, 0, 0, 10, 1, 2, 3];
    let err = read_frame(&mut short_body, MAX_FRAME)
        .await
        .expect_err("truncated");
    assert_eq!(err.code(), "bad_frame", "{err}");
    assert!(err.to_string().contains("declares 10 bytes"), "{err}");

    let mut short_header: &[u8] = &[0, 0];
    let err = read_frame(&mut short_header, MAX_FRAME)
        .await
        .expect_err("truncated header");
    assert_eq!(err.code(), "bad_frame", "{err}");

    let mut over_small_limit: &[u8] = &[0, 0, 0, 5, 1, 2, 3, 4, 5];
    let err = read_frame(&mut over_small_limit, 4)
        .await
        .expect_err("over limit");
    assert!(
        matches!(err, NetError::FrameTooLarge { len: 5, limit: 4 }),
        "{err}"
    );

    // Round trip, including the empty frame.
    let mut wire = Vec::new();
    write_frame(&mut wire, b"abc").await.expect("write");
    write_frame(&mut wire, b"").await.expect("write");
    assert_eq!(wire, [0, 0, 0, 3, b'a', b'b', b'c', 0, 0, 0, 0]);
    let mut reader: &[u8] = &wire;
    assert_eq!(
        read_frame(&mut reader, MAX_FRAME).await.expect("read"),
        b"abc"
    );
    assert_eq!(read_frame(&mut reader, MAX_FRAME).await.expect("read"), b"");

    // A request over the limit is refused before anything is sent.
    let ca = PortCa::create(PORT).expect("ca");
    let client = RpcEndpoint::client(&ca.issue(&Identity::Node(2), &Role::Voter).expect("issue"))
        .expect("client");
    let too_big = vec![0u8; MAX_FRAME + 1];
    let err = client
        .call(loopback(), &Identity::Node(1), &too_big, T)
        .await
        .expect_err("too large");
    assert!(matches!(err, NetError::FrameTooLarge { .. }), "{err}");
    assert_eq!(client.open_connections(), 0);
}

#[tokio::test]
async fn a_bad_frame_closes_only_its_stream() {
    let ca = PortCa::create(PORT).expect("ca");
    let echo = Arc::new(Echo::default());
    let (node1, addr1) = serve(
        &ca.issue(&Identity::Node(1), &Role::Voter).expect("issue"),
        echo.clone(),
    );

    // Speak raw QUIC with a legitimate certificate.
    let node2 = ca.issue(&Identity::Node(2), &Role::Voter).expect("issue");
    let raw = quinn::Endpoint::client(loopback()).expect("raw endpoint");
    let conn = raw
        .connect_with(
            tls::client_config(&node2).expect("client config"),
            addr1,
            &Identity::Node(1).dns_name(PORT),
        )
        .expect("connect")
        .await
        .expect("handshake");
    assert_eq!(
        tls::peer_identity(&conn, PORT).expect("identity").identity,
        Identity::Node(1)
    );

    // A header declaring 4 GiB: the server resets this stream.
    let (mut send, mut recv) = conn.open_bi().await.expect("open");
    send.write_all(&[0xFF, 0xFF, 0xFF, 0xFF])
        .await
        .expect("write");
    let _ = send.finish();
    let err = read_frame(&mut recv, MAX_FRAME).await.expect_err("reset");
    assert_eq!(err.code(), "stream_closed", "{err}");

    // A truncated request: also reset.
    let (mut send, mut recv) = conn.open_bi().await.expect("open");
    send.write_all(&[0, 0, 0, 9, 1]).await.expect("write");
    let _ = send.finish();
    let err = read_frame(&mut recv, MAX_FRAME).await.expect_err("reset");
    assert_eq!(err.code(), "stream_closed", "{err}");
    assert_eq!(echo.calls(), 0);

    // The connection still serves well-formed requests.
    let (mut send, mut recv) = conn.open_bi().await.expect("open");
    write_frame(&mut send, b" ok").await.expect("write");
    send.finish().expect("finish");
    assert_eq!(
        read_frame(&mut recv, MAX_FRAME).await.expect("answer"),
        b"node-2 ok"
    );
    assert_eq!(echo.calls(), 1);
    assert!(conn.close_reason().is_none());

    conn.close(0u32.into(), b"done");
    raw.wait_idle().await;
    node1.close().await;
}

#[tokio::test]
async fn a_handler_that_never_answers_times_out_and_is_dropped() {
    let ca = PortCa::create(PORT).expect("ca");
    let never = Arc::new(Never::default());
    let (node1, addr1) = serve(
        &ca.issue(&Identity::Node(1), &Role::Voter).expect("issue"),
        never.clone(),
    );
    let node2 = RpcEndpoint::client(&ca.issue(&Identity::Node(2), &Role::Voter).expect("issue"))
        .expect("client");

    let timeout = Duration::from_millis(500);
    let started = Instant::now();
    let err = node2
        .call(addr1, &Identity::Node(1), b"?", timeout)
        .await
        .expect_err("no answer");
    assert!(
        matches!(err, NetError::Timeout { after } if after == timeout),
        "{err}"
    );
    // Correctness bound, not a benchmark: the call ended at the timeout, not at some later one.
    assert!(
        started.elapsed() < timeout + Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(never.started.load(Ordering::SeqCst), 1);

    // The caller gave up, so the server drops the handler's future instead of leaking it.
    eventually("the handler future to be dropped", || {
        never.dropped.load(Ordering::SeqCst) == 1
    })
    .await;

    // The connection survives a timed-out call.
    assert_eq!(node2.open_connections(), 1);
    node2.close().await;
    node1.close().await;
}

#[tokio::test]
async fn a_restarted_node_is_reached_on_a_fresh_connection() {
    let ca = PortCa::create(PORT).expect("ca");
    let node1_bundle = ca.issue(&Identity::Node(1), &Role::Voter).expect("issue");
    let first = Arc::new(Echo::default());
    let (node1, addr1) = serve(&node1_bundle, first.clone());
    let node2 = RpcEndpoint::bind(
        &ca.issue(&Identity::Node(2), &Role::Voter).expect("issue"),
        loopback(),
    )
    .expect("bind node-2");

    assert_eq!(
        node2
            .call(addr1, &Identity::Node(1), b" a", T)
            .await
            .expect("call"),
        b"node-2 a"
    );
    assert_eq!(node2.open_connections(), 1);

    // node-1 goes away and comes back on the same address.
    drop(node1);
    let second = Arc::new(Echo::default());
    let deadline = Instant::now() + Duration::from_secs(10);
    let node1 = loop {
        match RpcEndpoint::bind(&node1_bundle, addr1) {
            Ok(endpoint) => break endpoint,
            Err(e) => {
                assert!(Instant::now() < deadline, "could not rebind {addr1}: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    node1.serve(second.clone());

    assert_eq!(
        node2
            .call(addr1, &Identity::Node(1), b" b", T)
            .await
            .expect("call after restart"),
        b"node-2 b"
    );
    assert_eq!(first.calls(), 1);
    assert_eq!(second.calls(), 1);
    assert_eq!(node2.open_connections(), 1);

    node2.close().await;
    node1.close().await;
}

/// A UDP relay standing for one address: it forwards the caller's datagrams to the current
/// target and the target's answers back. Switching the target makes the old one vanish without
/// a word, as a crashed process would.
struct Relay {
    addr: SocketAddr,
    target: Arc<std::sync::Mutex<SocketAddr>>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Relay {
        let front = tokio::net::UdpSocket::bind(loopback())
            .await
            .expect("front");
        let back = tokio::net::UdpSocket::bind(loopback()).await.expect("back");
        let addr = front.local_addr().expect("front addr");
        let target = Arc::new(std::sync::Mutex::new(target));
        let current = target.clone();
        let task = tokio::spawn(async move {
            let (mut up, mut down) = (vec![0u8; 65536], vec![0u8; 65536]);
            let mut caller = None;
            loop {
                tokio::select! {
                    Ok((n, from)) = front.recv_from(&mut up) => {
                        caller = Some(from);
                        let to = *current.lock().expect("target");
                        let _ = back.send_to(&up[..n], to).await;
                    }
                    Ok((n, from)) = back.recv_from(&mut down) => {
                        let to = *current.lock().expect("target");
                        if let (true, Some(caller)) = (from == to, caller) {
                            let _ = front.send_to(&down[..n], caller).await;
                        }
                    }
                }
            }
        });
        Relay { addr, target, task }
    }

    fn switch(&self, target: SocketAddr) {
        *self.target.lock().expect("target") = target;
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn a_crashed_node_resets_its_old_connections_after_restart() {
    let ca = PortCa::create(PORT).expect("ca");
    let node1_bundle = ca.issue(&Identity::Node(1), &Role::Voter).expect("issue");
    let first = Arc::new(Echo::default());
    let (node1, real1) = serve(&node1_bundle, first.clone());
    let relay = Relay::start(real1).await;
    let addr1 = relay.addr;
    let node2 = RpcEndpoint::bind(
        &ca.issue(&Identity::Node(2), &Role::Voter).expect("issue"),
        loopback(),
    )
    .expect("bind node-2");
    assert_eq!(
        node2
            .call(addr1, &Identity::Node(1), b" a", T)
            .await
            .expect("call"),
        b"node-2 a"
    );

    // node-1 "crashes" and a new process with the same bundle takes its address; node-2 is
    // told nothing, so its cached connection still looks open.
    let second = Arc::new(Echo::default());
    let (restarted, real1_again) = serve(&node1_bundle, second.clone());
    relay.switch(real1_again);
    assert_eq!(node2.open_connections(), 1);

    // The new process derives the same stateless-reset key, so node-2's next packet on the old
    // connection draws a reset that node-2 accepts, and the call is retried on a fresh
    // connection. Without it the call would wait out its 5 s timeout (the idle timeout is 10 s).
    assert_eq!(
        node2
            .call(addr1, &Identity::Node(1), b" b", T)
            .await
            .expect("call after crash"),
        b"node-2 b"
    );
    assert_eq!(first.calls(), 1);
    assert_eq!(second.calls(), 1);
    assert_eq!(node2.open_connections(), 1);

    node2.close().await;
    restarted.close().await;
    node1.close().await;
}

#[test]
fn roles_are_named_by_the_certificate() {
    let ca = PortCa::create(PORT).expect("ca");
    let lane = Role::Lane {
        channel: "hengqin/passenger/12".into(),
    };
    let bundle = ca.issue(&Identity::Node(12), &lane).expect("issue");
    assert_eq!(bundle.role, lane);
    assert!(!bundle.serial.is_empty());
    assert!(
        bundle.serial.bytes().all(|b| b.is_ascii_hexdigit()),
        "{}",
        bundle.serial
    );
    // A lane's certificate lives 90 days, a voter's about two years.
    let days = |b: &Bundle| (b.not_after - chrono::Utc::now().timestamp()) / 86_400;
    assert!((89..=90).contains(&days(&bundle)), "{}", days(&bundle));
    let voter = ca.issue(&Identity::Node(1), &Role::Voter).expect("issue");
    assert!(days(&voter) > 700);
    // Read back from files, the role is still the certificate's.
    let dir = tempfile::tempdir().expect("tempdir");
    bundle.save(dir.path()).expect("save");
    assert_eq!(Bundle::load(dir.path()).expect("load").role, lane);

    for (text, role) in [
        ("voter", Role::Voter),
        ("console", Role::Console),
        ("operator", Role::Operator),
        ("lane/hengqin/passenger/12", lane.clone()),
    ] {
        assert_eq!(text.parse::<Role>().expect(text), role);
        assert_eq!(role.to_string(), text);
        assert_eq!(Role::from_uri(&role.uri()).expect("uri"), role);
    }
    for bad in [
        "",
        "root",
        "lane",
        "lane/",
        "lane/a/b",
        "lane/A/b/c",
        "lane/a/b/c/d",
        "lane/a//c",
    ] {
        assert!(bad.parse::<Role>().is_err(), "{bad:?}");
    }
    assert!(Role::from_uri("https://clearway/role/voter").is_err());
    // Nodes are voters or lanes, clients consoles or operators.
    assert!(ca.issue(&Identity::Node(1), &Role::Console).is_err());
    assert!(
        ca.issue(&Identity::Client("ops".into()), &Role::Voter)
            .is_err()
    );
    assert!(ca.issue(&Identity::Client("ops".into()), &lane).is_err());

    // A certificate made before roles is refused, and the message says how to re-issue.
    let reason = ca.issue_without_role(&Identity::Node(3)).expect("signed");
    assert!(reason.contains("names no role"), "{reason}");
    assert!(reason.contains("port issue --ca"), "{reason}");
    assert!(reason.contains("--node 3 --role"), "{reason}");
}

/// Answers with the caller's identity, role and serial.
struct WhoAmI;

impl Handler for WhoAmI {
    fn handle(&self, peer: Peer, _request: Vec<u8>) -> impl Future<Output = Vec<u8>> + Send {
        async move { format!("{peer} {}", peer.serial).into_bytes() }
    }
}

#[tokio::test]
async fn revoked_certificates_are_refused_and_their_connections_closed() {
    let ca = PortCa::create(PORT).expect("ca");
    let node1_bundle = ca.issue(&Identity::Node(1), &Role::Voter).expect("issue");
    let (node1, addr1) = serve(&node1_bundle, Arc::new(WhoAmI));
    let lane = ca
        .issue(
            &Identity::Node(11),
            &Role::Lane {
                channel: "testport/passenger/1".into(),
            },
        )
        .expect("issue");
    let stolen = RpcEndpoint::client(&lane).expect("client");
    let answer = stolen
        .call(addr1, &Identity::Node(1), b"", T)
        .await
        .expect("call");
    assert_eq!(
        String::from_utf8(answer).expect("utf-8"),
        format!("node-11 (lane/testport/passenger/1) {}", lane.serial)
    );

    // Revoked: its open connection is closed now, and it cannot connect again.
    let now = chrono::Utc::now().timestamp();
    let closed = node1.set_revoked([(Identity::Node(11), now)].into());
    assert_eq!(closed, 1);
    let err = stolen
        .call(addr1, &Identity::Node(1), b"", T)
        .await
        .expect_err("revoked");
    assert!(
        matches!(
            err,
            NetError::ConnectionClosed { .. } | NetError::StreamClosed { .. }
        ),
        "{err:?}"
    );
    // A fresh endpoint with the same certificate fares no better.
    let again = RpcEndpoint::client(&lane).expect("client");
    again
        .call(addr1, &Identity::Node(1), b"", T)
        .await
        .expect_err("revoked at the handshake");

    // Others are untouched.
    let ops = ca
        .issue(&Identity::Client("ops".into()), &Role::Operator)
        .expect("issue");
    let client = RpcEndpoint::client(&ops).expect("client");
    client
        .call(addr1, &Identity::Node(1), b"", T)
        .await
        .expect("ops still served");

    // Its replacement, issued after the revocation, is accepted.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let replacement = ca
        .issue(
            &Identity::Node(11),
            &Role::Lane {
                channel: "testport/passenger/1".into(),
            },
        )
        .expect("issue");
    RpcEndpoint::client(&replacement)
        .expect("client")
        .call(addr1, &Identity::Node(1), b"", T)
        .await
        .expect("the replacement appliance is served");

    // A caller refuses a server whose certificate it knows to be revoked.
    let wary = RpcEndpoint::client(&ops).expect("client");
    wary.set_revoked([(Identity::Node(1), chrono::Utc::now().timestamp())].into());
    let err = wary
        .call(addr1, &Identity::Node(1), b"", T)
        .await
        .expect_err("server revoked");
    assert_eq!(err.code(), "revoked", "{err}");
}

#[tokio::test]
async fn one_identity_holds_a_bounded_number_of_connections() {
    use super::rpc::MAX_CONNECTIONS_PER_IDENTITY;
    let ca = PortCa::create(PORT).expect("ca");
    let echo = Arc::new(Echo::default());
    let (_node1, addr1) = serve(
        &ca.issue(&Identity::Node(1), &Role::Voter).expect("issue"),
        echo.clone(),
    );
    let ops = ca
        .issue(&Identity::Client("ops".into()), &Role::Operator)
        .expect("issue");
    let mut held = Vec::new();
    for _ in 0..MAX_CONNECTIONS_PER_IDENTITY {
        let e = RpcEndpoint::client(&ops).expect("client");
        e.call(addr1, &Identity::Node(1), b"", T)
            .await
            .expect("call");
        held.push(e);
    }
    let before = echo.calls();
    let one_more = RpcEndpoint::client(&ops).expect("client");
    one_more
        .call(addr1, &Identity::Node(1), b"", T)
        .await
        .expect_err("over the cap");
    assert_eq!(echo.calls(), before);
    // Another identity is not affected.
    let console = ca
        .issue(&Identity::Client("console".into()), &Role::Console)
        .expect("issue");
    RpcEndpoint::client(&console)
        .expect("client")
        .call(addr1, &Identity::Node(1), b"", T)
        .await
        .expect("another identity");
    // One closed, one more allowed.
    held.pop().expect("one").close().await;
    let mut ok = false;
    for _ in 0..50 {
        if one_more
            .call(addr1, &Identity::Node(1), b"", T)
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "a slot freed by a closed connection is reused");
}

/// Holds each request a while; records the most it ever held at once.
#[derive(Default)]
struct Busy {
    now: AtomicUsize,
    most: AtomicUsize,
    done: AtomicUsize,
}

impl Handler for Busy {
    fn handle(&self, _peer: Peer, request: Vec<u8>) -> impl Future<Output = Vec<u8>> + Send {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(n, Ordering::SeqCst);
        async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            self.now.fetch_sub(1, Ordering::SeqCst);
            self.done.fetch_add(1, Ordering::SeqCst);
            request
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_identity_gets_a_bounded_share_of_handlers_and_waits_for_more() {
    use super::rpc::{MAX_CONNECTIONS_PER_IDENTITY, MAX_HANDLERS_PER_IDENTITY};
    let ca = PortCa::create(PORT).expect("ca");
    let busy = Arc::new(Busy::default());
    let (_node1, addr1) = serve(
        &ca.issue(&Identity::Node(1), &Role::Voter).expect("issue"),
        busy.clone(),
    );
    let lane = ca
        .issue(
            &Identity::Node(7),
            &Role::Lane {
                channel: "hengqin/passenger/7".into(),
            },
        )
        .expect("issue");
    // Every connection the cap allows, each with as many streams as QUIC lets it open.
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..MAX_CONNECTIONS_PER_IDENTITY {
        let e = Arc::new(RpcEndpoint::client(&lane).expect("client"));
        for i in 0..32u8 {
            let e = e.clone();
            calls.spawn(async move {
                e.call(addr1, &Identity::Node(1), &[i], Duration::from_secs(30))
                    .await
            });
        }
    }
    let total = calls.len();
    while let Some(r) = calls.join_next().await {
        r.expect("task").expect("every call is answered in the end");
    }
    assert_eq!(busy.done.load(Ordering::SeqCst), total);
    let most = busy.most.load(Ordering::SeqCst);
    assert!(
        most <= MAX_HANDLERS_PER_IDENTITY,
        "{most} requests of one identity in handlers at once"
    );
    assert!(most > 1, "calls ran concurrently ({most})");
}
