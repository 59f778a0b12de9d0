//! Fitting and predicting. Every model fits the regular grid of [`Regular`] and returns a
//! [`Forecast`] whose timestamps continue that grid.
//!
//! * **mstl**: the MSTL decomposition of augurs-mstl (its `stlrs` engine) into daily and/or
//!   weekly seasonal components (see [`super::season`]), then augurs' AutoETS on the
//!   deseasonalised series (trend + remainder); the forecast is the ETS forecast plus the last
//!   cycle of each seasonal component, and the interval is the ETS interval shifted by the same
//!   seasonal terms. The ETS search is restricted to additive errors and damped or no trend
//!   (`A,{N,Ad},N`): an undamped trend extrapolated over a day of 5-minute steps is rarely right and
//!   its intervals explode. The ETS part is fitted on the last [`ETS_WINDOW`] (600) values only,
//!   about two days of 5-minute data: the recent level is what matters for the forecast, it keeps
//!   a 22,000-point fit fast, and on NAB's one-day hold-outs it was as accurate as 2,016 values
//!   with better-calibrated intervals (94 % against 92 % coverage of 95 % intervals). Without a usable
//!   period (less than two days of history) it falls back to plain ETS, and says so in
//!   [`Forecast::note`].
//! * **ets**: augurs' AutoETS without seasonality (`Z,Z,N`: additive or multiplicative error,
//!   no, additive or damped trend, chosen by AICc) on the last [`ETS_WINDOW`] values; the best
//!   candidate whose forecast stays finite is used (a multiplicative-error model can overflow over
//!   a long horizon).
//! * **prophet**: augurs-prophet, fitted by `[forecast.prophet] optimizer`: `native` (default:
//!   [`super::prophet_native`], Stan's L-BFGS on Prophet's objective in Rust) or `wasmstan`
//!   (Prophet's Stan model compiled to WebAssembly and JIT-compiled once per process, about 0.5 s
//!   in release builds; the same search, 3 to 5x slower). It is given only the observed slots (no
//!   filled values). Prophet's intervals come from random trend simulations, so they vary a little
//!   between runs.
//!
//! * **snaive** (seasonal naive, written here: a one-liner no crate is needed for): the value
//!   one season before each step, the season being the longest of the periods mstl would use
//!   (weekly where the series has four weeks and a weekly rhythm, else daily; the last value
//!   when there is none). Its band is the empirical `interval_width` quantile of the in-sample
//!   seasonal errors `|y[t] − y[t − P]|` between observed slots over the last
//!   [`SNAIVE_ERRORS`] of them, widened by √k in the k-th season ahead (errors of k seasons
//!   add up). This is the baseline `forecast --all --holdout` measures skill against.
//!
//! * **theta**: Theta with seasonal adjustment at mstl's periods and an optimised theta
//!   ([`super::theta`], written here).
//!
//! * **smedian** (seasonal median, written here): the median of the same slot of the daily
//!   season over the last [`SMEDIAN_SEASONS`] (7) days. The median and not the mean: an
//!   anomalous day, which operations data has plenty of, does not move it (on NAB's tuning days
//!   the seasonal mean lost 14 % to seasonal naive, the median gained 24 %; docs/forecasting.md).
//!   Its band is built like snaive's, from its own one-day-ahead in-sample errors.
//!
//! Fallbacks, never panics:
//! * fewer than [`MIN_POINTS`] slots: [`ForecastError::TooShort`];
//! * a constant series (all values within 1e-12 relative of each other): a flat forecast at that
//!   value with a zero-width band, for every model ([`Forecast::note`] says so).

use std::time::{Duration, Instant};

use augurs::ets::AutoETS;
use augurs::mstl::stlrs;
use augurs::prelude::*;
#[cfg(feature = "wasmstan")]
use augurs::prophet::wasmstan::WasmstanOptimizer;
use augurs::prophet::{
    FeatureMode, IntervalWidth, OptProphetOptions, Optimizer, PositiveFloat, PredictionData,
    Predictions, Prophet, SeasonalityOption, TrainingData,
};
use serde::Serialize;

use super::auto::AutoMemo;
use super::prophet_native::NativeOptimizer;
use super::regular::{Regular, regularise};
use super::season::{self, Period, PeriodName};
use super::{
    ForecastError, ForecastSettings, ModelKind, ProphetOptimizer, SeasonChoice, SeasonalityMode,
};

/// Fewer regular slots than this cannot be forecast.
pub const MIN_POINTS: usize = 16;
/// The ETS part of mstl and ets is fitted on at most this many of the newest values.
pub const ETS_WINDOW: usize = 600;

/// A forecast over the horizon, on the series' grid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    pub model: ModelKind,
    /// What was fitted, e.g. `MSTL[288] + ETS(A,Ad,N)`; for `auto`, the choice and its fit
    /// (`snaive: SNaive[288]`). Stable between fits: exported as a label.
    pub detail: String,
    /// Why this model: `auto`'s validation (every candidate's MAE, and how long ago it ran).
    pub why: Option<String>,
    /// Grid interval in seconds.
    pub step: i64,
    /// Interval width (e.g. 0.95).
    pub level: f64,
    /// Unix seconds of each step: `last + step, last + 2·step, ...`.
    pub timestamps: Vec<i64>,
    pub point: Vec<f64>,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
    /// Seasonal periods used (in steps).
    pub periods: Vec<Period>,
    /// Regular slots the model was fitted on.
    pub history: usize,
    /// Fit and predict time.
    #[serde(serialize_with = "ser_secs")]
    pub fit_time: Duration,
    /// A fallback that was taken (constant series, no usable period, ...).
    pub note: Option<String>,
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Forecast {
    pub fn len(&self) -> usize {
        self.point.len()
    }

    pub fn is_empty(&self) -> bool {
        self.point.is_empty()
    }

    /// The same forecast without its steps (to be filled by the caller).
    pub(crate) fn clone_meta(&self) -> Forecast {
        Forecast {
            model: self.model,
            detail: self.detail.clone(),
            why: self.why.clone(),
            step: self.step,
            level: self.level,
            timestamps: Vec::new(),
            point: Vec::new(),
            lower: Vec::new(),
            upper: Vec::new(),
            periods: self.periods.clone(),
            history: self.history,
            fit_time: self.fit_time,
            note: self.note.clone(),
        }
    }

    /// Keeps the first `steps` steps.
    pub fn truncate(&mut self, steps: usize) {
        self.timestamps.truncate(steps);
        self.point.truncate(steps);
        self.lower.truncate(steps);
        self.upper.truncate(steps);
    }

    /// The forecast step within half a step of `ts`, if the forecast covers it.
    pub fn expectation_at(&self, ts: i64) -> Option<crate::domain::Expectation> {
        let half = self.step / 2;
        let i = self.timestamps.partition_point(|&t| t < ts - half);
        let t = *self.timestamps.get(i)?;
        ((t - ts).abs() <= half).then(|| crate::domain::Expectation {
            timestamp: t,
            point: self.point[i],
            lower: self.lower[i],
            upper: self.upper[i],
        })
    }
}

/// Regularises a raw series and forecasts `settings.horizon` ahead with `model`.
pub fn forecast_series(
    timestamps: &[i64],
    values: &[f64],
    settings: &ForecastSettings,
    model: ModelKind,
) -> Result<Forecast, ForecastError> {
    let reg = regularise(timestamps, values)?;
    let h = reg.steps_for(settings.horizon.as_secs());
    forecast(&reg, settings, model, h)
}

/// Forecasts `horizon` steps after the end of `reg` with `model`.
pub fn forecast(
    reg: &Regular,
    settings: &ForecastSettings,
    model: ModelKind,
    horizon: usize,
) -> Result<Forecast, ForecastError> {
    forecast_to(reg, settings, model, horizon, horizon)
}

/// Forecasts `steps` (at least `horizon`) steps after the end of `reg` with `model`; `auto`
/// validates its choice at `horizon` and extends it to `steps` (the long view).
pub fn forecast_to(
    reg: &Regular,
    settings: &ForecastSettings,
    model: ModelKind,
    horizon: usize,
    steps: usize,
) -> Result<Forecast, ForecastError> {
    forecast_to_with(reg, settings, model, horizon, steps, None).map(|(fc, _)| fc)
}

/// [`forecast_to`] with `auto`'s kept choice ([`AutoMemo`]): reused while fresh, and the memo
/// to keep returned beside the forecast (`None` for the other models and constant series).
pub fn forecast_to_with(
    reg: &Regular,
    settings: &ForecastSettings,
    model: ModelKind,
    horizon: usize,
    steps: usize,
    memo: Option<&AutoMemo>,
) -> Result<(Forecast, Option<AutoMemo>), ForecastError> {
    let validate_at = horizon.min(steps);
    let horizon = steps;
    let t0 = Instant::now();
    let n = reg.len();
    if n < MIN_POINTS {
        return Err(ForecastError::TooShort(format!(
            "{n} regular slot(s) of {}s; at least {MIN_POINTS} are needed",
            reg.step
        )));
    }
    if horizon == 0 {
        return Err(ForecastError::Input("the horizon is 0 steps".into()));
    }
    let level = settings.interval_width;
    let mut out = Forecast {
        model,
        detail: String::new(),
        why: None,
        step: reg.step,
        level,
        timestamps: reg.future_timestamps(horizon),
        point: Vec::new(),
        lower: Vec::new(),
        upper: Vec::new(),
        periods: Vec::new(),
        history: n,
        fit_time: Duration::ZERO,
        note: None,
    };
    if let Some(c) = constant_value(&reg.values) {
        out.detail = "constant".into();
        out.point = vec![c; horizon];
        out.lower = out.point.clone();
        out.upper = out.point.clone();
        out.note = Some("constant series: flat forecast with a zero-width band".into());
        out.fit_time = t0.elapsed();
        return Ok((out, None));
    }
    let fc = match model {
        ModelKind::Mstl => fit_mstl(reg, settings, horizon, &mut out)?,
        ModelKind::Ets => {
            let (fc, detail) = fit_ets(&reg.values, horizon, level, EtsSearch::Auto)?;
            out.detail = detail;
            fc
        }
        ModelKind::Prophet => fit_prophet(reg, settings, horizon, &mut out)?,
        ModelKind::SeasonalNaive => fit_snaive(reg, settings, horizon, &mut out),
        ModelKind::SeasonalMedian => fit_smedian(reg, settings, horizon, &mut out),
        ModelKind::Theta => {
            let (periods, note) = mstl_periods(reg, &settings.mstl_periods);
            out.note = note;
            super::theta::fit_theta(reg, &periods, horizon, &mut out)
        }
        ModelKind::Auto => {
            // Chooses among the other models, which check their own output.
            let (mut fc, memo) =
                super::auto::fit_auto_with(reg, settings, validate_at, horizon, memo)?;
            fc.fit_time = t0.elapsed();
            return Ok((fc, Some(memo)));
        }
    };
    let (point, lower, upper) = finish(fc, horizon, model)?;
    out.point = point;
    out.lower = lower;
    out.upper = upper;
    out.fit_time = t0.elapsed();
    Ok((out, None))
}

/// `Some(v)` when every value equals `v` to within 1e-12 relative.
fn constant_value(v: &[f64]) -> Option<f64> {
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    let scale = lo.abs().max(hi.abs()).max(1e-300);
    ((hi - lo) <= 1e-12 * scale).then_some(v[v.len() - 1])
}

/// Point, lower and upper per step.
type Bands = (Vec<f64>, Vec<f64>, Vec<f64>);

/// Checks an augurs forecast (lengths, finiteness) and orders each band around its point.
fn finish(fc: augurs::Forecast, horizon: usize, model: ModelKind) -> Result<Bands, ForecastError> {
    let err = |msg: String| ForecastError::Model { model, msg };
    let Some(iv) = fc.intervals else {
        return Err(err("no prediction intervals returned".into()));
    };
    if fc.point.len() != horizon || iv.lower.len() != horizon || iv.upper.len() != horizon {
        return Err(err(format!(
            "returned {} points for a horizon of {horizon}",
            fc.point.len()
        )));
    }
    if let Some(i) = (0..horizon)
        .find(|&i| !(fc.point[i].is_finite() && iv.lower[i].is_finite() && iv.upper[i].is_finite()))
    {
        return Err(err(format!("non-finite forecast at step {}", i + 1)));
    }
    let mut lower = iv.lower;
    let mut upper = iv.upper;
    for i in 0..horizon {
        let p = fc.point[i];
        lower[i] = lower[i].min(p);
        upper[i] = upper[i].max(p);
    }
    Ok((fc.point, lower, upper))
}

/// Which ETS models to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EtsSearch {
    /// `ZZN`: additive or multiplicative error, no, additive or damped trend.
    Auto,
    /// `A{N,Ad}N`: additive error, no or damped trend (mstl's trend model).
    AdditiveDamped,
}

/// Fits non-seasonal AutoETS candidates on the newest [`ETS_WINDOW`] values and predicts with the
/// best one (lowest AICc) whose forecast is finite; a candidate whose forecast overflows (possible
/// with multiplicative errors over long horizons) gives way to the next.
fn fit_ets(
    y: &[f64],
    horizon: usize,
    level: f64,
    search: EtsSearch,
) -> Result<(augurs::Forecast, String), ForecastError> {
    let err = |msg: String| ForecastError::Model {
        model: ModelKind::Ets,
        msg,
    };
    let tail = &y[y.len().saturating_sub(ETS_WINDOW)..];
    let specs: &[(&str, bool)] = match search {
        EtsSearch::Auto => &[
            ("ANN", false),
            ("AAN", false),
            ("AAN", true),
            ("MNN", false),
            ("MAN", false),
            ("MAN", true),
        ],
        EtsSearch::AdditiveDamped => &[("ANN", false), ("AAN", true)],
    };
    let positive = tail.iter().all(|&v| v > 0.0);
    let mut fitted = Vec::with_capacity(specs.len());
    let mut last_err = String::from("no ETS model could be fitted");
    for &(spec, damped) in specs {
        if spec.starts_with('M') && !positive {
            continue;
        }
        let model = AutoETS::new(1, spec).and_then(|m| {
            if damped {
                m.damped(true)
            } else {
                m.damped(false)
            }
        });
        match model.and_then(|m| m.fit(tail)) {
            Ok(m) if m.model().aicc().is_finite() => fitted.push(m),
            Ok(_) => last_err = format!("ETS {spec}: non-finite AICc"),
            Err(e) => last_err = format!("ETS {spec}: {e}"),
        }
    }
    fitted.sort_by(|a, b| a.model().aicc().total_cmp(&b.model().aicc()));
    for m in &fitted {
        match m.predict(horizon, level) {
            Ok(fc) if all_finite(&fc) => return Ok((fc, ets_name(m.model()))),
            Ok(_) => last_err = format!("{}: non-finite forecast", ets_name(m.model())),
            Err(e) => last_err = e.to_string(),
        }
    }
    Err(err(last_err))
}

fn all_finite(fc: &augurs::Forecast) -> bool {
    fc.point.iter().all(|v| v.is_finite())
        && fc
            .intervals
            .as_ref()
            .is_some_and(|iv| iv.lower.iter().chain(&iv.upper).all(|v| v.is_finite()))
}

fn ets_name(m: &augurs::ets::model::Model) -> String {
    let t = m.model_type();
    let trend = t.trend.to_string();
    let trend = if m.damped() {
        format!("{trend}d")
    } else {
        trend
    };
    format!("ETS({},{},{})", t.error, trend, t.season)
}

fn mstl_periods(reg: &Regular, choice: &SeasonChoice) -> (Vec<Period>, Option<String>) {
    match choice {
        SeasonChoice::Auto => (season::auto_periods(&reg.values, reg.step), None),
        SeasonChoice::Fixed(names) => {
            let mut out = Vec::new();
            let mut skipped = Vec::new();
            for &name in names {
                match season::usable_period(name, reg.step, reg.len()) {
                    Some(p) => out.push(p),
                    None => skipped.push(name.as_str()),
                }
            }
            let note = (!skipped.is_empty()).then(|| {
                format!(
                    "period(s) {} skipped: the history needs two full periods",
                    skipped.join(", ")
                )
            });
            (out, note)
        }
    }
}

fn fit_mstl(
    reg: &Regular,
    settings: &ForecastSettings,
    horizon: usize,
    out: &mut Forecast,
) -> Result<augurs::Forecast, ForecastError> {
    let err = |msg: String| ForecastError::Model {
        model: ModelKind::Mstl,
        msg,
    };
    let level = settings.interval_width;
    let (periods, note) = mstl_periods(reg, &settings.mstl_periods);
    out.note = note;
    if periods.is_empty() {
        let (fc, detail) = fit_ets(&reg.values, horizon, level, EtsSearch::AdditiveDamped)?;
        out.detail = detail;
        let why = "no usable seasonal period (needs two days of history): non-seasonal ETS";
        out.note = Some(match out.note.take() {
            Some(n) => format!("{n}; {why}"),
            None => why.into(),
        });
        return Ok(fc);
    }
    let steps: Vec<usize> = periods.iter().map(|p| p.steps).collect();
    let y: Vec<f32> = reg.values.iter().map(|&v| v as f32).collect();
    let fit = stlrs::MstlParams::new()
        .fit(&y, &steps)
        .map_err(|e| err(format!("MSTL decomposition: {e}")))?;
    let deseasonalised: Vec<f64> = fit
        .trend()
        .iter()
        .zip(fit.remainder())
        .map(|(t, r)| f64::from(*t + *r))
        .collect();
    let (mut fc, ets) = fit_ets(&deseasonalised, horizon, level, EtsSearch::AdditiveDamped)
        .map_err(|e| match e {
            ForecastError::Model { msg, .. } => err(format!("trend model: {msg}")),
            other => other,
        })?;
    for (p, comp) in steps.iter().zip(fit.seasonal()) {
        let last_cycle = &comp[comp.len() - p..];
        for (i, s) in last_cycle.iter().cycle().take(horizon).enumerate() {
            let s = f64::from(*s);
            fc.point[i] += s;
            if let Some(iv) = fc.intervals.as_mut() {
                iv.lower[i] += s;
                iv.upper[i] += s;
            }
        }
    }
    out.detail = format!(
        "MSTL[{}] + {ets}",
        steps
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    out.periods = periods;
    Ok(fc)
}

/// In-sample seasonal errors the seasonal naive band is taken from (the newest ones).
pub const SNAIVE_ERRORS: usize = 2016;

/// Seasonal naive; see the module docs.
/// Seasons (days) the seasonal median looks back over: one week.
pub const SMEDIAN_SEASONS: usize = 7;

/// Seasonal median: step `i` ahead is the median of the same slot of the daily season over the
/// last [`SMEDIAN_SEASONS`] seasons (fewer when the history is shorter; the last value without a
/// season). The median, not the mean: one anomalous day does not move it. Its band is the
/// `interval_width` quantile of the same predictor's one-season-ahead errors over the last
/// [`SNAIVE_ERRORS`] slots, widened by √k in the k-th season ahead. Written here: augurs has no
/// seasonal median.
fn fit_smedian(
    reg: &Regular,
    settings: &ForecastSettings,
    horizon: usize,
    out: &mut Forecast,
) -> augurs::Forecast {
    let (periods, note) = mstl_periods(reg, &settings.mstl_periods);
    out.note = note;
    let daily = periods.iter().min_by_key(|p| p.steps).copied();
    let p = daily.map_or(1, |p| p.steps);
    let (y, n) = (&reg.values, reg.len());
    let mut window = [0.0; SMEDIAN_SEASONS];
    // The median of y[t − j·p] for j = first, first + 1, ... (at most SMEDIAN_SEASONS of them,
    // as far back as the history goes).
    let mut median_back = |t: usize, first: usize| -> f64 {
        let mut k = 0;
        let mut j = first;
        while k < SMEDIAN_SEASONS && j * p <= t {
            window[k] = y[t - j * p];
            k += 1;
            j += 1;
        }
        let w = &mut window[..k];
        w.sort_by(f64::total_cmp);
        match k {
            0 => y[n - 1],
            k if k % 2 == 1 => w[k / 2],
            k => 0.5 * (w[k / 2 - 1] + w[k / 2]),
        }
    };
    let mut errors: Vec<f64> = Vec::with_capacity(SNAIVE_ERRORS);
    for t in (p..n)
        .rev()
        .filter(|&t| reg.observed[t])
        .take(SNAIVE_ERRORS)
    {
        errors.push((y[t] - median_back(t, 1)).abs());
    }
    let point: Vec<f64> = (0..horizon)
        .map(|i| {
            // Slot n + i, from the seasons before the history's end.
            if daily.is_some() {
                median_back(n + i, i / p + 1)
            } else {
                y[n - 1]
            }
        })
        .collect();
    out.detail = match daily {
        Some(per) => format!(
            "SMedian[{}×{}]",
            per.steps,
            (n / per.steps).min(SMEDIAN_SEASONS)
        ),
        None => "Naive".into(),
    };
    out.periods = daily.into_iter().collect();
    seasonal_band(point, errors, p, settings.interval_width)
}

/// A band around `point` of half-width the `level` quantile of the absolute in-sample errors
/// `errors` (of one season ahead), widened by √k in the k-th season of `p` slots ahead (errors
/// of k seasons add up). snaive's and smedian's band.
fn seasonal_band(point: Vec<f64>, mut errors: Vec<f64>, p: usize, level: f64) -> augurs::Forecast {
    errors.sort_by(f64::total_cmp);
    let q = if errors.is_empty() {
        0.0
    } else {
        let k = ((level * errors.len() as f64).ceil() as usize).clamp(1, errors.len());
        errors[k - 1]
    };
    let width = |i: usize| q * (((i / p.max(1)) + 1) as f64).sqrt();
    let lower = point
        .iter()
        .enumerate()
        .map(|(i, v)| v - width(i))
        .collect();
    let upper = point
        .iter()
        .enumerate()
        .map(|(i, v)| v + width(i))
        .collect();
    augurs::Forecast {
        point,
        intervals: Some(augurs::ForecastIntervals {
            level,
            lower,
            upper,
        }),
    }
}

fn fit_snaive(
    reg: &Regular,
    settings: &ForecastSettings,
    horizon: usize,
    out: &mut Forecast,
) -> augurs::Forecast {
    let (periods, note) = mstl_periods(reg, &settings.mstl_periods);
    out.note = note;
    let longest = periods.iter().max_by_key(|p| p.steps).copied();
    let p = longest.map_or(1, |p| p.steps);
    let (y, n) = (&reg.values, reg.len());
    // |y[t] − y[t−p]| over observed pairs, newest first, at most SNAIVE_ERRORS of them.
    let mut errors: Vec<f64> = (p..n)
        .rev()
        .filter(|&t| reg.observed[t] && reg.observed[t - p])
        .map(|t| (y[t] - y[t - p]).abs())
        .take(SNAIVE_ERRORS)
        .collect();
    if errors.is_empty() {
        errors = (p..n).map(|t| (y[t] - y[t - p]).abs()).collect();
    }
    // Step i+1 ahead repeats the slot i % p of the last season.
    let point: Vec<f64> = (0..horizon).map(|i| y[n - p + i % p]).collect();
    out.detail = match longest {
        Some(per) => format!("SNaive[{}]", per.steps),
        None => {
            let why = "no usable seasonal period (needs two days of history): the last value";
            out.note = Some(match out.note.take() {
                Some(n) => format!("{n}; {why}"),
                None => why.into(),
            });
            "Naive".into()
        }
    };
    out.periods = longest.into_iter().collect();
    seasonal_band(point, errors, p, settings.interval_width)
}

fn prophet_fit_predict<O: Optimizer>(
    opts: OptProphetOptions,
    optimizer: O,
    data: TrainingData,
    future: PredictionData,
) -> Result<Predictions, augurs::prophet::Error> {
    let mut prophet = Prophet::new(opts.into(), optimizer);
    prophet.fit(data, Default::default())?;
    prophet.predict(future)
}

/// The process-wide Prophet optimizer (JIT-compiled once).
#[cfg(feature = "wasmstan")]
fn prophet_optimizer() -> &'static WasmstanOptimizer {
    static OPT: std::sync::OnceLock<WasmstanOptimizer> = std::sync::OnceLock::new();
    OPT.get_or_init(WasmstanOptimizer::new)
}

/// Compiles Prophet's optimizer now (about 0.5 s in release builds) so that the first fit does
/// not pay for it.
pub fn warm_up_prophet() {
    #[cfg(feature = "wasmstan")]
    let _ = prophet_optimizer();
}

fn fit_prophet(
    reg: &Regular,
    settings: &ForecastSettings,
    horizon: usize,
    out: &mut Forecast,
) -> Result<augurs::Forecast, ForecastError> {
    let err = |msg: String| ForecastError::Model {
        model: ModelKind::Prophet,
        msg,
    };
    let p = &settings.prophet;
    let (daily, weekly, yearly) = match &p.seasonalities {
        SeasonChoice::Auto => (
            SeasonalityOption::Auto,
            SeasonalityOption::Auto,
            SeasonalityOption::Auto,
        ),
        SeasonChoice::Fixed(names) => (
            SeasonalityOption::Manual(names.contains(&PeriodName::Daily)),
            SeasonalityOption::Manual(names.contains(&PeriodName::Weekly)),
            SeasonalityOption::Manual(false),
        ),
    };
    let opts = OptProphetOptions {
        interval_width: Some(
            IntervalWidth::try_new(settings.interval_width).map_err(|e| err(e.to_string()))?,
        ),
        changepoint_prior_scale: Some(
            PositiveFloat::try_new(p.changepoint_prior_scale).map_err(|e| err(e.to_string()))?,
        ),
        seasonality_mode: Some(match p.seasonality_mode {
            SeasonalityMode::Additive => FeatureMode::Additive,
            SeasonalityMode::Multiplicative => FeatureMode::Multiplicative,
        }),
        daily_seasonality: Some(daily),
        weekly_seasonality: Some(weekly),
        yearly_seasonality: Some(yearly),
        ..Default::default()
    };
    let (ds, y): (Vec<i64>, Vec<f64>) = reg
        .observed
        .iter()
        .enumerate()
        .filter(|&(_, &o)| o)
        .map(|(i, _)| (reg.timestamp(i), reg.values[i]))
        .unzip();
    let data = TrainingData::new(ds, y).map_err(|e| err(e.to_string()))?;
    let future = PredictionData::new(reg.future_timestamps(horizon));
    let pred = match p.optimizer {
        ProphetOptimizer::Native => {
            prophet_fit_predict(opts, NativeOptimizer::default(), data, future)
        }
        #[cfg(feature = "wasmstan")]
        ProphetOptimizer::Wasmstan => {
            prophet_fit_predict(opts, prophet_optimizer().clone(), data, future)
        }
        #[cfg(not(feature = "wasmstan"))]
        ProphetOptimizer::Wasmstan => {
            return Err(err(
                "this build has no wasmstan optimizer (cargo feature \"wasmstan\"); \
                 set [forecast.prophet] optimizer = \"native\""
                    .into(),
            ));
        }
    }
    .map_err(|e| err(e.to_string()))?;
    let (Some(lower), Some(upper)) = (pred.yhat.lower, pred.yhat.upper) else {
        return Err(err("no uncertainty intervals returned".into()));
    };
    let mut comps: Vec<&str> = pred.seasonalities.keys().map(String::as_str).collect();
    comps.sort_unstable();
    let via = match p.optimizer {
        ProphetOptimizer::Native => "",
        ProphetOptimizer::Wasmstan => ", wasmstan optimizer",
    };
    out.detail = if comps.is_empty() {
        format!("Prophet(no seasonality{via})")
    } else {
        format!("Prophet({}{via})", comps.join("+"))
    };
    out.periods = comps
        .iter()
        .filter_map(|c| c.parse::<PeriodName>().ok())
        .filter_map(|name| {
            season::calendar_period(name, reg.step).map(|steps| Period { name, steps })
        })
        .collect();
    Ok(augurs::Forecast {
        point: pred.yhat.point,
        intervals: Some(augurs::ForecastIntervals {
            level: settings.interval_width,
            lower,
            upper,
        }),
    })
}
