//! Built-in demo data: a few synthetic series with planted anomalies, replayed when no NAB corpus
//! is installed (the TUI says so in its header), so `pulsewatch` shows something on a fresh
//! machine.

use super::Series;

/// Points per demo series (two weeks of 5-minute data).
pub const LEN: usize = 4032;
const STEP: i64 = 300;
/// 2024-01-01 00:00 UTC.
const START: i64 = 1_704_067_200;

/// Uniform noise in [-1, 1), independent from point to point: SplitMix64's finaliser of
/// `(salt, i)`. (A plain linear congruential step of `i` is not: its consecutive values differ
/// by nearly the same amount, which made the one-step naive forecast, and so every MASE, look
/// far better or worse than on real data.)
fn noise(i: usize, salt: u64) -> f64 {
    let mut z = (salt << 32 ^ i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
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

    #[test]
    fn noise_is_uniform_and_independent_from_point_to_point() {
        let v: Vec<f64> = (0..20_000).map(|i| noise(i, 7)).collect();
        assert!(v.iter().all(|x| (-1.0..1.0).contains(x)));
        let mean_abs = v.iter().map(|x| x.abs()).sum::<f64>() / v.len() as f64;
        // Uniform on [-1, 1): E|x| = 1/2, E|x[i] − x[i−1]| = 2/3 when independent.
        let step = v.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / (v.len() - 1) as f64;
        assert!((mean_abs - 0.5).abs() < 0.01, "{mean_abs}");
        assert!((step - 2.0 / 3.0).abs() < 0.01, "{step}");
    }
}
