//! Theta with seasonal adjustment and an optimised theta (written here: augurs has no Theta
//! model, and no well-kept Rust crate does).
//!
//! 1. **Seasonal adjustment** by classical decomposition at each period mstl would use
//!    (shortest first): a centred moving average over one period (a 2×P average for an even P),
//!    the difference (additive) or ratio (multiplicative) of the series to it, averaged per
//!    position in the cycle and normalised to mean 0 (or 1). Both are fitted when every value is
//!    positive, and the one with the smaller in-sample one-step squared error (on the data's
//!    scale) is kept; otherwise additive. On the tuning days of NAB (`--before 1d`, `2d`) this
//!    choice gave −0.5 % skill against seasonal naive, multiplicative-when-positive −2.1 % and
//!    additive always −5.0 %.
//! 2. **Theta lines** on the adjusted series `x`: the least-squares line `L(t) = a + b·t` and
//!    `Z_θ(t) = θ·x(t) + (1 − θ)·L(t)`. Simple exponential smoothing (SES, level `ℓ`, smoothing
//!    `α`) runs over `Z_θ`; the forecast `h` steps after the last slot `n − 1` is
//!    `(1 − 1/θ)·L(n − 1 + h) + ℓ/θ`: for θ = 2 the classical Theta method (half the line, half
//!    the smoothed θ=2 line), for θ = 1 plain SES.
//! 3. **Optimised theta** (in the spirit of Fiorucci et al.'s optimised Theta model): θ in
//!    `[1, `[`THETA_MAX`]`]` and α in `(0, 1)` minimise the in-sample one-step squared error of
//!    that forecast, by nested golden-section searches. The one-step error of the combination is
//!    the SES error over `Z_θ` divided by θ, so every θ is judged on the scale of the data.
//! 4. **Band:** the normal interval of SES, `± z·σ·√(1 + (h − 1)·α²)` with `σ` the in-sample
//!    one-step error's standard deviation, then re-seasonalised like the point forecast.
//!
//! The whole history is used (the forecast history is at most 14 days of 288 slots): the line
//! carries the drift, SES the recent level.

use super::model::Forecast;
use super::regular::Regular;
use super::season::Period;

/// Largest theta searched: the forecast carries up to `1 − 1/θ` = 95 % of the line's slope. On
/// NAB's tuning days (`--before 1d`, `2d`) a cap of 5, 20 or 100 gives auto the same skill
/// (+13.05 % mean) and theta alone −0.45, −0.65, −0.70 %; a cap of 5 left a fifth of a linear
/// trend out (time to threshold 23 % late on a linear fill), 20 is within 1 % there.
pub const THETA_MAX: f64 = 20.0;

/// Golden-section iterations for each of θ and α (interval shrinks by 0.618 each).
const GOLDEN_STEPS: usize = 16;

/// A fitted seasonal adjustment: one index per position in each period.
struct Seasonal {
    multiplicative: bool,
    /// (period in steps, index per position; position of slot `t` is `t % period`).
    indices: Vec<(usize, Vec<f64>)>,
}

impl Seasonal {
    fn adjust(&self, t: usize, v: f64) -> f64 {
        self.indices.iter().fold(v, |v, (p, s)| {
            if self.multiplicative {
                v / s[t % p]
            } else {
                v - s[t % p]
            }
        })
    }

    fn restore(&self, t: usize, v: f64) -> f64 {
        self.indices.iter().fold(v, |v, (p, s)| {
            if self.multiplicative {
                v * s[t % p]
            } else {
                v + s[t % p]
            }
        })
    }
}

/// Classical decomposition indices of `y` at period `p` (`None` when `y` is shorter than two
/// periods or a centred average is not positive in multiplicative mode).
fn indices(y: &[f64], p: usize, multiplicative: bool) -> Option<Vec<f64>> {
    let n = y.len();
    if p < 2 || n < 2 * p {
        return None;
    }
    let mut prefix = Vec::with_capacity(n + 1);
    prefix.push(0.0);
    for &v in y {
        prefix.push(prefix[prefix.len() - 1] + v);
    }
    let window = |a: usize, b: usize| (prefix[b] - prefix[a]) / (b - a) as f64;
    let (mut sum, mut count) = (vec![0.0; p], vec![0usize; p]);
    let half = p / 2;
    for t in half..n - half {
        let cma = if p % 2 == 1 {
            window(t - half, t + half + 1)
        } else if t + half < n {
            // 2×P moving average: the mean of the two P-averages around t.
            0.5 * (window(t - half, t + half) + window(t + 1 - half, t + half + 1))
        } else {
            continue;
        };
        let r = if multiplicative {
            if cma <= 0.0 {
                return None;
            }
            y[t] / cma
        } else {
            y[t] - cma
        };
        sum[t % p] += r;
        count[t % p] += 1;
    }
    let mut s: Vec<f64> = sum
        .iter()
        .zip(&count)
        .map(|(&s, &c)| if c > 0 { s / c as f64 } else { f64::NAN })
        .collect();
    let known: Vec<f64> = s.iter().copied().filter(|v| v.is_finite()).collect();
    if known.is_empty() {
        return None;
    }
    let mean = known.iter().sum::<f64>() / known.len() as f64;
    let neutral = if multiplicative { 1.0 } else { 0.0 };
    for v in &mut s {
        *v = if !v.is_finite() {
            neutral
        } else if multiplicative {
            *v / mean
        } else {
            *v - mean
        };
    }
    if multiplicative && s.iter().any(|&v| v <= 0.0) {
        return None;
    }
    Some(s)
}

fn seasonal(y: &[f64], periods: &[Period], multiplicative: bool) -> Seasonal {
    let mut steps: Vec<usize> = periods.iter().map(|p| p.steps).collect();
    steps.sort_unstable();
    let mut out = Seasonal {
        multiplicative,
        indices: Vec::new(),
    };
    let mut x = y.to_vec();
    for p in steps {
        if let Some(s) = indices(&x, p, multiplicative) {
            let one = Seasonal {
                multiplicative,
                indices: vec![(p, s)],
            };
            for (t, v) in x.iter_mut().enumerate() {
                *v = one.adjust(t, *v);
            }
            out.indices.extend(one.indices);
        }
    }
    out
}

/// Least-squares line `a + b·t` over `t = 0..n`.
fn line(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let tm = (n - 1.0) / 2.0;
    let xm = x.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (t, &v) in x.iter().enumerate() {
        let dt = t as f64 - tm;
        sxy += dt * (v - xm);
        sxx += dt * dt;
    }
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (xm - b * tm, b)
}

/// SES over `Z_θ`: (sum of squared one-step errors of the combination, final level).
fn ses(x: &[f64], (a, b): (f64, f64), theta: f64, alpha: f64) -> (f64, f64) {
    let z = |t: usize| theta * x[t] + (1.0 - theta) * (a + b * t as f64);
    let mut level = z(0);
    let mut sse = 0.0;
    for t in 1..x.len() {
        let zt = z(t);
        let e = (zt - level) / theta;
        sse += e * e;
        level += alpha * (zt - level);
    }
    (sse, level)
}

/// Minimises `f` over `[lo, hi]` by golden-section search; returns the argument.
fn golden(lo: f64, hi: f64, mut f: impl FnMut(f64) -> f64) -> f64 {
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (lo, hi);
    let mut c = b - g * (b - a);
    let mut d = a + g * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..GOLDEN_STEPS {
        if fc <= fd {
            b = d;
            d = c;
            fd = fc;
            c = b - g * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + g * (b - a);
            fd = f(d);
        }
    }
    if fc <= fd { c } else { d }
}

/// The standard normal quantile at probability `p` (Acklam's rational approximation, relative
/// error below 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// One fitted theta model on the seasonally adjusted series.
struct Fit {
    season: Seasonal,
    ab: (f64, f64),
    theta: f64,
    alpha: f64,
    level: f64,
    /// In-sample one-step errors on the scale of the data (re-seasonalised).
    sse: f64,
}

fn fit_one(y: &[f64], periods: &[Period], multiplicative: bool) -> Fit {
    let season = seasonal(y, periods, multiplicative);
    let x: Vec<f64> = y
        .iter()
        .enumerate()
        .map(|(t, &v)| season.adjust(t, v))
        .collect();
    let ab = line(&x);
    let best_alpha = |theta: f64| golden(1e-3, 1.0, |alpha| ses(&x, ab, theta, alpha).0);
    let theta = golden(1.0, THETA_MAX, |theta| {
        ses(&x, ab, theta, best_alpha(theta)).0
    });
    let alpha = best_alpha(theta);
    // The one-step forecasts again, re-seasonalised, for the data-scale error.
    let (a, b) = ab;
    let line_at = |t: usize| a + b * t as f64;
    let mut level = theta * x[0] + (1.0 - theta) * line_at(0);
    let mut sse = 0.0;
    for t in 1..x.len() {
        let fitted = (1.0 - 1.0 / theta) * line_at(t) + level / theta;
        let e = y[t] - season.restore(t, fitted);
        sse += e * e;
        let zt = theta * x[t] + (1.0 - theta) * line_at(t);
        level += alpha * (zt - level);
    }
    Fit {
        season,
        ab,
        theta,
        alpha,
        level,
        sse,
    }
}

/// Fits Theta on `reg` with seasonal `periods` and forecasts `horizon` steps; see the module
/// docs; sets `out`'s detail and periods.
pub(crate) fn fit_theta(
    reg: &Regular,
    periods: &[Period],
    horizon: usize,
    out: &mut Forecast,
) -> augurs::Forecast {
    let y = &reg.values;
    let n = y.len();
    // Additive always; multiplicative too when every value is positive and there is a cycle:
    // the one with the smaller in-sample one-step error on the data's scale is kept.
    let add = fit_one(y, periods, false);
    let fit = if !periods.is_empty() && y.iter().all(|&v| v > 0.0) {
        let mul = fit_one(y, periods, true);
        if mul.sse < add.sse { mul } else { add }
    } else {
        add
    };
    let Fit {
        season,
        ab: (a, b),
        theta,
        alpha,
        level,
        sse,
    } = fit;
    let sigma = (sse / (n - 1).max(1) as f64).sqrt();
    let z = normal_quantile(0.5 + out.level / 2.0);
    let mut point = Vec::with_capacity(horizon);
    let (mut lower, mut upper) = (Vec::with_capacity(horizon), Vec::with_capacity(horizon));
    for h in 1..=horizon {
        let t = n - 1 + h;
        let p = season.restore(t, (1.0 - 1.0 / theta) * (a + b * t as f64) + level / theta);
        let w = z * sigma * (1.0 + (h as f64 - 1.0) * alpha * alpha).sqrt();
        point.push(p);
        lower.push(p - w);
        upper.push(p + w);
    }
    let kind = if season.indices.is_empty() {
        String::new()
    } else {
        let ps: Vec<String> = season.indices.iter().map(|(p, _)| p.to_string()).collect();
        format!(
            "{}[{}], ",
            if season.multiplicative { "×" } else { "+" },
            ps.join(",")
        )
    };
    out.detail = format!("Theta({kind}θ={theta:.2}, α={alpha:.3})");
    out.periods = periods
        .iter()
        .filter(|p| season.indices.iter().any(|(s, _)| *s == p.steps))
        .copied()
        .collect();
    augurs::Forecast {
        point,
        intervals: Some(augurs::ForecastIntervals {
            level: out.level,
            lower,
            upper,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantile_matches_known_values() {
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-8);
        assert!((normal_quantile(0.5)).abs() < 1e-12);
        assert!((normal_quantile(0.001) + 3.090_232_306_167_813).abs() < 1e-7);
    }

    #[test]
    fn line_recovers_slope_and_intercept() {
        let x: Vec<f64> = (0..50).map(|t| 3.0 + 0.5 * t as f64).collect();
        let (a, b) = line(&x);
        assert!((a - 3.0).abs() < 1e-9 && (b - 0.5).abs() < 1e-12);
    }

    #[test]
    fn multiplicative_indices_recover_a_cycle() {
        let pat = [0.5, 1.0, 1.5, 1.0];
        let y: Vec<f64> = (0..40).map(|t| 10.0 * pat[t % 4]).collect();
        let s = indices(&y, 4, true).expect("indices");
        for (got, want) in s.iter().zip(pat) {
            assert!((got - want).abs() < 1e-9, "{s:?}");
        }
    }
}
