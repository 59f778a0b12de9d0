//! `auto`: per series, the candidate model with the lowest error at several past forecast
//! origins, with a band built from those errors (split-conformal style). Written here: augurs
//! has the models but no selection by rolling-origin validation.
//!
//! **Validation.** For origins `k = 1..=`[`ORIGINS`] the history up to `n − k·h` slots (`h` the
//! horizon) is forecast `h` slots ahead by every candidate ([`CANDIDATES`]) and scored by MAE
//! over the observed slots of the next `h`; only the history before the final forecast's origin
//! is used. An origin needs [`MIN_VALIDATION_FIT`] slots before it; a series without one origin
//! gets seasonal naive. The candidate with the lowest pooled MAE is fitted on the whole history
//! (ties go to the simpler, earlier candidate: seasonal naive first).
//!
//! **Band.** The chosen model's absolute validation errors, pooled over origins and steps,
//! give the half-width: their `⌈(m + 1)·level⌉`-th smallest of `m` (the split-conformal
//! quantile), the same at every step. Without validation errors the model's own band is kept.
//!
//! Prophet is not a candidate: at 50–300 ms a fit, validating it at three origins would cost
//! more than every other candidate together.

use super::model::{Forecast, forecast};
use super::regular::Regular;
use super::{ForecastError, ForecastSettings, ModelKind};

/// The models `auto` chooses among, simplest first.
pub const CANDIDATES: [ModelKind; 3] = [ModelKind::SeasonalNaive, ModelKind::Mstl, ModelKind::Ets];
/// Past origins validated at.
pub const ORIGINS: usize = 3;
/// Fewest slots of history before a validation origin.
pub const MIN_VALIDATION_FIT: usize = 64;

/// One candidate's validation: pooled MAE and its absolute errors.
#[derive(Debug, Clone)]
pub struct Validation {
    pub model: ModelKind,
    /// Pooled MAE over the validation slots (`None`: the model failed at an origin).
    pub mae: Option<f64>,
    errors: Vec<f64>,
}

/// The first `len` slots of `reg`.
fn prefix(reg: &Regular, len: usize) -> Regular {
    Regular {
        start: reg.start,
        step: reg.step,
        values: reg.values[..len].to_vec(),
        observed: reg.observed[..len].to_vec(),
        stats: Default::default(),
    }
}

/// Every candidate's validation on `reg` at `horizon` steps.
pub fn validate(reg: &Regular, settings: &ForecastSettings, horizon: usize) -> Vec<Validation> {
    let n = reg.len();
    let origins: Vec<usize> = (1..=ORIGINS)
        .filter_map(|k| n.checked_sub(k * horizon))
        .filter(|&cut| cut >= MIN_VALIDATION_FIT)
        .collect();
    let mut errors = vec![Vec::new(); CANDIDATES.len()];
    let mut failed = vec![origins.is_empty(); CANDIDATES.len()];
    for &cut in &origins {
        let history = prefix(reg, cut);
        for (c, &model) in CANDIDATES.iter().enumerate() {
            match forecast(&history, settings, model, horizon) {
                Ok(fc) => {
                    for (i, &p) in fc.point.iter().enumerate() {
                        let t = cut + i;
                        if t < n && reg.observed[t] {
                            errors[c].push((reg.values[t] - p).abs());
                        }
                    }
                }
                Err(_) => failed[c] = true,
            }
        }
    }
    CANDIDATES
        .iter()
        .zip(errors)
        .zip(failed)
        .map(|((&model, errors), failed)| {
            let mae = (!failed && !errors.is_empty())
                .then(|| errors.iter().sum::<f64>() / errors.len() as f64);
            Validation { model, mae, errors }
        })
        .collect()
}

/// The split-conformal half-width at `level` from absolute errors.
fn conformal(errors: &[f64], level: f64) -> Option<f64> {
    if errors.is_empty() {
        return None;
    }
    let mut e = errors.to_vec();
    e.sort_by(f64::total_cmp);
    let m = e.len();
    let k = ((m as f64 + 1.0) * level).ceil() as usize;
    Some(e[k.clamp(1, m) - 1])
}

/// Forecasts `horizon` steps with the model chosen by validation; see the module docs.
pub fn fit_auto(
    reg: &Regular,
    settings: &ForecastSettings,
    horizon: usize,
) -> Result<Forecast, ForecastError> {
    let vals = validate(reg, settings, horizon);
    let best = vals
        .iter()
        .filter_map(|v| Some((v, v.mae?)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(v, _)| v);
    let chosen = best.map_or(ModelKind::SeasonalNaive, |v| v.model);
    let mut fc = forecast(reg, settings, chosen, horizon)?;
    if let Some(q) = best.and_then(|v| conformal(&v.errors, settings.interval_width)) {
        fc.lower = fc.point.iter().map(|p| p - q).collect();
        fc.upper = fc.point.iter().map(|p| p + q).collect();
    }
    let why = match best {
        Some(_) => {
            let parts: Vec<String> = vals
                .iter()
                .map(|v| {
                    let mae = v.mae.map_or("failed".to_string(), crate::num::compact);
                    format!("{} {mae}", v.model)
                })
                .collect();
            format!("validation MAE {}", parts.join(", "))
        }
        None => "no validation origin: seasonal naive".to_string(),
    };
    fc.detail = format!("{chosen}: {} ({why})", fc.detail);
    fc.model = ModelKind::Auto;
    Ok(fc)
}
