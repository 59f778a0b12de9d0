//! Isolation Forest speed: fit on 750 points and streaming scoring throughput, default parameters.
//! Run with `cargo bench --bench detectors_iforest`.

use std::hint::black_box;
use std::sync::atomic::AtomicBool;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pulsewatch_core::config::IsolationForestConfig;
use pulsewatch_core::detect::iforest::IsolationForest;
use pulsewatch_core::detect::{Detector, FitControl, FitProgress, Point, Trainable};

/// A noisy sine (deterministic: a fixed-seed SplitMix64 drives the noise).
fn series(n: usize) -> Vec<Point> {
    let mut state = 99u64;
    let mut uniform = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|i| Point {
            timestamp: i as i64 * 300,
            value: 50.0 + 10.0 * (i as f64 * std::f64::consts::TAU / 100.0).sin() + uniform(),
        })
        .collect()
}

fn fit(det: &mut IsolationForest, history: &[Point]) {
    let cancel = AtomicBool::new(false);
    let mut progress = |_: FitProgress| {};
    det.fit(
        history,
        &mut FitControl {
            cancel: &cancel,
            progress: &mut progress,
        },
    )
    .expect("fit");
}

fn bench(c: &mut Criterion) {
    let cfg = IsolationForestConfig::default();
    let pts = series(20_000);
    let mut g = c.benchmark_group("isolation_forest");

    g.bench_function("fit_750_points", |b| {
        let mut det = IsolationForest::new(&cfg);
        b.iter(|| fit(&mut det, black_box(&pts[..750])))
    });

    let scored = &pts[750..];
    g.throughput(Throughput::Elements(scored.len() as u64));
    g.bench_function("score_points", |b| {
        let mut det = IsolationForest::new(&cfg);
        fit(&mut det, &pts[..750]);
        b.iter(|| {
            for p in scored {
                black_box(det.update(*p));
            }
        })
    });

    // A whole 4000-point series from a fresh detector: learning phase, auto-fit, scoring.
    g.throughput(Throughput::Elements(4000));
    g.bench_function("stream_4000_points", |b| {
        b.iter(|| {
            let mut det = IsolationForest::new(&cfg);
            for p in &pts[..4000] {
                black_box(det.update(*p));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
