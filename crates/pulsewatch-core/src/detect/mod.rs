//! Streaming anomaly detectors.
//!
//! Every detector implements [`Detector`]: feed one point (timestamp, value), get an anomaly score
//! in [0, 1] for that point. Detectors are causal by construction: `update` sees only the points
//! fed so far. One parameter set serves every series; detectors never see a file name or label.
//! [`Detector::explain`] says why the latest point scored as it did ([`Reason`]).

pub mod calibrate;
mod gaussian;
pub mod group;
pub mod iforest;
#[cfg(feature = "lstm")]
pub mod lstm;
pub mod pulse;
pub mod spikes;

pub use gaussian::WindowedGaussian;

use crate::config::DetectorConfig;
pub use crate::domain::{DetectorKind, Point, SeriesInfo};
pub use crate::events::Reason;
use crate::store::fingerprint;

/// A streaming anomaly detector.
pub trait Detector: Send {
    /// Scores `point` using it and the points fed before it; returns a score in [0, 1].
    fn update(&mut self, point: Point) -> f64;

    /// Detectors with a fit step (Isolation Forest, LSTM autoencoder) expose it here.
    fn trainable(&mut self) -> Option<&mut dyn Trainable> {
        None
    }

    /// Whether the detector is still learning what normal looks like (its scores are held
    /// low meanwhile).
    fn warming_up(&self) -> bool {
        false
    }

    /// Why the latest point scored as it did: which signal went how far past its usual range.
    /// Called for flagged points only, so it may do more work than `update`; `None` when the
    /// detector has nothing to say (the null detector, or still warming up).
    fn explain(&mut self) -> Option<Reason> {
        None
    }

    /// For a member of a multivariate group ([`group`]): the group's latest scored row, from
    /// which the engine keeps one anomaly event per group. `None` for a detector of its own
    /// (and for a member while its group forms).
    fn joint_row(&self) -> Option<JointRow> {
        None
    }
}

/// The latest scored row of a multivariate group, as one of its members sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct JointRow {
    /// The row's timestamp (every member of a row shares it).
    pub timestamp: i64,
    /// The member with the largest reconstruction error in it, once the model scores rows.
    pub worst: Option<String>,
}

/// Progress of a fit, reported to the engine (and from there to the TUI).
#[derive(Debug, Clone, PartialEq)]
pub struct FitProgress {
    /// Completed steps (epochs, trees, ...) and their total.
    pub done: usize,
    pub total: usize,
    /// Training loss after the step, where the model has one.
    pub loss: Option<f64>,
}

/// What a fit is told: where to report progress and whether to stop.
pub struct FitControl<'a> {
    pub cancel: &'a std::sync::atomic::AtomicBool,
    pub progress: &'a mut dyn FnMut(FitProgress),
}

impl FitControl<'_> {
    pub fn cancelled(&self) -> bool {
        self.cancel.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error("training cancelled")]
    Cancelled,
    #[error("not enough history to train: {have} points, need {need}")]
    TooShort { have: usize, need: usize },
    #[error("training failed: {0}")]
    Failed(String),
    #[error("model state is unreadable: {0}")]
    BadState(String),
}

/// A detector whose model is fitted on history and can be saved and restored.
pub trait Trainable {
    /// Fits the model on `history`: points at or before the next point the detector will score,
    /// never later ones. Replaces any previous fit on success; keeps it on error or cancel.
    fn fit(&mut self, history: &[Point], ctl: &mut FitControl<'_>) -> Result<(), FitError>;
    /// Whether a fitted model is in place.
    fn is_fitted(&self) -> bool;
    /// The fitted model's state (for persistence); `None` when not fitted.
    fn save_state(&self) -> Option<Vec<u8>>;
    /// Restores a state produced by `save_state` of the same detector and parameters.
    fn load_state(&mut self, bytes: &[u8]) -> Result<(), FitError>;
    /// Whether the model the detector fits itself (on its first window) is worth keeping in the
    /// model store: true for a model fitted once; false for one refitted on a sliding window
    /// (a restart refits it from the kept history within that window, and its state can be
    /// large).
    fn keep_first_fit(&self) -> bool {
        true
    }
}

impl DetectorKind {
    /// Fingerprint of the parameters a fitted model depends on (a saved model with another
    /// fingerprint is stale).
    pub fn params(self, cfg: &DetectorConfig) -> String {
        match self {
            DetectorKind::IsolationForest => fingerprint(&cfg.isolation_forest),
            #[cfg(feature = "lstm")]
            DetectorKind::LstmAe => fingerprint(&cfg.lstm_ae),
            DetectorKind::WindowedGaussian => fingerprint(&cfg.windowed_gaussian),
            DetectorKind::Pulse | DetectorKind::Null => String::new(),
        }
    }

    /// A fresh detector scoring as NAB counts (what `eval` runs): `pulse`, the calibrated
    /// Isolation Forest and the LSTM autoencoder rest after an alarm
    /// ([`pulse::Pulse::for_nab`], [`iforest::IsolationForest::for_nab`], `LstmAe::for_nab`),
    /// and the windowed Gaussian outputs NAB's own score ([`WindowedGaussian::for_nab`]);
    /// every other detector is the same as [`DetectorKind::build`].
    pub fn build_for_nab(self, cfg: &DetectorConfig) -> Box<dyn Detector> {
        match self {
            DetectorKind::Pulse => Box::new(pulse::Pulse::with_params(cfg.pulse).for_nab()),
            DetectorKind::IsolationForest => {
                Box::new(iforest::IsolationForest::new(&cfg.isolation_forest).for_nab())
            }
            #[cfg(feature = "lstm")]
            DetectorKind::LstmAe => Box::new(lstm::LstmAe::new(&cfg.lstm_ae).for_nab()),
            DetectorKind::WindowedGaussian => {
                Box::new(WindowedGaussian::from_config(&cfg.windowed_gaussian).for_nab())
            }
            other => other.build(cfg),
        }
    }

    /// The multivariate group `info` is scored in (its instance), when this detector runs in
    /// multivariate mode (`lstm-ae` with `multivariate = true`); `None` otherwise.
    pub fn group_key<'a>(self, cfg: &DetectorConfig, info: &'a SeriesInfo) -> Option<&'a str> {
        #[cfg(feature = "lstm")]
        if self == DetectorKind::LstmAe && cfg.lstm_ae.multivariate {
            return info.instance.as_deref();
        }
        let _ = (cfg, info);
        None
    }

    /// A fresh detector for one series.
    pub fn build(self, cfg: &DetectorConfig) -> Box<dyn Detector> {
        match self {
            DetectorKind::Pulse => Box::new(pulse::Pulse::with_params(cfg.pulse)),
            DetectorKind::Null => Box::new(Null),
            DetectorKind::WindowedGaussian => {
                Box::new(WindowedGaussian::from_config(&cfg.windowed_gaussian))
            }
            DetectorKind::IsolationForest => {
                Box::new(iforest::IsolationForest::new(&cfg.isolation_forest))
            }
            #[cfg(feature = "lstm")]
            DetectorKind::LstmAe => Box::new(lstm::LstmAe::new(&cfg.lstm_ae)),
        }
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
