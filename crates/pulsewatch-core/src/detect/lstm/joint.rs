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
//! by the member's latest finite one (a row before any is not scored).
//!
//! # Persistence
//! [`JointLstmAe::save_state`] writes a little-endian binary: magic, format version (1),
//! `sequence`, `hidden`, the members' names (the input order), each member's mean and std, the
//! weights, the calibration layer's state and an FNV-1a checksum. The window of recent rows is
//! not kept: a restored model scores once `sequence` new rows have come in.
//! [`JointLstmAe::from_state`] rejects, with `FitError::BadState`, a bad magic, version,
//! checksum or length, non-finite numbers, and a `sequence` or `hidden` other than the config's.
//! The engine keeps these states in the model store under the group's key
//! ([`crate::detect::group::Groups`]), written by a retrain and read when the group forms.

use std::collections::VecDeque;

use super::{
    Model, Params, Reader, Scratch, USUAL_RATE, put_calibration, put_header, put_weights, seal,
    train, train_unattended,
};
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
        // The window continues from the latest rows fitted on (the engine replaces it with
        // the live one when it swaps the model in: `continue_from`).
        let tail = finite.len().saturating_sub(self.p.sequence * m);
        self.recent.clear();
        self.recent.extend(&finite[tail..]);
        if let Some(last) = finite.chunks_exact(m).last() {
            self.carry.copy_from_slice(last);
        }
        Ok(())
    }

    /// Takes over `old`'s window of recent rows and carried values (the same members in the
    /// same order), so a model fitted in the background scores the live stream at once.
    pub fn continue_from(&mut self, old: &JointLstmAe) {
        if old.members == self.members && old.recent.len() == self.p.sequence * self.m() {
            self.recent.clone_from(&old.recent);
            self.carry.clone_from(&old.carry);
        }
    }

    /// The fitted model, its members and its calibration as bytes (see the module docs);
    /// `None` before a fit.
    pub fn save_state(&self) -> Option<Vec<u8>> {
        let model = self.model.as_ref()?;
        let w = model.weights.flatten();
        let mut b = Vec::with_capacity(64 + 4 * w.len());
        put_header(
            &mut b,
            JOINT_MAGIC,
            JOINT_VERSION,
            &self.p,
            model.weights.hidden,
        );
        b.extend_from_slice(&(self.members.len() as u64).to_le_bytes());
        for name in &self.members {
            b.extend_from_slice(&(name.len() as u64).to_le_bytes());
            b.extend_from_slice(name.as_bytes());
        }
        for (mean, std) in model.mean.iter().zip(&model.std) {
            b.extend_from_slice(&mean.to_le_bytes());
            b.extend_from_slice(&std.to_le_bytes());
        }
        put_weights(&mut b, &w);
        put_calibration(&mut b, self.calibrator.as_ref());
        Some(seal(b))
    }

    /// A detector restored from [`JointLstmAe::save_state`]'s bytes under `cfg` (its members
    /// are the state's, in the state's order).
    pub fn from_state(cfg: &LstmAeConfig, bytes: &[u8]) -> Result<Self, FitError> {
        let decoded = decode_joint(bytes, &Params::new(cfg)).map_err(FitError::BadState)?;
        let (members, model, cal) = decoded;
        let mut det = JointLstmAe::new(cfg, members);
        if let Some(c) = &mut det.calibrator
            && !cal.is_empty()
        {
            c.restore(&cal).map_err(FitError::BadState)?;
        }
        det.model = Some(model);
        det.auto_done = true;
        Ok(det)
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

/// Persisted state of the multivariate model: magic bytes and format version.
const JOINT_MAGIC: &[u8; 8] = b"PWLSTMJT";
const JOINT_VERSION: u32 = 1;
/// Longest member name a state may hold, in bytes.
const MAX_NAME: usize = 4096;

/// The members, the model and the calibration layer's words of a joint state.
type DecodedJoint = (Vec<String>, Model, Vec<u64>);

fn decode_joint(bytes: &[u8], p: &Params) -> Result<DecodedJoint, String> {
    let mut r = Reader::open(bytes, JOINT_MAGIC, "a multivariate lstm-ae state")?;
    let version = r.header(p)?;
    if version != JOINT_VERSION {
        return Err(format!(
            "format version {version}, expected {JOINT_VERSION}"
        ));
    }
    let m = r.count(8)?;
    if m == 0 {
        return Err("a group of no members".into());
    }
    let mut members = Vec::with_capacity(m);
    for _ in 0..m {
        let len = r.count(1)?;
        if len > MAX_NAME {
            return Err(format!("member name of {len} bytes"));
        }
        let mut name = Vec::with_capacity(len);
        for _ in 0..len {
            name.push(r.take::<1>()?[0]);
        }
        members.push(String::from_utf8(name).map_err(|_| "member name is not UTF-8".to_string())?);
    }
    let (mut mean, mut std) = (Vec::with_capacity(m), Vec::with_capacity(m));
    for _ in 0..m {
        let (a, s) = (r.f64()?, r.f64()?);
        if !a.is_finite() || !s.is_finite() || s <= 0.0 {
            return Err(format!("bad standardisation (mean {a}, std {s})"));
        }
        mean.push(a);
        std.push(s);
    }
    let weights = r.weights(p, m)?;
    let cal = r.words()?;
    r.finish()?;
    Ok((members, Model { mean, std, weights }, cal))
}
