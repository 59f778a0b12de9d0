//! LSTM autoencoder cost with the default config (sequence 50, hidden 32, 10 epochs): one fit on
//! 750 points (what every NAB series pays once) and the per-point scoring cost after it.
//! Run with `cargo bench --bench detectors_lstm`.

use std::hint::black_box;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pulsewatch_core::config::LstmAeConfig;
use pulsewatch_core::detect::lstm::LstmAe;
use pulsewatch_core::detect::{Detector, FitControl, FitProgress, Point, Trainable};

/// A noisy daily-ish sine, deterministic.
fn series(n: usize) -> Vec<Point> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|t| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let noise = (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            Point {
                timestamp: 1_600_000_000 + 300 * t as i64,
                value: 50.0 + 10.0 * (t as f64 * std::f64::consts::TAU / 288.0).sin() + noise,
            }
        })
        .collect()
}

fn fit(det: &mut LstmAe, history: &[Point]) {
    let cancel = AtomicBool::new(false);
    let mut progress = |_: FitProgress| {};
    let mut ctl = FitControl {
        cancel: &cancel,
        progress: &mut progress,
    };
    det.fit(history, &mut ctl).expect("fit");
}

fn bench(c: &mut Criterion) {
    let cfg = LstmAeConfig::default();
    let pts = series(cfg.train + 10_000);
    let mut g = c.benchmark_group("lstm_ae");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(40));
    g.bench_function("fit_750_points_10_epochs", |b| {
        b.iter(|| {
            let mut det = LstmAe::new(&cfg);
            fit(&mut det, black_box(&pts[..cfg.train]));
            det
        })
    });
    let mut det = LstmAe::new(&cfg);
    fit(&mut det, &pts[..cfg.train]);
    let stream = &pts[cfg.train..];
    let mut i = 0;
    g.throughput(Throughput::Elements(1));
    g.sample_size(50);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("score_one_point", |b| {
        b.iter(|| {
            i = (i + 1) % stream.len();
            det.update(black_box(stream[i]))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
