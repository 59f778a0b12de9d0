//! A native optimizer for augurs-prophet: the MAP problem of Prophet's Stan model
//! (`prophet.stan`), solved in plain Rust with analytic gradients by Stan's own L-BFGS, behind
//! augurs' [`Optimizer`] trait. It replaces the WebAssembly Stan optimizer (no JIT start, no JSON,
//! no WebAssembly): same model, same priors, same unconstrained parameterisation (`σ = e^u`), same
//! search.
//!
//! The objective (negative log density without constants, as Stan's `optimize` computes it;
//! `μ` the model's mean):
//!
//! ```text
//! T·u + Σ (y − μ)² / (2σ²) + k²/50 + m²/50 + Σ|δ|/τ + 2σ² + Σ β²/(2·sigmas²)   [− u with Jacobian]
//! μ = trend · (1 + X(β∘s_m)) + X(β∘s_a),  trend = (k + A·δ)∘t + (m + A·(−t_change∘δ))
//! ```
//!
//! Linear and flat trends are supported; logistic growth returns an error (pulsewatch fits linear
//! trends only; `optimizer = "wasmstan"` runs Stan's model itself). The search is Stan's L-BFGS
//! step for step (`BFGSMinimizer` with `LBFGSUpdate` and `WolfeLineSearch`, as
//! `stan/optimization/*.hpp` define them, with Stan's defaults: history 5, first step 1e-3, the
//! same stopping rules in the same order). Prophet's
//! objective is flat near its optimum and not smooth (the L1 prior on `δ`), so where a search
//! stops decides the forecast: another search reaching a *lower* objective (an earlier version of
//! this module, L-BFGS then OWL-QN) forecast worse than Stan (median MASE 1.640 against 1.610 on
//! NAB's held-out day). With Stan's search the iterates agree with Stan's to rounding (1e-14
//! relative over the first twenty iterations); later the paths part, as rounding differences grow
//! along a flat valley, by about as much as Stan's own result moves when the seasonal columns are
//! given in another order (`docs/forecasting.md`). Written by hand: no crate implements Stan's
//! line search and stopping rules, and the parity depends on them.

use augurs::prophet::TrendIndicator;
use augurs::prophet::optimizer::{
    Data, Error as OptError, InitialParams, OptimizeOpts, OptimizedParams, Optimizer,
};

/// Stan's L-BFGS on Prophet's objective. See the module docs.
#[derive(Debug, Clone, Copy)]
pub struct NativeOptimizer {
    /// Iteration limit when the options set none (Prophet's Python package passes 10,000).
    pub max_iter: usize,
}

impl Default for NativeOptimizer {
    fn default() -> Self {
        NativeOptimizer { max_iter: 10_000 }
    }
}

struct Problem<'a> {
    d: &'a Data,
    /// Number of changepoints at or before each t.
    active: Vec<usize>,
    flat: bool,
    jacobian: bool,
    s: usize,
    k: usize,
}

impl<'a> Problem<'a> {
    /// The problem of `d` (a logistic trend is read as linear: the caller rejects it).
    fn new(d: &'a Data, jacobian: bool) -> Self {
        Problem {
            d,
            active: d
                .t
                .iter()
                .map(|&t| d.t_change.partition_point(|&c| c <= t))
                .collect(),
            flat: d.trend_indicator == TrendIndicator::Flat,
            jacobian,
            s: d.t_change.len(),
            k: d.K.max(0) as usize,
        }
    }

    fn dim(&self) -> usize {
        3 + self.s + self.k
    }

    /// Objective and gradient at `x = [k, m, δ…, u, β…]`; `trend` receives the trend.
    // Several parallel arrays are indexed together; index loops read best here.
    #[allow(clippy::needless_range_loop)]
    fn eval(&self, x: &[f64], g: &mut [f64], trend: &mut [f64]) -> f64 {
        let (s, kk) = (self.s, self.k);
        let d = self.d;
        let (k, m) = (x[0], x[1]);
        let delta = &x[2..2 + s];
        let u = x[2 + s];
        let beta = &x[3 + s..];
        let n = d.y.len();
        // Prefix sums of δ and t_change·δ.
        let mut dsum = vec![0.0; s + 1];
        let mut esum = vec![0.0; s + 1];
        for j in 0..s {
            dsum[j + 1] = dsum[j] + delta[j];
            esum[j + 1] = esum[j] + d.t_change[j] * delta[j];
        }
        let bm: Vec<f64> = (0..kk).map(|j| beta[j] * f64::from(d.s_m[j])).collect();
        let ba: Vec<f64> = (0..kk).map(|j| beta[j] * f64::from(d.s_a[j])).collect();
        let any_m = bm.iter().any(|&v| v != 0.0);
        let sigma2 = (2.0 * u).exp();
        g.iter_mut().for_each(|v| *v = 0.0);
        let mut sse = 0.0;
        // Per-changepoint-bucket sums of g_trend and g_trend·t.
        let mut b0 = vec![0.0; s + 1];
        let mut b1 = vec![0.0; s + 1];
        let (mut gk, mut gm) = (0.0, 0.0);
        let gb = &mut vec![0.0; kk];
        for i in 0..n {
            let c = self.active[i];
            let ti = d.t[i];
            let tr = if self.flat {
                m
            } else {
                (k + dsum[c]) * ti + (m - esum[c])
            };
            trend[i] = tr;
            let row = &d.X[i * kk..(i + 1) * kk];
            let (mut xm, mut xa) = (0.0, 0.0);
            for j in 0..kk {
                xa += row[j] * ba[j];
            }
            if any_m {
                for j in 0..kk {
                    xm += row[j] * bm[j];
                }
            }
            let r = d.y[i] - (tr * (1.0 + xm) + xa);
            sse += r * r;
            let g_mu = -r / sigma2;
            let g_tr = g_mu * (1.0 + xm);
            if !self.flat {
                gk += g_tr * ti;
                b0[c] += g_tr;
                b1[c] += g_tr * ti;
            }
            gm += g_tr;
            for j in 0..kk {
                let dj = f64::from(d.s_a[j]) + tr * f64::from(d.s_m[j]);
                gb[j] += g_mu * row[j] * dj;
            }
        }
        let tau = f64::from(d.tau);
        let mut f = n as f64 * u + sse / (2.0 * sigma2) + (k * k + m * m) / 50.0 + 2.0 * sigma2;
        g[0] = gk + k / 25.0;
        g[1] = gm + m / 25.0;
        // dδ_j = Σ_{i: active_i > j} g_tr_i (t_i − t_change_j)
        let (mut s0, mut s1) = (0.0, 0.0);
        for j in (0..s).rev() {
            s0 += b0[j + 1];
            s1 += b1[j + 1];
            let dj = delta[j];
            g[2 + j] = s1 - d.t_change[j] * s0 + dj.signum() * f64::from(dj != 0.0) / tau;
            f += dj.abs() / tau;
        }
        g[2 + s] = n as f64 - sse / sigma2 + 4.0 * sigma2;
        if self.jacobian {
            f -= u;
            g[2 + s] -= 1.0;
        }
        for j in 0..kk {
            let sc = f64::from(d.sigmas[j]);
            f += beta[j] * beta[j] / (2.0 * sc * sc);
            g[3 + s + j] = gb[j] + beta[j] / (sc * sc);
        }
        f
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Optimizer for NativeOptimizer {
    fn optimize(
        &self,
        init: &InitialParams,
        data: &Data,
        opts: &OptimizeOpts,
    ) -> Result<OptimizedParams, OptError> {
        if data.trend_indicator == TrendIndicator::Logistic {
            return Err(OptError::static_str(
                "the native optimizer supports linear and flat trends only",
            ));
        }
        let (n, kk) = (data.y.len(), data.K.max(0) as usize);
        if data.t.len() != n || data.X.len() != n * kk || data.sigmas.len() != kk {
            return Err(OptError::static_str("inconsistent Prophet data dimensions"));
        }
        if data.t.windows(2).any(|w| w[1] < w[0]) || data.t_change.windows(2).any(|w| w[1] < w[0]) {
            return Err(OptError::static_str("times or changepoints are not sorted"));
        }
        let p = Problem::new(data, opts.jacobian.unwrap_or(false));
        let dim = p.dim();
        let mut x = Vec::with_capacity(dim);
        x.push(init.k);
        x.push(init.m);
        x.extend_from_slice(&init.delta);
        x.push(f64::from(init.sigma_obs).ln());
        x.extend_from_slice(&init.beta);
        if x.len() != dim {
            return Err(OptError::static_str(
                "initial parameters have the wrong size",
            ));
        }
        let mut trend = vec![0.0; n];
        let max_iter = opts.iter.map_or(self.max_iter, |i| i as usize);
        stan_lbfgs(&p, &mut x, opts, max_iter, &mut trend)?;
        finish(&p, &x, trend)
    }
}

/// The optimised parameters at `x` (the trend recomputed there).
fn finish(p: &Problem<'_>, x: &[f64], mut trend: Vec<f64>) -> Result<OptimizedParams, OptError> {
    let s = p.s;
    let mut g = vec![0.0; x.len()];
    let _ = p.eval(x, &mut g, &mut trend);
    let sigma = x[2 + s].exp();
    Ok(OptimizedParams {
        k: x[0],
        m: x[1],
        sigma_obs: sigma
            .try_into()
            .map_err(|_| OptError::string(format!("sigma_obs {sigma} is not positive")))?,
        delta: x[2..2 + s].to_vec(),
        beta: x[3 + s..].to_vec(),
        trend,
    })
}

/// Prophet's objective (see the module docs) at `params`, for checking optimizers against each
/// other: lower is better.
pub fn objective(data: &Data, params: &OptimizedParams, jacobian: bool) -> f64 {
    let p = Problem::new(data, jacobian);
    let mut x = vec![params.k, params.m];
    x.extend_from_slice(&params.delta);
    x.push(f64::from(params.sigma_obs).ln());
    x.extend_from_slice(&params.beta);
    let mut g = vec![0.0; x.len()];
    let mut trend = vec![0.0; data.y.len()];
    p.eval(&x, &mut g, &mut trend)
}

/// Stan's line-search constants (`LSOptions` in `stan/optimization/bfgs.hpp`): the Wolfe
/// parameters, the smallest step, at most 20 trial steps and 10 halvings after a failed
/// evaluation.
const LS_C1: f64 = 1e-4;
const LS_C2: f64 = 0.9;
const LS_MIN_ALPHA: f64 = 1e-12;
const LS_MAX_ITS: usize = 20;
const LS_MAX_RESTARTS: usize = 10;
/// The bracket width at which Stan's zoom gives up.
const LS_MIN_RANGE: f64 = 1e-16;

/// The value and gradient at `x`, or `None` where either is not finite (Stan's model adaptor
/// reports a failed evaluation there).
fn evaluate(p: &Problem<'_>, x: &[f64], g: &mut [f64], trend: &mut [f64]) -> Option<f64> {
    let f = p.eval(x, g, trend);
    (f.is_finite() && g.iter().all(|v| v.is_finite())).then_some(f)
}

/// The minimiser on `[lo, hi]` of the cubic through `(0, 0)` with slope `df0` and `(x1, f1)`
/// with slope `df1` (Stan's `CubicInterp`).
fn cubic_interp(df0: f64, x1: f64, f1: f64, df1: f64, lo: f64, hi: f64) -> f64 {
    let c3 = (-12.0 * f1 + 6.0 * x1 * (df0 + df1)) / (x1 * x1 * x1);
    let c2 = -(4.0 * df0 + 2.0 * df1) / x1 + 6.0 * f1 / (x1 * x1);
    let c1 = df0;
    let cubic = |x: f64| x * (x * (x * c3 / 3.0 + c2) / 2.0 + c1);
    let t_s = (c2 * c2 - 2.0 * c1 * c3).sqrt();
    let (s1, s2) = (-(c2 + t_s) / c3, -(c2 - t_s) / c3);
    let (mut min_x, mut min_f) = (lo, cubic(lo));
    if cubic(hi) < min_f {
        (min_x, min_f) = (hi, cubic(hi));
    }
    for s in [s1, s2] {
        if lo < s && s < hi && cubic(s) < min_f {
            (min_x, min_f) = (s, cubic(s));
        }
    }
    min_x
}

/// One trial point of a line search: where it is, its value and its gradient.
struct Trial<'a> {
    x: &'a mut [f64],
    f: f64,
    g: &'a mut [f64],
}

/// The start of a line search: the point, its value and gradient, the direction, and the
/// Wolfe thresholds `c1·g·p` and `c2·g·p`.
struct LineStart<'a> {
    x0: &'a [f64],
    f0: f64,
    p: &'a [f64],
    /// The slope `g·p` at the start, and its Wolfe multiples.
    dfp: f64,
    c1dfp: f64,
    c2dfp: f64,
}

impl LineStart<'_> {
    fn put(&self, alpha: f64, x: &mut [f64]) {
        for ((o, a), d) in x.iter_mut().zip(self.x0).zip(self.p) {
            *o = a + alpha * d;
        }
    }
}

/// Stan's `WolfLSZoom`: shrinks the bracket `[lo, hi]` (each end: step, value, slope) by
/// cubic interpolation, bisecting every fifth time, until a step meets the strong Wolfe
/// conditions; `false` when the bracket collapses.
fn zoom(
    p: &Problem<'_>,
    ls: &LineStart<'_>,
    alpha: &mut f64,
    t: &mut Trial<'_>,
    trend: &mut [f64],
    lo: (f64, f64, f64),
    hi: (f64, f64, f64),
) -> bool {
    let ((mut alo, mut alo_f, mut alo_dfp), (mut ahi, mut ahi_f, mut ahi_dfp)) = (lo, hi);
    let mut it = 0usize;
    loop {
        it += 1;
        // Also stop when no double lies strictly between the ends (Stan's later fix for a
        // bracket that can no longer shrink).
        if (alo - ahi).abs() < LS_MIN_RANGE || libm::nextafter(alo, ahi) == ahi {
            return false;
        }
        if it.is_multiple_of(5) {
            *alpha = 0.5 * (alo + ahi);
        } else {
            let d1 = alo_dfp + ahi_dfp - 3.0 * (alo_f - ahi_f) / (alo - ahi);
            let mut d2 = (d1 * d1 - alo_dfp * ahi_dfp).sqrt();
            if ahi < alo {
                d2 = -d2;
            }
            *alpha = ahi - (ahi - alo) * (ahi_dfp + d2 - d1) / (ahi_dfp - alo_dfp + 2.0 * d2);
            let w = 0.01 * (alo - ahi).abs();
            if !alpha.is_finite() || *alpha < alo.min(ahi) + w || *alpha > alo.max(ahi) - w {
                *alpha = 0.5 * (alo + ahi);
            }
        }
        ls.put(*alpha, t.x);
        loop {
            if let Some(f) = evaluate(p, t.x, t.g, trend) {
                t.f = f;
                break;
            }
            let prev = *alpha;
            *alpha = 0.5 * (*alpha + alo.min(ahi));
            if (alo.min(ahi) - *alpha).abs() < LS_MIN_RANGE || *alpha == prev {
                return false;
            }
            ls.put(*alpha, t.x);
        }
        let dfp = dot(t.g, ls.p);
        if t.f > ls.f0 + *alpha * ls.c1dfp || t.f >= alo_f {
            (ahi, ahi_f, ahi_dfp) = (*alpha, t.f, dfp);
        } else {
            if dfp.abs() <= -ls.c2dfp {
                return true;
            }
            if dfp * (ahi - alo) >= 0.0 {
                (ahi, ahi_f, ahi_dfp) = (alo, alo_f, alo_dfp);
            }
            (alo, alo_f, alo_dfp) = (*alpha, t.f, dfp);
        }
    }
}

/// Stan's `WolfeLineSearch` from `x0` along `p`, first trying the step `alpha` and growing it
/// tenfold until the minimum is bracketed; the accepted step is left in `alpha` and the point
/// in `t`. As in Stan, the sufficient-decrease test before the zoom uses the first step.
fn wolfe(
    p: &Problem<'_>,
    ls: &LineStart<'_>,
    alpha: &mut f64,
    t: &mut Trial<'_>,
    trend: &mut [f64],
) -> bool {
    let (mut alpha0, mut alpha1) = (LS_MIN_ALPHA, *alpha);
    let (mut prev_f, mut prev_dfp) = (ls.f0, ls.dfp);
    let (mut nits, mut restarts) = (0usize, 0usize);
    loop {
        if nits >= LS_MAX_ITS {
            return false;
        }
        ls.put(alpha1, t.x);
        let Some(f) = evaluate(p, t.x, t.g, trend) else {
            if restarts >= LS_MAX_RESTARTS {
                return false;
            }
            alpha1 = 0.5 * (alpha0 + alpha1);
            restarts += 1;
            continue;
        };
        t.f = f;
        restarts = 0;
        let new_dfp = dot(t.g, ls.p);
        if f > ls.f0 + *alpha * ls.c1dfp || (f >= prev_f && nits > 0) {
            let (lo, hi) = ((alpha0, prev_f, prev_dfp), (alpha1, f, new_dfp));
            return zoom(p, ls, alpha, t, trend, lo, hi);
        }
        if new_dfp.abs() <= -ls.c2dfp {
            *alpha = alpha1;
            return true;
        }
        if new_dfp >= 0.0 {
            let (lo, hi) = ((alpha1, f, new_dfp), (alpha0, prev_f, prev_dfp));
            return zoom(p, ls, alpha, t, trend, lo, hi);
        }
        (alpha0, prev_f, prev_dfp) = (alpha1, f, new_dfp);
        alpha1 *= 10.0;
        nits += 1;
    }
}

/// Stan's `LBFGSUpdate`: the last `cap` curvature pairs `(1/s·y, y, s)` and the scaling
/// `γ = s·y / y·y` of the newest.
struct StanPairs {
    buf: std::collections::VecDeque<(f64, Vec<f64>, Vec<f64>)>,
    cap: usize,
    gamma: f64,
}

impl StanPairs {
    /// Adds a pair; on `reset` forgets the others and returns the scaling `y·y / s·y` of the
    /// initial Hessian (1 otherwise).
    fn update(&mut self, y: Vec<f64>, s: Vec<f64>, reset: bool) -> f64 {
        let sy = dot(&y, &s);
        let yy = dot(&y, &y);
        let b0 = if reset {
            self.buf.clear();
            yy / sy
        } else {
            1.0
        };
        self.gamma = sy / yy;
        if self.buf.len() == self.cap {
            self.buf.pop_front();
        }
        if self.cap > 0 {
            self.buf.push_back((1.0 / sy, y, s));
        }
        b0
    }

    /// `p = −H·g` by the two-loop recursion.
    fn direction(&self, p: &mut [f64], g: &[f64]) {
        p.iter_mut().zip(g).for_each(|(o, v)| *o = -v);
        let mut alphas = vec![0.0; self.buf.len()];
        for (i, (rho, y, s)) in self.buf.iter().enumerate().rev() {
            let a = rho * dot(s, p);
            p.iter_mut().zip(y).for_each(|(o, v)| *o -= a * v);
            alphas[i] = a;
        }
        p.iter_mut().for_each(|o| *o *= self.gamma);
        for ((rho, y, s), a) in self.buf.iter().zip(&alphas) {
            let b = rho * dot(y, p);
            p.iter_mut().zip(s).for_each(|(o, v)| *o += (a - b) * v);
        }
    }
}

/// Stan's L-BFGS (`BFGSMinimizer` with `LBFGSUpdate`, as `optimize` runs it for Prophet), step
/// for step: the first step `init_alpha` along −g, later first trials from a cubic through the
/// last step (at most 1), the Wolfe line search above, a reset of the pairs when a line search
/// fails, and Stan's stopping rules in Stan's order. `x` ends at the last accepted point.
fn stan_lbfgs(
    p: &Problem<'_>,
    x: &mut Vec<f64>,
    opts: &OptimizeOpts,
    max_iter: usize,
    trend: &mut [f64],
) -> Result<(), OptError> {
    let dim = x.len();
    let eps = f64::EPSILON;
    let tol_abs_f = opts.tol_obj.unwrap_or(1e-12);
    let tol_rel_f = opts.tol_rel_obj.unwrap_or(1e4) * eps;
    let tol_abs_grad = opts.tol_grad.unwrap_or(1e-8);
    let tol_rel_grad = opts.tol_rel_grad.unwrap_or(1e7) * eps;
    let tol_abs_x = opts.tol_param.unwrap_or(1e-8);
    let init_alpha = opts.init_alpha.unwrap_or(1e-3);
    let mut qn = StanPairs {
        buf: std::collections::VecDeque::new(),
        cap: opts.history_size.map_or(5, |h| h as usize),
        gamma: 1.0,
    };
    let mut xk = std::mem::take(x);
    let mut gk = vec![0.0; dim];
    let Some(mut fk) = evaluate(p, &xk, &mut gk, trend) else {
        *x = xk;
        return Err(OptError::static_str(
            "Prophet's objective is not finite at the initial point",
        ));
    };
    let mut pk: Vec<f64> = gk.iter().map(|v| -v).collect();
    let (mut xk1, mut gk1, mut pk1) = (vec![0.0; dim], vec![0.0; dim], vec![0.0; dim]);
    let (mut fk1, mut alphak1) = (0.0, 0.0);
    for it in 1..=max_iter.max(1) {
        let mut reset = u8::from(it == 1);
        let alpha = loop {
            if reset != 0 {
                pk.iter_mut().zip(&gk).for_each(|(o, v)| *o = -v);
            }
            let mut alpha = if it > 1 && reset != 2 {
                let a = cubic_interp(
                    dot(&gk1, &pk1),
                    alphak1,
                    fk - fk1,
                    dot(&gk, &pk1),
                    LS_MIN_ALPHA,
                    1.0,
                );
                (1.01 * a).min(1.0)
            } else {
                init_alpha
            };
            let dfp = dot(&gk, &pk);
            let ls = LineStart {
                x0: &xk,
                f0: fk,
                p: &pk,
                dfp,
                c1dfp: LS_C1 * dfp,
                c2dfp: LS_C2 * dfp,
            };
            let mut t = Trial {
                x: &mut xk1,
                f: fk1,
                g: &mut gk1,
            };
            let ok = wolfe(p, &ls, &mut alpha, &mut t, trend);
            fk1 = t.f;
            if ok {
                break alpha;
            }
            if reset != 0 {
                // Stan's "line search failed": the last accepted point is the result.
                *x = xk;
                return Ok(());
            }
            reset = 2;
        };
        std::mem::swap(&mut fk, &mut fk1);
        std::mem::swap(&mut xk, &mut xk1);
        std::mem::swap(&mut gk, &mut gk1);
        std::mem::swap(&mut pk, &mut pk1);
        let sk: Vec<f64> = xk.iter().zip(&xk1).map(|(a, b)| a - b).collect();
        let yk: Vec<f64> = gk.iter().zip(&gk1).map(|(a, b)| a - b).collect();
        let grad_norm = dot(&gk, &gk).sqrt();
        let step_norm = dot(&sk, &sk).sqrt();
        if reset != 0 {
            let b0 = qn.update(yk, sk, true);
            pk1.iter_mut().for_each(|v| *v /= b0);
            alphak1 = alpha * b0;
        } else {
            qn.update(yk, sk, false);
            alphak1 = alpha;
        }
        qn.direction(&mut pk, &gk);
        let df = (fk1 - fk).abs();
        let rel_f = df / fk1.abs().max(fk.abs()).max(1.0);
        let rel_grad = -dot(&pk, &gk) / fk.abs().max(1.0);
        if df < tol_abs_f
            || grad_norm < tol_abs_grad
            || step_norm < tol_abs_x
            || rel_f < tol_rel_f
            || rel_grad < tol_rel_grad
        {
            break;
        }
    }
    *x = xk;
    Ok(())
}
