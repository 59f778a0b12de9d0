//! How often a detector flags live (not scored for NAB) at the default threshold, over NAB's 58
//! series: the share of points flagged in each file's first 15 % (NAB's probation, where a fresh
//! detector learns) and after it, and the flags in the first 288 points after the detector stops
//! warming up. `docs/detectors.md` quotes it.
//!
//! Run with `cargo run --release -p pulsewatch-core --example live_flags -- [DETECTOR]
//! [CALIBRATION_WARMUP]` (the second sets the Isolation Forest's calibration warm-up;
//! `PULSEWATCH_DATA_DIR` or `data/nab` for the corpus, as `pulse_windows` reads it).
use pulsewatch_core::config::DetectorConfig;
use pulsewatch_core::domain::{DetectorKind, Point};
use pulsewatch_core::nab::Corpus;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root =
        std::env::var_os("PULSEWATCH_DATA_DIR").map_or(PathBuf::from("data/nab"), PathBuf::from);
    let corpus = Corpus::load(&root)?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let det = args.first().map_or("isolation-forest", String::as_str);
    let warm: Option<usize> = args.get(1).and_then(|v| v.parse().ok());
    let kind: DetectorKind = det.parse().map_err(|e| format!("{e:?}"))?;
    let mut cfg = DetectorConfig::default();
    if let Some(w) = warm {
        cfg.isolation_forest.calibration.warmup = w;
    }
    let (mut early, mut early_n, mut late, mut late_n) = (0usize, 0usize, 0usize, 0usize);
    let mut first_day = 0usize;
    for s in &corpus.series {
        let mut d = kind.build(&cfg);
        let n = s.values.len();
        let mut since = None;
        for (i, (&t, &v)) in s.timestamps.iter().zip(&s.values).enumerate() {
            let sc = d.update(Point {
                timestamp: t,
                value: v,
            });
            let warming = d.warming_up();
            if !warming && since.is_none() {
                since = Some(i);
            }
            let flag = sc >= cfg.threshold;
            if since.is_some_and(|k| i - k < 288) && flag {
                first_day += 1;
            }
            if i < n * 15 / 100 {
                early_n += 1;
                early += usize::from(flag);
            } else {
                late_n += 1;
                late += usize::from(flag);
            }
        }
    }
    println!(
        "{det} warmup {warm:?}: flagged {:.2}% of probation points ({early}), {:.2}% after ({late}); {first_day} flags in the first 288 points after warm-up (58 files)",
        100.0 * early as f64 / early_n as f64,
        100.0 * late as f64 / late_n as f64
    );
    Ok(())
}
