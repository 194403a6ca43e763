//! `clearway-node pad-eval DIR`: the PAD model on a labelled directory, reported as ISO/IEC
//! 30107-3 asks (the rates themselves are `face::pad_eval`, pure).
//!
//! ```text
//! DIR/bona_fide/…             images (JPEG, PNG), or clips: a directory of frames per presentation
//! DIR/attack/<species>/…      the same, per presentation-attack instrument species
//! ```
//!
//! An image is one presentation: the single face's bona fide probability. A clip is one
//! presentation seen over its frames (sorted by name): the median of its faces' probabilities,
//! and 0 when the planarity signal finds the landmark track flat (a picture moved as a plane).
//! A presentation in which no frame shows exactly one face is a failure to acquire.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Global, face_config, ort_library, print};
use crate::error::{Error, Result};
use crate::face::pad::{LivenessModel, OnnxLiveness};
use crate::face::pad_eval::{Rates, Scores};
use crate::face::planarity::{LandmarkTrack, Planarity, PlanarityConfig};
use crate::face::{FaceDetector, Frame, OnnxDetector, OrtRuntime};

/// What `pad-eval` reports.
#[derive(Serialize)]
struct Report {
    /// The configured threshold's rates.
    configured: Rates,
    /// The operating point the rule picks: the highest threshold with BPCER ≤ `max_bpcer`.
    operating: Option<Rates>,
    /// The rule's BPCER bound.
    max_bpcer: f64,
    /// Presentations per class.
    counts: BTreeMap<String, usize>,
    /// Failures to acquire per class.
    failures_to_acquire: BTreeMap<String, usize>,
    /// The planarity signal's verdicts on the clips, per class (`flat`, `depth`,
    /// `inconclusive`).
    planarity: BTreeMap<String, BTreeMap<&'static str, usize>>,
    /// The sweep.
    sweep: Vec<Rates>,
    /// Where the DET plot was written.
    det: Option<PathBuf>,
}

struct Scorer {
    detector: OnnxDetector,
    model: OnnxLiveness,
    planarity: PlanarityConfig,
}

impl Scorer {
    /// One frame's bona fide probability and landmarks, when it shows exactly one face.
    fn frame(&mut self, path: &Path) -> Result<Option<(f32, crate::face::Face)>> {
        let frame = Frame::open(path)?;
        let faces = self.detector.detect(frame.as_ref())?;
        let [face] = faces.as_slice() else {
            return Ok(None);
        };
        let score = self.model.score(frame.as_ref(), face)?;
        Ok(Some((score.bona_fide, *face)))
    }

    /// One presentation (an image, or a clip directory): its score, and for a clip the
    /// planarity verdict; `None` for a failure to acquire.
    fn presentation(&mut self, path: &Path) -> Result<Option<(f32, Option<Planarity>)>> {
        if !path.is_dir() {
            return Ok(self.frame(path)?.map(|(s, _)| (s, None)));
        }
        let mut track = LandmarkTrack::default();
        let mut scores = Vec::new();
        for frame in images(path)? {
            if let Some((s, face)) = self.frame(&frame)? {
                scores.push(s);
                track.push(face.landmarks, self.planarity.frames);
            }
        }
        if scores.is_empty() {
            return Ok(None);
        }
        let planarity = track.verdict(&self.planarity);
        if planarity == Planarity::Flat {
            return Ok(Some((0.0, Some(planarity))));
        }
        scores.sort_by(f32::total_cmp);
        Ok(Some((scores[scores.len() / 2], Some(planarity))))
    }
}

/// The images and clip directories in `dir`, sorted by name.
fn images(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                || p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    ["jpg", "jpeg", "png"].contains(&e.to_ascii_lowercase().as_str())
                })
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Runs `pad-eval`.
pub fn run(g: &Global, dir: &Path, det: Option<&Path>, max_bpcer: f64, steps: usize) -> Result<()> {
    if !(0.0..=1.0).contains(&max_bpcer) {
        return Err(Error::Config(format!(
            "--max-bpcer must be within 0..=1, got {max_bpcer}"
        )));
    }
    let bona_dir = dir.join("bona_fide");
    let attack_dir = dir.join("attack");
    if !bona_dir.is_dir() || !attack_dir.is_dir() {
        return Err(Error::Config(format!(
            "{} must hold bona_fide/ and attack/<species>/",
            dir.display()
        )));
    }
    let mut config = face_config(g)?;
    config.resolve_paths(&g.assets);
    let runtime = OrtRuntime::load(&ort_library(g), config.runtime.clone())?;
    let mut scorer = Scorer {
        detector: OnnxDetector::new(&runtime, &config.detector)?,
        model: OnnxLiveness::new(&runtime, &g.assets, &config.pad)?,
        planarity: config.pad.planarity.clone(),
    };
    let mut scores = Scores::default();
    let mut counts = BTreeMap::new();
    let mut planarity: BTreeMap<String, BTreeMap<&'static str, usize>> = BTreeMap::new();
    let mut classes: Vec<(String, PathBuf)> = vec![("bona_fide".into(), bona_dir)];
    for species in images(&attack_dir)?.into_iter().filter(|p| p.is_dir()) {
        let name = species
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        classes.push((name, species));
    }
    for (class, path) in &classes {
        let mut got = Vec::new();
        let mut failed = 0;
        let presentations = images(path)?;
        counts.insert(class.clone(), presentations.len());
        for p in presentations {
            match scorer.presentation(&p) {
                Ok(Some((s, verdict))) => {
                    got.push(s);
                    if let Some(v) = verdict {
                        *planarity
                            .entry(class.clone())
                            .or_default()
                            .entry(v.as_str())
                            .or_default() += 1;
                    }
                }
                Ok(None) => failed += 1,
                // A file that is not an image is the operator's to fix; say which.
                Err(e) => {
                    return Err(Error::Photo {
                        path: p.display().to_string(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        if failed > 0 {
            scores.failures_to_acquire.insert(class.clone(), failed);
        }
        if class == "bona_fide" {
            scores.bona_fide = got;
        } else {
            scores.attacks.insert(class.clone(), got);
        }
    }
    let det = match det {
        Some(path) => {
            let title = format!("PAD: {} ({})", config.pad.model.display(), dir.display());
            std::fs::write(path, scores.det_svg(&title)).map_err(|e| Error::io(path, e))?;
            Some(path.to_path_buf())
        }
        None => None,
    };
    let report = Report {
        configured: scores.rates(config.pad.threshold),
        operating: scores.threshold_for_bpcer(max_bpcer),
        max_bpcer,
        counts,
        failures_to_acquire: scores.failures_to_acquire.clone(),
        planarity,
        sweep: scores.sweep(steps),
        det,
    };
    print(g.json, &report, || render(&report))
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.1} %", v * 100.0))
}

fn render(r: &Report) -> String {
    let species: Vec<&String> = r.configured.apcer.keys().collect();
    let mut out = String::new();
    out.push_str("presentations (failures to acquire):");
    for (class, n) in &r.counts {
        let fta = r.failures_to_acquire.get(class).copied().unwrap_or(0);
        out.push_str(&format!(" {class} {n} ({fta})"));
    }
    out.push('\n');
    for (class, verdicts) in &r.planarity {
        let v: Vec<String> = verdicts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        out.push_str(&format!(
            "planarity of the {class} clips: {}\n",
            v.join(", ")
        ));
    }
    let row = |label: String, rates: &Rates| {
        let mut line = format!(
            "{label:<34} threshold {:.3}  BPCER {:>7}  APCER max {:>7}",
            rates.threshold,
            pct(rates.bpcer),
            pct(rates.apcer_max)
        );
        for s in &species {
            line.push_str(&format!("  {s} {}", pct(rates.apcer.get(*s).copied())));
        }
        line
    };
    out.push_str(&row("at the configured threshold".into(), &r.configured));
    out.push('\n');
    match &r.operating {
        Some(o) => out.push_str(&row(
            format!("at BPCER <= {:.1} % (rule)", r.max_bpcer * 100.0),
            o,
        )),
        None => out.push_str("no bona fide presentation: no operating point"),
    }
    out.push_str("\nsweep:\n");
    for rates in &r.sweep {
        out.push_str(&row(String::new(), rates));
        out.push('\n');
    }
    if let Some(det) = &r.det {
        out.push_str(&format!("DET plot: {}\n", det.display()));
    }
    out.push_str(
        "APCER: attacks judged bona fide, per species; BPCER: bona fide judged attacks (ISO/IEC 30107-3).",
    );
    out
}
