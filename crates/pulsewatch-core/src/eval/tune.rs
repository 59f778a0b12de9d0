//! Choosing a detector's constants out of sample.
//!
//! * [`tune`] is the search that sets a detector's constants on a set of corpus files: a seeded
//!   (1+1) evolution strategy in log space (one constant at a time, or all at once, by turns),
//!   with a fixed budget of corpus evaluations. A candidate is scored by the NAB standard
//!   profile on those files only, with its threshold optimised on those files only. Moves that
//!   score equal are accepted (to cross the plateaus a step-function score has), and every
//!   candidate is rounded to two significant digits, so the constants it returns are round.
//! * [`cross_validate`] is the held-out protocol of `pulsewatch eval --folds k`: the files are
//!   split into `k` folds, stratified by category with a fixed seed; for each fold the tuning
//!   (constants, where the detector has a [`Tunable`] space, and each profile's threshold) runs
//!   on the other `k − 1` folds only, and the held-out fold is scored with what it chose. The
//!   held-out corpus score sums the held-out files' raw scores and normalises them against the
//!   whole corpus' null and perfect detectors, so it reads on the same scale as the in-sample one.
//!
//! Written by hand: the search is forty lines over the scorer, and no crate scores NAB.

use std::collections::BTreeMap;

use serde::Serialize;

use super::scorer::{FileLabels, FileScore, normalize, optimize_threshold};
use super::{EvalError, run_detector_with};
use crate::config::IsolationForestConfig;
use crate::detect::Detector;
use crate::detect::calibrate::CalibrationParams;
use crate::detect::iforest;
use crate::detect::pulse::{Pulse, PulseParams};
use crate::nab::{Corpus, CostMatrix, Profile};
use crate::num::SplitMix64;

/// NAB's standard profile (what the search maximises when the corpus has no profiles file).
const NAB_STANDARD: CostMatrix = CostMatrix {
    tp: 1.0,
    fp: 0.11,
    fn_: 1.0,
    tn: 1.0,
};

/// One tunable constant: its name and the range the search keeps it in (all are positive; the
/// search moves in log space).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dim {
    pub name: String,
    pub lo: f64,
    pub hi: f64,
    /// Rounded to a whole number.
    pub integer: bool,
}

/// Constants [`tune`] can search.
pub trait Tunable: Clone + Send + Sync + Serialize {
    /// The constants, in the order of [`Tunable::to_vec`].
    fn dims() -> Vec<Dim>;
    fn to_vec(&self) -> Vec<f64>;
    fn from_vec(v: &[f64]) -> Self;
}

/// Scores one corpus file (by index) with some constants: a fresh detector fed the file's
/// points, or a calibration layer replaying a detector's cached raw scores.
pub type ScoreFile<'a, P> = &'a (dyn Fn(&P, usize) -> Vec<f64> + Sync);

/// Scores `files` with `score` in parallel, checking every score is in [0, 1].
fn score_files<P: Sync>(
    corpus: &Corpus,
    files: &[usize],
    det: &str,
    p: &P,
    score: ScoreFile<'_, P>,
) -> Result<Vec<Vec<f64>>, EvalError> {
    let out = crate::par::map(files, |&i| score(p, i)).map_err(|e| EvalError::Worker {
        det: det.into(),
        key: corpus.series[files[e.index]].key.clone(),
        message: e.message,
    })?;
    super::check_scores(corpus, files, det, &out)?;
    Ok(out)
}

/// [`ScoreFile`] for `pulse`: a fresh detector scoring as NAB counts.
pub fn pulse_scorer(corpus: &Corpus) -> impl Fn(&PulseParams, usize) -> Vec<f64> + Sync + '_ {
    move |p, i| {
        let s = &corpus.series[i];
        let mut d = Pulse::with_params(*p).for_nab();
        crate::detect::score_series(&mut d, &s.timestamps, &s.values)
    }
}

impl Tunable for PulseParams {
    fn dims() -> Vec<Dim> {
        let real = |name: String, lo: f64, hi: f64| Dim {
            name,
            lo,
            hi,
            integer: false,
        };
        let int = |name: &str, lo: f64, hi: f64| Dim {
            name: name.into(),
            lo,
            hi,
            integer: true,
        };
        let mut d = Vec::new();
        for i in 0..crate::detect::pulse::NF {
            d.push(real(format!("weights[{i}]"), 0.01, 20.0));
        }
        for i in 0..crate::detect::pulse::NF {
            d.push(real(format!("memory[{i}]"), 0.05, 20.0));
        }
        d.push(real("history".into(), 500.0, 200_000.0));
        d.push(int("short", 2.0, 100.0));
        d.push(int("long", 5.0, 1000.0));
        d.push(int("season_short", 1.0, 50.0));
        d.push(real("profile_rate".into(), 0.005, 0.9));
        d.push(real("season_gate".into(), 0.1, 100.0));
        d.push(real("cusum_rate".into(), 0.0005, 0.5));
        d.push(real("cusum_slack".into(), 0.1, 20.0));
        d.push(real("alarm".into(), 0.01, 2.0));
        d.push(int("rest", 1.0, 2000.0));
        d.push(real("reach".into(), 0.05, 1e9));
        d.push(real("rest_break".into(), 1.0, 1e9));
        d.push(real("fade".into(), 0.05, 1e9));
        d
    }

    fn to_vec(&self) -> Vec<f64> {
        let mut v = Vec::with_capacity(2 * crate::detect::pulse::NF + 13);
        v.extend(self.weights);
        v.extend(self.memory);
        v.extend([
            self.history,
            self.short as f64,
            self.long as f64,
            self.season_short as f64,
            self.profile_rate,
            self.season_gate,
            self.cusum_rate,
            self.cusum_slack,
            self.alarm,
            self.rest as f64,
            self.reach,
            self.rest_break,
            self.fade,
        ]);
        v
    }

    fn from_vec(v: &[f64]) -> Self {
        let mut p = PulseParams::default();
        let get = |i: usize| v.get(i).copied().unwrap_or(f64::NAN);
        let nf = crate::detect::pulse::NF;
        for i in 0..nf {
            p.weights[i] = get(i);
            p.memory[i] = get(nf + i);
        }
        let k = 2 * nf;
        let whole = |x: f64| x.round().max(1.0) as usize;
        p.history = get(k);
        p.short = whole(get(k + 1));
        p.long = whole(get(k + 2));
        p.season_short = whole(get(k + 3));
        p.profile_rate = get(k + 4);
        p.season_gate = get(k + 5);
        p.cusum_rate = get(k + 6);
        p.cusum_slack = get(k + 7);
        p.alarm = get(k + 8);
        p.rest = whole(get(k + 9));
        p.reach = get(k + 10);
        p.rest_break = get(k + 11);
        p.fade = get(k + 12);
        p
    }
}

impl Tunable for CalibrationParams {
    fn dims() -> Vec<Dim> {
        let dim = |name: &str, lo: f64, hi: f64, integer: bool| Dim {
            name: name.into(),
            lo,
            hi,
            integer,
        };
        vec![
            dim("smooth", 1.0, 100.0, true),
            dim("memory", 100.0, 1e6, false),
            dim("warmup", 1.0, 5000.0, true),
            dim("alarm", 0.2, 1.0, false),
            dim("rest", 1.0, 2000.0, true),
        ]
    }

    fn to_vec(&self) -> Vec<f64> {
        vec![
            self.smooth as f64,
            self.memory,
            self.warmup as f64,
            self.alarm,
            self.rest as f64,
        ]
    }

    fn from_vec(v: &[f64]) -> Self {
        let get = |i: usize| v.get(i).copied().unwrap_or(f64::NAN);
        let whole = |x: f64| x.round().max(0.0) as usize;
        CalibrationParams {
            smooth: whole(get(0)).max(1),
            memory: get(1),
            warmup: whole(get(2)),
            alarm: get(3),
            rest: whole(get(4)),
        }
    }
}

/// The streaming Isolation Forest's raw isolation scores of every corpus file (the forests
/// fitted once, in parallel), for [`iforest_scorer`].
pub fn iforest_raw(
    corpus: &Corpus,
    cfg: &IsolationForestConfig,
) -> Result<Vec<Vec<f64>>, EvalError> {
    let all: Vec<usize> = (0..corpus.series.len()).collect();
    crate::par::map(&all, |&i| {
        iforest::raw_scores(cfg, &corpus.series[i].values)
    })
    .map_err(|e| EvalError::Worker {
        det: "isolation-forest".into(),
        key: corpus.series[e.index].key.clone(),
        message: e.message,
    })
}

/// The LSTM autoencoder's raw scores of every corpus file (each model trained once, in
/// parallel), for [`calibration_scorer`].
#[cfg(feature = "lstm")]
pub fn lstm_raw(
    corpus: &Corpus,
    cfg: &crate::config::LstmAeConfig,
) -> Result<Vec<Vec<f64>>, EvalError> {
    let all: Vec<usize> = (0..corpus.series.len()).collect();
    crate::par::map(&all, |&i| {
        let s = &corpus.series[i];
        crate::detect::lstm::raw_scores(cfg, &s.timestamps, &s.values)
    })
    .map_err(|e| EvalError::Worker {
        det: "lstm-ae".into(),
        key: corpus.series[e.index].key.clone(),
        message: e.message,
    })
}

/// [`ScoreFile`] for a calibrated detector (the streaming Isolation Forest, the LSTM
/// autoencoder): replays the calibration layer over its cached raw scores ([`iforest_raw`],
/// [`lstm_raw`]) as NAB counts, so a candidate costs no model fits. Equal to running the
/// detector (tests check it).
pub fn calibration_scorer(
    raw: &[Vec<f64>],
) -> impl Fn(&CalibrationParams, usize) -> Vec<f64> + Sync + '_ {
    move |p, i| crate::detect::calibrate::replay(&raw[i], *p, true)
}

/// Search settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TuneSettings {
    /// Candidate evaluations after the starting point.
    pub budget: usize,
    pub seed: u64,
    /// Accept moves that score equal (else only improvements).
    pub plateau: bool,
    /// The constants the search moves (`weights` names every `weights[i]`); empty: all. The
    /// others keep the starting point's values.
    pub only: Vec<String>,
}

impl Default for TuneSettings {
    /// The procedure that chose the shipped constants: `reach` only, 100 candidates, seed 1
    /// (the best held-out score of those tried; `docs/detectors.md`).
    fn default() -> Self {
        TuneSettings {
            budget: 100,
            seed: 1,
            plateau: false,
            only: vec!["reach".into()],
        }
    }
}

impl TuneSettings {
    /// The procedure that chooses the LSTM autoencoder's calibration constants: `memory`
    /// (`docs/detectors.md`).
    pub fn calibration() -> Self {
        TuneSettings {
            only: vec!["memory".into()],
            ..TuneSettings::default()
        }
    }

    /// The procedure that chooses the streaming Isolation Forest's calibration constants:
    /// `memory` and `warmup` (`docs/detectors.md`).
    pub fn iforest_calibration() -> Self {
        TuneSettings {
            only: vec!["memory".into(), "warmup".into()],
            ..TuneSettings::default()
        }
    }
}

/// Points per constant of [`tune`]'s coarse scan.
const SCAN: usize = 8;

/// What [`tune`] found.
#[derive(Debug, Clone, Serialize)]
pub struct Tuned<P> {
    pub params: P,
    /// Standard-profile score on the tuning files at the start and at the end.
    pub start_score: f64,
    pub score: f64,
    /// Candidates evaluated, and how many were accepted.
    pub evaluations: usize,
    pub accepted: usize,
}

/// The scorer's view of a set of files under one profile (precomputed once per search).
struct Objective<'a> {
    labels: Vec<FileLabels>,
    files: Vec<usize>,
    corpus: &'a Corpus,
    costs: CostMatrix,
    null: f64,
    perfect: f64,
}

impl<'a> Objective<'a> {
    fn new(corpus: &'a Corpus, files: &[usize], costs: CostMatrix) -> Self {
        let labels: Vec<FileLabels> = files
            .iter()
            .map(|&i| FileLabels::new(corpus.series[i].len(), &corpus.windows[i]))
            .collect();
        let (null, perfect) = null_perfect(&labels, &costs);
        Objective {
            labels,
            files: files.to_vec(),
            corpus,
            costs,
            null,
            perfect,
        }
    }

    /// Normalised score of `p` on the files, threshold optimised on them.
    fn score<P: Sync>(&self, p: &P, score: ScoreFile<'_, P>) -> Result<f64, EvalError> {
        let scores = score_files(self.corpus, &self.files, "tune", p, score)?;
        let pairs: Vec<(&FileLabels, &[f64])> = self
            .labels
            .iter()
            .zip(&scores)
            .map(|(l, s)| (l, s.as_slice()))
            .collect();
        let best = optimize_threshold(&pairs, &self.costs);
        Ok(normalize(best.score, self.null, self.perfect))
    }
}

/// The null and perfect raw scores of a set of files (NAB's normalisation).
fn null_perfect<'l>(
    labels: impl IntoIterator<Item = &'l FileLabels>,
    c: &CostMatrix,
) -> (f64, f64) {
    let (scored, windows) = labels.into_iter().fold((0, 0), |(s, w), l| {
        (s + l.scored_windows(), w + l.windows.len())
    });
    (-c.fn_ * scored as f64, c.tp * windows as f64)
}

/// The search's and the fold split's random numbers (splitmix64, deterministic in the seed).
struct Rng(SplitMix64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(SplitMix64(seed))
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-300);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }
}

/// Rounds to two significant digits (whole numbers for integer constants), inside the range.
fn round_to_grid(x: f64, d: &Dim) -> f64 {
    let x = x.clamp(d.lo, d.hi);
    if d.integer {
        let r = x.round();
        // Two significant digits for large counts too (79 stays, 1234 → 1200).
        let mag = 10f64.powf((r.abs().max(1.0).log10().floor() - 1.0).max(0.0));
        return ((r / mag).round() * mag).clamp(d.lo, d.hi);
    }
    let mag = 10f64.powf(x.abs().log10().floor() - 1.0);
    let r = (x / mag).round() * mag;
    // Printing artefacts away: 0.30000000000000004 → 0.3.
    let r: f64 = format!("{r:.12e}").parse().unwrap_or(r);
    r.clamp(d.lo, d.hi)
}

/// Searches `P`'s constants on `files` of `corpus` from `start` (see the module doc).
/// `progress` is told each accepted candidate (evaluation number, score).
pub fn tune<P: Tunable>(
    corpus: &Corpus,
    files: &[usize],
    standard: CostMatrix,
    start: &P,
    settings: &TuneSettings,
    score: ScoreFile<'_, P>,
    progress: &mut dyn FnMut(usize, f64),
) -> Result<Tuned<P>, EvalError> {
    let dims = P::dims();
    // The constants the search moves (all when `only` is empty); the rest keep `start`'s values.
    let active: Vec<usize> = (0..dims.len())
        .filter(|&i| {
            settings.only.is_empty()
                || settings
                    .only
                    .iter()
                    .any(|o| dims[i].name == *o || dims[i].name.starts_with(&format!("{o}[")))
        })
        .collect();
    let objective = Objective::new(corpus, files, standard);
    let grid = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .zip(&dims)
            .map(|(&x, d)| round_to_grid(x, d))
            .collect()
    };
    let eval = |v: &[f64]| -> Result<f64, EvalError> { objective.score(&P::from_vec(v), score) };
    let mut best = grid(&start.to_vec());
    let start_score = eval(&best)?;
    let mut best_score = start_score;
    progress(0, best_score);
    let mut rng = Rng::new(settings.seed);
    let mut accepted = 0;
    // A coarse scan first, when the budget allows: each moved constant in turn at SCAN points
    // spaced evenly in log scale over its range (the others at the best so far), so the local
    // search below starts in the right basin (one constant's score often has two).
    let mut used = 0;
    if active.len() * SCAN * 2 <= settings.budget {
        for &i in &active {
            let d = &dims[i];
            for g in 0..SCAN {
                let mut cand = best.clone();
                cand[i] = d.lo * (d.hi / d.lo).powf(g as f64 / (SCAN - 1) as f64);
                let cand = grid(&cand);
                used += 1;
                if cand == best {
                    continue;
                }
                let s = eval(&cand)?;
                if s > best_score {
                    progress(used, s);
                    best = cand;
                    best_score = s;
                    accepted += 1;
                }
            }
        }
    }
    // Step size (log scale), adapted by the one-fifth rule.
    let mut sigma: f64 = 0.3;
    for k in used + 1..=settings.budget {
        let mut cand = best.clone();
        if k % 2 == 1 {
            // One constant: a larger move.
            let i = active[rng.below(active.len())];
            cand[i] *= (2.0 * sigma * rng.normal()).exp();
        } else {
            for &i in &active {
                cand[i] *= (0.3 * sigma * rng.normal()).exp();
            }
        }
        let cand = grid(&cand);
        if cand == best {
            continue;
        }
        let s = eval(&cand)?;
        if s > best_score || (settings.plateau && s == best_score) {
            if s > best_score {
                progress(k, s);
            }
            best = cand;
            best_score = s;
            accepted += 1;
            sigma = (sigma * 1.5).min(1.0);
        } else {
            sigma = (sigma * 0.9).max(0.02);
        }
    }
    Ok(Tuned {
        params: P::from_vec(&best),
        start_score,
        score: best_score,
        evaluations: settings.budget,
        accepted,
    })
}

/// Splits the corpus' files into `k` folds, stratified by category: each category's files are
/// shuffled (seeded) and dealt to the folds in turn, the deal continuing across categories so
/// the folds differ in size by at most one file.
pub fn folds(corpus: &Corpus, k: usize, seed: u64) -> Vec<Vec<usize>> {
    let k = k.max(1);
    let mut by_cat: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in corpus.series.iter().enumerate() {
        by_cat.entry(s.category.as_str()).or_default().push(i);
    }
    let mut rng = Rng::new(seed);
    let mut out = vec![Vec::new(); k];
    let mut next = 0;
    for files in by_cat.values_mut() {
        // Fisher–Yates.
        for i in (1..files.len()).rev() {
            let j = rng.below(i + 1);
            files.swap(i, j);
        }
        for &f in files.iter() {
            out[next % k].push(f);
            next += 1;
        }
    }
    for f in &mut out {
        f.sort_unstable();
    }
    out
}

/// One profile's figures.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileScore {
    pub profile: String,
    pub normalized: f64,
    pub raw: f64,
}

/// One fold of [`cross_validate`].
#[derive(Debug, Clone, Serialize)]
pub struct FoldReport {
    pub fold: usize,
    /// Corpus keys of the held-out files.
    pub held_out: Vec<String>,
    /// Constants chosen on the other folds (`None`: the detector has no tuning procedure).
    pub params: Option<serde_json::Value>,
    /// Per profile: threshold chosen on the training folds, the training folds' score there,
    /// and the held-out fold's score with it.
    pub thresholds: BTreeMap<String, f64>,
    pub train: Vec<ProfileScore>,
    pub test: Vec<ProfileScore>,
}

/// What `eval --folds k` prints.
#[derive(Debug, Clone, Serialize)]
pub struct CrossValidation {
    pub detector: String,
    pub folds: usize,
    pub seed: u64,
    /// Whether constants were tuned per fold (else only the thresholds were chosen per fold).
    pub tuned: bool,
    pub tuning: Option<TuneSettings>,
    /// The shipped constants on the whole corpus, thresholds optimised on the whole corpus.
    pub in_sample: Vec<ProfileScore>,
    /// Every file scored by the fold that held it out, normalised over the whole corpus.
    pub held_out: Vec<ProfileScore>,
    pub per_fold: Vec<FoldReport>,
}

/// The detector under test: with fixed constants, or tuned per fold.
pub enum Candidate<'a, P: Tunable> {
    /// No tuning procedure: the same detector for every fold (only thresholds are chosen per
    /// fold).
    Fixed(&'a (dyn Fn() -> Box<dyn Detector> + Sync)),
    /// Tuned per fold from `start`, and shipped as `shipped` (for the in-sample figure).
    Tuned {
        start: P,
        shipped: P,
        settings: TuneSettings,
        score: ScoreFile<'a, P>,
    },
}

/// The held-out protocol (see the module doc). `progress` gets one line per step.
pub fn cross_validate<P: Tunable>(
    corpus: &Corpus,
    profiles: &[Profile],
    detector: &str,
    candidate: &Candidate<'_, P>,
    k: usize,
    seed: u64,
    progress: &mut dyn FnMut(String),
) -> Result<CrossValidation, EvalError> {
    let all: Vec<usize> = (0..corpus.series.len()).collect();
    let labels: Vec<FileLabels> = all
        .iter()
        .map(|&i| FileLabels::new(corpus.series[i].len(), &corpus.windows[i]))
        .collect();
    let standard = profiles
        .iter()
        .find(|p| p.name == "standard")
        .or(profiles.first())
        .map_or(NAB_STANDARD, |p| p.costs);
    // The shipped (or fixed) detector over every file: the in-sample figure, and for a fixed
    // detector the scores every fold reuses (a causal detector's scores on a file do not depend
    // on the other files).
    let shipped_scores = match candidate {
        Candidate::Fixed(build) => run_detector_with(corpus, &all, detector, *build)?,
        Candidate::Tuned { shipped, score, .. } => {
            score_files(corpus, &all, detector, shipped, *score)?
        }
    };
    let best_threshold = |files: &[usize], scores: &[Vec<f64>], p: &Profile| {
        let pairs: Vec<(&FileLabels, &[f64])> = files
            .iter()
            .map(|&i| (&labels[i], scores[i].as_slice()))
            .collect();
        optimize_threshold(&pairs, &p.costs)
    };
    let mut in_sample = Vec::new();
    for p in profiles {
        let best = best_threshold(&all, &shipped_scores, p);
        let (null, perfect) = null_perfect(&labels, &p.costs);
        in_sample.push(ProfileScore {
            profile: p.name.clone(),
            normalized: normalize(best.score, null, perfect),
            raw: best.score,
        });
    }
    progress(format!(
        "in-sample: {}",
        in_sample
            .iter()
            .map(|p| format!("{} {:.2}", p.profile, p.normalized))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let split = folds(corpus, k, seed);
    let mut held_raw: BTreeMap<String, f64> = BTreeMap::new();
    let mut per_fold = Vec::new();
    for (f, test) in split.iter().enumerate() {
        let train: Vec<usize> = all.iter().copied().filter(|i| !test.contains(i)).collect();
        let (params, scores): (Option<serde_json::Value>, Vec<Vec<f64>>) = match candidate {
            Candidate::Fixed(_) => (None, Vec::new()),
            Candidate::Tuned {
                start,
                settings,
                score,
                ..
            } => {
                let tuned = tune(
                    corpus,
                    &train,
                    standard,
                    start,
                    settings,
                    *score,
                    &mut |_, _| {},
                )?;
                progress(format!(
                    "fold {}/{}: tuned on {} files: standard {:.2} -> {:.2}",
                    f + 1,
                    split.len(),
                    train.len(),
                    tuned.start_score,
                    tuned.score
                ));
                let scores = score_files(corpus, &all, detector, &tuned.params, *score)?;
                (serde_json::to_value(&tuned.params).ok(), scores)
            }
        };
        // A fixed detector's scores do not depend on the fold.
        let fold_scores = if scores.is_empty() {
            &shipped_scores
        } else {
            &scores
        };
        let mut thresholds = BTreeMap::new();
        let mut train_scores = Vec::new();
        let mut test_scores = Vec::new();
        for p in profiles {
            let chosen = best_threshold(&train, fold_scores, p);
            let (null, perfect) = null_perfect(train.iter().map(|&i| &labels[i]), &p.costs);
            train_scores.push(ProfileScore {
                profile: p.name.clone(),
                normalized: normalize(chosen.score, null, perfect),
                raw: chosen.score,
            });
            let raw: f64 = test
                .iter()
                .map(|&i| {
                    let fs: FileScore =
                        labels[i].score(&fold_scores[i], chosen.threshold, &p.costs);
                    fs.score
                })
                .sum();
            let (null, perfect) = null_perfect(test.iter().map(|&i| &labels[i]), &p.costs);
            test_scores.push(ProfileScore {
                profile: p.name.clone(),
                normalized: normalize(raw, null, perfect),
                raw,
            });
            *held_raw.entry(p.name.clone()).or_default() += raw;
            thresholds.insert(p.name.clone(), chosen.threshold);
        }
        progress(format!(
            "fold {}/{}: held-out {} files: {}",
            f + 1,
            split.len(),
            test.len(),
            test_scores
                .iter()
                .map(|p| format!("{} {:.2}", p.profile, p.normalized))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        per_fold.push(FoldReport {
            fold: f + 1,
            held_out: test.iter().map(|&i| corpus.series[i].key.clone()).collect(),
            params,
            thresholds,
            train: train_scores,
            test: test_scores,
        });
    }
    let held_out = profiles
        .iter()
        .map(|p| {
            let (null, perfect) = null_perfect(&labels, &p.costs);
            let raw = held_raw.get(&p.name).copied().unwrap_or(0.0);
            ProfileScore {
                profile: p.name.clone(),
                normalized: normalize(raw, null, perfect),
                raw,
            }
        })
        .collect();
    let (tuned, tuning) = match candidate {
        Candidate::Fixed(_) => (false, None),
        Candidate::Tuned { settings, .. } => (true, Some(settings.clone())),
    };
    Ok(CrossValidation {
        detector: detector.into(),
        folds: split.len(),
        seed,
        tuned,
        tuning,
        in_sample,
        held_out,
        per_fold,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Mutex;

    use super::*;
    use crate::nab::{Series, Window};

    /// `files` synthetic series in three categories, each with one spike inside one window.
    fn corpus(files: usize) -> Corpus {
        let mut series = Vec::new();
        let mut windows = Vec::new();
        for f in 0..files {
            let n = 1200;
            let spike = 600 + 37 * f;
            let category = ["a", "b", "c"][f % 3].to_string();
            series.push(Series {
                key: format!("{category}/s{f}.csv"),
                category,
                name: format!("s{f}"),
                timestamps: (0..n as i64).map(|i| i * 300).collect(),
                values: (0..n)
                    .map(|i| {
                        let wave = ((i * (f + 3)) % 17) as f64 / 17.0;
                        if i == spike { 40.0 } else { wave }
                    })
                    .collect(),
            });
            let (a, b) = (spike - 20, spike + 20);
            windows.push(vec![Window {
                start: a as i64 * 300,
                end: b as i64 * 300,
                first_row: a,
                last_row: b,
            }]);
        }
        Corpus {
            root: PathBuf::from("synthetic"),
            series,
            windows,
        }
    }

    fn profiles() -> Vec<Profile> {
        let p = |name: &str, fp: f64, fn_: f64| Profile {
            name: name.into(),
            costs: CostMatrix {
                tp: 1.0,
                fp,
                fn_,
                tn: 1.0,
            },
        };
        vec![
            p("standard", 0.11, 1.0),
            p("reward_low_FP_rate", 0.22, 1.0),
            p("reward_low_FN_rate", 0.11, 2.0),
        ]
    }

    #[test]
    fn folds_partition_the_files_stratified_and_seeded() {
        let c = corpus(14);
        let f = folds(&c, 5, 7);
        let mut all: Vec<usize> = f.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..14).collect::<Vec<_>>());
        let sizes: Vec<usize> = f.iter().map(Vec::len).collect();
        assert!(
            sizes.iter().max().unwrap_or(&0) - sizes.iter().min().unwrap_or(&0) <= 1,
            "{sizes:?}"
        );
        // Stratified: no fold holds two files of a category before every fold holds one.
        for cat in ["a", "b", "c"] {
            let per: Vec<usize> = f
                .iter()
                .map(|fold| {
                    fold.iter()
                        .filter(|&&i| c.series[i].category == cat)
                        .count()
                })
                .collect();
            assert!(
                per.iter().max().unwrap_or(&0) - per.iter().min().unwrap_or(&0) <= 1,
                "{cat}: {per:?}"
            );
        }
        assert_eq!(f, folds(&c, 5, 7));
        assert_ne!(f, folds(&c, 5, 8));
    }

    #[test]
    fn grid_keeps_two_significant_digits_inside_the_range() {
        let d = Dim {
            name: "x".into(),
            lo: 0.01,
            hi: 20.0,
            integer: false,
        };
        assert_eq!(round_to_grid(2.4237, &d), 2.4);
        assert_eq!(round_to_grid(0.01544, &d), 0.015);
        assert_eq!(round_to_grid(99.0, &d), 20.0);
        let n = Dim {
            name: "n".into(),
            lo: 1.0,
            hi: 2000.0,
            integer: true,
        };
        assert_eq!(round_to_grid(79.4, &n), 79.0);
        assert_eq!(round_to_grid(1234.0, &n), 1200.0);
    }

    #[test]
    fn tuning_never_sees_the_held_out_fold_and_held_out_scores_use_chosen_constants() {
        let c = corpus(9);
        let seen: Mutex<Vec<(u64, usize)>> = Mutex::new(Vec::new());
        let scorer = pulse_scorer(&c);
        let spy = |p: &PulseParams, i: usize| {
            if let Ok(mut s) = seen.lock() {
                s.push((p.alarm.to_bits(), i));
            }
            scorer(p, i)
        };
        let shipped = PulseParams::default();
        let candidate = Candidate::Tuned {
            start: PulseParams::prior(),
            shipped,
            settings: TuneSettings {
                budget: 6,
                seed: 3,
                ..TuneSettings::default()
            },
            score: &spy,
        };
        // The search of each fold, replayed alone: what it scored must be training files only.
        let split = folds(&c, 3, 11);
        for test in &split {
            let train: Vec<usize> = (0..9).filter(|i| !test.contains(i)).collect();
            seen.lock().map(|mut s| s.clear()).ok();
            tune(
                &c,
                &train,
                profiles()[0].costs,
                &PulseParams::prior(),
                &TuneSettings {
                    budget: 6,
                    seed: 3,
                    ..TuneSettings::default()
                },
                &spy,
                &mut |_, _| {},
            )
            .expect("tune");
            let touched: Vec<usize> = seen
                .lock()
                .map(|s| s.iter().map(|&(_, i)| i).collect())
                .unwrap_or_default();
            assert!(!touched.is_empty());
            assert!(
                touched.iter().all(|i| !test.contains(i)),
                "fold {test:?} leaked: {touched:?}"
            );
        }
        let mut lines = Vec::new();
        let cv = cross_validate(&c, &profiles(), "pulse", &candidate, 3, 11, &mut |l| {
            lines.push(l)
        })
        .expect("cv");
        assert_eq!(cv.folds, 3);
        assert!(cv.tuned);
        assert_eq!(cv.per_fold.len(), 3);
        let held: Vec<&String> = cv.per_fold.iter().flat_map(|f| &f.held_out).collect();
        assert_eq!(held.len(), 9);
        // Every spike is obvious: the held-out folds catch them with what the others chose (a
        // few false alarms on the sawtooth cost the rest).
        for p in &cv.held_out {
            assert!(p.normalized > 50.0, "{p:?}");
        }
        assert!(
            lines.iter().any(|l| l.starts_with("in-sample")),
            "{lines:?}"
        );
    }

    #[test]
    fn one_indexed_weight_is_all_that_moves() {
        // `--only 'weights[0]'` (docs/detectors.md's best procedure) moves the value's weight
        // and nothing else; `weights` would move all eight.
        let c = corpus(6);
        let files: Vec<usize> = (0..6).collect();
        let prior = PulseParams::prior();
        let tuned = tune(
            &c,
            &files,
            profiles()[0].costs,
            &prior,
            &TuneSettings {
                budget: 20,
                seed: 3,
                only: vec!["weights[0]".into()],
                ..TuneSettings::default()
            },
            &pulse_scorer(&c),
            &mut |_, _| {},
        )
        .expect("tune");
        let (got, start) = (tuned.params.to_vec(), prior.to_vec());
        let moved: Vec<String> = PulseParams::dims()
            .iter()
            .zip(got.iter().zip(&start))
            .filter(|(_, (a, b))| a != b)
            .map(|(d, _)| d.name.clone())
            .collect();
        assert!(moved.iter().all(|n| n == "weights[0]"), "moved {moved:?}");
        assert!(tuned.evaluations > 1, "{} evaluations", tuned.evaluations);
    }

    #[test]
    fn a_detector_without_a_tuning_procedure_gets_held_out_thresholds_only() {
        let c = corpus(6);
        let build = || {
            crate::detect::DetectorKind::WindowedGaussian
                .build_for_nab(&crate::config::DetectorConfig::default())
        };
        let candidate: Candidate<'_, PulseParams> = Candidate::Fixed(&build);
        let cv = cross_validate(
            &c,
            &profiles(),
            "windowed-gaussian",
            &candidate,
            2,
            1,
            &mut |_| {},
        )
        .expect("cv");
        assert!(!cv.tuned && cv.tuning.is_none());
        assert!(
            cv.per_fold
                .iter()
                .all(|f| f.params.is_none() && f.thresholds.len() == 3)
        );
        // The held-out figure is each file scored at its own fold's threshold.
        let scores = run_detector_with(&c, &(0..6).collect::<Vec<_>>(), "wg", &build).expect("run");
        for (k, p) in profiles().iter().enumerate() {
            let mut raw = 0.0;
            for f in &cv.per_fold {
                for key in &f.held_out {
                    let i = c.series.iter().position(|s| &s.key == key).expect("key");
                    let l = FileLabels::new(c.series[i].len(), &c.windows[i]);
                    raw += l.score(&scores[i], f.thresholds[&p.name], &p.costs).score;
                }
            }
            assert!(
                (raw - cv.held_out[k].raw).abs() < 1e-9,
                "{raw} vs {:?}",
                cv.held_out[k]
            );
        }
    }
}
