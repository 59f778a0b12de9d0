//! Held-out accuracy: fit on all but the last horizon, forecast it, compare.
//!
//! [`holdout`] splits the *raw* points by time: the training part is every point up to
//! `last timestamp − horizon`, regularised on its own (so nothing from the held-out tail leaks
//! into the grid, the gap filling or the daily profile). Each held-out raw point is matched to the
//! forecast step nearest to it (`round((t − last training slot) / step)`, averaging points that
//! share a step); points past the last step are ignored. Filled slots are never scored.
//!
//! Metrics over the matched points (`a` actual, `f` forecast):
//! * **MAE** = mean |a − f|;
//! * **MASE** = MAE / the in-sample MAE of the *one-step naive* forecast (`y[t-1]` for `y[t]`) on
//!   the training grid, over consecutive pairs of observed slots (all pairs when fewer than two
//!   are observed). Not the seasonal naive: the one-step scale exists for every series, also
//!   those without a cycle. It is undefined (`None`) when the training series is flat;
//! * **sMAPE** = mean of 200·|a − f| / (|a| + |f|), in percent (0 to 200), a term being 0 when
//!   both are 0;
//! * **coverage** = share of points with `lower ≤ a ≤ upper`.

use serde::Serialize;

use super::model::{Forecast, forecast};
use super::regular::{Regular, regularise, steps_for};
use super::{ForecastError, ForecastSettings, ModelKind};

/// Accuracy on a held-out tail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accuracy {
    /// Held-out points scored.
    pub n: usize,
    pub mae: f64,
    /// MAE scaled by the in-sample one-step naive MAE; `None` when that scale is 0.
    pub mase: Option<f64>,
    /// Symmetric MAPE in percent (0..200).
    pub smape: f64,
    /// Share of points inside the prediction interval (0..1).
    pub coverage: f64,
    /// The in-sample one-step naive MAE used for MASE.
    pub naive_mae: f64,
}

/// A held-out evaluation: the forecast made from the training part and the actual values at each
/// forecast step (`None` where the tail has no point).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Holdout {
    pub forecast: Forecast,
    pub actual: Vec<Option<f64>>,
    pub accuracy: Accuracy,
    /// Held-out raw points that fell past the last forecast step.
    pub unmatched: usize,
}

/// In-sample one-step naive MAE over consecutive observed slots (all slots when fewer than two
/// observed pairs exist).
pub fn naive_mae(reg: &Regular) -> f64 {
    let v = &reg.values;
    let (mut sum, mut n) = (0.0, 0usize);
    for i in 1..v.len() {
        if reg.observed[i] && reg.observed[i - 1] {
            sum += (v[i] - v[i - 1]).abs();
            n += 1;
        }
    }
    if n < 2 {
        sum = v.windows(2).map(|w| (w[1] - w[0]).abs()).sum();
        n = v.len().saturating_sub(1);
    }
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// Scores a forecast against actual values (steps with `None` are skipped). `scale` is the MASE
/// denominator.
pub fn accuracy(fc: &Forecast, actual: &[Option<f64>], scale: f64) -> Accuracy {
    let (mut abs, mut sm, mut cov, mut n) = (0.0, 0.0, 0usize, 0usize);
    for (i, a) in actual.iter().enumerate().take(fc.len()) {
        let Some(a) = *a else { continue };
        let f = fc.point[i];
        let e = (a - f).abs();
        abs += e;
        let denom = a.abs() + f.abs();
        if denom > 0.0 {
            sm += 200.0 * e / denom;
        }
        if fc.lower[i] <= a && a <= fc.upper[i] {
            cov += 1;
        }
        n += 1;
    }
    let nf = n.max(1) as f64;
    let mae = abs / nf;
    Accuracy {
        n,
        mae,
        mase: (scale > 0.0 && n > 0).then(|| mae / scale),
        smape: sm / nf,
        coverage: cov as f64 / nf,
        naive_mae: scale,
    }
}

/// Fits `model` on all but the last `settings.horizon` of the raw series and scores the forecast
/// on that tail (see the module docs).
pub fn holdout(
    timestamps: &[i64],
    values: &[f64],
    settings: &ForecastSettings,
    model: ModelKind,
) -> Result<Holdout, ForecastError> {
    if timestamps.len() != values.len() || timestamps.is_empty() {
        // Let regularise produce the precise message.
        regularise(timestamps, values)?;
    }
    let horizon_secs = i64::try_from(settings.horizon.as_secs()).unwrap_or(i64::MAX);
    let last = timestamps.iter().copied().max().unwrap_or(0);
    let cut = last.saturating_sub(horizon_secs);
    let (mut tr_t, mut tr_v, mut te) = (Vec::new(), Vec::new(), Vec::new());
    for (&t, &v) in timestamps.iter().zip(values) {
        if t <= cut {
            tr_t.push(t);
            tr_v.push(v);
        } else {
            te.push((t, v));
        }
    }
    if tr_t.is_empty() {
        return Err(ForecastError::TooShort(format!(
            "the series spans less than the {}s horizon: nothing left to fit on",
            horizon_secs
        )));
    }
    let train = regularise(&tr_t, &tr_v)?;
    let h = steps_for(settings.horizon.as_secs(), train.step);
    let fc = forecast(&train, settings, model, h)?;
    let origin = train.last_timestamp();
    let mut sum = vec![0.0; h];
    let mut cnt = vec![0u32; h];
    let mut unmatched = 0;
    for (t, v) in te {
        let k = ((t - origin) as f64 / train.step as f64).round() as i64;
        if (1..=h as i64).contains(&k) {
            sum[k as usize - 1] += v;
            cnt[k as usize - 1] += 1;
        } else {
            unmatched += 1;
        }
    }
    let actual: Vec<Option<f64>> = sum
        .iter()
        .zip(&cnt)
        .map(|(s, &c)| (c > 0).then(|| s / f64::from(c)))
        .collect();
    if actual.iter().all(Option::is_none) {
        return Err(ForecastError::TooShort(
            "no held-out point falls on the forecast steps".into(),
        ));
    }
    let acc = accuracy(&fc, &actual, naive_mae(&train));
    Ok(Holdout {
        forecast: fc,
        actual,
        accuracy: acc,
        unmatched,
    })
}

pub use crate::num::median;
