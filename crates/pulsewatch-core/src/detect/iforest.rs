//! Isolation Forest over sliding-window features (Liu, Ting & Zhou 2008), replacing the
//! scikit-learn `IsolationForest` of the old system.
//!
//! # Model
//! `trees` random isolation trees, each grown on a sub-sample of `ψ = min(sample_size, n)` of the
//! `n` training feature vectors, drawn without replacement. A node picks a split feature (see
//! below) and a split uniformly in `[min, max)` of that feature on the node's points (values
//! `<= split` go left, as in scikit-learn's extra trees); growth stops at one point, at identical
//! points, or at the height limit `ceil(log2 ψ)`. The path length of `x` in a tree is the depth of
//! the leaf it reaches plus `c(size)` for the leaf's unresolved points, where
//! `c(n) = 2 H(n-1) - 2 (n-1)/n` (`c(2) = 1`, `c(≤1) = 0`) is the mean path length of an
//! unsuccessful binary-search-tree search. The isolation score is `s = 2^(-E[h(x)] / c(ψ))` in
//! (0, 1): near 1 for easily isolated points, about 0.5 or less for ordinary ones.
//!
//! # Features
//! The feature vector of the point at time `t` is made from the window of the last `window` values
//! (ending with `x_t`), each standardised with the mean and standard deviation of the *training
//! data* (one affine map per fit, so the columns are in units of the series' spread and a window
//! keeps its level), followed by six summaries of those standardised values: the four of the
//! replaced system (window mean, standard deviation, range = max − min, last − first) and two about
//! the newest point (last − mean of the earlier window values, last − previous): `window + 6`
//! columns, 36 with the default window of 30.
//!
//! **Split-feature choice.** The window's columns count as *one* feature: a node draws uniformly
//! among the seven features "window, mean, std, range, last − first, last − earlier mean, last −
//! previous" that are not constant on its points, and if it drew the window, one of its
//! non-constant columns uniformly. This is the one deliberate departure from the classic algorithm
//! (uniform over all columns), made because of measurements. With the replaced system's 34
//! columns chosen uniformly, the 30 window columns take 30/34 of the splits, a point anomaly
//! shows in only a few columns, and an isolation forest is rank-based (anything beyond the
//! training range is only as isolated as the most extreme training point, however far out it
//! is): a +6σ spike in noise then scores *below* the 99th percentile of ordinary points.
//! scikit-learn 1.9.1's `IsolationForest` on the same 34 features behaves the same, so this is
//! the design, not this code. On the NAB corpus (standard / low-FP / low-FN profiles, optimised
//! thresholds, seed 42) the classic choice scores 6.4 / 4.8 / 7.1 and this one 15.5 / 10.5 /
//! 17.8; over seeds 42, 1, 2, 3 and 7 the standard score is 5.5–8.0 against 15.3–22.3.
//!
//! # Score mapping (seed preset)
//! `threshold` is an isolation score. The detector's output maps it to 0.5, piecewise linearly and
//! order-preserving: `[0, threshold] → [0, 0.5]` and `[threshold, 1] → [0.5, 1]`. A raw score
//! of exactly 0.5 (the "no structure" value) therefore reads below 0.5 with the default 0.6.
//!
//! # Presets and calibration
//! `preset = "streaming"` (the default) refits every `refit_every` points on the latest `train`
//! values, fits first as soon as one sub-sample of windows exists (`window + sample_size − 1`
//! values), and passes the isolation score through the per-series calibration layer
//! ([`super::calibrate`]): the output is the score's rarity among the series' own recent scores,
//! with `calibration.alarm` mapped to 0.5, so one threshold serves calm and noisy series alike.
//! No opinion (no model, the layer's warm-up) reads 0. `preset = "seed"` is the replaced
//! system's configuration: fitted once on the first 750 values, the raw isolation score mapped
//! with `threshold` (the "Score mapping" below), 0.5 before the fit. [`raw_scores`] gives the
//! isolation scores alone, so a search over the calibration's constants fits the forests once.
//!
//! # Streaming, causality and training
//! `update` keeps the last `max(train, window)` values. Until a model exists it returns no
//! opinion (0.5 for the seed preset, never a detection) and, once the first-fit count of points
//! has been seen, fits on those points; the point that completes the training set still scores
//! no opinion and scoring starts with the next point. `train` is raised to at least `window + MIN_WINDOWS - 1` so the forest sees
//! at least [`MIN_WINDOWS`] (16) windows. With `refit_every > 0` the forest is refitted on the
//! latest `train` values every `refit_every` scored points, after scoring the point that triggers
//! it. Every fit uses the configured `seed`, so a model is a function of (seed, training values).
//! A point is scored from its own window only; while fewer than `window` values exist (possible
//! only right after [`Trainable::fit`] or [`Trainable::load_state`] on a detector that has seen
//! fewer than `window` points) the score is 0.5: no partial windows. Non-finite values are skipped
//! (scored 0.5, not buffered, not counted).
//!
//! [`Trainable::fit`] fits on the last `train` finite values of the given history (it needs at
//! least `window + MIN_WINDOWS - 1`), reports progress once per tree and checks the cancel flag
//! before each tree, leaving the previous model in place when cancelled. A fitted or loaded model
//! is used straight away. A detector that has seen no points yet adopts the tail of the fit history
//! (or of the saved state) as its recent values, so it scores its next point at once; one that has
//! seen points keeps its own.
//!
//! # Persistence
//! `save_state` writes JSON: a format tag and version, the parameters (window, feature count,
//! ψ, trees, seed, train), the training normalisation, the trees as flat arrays, the recent
//! values with the refit counter and (streaming preset) the calibration layer's state, which a
//! detector that has not scored yet restores. Every `f64` is stored as its IEEE-754 bit pattern (a `u64`), so a
//! round trip is exact whatever the JSON float parser does. `load_state` rejects with
//! [`FitError::BadState`] anything unparseable, a different format or version, a different window
//! or feature count, a bad normalisation, non-finite values, and any node layout that is not
//! exactly one pre-order binary tree per tree range (out-of-range features or children, leaves
//! larger than the sample), so a loaded model can never panic or read out of bounds while
//! scoring. With default parameters a state is about 350 kB of JSON.
//!
//! # Figures
//! Speed and NAB figures: `docs/detectors.md`.

use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use super::calibrate::Calibrator;
use super::{Detector, FitControl, FitError, FitProgress, Point, Reason, Trainable};
use crate::config::{IsolationForestConfig, IsolationForestPreset};

/// Fewest training windows (feature vectors) a fit accepts.
pub const MIN_WINDOWS: usize = 16;
/// Summary columns after the window values: mean, std, range, last − first, last − mean of the
/// earlier values, last − previous.
const EXTRA_FEATURES: usize = 6;
/// Marks a leaf in [`Node::feature`].
const LEAF: u32 = u32::MAX;
const STATE_FORMAT: &str = "pulsewatch-isolation-forest";
const STATE_VERSION: u32 = 1;
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// Mean path length of an unsuccessful search in a binary search tree of `n` points.
pub fn c_factor(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
        }
    }
}

/// Maps an isolation score to the detector's output: `[0, t] → [0, 0.5]`, `[t, 1] → [0.5, 1]`.
pub fn map_score(raw: f64, threshold: f64) -> f64 {
    super::calibrate::map_to_half(raw, threshold)
}

/// One node of a tree. Trees are stored in pre-order, so the left child of internal node `i` is
/// `i + 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    /// Feature index, or [`LEAF`].
    feature: u32,
    /// Internal: index of the right child. Leaf: its own index (scoring stays put on a leaf).
    next: u32,
    /// Internal: split value (`x <= value` goes left). Leaf: path length, `depth + c(size)`.
    value: f64,
}

/// Trees walked side by side when scoring, so their memory loads overlap.
const LANES: usize = 8;

/// A fitted forest with its feature normalisation.
#[derive(Debug, Clone, PartialEq)]
struct Forest {
    mean: f64,
    std: f64,
    /// Sub-sample size the trees were grown on, and `c(psi)`.
    psi: usize,
    c_psi: f64,
    nodes: Vec<Node>,
    /// Training points in each leaf (0 for internal nodes); for persistence only.
    sizes: Vec<u32>,
    /// Index of each tree's root in `nodes`; tree `t` ends where tree `t + 1` starts.
    roots: Vec<u32>,
    /// Depth of each tree's deepest leaf.
    heights: Vec<u32>,
}

impl Forest {
    /// Checks and completes raw trees: `nodes` hold, for a leaf, `feature = LEAF` and its size in
    /// `next`; for an internal node its feature (< `dim`), right child and split. Every tree must
    /// be exactly one pre-order binary tree filling `roots[t]..roots[t + 1]`; leaves then get
    /// their path length and point to themselves. Errors name the first defect.
    fn new(
        mean: f64,
        std: f64,
        psi: usize,
        roots: Vec<u32>,
        mut nodes: Vec<Node>,
        dim: usize,
    ) -> Result<Forest, String> {
        let n = nodes.len();
        if !mean.is_finite() || !std.is_finite() || std <= 0.0 {
            return Err("invalid normalisation".into());
        }
        if psi < 1 || roots.is_empty() || roots[0] != 0 || n > u32::MAX as usize {
            return Err("bad sample size, roots or node count".into());
        }
        let mut sizes = vec![0u32; n];
        let mut heights = Vec::with_capacity(roots.len());
        // Pending right children (index, depth) of the current tree.
        let mut pending: Vec<(usize, u32)> = Vec::new();
        for (t, &root) in roots.iter().enumerate() {
            let start = root as usize;
            let end = roots.get(t + 1).map_or(n, |&r| r as usize);
            if start >= end || end > n {
                return Err(format!("tree {t} has bad bounds"));
            }
            let mut height = 0;
            let mut depth = 0u32;
            pending.clear();
            for i in start..end {
                let node = &mut nodes[i];
                if node.feature == LEAF {
                    let size = node.next;
                    if size as usize > psi {
                        return Err(format!("leaf {i} is larger than the sample"));
                    }
                    sizes[i] = size;
                    node.next = i as u32;
                    node.value = f64::from(depth) + c_factor(size as usize);
                    height = height.max(depth);
                    // Pre-order: after a leaf comes the innermost pending right child.
                    match pending.pop() {
                        Some((r, d)) if r == i + 1 && r < end => depth = d,
                        None if i + 1 == end => {}
                        _ => return Err(format!("tree {t} is not a pre-order tree at {i}")),
                    }
                } else {
                    if node.feature as usize >= dim || !node.value.is_finite() {
                        return Err(format!("node {i} has a bad feature or split"));
                    }
                    depth += 1;
                    pending.push((node.next as usize, depth));
                }
            }
            if !pending.is_empty() {
                return Err(format!("tree {t} is incomplete"));
            }
            heights.push(height);
        }
        Ok(Forest {
            mean,
            std,
            psi,
            c_psi: c_factor(psi),
            nodes,
            sizes,
            roots,
            heights,
        })
    }

    /// Isolation score `2^(-E[h(x)] / c(psi))` of a feature vector (`x.len()` = the feature
    /// count the forest was validated for).
    fn isolation_score(&self, x: &[f64]) -> f64 {
        let last = x.len() - 1;
        let mut total = 0.0;
        for (roots, heights) in self.roots.chunks(LANES).zip(self.heights.chunks(LANES)) {
            let mut at = [0usize; LANES];
            let at = &mut at[..roots.len()];
            for (a, &r) in at.iter_mut().zip(roots) {
                *a = r as usize;
            }
            let steps = heights.iter().copied().max().unwrap_or(0);
            // A fixed number of branch-free steps per group: a leaf is its own child.
            for _ in 0..steps {
                for a in at.iter_mut() {
                    let n = self.nodes[*a];
                    let leaf = usize::from(n.feature == LEAF);
                    // NaN goes right, like every value that is not `<= split`.
                    let goes_left = x[(n.feature as usize).min(last)] <= n.value;
                    let right = usize::from(!goes_left);
                    let left = *a + 1 - leaf;
                    *a = left ^ ((left ^ n.next as usize) & right.wrapping_neg());
                }
            }
            total += at.iter().map(|&a| self.nodes[a].value).sum::<f64>();
        }
        let mean_path = total / self.roots.len() as f64;
        if self.c_psi > 0.0 {
            (-mean_path / self.c_psi).exp2()
        } else {
            0.5
        }
    }
}

/// Fills `out` (length `window + EXTRA_FEATURES`) with the features of the window `values`.
fn features(values: impl Iterator<Item = f64>, mean: f64, std: f64, out: &mut [f64]) {
    let w = out.len() - EXTRA_FEATURES;
    let (win, extra) = out.split_at_mut(w);
    for (o, v) in win.iter_mut().zip(values) {
        *o = (v - mean) / std;
    }
    let n = w as f64;
    let sum = win.iter().sum::<f64>();
    let m = sum / n;
    let var = win.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n;
    let (lo, hi) = win
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let last = win[w - 1];
    extra[0] = m;
    extra[1] = var.sqrt();
    extra[2] = hi - lo;
    extra[3] = last - win[0];
    if w > 1 {
        extra[4] = last - (sum - last) / (n - 1.0);
        extra[5] = last - win[w - 2];
    } else {
        extra[4] = 0.0;
        extra[5] = 0.0;
    }
}

/// xoshiro256** seeded through SplitMix64: small, fast and fixed forever (a model depends only on
/// the seed and the data, never on a dependency's RNG version).
struct Rng([u64; 4]);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^ (x >> 31)
        };
        Rng([next(), next(), next(), next()])
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let out = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, n), n > 0 (Lemire's multiply-and-reject).
    fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as usize;
            }
        }
    }
}

/// Scratch state for growing trees over a row-major feature matrix.
struct Grower<'a> {
    x: &'a [f64],
    dim: usize,
    /// Number of window columns (the first `window` features).
    window: usize,
    limit: usize,
    rng: Rng,
    /// Candidate order scratch: slots (0 = the window, 1.. = summaries) and window columns.
    slots: Vec<u32>,
    cols: Vec<u32>,
    nodes: Vec<Node>,
}

impl Grower<'_> {
    /// A raw leaf (see [`Forest::new`]).
    fn leaf(&mut self, size: usize) {
        self.nodes.push(Node {
            feature: LEAF,
            next: size as u32,
            value: 0.0,
        });
    }

    /// Range of feature `f` over the points `idx`.
    fn range(&self, idx: &[u32], f: usize) -> (f64, f64) {
        idx.iter()
            .map(|&i| self.x[i as usize * self.dim + f])
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            })
    }

    /// The split feature and its range: a slot uniformly among those not constant on `idx`, where
    /// the window counts as one slot (then a column uniformly among its non-constant ones).
    fn pick_feature(&mut self, idx: &[u32]) -> Option<(usize, f64, f64)> {
        let slots = self.slots.len();
        for k in 0..slots {
            let j = k + self.rng.below(slots - k);
            self.slots.swap(k, j);
            let slot = self.slots[k] as usize;
            if slot > 0 {
                let f = self.window + slot - 1;
                let (lo, hi) = self.range(idx, f);
                if hi > lo {
                    return Some((f, lo, hi));
                }
                continue;
            }
            let cols = self.cols.len();
            for c in 0..cols {
                let j = c + self.rng.below(cols - c);
                self.cols.swap(c, j);
                let f = self.cols[c] as usize;
                let (lo, hi) = self.range(idx, f);
                if hi > lo {
                    return Some((f, lo, hi));
                }
            }
        }
        None
    }

    fn grow(&mut self, idx: &mut [u32], depth: usize) {
        let n = idx.len();
        if depth >= self.limit || n <= 1 {
            self.leaf(n);
            return;
        }
        let Some((f, lo, hi)) = self.pick_feature(idx) else {
            self.leaf(n);
            return;
        };
        let mut split = lo + self.rng.unit() * (hi - lo);
        if split >= hi {
            split = lo;
        }
        // Partition: `<= split` to the front. Both sides are non-empty since lo <= split < hi.
        let mut left = 0;
        for k in 0..n {
            if self.x[idx[k] as usize * self.dim + f] <= split {
                idx.swap(left, k);
                left += 1;
            }
        }
        let me = self.nodes.len();
        self.nodes.push(Node {
            feature: f as u32,
            next: 0,
            value: split,
        });
        let (l, r) = idx.split_at_mut(left);
        self.grow(l, depth + 1);
        self.nodes[me].next = self.nodes.len() as u32;
        self.grow(r, depth + 1);
    }
}

/// The detector. See the module documentation.
pub struct IsolationForest {
    trees: usize,
    sample_size: usize,
    window: usize,
    /// Effective training length: `max(cfg.train, window + MIN_WINDOWS - 1)`.
    train: usize,
    /// Values seen before the first fit (`train` for the seed preset; streaming fits as soon as
    /// one sub-sample of windows exists).
    first_fit: usize,
    /// The per-series calibration of the isolation score (streaming preset).
    calibrator: Option<Calibrator>,
    refit_every: usize,
    threshold: f64,
    seed: u64,
    /// The last `max(train, window)` finite values.
    recent: VecDeque<f64>,
    forest: Option<Forest>,
    /// Points scored since the last fit (for `refit_every`).
    since_fit: usize,
    /// Feature vector scratch (`window + 4`).
    x: Vec<f64>,
    /// The latest point's isolation score (for [`Detector::explain`]).
    last_raw: Option<f64>,
    /// Isolation scores of the recent windows under the current forest, sorted; computed on the
    /// first explanation after a fit.
    reference: Option<Vec<f32>>,
}

impl IsolationForest {
    /// A detector with `cfg`'s parameters; out-of-range values are clamped (at least one tree,
    /// sample size ≥ 2, window ≥ 1, threshold inside (0, 1); a non-finite threshold becomes 0.6).
    pub fn new(cfg: &IsolationForestConfig) -> Self {
        let cfg = &cfg.effective();
        let window = cfg.window.max(1);
        let train = cfg.train.max(window + MIN_WINDOWS - 1);
        let threshold = if cfg.threshold.is_finite() {
            cfg.threshold.clamp(1e-6, 1.0 - 1e-6)
        } else {
            0.6
        };
        let sample_size = cfg.sample_size.max(2);
        let streaming = cfg.preset == IsolationForestPreset::Streaming;
        let first_fit = if streaming {
            train
                .min(window + sample_size - 1)
                .max(window + MIN_WINDOWS - 1)
        } else {
            train
        };
        IsolationForest {
            trees: cfg.trees.max(1),
            sample_size,
            window,
            train,
            first_fit,
            calibrator: streaming.then(|| Calibrator::new(cfg.calibration)),
            refit_every: cfg.refit_every,
            threshold,
            seed: cfg.seed,
            recent: VecDeque::with_capacity(train.max(window)),
            forest: None,
            since_fit: 0,
            x: vec![0.0; window + EXTRA_FEATURES],
            last_raw: None,
            reference: None,
        }
    }

    /// Scores as NAB counts: the calibration rests after an alarm (see
    /// [`Calibrator::for_nab`]). The seed preset has no rest.
    pub fn for_nab(mut self) -> Self {
        self.calibrator = self.calibrator.map(Calibrator::for_nab);
        self
    }

    /// Fewest history points [`Trainable::fit`] accepts.
    pub fn min_history(&self) -> usize {
        self.window + MIN_WINDOWS - 1
    }

    fn dim(&self) -> usize {
        self.window + EXTRA_FEATURES
    }

    fn keep(&self) -> usize {
        self.train.max(self.window)
    }

    /// Fits a forest on `values` (all finite, at least `min_history` of them).
    fn fit_values(&self, values: &[f64], ctl: &mut FitControl<'_>) -> Result<Forest, FitError> {
        let need = self.min_history();
        if values.len() < need {
            return Err(FitError::TooShort {
                have: values.len(),
                need,
            });
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let std = var.sqrt();
        // A flat (or numerically flat) training set: standardise by 1 instead of dividing by ~0.
        let std = if std.is_finite() && std > f64::EPSILON * mean.abs().max(1.0) {
            std
        } else {
            1.0
        };
        if !mean.is_finite() {
            return Err(FitError::Failed("training values overflow".into()));
        }
        let dim = self.dim();
        let rows = values.len() - self.window + 1;
        let mut x = vec![0.0; rows * dim];
        for (r, row) in x.chunks_exact_mut(dim).enumerate() {
            features(values[r..r + self.window].iter().copied(), mean, std, row);
        }
        let psi = self.sample_size.min(rows);
        let limit = (psi as f64).log2().ceil() as usize;
        let mut g = Grower {
            x: &x,
            dim,
            limit,
            window: self.window,
            rng: Rng::new(self.seed),
            slots: (0..=EXTRA_FEATURES as u32).collect(),
            cols: (0..self.window as u32).collect(),
            nodes: Vec::with_capacity(self.trees.saturating_mul(2 * psi).min(1 << 22)),
        };
        let mut perm: Vec<u32> = (0..rows as u32).collect();
        let mut sample: Vec<u32> = Vec::with_capacity(psi);
        let mut roots = Vec::with_capacity(self.trees);
        for t in 0..self.trees {
            if ctl.cancelled() {
                return Err(FitError::Cancelled);
            }
            // Sub-sample without replacement: a partial Fisher-Yates shuffle.
            for k in 0..psi {
                let j = k + g.rng.below(rows - k);
                perm.swap(k, j);
            }
            sample.clear();
            sample.extend_from_slice(&perm[..psi]);
            roots.push(g.nodes.len() as u32);
            g.grow(&mut sample, 0);
            (ctl.progress)(FitProgress {
                done: t + 1,
                total: self.trees,
                loss: None,
            });
        }
        Forest::new(mean, std, psi, roots, g.nodes, dim).map_err(FitError::Failed)
    }

    /// Fits on the last `train` values seen (no progress reporting, cannot be cancelled).
    fn fit_recent(&mut self) {
        let cancel = AtomicBool::new(false);
        let mut progress = |_: FitProgress| {};
        let mut ctl = FitControl {
            cancel: &cancel,
            progress: &mut progress,
        };
        let skip = self.recent.len().saturating_sub(self.train);
        let values: Vec<f64> = self.recent.iter().skip(skip).copied().collect();
        // Only fails on too little history, which the callers rule out; keep the old model if so.
        if let Ok(f) = self.fit_values(&values, &mut ctl) {
            self.forest = Some(f);
            self.reference = None;
            self.since_fit = 0;
        }
    }

    /// The isolation score of the window ending with the newest value, or `None` without a
    /// model or a full window.
    fn score_current(&mut self) -> Option<f64> {
        let forest = self.forest.as_ref()?;
        let len = self.recent.len();
        if len < self.window {
            return None;
        }
        let values = self.recent.iter().skip(len - self.window).copied();
        features(values, forest.mean, forest.std, &mut self.x);
        let raw = forest.isolation_score(&self.x);
        self.last_raw = Some(raw);
        Some(raw)
    }

    /// One value through the forest (buffer, fit, score, refit): its isolation score, or `None`
    /// where the forest has no opinion (no model yet, a non-finite value).
    fn step(&mut self, value: f64) -> Option<f64> {
        if !value.is_finite() {
            return None;
        }
        if self.recent.len() == self.keep() {
            self.recent.pop_front();
        }
        self.recent.push_back(value);
        if self.forest.is_none() {
            if self.recent.len() >= self.first_fit {
                self.fit_recent();
            }
            return None;
        }
        let raw = self.score_current();
        self.since_fit += 1;
        if self.refit_every > 0
            && self.since_fit >= self.refit_every
            && self.recent.len() >= self.first_fit
        {
            self.fit_recent();
        }
        raw
    }

    /// The detector's output for an isolation score: calibrated (streaming, `alarm` at 0.5) or
    /// mapped so `threshold` lands at 0.5 (seed). No opinion reads 0 when calibrated (never a
    /// detection) and 0.5 for the seed preset (as the replaced system did).
    fn output(&mut self, raw: Option<f64>) -> f64 {
        match (&mut self.calibrator, raw) {
            (None, None) => 0.5,
            (None, Some(r)) => map_score(r, self.threshold),
            (Some(_), None) => 0.0,
            (Some(c), Some(r)) => c.score(r),
        }
    }

    /// Makes `values` (oldest first) the recent history if none has been seen yet.
    fn adopt_recent(&mut self, values: &[f64]) -> bool {
        if !self.recent.is_empty() {
            return false;
        }
        let skip = values.len().saturating_sub(self.keep());
        self.recent.extend(values[skip..].iter().copied());
        true
    }
}

impl Detector for IsolationForest {
    fn update(&mut self, point: Point) -> f64 {
        let raw = self.step(point.value);
        self.output(raw)
    }

    fn warming_up(&self) -> bool {
        self.forest.is_none() || self.calibrator.as_ref().is_some_and(Calibrator::warming_up)
    }

    fn trainable(&mut self) -> Option<&mut dyn Trainable> {
        Some(self)
    }

    fn explain(&mut self) -> Option<Reason> {
        let raw = self.last_raw?;
        let forest = self.forest.as_ref()?;
        if self.reference.is_none() {
            // The windows of the latest `train` values (the training set of a self-fit).
            let vals: Vec<f64> = self.recent.iter().copied().collect();
            let skip = vals.len().saturating_sub(self.train);
            let vals = &vals[skip..];
            let mut x = vec![0.0; self.x.len()];
            let mut r: Vec<f32> = vals
                .windows(self.window)
                .map(|w| {
                    features(w.iter().copied(), forest.mean, forest.std, &mut x);
                    forest.isolation_score(&x) as f32
                })
                .collect();
            r.sort_unstable_by(f32::total_cmp);
            self.reference = Some(r);
        }
        let r = self.reference.as_deref().unwrap_or_default();
        let below = r.partition_point(|&s| f64::from(s) < raw);
        let pct = 100.0 * below as f64 / r.len().max(1) as f64;
        // s = 2^(−E[h] / c(ψ)), so the mean path length is −log2(s) · c(ψ).
        let path = -raw.max(f64::MIN_POSITIVE).log2() * forest.c_psi;
        Some(Reason {
            signal: "path_length".into(),
            excess: pct,
            text: format!(
                "mean path length {path:.1} is shorter than for {pct:.1} % of the recent windows \
                 (isolation score {raw:.3})"
            ),
        })
    }
}

impl Trainable for IsolationForest {
    fn fit(&mut self, history: &[Point], ctl: &mut FitControl<'_>) -> Result<(), FitError> {
        let finite: Vec<f64> = history
            .iter()
            .map(|p| p.value)
            .filter(|v| v.is_finite())
            .collect();
        let skip = finite.len().saturating_sub(self.train);
        let forest = self.fit_values(&finite[skip..], ctl)?;
        self.forest = Some(forest);
        self.reference = None;
        self.since_fit = 0;
        self.adopt_recent(&finite);
        Ok(())
    }

    fn is_fitted(&self) -> bool {
        self.forest.is_some()
    }

    fn keep_first_fit(&self) -> bool {
        self.refit_every == 0
    }

    fn save_state(&self) -> Option<Vec<u8>> {
        let f = self.forest.as_ref()?;
        let mut state = State {
            format: STATE_FORMAT.into(),
            version: STATE_VERSION,
            window: self.window,
            features: self.dim(),
            psi: f.psi,
            trees: f.roots.len(),
            seed: self.seed,
            train: self.train,
            mean: f.mean.to_bits(),
            std: f.std.to_bits(),
            roots: f.roots.clone(),
            feature: Vec::with_capacity(f.nodes.len()),
            next: Vec::with_capacity(f.nodes.len()),
            split: Vec::new(),
            recent: self.recent.iter().map(|v| v.to_bits()).collect(),
            since_fit: self.since_fit,
            calibration: self.calibrator.as_ref().map(Calibrator::to_words),
        };
        for (n, &size) in f.nodes.iter().zip(&f.sizes) {
            if n.feature == LEAF {
                state.feature.push(0);
                state.next.push(size);
            } else {
                state.feature.push(n.feature + 1);
                state.next.push(n.next);
                state.split.push(n.value.to_bits());
            }
        }
        serde_json::to_vec(&state).ok()
    }

    fn load_state(&mut self, bytes: &[u8]) -> Result<(), FitError> {
        let state: State =
            serde_json::from_slice(bytes).map_err(|e| FitError::BadState(e.to_string()))?;
        let (forest, recent) = state.validate(self.window, self.dim())?;
        let since_fit = state.since_fit;
        // Checked before anything changes; a detector that has scored keeps its own.
        if let (Some(c), Some(words)) = (&self.calibrator, &state.calibration) {
            let mut probe = c.clone();
            probe.restore(words).map_err(FitError::BadState)?;
            self.calibrator = Some(probe);
        }
        self.forest = Some(forest);
        self.reference = None;
        self.since_fit = if self.adopt_recent(&recent) {
            since_fit
        } else {
            0
        };
        Ok(())
    }
}

/// The isolation scores of `values` under `cfg`'s forest (fits and refits included), NaN where
/// the forest has no opinion: what [`super::calibrate::replay`] turns into the streaming
/// detector's output, so a search over calibration constants fits the forests once.
pub fn raw_scores(cfg: &IsolationForestConfig, values: &[f64]) -> Vec<f64> {
    let mut f = IsolationForest::new(cfg);
    values
        .iter()
        .map(|&v| f.step(v).unwrap_or(f64::NAN))
        .collect()
}

/// The persisted form (see the module documentation). `f64`s are stored as bit patterns.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    format: String,
    version: u32,
    window: usize,
    features: usize,
    psi: usize,
    trees: usize,
    seed: u64,
    train: usize,
    mean: u64,
    std: u64,
    roots: Vec<u32>,
    /// Per node: 0 for a leaf, else feature index + 1.
    feature: Vec<u32>,
    /// Per node: right child (internal) or size (leaf).
    next: Vec<u32>,
    /// Split of each internal node, in node order.
    split: Vec<u64>,
    recent: Vec<u64>,
    since_fit: usize,
    /// The calibration layer's state (streaming preset; absent in older states).
    #[serde(default)]
    calibration: Option<Vec<u64>>,
}

impl State {
    fn validate(&self, window: usize, dim: usize) -> Result<(Forest, Vec<f64>), FitError> {
        let bad = |m: String| Err(FitError::BadState(m));
        if self.format != STATE_FORMAT || self.version != STATE_VERSION {
            return bad(format!(
                "not an isolation-forest state of version {STATE_VERSION} ({} v{})",
                self.format, self.version
            ));
        }
        if self.window != window || self.features != dim {
            return bad(format!(
                "state is for window {} ({} features), this detector uses window {window} \
                 ({dim} features)",
                self.window, self.features
            ));
        }
        let n = self.feature.len();
        if self.next.len() != n || n == 0 {
            return bad("node arrays disagree".into());
        }
        if self.roots.len() != self.trees {
            return bad("tree count disagrees".into());
        }
        let mut splits = self.split.iter();
        let mut nodes = Vec::with_capacity(n);
        for (i, (&feature, &next)) in self.feature.iter().zip(&self.next).enumerate() {
            nodes.push(if feature == 0 {
                Node {
                    feature: LEAF,
                    next,
                    value: 0.0,
                }
            } else {
                let Some(&split) = splits.next() else {
                    return bad(format!("node {i} has no split"));
                };
                Node {
                    feature: feature - 1,
                    next,
                    value: f64::from_bits(split),
                }
            });
        }
        if splits.next().is_some() {
            return bad("more splits than internal nodes".into());
        }
        let recent: Vec<f64> = self.recent.iter().map(|&b| f64::from_bits(b)).collect();
        if recent.iter().any(|v| !v.is_finite()) {
            return bad("non-finite recent value".into());
        }
        let forest = Forest::new(
            f64::from_bits(self.mean),
            f64::from_bits(self.std),
            self.psi,
            self.roots.clone(),
            nodes,
            dim,
        )
        .map_err(FitError::BadState)?;
        Ok((forest, recent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_factor_known_values() {
        assert_eq!(c_factor(1), 0.0);
        assert_eq!(c_factor(2), 1.0);
        // 2 (ln 255 + γ) − 2·255/256
        assert!((c_factor(256) - 10.244_770_920_116_851).abs() < 1e-9);
    }

    #[test]
    fn mapping_puts_threshold_at_half_and_keeps_order() {
        for t in [0.3, 0.6, 0.9] {
            assert!((map_score(t, t) - 0.5).abs() < 1e-12);
            assert_eq!(map_score(0.0, t), 0.0);
            assert_eq!(map_score(1.0, t), 1.0);
            let mut prev = -1.0;
            for k in 0..=1000 {
                let s = map_score(k as f64 / 1000.0, t);
                assert!(s > prev, "not increasing at {k} for threshold {t}");
                prev = s;
            }
        }
    }

    #[test]
    fn rng_below_is_in_range_and_covers_it() {
        let mut r = Rng::new(7);
        let mut seen = [false; 5];
        for _ in 0..1000 {
            let k = r.below(5);
            seen[k] = true;
        }
        assert!(seen.iter().all(|&s| s));
        for _ in 0..1000 {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn features_of_a_ramp() {
        let mut out = [0.0; 5 + EXTRA_FEATURES];
        features((1..=5).map(f64::from), 3.0, 2.0, &mut out);
        assert_eq!(&out[..5], &[-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert_eq!(out[5], 0.0); // mean
        assert!((out[6] - 0.5f64.sqrt()).abs() < 1e-12); // std
        assert_eq!(out[7], 2.0); // range
        assert_eq!(out[8], 2.0); // last - first
        assert_eq!(out[9], 1.25); // last - mean(-1, -0.5, 0, 0.5)
        assert_eq!(out[10], 0.5); // last - previous
    }

    #[test]
    fn forest_validation_accepts_only_exact_pre_order_trees() {
        let leaf = |size| Node {
            feature: LEAF,
            next: size,
            value: 0.0,
        };
        let split = |next| Node {
            feature: 0,
            next,
            value: 0.5,
        };
        let build = |nodes: Vec<Node>, roots: Vec<u32>| Forest::new(0.0, 1.0, 4, roots, nodes, 3);
        let f = build(vec![split(2), leaf(1), split(4), leaf(1), leaf(2)], vec![0])
            .expect("valid tree");
        assert_eq!(f.heights, vec![2]);
        assert_eq!(f.nodes[4].next, 4, "leaves point to themselves");
        assert_eq!(f.nodes[4].value, 2.0 + c_factor(2));
        // Two trees, the second a single leaf.
        assert!(build(vec![split(2), leaf(1), leaf(1), leaf(4)], vec![0, 3]).is_ok());
        for (nodes, roots) in [
            (vec![split(2), leaf(1)], vec![0]), // right child past the end
            (vec![split(3), leaf(1), leaf(1)], vec![0]), // right child not next in order
            (vec![split(1), leaf(1), leaf(1)], vec![0]), // right child = left child
            (vec![leaf(1), leaf(1)], vec![0]),  // node after a finished tree
            (vec![split(2), leaf(1), leaf(1), leaf(1)], vec![0, 2]), // tree bounds overlap
            (vec![split(2), leaf(9), leaf(1)], vec![0]), // leaf larger than the sample
            (vec![leaf(1)], vec![1]),           // root not at 0
        ] {
            assert!(
                build(nodes.clone(), roots.clone()).is_err(),
                "{nodes:?} {roots:?}"
            );
        }
        let bad_feature = Node {
            feature: 3,
            ..split(2)
        };
        assert!(build(vec![bad_feature, leaf(1), leaf(1)], vec![0]).is_err());
        let nan_split = Node {
            value: f64::NAN,
            ..split(2)
        };
        assert!(build(vec![nan_split, leaf(1), leaf(1)], vec![0]).is_err());
    }

    #[test]
    fn trees_respect_height_limit_and_isolate_an_outlier() {
        let cfg = IsolationForestConfig {
            window: 1,
            train: 300,
            ..IsolationForestConfig::default()
        };
        let d = IsolationForest::new(&cfg);
        let mut values: Vec<f64> = (0..300).map(|i| ((i * 37) % 101) as f64 / 100.0).collect();
        values[150] = 10.0;
        let cancel = AtomicBool::new(false);
        let mut progress = |_: FitProgress| {};
        let mut ctl = FitControl {
            cancel: &cancel,
            progress: &mut progress,
        };
        let f = d.fit_values(&values, &mut ctl).expect("fit");
        assert_eq!(f.roots.len(), 100);
        assert_eq!(f.psi, 256);
        let mut x = vec![0.0; d.dim()];
        features([10.0].into_iter(), f.mean, f.std, &mut x);
        let outlier = f.isolation_score(&x);
        features([0.5].into_iter(), f.mean, f.std, &mut x);
        let inlier = f.isolation_score(&x);
        assert!(outlier > 0.6 && inlier < 0.5, "{outlier} {inlier}");
        // Depth never exceeds ceil(log2 256) = 8.
        fn depth(nodes: &[Node], i: usize) -> usize {
            if nodes[i].feature == LEAF {
                0
            } else {
                1 + depth(nodes, i + 1).max(depth(nodes, nodes[i].next as usize))
            }
        }
        for &r in &f.roots {
            assert!(depth(&f.nodes, r as usize) <= 8);
        }
    }
}
