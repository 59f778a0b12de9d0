//! Built-in demo data: a few synthetic series with planted anomalies, replayed when no NAB corpus
//! is installed (the TUI says so in its header), so `pulsewatch` shows something on a fresh
//! machine.

use super::Series;

/// Points per demo series (two weeks of 5-minute data).
pub const LEN: usize = 4032;
const STEP: i64 = 300;
/// 2024-01-01 00:00 UTC.
const START: i64 = 1_704_067_200;

fn noise(i: usize, salt: u64) -> f64 {
    let x = (i as u64 ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    ((x >> 33) as f64 / (1u64 << 31) as f64) - 1.0
}

fn series(name: &str, category: &str, f: impl Fn(usize) -> f64) -> Series {
    Series {
        key: format!("{category}/{name}.csv"),
        category: category.into(),
        name: name.into(),
        timestamps: (0..LEN).map(|i| START + i as i64 * STEP).collect(),
        values: (0..LEN).map(f).collect(),
    }
}

/// The demo corpus: daily cycles, a trend, a level shift, spikes and a dropout.
pub fn corpus() -> Vec<Series> {
    let day = 288.0;
    let tau = std::f64::consts::TAU;
    vec![
        series("web_requests", "demo", |i| {
            let base = 500.0 + 300.0 * (i as f64 * tau / day).sin() + 20.0 * noise(i, 1);
            if (3000..3006).contains(&i) {
                base + 900.0
            } else {
                base
            }
        }),
        series("cpu_busy", "demo", |i| {
            let v = 0.35 + 0.2 * (i as f64 * tau / day).sin() + 0.03 * noise(i, 2);
            let v = if i >= 2600 { v + 0.3 } else { v };
            v.clamp(0.0, 1.0)
        }),
        series("memory_used_bytes", "demo", |i| {
            4.0e9 + 2.0e5 * i as f64 + 5.0e7 * noise(i, 3)
        }),
        series("queue_depth", "demo", |i| {
            let v = 20.0 + 5.0 * noise(i, 4);
            if i % 1000 == 777 { v + 80.0 } else { v }
        }),
        series("error_rate", "demo", |i| {
            let v = 0.01 + 0.004 * noise(i, 5).abs();
            if (3500..3540).contains(&i) {
                v + 0.05
            } else {
                v
            }
        }),
        series("network_bytes", "demo", |i| {
            let v = 1.0e6 + 4.0e5 * (i as f64 * tau / day).sin() + 5.0e4 * noise(i, 6);
            if (2000..2030).contains(&i) { 0.0 } else { v }
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_series_are_regular_and_finite() {
        let c = corpus();
        assert_eq!(c.len(), 6);
        for s in &c {
            assert_eq!(s.len(), LEN);
            assert!(s.values.iter().all(|v| v.is_finite()), "{}", s.name);
            assert!(s.timestamps.windows(2).all(|w| w[1] - w[0] == STEP));
        }
    }
}
