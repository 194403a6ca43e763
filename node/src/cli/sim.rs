//! `clearway-node sim …`: the labelled simulators of the hardware and partners a lane talks to,
//! each speaking the real protocol, for the demo and for trying a lane by hand.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Subcommand;
use tokio::io::AsyncBufReadExt;
use tracing::warn;

use crate::error::{Error, Result};
use crate::lane::authority::{ReferenceArgs, serve_reference};
use crate::lane::document::{ChipData, DocumentReaderSimulator, DocumentSigner, RawDocument};
use crate::lane::fingerprint::{FingerprintSimConfig, FingerprintSimulator};
use crate::lane::gate::{GateSimConfig, GateSimulator};

use super::Outcome;

/// The simulators.
/// A device simulator's side of mutual TLS on the device network.
#[derive(Debug, clap::Args)]
pub struct DeviceTlsArgs {
    /// The device's certificate chain (PEM): serve mutual TLS.
    #[arg(long, requires_all = ["key", "client_ca"])]
    cert: Option<std::path::PathBuf>,
    /// Its private key (PEM).
    #[arg(long, requires = "cert")]
    key: Option<std::path::PathBuf>,
    /// The CA whose client certificates are accepted (PEM).
    #[arg(long, requires = "cert")]
    client_ca: Option<std::path::PathBuf>,
}

impl DeviceTlsArgs {
    /// The server side from the three files, if given.
    fn server_config(&self, what: &str) -> Result<Option<std::sync::Arc<rustls::ServerConfig>>> {
        let (Some(cert), Some(key), Some(ca)) = (&self.cert, &self.key, &self.client_ca) else {
            return Ok(None);
        };
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| Error::Config(format!("{what}: {}: {e}", p.display())))
        };
        crate::lane::device_tls::sim_tls_config(&read(ca)?, &read(cert)?, &read(key)?)
            .map(Some)
            .map_err(|e| Error::Config(format!("{what}: {e}")))
    }
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// An RTSP camera (gst-rtsp-server) showing scenes of photos; scenes from stdin or HTTP.
    Camera(crate::lane::camera::sim::Args),
    /// A gate controller: Modbus TCP, three gates, light curtains, fencing tokens; with
    /// `--cert`, `--key` and `--client-ca`, Modbus/TCP Security (mutual TLS).
    Gates {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:1502")]
        listen: SocketAddr,
        #[command(flatten)]
        tls: DeviceTlsArgs,
        /// Milliseconds a gate takes to open or close.
        #[arg(long, default_value_t = 300)]
        travel_ms: u64,
        /// Milliseconds an open gate waits before closing by itself.
        #[arg(long, default_value_t = 2000)]
        hold_open_ms: u64,
    },
    /// A document reader: presents the documents given on stdin, one JSON object a line
    /// (`{"mrz": "…", "chip": {…}}`), to the lane connected to it; with `--cert`, `--key` and
    /// `--client-ca`, over mutual TLS.
    Documents {
        /// TCP listen address.
        #[arg(long, default_value = "127.0.0.1:7400")]
        listen: SocketAddr,
        #[command(flatten)]
        tls: DeviceTlsArgs,
        /// Sign each chip with the test document signer kept in this directory (made there on
        /// first use; lanes accept the chips where `csca.pem` from it is their `csca_certs`).
        /// A line without chip data gets one with the MRZ's number and birth date.
        #[arg(long)]
        signer: Option<std::path::PathBuf>,
    },
    /// A fingerprint reader answering captures with synthetic templates; with `--cert`, `--key`
    /// and `--client-ca`, over mutual TLS.
    Fingerprint {
        /// TCP listen address.
        #[arg(long, default_value = "127.0.0.1:7500")]
        listen: SocketAddr,
        /// Quality of the captures (0–100).
        #[arg(long, default_value_t = 80)]
        quality: u8,
        #[command(flatten)]
        tls: DeviceTlsArgs,
    },
    /// A reference authority (HTTPS, mutual TLS) that records what it receives and can be told
    /// to fail (`POST /control/fail`).
    Authority(ReferenceArgs),
}

/// Runs one simulator until Ctrl-C.
pub fn sim(command: &SimCommand) -> Result<Outcome> {
    super::cluster::runtime()?.block_on(async {
        match command {
            SimCommand::Camera(args) => crate::lane::camera::sim::run(args.clone()).await?,
            SimCommand::Authority(args) => serve_reference(args.clone())
                .await
                .map_err(|e| Error::Config(e.to_string()))?,
            SimCommand::Gates {
                listen,
                travel_ms,
                hold_open_ms,
                tls,
            } => {
                let config = GateSimConfig {
                    travel_ms: *travel_ms,
                    hold_open_ms: *hold_open_ms,
                    ..GateSimConfig::default()
                };
                config.validate().map_err(Error::Config)?;
                let tls = tls.server_config("gate simulator")?;
                let secure = tls.is_some();
                let sim = match tls {
                    Some(tls) => GateSimulator::start_tls(*listen, config, tls).await,
                    None => GateSimulator::start(*listen, config).await,
                }
                .map_err(|e| Error::Config(format!("gate simulator {listen}: {e}")))?;
                let protocol = if secure {
                    "Modbus/TCP Security"
                } else {
                    "Modbus TCP"
                };
                println!("gate simulator ({protocol}) on {}", sim.addr());
                wait_ctrl_c().await;
                sim.shutdown().await;
            }
            SimCommand::Documents {
                listen,
                tls,
                signer,
            } => {
                let tls = tls.server_config("document reader simulator")?;
                let signer = match signer {
                    Some(dir) => {
                        let s = DocumentSigner::read_or_generate(dir).map_err(|e| {
                            Error::Config(format!("document reader simulator: {e}"))
                        })?;
                        println!(
                            "chips signed by the test document signer; lanes trust {}",
                            dir.join("csca.pem").display()
                        );
                        Some(s)
                    }
                    None => None,
                };
                let secure = tls.is_some();
                let sim = match tls {
                    Some(tls) => DocumentReaderSimulator::start_tls(*listen, tls).await,
                    None => DocumentReaderSimulator::start(*listen).await,
                }
                    .map_err(|e| Error::Config(format!("document reader simulator {listen}: {e}")))?;
                let link = if secure { "mutual TLS" } else { "plain TCP" };
                println!("document reader simulator ({link}) on {}", sim.local_addr());
                let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
                loop {
                    tokio::select! {
                        line = lines.next_line() => match line {
                            Ok(Some(line)) if line.trim().is_empty() => {}
                            Ok(Some(line)) => match serde_json::from_str::<RawDocument>(&line)
                                .map_err(|e| e.to_string())
                                .and_then(|doc| sign(doc, signer.as_ref()))
                            {
                                Ok(doc) => match sim.present(doc) {
                                    Ok(()) => println!("presented"),
                                    Err(e) => eprintln!("error: {e}"),
                                },
                                Err(e) => eprintln!("error: not a document ({{\"mrz\": …, \"chip\": …}}): {e}"),
                            },
                            // Standard input closed: keep serving until Ctrl-C.
                            Ok(None) | Err(_) => { wait_ctrl_c().await; break; }
                        },
                        _ = tokio::signal::ctrl_c() => break,
                    }
                }
                sim.shutdown().await;
            }
            SimCommand::Fingerprint {
                listen,
                quality,
                tls,
            } => {
                let config = FingerprintSimConfig {
                    quality: *quality,
                    ..FingerprintSimConfig::default()
                };
                let tls = tls.server_config("fingerprint reader simulator")?;
                let link = if tls.is_some() { "mutual TLS" } else { "plain TCP" };
                let sim = match tls {
                    Some(tls) => FingerprintSimulator::start_tls(*listen, config, tls).await,
                    None => FingerprintSimulator::start(*listen, config).await,
                }
                .map_err(|e| Error::Config(format!("fingerprint simulator {listen}: {e}")))?;
                println!("fingerprint reader simulator ({link}) on {}", sim.addr());
                wait_ctrl_c().await;
                sim.shutdown().await;
            }
        }
        Ok(Outcome::Yes)
    })
}

async fn wait_ctrl_c() {
    if let Err(e) = tokio::signal::ctrl_c().await {
        warn!(error = %e, "Cannot wait for Ctrl-C; waiting forever.");
        tokio::time::sleep(Duration::MAX).await;
    }
}

/// `doc` with its chip signed by `signer` (a chip made from the MRZ where the line has none),
/// or as it is without a signer.
fn sign(
    doc: RawDocument,
    signer: Option<&DocumentSigner>,
) -> std::result::Result<RawDocument, String> {
    let Some(signer) = signer else {
        return Ok(doc);
    };
    let chip = match doc.chip {
        Some(chip) => chip,
        None => {
            let today = chrono::Utc::now().date_naive();
            let read = crate::lane::document::read_document_for(&doc.mrz, None, today, None)
                .map_err(|e| format!("cannot make a chip for this MRZ: {e}"))?;
            ChipData::minimal(&read.number, read.date_of_birth)
        }
    };
    RawDocument::signed(doc.mrz, chip, signer).map_err(|e| e.to_string())
}
