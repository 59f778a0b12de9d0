//! Multivariate mode of the LSTM autoencoder: one model over a group of `M` series (every series
//! of one `instance`, as the replaced system modelled CPU, memory and latency of one host
//! together), scoring how badly the group's joint window is reconstructed.
//!
//! The network is the univariate one with `M` inputs and outputs (encoder LSTM M→`hidden`,
//! decoder `hidden`→`hidden`, Linear `hidden`→M), trained the same way (same early stopping,
//! seed and determinism) on the first `train` rows, each input standardised with its own mean
//! and deviation. A row's error per member is the squared reconstruction error of its newest
//! standardised value; the **joint error** is their mean, mapped to a raw score as the
//! univariate one is (`error_score`, a log scale) and calibrated per group exactly as the
//! univariate score is. The member with the largest error is
//! named in [`JointLstmAe::explain`] and by [`JointLstmAe::worst`].
//!
//! What this catches that one series cannot: a relation between members that breaks while each
//! member alone still looks as usual (latency that stops following load), which
//! `tests/it/lstm_ae.rs` plants and checks against the univariate detector on every member.
//!
//! Causality: a row's score uses that row and earlier ones only. A non-finite value is replaced
//! by the member's latest finite one (a row before any is not scored). The model is not saved
//! with the model store and keyboard retraining refits univariate models only: the group is
//! refitted on its own first `train` rows after a restart.

use std::collections::VecDeque;

use super::{Model, Params, Scratch, USUAL_RATE, train, train_unattended};
use crate::config::LstmAeConfig;
use crate::detect::calibrate::Calibrator;
use crate::detect::{FitControl, FitError, Reason};
use crate::num::compact;

/// The joint error of the latest row, its usual level before it, and the member with the
/// largest error (index, its error).
#[derive(Debug, Clone, Copy)]
struct Latest {
    joint: f64,
    usual: f64,
    worst: usize,
    worst_error: f64,
}

/// One LSTM autoencoder over a group of series; see the module docs.
#[derive(Debug, Clone)]
pub struct JointLstmAe {
    p: Params,
    members: Vec<String>,
    /// Rows buffered for the automatic first fit (row-major).
    pending: Vec<f64>,
    auto_done: bool,
    /// The latest `sequence` rows, row-major, oldest first.
    recent: VecDeque<f64>,
    /// Each member's latest finite value (fills a non-finite one).
    carry: Vec<f64>,
    model: Option<Model>,
    scratch: Scratch,
    latest: Option<Latest>,
    usual: Option<f64>,
    calibrator: Option<Calibrator>,
}

impl JointLstmAe {
    /// A detector over `members` (their names, in the order rows give their values).
    pub fn new(cfg: &LstmAeConfig, members: Vec<String>) -> Self {
        let p = Params::new(cfg);
        let m = members.len().max(1);
        JointLstmAe {
            pending: Vec::new(),
            auto_done: false,
            recent: VecDeque::with_capacity(p.sequence * m),
            carry: vec![f64::NAN; m],
            model: None,
            scratch: Scratch::default(),
            latest: None,
            usual: None,
            calibrator: cfg.calibrate.then(|| Calibrator::new(cfg.calibration)),
            members,
            p,
        }
    }

    pub fn members(&self) -> &[String] {
        &self.members
    }

    fn m(&self) -> usize {
        self.members.len().max(1)
    }

    /// Fits the model on `rows` (row-major, `M` values each; the latest `train` rows with every
    /// value finite), reporting progress and honouring cancellation as the univariate fit does.
    /// The detector then scores with it and never auto-fits.
    pub fn fit(&mut self, rows: &[f64], ctl: &mut FitControl<'_>) -> Result<(), FitError> {
        let m = self.m();
        let finite: Vec<f64> = rows
            .chunks_exact(m)
            .filter(|r| r.iter().all(|v| v.is_finite()))
            .flatten()
            .copied()
            .collect();
        let start = (finite.len() / m).saturating_sub(self.p.train) * m;
        let model = train(&self.p, m, &finite[start..], ctl)?;
        self.model = Some(model);
        self.auto_done = true;
        self.pending = Vec::new();
        Ok(())
    }

    pub fn is_fitted(&self) -> bool {
        self.model.is_some()
    }

    /// One row through the model: its raw score, or `None` while there is no opinion (training,
    /// a short window, a member without any finite value yet).
    pub fn step(&mut self, row: &[f64]) -> Option<f64> {
        let m = self.m();
        if row.len() != m {
            return None;
        }
        for (c, &v) in self.carry.iter_mut().zip(row) {
            if v.is_finite() {
                *c = v;
            }
        }
        if self.carry.iter().any(|v| !v.is_finite()) {
            return None;
        }
        if self.recent.len() == self.p.sequence * m {
            self.recent.drain(..m);
        }
        self.recent.extend(self.carry.iter().copied());
        if !self.auto_done {
            self.pending.extend(self.carry.iter().copied());
            if self.pending.len() / m >= self.p.train {
                self.auto_fit();
            }
            return None;
        }
        let latest = self.latest_errors()?;
        if latest.joint.is_finite() {
            let capped = latest.joint.min(10.0 * latest.usual.max(1e-12));
            self.usual = Some(latest.usual + (capped - latest.usual) * USUAL_RATE);
        }
        self.latest = Some(latest);
        let e = latest.joint;
        Some(super::error_score(e, self.p.threshold))
    }

    /// The detector's output for `row`: the calibrated joint score (0 while there is no
    /// opinion), or the raw one with `calibrate = false` (0.5 while training).
    pub fn update(&mut self, row: &[f64]) -> f64 {
        let raw = self.step(row);
        match (&mut self.calibrator, raw) {
            (Some(c), Some(r)) => c.score(r),
            (Some(_), None) => 0.0,
            (None, r) => r.unwrap_or(0.5),
        }
    }

    pub fn warming_up(&self) -> bool {
        self.model.is_none() || self.calibrator.as_ref().is_some_and(Calibrator::warming_up)
    }

    /// The member with the largest error in the latest scored row, and that error.
    pub fn worst(&self) -> Option<(&str, f64)> {
        let l = self.latest?;
        Some((self.members.get(l.worst)?.as_str(), l.worst_error))
    }

    /// Why the latest row scored as it did: the joint error against its usual level, and the
    /// member with the largest error.
    pub fn explain(&self) -> Option<Reason> {
        let l = self.latest?;
        let ratio = l.joint / l.usual.max(1e-12);
        let share = l.worst_error / (l.joint * self.m() as f64).max(1e-300);
        let name = self.members.get(l.worst).map_or("?", String::as_str);
        Some(Reason {
            signal: "joint_reconstruction".into(),
            excess: ratio,
            text: format!(
                "joint reconstruction error {} of {} series is {ratio:.1}x its usual level {}; \
                 largest error: {name} ({:.0} % of it)",
                compact(l.joint),
                self.m(),
                compact(l.usual),
                100.0 * share
            ),
        })
    }

    fn auto_fit(&mut self) {
        self.auto_done = true;
        let rows = std::mem::take(&mut self.pending);
        match train_unattended(&self.p, self.m(), &rows) {
            Ok(model) => self.model = Some(model),
            Err(e) => {
                tracing::warn!(error = %e, members = self.m(), "joint lstm-ae automatic fit failed")
            }
        }
    }

    fn latest_errors(&mut self) -> Option<Latest> {
        let m = self.m();
        let model = self.model.as_ref()?;
        if self.recent.len() < self.p.sequence * m {
            return None;
        }
        let mut z = std::mem::take(&mut self.scratch.z);
        z.clear();
        z.extend(
            self.recent
                .iter()
                .enumerate()
                .map(|(i, &v)| model.standardise(i % m, v)),
        );
        model.weights.reconstruct(&z, &mut self.scratch);
        let last = z.len() - m;
        let (mut joint, mut worst, mut worst_error) = (0.0, 0, f64::NEG_INFINITY);
        for c in 0..m {
            let e = (f64::from(self.scratch.recon[last + c]) - f64::from(z[last + c])).powi(2);
            joint += e;
            if e > worst_error {
                (worst, worst_error) = (c, e);
            }
        }
        self.scratch.z = z;
        let joint = joint / m as f64;
        Some(Latest {
            joint,
            usual: self.usual.unwrap_or(joint),
            worst,
            worst_error,
        })
    }
}
