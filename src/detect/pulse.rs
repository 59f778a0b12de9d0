//! `pulse`: our default streaming detector (design notes are filled in as it is tuned).

use std::collections::HashMap;
use std::collections::VecDeque;

use super::gaussian::normal_q;
use super::{Detector, Point};

/// Parameters (one set for every series).
#[derive(Debug, Clone, PartialEq)]
pub struct PulseParams {
    /// Points averaged into the short-term raw score (HTM uses 10).
    pub short: usize,
    /// History over which the distribution of short-term scores is estimated.
    pub history: usize,
    /// Points before likelihoods are reported (output 0.5 before).
    pub warmup: usize,
    /// Number of quantisation bins across the learnt range.
    pub bins: f64,
    /// Length of the context (previous bins) for sequence novelty.
    pub context: usize,
    /// Relative tolerance beyond the seen range that counts as a new extreme.
    pub spatial_tolerance: f64,
    /// Points after an alarm during which further alarms are damped.
    pub refractory: usize,
    /// Score level that counts as an alarm for the refractory period.
    pub alarm: f64,
    /// Which signals are on: [value, |diff|, short mean, short std, seasonal residual mean, seasonal |resid| ].
    pub enabled: [bool; 8],
    /// Points in the long short-term mean.
    pub long: usize,
    /// Points in the short window of seasonal residuals.
    pub season_short: usize,
    /// EWMA rate of the daily profile per day.
    pub profile_rate: f64,
    pub min_std: f64,
    pub calibrate: bool,
    pub weights: [f64; 8],
    pub season_gate: f64,
    pub lik_mode: u8,
    pub rest_mode: u8,
    pub damp: f64,
    pub lik_short: usize,
    pub lik_weight: f64,
    pub gate_power: f64,
    pub calib_history: f64,
    pub prior_rate: f64,
    pub prior_weight: f64,
    pub prior_excess: f64,
}

impl Default for PulseParams {
    fn default() -> Self {
        PulseParams {
            short: 10,
            history: 8640,
            warmup: 150,
            bins: 20.0,
            context: 4,
            spatial_tolerance: 0.05,
            refractory: 0,
            alarm: 0.5,
            enabled: [true; 8],
            long: 40,
            season_short: 6,
            profile_rate: 0.3,
            min_std: 1e-3,
            calibrate: false,
            weights: [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0],
            season_gate: 100.0,
            lik_mode: 0,
            rest_mode: 0,
            damp: 0.0,
            lik_short: 10,
            lik_weight: 0.01,
            gate_power: 0.0,
            calib_history: 5000.0,
            prior_rate: 0.01,
            prior_weight: 100.0,
            prior_excess: 0.1,
        }
    }
}

/// HTM-style anomaly likelihood over a raw score stream.
#[derive(Debug, Clone)]
struct Likelihood {
    short: VecDeque<f64>,
    short_sum: f64,
    hist: VecDeque<f64>,
    sum: f64,
    sumsq: f64,
    cap: usize,
    min_std: f64,
}

impl Likelihood {
    fn new(short: usize, cap: usize, min_std: f64) -> Self {
        Likelihood {
            short: VecDeque::with_capacity(short),
            short_sum: 0.0,
            hist: VecDeque::with_capacity(cap),
            sum: 0.0,
            sumsq: 0.0,
            cap,
            min_std,
        }
    }

    /// Feeds a raw score; returns the likelihood that the short-term average is unusually high.
    fn update(&mut self, raw: f64, short_len: usize) -> f64 {
        if self.short.len() == short_len {
            self.short_sum -= self.short.pop_front().unwrap_or(0.0);
        }
        self.short.push_back(raw);
        self.short_sum += raw;
        let m = self.short_sum / self.short.len() as f64;
        let l = if self.hist.len() >= 2 {
            let n = self.hist.len() as f64;
            let mean = self.sum / n;
            let var = (self.sumsq / n - mean * mean).max(0.0);
            let std = var.sqrt().max(self.min_std);
            (m - mean) / std
        } else {
            0.5
        };
        if self.hist.len() == self.cap
            && let Some(old) = self.hist.pop_front()
        {
            self.sum -= old;
            self.sumsq -= old * old;
        }
        self.hist.push_back(m);
        self.sum += m;
        self.sumsq += m * m;
        l
    }
}

/// HTM's log scaling: likelihood 0.99999 → 0.5, 0.9999999999 → 1.
fn log_score(l: f64) -> f64 {
    ((1.000_000_000_1 - l).ln() / (1.0f64 - 0.999_999_999_9).ln()).clamp(0.0, 1.0)
}

/// A record envelope: `hi`/`lo` track the extremes seen, relaxing towards the running mean at
/// `decay` per point, so old extremes are slowly forgotten.
#[derive(Debug, Clone)]
struct Envelope {
    hi: f64,
    lo: f64,
    mean: f64,
    n: usize,
}

impl Envelope {
    fn new() -> Self {
        Envelope { hi: f64::NEG_INFINITY, lo: f64::INFINITY, mean: 0.0, n: 0 }
    }
    /// Excess of `x` beyond the envelope as a fraction of its width (0 inside); then absorbs `x`.
    fn update(&mut self, x: f64, decay: f64, two_sided: bool, floor: f64) -> f64 {
        self.n += 1;
        let width = (self.hi - self.lo).max(floor);
        let ex = if self.n <= 1 {
            0.0
        } else if two_sided {
            ((x - self.hi).max(self.lo - x) / width).max(0.0)
        } else {
            ((x - self.hi) / width).max(0.0)
        };
        self.mean += (x - self.mean) / (self.n as f64).min(1.0 / decay.max(1e-12));
        self.hi = self.hi.max(x);
        self.lo = self.lo.min(x);
        self.hi -= decay * (self.hi - self.mean);
        self.lo += decay * (self.mean - self.lo);
        ex
    }
}

#[derive(Debug, Clone)]
pub struct Pulse {
    p: PulseParams,
    n: usize,
    prev: Option<f64>,
    env: [Envelope; 8],
    long_buf: VecDeque<f64>,
    long_sum: f64,
    week: VecDeque<f64>,
    week_short: VecDeque<f64>,
    week_sum: f64,
    last_ts: Option<i64>,
    dts: Vec<i64>,
    period: Option<usize>,
    profile: Vec<f64>,
    phase: usize,
    res_short: VecDeque<f64>,
    res_sum: f64,
    res_abs: f64,
    short: VecDeque<f64>,
    short_sum: f64,
    short_sq: f64,
    scale: f64,
    recent: VecDeque<f64>,
    /// Per feature: decayed count of points, of exceedances, and sum of excess.
    calib: [[f64; 3]; 8],
    /// Index of the feature behind the latest score (diagnostics).
    pub last_feature: usize,
    /// Decayed mean |seasonal residual| and mean |x - mean| (seasonality strength).
    season_err: f64,
    level_err: f64,
    lik: Likelihood,
}

impl Pulse {
    pub fn new(p: PulseParams) -> Self {
        Pulse {
            n: 0,
            prev: None,
            env: std::array::from_fn(|_| Envelope::new()),
            long_buf: VecDeque::new(),
            long_sum: 0.0,
            week: VecDeque::new(),
            week_short: VecDeque::new(),
            week_sum: 0.0,
            short: VecDeque::new(),
            short_sum: 0.0,
            short_sq: 0.0,
            scale: 0.0,
            recent: VecDeque::new(),
            calib: [[0.0; 3]; 8],
            last_feature: 0,
            season_err: 0.0,
            level_err: 0.0,
            lik: Likelihood::new(p.short, p.history, p.min_std),
            last_ts: None,
            dts: Vec::new(),
            period: None,
            profile: Vec::new(),
            phase: 0,
            res_short: VecDeque::new(),
            res_sum: 0.0,
            res_abs: 0.0,
            p,
        }
    }
}

impl Detector for Pulse {
    fn update(&mut self, pt: Point) -> f64 {
        let x = pt.value;
        self.n += 1;
        let p = &self.p;
        let decay = 1.0 / p.history as f64;
        let diff = self.prev.map_or(0.0, |q| (x - q).abs());
        self.prev = Some(x);
        if self.short.len() == p.short {
            let o = self.short.pop_front().unwrap_or(0.0);
            self.short_sum -= o;
            self.short_sq -= o * o;
        }
        self.short.push_back(x);
        self.short_sum += x;
        self.short_sq += x * x;
        let k = self.short.len() as f64;
        let smean = self.short_sum / k;
        let sstd = (self.short_sq / k - smean * smean).max(0.0).sqrt();
        self.scale += ((x.abs()) - self.scale) / (self.n as f64).min(p.history as f64);
        let floor = (self.scale * 1e-3).max(1e-9);
        // Sampling interval → daily period in points (causal: decided from the first deltas).
        if let Some(t0) = self.last_ts
            && self.period.is_none()
        {
            self.dts.push(pt.timestamp - t0);
            if self.dts.len() >= 50 {
                let mut d = self.dts.clone();
                d.sort_unstable();
                let med = d[d.len() / 2].max(1);
                let per = (86_400 / med) as usize;
                self.period = Some(if (4..=5000).contains(&per) { per } else { 0 });
            }
        }
        self.last_ts = Some(pt.timestamp);
        let (mut rmean, mut rabs) = (0.0, 0.0);
        if let Some(per) = self.period.filter(|&p| p > 0) {
            // Seasonal profile: an EWMA of the value at each phase of the day.
            if self.profile.len() != per {
                self.profile = vec![f64::NAN; per];
            }
            let phase = self.phase % per;
            self.phase += 1;
            let prof = self.profile[phase];
            if prof.is_finite() {
                let r = x - prof;
                let a = 1.0 / (self.n as f64).min(p.history as f64);
                self.season_err += (r.abs() - self.season_err) * a;
                self.level_err += ((x - self.env[0].mean).abs() - self.level_err) * a;
                if self.res_short.len() == p.season_short {
                    let o = self.res_short.pop_front().unwrap_or(0.0);
                    self.res_sum -= o;
                    self.res_abs -= o.abs();
                }
                self.res_short.push_back(r);
                self.res_sum += r;
                self.res_abs += r.abs();
                let k = self.res_short.len() as f64;
                rmean = self.res_sum / k;
                rabs = self.res_abs / k;
                self.profile[phase] = prof + p.profile_rate * (x - prof);
            } else {
                self.profile[phase] = x;
            }
        }
        let rho = self.season_err / self.level_err.max(1e-12);
        let season_gain = ((p.season_gate - rho) / p.season_gate).clamp(0.0, 1.0);
        if self.long_buf.len() == p.long {
            self.long_sum -= self.long_buf.pop_front().unwrap_or(0.0);
        }
        self.long_buf.push_back(x);
        self.long_sum += x;
        let lmean = self.long_sum / self.long_buf.len() as f64;
        let mut wmean = 0.0;
        if let Some(per) = self.period.filter(|&p| p > 0) {
            let wper = per * 7;
            if self.week.len() == wper {
                let r = x - self.week.pop_front().unwrap_or(x);
                if self.week_short.len() == p.season_short {
                    self.week_sum -= self.week_short.pop_front().unwrap_or(0.0);
                }
                self.week_short.push_back(r);
                self.week_sum += r;
                wmean = self.week_sum / self.week_short.len() as f64;
            }
            self.week.push_back(x);
        }
        let feats = [x, diff, smean, sstd, rmean, rabs, lmean, wmean];
        let two = [true, false, true, false, true, false, true, true];
        let mut u: f64 = 0.0;
        let cdecay = 1.0 - 1.0 / p.calib_history;
        for i in 0..8 {
            let ex = self.env[i].update(feats[i], decay, two[i], floor);
            let c = &mut self.calib[i];
            let surprise = if ex > 0.0 {
                let rate = (c[1] + p.prior_weight * p.prior_rate) / (c[0] + p.prior_weight);
                let mean_ex = (c[2] + p.prior_excess) / (c[1] + 1.0);
                -rate.ln() + ex / mean_ex
            } else {
                0.0
            };
            if self.n > p.warmup / 2 {
                c[0] = c[0] * cdecay + 1.0;
                if ex > 0.0 {
                    c[1] = c[1] * cdecay + 1.0;
                    c[2] = c[2] * cdecay + ex;
                } else {
                    c[1] *= cdecay;
                    c[2] *= cdecay;
                }
            }
            if p.enabled[i] {
                let g = if i == 4 || i == 5 || i == 7 { season_gain.powf(p.gate_power) } else { 1.0 };
                let v = g * p.weights[i] * if p.calibrate { surprise } else { ex };
                if v > u {
                    u = v;
                    self.last_feature = i;
                }
            }
        }
        let z = self.lik.update(u, p.lik_short);
        let u = match p.lik_mode {
            0 => u,
            1 => z.max(0.0),
            _ => u.max(p.lik_weight * z.max(0.0)),
        };
        let recent_max = self.recent.iter().copied().fold(0.0, f64::max);
        if self.recent.len() == p.refractory.max(1) {
            self.recent.pop_front();
        }
        self.recent.push_back(u);
        if self.n <= p.warmup {
            return 0.0;
        }
        let u = match p.rest_mode {
            0 => {
                if p.refractory > 0 && u <= recent_max * (1.0 + p.alarm) { u * p.damp } else { u }
            }
            _ => {
                // Rest: after an excess >= alarm, stay quiet for `refractory` points.
                if recent_max >= p.alarm { u * p.damp } else { u }
            }
        };
        1.0 - (-u / 10.0).exp()
    }
}
