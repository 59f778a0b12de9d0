//! Streaming anomaly detectors.
//!
//! Every detector implements [`Detector`]: feed one point (timestamp, value), get an anomaly score
//! in [0, 1] for that point. Detectors are causal by construction: `update` sees only the points
//! fed so far. One parameter set serves every series; detectors never see a file name or label.

mod gaussian;

pub use gaussian::WindowedGaussian;

use std::fmt;
use std::str::FromStr;

use crate::config::DetectorConfig;

/// One observation of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Unix seconds.
    pub timestamp: i64,
    pub value: f64,
}

/// A streaming anomaly detector.
pub trait Detector: Send {
    /// Scores `point` using it and the points fed before it; returns a score in [0, 1].
    fn update(&mut self, point: Point) -> f64;
}

/// The detectors this build knows, by their CLI / config name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DetectorKind {
    /// Constant 0.5: NAB's baseline that never detects at its threshold.
    Null,
    /// Rolling mean and standard deviation; two-sided Gaussian tail probability.
    WindowedGaussian,
}

impl DetectorKind {
    pub const ALL: [DetectorKind; 2] = [DetectorKind::Null, DetectorKind::WindowedGaussian];

    /// Name used on the command line, in config and in NAB results files (no underscores:
    /// NAB derives the detector name from the text before the first `_`).
    pub fn name(self) -> &'static str {
        match self {
            DetectorKind::Null => "null",
            DetectorKind::WindowedGaussian => "windowed-gaussian",
        }
    }

    /// A fresh detector for one series.
    pub fn build(self, cfg: &DetectorConfig) -> Box<dyn Detector> {
        match self {
            DetectorKind::Null => Box::new(Null),
            DetectorKind::WindowedGaussian => Box::new(WindowedGaussian::new(
                cfg.windowed_gaussian.window,
                cfg.windowed_gaussian.step,
            )),
        }
    }
}

impl fmt::Display for DetectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DetectorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
                format!("unknown detector {s:?}; known: {}", names.join(", "))
            })
    }
}

/// NAB's null detector: 0.5 for every point.
#[derive(Debug, Default, Clone, Copy)]
pub struct Null;

impl Detector for Null {
    fn update(&mut self, _point: Point) -> f64 {
        0.5
    }
}

/// Scores a whole series point by point with a fresh detector.
pub fn score_series(det: &mut dyn Detector, timestamps: &[i64], values: &[f64]) -> Vec<f64> {
    timestamps
        .iter()
        .zip(values)
        .map(|(&timestamp, &value)| det.update(Point { timestamp, value }))
        .collect()
}
