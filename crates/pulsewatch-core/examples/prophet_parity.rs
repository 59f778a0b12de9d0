//! Prophet's native optimizer against Stan's (wasmstan) on NAB's held-out day, with Stan against
//! itself as the yardstick: per series, the fit on all but the last day by (a) wasmstan, (b)
//! wasmstan on the same problem with the seasonal columns reversed (the same model; the
//! coefficients are put back in order) and (c) the native optimizer. Prints, per series and in
//! summary, the relative objective and held-out MAE of (b) and (c) against (a). The figures of
//! `docs/forecasting.md` ("Where they stop", "Held-out day") come from this.
//!
//! Run with `cargo run --release -p pulsewatch-core --example prophet_parity [-- FILTER]`
//! (`PULSEWATCH_DATA_DIR` or `data/nab` for the corpus; FILTER keeps the series whose key
//! contains it).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use augurs::prophet::optimizer::{
    Data, Error, InitialParams, OptimizeOpts, OptimizedParams, Optimizer,
};
use augurs::prophet::wasmstan::WasmstanOptimizer;
use augurs::prophet::{OptProphetOptions, PredictionData, Prophet, TrainingData};
use pulsewatch_core::forecast::prophet_native::{NativeOptimizer, objective};
use pulsewatch_core::forecast::regularise;
use pulsewatch_core::nab::read_series;
use pulsewatch_core::num::median;

/// The objective of the last answer an optimizer gave.
type Seen = Arc<Mutex<Option<f64>>>;

/// Runs `inner`, optionally on the problem with its seasonal columns reversed, and records the
/// objective reached (on the problem as given).
#[derive(Debug, Clone)]
struct Probe<O> {
    inner: O,
    reverse: bool,
    seen: Seen,
}

fn reversed(init: &InitialParams, data: &Data) -> (InitialParams, Data) {
    let kk = usize::try_from(data.K).unwrap_or(0);
    let (mut i2, mut d2) = (init.clone(), data.clone());
    for row in 0..data.y.len() {
        for j in 0..kk {
            d2.X[row * kk + j] = data.X[row * kk + kk - 1 - j];
        }
    }
    for j in 0..kk {
        d2.s_a[j] = data.s_a[kk - 1 - j];
        d2.s_m[j] = data.s_m[kk - 1 - j];
        d2.sigmas[j] = data.sigmas[kk - 1 - j];
        i2.beta[j] = init.beta[kk - 1 - j];
    }
    (i2, d2)
}

impl<O: Optimizer> Optimizer for Probe<O> {
    fn optimize(
        &self,
        init: &InitialParams,
        data: &Data,
        opts: &OptimizeOpts,
    ) -> Result<OptimizedParams, Error> {
        let out = if self.reverse {
            let (i2, d2) = reversed(init, data);
            let mut out = self.inner.optimize(&i2, &d2, opts)?;
            out.beta.reverse();
            out
        } else {
            self.inner.optimize(init, data, opts)?
        };
        let f = objective(data, &out, opts.jacobian.unwrap_or(false));
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(f);
        }
        Ok(out)
    }
}

/// Fits Prophet (default options) by `inner` behind a [`Probe`] and predicts `future`: the point
/// forecast and the objective reached.
fn fit<O: Optimizer + 'static>(
    inner: O,
    reverse: bool,
    train: TrainingData,
    future: PredictionData,
) -> Result<(Vec<f64>, f64), Box<dyn std::error::Error>> {
    let seen: Seen = Arc::new(Mutex::new(None));
    let probe = Probe {
        inner,
        reverse,
        seen: seen.clone(),
    };
    let mut p = Prophet::new(OptProphetOptions::default().into(), probe);
    p.fit(train, Default::default())?;
    let pred = p.predict(future)?;
    let f = seen.lock().ok().and_then(|s| *s);
    Ok((pred.yhat.point, f.unwrap_or(f64::NAN)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::var_os("PULSEWATCH_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("data/nab"));
    let filter = std::env::args().nth(1).unwrap_or_default();
    let mut keys = Vec::new();
    for cat in std::fs::read_dir(root.join("data"))? {
        let cat = cat?.path();
        if !cat.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&cat)? {
            let f = f?.path();
            let (Some(c), Some(n)) = (cat.file_name(), f.file_name()) else {
                continue;
            };
            keys.push(format!("{}/{}", c.to_string_lossy(), n.to_string_lossy()));
        }
    }
    keys.sort();
    keys.retain(|k| k.contains(&filter));
    let stan = WasmstanOptimizer::new();
    // Per series: (objective, MAE) relative differences of reversed-Stan and native to Stan.
    let mut rows: Vec<[f64; 4]> = Vec::new();
    println!("series | stan reversed: objective, MAE | native: objective, MAE");
    for key in keys {
        let s = read_series(&root.join("data").join(&key), &key)?;
        let last = s.timestamps.iter().copied().max().unwrap_or(0);
        let cut = last - 86_400;
        let (t, v): (Vec<i64>, Vec<f64>) = s
            .timestamps
            .iter()
            .zip(&s.values)
            .filter(|(t, _)| **t <= cut)
            .map(|(a, b)| (*a, *b))
            .unzip();
        let test: Vec<(i64, f64)> = s
            .timestamps
            .iter()
            .zip(&s.values)
            .filter(|(t, _)| **t > cut)
            .map(|(a, b)| (*a, *b))
            .collect();
        let r = regularise(&t, &v)?;
        let (ds, y): (Vec<i64>, Vec<f64>) = (0..r.len())
            .filter(|&i| r.observed[i])
            .map(|i| (r.timestamp(i), r.values[i]))
            .unzip();
        if y.iter().all(|&a| a == y[0]) {
            continue; // a constant series forecasts as `constant`, never through Prophet
        }
        let h = r.steps_for(86_400);
        let future = r.future_timestamps(h);
        let origin = r.last_timestamp();
        let mae = |point: &[f64]| {
            let (mut sum, mut n) = (0.0, 0usize);
            for &(t, v) in &test {
                let k = ((t - origin) as f64 / r.step as f64).round() as i64;
                if let Some(p) = usize::try_from(k - 1).ok().and_then(|i| point.get(i)) {
                    sum += (p - v).abs();
                    n += 1;
                }
            }
            sum / n.max(1) as f64
        };
        let train = TrainingData::new(ds, y)?;
        let fut = || PredictionData::new(future.clone());
        let (pa, fa) = fit(stan.clone(), false, train.clone(), fut())?;
        let (pb, fb) = fit(stan.clone(), true, train.clone(), fut())?;
        let (pc, fc) = fit(NativeOptimizer::default(), false, train, fut())?;
        let (ma, mb, mc) = (mae(&pa), mae(&pb), mae(&pc));
        let rel_f = |f: f64| (f - fa) / fa.abs().max(1.0);
        let row = [rel_f(fb), mb / ma - 1.0, rel_f(fc), mc / ma - 1.0];
        println!(
            "{key} | {:+.2e}, {:+.4} | {:+.2e}, {:+.4}",
            row[0], row[1], row[2], row[3]
        );
        rows.push(row);
    }
    for (name, of, om) in [("stan reversed", 0, 1), ("native", 2, 3)] {
        let f: Vec<f64> = rows.iter().map(|r| r[of].abs()).collect();
        let m: Vec<f64> = rows.iter().map(|r| r[om].abs()).collect();
        println!(
            "{name} against stan, {} series: objective median {:.2e}, max {:.2e}, within 1e-6 on {}; \
             held-out MAE median {:.2} %, max {:.1} %, within 1 % on {}, within 5 % on {}",
            rows.len(),
            median(f.iter().copied()).unwrap_or(f64::NAN),
            f.iter().copied().fold(0.0, f64::max),
            f.iter().filter(|&&x| x <= 1e-6).count(),
            100.0 * median(m.iter().copied()).unwrap_or(f64::NAN),
            100.0 * m.iter().copied().fold(0.0, f64::max),
            m.iter().filter(|&&x| x < 0.01).count(),
            m.iter().filter(|&&x| x < 0.05).count(),
        );
    }
    Ok(())
}
