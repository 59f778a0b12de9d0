//! Regularisation: turns a raw, messy series (unsorted, duplicated, irregular, with gaps) into
//! values on a regular time grid, which is what every model here expects.
//!
//! What [`regularise`] does, in order:
//!
//! 1. **Checks** the input: as many timestamps as values, at least one point, every value finite.
//! 2. **Sorts** the points by timestamp (stable), so a series that steps backwards (NAB's
//!    `machine_temperature_system_failure.csv` repeats an hour) is handled like any other.
//! 3. **Step**: the grid's interval is the *median* of the positive differences between
//!    consecutive distinct timestamps (NAB: 5 min, 10 min, 30 min for `nyc_taxi`, 1 h for
//!    `realAdExchange`), so occasional gaps and jitter do not change it.
//! 4. **Grid**: anchored at the *last* timestamp and stepping back by the interval, so the newest
//!    observation sits exactly on the grid and forecast timestamps (`last + k·step`) continue it.
//!    Every point goes to its nearest grid slot; points sharing a slot (duplicates such as NAB's
//!    repeated DST hour, or sub-interval jitter) are **averaged**.
//! 5. **Very long gaps**: the history before a gap longer than [`MAX_GAP_SECS`] (30 days) is
//!    dropped, as is anything beyond the newest [`MAX_GRID`] slots; both are counted in
//!    [`RegularStats::dropped_points`]. No NAB series has such a gap.
//! 6. **Short gaps** (at most one hour of missing slots, and always a single missing slot) are
//!    filled by **linear interpolation** between the observed neighbours.
//! 7. **Long gaps** (longer than an hour, up to 30 days) are filled by **seasonal
//!    interpolation**: the linear interpolation of the *deseasonalised* neighbours plus a mean
//!    daily profile (the mean of the observed values at each time-of-day slot, minus the overall
//!    mean). This keeps the daily shape inside a gap instead of inventing a flat stretch that a
//!    seasonal model would learn from. Without a usable daily profile (less than two days of data,
//!    or a step that does not divide a day into at least 2 slots) long gaps are filled linearly too.
//!
//! Filled slots are marked in [`Regular::observed`], so accuracy metrics can skip them.

use super::ForecastError;

/// Seconds in a day.
pub const DAY: i64 = 86_400;
/// Seconds in a week.
pub const WEEK: i64 = 7 * DAY;
/// History before a gap longer than this is dropped rather than filled.
pub const MAX_GAP_SECS: i64 = 30 * DAY;
/// At most this many grid slots are kept (the newest ones).
pub const MAX_GRID: usize = 1_000_000;
/// Gaps up to this long (and always single missing slots) are filled linearly; longer ones
/// seasonally.
pub const SHORT_GAP_SECS: i64 = 3_600;

/// A series on a regular grid: slot `i` is at `start + i·step` (unix seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Regular {
    /// Timestamp of slot 0.
    pub start: i64,
    /// Grid interval in seconds (> 0).
    pub step: i64,
    /// One value per slot; gaps are filled (see the module docs).
    pub values: Vec<f64>,
    /// `true` where at least one raw point fell into the slot, `false` where it was filled.
    pub observed: Vec<bool>,
    pub stats: RegularStats,
}

/// What regularisation did to the raw points.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RegularStats {
    /// Raw points given.
    pub raw_points: usize,
    /// Places where a timestamp was earlier than the one before it (the input was unsorted).
    pub out_of_order: usize,
    /// Raw points that shared a slot with another point and were averaged into it.
    pub merged_points: usize,
    /// Slots filled by linear interpolation.
    pub filled_linear: usize,
    /// Slots filled by seasonal interpolation.
    pub filled_seasonal: usize,
    /// Raw points dropped because they were before a very long gap or too old for the grid.
    pub dropped_points: usize,
}

impl Regular {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Timestamp of slot `i` (also valid past the end: `i = len()` is the first forecast step).
    pub fn timestamp(&self, i: usize) -> i64 {
        self.start + self.step * i as i64
    }

    /// Timestamp of the last slot (the newest observation).
    pub fn last_timestamp(&self) -> i64 {
        self.timestamp(self.len().saturating_sub(1))
    }

    /// All slot timestamps.
    pub fn timestamps(&self) -> Vec<i64> {
        (0..self.len()).map(|i| self.timestamp(i)).collect()
    }

    /// The `horizon` timestamps after the last slot: `last + step, last + 2·step, ...`.
    pub fn future_timestamps(&self, horizon: usize) -> Vec<i64> {
        (1..=horizon as i64)
            .map(|k| self.last_timestamp() + k * self.step)
            .collect()
    }

    /// Number of grid steps that cover `secs` seconds (rounded up, at least 1).
    pub fn steps_for(&self, secs: u64) -> usize {
        steps_for(secs, self.step)
    }

    /// Observed (not filled) slots.
    pub fn observed_count(&self) -> usize {
        self.observed.iter().filter(|&&o| o).count()
    }
}

/// Number of `step`-second grid steps that cover `secs` seconds (rounded up, at least 1).
pub fn steps_for(secs: u64, step: i64) -> usize {
    let step = step.max(1) as u64;
    (secs.div_ceil(step)).clamp(1, MAX_STEPS as u64) as usize
}

/// The most forecast steps ever computed (a fine-grained series with a long horizon would
/// otherwise ask for gigabytes).
pub const MAX_STEPS: usize = 100_000;

/// Median of the positive differences between consecutive sorted distinct timestamps.
/// `None` when there are fewer than two distinct timestamps.
pub fn median_interval(sorted: &[i64]) -> Option<i64> {
    let mut diffs: Vec<i64> = sorted
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|&d| d > 0)
        .collect();
    if diffs.is_empty() {
        return None;
    }
    let mid = diffs.len() / 2;
    let (_, m, _) = diffs.select_nth_unstable(mid);
    Some(*m)
}

/// Puts `(timestamps[i], values[i])` on a regular grid. See the module docs for the rules.
///
/// Errors: different lengths, no points, a non-finite value, or fewer than two distinct
/// timestamps (no interval can be inferred).
pub fn regularise(timestamps: &[i64], values: &[f64]) -> Result<Regular, ForecastError> {
    if timestamps.len() != values.len() {
        return Err(ForecastError::Input(format!(
            "{} timestamps but {} values",
            timestamps.len(),
            values.len()
        )));
    }
    if values.is_empty() {
        return Err(ForecastError::Input("the series has no points".into()));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(ForecastError::Input(format!(
            "value {} at row {i} is not finite",
            values[i]
        )));
    }
    let out_of_order = timestamps.windows(2).filter(|w| w[1] < w[0]).count();
    let mut order: Vec<usize> = (0..values.len()).collect();
    if out_of_order > 0 {
        order.sort_by_key(|&i| timestamps[i]);
    }
    let ts: Vec<i64> = order.iter().map(|&i| timestamps[i]).collect();
    let vs: Vec<f64> = order.iter().map(|&i| values[i]).collect();
    let step = median_interval(&ts).ok_or_else(|| {
        ForecastError::TooShort(format!(
            "{} point(s) but fewer than two distinct timestamps: no sampling interval",
            values.len()
        ))
    })?;

    let last = ts[ts.len() - 1];
    // Slot offset from the end (0 = last slot) of each point.
    let back = |t: i64| -> i64 { div_round(last - t, step) };

    // Very long gaps: keep only what follows the last one.
    let mut first = 0;
    for i in 1..ts.len() {
        if ts[i] - ts[i - 1] > MAX_GAP_SECS {
            first = i;
        }
    }
    // Grid size cap.
    while back(ts[first]) as usize >= MAX_GRID {
        first += 1;
    }
    let n = back(ts[first]) as usize + 1;
    let start = last - step * (n as i64 - 1);

    let mut sum = vec![0.0; n];
    let mut count = vec![0u32; n];
    for (&t, &v) in ts[first..].iter().zip(&vs[first..]) {
        let slot = n - 1 - back(t) as usize;
        sum[slot] += v;
        count[slot] += 1;
    }
    let mut observed = Vec::with_capacity(n);
    let mut merged = 0;
    let mut out = Vec::with_capacity(n);
    for (s, &c) in sum.iter().zip(&count) {
        observed.push(c > 0);
        if c > 1 {
            merged += c as usize - 1;
        }
        out.push(if c > 0 { s / f64::from(c) } else { f64::NAN });
    }
    let mut stats = RegularStats {
        raw_points: values.len(),
        out_of_order,
        merged_points: merged,
        dropped_points: first,
        ..Default::default()
    };
    fill_gaps(&mut out, &observed, start, step, &mut stats);
    Ok(Regular {
        start,
        step,
        values: out,
        observed,
        stats,
    })
}

/// `a / b` rounded to the nearest integer (ties away from zero), for `b > 0`.
fn div_round(a: i64, b: i64) -> i64 {
    let q = a.div_euclid(b);
    let r = a.rem_euclid(b);
    if 2 * r >= b { q + 1 } else { q }
}

/// Slots per day for a step, when a day is a whole number of steps to within 1 %.
pub fn daily_slots(step: i64) -> Option<usize> {
    if step <= 0 || step > DAY / 2 {
        return None;
    }
    let d = div_round(DAY, step);
    // Accept steps that divide a day to within 1 % (about 15 minutes a day).
    (d >= 2 && (d * step - DAY).abs() * 100 <= DAY).then_some(d as usize)
}

fn fill_gaps(v: &mut [f64], observed: &[bool], start: i64, step: i64, stats: &mut RegularStats) {
    let n = v.len();
    if observed.iter().all(|&o| o) {
        return;
    }
    let short_slots = (SHORT_GAP_SECS / step).max(1) as usize;
    let profile = daily_profile(v, observed, start, step);
    let slot_of = |i: usize| -> usize {
        match &profile {
            Some(p) => {
                let t = start + step * i as i64;
                (t.rem_euclid(DAY) / step) as usize % p.len()
            }
            None => 0,
        }
    };
    let mut i = 0;
    while i < n {
        if observed[i] {
            i += 1;
            continue;
        }
        // Gap [i, j): slot i-1 and j are observed (the first and last slots always are).
        let mut j = i;
        while j < n && !observed[j] {
            j += 1;
        }
        let (a, b) = (i - 1, j);
        let len = j - i;
        let (pa, pb, seasonal) = match &profile {
            Some(p) if len > short_slots => (p[slot_of(a)], p[slot_of(b)], true),
            _ => (0.0, 0.0, false),
        };
        let (ya, yb) = (v[a] - pa, v[b] - pb);
        for (k, slot) in (i..j).enumerate() {
            let w = (k + 1) as f64 / (len + 1) as f64;
            let base = ya + (yb - ya) * w;
            v[slot] = if seasonal {
                base + profile.as_ref().map_or(0.0, |p| p[slot_of(slot)])
            } else {
                base
            };
        }
        if seasonal {
            stats.filled_seasonal += len;
        } else {
            stats.filled_linear += len;
        }
        i = j;
    }
}

/// Mean observed value per time-of-day slot minus the overall mean; `None` without at least two
/// days of data or when a day is not a whole number of steps. Slots never observed get 0.
fn daily_profile(v: &[f64], observed: &[bool], start: i64, step: i64) -> Option<Vec<f64>> {
    let d = daily_slots(step)?;
    if (v.len() as i64) * step < 2 * DAY {
        return None;
    }
    let mut sum = vec![0.0; d];
    let mut cnt = vec![0u32; d];
    let (mut total, mut n) = (0.0, 0u32);
    for (i, (&x, &o)) in v.iter().zip(observed).enumerate() {
        if o {
            let t = start + step * i as i64;
            let s = (t.rem_euclid(DAY) / step) as usize % d;
            sum[s] += x;
            cnt[s] += 1;
            total += x;
            n += 1;
        }
    }
    if n == 0 {
        return None;
    }
    let mean = total / f64::from(n);
    Some(
        sum.iter()
            .zip(&cnt)
            .map(|(s, &c)| if c > 0 { s / f64::from(c) - mean } else { 0.0 })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_and_slots() {
        assert_eq!(div_round(7, 5), 1);
        assert_eq!(div_round(8, 5), 2);
        assert_eq!(div_round(0, 5), 0);
        assert_eq!(daily_slots(300), Some(288));
        assert_eq!(daily_slots(1800), Some(48));
        assert_eq!(daily_slots(3600), Some(24));
        assert_eq!(daily_slots(DAY), None);
        assert_eq!(daily_slots(7 * 60), Some(206));
        assert_eq!(daily_slots(7 * 3600), None);
    }
}
