//! Forecasting: Prophet, MSTL with an AutoETS trend, and plain AutoETS (all through `augurs`),
//! with prediction intervals, seasonality detection, held-out accuracy and a background service.
//!
//! * [`regular`]: puts a raw series (unsorted, duplicated, irregular, gappy) on a regular grid;
//!   every model fits the regular values, and forecast timestamps continue that grid.
//! * [`season`]: daily/weekly periods for a sampling interval, and automatic detection.
//! * [`history`]: what a forecast is fitted on: at most 288 buckets a day, at most 14 days.
//! * [`model`]: fitting and predicting ([`forecast`]), including the fallbacks for constant and
//!   short series.
//! * [`auto`]: choosing a model per series by rolling-origin validation, with conformal bands.
//! * [`capacity`]: time to a configured threshold, and the decimated long view.
//! * [`metrics`]: MAE, MASE, sMAPE and interval coverage on a held-out tail ([`holdout`]).
//! * [`service`]: the engine's forecast service (background fits, snapshots over a watch channel).
//! * [`cli`]: the `forecast` command.

pub mod auto;
pub mod capacity;
pub mod history;
pub mod metrics;
pub mod model;
pub mod prophet_native;
pub mod regular;
pub mod season;
pub mod series;
pub mod theta;

use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, ForecastConfig, ThresholdConfig};
use crate::domain::Named;
pub use crate::domain::{Expectation, ModelKind};

pub use capacity::{Capacity, Direction, Threshold, ThresholdRule};
pub use history::{ForecastHistory, MAX_BUCKETS};
pub use metrics::{Accuracy, Holdout, holdout};
pub use model::{Forecast, forecast, forecast_series};
pub use regular::{Regular, RegularStats, regularise};
pub use season::{Period, PeriodName};
pub use series::{Fitted, SeriesForecast};

/// Why a forecast could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForecastError {
    /// A bad `[forecast]` setting; the message names the key.
    #[error("config: {0}")]
    Config(String),
    /// Unusable input (mismatched lengths, no points, non-finite values).
    #[error("bad input: {0}")]
    Input(String),
    /// Not enough history for the requested fit.
    #[error("series too short: {0}")]
    TooShort(String),
    /// The model itself failed.
    #[error("{model} failed: {msg}")]
    Model { model: ModelKind, msg: String },
}

/// Prophet's seasonality mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeasonalityMode {
    Additive,
    Multiplicative,
}

/// Which seasonal components to fit: chosen automatically, or a fixed list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SeasonChoice {
    Auto,
    Fixed(Vec<PeriodName>),
}

/// Which optimizer fits Prophet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProphetOptimizer {
    /// augurs' WebAssembly build of Prophet's Stan model (JIT-compiled once per process).
    Wasmstan,
    /// [`prophet_native::NativeOptimizer`]: Stan's L-BFGS on the same objective, in Rust (the
    /// default).
    Native,
}

impl Named for SeasonalityMode {
    const WHAT: &'static str = "seasonality mode";
    fn all() -> &'static [Self] {
        &[SeasonalityMode::Additive, SeasonalityMode::Multiplicative]
    }
    fn name(self) -> &'static str {
        match self {
            SeasonalityMode::Additive => "additive",
            SeasonalityMode::Multiplicative => "multiplicative",
        }
    }
}

crate::named_serde!(SeasonalityMode);

impl Named for ProphetOptimizer {
    const WHAT: &'static str = "Prophet optimizer";
    fn all() -> &'static [Self] {
        &[ProphetOptimizer::Wasmstan, ProphetOptimizer::Native]
    }
    fn name(self) -> &'static str {
        match self {
            ProphetOptimizer::Wasmstan => "wasmstan",
            ProphetOptimizer::Native => "native",
        }
    }
}

crate::named_serde!(ProphetOptimizer);

/// Validated Prophet settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProphetSettings {
    pub changepoint_prior_scale: f64,
    pub seasonality_mode: SeasonalityMode,
    pub seasonalities: SeasonChoice,
    pub optimizer: ProphetOptimizer,
}

/// The `[forecast]` config, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForecastSettings {
    pub model: ModelKind,
    pub horizon: Duration,
    pub interval_width: f64,
    pub refresh: Duration,
    /// The long view and time-to-threshold horizon (at least `horizon` is always forecast).
    pub long_horizon: Duration,
    /// Capacity thresholds, first match wins.
    pub thresholds: Vec<ThresholdRule>,
    pub prophet: ProphetSettings,
    pub mstl_periods: SeasonChoice,
}

/// One threshold from `above`/`below`; `what` names the entry for errors.
fn threshold(
    what: &str,
    above: Option<f64>,
    below: Option<f64>,
) -> Result<Option<Threshold>, String> {
    let (value, direction) = match (above, below) {
        (None, None) => return Ok(None),
        (Some(v), None) => (v, Direction::Above),
        (None, Some(v)) => (v, Direction::Below),
        (Some(_), Some(_)) => {
            return Err(format!("{what}: set `above` or `below`, not both"));
        }
    };
    if !value.is_finite() {
        return Err(format!(
            "{what}: the threshold {value} is not a finite number"
        ));
    }
    Ok(Some(Threshold { value, direction }))
}

impl ForecastSettings {
    /// Validates `[forecast]`; errors name the offending key.
    pub fn from_config(cfg: &ForecastConfig) -> Result<Self, ForecastError> {
        let key_err =
            |key: &str, msg: String| ForecastError::Config(format!("forecast.{key}: {msg}"));
        let model = cfg.model;
        if cfg.horizon.is_zero() {
            return Err(key_err("horizon", "must be longer than 0s".into()));
        }
        if cfg.horizon.0 > Duration::from_secs(366 * 86_400) {
            return Err(key_err(
                "horizon",
                format!("{} is longer than the 366d allowed", cfg.horizon),
            ));
        }
        let w = cfg.interval_width;
        if !(w > 0.0 && w < 1.0) {
            return Err(key_err(
                "interval_width",
                format!("{w} is not strictly between 0 and 1 (e.g. 0.95 for 95 % intervals)"),
            ));
        }
        let cps = cfg.prophet.changepoint_prior_scale;
        if !(cps.is_finite() && cps > 0.0) {
            return Err(key_err(
                "prophet.changepoint_prior_scale",
                format!("{cps} must be a positive number (Prophet's default is 0.05)"),
            ));
        }
        let seasonality_mode = cfg.prophet.seasonality_mode;
        let optimizer = cfg.prophet.optimizer;
        let seasonalities = season_choice(&cfg.prophet.seasonalities)
            .map_err(|e| key_err("prophet.seasonalities", e))?;
        let mstl_periods =
            season_choice(&cfg.mstl.periods).map_err(|e| key_err("mstl.periods", e))?;
        if cfg.long_horizon.0 > Duration::from_secs(366 * 86_400) {
            return Err(key_err(
                "long_horizon",
                format!("{} is longer than the 366d allowed", cfg.long_horizon),
            ));
        }
        let mut thresholds = Vec::with_capacity(cfg.thresholds.len());
        for (i, t) in cfg.thresholds.iter().enumerate() {
            let ThresholdConfig {
                series,
                above,
                below,
            } = t;
            let what = format!("forecast.thresholds[{i}] (series {series:?})");
            if series.trim().is_empty() {
                return Err(ForecastError::Config(format!(
                    "{what}: `series` is empty (a series id, `*` for any run of characters)"
                )));
            }
            match threshold(&what, *above, *below).map_err(ForecastError::Config)? {
                Some(threshold) => thresholds.push(ThresholdRule {
                    pattern: series.clone(),
                    threshold,
                }),
                None => {
                    return Err(ForecastError::Config(format!(
                        "{what}: set `above` (e.g. 0.9) or `below`"
                    )));
                }
            }
        }
        Ok(ForecastSettings {
            model,
            horizon: cfg.horizon.0,
            interval_width: w,
            refresh: cfg.refresh.0,
            long_horizon: cfg.long_horizon.0,
            thresholds,
            prophet: ProphetSettings {
                changepoint_prior_scale: cps,
                seasonality_mode,
                seasonalities,
                optimizer,
            },
            mstl_periods,
        })
    }
}

impl ForecastSettings {
    /// [`ForecastSettings::from_config`] plus the thresholds set on `[[prometheus.queries]]`
    /// (after those of `[[forecast.thresholds]]`: an explicit series rule wins).
    pub fn for_config(cfg: &Config) -> Result<Self, ForecastError> {
        let mut s = Self::from_config(&cfg.forecast)?;
        for (i, q) in cfg.prometheus.queries.iter().enumerate() {
            let what = format!("prometheus.queries[{i}] (name {:?})", q.name);
            if let Some(threshold) =
                threshold(&what, q.above, q.below).map_err(ForecastError::Config)?
            {
                for pattern in [q.name.clone(), format!("{}{{*", q.name)] {
                    s.thresholds.push(ThresholdRule { pattern, threshold });
                }
            }
        }
        Ok(s)
    }

    /// The threshold of `series`, if one is configured.
    pub fn threshold_for(&self, series: &str) -> Option<Threshold> {
        capacity::threshold_for(&self.thresholds, series)
    }
}

impl Default for ForecastSettings {
    fn default() -> Self {
        ForecastSettings {
            model: ModelKind::Auto,
            horizon: Duration::from_secs(86_400),
            interval_width: 0.95,
            refresh: Duration::from_secs(60),
            long_horizon: Duration::from_secs(7 * 86_400),
            thresholds: Vec::new(),
            prophet: ProphetSettings {
                changepoint_prior_scale: 0.05,
                seasonality_mode: SeasonalityMode::Additive,
                seasonalities: SeasonChoice::Auto,
                optimizer: ProphetOptimizer::Native,
            },
            mstl_periods: SeasonChoice::Auto,
        }
    }
}

/// `["auto"]` or a non-empty list of distinct period names.
fn season_choice(list: &[String]) -> Result<SeasonChoice, String> {
    if list.is_empty() {
        return Err("empty list: write [\"auto\"] or e.g. [\"daily\", \"weekly\"]".into());
    }
    if list.iter().any(|s| s.trim().eq_ignore_ascii_case("auto")) {
        if list.len() > 1 {
            return Err("\"auto\" cannot be combined with other entries".into());
        }
        return Ok(SeasonChoice::Auto);
    }
    let mut names = Vec::with_capacity(list.len());
    for s in list {
        let p: PeriodName = s.parse()?;
        if names.contains(&p) {
            return Err(format!("{:?} is listed twice", p.as_str()));
        }
        names.push(p);
    }
    names.sort();
    Ok(SeasonChoice::Fixed(names))
}
