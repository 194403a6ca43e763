//! PAD evaluation as ISO/IEC 30107-3 defines it, pure: scores in, error rates and a DET plot out.
//!
//! * **APCER** (attack presentation classification error rate), per presentation-attack
//!   instrument species: the share of that species' attack presentations judged bona fide.
//! * **BPCER** (bona fide presentation classification error rate): the share of bona fide
//!   presentations judged attacks.
//! * Presentations in which no single face was found are failures to acquire, counted apart
//!   (a gate does not open for them either way) and left out of both rates.
//!
//! `clearway-node pad-eval DIR` (the IO edge, `cli`) reads `DIR/bona_fide/` and
//! `DIR/attack/<species>/`, scores every image and hands the scores here.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// The scores of one evaluation: bona fide probability per presentation.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Scores {
    /// Bona fide presentations' scores.
    pub bona_fide: Vec<f32>,
    /// Attack presentations' scores by species.
    pub attacks: BTreeMap<String, Vec<f32>>,
    /// Presentations with no single face, by class (`bona_fide` or the species).
    pub failures_to_acquire: BTreeMap<String, usize>,
}

/// Error rates at one threshold (a presentation is judged bona fide when its score ≥ threshold).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rates {
    /// The threshold.
    pub threshold: f32,
    /// BPCER, 0..=1 (`None` without bona fide presentations).
    pub bpcer: Option<f64>,
    /// APCER per species, 0..=1.
    pub apcer: BTreeMap<String, f64>,
    /// The largest APCER over the species (the standard's headline for a PAD subsystem).
    pub apcer_max: Option<f64>,
}

fn share(n: usize, of: usize) -> Option<f64> {
    (of > 0).then(|| n as f64 / of as f64)
}

impl Scores {
    /// The rates at `threshold`.
    pub fn rates(&self, threshold: f32) -> Rates {
        let bpcer = share(
            self.bona_fide.iter().filter(|s| **s < threshold).count(),
            self.bona_fide.len(),
        );
        let apcer: BTreeMap<String, f64> = self
            .attacks
            .iter()
            .filter_map(|(species, s)| {
                share(s.iter().filter(|v| **v >= threshold).count(), s.len())
                    .map(|r| (species.clone(), r))
            })
            .collect();
        let apcer_max = apcer.values().copied().reduce(f64::max);
        Rates {
            threshold,
            bpcer,
            apcer,
            apcer_max,
        }
    }

    /// The rates at `steps + 1` thresholds evenly from 0 to 1.
    pub fn sweep(&self, steps: usize) -> Vec<Rates> {
        let steps = steps.max(1);
        (0..=steps)
            .map(|i| self.rates(i as f32 / steps as f32))
            .collect()
    }

    /// The operating point by the rule "the highest threshold whose BPCER is at most
    /// `max_bpcer`" (the most attacks refused for that much inconvenience to travellers),
    /// searched over every distinct score; `None` without bona fide presentations.
    pub fn threshold_for_bpcer(&self, max_bpcer: f64) -> Option<Rates> {
        if self.bona_fide.is_empty() {
            return None;
        }
        let mut candidates: Vec<f32> = self
            .bona_fide
            .iter()
            .chain(self.attacks.values().flatten())
            .copied()
            .filter(|s| s.is_finite())
            .collect();
        candidates.push(0.0);
        candidates.sort_by(|a, b| b.total_cmp(a));
        candidates.dedup();
        candidates
            .into_iter()
            .map(|t| self.rates(t))
            .find(|r| r.bpcer.is_some_and(|b| b <= max_bpcer))
    }

    /// A detection error trade-off plot (APCER of each species against BPCER, thresholds swept
    /// over every score) as a standalone SVG, linear axes 0–100 %.
    pub fn det_svg(&self, title: &str) -> String {
        let (w, h, m) = (640.0f64, 480.0f64, 60.0f64);
        let (pw, ph) = (w - 1.5 * m, h - 2.0 * m);
        let x = |bpcer: f64| m + bpcer * pw;
        let y = |apcer: f64| m + (1.0 - apcer) * ph;
        let mut thresholds: Vec<f32> = self
            .bona_fide
            .iter()
            .chain(self.attacks.values().flatten())
            .copied()
            .filter(|s| s.is_finite())
            .chain([0.0, 1.0, f32::INFINITY])
            .collect();
        thresholds.sort_by(f32::total_cmp);
        thresholds.dedup();
        let mut svg = String::new();
        let _ = write!(
            svg,
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{tx}" y="24" text-anchor="middle" font-size="14">{title}</text>
<rect x="{m}" y="{m}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>
"##,
            tx = w / 2.0,
            title = escape(title),
        );
        for i in 0..=10 {
            let f = i as f64 / 10.0;
            let _ = writeln!(
                svg,
                r##"<line x1="{gx}" y1="{m}" x2="{gx}" y2="{yb}" stroke="#ddd"/><text x="{gx}" y="{ty}" text-anchor="middle">{p}</text>"##,
                gx = x(f),
                yb = m + ph,
                ty = m + ph + 16.0,
                p = i * 10
            );
            let _ = writeln!(
                svg,
                r##"<line x1="{m}" y1="{gy}" x2="{xr}" y2="{gy}" stroke="#ddd"/><text x="{tx}" y="{ty}" text-anchor="end">{p}</text>"##,
                gy = y(f),
                xr = m + pw,
                tx = m - 6.0,
                ty = y(f) + 4.0,
                p = i * 10
            );
        }
        let _ = writeln!(
            svg,
            r##"<text x="{cx}" y="{by}" text-anchor="middle">BPCER (%)</text><text transform="translate(16 {cy}) rotate(-90)" text-anchor="middle">APCER (%)</text>"##,
            cx = m + pw / 2.0,
            by = h - 16.0,
            cy = m + ph / 2.0
        );
        const COLOURS: [&str; 6] = [
            "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
        ];
        for (i, species) in self.attacks.keys().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let points: Vec<String> = thresholds
                .iter()
                .filter_map(|t| {
                    let r = self.rates(*t);
                    Some(format!(
                        "{:.1},{:.1}",
                        x(r.bpcer?),
                        y(*r.apcer.get(species)?)
                    ))
                })
                .collect();
            let _ = writeln!(
                svg,
                r##"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/><text x="{lx}" y="{ly}" fill="{colour}">{}</text>"##,
                points.join(" "),
                escape(species),
                lx = m + pw - 150.0,
                ly = m + 18.0 + 16.0 * i as f64,
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores() -> Scores {
        let mut s = Scores {
            bona_fide: vec![0.9, 0.8, 0.7, 0.6, 0.2],
            ..Scores::default()
        };
        s.attacks.insert("print".into(), vec![0.1, 0.3, 0.65, 0.05]);
        s.attacks.insert("screen_replay".into(), vec![0.95, 0.5]);
        s
    }

    /// Hand-counted rates, data-driven: (threshold, BPCER, APCER print, APCER screen).
    #[test]
    fn rates_count_as_the_standard_defines() {
        let s = scores();
        for (t, bpcer, print, screen) in [
            (0.0, 0.0, 1.0, 1.0),
            (0.5, 0.2, 0.25, 1.0),
            (0.65, 0.4, 0.25, 0.5),
            (0.7, 0.4, 0.0, 0.5),
            (0.96, 1.0, 0.0, 0.0),
        ] {
            let r = s.rates(t);
            assert_eq!(r.bpcer, Some(bpcer), "t={t}");
            assert_eq!(r.apcer["print"], print, "t={t}");
            assert_eq!(r.apcer["screen_replay"], screen, "t={t}");
            assert_eq!(r.apcer_max, Some(print.max(screen)), "t={t}");
        }
    }

    #[test]
    fn the_operating_point_is_the_highest_threshold_within_the_bpcer() {
        let s = scores();
        // BPCER ≤ 20 %: one of five bona fide may be refused; 0.6 is the highest such threshold.
        let r = s.threshold_for_bpcer(0.2).unwrap();
        assert_eq!(r.threshold, 0.6);
        assert_eq!(r.bpcer, Some(0.2));
        // BPCER 0 forces the threshold down to the lowest bona fide score.
        assert_eq!(s.threshold_for_bpcer(0.0).unwrap().threshold, 0.2);
        assert!(Scores::default().threshold_for_bpcer(0.05).is_none());
    }

    #[test]
    fn the_det_plot_is_an_svg_with_a_curve_per_species() {
        let svg = scores().det_svg("PAD <test>");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("PAD &lt;test&gt;"));
        // The curve of `print` starts at (BPCER 0, APCER 100 %) and ends at (100 %, 0).
        assert!(svg.contains("60.0,60.0"), "{svg}");
        assert!(svg.contains("610.0,420.0"), "{svg}");
    }

    #[test]
    fn a_sweep_runs_from_zero_to_one() {
        let sweep = scores().sweep(4);
        assert_eq!(sweep.len(), 5);
        assert_eq!(sweep[0].threshold, 0.0);
        assert_eq!(sweep[4].threshold, 1.0);
    }
}
