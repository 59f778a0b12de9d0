//! Small numeric helpers shared by every crate, each written once: the median, hexadecimal
//! digests, the compact number format of tables and charts, and the detectors' score mapping.

/// Median of the finite values (`None` if there are none).
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_unstable_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// `1 − 2^(−x / half)`: a score in [0, 1) that is 0 at `x = 0`, 0.5 at `x = half` and → 1 as
/// `x` grows (how `pulse` and the live windowed Gaussian map a strength to a score).
pub fn half_at(x: f64, half: f64) -> f64 {
    1.0 - (-x / half * std::f64::consts::LN_2).exp()
}

/// Lower-case hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A number in at most about nine characters: `0`, `0.123`, `12.3`, `4567`, `1.23e9`.
pub fn compact(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        format!("{v}")
    } else if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e7).contains(&a) {
        format!("{v:.2e}")
    } else if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(median([3.0, f64::NAN, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, 1.0]), Some(2.5));
        assert_eq!(median([]), None);
        assert_eq!(hex(&[0, 171, 255]), "00abff");
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(0.12345), "0.123");
        assert_eq!(compact(12.34), "12.3");
        assert_eq!(compact(4567.8), "4568");
        assert_eq!(compact(1.5e9), "1.50e9");
    }
}

/// splitmix64: a tiny, well-mixed deterministic generator (spike placement, the tuning search
/// and its fold split). Written by hand: five lines, not worth a crate.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
