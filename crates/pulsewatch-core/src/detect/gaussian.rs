//! Windowed Gaussian: NAB's simplest statistical baseline, written from its description.
//!
//! The score of a point is the two-sided tail probability of its z-score under a Gaussian fitted to
//! the points *before* it: `1 - Q(|x - mean| / std)`, so 0.5 for a point at the mean and → 1 far away.
//! The window grows to `window` points; after that mean and standard deviation are refreshed every
//! `step` points over the latest `window` points.
//!
//! **Live and NAB scores.** NAB's score puts the mean at 0.5, so a flag threshold of 0.5 would
//! flag every point, and NAB's corpus-wide optimal threshold sits at 0.99999999999977 (z = 7.24,
//! 1 − Q(z) saturating to 1 near z = 8.3). Scored for NAB ([`WindowedGaussian::for_nab`], what
//! `eval` runs) the detector outputs NAB's `1 − Q(z)`; live it outputs `1 − 2^(−z / 7.2)`, the
//! same order of points, with the optimal threshold at 0.5 like the other detectors' (0 at the
//! mean, → 1 far away).

use std::collections::VecDeque;

use super::{Detector, Point, Reason};
use crate::num::compact;

/// Smallest standard deviation used, so a flat line does not divide by zero.
const MIN_STD: f64 = 1e-6;
/// The z value a live score of 0.5 stands for: NAB's corpus-optimal standard threshold (7.24).
const LIVE_HALF_Z: f64 = 7.2;

#[derive(Debug, Clone)]
pub struct WindowedGaussian {
    window: usize,
    step: usize,
    data: VecDeque<f64>,
    pending: Vec<f64>,
    mean: f64,
    std: f64,
    /// The latest point's value and the window's mean and deviation it was scored against.
    last: Option<(f64, f64, f64)>,
    /// Scoring for NAB: `1 − Q(z)` (else the live mapping; see the module documentation).
    nab: bool,
}

impl WindowedGaussian {
    pub fn new(window: usize, step: usize) -> Self {
        let window = window.max(1);
        WindowedGaussian {
            window,
            step: step.clamp(1, window),
            data: VecDeque::with_capacity(window),
            pending: Vec::new(),
            mean: 0.0,
            std: 1.0,
            last: None,
            nab: false,
        }
    }

    /// The detector `[detector.windowed_gaussian]` configures.
    pub fn from_config(cfg: &crate::config::WindowedGaussianConfig) -> Self {
        Self::new(cfg.window, cfg.step)
    }

    /// Scores as NAB's windowedGaussian does (`1 − Q(z)`, 0.5 at the mean).
    pub fn for_nab(mut self) -> Self {
        self.nab = true;
        self
    }

    fn refresh(&mut self) {
        let n = self.data.len() as f64;
        let mean = self.data.iter().sum::<f64>() / n;
        let var = self
            .data
            .iter()
            .map(|x| (x - mean) * (x - mean))
            .sum::<f64>()
            / n;
        self.mean = mean;
        self.std = var.sqrt();
        if self.std == 0.0 {
            self.std = MIN_STD;
        }
    }
}

/// Upper tail of the standard normal: Q(z) = P(Z > z).
pub(crate) fn normal_q(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

impl Detector for WindowedGaussian {
    fn update(&mut self, p: Point) -> f64 {
        let score = if self.data.is_empty() {
            self.last = None;
            0.0
        } else {
            self.last = Some((p.value, self.mean, self.std));
            let z = (p.value - self.mean).abs() / self.std;
            if self.nab {
                1.0 - normal_q(z)
            } else {
                crate::num::half_at(z, LIVE_HALF_Z)
            }
        };
        if self.data.len() < self.window {
            self.data.push_back(p.value);
            self.refresh();
        } else {
            self.pending.push(p.value);
            if self.pending.len() == self.step {
                for v in self.pending.drain(..) {
                    self.data.pop_front();
                    self.data.push_back(v);
                }
                self.refresh();
            }
        }
        score
    }

    fn explain(&mut self) -> Option<Reason> {
        let (x, mean, std) = self.last?;
        let z = (x - mean) / std;
        Some(Reason {
            signal: "z".into(),
            excess: z.abs(),
            text: format!(
                "value {} is {:.1} sd {} the window mean {} (sd {})",
                compact(x),
                z.abs(),
                if z < 0.0 { "below" } else { "above" },
                compact(mean),
                compact(std)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(d: &mut WindowedGaussian, v: f64) -> f64 {
        d.update(Point {
            timestamp: 0,
            value: v,
        })
    }

    #[test]
    fn explains_with_the_z_value() {
        let mut d = WindowedGaussian::new(4, 1);
        for v in [1.0, 3.0, 1.0, 3.0] {
            feed(&mut d, v);
        }
        // Mean 2, sd 1: a 7 is 5 sd above.
        feed(&mut d, 7.0);
        let r = d.explain().expect("a reason");
        assert_eq!(r.signal, "z");
        assert!((r.excess - 5.0).abs() < 1e-9, "{r:?}");
        assert_eq!(
            r.text,
            "value 7.000 is 5.0 sd above the window mean 2.000 (sd 1.000)"
        );
    }

    #[test]
    fn outlier_scores_near_one_and_mean_scores_half_for_nab() {
        let mut d = WindowedGaussian::new(100, 10).for_nab();
        for i in 0..100 {
            feed(&mut d, if i % 2 == 0 { 1.0 } else { -1.0 });
        }
        assert!((feed(&mut d, 0.0) - 0.5).abs() < 1e-9);
        assert!(feed(&mut d, 10.0) > 0.999_999);
    }

    #[test]
    fn live_scores_put_the_flag_threshold_at_nab_s_optimal_z() {
        // Mean 0, sd 1: live, the mean scores 0 and z = 7.2 (NAB's optimal threshold) 0.5, so
        // the default flag threshold of 0.5 flags what NAB's optimum does.
        let mut d = WindowedGaussian::new(100, 10);
        for i in 0..100 {
            feed(&mut d, if i % 2 == 0 { 1.0 } else { -1.0 });
        }
        assert_eq!(feed(&mut d, 0.0), 0.0);
        assert!((feed(&mut d, 7.2) - 0.5).abs() < 1e-9);
        assert!(feed(&mut d, 3.0) < 0.3);
        // The same order as NAB's score, and unsaturated where NAB's is 1.0.
        let (mut live, mut nab) = (
            WindowedGaussian::new(100, 10),
            WindowedGaussian::new(100, 10).for_nab(),
        );
        let mut pairs = Vec::new();
        for i in 0..100 {
            let v = if i % 2 == 0 { 1.0 } else { -1.0 };
            feed(&mut live, v);
            feed(&mut nab, v);
        }
        for v in [0.5, 2.0, 4.0, 7.0, 9.0, 20.0] {
            pairs.push((feed(&mut live, v), feed(&mut nab, v)));
        }
        assert!(
            pairs
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{pairs:?}"
        );
        assert_eq!(pairs[5].1, 1.0);
        assert!(pairs[4].0 < pairs[5].0 && pairs[5].0 < 1.0, "{pairs:?}");
    }

    #[test]
    fn first_point_scores_zero_and_flat_line_is_finite() {
        let mut d = WindowedGaussian::new(10, 5);
        assert_eq!(feed(&mut d, 3.0), 0.0);
        for _ in 0..20 {
            let s = feed(&mut d, 3.0);
            assert!((0.0..=1.0).contains(&s));
        }
        assert!(feed(&mut d, 4.0) > 0.999);
    }

    #[test]
    fn normal_q_known_values() {
        assert!((normal_q(0.0) - 0.5).abs() < 1e-15);
        assert!((normal_q(1.96) - 0.024_997_895).abs() < 1e-8);
    }
}
