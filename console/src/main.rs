//! `clearway-console`: the supervisors' console server, and the command that creates the
//! first port admin.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use clearway_console::auth::{Auth, generate_password, now_ms};
use clearway_console::config::{AuthConfig, ConsoleConfig};
use clearway_console::dto::Role;
use clearway_console::metrics::Metrics;
use clearway_console::service::{Console, open_db};
use tracing::{info, warn};

/// How long requests in flight may take to finish after SIGINT or SIGTERM.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// The Clearway supervisor console.
#[derive(Debug, Parser)]
#[command(name = "clearway-console", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the console (pages, server functions, live updates, /metrics).
    Serve {
        /// The console's configuration file (console.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Check a configuration file and exit.
    Check {
        /// The console's configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Console users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The console's HTTPS certificate.
    Tls {
        #[command(subcommand)]
        command: TlsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TlsCommand {
    /// Make a self-signed certificate and key (a demo or a lab only; production consoles get
    /// theirs from the operator's CA) and print its SHA-256 fingerprint.
    SelfSigned {
        /// Where to write console-cert.pem and console-key.pem (0600).
        #[arg(long)]
        dir: PathBuf,
        /// Host names and IP addresses the certificate names, comma separated.
        #[arg(long, value_delimiter = ',', required = true)]
        names: Vec<String>,
    },
    /// Print a certificate's SHA-256 fingerprint (what a browser shows for the console).
    Fingerprint {
        /// The certificate, PEM (the first one is read).
        #[arg(long)]
        cert: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user (the first port admin is made this way; later ones from the Users page).
    /// Without --password-file a random password is generated and printed once.
    Add {
        /// The console's data directory (`data_dir` of console.toml). The console must not be
        /// running: its database is locked while it is.
        #[arg(long)]
        data: PathBuf,
        /// User name (a-z, 0-9, '.', '_', '-').
        #[arg(long)]
        name: String,
        /// supervisor, service-desk or port-admin.
        #[arg(long)]
        role: String,
        /// Ports a supervisor may act on, comma separated.
        #[arg(long, value_delimiter = ',')]
        ports: Vec<String>,
        /// A file whose first line is the password (at least 12 characters).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(&config),
        Command::Tls {
            command: TlsCommand::SelfSigned { dir, names },
        } => {
            let made = clearway_console::tls::self_signed(&names)?;
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let cert = dir.join("console-cert.pem");
            let key = dir.join("console-key.pem");
            std::fs::write(&cert, &made.cert_pem)
                .with_context(|| format!("cannot write {}", cert.display()))?;
            write_private(&key, made.key_pem.as_bytes())?;
            println!("certificate: {}", cert.display());
            println!("key:         {}", key.display());
            println!("SHA-256 fingerprint: {}", made.fingerprint);
            Ok(())
        }
        Command::Tls {
            command: TlsCommand::Fingerprint { cert },
        } => {
            let print = clearway_console::tls::fingerprint_file(&cert)?;
            println!("SHA-256 fingerprint: {print}");
            Ok(())
        }
        Command::Check { config } => {
            let c = ConsoleConfig::from_file(&config)?;
            println!(
                "{}: ok ({} ports, listen {}, data {})",
                config.display(),
                c.ports.len(),
                c.listen,
                c.data_dir.display()
            );
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Add {
                    data,
                    name,
                    role,
                    ports,
                    password_file,
                },
        } => {
            let role = Role::parse(&role).map_err(anyhow::Error::msg)?;
            let (password, generated) = match &password_file {
                Some(f) => {
                    let text = std::fs::read_to_string(f)
                        .with_context(|| format!("cannot read {}", f.display()))?;
                    let line = text.lines().next().unwrap_or_default().to_string();
                    (line, false)
                }
                None => (generate_password(), true),
            };
            let db = open_db(&data).with_context(|| {
                format!(
                    "cannot open the console's database in {} (is the console running? stop it, or create users from the Users page)",
                    data.display()
                )
            })?;
            let auth = Auth::open(&db, AuthConfig::default())?;
            auth.add_user(&name, role, &ports, &password, now_ms())?;
            db.flush()?;
            println!("user {name} ({role}) created");
            if generated {
                println!("password (shown once, store it now): {password}");
            }
            Ok(())
        }
    }
}

/// Writes a file only its owner can read (created 0600, never widened).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn serve(config: &std::path::Path) -> anyhow::Result<()> {
    let config = ConsoleConfig::from_file(config)?;
    let site = config.site_dir();
    let pkg = site.join("pkg").join("clearway_console.js");
    if !pkg.exists() {
        warn!(
            site = %site.display(),
            "The browser code is missing ({}); pages render but do not update live. Build it with `just console`.",
            pkg.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let metrics = Metrics::new(prometheus::Registry::new())?;
        let listen = config.listen;
        let metrics_listen = config.metrics_listen;
        let redirect_listen = config.redirect_listen;
        let tls = match &config.tls {
            Some(t) => {
                let (server, fingerprint) =
                    clearway_console::tls::server_config(&t.cert, &t.key)?;
                info!(cert = %t.cert.display(), fingerprint = %fingerprint, "Serving HTTPS.");
                Some(Arc::new(server))
            }
            None => {
                warn!(listen = %listen, "Serving plain HTTP (plain_http = true): only behind a TLS-terminating proxy on this machine.");
                None
            }
        };
        let console = Arc::new(Console::open(config, metrics)?);
        if !console.auth.has_users() {
            warn!("No console user exists yet; create the first port admin with `clearway-console user add --role port-admin`.");
        }
        clearway_console::poller::spawn_all(&console);
        let app = clearway_console::server::router(console.clone(), &site);
        // The side listeners (Prometheus', the redirect) get the same deadlines as the console's
        // own and fewer connections; they end with the process.
        let side = clearway_console::server::listen::Limits {
            max_connections: 64,
            ..Default::default()
        };
        let forever = std::future::pending::<()>;
        // Prometheus' listener, apart from the supervisors' address.
        if let Some(addr) = metrics_listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (metrics_listen)"))?;
            let metrics = clearway_console::server::metrics_router(console.clone());
            info!(metrics = %addr, "Serving /metrics for Prometheus.");
            tokio::spawn(async move {
                let served = clearway_console::server::listen::serve(
                    listener,
                    metrics,
                    side,
                    None,
                    forever(),
                );
                if let Err(e) = served.await {
                    warn!(error = %e, "The metrics listener stopped.");
                }
            });
        }
        if let Some(addr) = redirect_listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (redirect_listen)"))?;
            let redirect = clearway_console::server::listen::redirect_router(listen.port());
            info!(redirect = %addr, "Redirecting plain HTTP to HTTPS.");
            tokio::spawn(async move {
                let served = clearway_console::server::listen::serve(
                    listener,
                    redirect,
                    side,
                    None,
                    forever(),
                );
                if let Err(e) = served.await {
                    warn!(error = %e, "The redirect listener stopped.");
                }
            });
        }
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        info!(listen = %listen, site = %site.display(), "Console serving.");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot watch SIGTERM")?;
        let (signalled, stop_signal) = tokio::sync::oneshot::channel::<()>();
        let limits = clearway_console::server::listen::Limits::default();
        let server = clearway_console::server::listen::serve(listener, app, limits, tls, async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            info!("Stopping: live pages are disconnected, requests in flight finish.");
            // Server-sent event streams never end by themselves: end them, or the graceful
            // shutdown would wait for every open console page.
            console.stop();
            let _ = signalled.send(());
        });
        // Requests in flight get a bounded time; past it the console exits with an error
        // (a non-zero status says the stop was not clean).
        let deadline = async {
            if stop_signal.await.is_ok() {
                tokio::time::sleep(STOP_GRACE).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            biased;
            r = server => r.context("the server failed")?,
            () = deadline => anyhow::bail!(
                "connections still open {} s after the stop signal; exiting anyway",
                STOP_GRACE.as_secs()
            ),
        }
        info!("Stopped.");
        Ok(())
    })
}
