//! Fit + predict time of each forecast model on a 4,032-point and a 22,695-point series (real NAB
//! series when the corpus is present: `realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv` and
//! `realKnownCause/machine_temperature_system_failure.csv`; otherwise synthetic series of the same
//! length). The horizon is one day (288 five-minute steps). Regularisation is done once, outside
//! the measurement. Prophet's one-off optimizer start is timed and printed separately.
//! `prophet` uses the default native optimizer (Stan's L-BFGS in Rust), `prophet_wasmstan` the
//! WebAssembly Stan one (`[forecast.prophet] optimizer = "wasmstan"`).
//! `auto_kept` is auto refitting a kept choice (the forecast service between validations).
//! Goals (issue #4): mstl ≤ 30 ms and prophet ≤ 100 ms on the 4,000-point series; issue #17:
//! auto (fit and selection) ≤ 50 ms.
//! Run with `cargo bench --bench forecast`.

use std::f64::consts::PI;
use std::path::PathBuf;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use pulsewatch_core::forecast::auto::fit_auto_with;
use pulsewatch_core::forecast::model::{forecast, warm_up_prophet};
use pulsewatch_core::forecast::{
    ForecastSettings, ModelKind, ProphetOptimizer, Regular, regularise,
};
use pulsewatch_core::nab::read_series;

fn synthetic(n: usize) -> (Vec<i64>, Vec<f64>) {
    let ts: Vec<i64> = (0..n as i64).map(|i| 1_400_000_400 + 300 * i).collect();
    let vs = (0..n)
        .map(|i| {
            let d = 2.0 * PI * i as f64 / 288.0;
            let w = 2.0 * PI * i as f64 / 2016.0;
            let noise = ((i as f64 * 12.9898).sin() * 43_758.545_3).fract();
            50.0 + 0.001 * i as f64 + 10.0 * d.sin() + 3.0 * w.cos() + noise
        })
        .collect();
    (ts, vs)
}

fn load(key: &str, n: usize) -> (String, Regular) {
    let root = std::env::var_os("PULSEWATCH_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| testkit::corpus::repo_root().join("data/nab"));
    let (name, (ts, vs)) = match read_series(&root.join("data").join(key), key) {
        Ok(s) => (key.to_string(), (s.timestamps, s.values)),
        Err(_) => (format!("synthetic_{n}"), synthetic(n)),
    };
    match regularise(&ts, &vs) {
        Ok(r) => (name, r),
        Err(e) => panic!("cannot regularise {name}: {e}"),
    }
}

fn bench(c: &mut Criterion) {
    let series = [
        load("realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv", 4_032),
        load(
            "realKnownCause/machine_temperature_system_failure.csv",
            22_695,
        ),
    ];
    let settings = ForecastSettings::default();
    let mut wasmstan = ForecastSettings::default();
    wasmstan.prophet.optimizer = ProphetOptimizer::Wasmstan;
    let variants = [
        ("mstl", ModelKind::Mstl, &settings),
        ("ets", ModelKind::Ets, &settings),
        ("prophet", ModelKind::Prophet, &settings),
        ("prophet_wasmstan", ModelKind::Prophet, &wasmstan),
        ("snaive", ModelKind::SeasonalNaive, &settings),
        ("smedian", ModelKind::SeasonalMedian, &settings),
        ("theta", ModelKind::Theta, &settings),
        // Fit and selection: validation at three origins, then the chosen model's fit.
        ("auto", ModelKind::Auto, &settings),
    ];
    let t = Instant::now();
    warm_up_prophet();
    eprintln!(
        "prophet (wasmstan) optimizer start, once per process: {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    for (name, reg) in &series {
        let h = reg.steps_for(86_400);
        let mut g = c.benchmark_group(format!("fit_predict_1d/{}pts", reg.len()));
        g.sample_size(10);
        for (label, m, st) in variants {
            match forecast(reg, st, m, h) {
                Ok(f) => eprintln!("{name} ({} points): {label} = {}", reg.len(), f.detail),
                Err(e) => {
                    eprintln!("{name}: {label} fails ({e}); not benchmarked");
                    continue;
                }
            }
            g.bench_function(label, |b| {
                b.iter(|| std::hint::black_box(forecast(reg, st, m, h)))
            });
        }
        // The forecast service's steady state: auto's choice kept from an earlier validation,
        // only the chosen model refitted.
        if let Ok((_, memo)) = fit_auto_with(reg, &settings, h, h, None) {
            eprintln!("{name}: auto_kept refits {}", memo.choice);
            g.bench_function("auto_kept", |b| {
                b.iter(|| std::hint::black_box(fit_auto_with(reg, &settings, h, h, Some(&memo))))
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
