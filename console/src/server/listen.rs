//! The console's listener: HTTPS (or, behind a proxy on loopback, plain HTTP) connections
//! served with bounded patience and a bounded count, so a client that opens connections and
//! sends its TLS handshake or headers slowly (slowloris) cannot hold the console's sockets. The request body has its own deadline in the guard
//! ([`super::BODY_TIMEOUT`]). Each request carries its peer address (`ConnectInfo`) for the
//! login back-off. A stop finishes the requests in flight and closes idle connections.

use std::future::Future;
#[cfg(test)]
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;
use tracing::{debug, warn};

/// How patient the listener is.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Time a client has to send a request's headers once it starts one (and to send the
    /// first one after connecting).
    pub header_read: Duration,
    /// Connections served at once; more are closed on accept.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_read: Duration::from_secs(10),
            max_connections: 512,
        }
    }
}

/// Serves `app` on `listener` (over TLS with `tls`) until `stop` resolves, then waits for the
/// requests in flight (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut stop => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors and the like: wait a moment rather than spin.
                    warn!(error = %e, "Cannot accept a connection.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            debug!("Connection refused: too many open connections.");
            drop(stream);
            continue;
        };
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let acceptor = acceptor.clone();
        let handshake = limits.header_read;
        tokio::spawn(async move {
            let served = match acceptor {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn).await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let conn = builder.serve_connection(TokioIo::new(tls), service);
                            watcher.watch(conn).await
                        }
                        Ok(Err(e)) => {
                            debug!(error = %e, "A TLS handshake failed.");
                            Ok(())
                        }
                        Err(_) => {
                            debug!("A TLS handshake took too long.");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = served {
                debug!(error = %e, "A connection ended with an error.");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The plain-HTTP redirect listener's router: every request is sent to the same path on
/// `https://<host>:<https_port>` (308), nothing else is served.
pub fn redirect_router(https_port: u16) -> Router {
    Router::new().fallback(move |req: axum::extract::Request| async move {
        use axum::http::{StatusCode, header};
        use axum::response::IntoResponse;
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(host_only)
            .unwrap_or("localhost")
            .to_string();
        let path = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let to = format!("https://{host}:{https_port}{path}");
        match axum::http::HeaderValue::from_str(&to) {
            Ok(v) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, v)]).into_response(),
            Err(_) => StatusCode::BAD_REQUEST.into_response(),
        }
    })
}

/// The host of a `Host` header without its port (`[::1]:80` → `[::1]`); None when it is not a
/// plain host name or address (a redirect must not be steered elsewhere by odd characters).
fn host_only(host: &str) -> Option<&str> {
    let h = match host.strip_prefix('[') {
        Some(rest) => &host[..rest.find(']')? + 2],
        None => host.split(':').next()?,
    };
    let ok = !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    ok.then_some(h)
}

/// Serves a router on an ephemeral port for tests: its address and the stop sender.
#[cfg(test)]
pub(crate) async fn spawn_for_test(
    app: Router,
    limits: Limits,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, app, limits, None, async move {
        let _ = rx.await;
    }));
    (addr, tx)
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn app() -> Router {
        Router::new().route(
            "/peer",
            axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                peer.ip().to_string()
            }),
        )
    }

    async fn read_all(s: &mut tokio::net::TcpStream) -> String {
        let mut buf = Vec::new();
        // The server closes the connection; a generous bound keeps a broken server from
        // hanging the test (this is not a timing assertion: the limit below is 1 s).
        let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf)).await;
        String::from_utf8_lossy(&buf).into_owned()
    }

    #[tokio::test]
    async fn a_client_that_never_finishes_its_headers_is_disconnected() {
        let limits = Limits {
            header_read: Duration::from_secs(1),
            max_connections: 8,
        };
        let (addr, _stop) = spawn_for_test(app(), limits).await;
        // A whole request is answered, with the peer's address.
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let answer = read_all(&mut s).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("127.0.0.1"), "{answer}");
        // Half a request line, then silence: the server gives up on it and closes.
        let mut slow = tokio::net::TcpStream::connect(addr).await.expect("connect");
        slow.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        let started = std::time::Instant::now();
        let answer = read_all(&mut slow).await;
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the slow client was disconnected"
        );
        assert!(!answer.contains("200 OK"), "{answer}");
    }

    #[tokio::test]
    async fn https_is_served_with_the_configured_certificate_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let made = crate::tls::self_signed(&["127.0.0.1".into()]).expect("cert");
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, &made.cert_pem).expect("cert");
        std::fs::write(&key, &made.key_pem).expect("key");
        let (server, _) = crate::tls::server_config(&cert, &key).expect("config");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let limits = Limits {
            header_read: Duration::from_secs(1),
            max_connections: 8,
        };
        tokio::spawn(serve(
            listener,
            app(),
            limits,
            Some(Arc::new(server)),
            std::future::pending(),
        ));
        // A client that trusts the console's certificate gets an answer over TLS.
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_slice_iter(made.cert_pem.as_bytes()) {
            roots.add(c.expect("pem")).expect("root");
        }
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut tls = connector.connect(name, tcp).await.expect("handshake");
        tls.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut buf = Vec::new();
        let _ = tls.read_to_end(&mut buf).await;
        let answer = String::from_utf8_lossy(&buf);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // Plain HTTP to the HTTPS port gets no page.
        let mut plain = tokio::net::TcpStream::connect(addr).await.expect("connect");
        plain
            .write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        assert!(!read_all(&mut plain).await.contains("200 OK"));
        // A client that never finishes its handshake is let go.
        let mut silent = tokio::net::TcpStream::connect(addr).await.expect("connect");
        assert_eq!(
            read_all(&mut silent).await,
            "",
            "closed after the handshake deadline"
        );
    }

    #[tokio::test]
    async fn plain_http_is_redirected_to_the_https_address() {
        let (addr, _stop) = spawn_for_test(redirect_router(8443), Limits::default()).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /lane/hengqin/passenger/1?x=1 HTTP/1.1\r\nHost: console.hq:80\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let answer = read_all(&mut s).await;
        assert!(answer.starts_with("HTTP/1.1 308"), "{answer}");
        assert!(
            answer
                .to_lowercase()
                .contains("location: https://console.hq:8443/lane/hengqin/passenger/1?x=1"),
            "{answer}"
        );
    }

    #[test]
    fn a_redirect_keeps_the_host_and_path_and_nothing_odd() {
        let table = [
            ("console.hq:80", Some("console.hq")),
            ("10.1.0.20", Some("10.1.0.20")),
            ("[::1]:80", Some("[::1]")),
            ("evil.example/x", None),
            ("a b", None),
            ("", None),
        ];
        for (host, want) in table {
            assert_eq!(host_only(host), want, "{host:?}");
        }
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_are_closed_and_a_stop_ends_the_server() {
        let limits = Limits {
            header_read: Duration::from_secs(20),
            max_connections: 2,
        };
        let (addr, stop) = spawn_for_test(app(), limits).await;
        let mut held = Vec::new();
        for _ in 0..2 {
            let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            held.push(s);
        }
        // The kernel queues connections in order: the third is accepted after both.
        let mut third = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let _ = third
            .write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
        assert_eq!(read_all(&mut third).await, "", "closed without an answer");
        // Once one is released, a new connection is served (tried until the server has seen
        // the close).
        drop(held.pop());
        let mut served = false;
        for _ in 0..100 {
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let _ = s
                .write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await;
            if read_all(&mut s).await.starts_with("HTTP/1.1 200") {
                served = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(served, "a freed slot serves a new connection");
        let _ = stop.send(());
        let mut closed = false;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(closed, "the listener is closed after a stop");
    }
}
