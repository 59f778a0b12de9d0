//! `auto`: per series, the candidate model (or the mean of the best two) with the lowest error
//! at several past forecast origins, with a band built from those errors (split-conformal
//! style). Written here: augurs has the models but no selection by rolling-origin validation.
//!
//! **Validation.** For origins `k = 1..=`[`ORIGINS`] the history up to `n − k·h` slots (`h` the
//! horizon) is forecast `h` slots ahead by every candidate ([`CANDIDATES`]) and scored by MAE
//! over the observed slots of the next `h`; only the history before the final forecast's origin
//! is used. The mean of the [`ENSEMBLE`] candidates with the lowest MAE is scored on the same
//! origins as one more choice. An origin needs [`MIN_VALIDATION_FIT`] slots before it; a series
//! without one origin gets seasonal naive. The choice with the lowest pooled MAE is fitted on the
//! whole history (ties go to the simpler, earlier candidate: seasonal naive first). The
//! forecast's `detail` names the choice and its fit (`snaive: SNaive[288]`, stable between fits),
//! its `why` every choice's validation MAE.
//!
//! **Band.** The chosen model's absolute validation errors, pooled over origins and steps,
//! give the half-width: their `⌈(m + 1)·q⌉`-th smallest of `m` (the split-conformal quantile)
//! at `q = 1 − (1 − level)·`[`TAIL_SHARE`] (0.975 for 95 % bands), the same at every step of the
//! validated horizon and √k times that in the k-th horizon beyond it (the long view). Without
//! validation errors the model's own band is kept.
//!
//! **Constants** ([`ORIGINS`], [`ENSEMBLE`], [`TAIL_SHARE`]) were chosen on the held-out days
//! *before* the reported one (`forecast --all --holdout --before 1d` and `--before 2d`); see
//! `docs/forecasting.md` for both sets of figures.
//!
//! **Candidates.** Prophet is not one: at 50–300 ms a fit, validating it at three origins would
//! cost more than every other candidate together. Nor is ets: with smedian among the
//! candidates it added nothing on the tuning days (+30.9 % with it, +31.1 % without) and its
//! fits at every origin were half of auto's time. The seasonal periods are detected once per
//! history (each origin, and the whole), not once per candidate.

use super::model::{Forecast, forecast};
use super::regular::Regular;
use super::{ForecastError, ForecastSettings, ModelKind, SeasonChoice, season};

/// The models `auto` chooses among, simplest first.
pub const CANDIDATES: [ModelKind; 4] = [
    ModelKind::SeasonalNaive,
    ModelKind::SeasonalMedian,
    ModelKind::Theta,
    ModelKind::Mstl,
];
/// Past origins validated at.
pub const ORIGINS: usize = 3;
/// Fewest slots of history before a validation origin.
pub const MIN_VALIDATION_FIT: usize = 64;
/// The band's quantile is taken at `1 − (1 − level)·TAIL_SHARE` of the validation errors: they
/// come from the choice that did best at those origins, so they are optimistic for the next
/// horizon (at the full tail, 95 % bands covered 88–90 % at the tuning origins).
pub const TAIL_SHARE: f64 = 0.5;
/// Members of the ensemble: the candidates with the lowest validation MAE.
pub const ENSEMBLE: usize = 2;

/// What `auto` can choose: one candidate, or the mean of the best [`ENSEMBLE`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Choice {
    Model(ModelKind),
    Ensemble(Vec<ModelKind>),
}

impl std::fmt::Display for Choice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Choice::Model(m) => write!(f, "{m}"),
            Choice::Ensemble(ms) => {
                let names: Vec<&str> = ms.iter().map(|m| m.name()).collect();
                write!(f, "mean of {}", names.join("+"))
            }
        }
    }
}

/// One choice's validation: pooled MAE and its absolute errors.
#[derive(Debug, Clone)]
pub struct Validation {
    pub choice: Choice,
    /// Pooled MAE over the validation slots (`None`: a model failed at an origin).
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

/// `settings` with the seasonal periods detected once on `reg` when they are chosen
/// automatically (the same periods every candidate would detect on that history), so the
/// candidates fitted on one history share one detection: on long series the detection (a
/// periodogram and a trial MSTL) costs more than the seasonal naive fit itself.
fn with_periods(reg: &Regular, settings: &ForecastSettings) -> ForecastSettings {
    let mut s = settings.clone();
    if s.mstl_periods == SeasonChoice::Auto {
        s.mstl_periods = SeasonChoice::Fixed(
            season::auto_periods(&reg.values, reg.step)
                .iter()
                .map(|p| p.name)
                .collect(),
        );
    }
    s
}

fn mae(errors: &[f64]) -> f64 {
    errors.iter().sum::<f64>() / errors.len() as f64
}

/// Every candidate's validation on `reg` at `horizon` steps, then the ensemble of the best
/// [`ENSEMBLE`] (by those MAEs) validated on the same origins.
pub fn validate(reg: &Regular, settings: &ForecastSettings, horizon: usize) -> Vec<Validation> {
    let n = reg.len();
    let origins: Vec<usize> = (1..=ORIGINS)
        .filter_map(|k| n.checked_sub(k * horizon))
        .filter(|&cut| cut >= MIN_VALIDATION_FIT)
        .collect();
    // points[c][o]: candidate c's forecast at origin o (None: failed).
    let mut points: Vec<Vec<Option<Vec<f64>>>> = vec![Vec::new(); CANDIDATES.len()];
    for &cut in &origins {
        let history = prefix(reg, cut);
        let at_origin = with_periods(&history, settings);
        for (c, &model) in CANDIDATES.iter().enumerate() {
            points[c].push(
                forecast(&history, &at_origin, model, horizon)
                    .ok()
                    .map(|f| f.point),
            );
        }
    }
    // Absolute errors of a forecast per origin (None when one failed).
    let errors_of = |per_origin: &[Option<Vec<f64>>]| -> Option<Vec<f64>> {
        let mut out = Vec::new();
        for (&cut, fc) in origins.iter().zip(per_origin) {
            for (i, &p) in fc.as_ref()?.iter().enumerate() {
                let t = cut + i;
                if t < n && reg.observed[t] {
                    out.push((reg.values[t] - p).abs());
                }
            }
        }
        (!out.is_empty()).then_some(out)
    };
    let mut vals: Vec<Validation> = CANDIDATES
        .iter()
        .zip(&points)
        .map(|(&model, per_origin)| {
            let errors = errors_of(per_origin);
            Validation {
                choice: Choice::Model(model),
                mae: errors.as_deref().map(mae),
                errors: errors.unwrap_or_default(),
            }
        })
        .collect();
    let mut ranked: Vec<(usize, f64)> = vals
        .iter()
        .enumerate()
        .filter_map(|(c, v)| Some((c, v.mae?)))
        .collect();
    ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
    if ranked.len() >= ENSEMBLE {
        let members: Vec<usize> = ranked[..ENSEMBLE].iter().map(|&(c, _)| c).collect();
        let mean: Vec<Option<Vec<f64>>> = (0..origins.len())
            .map(|o| {
                let mut acc = vec![0.0; horizon];
                for &c in &members {
                    for (a, p) in acc.iter_mut().zip(points[c][o].as_ref()?) {
                        *a += p / members.len() as f64;
                    }
                }
                Some(acc)
            })
            .collect();
        let errors = errors_of(&mean);
        vals.push(Validation {
            choice: Choice::Ensemble(members.iter().map(|&c| CANDIDATES[c]).collect()),
            mae: errors.as_deref().map(mae),
            errors: errors.unwrap_or_default(),
        });
    }
    vals
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

/// A validated choice kept between fits ([`fit_auto_with`]): the choice, its band's
/// half-width and the reasons, valid until the series has grown by one validated horizon.
/// Serialisable, so batch runs (`--once`) can keep it between runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AutoMemo {
    pub choice: Choice,
    /// The conformal half-width at the validated horizon (`None`: the model's own band).
    pub half_width: Option<f64>,
    /// Why: every choice's validation MAE.
    pub why: String,
    /// The newest slot's timestamp when the validation ran.
    pub validated_end: i64,
    /// At least one validation origin was scored (otherwise the choice is seasonal naive by
    /// default and not kept).
    pub validated: bool,
    /// The horizon (slots) and slot length it validated at.
    horizon: usize,
    step: i64,
}

impl AutoMemo {
    /// Still valid for a fit of `reg` at `horizon` slots: it came from a validation (a series
    /// too short to validate is looked at again on every fit, so it is validated as soon as it
    /// can be), same horizon and slot, the history has not grown by a whole validated horizon
    /// since, and it has not gone back in time.
    pub fn fresh_for(&self, reg: &Regular, horizon: usize) -> bool {
        let end = reg.last_timestamp();
        let age = end - self.validated_end;
        self.validated
            && self.horizon == horizon
            && self.step == reg.step
            && (0..horizon as i64 * reg.step).contains(&age)
    }
}

/// Runs the validation and keeps what it decided.
fn choose(reg: &Regular, settings: &ForecastSettings, horizon: usize) -> AutoMemo {
    let vals = validate(reg, settings, horizon);
    let best = vals
        .iter()
        .filter_map(|v| Some((v, v.mae?)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(v, _)| v);
    let choice = best.map_or(Choice::Model(ModelKind::SeasonalNaive), |v| {
        v.choice.clone()
    });
    let level = 1.0 - (1.0 - settings.interval_width) * TAIL_SHARE;
    let half_width = best.and_then(|v| conformal(&v.errors, level));
    let why = match best {
        Some(_) => {
            let parts: Vec<String> = vals
                .iter()
                .map(|v| {
                    let mae = v.mae.map_or("failed".to_string(), crate::num::compact);
                    format!("{} {mae}", v.choice)
                })
                .collect();
            format!("validation MAE {}", parts.join(", "))
        }
        None => "no validation origin: seasonal naive".to_string(),
    };
    AutoMemo {
        validated: best.is_some(),
        choice,
        half_width,
        why,
        validated_end: reg.last_timestamp(),
        horizon,
        step: reg.step,
    }
}

/// Fits `choice` on the whole of `reg` for `steps` steps.
fn fit_choice(
    reg: &Regular,
    settings: &ForecastSettings,
    choice: &Choice,
    steps: usize,
) -> Result<Forecast, ForecastError> {
    match choice {
        Choice::Model(m) => forecast(reg, settings, *m, steps),
        Choice::Ensemble(ms) => {
            let fits = ms
                .iter()
                .map(|&m| forecast(reg, settings, m, steps))
                .collect::<Result<Vec<_>, _>>()?;
            let k = fits.len() as f64;
            let mut fc = fits[0].clone();
            for i in 0..steps {
                fc.point[i] = fits.iter().map(|f| f.point[i]).sum::<f64>() / k;
                fc.lower[i] = fits.iter().map(|f| f.lower[i]).sum::<f64>() / k;
                fc.upper[i] = fits.iter().map(|f| f.upper[i]).sum::<f64>() / k;
            }
            let details: Vec<&str> = fits.iter().map(|f| f.detail.as_str()).collect();
            fc.detail = details.join(" + ");
            Ok(fc)
        }
    }
}

/// Forecasts `steps` (≥ `horizon`) steps with the choice validation at `horizon` made; see the
/// module docs.
pub fn fit_auto(
    reg: &Regular,
    settings: &ForecastSettings,
    horizon: usize,
    steps: usize,
) -> Result<Forecast, ForecastError> {
    fit_auto_with(reg, settings, horizon, steps, None).map(|(fc, _)| fc)
}

/// [`fit_auto`] reusing `memo` while it is [fresh](AutoMemo::fresh_for): only the chosen
/// model is refitted, with the validated band, so a series costs one validation per horizon of
/// new data and otherwise one fit of its model. A stale memo, none, or a chosen model that
/// fails now, means a new validation. Returns the forecast and the memo to keep.
pub fn fit_auto_with(
    reg: &Regular,
    settings: &ForecastSettings,
    horizon: usize,
    steps: usize,
    memo: Option<&AutoMemo>,
) -> Result<(Forecast, AutoMemo), ForecastError> {
    let whole = with_periods(reg, settings);
    let kept = memo
        .filter(|m| m.fresh_for(reg, horizon))
        .and_then(|m| Some((fit_choice(reg, &whole, &m.choice, steps).ok()?, m.clone())));
    let (mut fc, memo, reused) = match kept {
        Some((fc, m)) => (fc, m, true),
        None => {
            let m = choose(reg, settings, horizon);
            (fit_choice(reg, &whole, &m.choice, steps)?, m, false)
        }
    };
    if let Some(q) = memo.half_width {
        // Beyond the validated horizon (the long view) errors of k horizons add up: √k.
        let width = |i: usize| q * ((i / horizon.max(1) + 1) as f64).sqrt();
        fc.lower = fc
            .point
            .iter()
            .enumerate()
            .map(|(i, p)| p - width(i))
            .collect();
        fc.upper = fc
            .point
            .iter()
            .enumerate()
            .map(|(i, p)| p + width(i))
            .collect();
    }
    let when = if reused {
        let end = reg.last_timestamp();
        format!(
            ", validated {} ago",
            // Whole minutes: "1h 35m".
            humantime::format_duration(std::time::Duration::from_secs(
                (end - memo.validated_end).max(0) as u64 / 60 * 60
            ))
        )
    } else {
        String::new()
    };
    fc.detail = format!("{}: {}", memo.choice, fc.detail);
    fc.why = Some(format!("{}{when}", memo.why));
    fc.model = ModelKind::Auto;
    Ok((fc, memo))
}
