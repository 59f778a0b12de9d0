//! The NAB v1.1 scoring rules, re-implemented from `../shared/docs/NAB_SCORING.md`.
//!
//! For one file of N rows, rows `i < P = min(floor(0.15 N), 750)` are probationary and ignored.
//! Each row has a *sweep weight*: inside a window `[a, b]` of width `W` it is
//! `scaledSigmoid(-(b - i + 1) / W) * A_TP / maxTP` (the window's first row earns exactly A_TP);
//! outside windows it is `-A_FP` before the first window ends and
//! `scaledSigmoid(|i - b'| / (W' - 1)) * A_FP` after the most recently ended window `[a', b']`.
//! At threshold θ a row is detected iff `score >= θ`; a file scores the sum of its detected
//! out-of-window weights plus, per window, the weight of its earliest detection or `-A_FN`.
//! The corpus score is the sum over files, normalised against the null detector and a perfect one.

use crate::nab::{CostMatrix, Window};

/// `scaledSigmoid(p)`: `-1` for `p > 3`, else `2 sigmoid(-5 p) - 1`. (NAB's current code says
/// `p >= 3`; the published results were made with `p > 3`, which differs exactly at `p = 3`.)
pub fn scaled_sigmoid(p: f64) -> f64 {
    if p > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * p).exp()) - 1.0
    }
}

/// Weight of a detection on a window's first row before scaling: `scaledSigmoid(-1)`.
pub fn max_tp() -> f64 {
    scaled_sigmoid(-1.0)
}

/// Number of probationary rows of a file with `n` rows.
pub fn probationary_len(n: usize) -> usize {
    let p = (0.15 * n as f64).floor().min(0.15 * 5000.0);
    p as usize
}

/// NAB's threshold at which nothing is detected; the optimiser's first candidate.
pub const NOTHING_DETECTED: f64 = 1.1;

/// Per-file labels in the form the scorer needs.
#[derive(Debug, Clone, PartialEq)]
pub struct FileLabels {
    pub n: usize,
    pub probation: usize,
    /// (first row, last row) of each window, in order.
    pub windows: Vec<(usize, usize)>,
}

/// Confusion counts over the scored (non-probationary) rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub tp: usize,
    pub tn: usize,
    pub fp: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.tp += o.tp;
        self.tn += o.tn;
        self.fp += o.fp;
        self.fn_ += o.fn_;
    }
}

/// One file's score at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FileScore {
    pub score: f64,
    #[serde(flatten)]
    pub counts: Counts,
}

/// A row's place relative to the windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowWeight {
    pub weight: f64,
    /// Index of the window the row lies in.
    pub window: Option<usize>,
}

impl FileLabels {
    pub fn new(n: usize, windows: &[Window]) -> Self {
        FileLabels {
            n,
            probation: probationary_len(n),
            windows: windows.iter().map(|w| (w.first_row, w.last_row)).collect(),
        }
    }

    /// Labels of every series of a corpus, in corpus order.
    pub fn for_corpus(corpus: &crate::nab::Corpus) -> Vec<FileLabels> {
        corpus
            .series
            .iter()
            .zip(&corpus.windows)
            .map(|(s, w)| FileLabels::new(s.len(), w))
            .collect()
    }

    /// Windows that have at least one scored row: they count in the score.
    pub fn scored_window(&self, k: usize) -> bool {
        self.windows[k].1 >= self.probation
    }

    pub fn scored_windows(&self) -> usize {
        (0..self.windows.len())
            .filter(|&k| self.scored_window(k))
            .count()
    }

    /// NAB's sweep weight of every row (`calcSweepScore`), probationary rows included.
    pub fn row_weights(&self, c: &CostMatrix) -> Vec<RowWeight> {
        let max_tp = max_tp();
        let mut out = Vec::with_capacity(self.n);
        let mut next = 0usize; // next window not yet ended
        let mut prev: Option<(usize, usize)> = None; // most recently ended window
        for i in 0..self.n {
            let inside = self.windows.get(next).filter(|&&(a, b)| a <= i && i <= b);
            let rw = match inside {
                Some(&(a, b)) => {
                    let width = (b - a + 1) as f64;
                    let p = -((b - i + 1) as f64) / width;
                    RowWeight {
                        weight: scaled_sigmoid(p) * c.tp / max_tp,
                        window: Some(next),
                    }
                }
                None => {
                    // Before any window has ended a false positive costs the full A_FP.
                    let unweighted = match prev {
                        None => -1.0,
                        Some((a, b)) => {
                            scaled_sigmoid(i.abs_diff(b) as f64 / ((b - a + 1) as f64 - 1.0))
                        }
                    };
                    RowWeight {
                        weight: unweighted * c.fp,
                        window: None,
                    }
                }
            };
            out.push(rw);
            if let Some(&(a, b)) = self.windows.get(next)
                && i == b
            {
                prev = Some((a, b));
                next += 1;
            }
        }
        out
    }

    /// The file's score and counts at `threshold` (detected iff score >= threshold).
    pub fn score(&self, scores: &[f64], threshold: f64, c: &CostMatrix) -> FileScore {
        let weights = self.row_weights(c);
        let mut parts = vec![-c.fn_; self.windows.len()];
        let mut fp_sum = 0.0;
        let mut counts = Counts::default();
        for (i, (rw, &s)) in weights.iter().zip(scores).enumerate().skip(self.probation) {
            let detected = s >= threshold;
            match (rw.window, detected) {
                (Some(k), true) => {
                    counts.tp += 1;
                    parts[k] = parts[k].max(rw.weight);
                }
                (Some(_), false) => counts.fn_ += 1,
                (None, true) => {
                    counts.fp += 1;
                    fp_sum += rw.weight;
                }
                (None, false) => counts.tn += 1,
            }
            debug_assert!(i >= self.probation);
        }
        let windows: f64 = (0..parts.len())
            .filter(|&k| self.scored_window(k))
            .map(|k| parts[k])
            .sum();
        FileScore {
            score: fp_sum + windows,
            counts,
        }
    }

    /// Per-row score contributions at `threshold`, as NAB's published results files carry them in
    /// their `S(t)_<profile>` columns: each detected out-of-window row holds its (negative) weight,
    /// each scored window's first row holds the window's term (earliest detection's weight, or
    /// `-A_FN`), every other row 0.
    pub fn contributions(&self, scores: &[f64], threshold: f64, c: &CostMatrix) -> Vec<f64> {
        let weights = self.row_weights(c);
        let mut out = vec![0.0; self.n];
        let mut parts = vec![-c.fn_; self.windows.len()];
        for (i, (rw, &s)) in weights.iter().zip(scores).enumerate().skip(self.probation) {
            if s < threshold {
                continue;
            }
            match rw.window {
                Some(k) => parts[k] = parts[k].max(rw.weight),
                None => out[i] = rw.weight,
            }
        }
        for (k, &(a, _)) in self.windows.iter().enumerate() {
            if self.scored_window(k) {
                out[a] = parts[k];
            }
        }
        out
    }
}

/// A candidate threshold and the corpus score it gives.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ThresholdScore {
    pub threshold: f64,
    pub score: f64,
}

/// NAB's exhaustive corpus-wide threshold optimisation (`optimizeThreshold`): scores the corpus at
/// 1.1 and at every distinct anomaly score, and returns the best; among equal scores the highest
/// threshold wins.
pub fn optimize_threshold(files: &[(&FileLabels, &[f64])], c: &CostMatrix) -> ThresholdScore {
    struct Pt {
        score: f64,
        weight: f64,
        window: Option<usize>,
    }
    let mut pts = Vec::new();
    let mut n_windows = 0usize;
    let mut scored = Vec::new();
    for (labels, scores) in files {
        let base = n_windows;
        for (rw, &s) in labels
            .row_weights(c)
            .iter()
            .zip(scores.iter())
            .skip(labels.probation)
        {
            pts.push(Pt {
                score: s,
                weight: rw.weight,
                window: rw.window.map(|k| base + k),
            });
        }
        for k in 0..labels.windows.len() {
            scored.push(labels.scored_window(k));
        }
        n_windows += labels.windows.len();
    }
    // Stable descending sort: ties keep corpus order, as Python's sorted(reverse=True) does.
    pts.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut parts = vec![-c.fn_; n_windows];
    let mut window_sum: f64 = scored.iter().filter(|&&s| s).count() as f64 * -c.fn_;
    let mut fp_sum = 0.0;
    let mut best = ThresholdScore {
        threshold: NOTHING_DETECTED,
        score: window_sum,
    };
    let mut cur = NOTHING_DETECTED;
    for p in &pts {
        if p.score != cur {
            let total = fp_sum + window_sum;
            if total > best.score {
                best = ThresholdScore {
                    threshold: cur,
                    score: total,
                };
            }
            cur = p.score;
        }
        match p.window {
            Some(k) => {
                let new = parts[k].max(p.weight);
                if scored[k] {
                    window_sum += new - parts[k];
                }
                parts[k] = new;
            }
            None => fp_sum += p.weight,
        }
    }
    let total = fp_sum + window_sum;
    if total > best.score {
        best = ThresholdScore {
            threshold: cur,
            score: total,
        };
    }
    best
}

/// `100 (raw - null) / (perfect - null)`.
pub fn normalize(raw: f64, null: f64, perfect: f64) -> f64 {
    100.0 * (raw - null) / (perfect - null)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STD: CostMatrix = CostMatrix {
        tp: 1.0,
        fp: 0.11,
        fn_: 1.0,
        tn: 1.0,
    };

    fn labels(n: usize, windows: &[(usize, usize)]) -> FileLabels {
        FileLabels {
            n,
            probation: probationary_len(n),
            windows: windows.to_vec(),
        }
    }

    fn spikes(n: usize, at: &[usize]) -> Vec<f64> {
        let mut v = vec![0.0; n];
        for &i in at {
            v[i] = 1.0;
        }
        v
    }

    #[test]
    fn probation_and_sigmoid_constants() {
        assert_eq!(probationary_len(4032), 604);
        assert_eq!(probationary_len(22695), 750);
        assert_eq!(probationary_len(5), 0);
        assert!((max_tp() - 0.986_614_298_151_430_5).abs() < 1e-15);
        assert_eq!(scaled_sigmoid(3.000_001), -1.0);
        assert!((scaled_sigmoid(3.0) + 0.999_999_388_2).abs() < 1e-9);
        assert!(scaled_sigmoid(0.0).abs() < 1e-15);
    }

    #[test]
    fn first_hit_in_window_earns_a_tp_and_later_hits_nothing() {
        let l = labels(1000, &[(500, 599)]);
        let first = l.score(&spikes(1000, &[500]), 0.5, &STD);
        assert!((first.score - 1.0).abs() < 1e-12, "{first:?}");
        let both = l.score(&spikes(1000, &[500, 550, 599]), 0.5, &STD);
        assert!((both.score - 1.0).abs() < 1e-12, "{both:?}");
        assert_eq!(both.counts.tp, 3);
        assert_eq!(both.counts.fp, 0);
        // A later first hit earns less, but still more than 0 on the last row.
        let late = l.score(&spikes(1000, &[599]), 0.5, &STD);
        assert!(late.score > 0.0 && late.score < 0.1, "{late:?}");
        let missed = l.score(&spikes(1000, &[]), 0.5, &STD);
        assert_eq!(missed.score, -1.0);
        assert_eq!(missed.counts.fn_, 100);
    }

    #[test]
    fn fp_before_first_window_costs_full_a_fp() {
        let l = labels(1000, &[(500, 599)]);
        let s = l.score(&spikes(1000, &[200]), 0.5, &STD);
        assert!((s.score - (-0.11 - 1.0)).abs() < 1e-12, "{s:?}");
        assert_eq!(s.counts.fp, 1);
    }

    #[test]
    fn fp_just_after_window_costs_little_and_far_after_costs_full() {
        let l = labels(1000, &[(500, 599)]);
        let near = l.score(&spikes(1000, &[500, 600]), 0.5, &STD).score - 1.0;
        assert!(near < 0.0 && near > -0.011, "near {near}");
        let far = l.score(&spikes(1000, &[500, 950]), 0.5, &STD).score - 1.0;
        assert!((far + 0.11).abs() < 1e-12, "far {far}");
    }

    #[test]
    fn probationary_rows_are_ignored() {
        let l = labels(1000, &[(500, 599)]);
        assert_eq!(l.probation, 150);
        let s = l.score(&spikes(1000, &[10, 149, 500]), 0.5, &STD);
        assert!((s.score - 1.0).abs() < 1e-12);
        assert_eq!(s.counts.fp, 0);
        assert_eq!(s.counts.tp + s.counts.tn + s.counts.fp + s.counts.fn_, 850);
    }

    #[test]
    fn threshold_below_every_score_detects_everything() {
        let l = labels(1000, &[(500, 599)]);
        let s = l.score(&vec![0.3; 1000], 0.1, &STD);
        assert_eq!(s.counts.tp, 100);
        assert_eq!(s.counts.fp, 750);
        assert_eq!(s.counts.tn + s.counts.fn_, 0);
    }

    #[test]
    fn optimizer_picks_best_and_highest_among_ties() {
        let l = labels(1000, &[(500, 599)]);
        // A clean hit at 0.9, and noise at 0.4 outside the window.
        let mut s = vec![0.0; 1000];
        s[500] = 0.9;
        s[300] = 0.4;
        let best = optimize_threshold(&[(&l, &s)], &STD);
        assert_eq!(best.threshold, 0.9);
        assert!((best.score - 1.0).abs() < 1e-12);
        // Every score equal: detecting all vs nothing; nothing (1.1) is better and wins.
        let flat = vec![0.5; 1000];
        let best = optimize_threshold(&[(&l, &flat)], &STD);
        assert_eq!(best.threshold, NOTHING_DETECTED);
        assert_eq!(best.score, -1.0);
    }

    #[test]
    fn contributions_place_window_terms_on_first_row() {
        let l = labels(1000, &[(500, 599)]);
        let c = l.contributions(&spikes(1000, &[550, 200, 10]), 0.5, &STD);
        assert!((c[200] + 0.11).abs() < 1e-12);
        assert_eq!(c[10], 0.0);
        assert_eq!(c[550], 0.0);
        assert!(c[500] > 0.0 && c[500] < 1.0);
        let total: f64 = c.iter().sum();
        let score = l.score(&spikes(1000, &[550, 200, 10]), 0.5, &STD).score;
        assert!((total - score).abs() < 1e-12);
    }
}
