//! Seasonal periods: the calendar periods a sampling interval allows (daily, weekly), which of
//! them a history is long enough for, and automatic detection.
//!
//! Automatic detection ([`auto_periods`]) uses the augurs-seasons periodogram only as a *hint*:
//! its periods are quantised by the FFT segment length (it reports 256 for a 288-step daily
//! cycle), so each hint is snapped to the nearest calendar period when within ±25 %. To see
//! weekly cycles, sub-hourly series are first averaged to hourly values (a week is then 168
//! values, inside the periodogram's range).
//!
//! Rules, for a series with sampling interval `step` and `n` regular slots:
//! * daily period `D = 1 day / step` (5 min → 288, 10 min → 144, 30 min → 48, 1 h → 24); usable
//!   when the history holds at least two days (`n ≥ 2·D`, which MSTL requires);
//! * weekly period `W = 7·D` (5 min → 2016, 30 min → 336, 1 h → 168); usable only with at least
//!   two weeks of history (`n ≥ 2·W`);
//! * `auto` keeps the daily period whenever it is usable: nearly every NAB series with a cycle has
//!   a daily one, MSTL's seasonal component stays near zero when there is none, and the periodogram
//!   misses many daily cycles (its strongest peaks are usually the trend, at the longest period it
//!   can resolve);
//! * `auto` adds the weekly period only with at least four weeks of history
//!   ([`WEEKLY_MIN_HISTORY_SECS`]) *and* either a periodogram hint that snaps to a week or a weekly
//!   component of seasonal strength ≥ [`WEEKLY_MIN_STRENGTH`] in a trial decomposition. On NAB, a
//!   weekly component estimated from two or three cycles made one-day forecasts worse (median
//!   MASE 1.44 with weekly whenever usable, against 1.39 with this rule); `nyc_taxi` (strength
//!   0.83, MASE 5.0 → 1.2) and `ambient_temperature_system_failure` get it.
//!
//! A fixed list (`["daily", "weekly"]`) uses each listed period that the history allows (two full
//! periods), whatever its strength.

use augurs::mstl::stlrs;
use augurs::seasons::{Detector, PeriodogramDetector};
use serde::Serialize;

use super::regular::{DAY, daily_slots};

/// A named calendar period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeriodName {
    Daily,
    Weekly,
}

impl PeriodName {
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodName::Daily => "daily",
            PeriodName::Weekly => "weekly",
        }
    }

    /// Length of the period in seconds.
    pub fn secs(self) -> i64 {
        match self {
            PeriodName::Daily => DAY,
            PeriodName::Weekly => 7 * DAY,
        }
    }
}

impl std::str::FromStr for PeriodName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "daily" => Ok(PeriodName::Daily),
            "weekly" => Ok(PeriodName::Weekly),
            other => Err(format!(
                "unknown period {other:?}: expected \"daily\" or \"weekly\""
            )),
        }
    }
}

/// A seasonal period in grid steps, with its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    pub name: PeriodName,
    pub steps: usize,
}

/// The period `name` in steps of `step` seconds, when a day is a whole number of steps.
pub fn calendar_period(name: PeriodName, step: i64) -> Option<usize> {
    let d = daily_slots(step)?;
    Some(match name {
        PeriodName::Daily => d,
        PeriodName::Weekly => 7 * d,
    })
}

/// `name`'s period if a history of `n` slots of `step` seconds is long enough for it: at least
/// two full periods (two days for daily, two weeks for weekly).
pub fn usable_period(name: PeriodName, step: i64, n: usize) -> Option<Period> {
    let steps = calendar_period(name, step)?;
    (n >= 2 * steps).then_some(Period { name, steps })
}

/// The calendar periods usable for `n` slots of `step` seconds, shortest first.
pub fn usable_periods(step: i64, n: usize) -> Vec<Period> {
    [PeriodName::Daily, PeriodName::Weekly]
        .into_iter()
        .filter_map(|p| usable_period(p, step, n))
        .collect()
}

/// Periodogram hints, in seconds. Sub-hourly series are averaged to hourly values first when an
/// hour is a whole number of steps.
pub fn periodogram_hints(values: &[f64], step: i64) -> Vec<i64> {
    if step <= 0 {
        return Vec::new();
    }
    let (series, unit): (std::borrow::Cow<'_, [f64]>, i64) =
        if step < 3600 && 3600 % step == 0 && values.len() >= 2 * 3600 / step as usize {
            let k = (3600 / step) as usize;
            let agg: Vec<f64> = values
                .chunks_exact(k)
                .map(|c| c.iter().sum::<f64>() / k as f64)
                .collect();
            (agg.into(), 3600)
        } else {
            (values.into(), step)
        };
    if series.len() < 16 {
        return Vec::new();
    }
    let max_period = ((series.len() / 2) as u32).clamp(8, 512);
    PeriodogramDetector::builder()
        .min_period(4)
        .max_period(max_period)
        .build()
        .detect(&series)
        .into_iter()
        .map(|p| i64::from(p) * unit)
        .collect()
}

/// Snaps a hint (seconds) to the calendar period within ±25 %, if any.
pub fn snap(hint_secs: i64) -> Option<PeriodName> {
    [PeriodName::Daily, PeriodName::Weekly]
        .into_iter()
        .find(|p| {
            let r = hint_secs as f64 / p.secs() as f64;
            (0.8..=1.25).contains(&r)
        })
}

/// Weekly seasonality needs at least this much history in `auto` mode.
pub const WEEKLY_MIN_HISTORY_SECS: i64 = 28 * DAY;
/// ... and a weekly component at least this strong in a trial decomposition (or a periodogram
/// hint).
pub const WEEKLY_MIN_STRENGTH: f64 = 0.3;

/// Automatic period choice (see the module docs).
pub fn auto_periods(values: &[f64], step: i64) -> Vec<Period> {
    let usable = usable_periods(step, values.len());
    let daily: Vec<Period> = usable
        .iter()
        .copied()
        .filter(|p| p.name == PeriodName::Daily)
        .collect();
    let Some(weekly) = usable
        .iter()
        .find(|p| p.name == PeriodName::Weekly)
        .copied()
    else {
        return daily;
    };
    if (values.len() as i64).saturating_mul(step) < WEEKLY_MIN_HISTORY_SECS {
        return daily;
    }
    let hinted = periodogram_hints(values, step)
        .into_iter()
        .any(|h| snap(h) == Some(PeriodName::Weekly));
    let mut out = daily;
    if hinted || weekly_strength(values, &out, weekly) >= WEEKLY_MIN_STRENGTH {
        out.push(weekly);
    }
    out
}

/// Seasonal strength (0..1, Wang–Smith–Hyndman: `1 − Var(remainder) / Var(weekly + remainder)`)
/// of the weekly component of a trial MSTL decomposition with `others` and `weekly`.
pub fn weekly_strength(values: &[f64], others: &[Period], weekly: Period) -> f64 {
    let mut steps: Vec<usize> = others.iter().map(|p| p.steps).collect();
    steps.push(weekly.steps);
    let y: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    match stlrs::MstlParams::new().fit(&y, &steps) {
        Ok(fit) => fit
            .seasonal_strength()
            .last()
            .copied()
            .filter(|s| s.is_finite())
            .unwrap_or(0.0),
        Err(_) => 0.0,
    }
}
