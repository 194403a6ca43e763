//! The `clearway-node` command line: run a cluster node (`run`), manage a port's certificates
//! (`port`), membership (`cluster`) and bulk enrolment (`gallery import`); and try the face
//! pipeline and a local stand-alone gallery on photos (`detect`, `enrol`, `identify`, …).
//!
//! Exit status: 0 success (a match, the same person); 1 a negative answer (no match, different
//! people); 2 an error, printed as one line on stderr.

use std::path::{Path, PathBuf};

mod cluster;
mod pad_eval;
mod sim;

pub(crate) use cluster::ImportLine;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::face::{FaceConfig, FacePipeline, Frame, Observed};
use crate::store::{GalleryStore, default_key_file};
use clearway_gallery::{PersonId, Template};

/// Clearway lane node.
#[derive(Debug, Parser)]
#[command(name = "clearway-node", version, about)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Directory holding models/ and onnxruntime/ (made by `just setup`).
    #[arg(long, env = "CLEARWAY_ASSETS", default_value = "assets", global = true)]
    pub assets: PathBuf,
    /// The ONNX Runtime shared library.
    #[arg(long, env = "ORT_DYLIB_PATH", global = true)]
    pub ort_library: Option<PathBuf>,
    /// Face pipeline configuration (TOML); defaults when absent.
    #[arg(long, global = true)]
    pub face_config: Option<PathBuf>,
    /// Print results as JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Where a gallery lives.
#[derive(Debug, Args)]
pub struct Db {
    /// Gallery database directory (created on first enrolment).
    #[arg(long)]
    pub db: PathBuf,
    /// Gallery key file [default: beside the database, `<db>.key`].
    #[arg(long)]
    pub key_file: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Detect faces in a photo and show the quality gate's verdict on each.
    Detect {
        /// JPEG or PNG.
        photo: PathBuf,
    },
    /// Enrol a photo: a new person (from a person file) or another template for an existing one.
    Enrol {
        /// The gallery.
        #[command(flatten)]
        db: Db,
        /// A new person's record (TOML; see deploy/examples/persons/).
        #[arg(long, conflicts_with = "to", required_unless_present = "to")]
        person: Option<PathBuf>,
        /// An existing person's id, e.g. P00000001.
        #[arg(long)]
        to: Option<String>,
        /// The photo: exactly one face that passes the quality gate.
        photo: PathBuf,
    },
    /// Identify the person in a photo against the gallery (1:N).
    Identify {
        /// The gallery.
        #[command(flatten)]
        db: Db,
        /// Show this many candidates.
        #[arg(long, default_value_t = 1)]
        top: usize,
        /// The photo: exactly one face that passes the quality gate.
        photo: PathBuf,
    },
    /// Verify whether two photos show the same person (1:1).
    Verify {
        /// First photo.
        a: PathBuf,
        /// Second photo.
        b: PathBuf,
    },
    /// Evaluate presentation-attack detection on a labelled directory (`bona_fide/`,
    /// `attack/<species>/`; images, or clips as directories of frames): APCER per species,
    /// BPCER, a threshold sweep and the operating point (ISO/IEC 30107-3), and a DET plot.
    PadEval {
        /// The directory.
        dir: PathBuf,
        /// Write the DET plot (SVG) here.
        #[arg(long)]
        det: Option<PathBuf>,
        /// The operating point's rule: the highest threshold with BPCER at most this.
        #[arg(long, default_value_t = 0.05)]
        max_bpcer: f64,
        /// Steps of the threshold sweep from 0 to 1.
        #[arg(long, default_value_t = 20)]
        steps: usize,
    },
    /// List the persons in a gallery.
    Persons {
        /// The gallery.
        #[command(flatten)]
        db: Db,
    },
    /// Run one of the labelled simulators (camera, gates, document or fingerprint reader,
    /// reference authority) until Ctrl-C.
    Sim {
        /// Which.
        #[command(subcommand)]
        command: sim::SimCommand,
    },
    /// Run a cluster node until SIGINT/SIGTERM.
    Run {
        /// The node configuration file (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// A port: its certificate authority, node/client bundles, provisioning from its definition,
    /// Prometheus target files.
    Port {
        /// What to do.
        #[command(subcommand)]
        command: cluster::PortCommand,
    },
    /// Inspect and change a port cluster.
    Cluster {
        /// Which nodes, with which certificate.
        #[command(flatten)]
        connect: cluster::Connect,
        /// What to do.
        #[command(subcommand)]
        command: cluster::ClusterCommand,
    },
    /// Bulk gallery operations through the cluster.
    Gallery {
        /// Which nodes, with which certificate.
        #[command(flatten)]
        connect: cluster::Connect,
        /// What to do.
        #[command(subcommand)]
        command: cluster::GalleryCommand,
    },
    /// Cancel a person's registration in a stand-alone gallery: their record and templates are erased.
    Cancel {
        /// The gallery.
        #[command(flatten)]
        db: Db,
        /// The person's id, e.g. P00000001.
        person: String,
    },
}

/// What a command concluded, for the exit status.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Success, or a positive answer.
    Yes,
    /// A negative answer (no match, different people).
    No,
}

impl Db {
    fn open(&self) -> Result<GalleryStore> {
        let key = self
            .key_file
            .clone()
            .unwrap_or_else(|| default_key_file(&self.db));
        GalleryStore::open(&self.db, &key)
    }
}

fn face_config(g: &Global) -> Result<FaceConfig> {
    match &g.face_config {
        Some(p) => FaceConfig::from_file(p),
        None => Ok(FaceConfig::default()),
    }
}

fn ort_library(g: &Global) -> PathBuf {
    g.ort_library
        .clone()
        .unwrap_or_else(|| g.assets.join("onnxruntime/libonnxruntime.so.1.31.1"))
}

fn pipeline(g: &Global) -> Result<FacePipeline> {
    FacePipeline::load(&ort_library(g), &g.assets, face_config(g)?)
}

fn parse_id(s: &str) -> Result<PersonId> {
    s.parse::<PersonId>().map_err(Error::from)
}

fn print<T: Serialize>(json: bool, value: &T, text: impl FnOnce() -> String) -> Result<()> {
    if json {
        let s = serde_json::to_string(value).map_err(|e| Error::Store(e.to_string()))?;
        println!("{s}");
    } else {
        println!("{}", text());
    }
    Ok(())
}

#[derive(Serialize)]
struct MatchOut {
    matched: bool,
    person: Option<String>,
    name: Option<String>,
    score: Option<f32>,
    threshold: f32,
    candidates: Vec<Candidate>,
}

#[derive(Serialize)]
struct Candidate {
    person: String,
    score: f32,
}

/// Runs a parsed command.
pub fn run(cli: Cli) -> Result<Outcome> {
    let g = &cli.global;
    match &cli.command {
        Command::Run { config } => cluster::run_node(&cli.global, config),
        Command::Sim { command } => sim::sim(command),
        Command::Port { command } => cluster::port(command),
        Command::Cluster { connect, command } => cluster::cluster(g, connect, command),
        Command::Gallery {
            connect,
            command:
                cluster::GalleryCommand::Import {
                    file,
                    batch,
                    reason,
                },
        } => cluster::import(g, connect, file, *batch, reason),
        Command::Detect { photo } => {
            let frame = Frame::open(photo)?;
            let mut p = pipeline(g)?;
            let observed = p.observe(frame.as_ref())?;
            print(g.json, &observed, || render_observed(&observed))?;
            Ok(if observed.is_empty() {
                Outcome::No
            } else {
                Outcome::Yes
            })
        }
        Command::Enrol {
            db,
            person,
            to,
            photo,
        } => {
            // Read everything that can be wrong before writing anything.
            let new = person
                .as_deref()
                .map(crate::store::read_person_file)
                .transpose()?;
            let existing = to.as_deref().map(parse_id).transpose()?;
            let frame = Frame::open(photo)?;
            let mut p = pipeline(g)?;
            let (_, embedding) = p
                .single_face(frame.as_ref())
                .map_err(|e| in_photo(photo, e))?;
            let template = Template::quantize(embedding.model().clone(), embedding.values())?;
            let store = db.open()?;
            let person = match (new, existing) {
                (Some(new), _) => store.add_person(new)?,
                (None, Some(id)) => store.person(id)?,
                (None, None) => {
                    return Err(Error::Config("give --person FILE or --to PERSON_ID".into()));
                }
            };
            store.add_template(person.id, &template)?;
            #[derive(Serialize)]
            struct Out<'a> {
                person: String,
                name: &'a str,
                model: String,
                templates: usize,
            }
            let out = Out {
                person: person.id.to_string(),
                name: &person.name,
                model: template.model().to_string(),
                templates: store.templates(person.id)?.len(),
            };
            print(g.json, &out, || {
                format!(
                    "enrolled {} {} ({} template(s), model {})",
                    out.person, out.name, out.templates, out.model
                )
            })?;
            Ok(Outcome::Yes)
        }
        Command::Identify { db, top, photo } => {
            let frame = Frame::open(photo)?;
            let mut p = pipeline(g)?;
            let threshold = p.config().matching.threshold;
            let (_, embedding) = p
                .single_face(frame.as_ref())
                .map_err(|e| in_photo(photo, e))?;
            let store = db.open()?;
            let (gallery, _) = store.index(embedding.model(), embedding.values().len())?;
            let hits = gallery.search(embedding.values(), (*top).max(1))?;
            let best = hits.first().filter(|h| h.score >= threshold);
            let name = best
                .map(|h| store.person(h.person))
                .transpose()?
                .map(|p| p.name);
            let out = MatchOut {
                matched: best.is_some(),
                person: best.map(|h| h.person.to_string()),
                name,
                score: hits.first().map(|h| h.score),
                threshold,
                candidates: hits
                    .iter()
                    .map(|h| Candidate {
                        person: h.person.to_string(),
                        score: h.score,
                    })
                    .collect(),
            };
            print(g.json, &out, || match (&out.person, &out.name, out.score) {
                (Some(id), Some(name), Some(s)) => {
                    format!("match: {id} {name} (score {s:.3}, threshold {threshold:.3})")
                }
                (_, _, Some(s)) => {
                    format!("no match (best score {s:.3}, threshold {threshold:.3})")
                }
                _ => "no match (the gallery is empty)".to_string(),
            })?;
            Ok(if out.matched {
                Outcome::Yes
            } else {
                Outcome::No
            })
        }
        Command::Verify { a, b } => {
            let (fa, fb) = (Frame::open(a)?, Frame::open(b)?);
            let mut p = pipeline(g)?;
            let threshold = p.config().matching.threshold;
            let (_, ea) = p.single_face(fa.as_ref()).map_err(|e| in_photo(a, e))?;
            let (_, eb) = p.single_face(fb.as_ref()).map_err(|e| in_photo(b, e))?;
            let score = ea
                .cosine(&eb)
                .ok_or_else(|| Error::ModelOutput("embeddings of different models".into()))?;
            #[derive(Serialize)]
            struct Out {
                same_person: bool,
                score: f32,
                threshold: f32,
            }
            let out = Out {
                same_person: score >= threshold,
                score,
                threshold,
            };
            print(g.json, &out, || {
                let verdict = if out.same_person {
                    "same person"
                } else {
                    "different people"
                };
                format!("{verdict} (score {score:.3}, threshold {threshold:.3})")
            })?;
            Ok(if out.same_person {
                Outcome::Yes
            } else {
                Outcome::No
            })
        }
        Command::PadEval {
            dir,
            det,
            max_bpcer,
            steps,
        } => {
            pad_eval::run(g, dir, det.as_deref(), *max_bpcer, *steps)?;
            Ok(Outcome::Yes)
        }
        Command::Persons { db } => {
            let store = db.open()?;
            #[derive(Serialize)]
            struct Row {
                person: String,
                name: String,
                category: String,
                templates: usize,
            }
            let mut rows = Vec::new();
            for p in store.persons()? {
                let templates = store.templates(p.id)?.len();
                rows.push(Row {
                    person: p.id.to_string(),
                    name: p.name,
                    category: p.category.to_string(),
                    templates,
                });
            }
            print(g.json, &rows, || {
                rows.iter()
                    .map(|r| {
                        format!(
                            "{}  {}  {}  {} template(s)",
                            r.person, r.name, r.category, r.templates
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
            Ok(Outcome::Yes)
        }
        Command::Cancel { db, person } => {
            let id = parse_id(person)?;
            db.open()?.cancel(id)?;
            print(
                g.json,
                &serde_json::json!({ "cancelled": id.to_string() }),
                || format!("cancelled {id}: record and templates erased"),
            )?;
            Ok(Outcome::Yes)
        }
    }
}

fn in_photo(path: &Path, e: Error) -> Error {
    match e {
        Error::NoFace | Error::MultipleFaces(_) | Error::Quality(_) => Error::Photo {
            path: path.display().to_string(),
            reason: e.to_string(),
        },
        other => other,
    }
}

fn render_observed(observed: &[Observed]) -> String {
    if observed.is_empty() {
        return "no face found".to_string();
    }
    observed
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let f = &o.face;
            let verdict = match &o.rejected {
                None => "accepted".to_string(),
                Some(issue) => format!("rejected: {issue}"),
            };
            format!(
                "face {}: box {:.0},{:.0} {:.0}x{:.0} score {:.3} eyes {:.0}px roll {:.1}° — {verdict}",
                i + 1,
                f.x,
                f.y,
                f.width,
                f.height,
                f.score,
                o.measures.eye_distance_px,
                o.measures.roll_deg
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
