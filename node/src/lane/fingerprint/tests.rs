//! The reader client against the fingerprint simulator and hostile servers, over real sockets.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::sim::SIM_TEMPLATE_MARKER;
use super::*;

const PATIENCE: Duration = Duration::from_secs(10);

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

async fn simulator() -> SimFingerprintHandle {
    FingerprintSimulator::start(
        local(),
        FingerprintSimConfig {
            latency_ms: 0,
            template_len: 64,
            ..FingerprintSimConfig::default()
        },
    )
    .await
    .expect("simulator")
}

fn reader(addr: SocketAddr) -> TcpFingerprintReader {
    TcpFingerprintReader::new(TcpFingerprintReaderConfig {
        reply_margin_ms: 500,
        ..TcpFingerprintReaderConfig::new(addr)
    })
}

async fn capture(r: &mut TcpFingerprintReader) -> Result<FingerprintCapture, FingerprintError> {
    tokio::time::timeout(PATIENCE, r.capture(Duration::from_millis(200)))
        .await
        .expect("the client is bounded")
}

#[test]
fn quality_threshold() {
    let cases = [
        (0, 0, true),
        (39, 40, false),
        (40, 40, true),
        (100, 100, true),
        (99, 100, false),
    ];
    for (quality, minimum, passes) in cases {
        let got = check_quality(
            FingerprintCapture {
                quality,
                template: vec![1, 2, 3],
            },
            minimum,
        );
        match got {
            Ok(c) => {
                assert!(passes, "{quality} vs {minimum}");
                assert_eq!(c.quality, quality);
            }
            Err(e) => {
                assert!(!passes, "{quality} vs {minimum}");
                assert_eq!(e, FingerprintError::LowQuality { quality, minimum });
                assert_eq!(e.code(), "low_quality");
            }
        }
    }
}

#[test]
fn debug_output_never_shows_the_template() {
    let c = FingerprintCapture {
        quality: 50,
        template: vec![0xab; 4],
    };
    assert_eq!(
        format!("{c:?}"),
        "FingerprintCapture { quality: 50, template: <4 bytes> }"
    );
}

#[tokio::test]
async fn captures_and_scripted_outcomes_from_the_simulator() {
    let sim = simulator().await;
    let mut r = reader(sim.addr());

    let c = capture(&mut r).await.expect("capture");
    assert_eq!(c.quality, 80);
    assert_eq!(c.template.len(), 64);
    assert_eq!(&c.template[..4], SIM_TEMPLATE_MARKER);
    let again = capture(&mut r).await.expect("capture");
    assert_ne!(c.template, again.template, "templates are random");

    sim.push([
        SimOutcome::NoFinger,
        SimOutcome::LowQuality,
        SimOutcome::Fail,
        SimOutcome::Timeout,
        SimOutcome::Capture { quality: 40 },
        SimOutcome::Capture { quality: 39 },
    ]);
    let want: [Result<u8, FingerprintError>; 7] = [
        Err(FingerprintError::NoFinger),
        Err(FingerprintError::LowQuality {
            quality: 15,
            minimum: 40,
        }),
        Err(FingerprintError::Reader {
            code: "device".into(),
            message: Some("simulated sensor failure".into()),
        }),
        Err(FingerprintError::Timeout { after: None }),
        Ok(40),
        Err(FingerprintError::LowQuality {
            quality: 39,
            minimum: 40,
        }),
        Ok(80),
    ];
    for (i, want) in want.into_iter().enumerate() {
        let got = capture(&mut r).await.map(|c| c.quality);
        assert_eq!(got, want, "capture {i}");
    }
    sim.set_quality(95);
    assert_eq!(capture(&mut r).await.map(|c| c.quality), Ok(95));
    assert_eq!(sim.requests(), 10);
}

#[tokio::test]
async fn a_finger_placed_too_late_is_no_finger() {
    let sim = FingerprintSimulator::start(
        local(),
        FingerprintSimConfig {
            latency_ms: 5000,
            ..FingerprintSimConfig::default()
        },
    )
    .await
    .expect("simulator");
    let mut r = reader(sim.addr());
    assert_eq!(capture(&mut r).await, Err(FingerprintError::NoFinger));
}

#[tokio::test]
async fn bad_replies_are_clear_errors_and_the_client_recovers() {
    let sim = simulator().await;
    let mut r = reader(sim.addr());
    let huge = {
        let mut v = b"{\"quality\":50,\"template\":\"".to_vec();
        v.resize(200_000, b'a');
        v.extend_from_slice(b"\"}\n");
        v
    };
    let cases: Vec<(SimOutcome, &str)> = vec![
        (SimOutcome::Raw(b"hello\n".to_vec()), "protocol"),
        (SimOutcome::Raw(b"{\"quality\":50}\n".to_vec()), "protocol"),
        (
            SimOutcome::Raw(b"{\"quality\":500,\"template\":\"00\"}\n".to_vec()),
            "protocol",
        ),
        (
            SimOutcome::Raw(b"{\"quality\":50,\"template\":\"zz\"}\n".to_vec()),
            "protocol",
        ),
        (SimOutcome::Raw(b"\xff\xfe\n".to_vec()), "protocol"),
        (SimOutcome::Raw(huge), "frame_too_large"),
        // Half a reply and then nothing: the client gives up and drops that stream.
        (SimOutcome::Raw(b"{\"quality\":5".to_vec()), "timeout"),
        (SimOutcome::Silent, "timeout"),
    ];
    for (outcome, code) in cases {
        let dbg = format!("{outcome:?}").chars().take(60).collect::<String>();
        sim.push([outcome]);
        let err = capture(&mut r).await.expect_err(&dbg);
        assert_eq!(err.code(), code, "{dbg}: {err}");
        // The next capture works (on a fresh connection where the old one was dropped).
        let ok = capture(&mut r).await.expect("recovered");
        assert_eq!(ok.quality, 80, "{dbg}");
    }
}

#[tokio::test]
async fn a_reply_cut_short_is_a_protocol_error() {
    let listener = TcpListener::bind(local()).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 256];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"{\"quality\":50,\"temp").await;
            // Closing mid-line.
        }
    });
    let mut r = reader(addr);
    let err = capture(&mut r).await.expect_err("truncated");
    assert_eq!(err.code(), "protocol", "{err}");
}

#[tokio::test]
async fn an_unreachable_reader_is_a_clear_error() {
    let closed = {
        let l = TcpListener::bind(local()).await.expect("bind");
        l.local_addr().expect("addr")
    };
    let mut r = reader(closed);
    let err = capture(&mut r).await.expect_err("nobody listens");
    assert_eq!(err.code(), "unreachable");
    assert!(err.to_string().contains(&closed.to_string()), "{err}");
}

#[tokio::test]
async fn the_simulator_answers_bad_requests_and_keeps_serving() {
    let sim = simulator().await;
    let mut s = tokio::net::TcpStream::connect(sim.addr())
        .await
        .expect("connect");
    s.write_all(b"{\"op\":\"enrol\"}\nnot json\n{\"op\":\"capture\",\"timeout_ms\":100}\n")
        .await
        .expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while got.iter().filter(|&&b| b == b'\n').count() < 3 {
        let n = tokio::time::timeout_at(deadline, s.read(&mut buf))
            .await
            .expect("replies in time")
            .expect("read");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("{\"error\":\"bad_request\""), "{text}");
    assert!(lines[1].starts_with("{\"error\":\"bad_request\""), "{text}");
    assert!(
        lines[2].starts_with("{\"quality\":80,\"template\":\"53494d00"),
        "{text}"
    );
    assert_eq!(sim.requests(), 1);
    sim.shutdown().await;
}

#[test]
fn config_defaults_and_validation() {
    let c: TcpFingerprintReaderConfig =
        toml::from_str(r#"address = "127.0.0.1:7300""#).expect("minimal config");
    assert_eq!(c, TcpFingerprintReaderConfig::new(c.address));
    assert!(c.validate().is_ok());
    assert!(
        TcpFingerprintReaderConfig {
            max_frame: 10,
            ..c.clone()
        }
        .validate()
        .is_err()
    );
    assert!(
        TcpFingerprintReaderConfig {
            min_quality: 101,
            ..c
        }
        .validate()
        .is_err()
    );
    let s: FingerprintSimConfig = toml::from_str("").expect("defaults");
    assert_eq!(s, FingerprintSimConfig::default());
    assert!(toml::from_str::<FingerprintSimConfig>("qualty = 3").is_err());
}

/// The reader link over mutual TLS: a client holding another CA's certificate, and a plain TCP
/// client, never get a capture (nor a template on the wire); the lane with its certificate
/// captures; a lane that does not trust the reader's CA does not send it a request.
#[tokio::test]
async fn the_reader_link_over_tls_admits_only_the_device_networks_certificates() {
    use crate::lane::device_tls::{DeviceTlsConfig, LANE_ROLE, test_network};
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, lane_side) = test_network(&dir.path().join("port"), Some(LANE_ROLE));
    let (_, elsewhere) = test_network(&dir.path().join("elsewhere"), Some(LANE_ROLE));
    let sim = FingerprintSimulator::start_tls(
        local(),
        FingerprintSimConfig {
            latency_ms: 0,
            template_len: 64,
            ..FingerprintSimConfig::default()
        },
        server,
    )
    .await
    .expect("simulator");
    let over = |tls: DeviceTlsConfig| {
        TcpFingerprintReader::new(TcpFingerprintReaderConfig {
            tls: Some(tls),
            reply_margin_ms: 500,
            ..TcpFingerprintReaderConfig::new(sim.addr())
        })
    };

    let stranger = DeviceTlsConfig {
        ca_cert: lane_side.ca_cert.clone(),
        ..elsewhere.clone()
    };
    let got = capture(&mut over(stranger)).await;
    assert!(got.is_err(), "a stranger's certificate captured: {got:?}");
    let got = capture(&mut reader(sim.addr())).await;
    assert!(got.is_err(), "plain TCP captured: {got:?}");
    // What a plain client hears: nothing a line could be read from, certainly no template.
    let mut raw = tokio::net::TcpStream::connect(sim.addr())
        .await
        .expect("connect");
    raw.write_all(&super::wire::encode_request(Duration::from_millis(200)))
        .await
        .expect("write");
    let mut heard = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, raw.read_to_end(&mut heard)).await;
    assert!(
        !heard.windows(8).any(|w| w == b"template"),
        "a template went out in clear"
    );
    assert_eq!(sim.requests(), 0, "nobody was served");

    let mut lane = over(lane_side.clone());
    let c = capture(&mut lane)
        .await
        .expect("the lane captures over TLS");
    assert!(c.template.starts_with(SIM_TEMPLATE_MARKER));
    assert_eq!(sim.requests(), 1);

    let wary = DeviceTlsConfig {
        ca_cert: elsewhere.ca_cert.clone(),
        ..lane_side
    };
    let e = capture(&mut over(wary))
        .await
        .expect_err("an uncertified reader");
    assert!(e.to_string().contains("handshake"), "{e}");
    assert_eq!(sim.requests(), 1, "the wary lane sent no request");
}
