//! `pulse`: pulsewatch's default streaming detector.
//!
//! # Method
//!
//! Every point updates eight cheap features and asks, for each, "is this beyond anything seen
//! lately?". A feature's *record envelope* holds the highest and lowest value it has taken, both
//! relaxing towards the feature's running mean by 1/(`history` × memory) per point (old extremes
//! fade slowly). A point's *excess* on a feature is how far it lies outside the envelope, as a
//! fraction of the envelope's width (0 inside). The features (window sizes are the defaults):
//!
//! | # | feature | sides |
//! |---|---|---|
//! | 0 | the value | both |
//! | 1 | the step `|x_t − x_{t−1}|` | up |
//! | 2 | mean of the last `short` (10) values | both |
//! | 3 | standard deviation of the last `short` values | up |
//! | 4 | mean of the last `season_short` (3) residuals from a daily profile | both |
//! | 5 | mean of the last `season_short` absolute daily-profile residuals | up |
//! | 6 | mean of the last `long` (60) values | both |
//! | 7 | change-point evidence: two-sided CUSUM | up |
//!
//! Every constant is a field of [`PulseParams`]; the defaults are the constants hand-tuned on
//! all 58 NAB files before the held-out protocol, with `reach` chosen by `pulsewatch tune`
//! (see [`PulseParams::default`]); `tune` starts from the round prior
//! ([`PulseParams::prior`]) and `docs/detectors.md` gives each procedure's held-out score.
//!
//! The daily profile is an EWMA (`profile_rate` per day) of the value at each time of day, kept
//! in at most 288 bins (5-minute resolution) whatever the sampling interval. The daily period in
//! points, 86,400 s over the median of the first 50 sampling intervals, sets the bins: one per
//! phase of the day up to 288 points a day (5-minute and coarser series, where every phase has a
//! value of its own), else 288, where a point's expected value is the linear interpolation
//! between the two nearest bins and its update is shared between them by the same weights (a
//! bin fed k points a day learns at the rate that gives `profile_rate` per day). The phase
//! counts points (a gap shifts it). Below 4 points a day the profile is off; features 4–5 are
//! switched off when the profile explains the series worse than `season_gate` × its plain
//! deviation from the mean (no daily rhythm).
//! Features 4–5 wait for the profile's first values and then learn 150 residuals before they
//! score, so their envelopes start from real residuals, not from zeros.
//!
//! Feature 7 is a Page CUSUM on the robustly normalised value `z = (x − m) / d`, where `m` and
//! `d` are EWMAs (`cusum_rate` per point) of the value and of its absolute deviation from `m`:
//! `g⁺ ← max(0, g⁺ + z − slack)`, `g⁻ ← max(0, g⁻ − z − slack)`, feature `max(g⁺, g⁻)`. It
//! accumulates a sustained shift that no single point makes extreme. Both sums restart from 0
//! after every alarm, so the envelope compares the evidence for a *new* shift with past records.
//!
//! The anomaly strength `u` is the largest weighted excess; `u ≥ alarm` is an *alarm*. An
//! alarm's point widens each envelope by at most `reach` widths past its edge, so one outlier
//! does not hide the next one of the same size (a sustained change still widens it
//! geometrically, point after point). Each envelope also keeps the extremes of its ordinary
//! points (those of no alarm), and what alarms added beyond them also relaxes towards those, over
//! `fade` × the envelope's memory: with `fade` = 1 an incident's range fades twice as fast as
//! ordinary records, so after an incident smaller events show again sooner (the shipped set and
//! the prior, which predate it, have it off: 10⁹; `docs/detectors.md` has the procedure that
//! tunes it). The first 150 points only learn (output 0). The score is `1 − 2^(−u/0.1)`:
//! monotone in `u`, 0 for nothing unusual, 0.5 at `u = 0.1`, → 1 for extreme events.
//!
//! **The rest, live and for NAB.** NAB rewards only the first detection in a window and charges
//! every false positive, so scored for NAB ([`Pulse::for_nab`], what `eval` and `tune` run) the
//! detector outputs 0 for the `rest` points after an alarm: one event, one alarm, unless a point
//! is `rest_break` (5) times stronger than the strongest point of the event so far (a markedly
//! stronger event is a new one: it alarms and starts a rest of its own). Live (the
//! engine, the TUI, spike tests) the rest only silences points below alarm strength: an incident
//! that goes on keeps showing, and a second one during the rest alarms.
//!
//! Causal by construction (each statistic is updated after the point is scored); O(1) time per
//! point and a fixed state of about 3 KB per series at any sampling interval (the profile's 288
//! bins are most of it).
//!
//! # Figures
//!
//! The design log (what was tried, with NAB figures) and the current scores are in
//! `docs/detectors.md`.

use std::collections::VecDeque;

use super::{Detector, Point, Reason};
use crate::num::{compact, half_at};

/// Number of features.
pub const NF: usize = 8;
/// Whether a feature is two-sided (both new highs and new lows count).
const TWO_SIDED: [bool; NF] = [true, false, true, false, true, false, true, false];
/// Points that only learn.
const WARMUP: usize = 150;
/// `fade` at or above this is off.
const FADE_OFF: f64 = 1e9;
/// Strength that maps to a score of 0.5.
const HALF: f64 = 0.1;
/// Sampling intervals used to find the daily period.
const PERIOD_SAMPLES: usize = 50;
/// Most bins of the daily profile (5-minute resolution).
pub const PROFILE_BINS: usize = 288;
/// Seconds in a day.
const DAY: i64 = 86_400;

/// `pulse`'s tunable constants: one set for every series (never per file). The defaults are
/// the set hand-tuned on the whole NAB corpus before the held-out protocol, with `reach` as
/// `pulsewatch tune` chose it ([`PulseParams::default`]); `docs/detectors.md` gives the
/// held-out figures of the procedures.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PulseParams {
    /// Feature weights (see the table above).
    pub weights: [f64; NF],
    /// Each feature's envelope memory, as a multiple of `history`.
    pub memory: [f64; NF],
    /// Envelope memory, in points.
    pub history: f64,
    /// Short window (features 2 and 3), in points.
    pub short: usize,
    /// Long window (feature 6), in points.
    pub long: usize,
    /// Residual window (features 4 and 5), in points.
    pub season_short: usize,
    /// EWMA rate of the daily profile, per day.
    pub profile_rate: f64,
    /// Seasonal features are used while mean |profile residual| < this × mean |x − mean|.
    pub season_gate: f64,
    /// CUSUM (feature 7): EWMA rate of the level and spread it normalises by.
    pub cusum_rate: f64,
    /// CUSUM slack, in spreads.
    pub cusum_slack: f64,
    /// Strength that starts a rest.
    pub alarm: f64,
    /// Length of the rest after an alarm, in points.
    pub rest: usize,
    /// How far past an envelope an alarm's point may widen it, in envelope widths.
    pub reach: f64,
    /// Scored for NAB, a point this many times stronger than the strongest point of the rest's
    /// event ends the rest and alarms (a markedly stronger event is a new one).
    pub rest_break: f64,
    /// What alarms added to an envelope beyond its ordinary points' extremes relaxes towards
    /// them over this many times the envelope's memory (1: an incident's range fades twice as
    /// fast as ordinary records; 10⁹ or more, the shipped set's and the prior's: off).
    pub fade: f64,
}

impl PulseParams {
    /// Every constant inside the range `tune` searches (`[detector.pulse] <key>` names it).
    pub fn validate(&self) -> Result<(), String> {
        use crate::eval::tune::Tunable;
        for (d, v) in Self::dims().iter().zip(self.to_vec()) {
            if !(v.is_finite() && v >= d.lo && v <= d.hi) {
                return Err(format!(
                    "[detector.pulse] {} = {v} is outside {}..={}",
                    d.name, d.lo, d.hi
                ));
            }
        }
        Ok(())
    }
}

impl PulseParams {
    /// The `[detector.pulse]` block of a config file holding these constants.
    pub fn toml_block(&self) -> String {
        #[derive(serde::Serialize)]
        struct Block {
            pulse: PulseParams,
        }
        #[derive(serde::Serialize)]
        struct Doc {
            detector: Block,
        }
        toml::to_string(&Doc {
            detector: Block { pulse: *self },
        })
        .unwrap_or_default()
    }

    /// Where `tune` starts by default: round constants fixed before the held-out protocol
    /// existed (every feature weighted and remembered alike; the windows, rates and rest at
    /// round values).
    pub fn prior() -> Self {
        PulseParams {
            weights: [1.0; NF],
            memory: [1.0; NF],
            history: 20_000.0,
            short: 10,
            long: 60,
            season_short: 3,
            profile_rate: 0.1,
            season_gate: 5.0,
            cusum_rate: 0.01,
            cusum_slack: 2.0,
            alarm: 0.15,
            rest: 60,
            reach: 1.0,
            rest_break: 5.0,
            fade: 1e9,
        }
    }
}

impl Default for PulseParams {
    /// The constants chosen before the held-out protocol (coordinate ascent and random search
    /// on all 58 NAB files), with `reach` = 1.6, which the protocol chose in four of five folds
    /// before the seasonal warm-up fix. See `docs/detectors.md` for why the protocol's own choice is
    /// not the default yet.
    fn default() -> Self {
        PulseParams {
            weights: [2.42, 0.63, 1.53, 0.266, 0.925, 0.333, 0.553, 0.396],
            memory: [1.0, 1.0, 0.505, 1.0, 0.854, 0.85, 0.71, 0.934],
            history: 19_220.0,
            short: 10,
            long: 58,
            season_short: 3,
            profile_rate: 0.158,
            season_gate: 4.68,
            cusum_rate: 0.0113,
            cusum_slack: 2.012,
            alarm: 0.1454,
            rest: 79,
            reach: 1.6,
            rest_break: 5.0,
            fade: 1e9,
        }
    }
}

/// Each feature's [`Reason::signal`] and the words for it.
const SIGNALS: [(&str, &str); NF] = [
    ("level", "value"),
    ("step", "step"),
    ("short_mean", "short mean"),
    ("spread", "short spread"),
    ("daily_residual", "daily-pattern residual"),
    ("daily_spread", "daily-pattern spread"),
    ("long_mean", "long mean"),
    ("level_shift", "level-shift evidence"),
];

/// The feature that set the latest strength: its index, excess, value and the envelope it was
/// measured against (before the point was absorbed).
#[derive(Debug, Clone, Copy, Default)]
struct Top {
    /// The point's value.
    x: f64,
    feature: usize,
    excess: f64,
    value: f64,
    lo: f64,
    hi: f64,
    /// For the level-shift feature: the evidence is for a shift down.
    down: bool,
}

/// Record envelope of one feature: extremes relaxing towards the running mean, and what alarms
/// added to them relaxing towards the extremes of ordinary points as well.
#[derive(Debug, Clone)]
struct Envelope {
    hi: f64,
    lo: f64,
    /// The extremes of ordinary points (no alarm, or the envelope's first `WARMUP`).
    ord_hi: f64,
    ord_lo: f64,
    mean: f64,
    n: usize,
}

impl Envelope {
    const fn new() -> Self {
        Envelope {
            hi: f64::NEG_INFINITY,
            lo: f64::INFINITY,
            ord_hi: f64::NEG_INFINITY,
            ord_lo: f64::INFINITY,
            mean: 0.0,
            n: 0,
        }
    }

    /// Excess of `x` beyond the envelope as a fraction of its width (0 inside), and the width.
    fn excess(&self, x: f64, two_sided: bool, floor: f64) -> (f64, f64) {
        let width = (self.hi - self.lo).max(floor);
        let ex = if self.n == 0 {
            0.0
        } else if two_sided {
            ((x - self.hi).max(self.lo - x) / width).max(0.0)
        } else {
            ((x - self.hi) / width).max(0.0)
        };
        (ex, width)
    }

    /// Absorbs `x` with a memory of `history` points. An alarm's point widens the envelope by at
    /// most `reach` × `width` (the width before it): one outlier does not hide the next one.
    /// What alarms' points added beyond the ordinary points' extremes also relaxes towards those
    /// extremes, over `fade` × `history` points (`None`: off), so an incident's range does not
    /// hide smaller events for the envelope's whole memory.
    fn absorb(&mut self, x: f64, history: f64, reach: Option<(f64, f64)>, fade: Option<f64>) {
        self.n += 1;
        let decay = 1.0 / history;
        self.mean += (x - self.mean) / (self.n as f64).min(history);
        let edge = match reach {
            Some((reach, width)) if self.n > WARMUP => {
                // min/max, not clamp: no panic on NaN bounds.
                x.min(self.hi + reach * width).max(self.lo - reach * width)
            }
            _ => x,
        };
        self.hi = self.hi.max(edge);
        self.lo = self.lo.min(edge);
        self.hi -= decay * (self.hi - self.mean);
        self.lo += decay * (self.mean - self.lo);
        let Some(fade) = fade else {
            return;
        };
        if reach.is_none() || self.n <= WARMUP {
            self.ord_hi = self.ord_hi.max(x);
            self.ord_lo = self.ord_lo.min(x);
        }
        self.ord_hi -= decay * (self.ord_hi - self.mean);
        self.ord_lo += decay * (self.mean - self.ord_lo);
        let pull = decay / fade;
        // The first point is ordinary (in the warm-up), so the ordinary extremes are finite.
        if self.hi > self.ord_hi {
            self.hi -= pull * (self.hi - self.ord_hi);
        }
        if self.lo < self.ord_lo {
            self.lo += pull * (self.ord_lo - self.lo);
        }
    }
}

/// A sliding window of `cap` values with their sum and a second sum: of squares, or of
/// absolute values.
#[derive(Debug, Clone)]
struct Window {
    buf: VecDeque<f64>,
    cap: usize,
    squares: bool,
    sum: f64,
    sum2: f64,
}

impl Window {
    fn new(cap: usize, squares: bool) -> Self {
        Window {
            buf: VecDeque::with_capacity(cap + 1),
            cap,
            squares,
            sum: 0.0,
            sum2: 0.0,
        }
    }
    fn second(&self, x: f64) -> f64 {
        if self.squares { x * x } else { x.abs() }
    }
    fn push(&mut self, x: f64) {
        if self.buf.len() == self.cap
            && let Some(old) = self.buf.pop_front()
        {
            self.sum -= old;
            self.sum2 -= self.second(old);
        }
        self.buf.push_back(x);
        self.sum += x;
        self.sum2 += self.second(x);
    }
    fn mean(&self) -> f64 {
        self.sum / self.buf.len().max(1) as f64
    }
    fn mean2(&self) -> f64 {
        self.sum2 / self.buf.len().max(1) as f64
    }
}

/// Two-sided Page CUSUM on the value normalised by EWMAs of its level and absolute deviation.
#[derive(Debug, Clone)]
struct Cusum {
    level: f64,
    spread: f64,
    up: f64,
    down: f64,
    n: usize,
}

impl Cusum {
    const fn new() -> Self {
        Cusum {
            level: 0.0,
            spread: 0.0,
            up: 0.0,
            down: 0.0,
            n: 0,
        }
    }

    /// The evidence for a shift up or down after `x` (the larger sum); then learns `x`.
    fn update(&mut self, x: f64, rate: f64, slack: f64) -> f64 {
        self.n += 1;
        let g = if self.n > 1 && self.spread > 0.0 {
            let z = (x - self.level) / self.spread;
            self.up = (self.up + z - slack).max(0.0);
            self.down = (self.down - z - slack).max(0.0);
            self.up.max(self.down)
        } else {
            0.0
        };
        if self.n == 1 {
            self.level = x;
        } else {
            let rate = rate.max(1.0 / self.n as f64);
            self.spread += ((x - self.level).abs() - self.spread) * rate;
            self.level += (x - self.level) * rate;
        }
        g
    }

    /// Restarts the sums (after an alarm); the level and spread are kept.
    fn restart(&mut self) {
        self.up = 0.0;
        self.down = 0.0;
    }
}

/// The default detector. See the module documentation.
#[derive(Debug, Clone)]
pub struct Pulse {
    n: usize,
    prev: Option<f64>,
    env: [Envelope; NF],
    short: Window,
    long: Window,
    scale: f64,
    /// Sampling intervals seen so far, until the daily period is known.
    last_ts: Option<i64>,
    intervals: Vec<i64>,
    /// Daily period in points (0: none usable).
    period: Option<usize>,
    /// The daily profile: `min(period, PROFILE_BINS)` bins over the day (NaN: not seen yet).
    profile: Vec<f64>,
    /// EWMA rate per update of a bin (0.158 per day over the points a bin sees a day).
    profile_rate: f64,
    /// Points since the profile started (the phase of the day, in points).
    phase: usize,
    residuals: Window,
    season_err: f64,
    level_err: f64,
    cusum: Cusum,
    /// Points since the last one with an alarm-strength `u` (`None`: none yet): the rest.
    since_alarm: Option<usize>,
    /// Strength of the strongest point of the current rest (what a rest-breaking point must
    /// exceed `rest_break` times).
    alarm_u: f64,
    p: PulseParams,
    /// Scoring for NAB: the rest zeroes every point (else only points below alarm strength).
    nab: bool,
    /// What set the latest point's strength (for [`Detector::explain`]).
    top: Option<Top>,
}

impl Default for Pulse {
    fn default() -> Self {
        Self::new()
    }
}

impl Pulse {
    pub fn new() -> Self {
        Self::with_params(PulseParams::default())
    }

    /// A detector with other constants (`pulsewatch tune` and `eval --folds` search them).
    pub fn with_params(p: PulseParams) -> Self {
        Pulse {
            n: 0,
            prev: None,
            env: [const { Envelope::new() }; NF],
            short: Window::new(p.short.max(1), true),
            long: Window::new(p.long.max(1), false),
            scale: 0.0,
            last_ts: None,
            intervals: Vec::with_capacity(PERIOD_SAMPLES),
            period: None,
            profile: Vec::new(),
            profile_rate: p.profile_rate,
            phase: 0,
            residuals: Window::new(p.season_short.max(1), false),
            season_err: 0.0,
            level_err: 0.0,
            cusum: Cusum::new(),
            since_alarm: None,
            alarm_u: 0.0,
            p,
            nab: false,
            top: None,
        }
    }

    /// Scores as NAB counts: nothing during the rest after an alarm, so one event raises one
    /// alarm. Live (the default), an alarm-strength point during a rest still scores.
    pub fn for_nab(mut self) -> Self {
        self.nab = true;
        self
    }

    /// Learns the daily period from the first sampling intervals.
    fn observe_time(&mut self, ts: i64) {
        if let Some(t0) = self.last_ts
            && self.period.is_none()
        {
            self.intervals.push(ts - t0);
            if self.intervals.len() >= PERIOD_SAMPLES {
                self.intervals.sort_unstable();
                let median = self.intervals[self.intervals.len() / 2].max(1);
                let per = usize::try_from(DAY / median).unwrap_or(0);
                let per = if per >= 4 { per } else { 0 };
                self.period = Some(per);
                if per > 0 {
                    let bins = per.min(PROFILE_BINS);
                    self.profile = vec![f64::NAN; bins];
                    // A bin sees per/bins points a day; compound them to the daily rate.
                    let k = per as f64 / bins as f64;
                    self.profile_rate = 1.0 - (1.0 - self.p.profile_rate).powf(1.0 / k);
                }
                self.intervals = Vec::new();
            }
        }
        self.last_ts = Some(ts);
    }

    /// Residual from the daily profile: (mean residual, mean |residual|) over `season_short` points.
    fn seasonal(&mut self, x: f64) -> Option<(f64, f64)> {
        let bins = self.profile.len();
        let per = self.period.unwrap_or(0);
        if bins == 0 || per == 0 {
            return None;
        }
        // Position on the day in bins: phase p of `per` sits at p × bins / per.
        let phase = self.phase % per;
        self.phase += 1;
        let pos = phase as f64 * bins as f64 / per as f64;
        let b0 = (pos.floor() as usize).min(bins - 1);
        let b1 = (b0 + 1) % bins;
        let w = (pos - b0 as f64).clamp(0.0, 1.0);
        let (p0, p1) = (self.profile[b0], self.profile[b1]);
        let prof = match (p0.is_finite(), p1.is_finite() && w > 0.0) {
            (true, true) => p0 + w * (p1 - p0),
            (true, false) => p0,
            (false, true) => p1,
            (false, false) => {
                self.profile[b0] = x;
                if w > 0.0 && !p1.is_finite() {
                    self.profile[b1] = x;
                }
                return None;
            }
        };
        let r = x - prof;
        let a = 1.0 / (self.n as f64).min(self.p.history);
        self.season_err += (r.abs() - self.season_err) * a;
        self.level_err += ((x - self.env[0].mean).abs() - self.level_err) * a;
        self.residuals.push(r);
        let rate = self.profile_rate;
        for (b, share) in [(b0, 1.0 - w), (b1, w)] {
            if share > 0.0 {
                let p = &mut self.profile[b];
                *p = if p.is_finite() {
                    *p + rate * share * (x - *p)
                } else {
                    x
                };
            }
        }
        Some((self.residuals.mean(), self.residuals.mean2()))
    }
}

impl Detector for Pulse {
    fn warming_up(&self) -> bool {
        self.n <= WARMUP
    }

    fn update(&mut self, pt: Point) -> f64 {
        let x = pt.value;
        self.n += 1;
        self.observe_time(pt.timestamp);
        let step = self.prev.map_or(0.0, |q| (x - q).abs());
        self.prev = Some(x);
        self.short.push(x);
        self.long.push(x);
        let short_mean = self.short.mean();
        let short_std = (self.short.mean2() - short_mean * short_mean)
            .max(0.0)
            .sqrt();
        self.scale += (x.abs() - self.scale) / (self.n as f64).min(self.p.history);
        let floor = (self.scale * 1e-3).max(1e-9);
        // No residual yet (no profile, or its first day): the seasonal features wait.
        let residual = self.seasonal(x);
        let (res_mean, res_abs) = residual.unwrap_or((0.0, 0.0));
        let seasonal_on = self.season_err < self.p.season_gate * self.level_err.max(1e-12);
        let shift = self.cusum.update(x, self.p.cusum_rate, self.p.cusum_slack);
        let shift_down = self.cusum.down > self.cusum.up;
        let feats = [
            x,
            step,
            short_mean,
            short_std,
            res_mean,
            res_abs,
            self.long.mean(),
            shift,
        ];
        let mut u: f64 = 0.0;
        self.top = None;
        let mut widths = [0.0; NF];
        for (i, &f) in feats.iter().enumerate() {
            let (ex, width) = self.env[i].excess(f, TWO_SIDED[i], floor);
            widths[i] = width;
            // The seasonal envelopes start a day late: they learn WARMUP residuals first.
            if (i == 4 || i == 5) && (!seasonal_on || residual.is_none() || self.env[i].n < WARMUP)
            {
                continue;
            }
            let w = self.p.weights[i];
            if w * ex > u {
                u = w * ex;
                self.top = Some(Top {
                    x,
                    feature: i,
                    excess: ex,
                    value: f,
                    lo: self.env[i].lo,
                    hi: self.env[i].hi,
                    down: shift_down,
                });
            }
        }
        let alarm = u >= self.p.alarm;
        let fade = (self.p.fade < FADE_OFF).then_some(self.p.fade);
        for (i, &f) in feats.iter().enumerate() {
            let reach = alarm.then_some((self.p.reach, widths[i]));
            if (i == 4 || i == 5) && residual.is_none() {
                continue;
            }
            self.env[i].absorb(f, self.p.history * self.p.memory[i], reach, fade);
        }
        // A point markedly stronger than the event so far is a new event: it ends the rest.
        let resting = self.since_alarm.is_some_and(|k| k < self.p.rest)
            && u < self.p.rest_break * self.alarm_u;
        self.since_alarm = self.since_alarm.map(|k| k.saturating_add(1));
        if alarm {
            self.cusum.restart();
            self.since_alarm = Some(0);
            // The event's peak so far: a rest goes on from the strongest point in it.
            self.alarm_u = if resting { self.alarm_u.max(u) } else { u };
        }
        // The rest is NAB's bookkeeping (one alarm per event); live, an alarm-strength point
        // during a rest still shows (an incident that goes on, or a second one).
        if self.n <= WARMUP || (resting && (self.nab || !alarm)) {
            return 0.0;
        }
        half_at(u, HALF)
    }

    fn explain(&mut self) -> Option<Reason> {
        if self.n <= WARMUP {
            return None;
        }
        self.reason()
    }
}

impl Pulse {
    /// The reason of the latest point (see [`Detector::explain`]).
    fn reason(&self) -> Option<Reason> {
        let t = self.top?;
        let (signal, words) = SIGNALS[t.feature];
        let side = if t.value < t.lo { "below" } else { "above" };
        let words = match (t.feature, t.down) {
            (2 | 3, _) => format!("{}-point {}", self.p.short, &words[6..]),
            (6, _) => format!("{}-point mean", self.p.long),
            (7, true) => format!("{words} (a shift down)"),
            (7, false) => format!("{words} (a shift up)"),
            _ => words.to_string(),
        };
        let value = if t.feature == 0 {
            String::new()
        } else {
            format!("value {}: ", compact(t.x))
        };
        Some(Reason {
            signal: signal.to_string(),
            excess: t.excess,
            text: format!(
                "{value}{words} {} {side} its recent range {}..{} by {:.1}x the range",
                compact(t.value),
                compact(t.lo),
                compact(t.hi),
                t.excess
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(d: &mut Pulse, i: usize, v: f64) -> f64 {
        d.update(Point {
            timestamp: i as i64 * 300,
            value: v,
        })
    }

    fn noise(i: usize) -> f64 {
        // Deterministic pseudo-noise in [-1, 1].
        let x = (i as u64)
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((x >> 33) as f64 / (1u64 << 31) as f64) - 1.0
    }

    #[test]
    fn quiet_on_a_repeating_day_and_loud_on_a_spike() {
        let mut d = Pulse::new();
        let day = |i: usize| {
            10.0 + 5.0 * (i as f64 * std::f64::consts::TAU / 288.0).sin() + 0.2 * noise(i)
        };
        let mut max_normal: f64 = 0.0;
        for i in 0..288 * 10 {
            let s = feed(&mut d, i, day(i));
            if i > 288 * 3 {
                max_normal = max_normal.max(s);
            }
        }
        let spike = feed(&mut d, 2880, day(2880) + 30.0);
        assert!(spike > 0.99, "spike scored {spike}");
        assert!(max_normal < 0.5, "normal days scored up to {max_normal}");
        // On a daily wave the spike stands out most against the daily pattern.
        let why = d.explain().expect("a reason for the spike");
        assert_eq!(why.signal, "daily_residual", "{why:?}");
        assert!(why.excess > 1.0, "{why:?}");
        assert!(
            why.text.starts_with("value 39.9: ")
                && why
                    .text
                    .contains("daily-pattern residual 10.0 above its recent range"),
            "{}",
            why.text
        );
        // Live, an incident that goes on keeps showing; scored for NAB, the rest after the
        // alarm hides it (one event, one alarm).
        let mut nab = Pulse::new().for_nab();
        for i in 0..=2880 {
            let v = if i == 2880 { day(i) + 30.0 } else { day(i) };
            feed(&mut nab, i, v);
        }
        assert!(feed(&mut d, 2881, day(2881) + 30.0) > 0.5);
        assert_eq!(feed(&mut nab, 2881, day(2881) + 30.0), 0.0);
    }

    #[test]
    fn an_incident_s_range_fades_sooner_than_ordinary_records() {
        // One envelope: noise at 10 ± 1, a five-point burst up to 60, then 10,000 ordinary
        // points. `alarmed`: the burst's points alarmed (each may widen it by `reach` = 1).
        let run = |alarmed: bool| {
            let mut e = Envelope::new();
            let mut i = 0;
            for _ in 0..1000 {
                e.absorb(10.0 + noise(i), 20_000.0, None, Some(1.0));
                i += 1;
            }
            for k in 0..5 {
                let (_, width) = e.excess(0.0, true, 1e-9);
                e.absorb(
                    20.0 + 10.0 * k as f64,
                    20_000.0,
                    alarmed.then_some((1.0, width)),
                    Some(1.0),
                );
            }
            let peak = e.hi;
            for _ in 0..10_000 {
                e.absorb(10.0 + noise(i), 20_000.0, None, Some(1.0));
                i += 1;
            }
            (peak, e.hi)
        };
        let (peak, faded) = run(true);
        assert!(peak > 35.0, "the burst widened the envelope to {peak}");
        assert!(
            faded < 25.0,
            "an alarmed burst's range still reaches {faded}"
        );
        // Learnt as ordinary points, the same burst fades at the envelope's own rate only.
        let (_, kept) = run(false);
        assert!(kept > 38.0, "an ordinary burst's range fell to {kept}");
        // End to end, the value's envelope alone (the other features weighted 0), one point a
        // day (no daily profile): with `fade` = 1, 30 is a new high again; with it off (the
        // prior's 10⁹) it is not.
        let end_to_end = |fade: f64| {
            let mut weights = [0.0; NF];
            weights[0] = 1.0;
            let mut d = Pulse::with_params(PulseParams {
                fade,
                weights,
                ..PulseParams::prior()
            });
            let mut i = 0;
            let mut feed = |v: f64| {
                i += 1;
                d.update(Point {
                    timestamp: i * DAY,
                    value: v,
                })
            };
            (0..1000).for_each(|k| {
                feed(10.0 + noise(k));
            });
            (0..5).for_each(|k| {
                feed(20.0 + 10.0 * k as f64);
            });
            let quiet = (0..10_000)
                .map(|k| feed(10.0 + noise(k)))
                .skip(100)
                .fold(0.0, f64::max);
            let s = feed(30.0);
            (quiet, s, d.explain().map(|r| r.signal))
        };
        let (quiet, s, why) = end_to_end(1.0);
        assert!(quiet < 0.5, "ordinary points scored up to {quiet}");
        assert!(
            s > 0.5 && why.as_deref() == Some("level"),
            "30 scored {s}: {why:?}"
        );
        let (_, off, _) = end_to_end(1e9);
        assert!(off < 0.5, "with fade off 30 scored {off}");
    }

    #[test]
    fn scored_for_nab_only_a_markedly_stronger_event_ends_the_rest() {
        let run = |p: PulseParams| {
            let mut nab = Pulse::with_params(p).for_nab();
            let mut out = Vec::new();
            for i in 0..3020 {
                let v = match i {
                    3000 | 3005 => 13.0,
                    3010 => 310.0,
                    _ => 10.0 + 0.5 * noise(i),
                };
                let s = feed(&mut nab, i, v);
                if matches!(i, 3000 | 3005 | 3010) {
                    out.push(s);
                }
            }
            out
        };
        let s = run(PulseParams::default());
        assert!(s[0] > 0.9, "the first spike alarms: {s:?}");
        // A second spike of the same size is the same event (the rest hides it); one a hundred
        // times larger is a new one.
        assert_eq!(s[1], 0.0, "{s:?}");
        assert!(s[2] > 0.9, "{s:?}");
        let never = PulseParams {
            rest_break: 1e9,
            ..PulseParams::default()
        };
        assert_eq!(run(never)[2], 0.0);
    }

    #[test]
    fn a_sustained_shift_is_explained_by_a_slow_signal() {
        let mut d = Pulse::new();
        for i in 0..3000 {
            feed(&mut d, i, 10.0 + 0.5 * noise(i));
        }
        // A step down of 1.5 (three times the noise) held: no single point is extreme.
        let mut first = None;
        for i in 3000..3100 {
            if feed(&mut d, i, 8.5 + 0.5 * noise(i)) >= 0.5 {
                first = d.explain();
                break;
            }
        }
        let why = first.expect("the shift is flagged");
        assert_ne!(why.signal, "step", "{why:?}");
        // Down: a value below its range, or the evidence for a shift down.
        assert!(
            why.text.contains(" below its recent range") || why.text.contains("(a shift down)"),
            "{}",
            why.text
        );
    }

    #[test]
    fn scores_stay_in_unit_interval_on_degenerate_input() {
        let mut d = Pulse::new();
        for (i, v) in [0.0, 0.0, 1e300, -1e300, 0.0, 5e-324, 1.0]
            .iter()
            .cycle()
            .take(2000)
            .enumerate()
        {
            let s = feed(&mut d, i, *v);
            assert!((0.0..=1.0).contains(&s), "point {i}: {s}");
        }
        let mut flat = Pulse::new();
        for i in 0..1000 {
            assert_eq!(feed(&mut flat, i, 7.0), 0.0);
        }
        assert!(feed(&mut flat, 1000, 7.5) > 0.99);
    }

    #[test]
    fn daily_period_follows_the_sampling_interval() {
        let mut d = Pulse::new();
        for i in 0..60 {
            d.update(Point {
                timestamp: i * 1800,
                value: 1.0,
            });
        }
        assert_eq!(d.period, Some(48));
        assert_eq!(d.profile.len(), 48);
    }

    #[test]
    fn profile_state_is_bounded_at_any_sampling_interval() {
        // 2-second samples: 43,200 points a day, still 288 bins, and the daily wave is learnt
        // (the profile explains the wave far better than the plain level does).
        let mut d = Pulse::new();
        let wave = |t: i64| 100.0 + 40.0 * (t as f64 * std::f64::consts::TAU / 86_400.0).sin();
        let mut t = 0;
        while t < 3 * 86_400 {
            d.update(Point {
                timestamp: t,
                value: wave(t) + noise(t as usize),
            });
            t += 2;
        }
        assert_eq!(d.period, Some(43_200));
        assert_eq!(d.profile.len(), PROFILE_BINS);
        assert!(d.profile.iter().all(|p| p.is_finite()));
        assert!(
            d.season_err < 0.2 * d.level_err,
            "profile error {} vs level error {}",
            d.season_err,
            d.level_err
        );
        // Interpolated between bins: half-way between two bins the profile is close to the wave.
        let t = 3 * 86_400 + 150;
        let pos = (t % 86_400) as f64 * PROFILE_BINS as f64 / 86_400.0;
        assert!(pos.fract() > 0.4 && pos.fract() < 0.6);
        let b = pos.floor() as usize;
        let interp = d.profile[b] + (pos - b as f64) * (d.profile[b + 1] - d.profile[b]);
        assert!((interp - wave(t)).abs() < 2.0, "{interp} vs {}", wave(t));
    }
}
