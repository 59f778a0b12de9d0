//! A causal per-series calibration layer any detector can use: a raw score becomes the rarity
//! of its recent average among that series' own earlier averages.
//!
//! # Method
//!
//! A raw score `r_t` in [0, 1] (an isolation score, a mapped reconstruction error) means
//! different things on different series: 0.6 is ordinary on a noisy one and extreme on a calm
//! one, so no single corpus-wide threshold fits raw scores. The layer
//!
//! 1. averages the last `smooth` raw scores, `a_t` (1 = the raw score itself);
//! 2. asks how rare `a_t` is among the series' earlier averages: the tail probability
//!    `p_t = (weight of earlier a ≥ a_t + 1) / (total weight + 1)`, the weights decaying by
//!    `1/memory` per point (a histogram of 512 bins over [0, 1], in a Fenwick tree, so an update
//!    and a query cost O(log 512) and the state is fixed: 4 KB per series);
//! 3. outputs `−log10 p_t / log10(memory + 1)`, clamped to [0, 1]: 1 for an average above every
//!    one in memory, 0.5 for one exceeded by about one in √memory. A detector's output
//!    ([`Calibrator::score`]) maps that rarity so that `alarm` lands at 0.5, the flag threshold.
//!
//! `a_t` joins the histogram after it is scored (causal). The first `warmup` points only learn
//! (output 0). As `pulse` does, it can *rest* after an alarm (output ≥ `alarm`): scoring for NAB,
//! nothing scores during the `rest` points after one, so one event raises one alarm; live, an
//! alarm-strength point during a rest still scores.
//!
//! Written by hand: a Fenwick tree over a decayed histogram is thirty lines, and the crates that
//! keep streaming quantiles (t-digest, GK sketches) answer a different question (a quantile for
//! a rank, not a rank for a value) with more state.

use std::collections::VecDeque;

/// Histogram bins over [0, 1].
const BINS: usize = 512;
/// Renormalise the weights when the newest one passes this (keeps them finite).
const RESCALE_AT: f64 = 1e100;

/// The calibration layer's constants (one set per detector, for every series).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalibrationParams {
    /// Raw scores averaged before ranking (1 = none).
    pub smooth: usize,
    /// Memory of the distribution, in points.
    pub memory: f64,
    /// Points that only learn.
    pub warmup: usize,
    /// Output that starts a rest, and the rest's length in points.
    pub alarm: f64,
    pub rest: usize,
}

impl Default for CalibrationParams {
    fn default() -> Self {
        CalibrationParams {
            smooth: 1,
            memory: 5000.0,
            warmup: 150,
            alarm: 0.9,
            rest: 60,
        }
    }
}

impl CalibrationParams {
    /// Range checks; errors name the key under `table`.
    pub fn validate(&self, table: &str) -> Result<(), String> {
        let bad = |key: &str, v: String, range: &str| {
            Err(format!("{table} {key} = {v} is outside {range}"))
        };
        if !(1..=10_000).contains(&self.smooth) {
            return bad("smooth", self.smooth.to_string(), "1..=10000");
        }
        if !(self.memory.is_finite() && (2.0..=1e9).contains(&self.memory)) {
            return bad("memory", self.memory.to_string(), "2..=1e9");
        }
        if self.warmup > 10_000_000 {
            return bad("warmup", self.warmup.to_string(), "0..=10000000");
        }
        if !(self.alarm > 0.0 && self.alarm <= 1.0) {
            return bad("alarm", self.alarm.to_string(), "(0, 1]");
        }
        if self.rest > 10_000_000 {
            return bad("rest", self.rest.to_string(), "0..=10000000");
        }
        Ok(())
    }

    /// The constants as a TOML table named `table` (what `pulsewatch tune` prints).
    pub fn toml_block(&self, table: &str) -> String {
        format!(
            "[{table}]\nsmooth = {}\nmemory = {:?}\nwarmup = {}\nalarm = {:?}\nrest = {}\n",
            self.smooth, self.memory, self.warmup, self.alarm, self.rest
        )
    }
}

/// A `[… .calibration]` table as a config file writes it: only the keys it sets.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CalibrationPatch {
    smooth: Option<usize>,
    memory: Option<f64>,
    warmup: Option<usize>,
    alarm: Option<f64>,
    rest: Option<usize>,
}

/// Deserialises a calibration table over `base`, a detector's own defaults: a key the table
/// leaves out keeps the detector's value, not [`CalibrationParams::default`]'s (the isolation
/// forest's memory is 450, the generic prior's 5000). For `#[serde(deserialize_with)]`.
pub fn deserialize_over<'de, D: serde::Deserializer<'de>>(
    d: D,
    base: CalibrationParams,
) -> Result<CalibrationParams, D::Error> {
    let p = <CalibrationPatch as serde::Deserialize>::deserialize(d)?;
    Ok(CalibrationParams {
        smooth: p.smooth.unwrap_or(base.smooth),
        memory: p.memory.unwrap_or(base.memory),
        warmup: p.warmup.unwrap_or(base.warmup),
        alarm: p.alarm.unwrap_or(base.alarm),
        rest: p.rest.unwrap_or(base.rest),
    })
}

/// Maps a score in [0, 1] so that `t` lands at 0.5, piecewise linearly and order-preserving:
/// `[0, t] → [0, 0.5]`, `[t, 1] → [0.5, 1]`.
pub fn map_to_half(x: f64, t: f64) -> f64 {
    let t = if t.is_finite() {
        t.clamp(1e-6, 1.0 - 1e-6)
    } else {
        0.5
    };
    let s = if x <= t {
        0.5 * x / t
    } else {
        0.5 + 0.5 * (x - t) / (1.0 - t)
    };
    s.clamp(0.0, 1.0)
}

/// A detector's calibrated output for a series of raw scores (NaN = no opinion, output 0), as
/// [`Calibrator::score`] gives it point by point: what a search over the calibration constants
/// replays over cached raw scores.
pub fn replay(raw: &[f64], p: CalibrationParams, nab: bool) -> Vec<f64> {
    let mut c = Calibrator::new(p);
    c.nab = nab;
    raw.iter()
        .map(|&r| if r.is_nan() { 0.0 } else { c.score(r) })
        .collect()
}

/// The layer's state for one series. See the module documentation.
#[derive(Debug, Clone)]
pub struct Calibrator {
    p: CalibrationParams,
    /// Fenwick tree of bin weights (1-based).
    tree: Vec<f64>,
    total: f64,
    /// Weight of the next entry (grows by 1/(1 − 1/memory) per point instead of decaying all).
    weight: f64,
    growth: f64,
    recent: VecDeque<f64>,
    sum: f64,
    n: usize,
    since_alarm: Option<usize>,
    nab: bool,
}

impl Calibrator {
    pub fn new(p: CalibrationParams) -> Self {
        let memory = p.memory.max(1.0);
        Calibrator {
            p,
            tree: vec![0.0; BINS + 1],
            total: 0.0,
            weight: 1.0,
            growth: 1.0 / (1.0 - 1.0 / memory.max(1.0 + 1e-9)),
            recent: VecDeque::with_capacity(p.smooth.max(1) + 1),
            sum: 0.0,
            n: 0,
            since_alarm: None,
            nab: false,
        }
    }

    /// The learned state as words (f64s as IEEE-754 bit patterns), for a detector's saved
    /// model: the histogram, its total and next weight, the points seen, the rest counter and
    /// the recent raw scores.
    pub fn to_words(&self) -> Vec<u64> {
        let mut w: Vec<u64> = self.tree.iter().map(|x| x.to_bits()).collect();
        w.push(self.total.to_bits());
        w.push(self.weight.to_bits());
        w.push(self.n as u64);
        w.push(self.since_alarm.map_or(u64::MAX, |k| k as u64));
        w.push(self.recent.len() as u64);
        w.extend(self.recent.iter().map(|x| x.to_bits()));
        w
    }

    /// Restores [`Calibrator::to_words`]' state into a layer that has seen nothing yet (one that
    /// has keeps its own, as the detectors keep their own recent values); the constants stay
    /// this layer's. Errors say what is wrong and leave the layer as it was.
    pub fn restore(&mut self, words: &[u64]) -> Result<(), String> {
        if self.n > 0 {
            return Ok(());
        }
        let f = |b: u64| f64::from_bits(b);
        let fixed = BINS + 1 + 5;
        if words.len() < fixed {
            return Err(format!("calibration state has {} words", words.len()));
        }
        let tree: Vec<f64> = words[..=BINS].iter().map(|&b| f(b)).collect();
        let (total, weight) = (f(words[BINS + 1]), f(words[BINS + 2]));
        let n = words[BINS + 3] as usize;
        let since = words[BINS + 4];
        let k = words[BINS + 5] as usize;
        let recent: Vec<f64> = words[fixed..].iter().map(|&b| f(b)).collect();
        if tree.iter().any(|x| !x.is_finite() || *x < 0.0)
            || !(total.is_finite() && total >= 0.0)
            || !(weight.is_finite() && weight > 0.0)
        {
            return Err("calibration histogram is not finite and non-negative".into());
        }
        if recent.len() != k || k > self.p.smooth.max(1) || recent.iter().any(|x| !x.is_finite()) {
            return Err(format!(
                "calibration state holds {} recent scores for smooth {}",
                recent.len(),
                self.p.smooth
            ));
        }
        self.tree = tree;
        self.total = total;
        self.weight = weight;
        self.n = n;
        self.since_alarm = (since != u64::MAX).then_some(since as usize);
        self.sum = recent.iter().sum();
        self.recent = recent.into();
        Ok(())
    }

    /// Whether the layer is still in its learning-only warm-up.
    pub fn warming_up(&self) -> bool {
        self.n < self.p.warmup
    }

    /// Rests as NAB counts (see the module documentation).
    pub fn for_nab(mut self) -> Self {
        self.nab = true;
        self
    }

    fn bin(a: f64) -> usize {
        if a.is_nan() {
            return 0;
        }
        ((a.clamp(0.0, 1.0) * BINS as f64) as usize).min(BINS - 1)
    }

    fn add(&mut self, bin: usize, w: f64) {
        let mut i = bin + 1;
        while i <= BINS {
            self.tree[i] += w;
            i += i & i.wrapping_neg();
        }
        self.total += w;
    }

    /// Weight of bins `0..bin` (exclusive).
    fn below(&self, bin: usize) -> f64 {
        let mut i = bin;
        let mut s = 0.0;
        while i > 0 {
            s += self.tree[i];
            i -= i & i.wrapping_neg();
        }
        s
    }

    /// The detector output for `raw`: its rarity ([`Calibrator::update`]) mapped so that
    /// `alarm` lands at 0.5, the flag threshold.
    pub fn score(&mut self, raw: f64) -> f64 {
        let t = self.p.alarm;
        map_to_half(self.update(raw), t)
    }

    /// Rarity of the raw score `raw` (see the module documentation); then learns it.
    pub fn update(&mut self, raw: f64) -> f64 {
        self.n += 1;
        let smooth = self.p.smooth.max(1);
        let raw = if raw.is_finite() { raw } else { 1.0 };
        if self.recent.len() == smooth
            && let Some(old) = self.recent.pop_front()
        {
            self.sum -= old;
        }
        self.recent.push_back(raw);
        self.sum += raw;
        let a = self.sum / self.recent.len() as f64;
        let bin = Self::bin(a);
        // Weight at or above a's bin, counting a's own bin whole (conservative).
        let above = (self.total - self.below(bin)).max(0.0);
        let p = (above / self.weight + 1.0) / (self.total / self.weight + 1.0);
        // Scaled by what the memory holds so far (the decayed count, at most `memory`), so a
        // score above everything seen reads 1 on a short series too.
        let scale = (self.total / self.weight + 1.0)
            .log10()
            .max(f64::MIN_POSITIVE);
        let out = (-p.log10() / scale).clamp(0.0, 1.0);
        self.add(bin, self.weight);
        self.weight *= self.growth;
        if self.weight > RESCALE_AT {
            let k = 1.0 / self.weight;
            for t in &mut self.tree {
                *t *= k;
            }
            self.total *= k;
            self.weight = 1.0;
        }
        let alarm = out >= self.p.alarm;
        let resting = self.since_alarm.is_some_and(|k| k < self.p.rest);
        self.since_alarm = self.since_alarm.map(|k| k.saturating_add(1));
        if self.n <= self.p.warmup {
            return 0.0;
        }
        if alarm {
            self.since_alarm = Some(0);
        }
        if resting && (self.nab || !alarm) {
            return 0.0;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(i: usize) -> f64 {
        let x = (i as u64)
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) as f64 / (1u64 << 31) as f64
    }

    #[test]
    fn one_threshold_fits_a_calm_and_a_noisy_series() {
        // Raw scores around 0.3 ± 0.01 on one series and 0.6 ± 0.2 on another: the same
        // calibrated threshold flags the top of each, not everything on the noisy one.
        for (base, spread) in [(0.3, 0.02), (0.5, 0.4)] {
            let mut c = Calibrator::new(CalibrationParams::default());
            let mut high = 0;
            for i in 0..5000 {
                let out = c.update(base + spread * noise(i));
                if i > 1000 && out >= 0.9 {
                    high += 1;
                }
            }
            assert!(high < 60, "{base}: {high} of 4000 flagged");
            // A raw score above everything seen is as rare as the memory can tell: 1, whatever
            // the memory holds so far; the series' median reads about log 2 / log n.
            let mid = c.update(base + spread * 0.5);
            assert!(mid < 0.15, "{base}: median {mid}");
            let top = c.update(base + spread + 0.05);
            assert!((top - 1.0).abs() < 1e-9, "{base}: {top}");
        }
    }

    #[test]
    fn a_restored_layer_continues_exactly_and_bad_states_are_refused() {
        let p = CalibrationParams {
            smooth: 3,
            ..CalibrationParams::default()
        };
        let mut a = Calibrator::new(p);
        for i in 0..700 {
            a.update(noise(i));
        }
        let words = a.to_words();
        let mut b = Calibrator::new(p);
        b.restore(&words).expect("restores");
        for i in 700..900 {
            assert_eq!(a.update(noise(i)).to_bits(), b.update(noise(i)).to_bits());
        }
        // A layer that has seen points keeps its own state.
        let mut c = Calibrator::new(p);
        c.update(0.5);
        c.restore(&words).expect("ignored");
        assert_eq!(c.n, 1);
        let mut bad = words.clone();
        bad[3] = f64::NAN.to_bits();
        assert!(Calibrator::new(p).restore(&bad).is_err());
        assert!(Calibrator::new(p).restore(&words[..10]).is_err());
        let mut long = words.clone();
        long.push(0);
        assert!(Calibrator::new(p).restore(&long).is_err());
    }

    #[test]
    fn a_record_reads_one_on_a_series_shorter_than_the_memory() {
        // 300 points into a memory of 5000: a score above all of them is as rare as can be
        // told (the first version capped it at log 301 / log 5001 = 0.67).
        let mut c = Calibrator::new(CalibrationParams::default());
        for i in 0..300 {
            c.update(0.3 + 0.01 * noise(i));
        }
        assert!(c.update(0.9) > 0.999);
    }

    #[test]
    fn rests_for_nab_and_keeps_showing_alarms_live() {
        let params = CalibrationParams {
            rest: 10,
            memory: 500.0,
            ..CalibrationParams::default()
        };
        let mut live = Calibrator::new(params);
        let mut nab = Calibrator::new(params).for_nab();
        for i in 0..2000 {
            let r = 0.3 + 0.01 * noise(i);
            live.update(r);
            nab.update(r);
        }
        assert!(live.update(0.9) >= 0.9 && nab.update(0.9) >= 0.9);
        // A stronger point two steps later: NAB counts the first only, live shows both.
        live.update(0.3);
        nab.update(0.3);
        assert!(live.update(0.99) >= 0.9);
        assert_eq!(nab.update(0.99), 0.0);
    }

    #[test]
    fn state_is_bounded_and_output_in_unit_interval() {
        let mut c = Calibrator::new(CalibrationParams {
            memory: 10.0,
            ..CalibrationParams::default()
        });
        for i in 0..200_000 {
            let r = if i % 7 == 0 { f64::NAN } else { noise(i) };
            let out = c.update(r);
            assert!((0.0..=1.0).contains(&out), "{i}: {out}");
        }
        assert!(c.weight.is_finite() && c.total.is_finite());
        assert_eq!(c.tree.len(), BINS + 1);
    }
}
