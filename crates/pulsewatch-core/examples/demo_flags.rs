//! Where `pulse` flags live (not scored for NAB) on the built-in demo data, at the default
//! threshold 0.5: per series, how many points are flagged over the whole series and at which
//! indices (the first 30). The demo data's planted anomalies: web_requests 3000–3005,
//! cpu_busy from 2600, queue_depth at 777 + 1000 k, error_rate 3500–3539, network_bytes
//! 2000–2029 (memory_used_bytes is a linear trend with noise). `docs/detectors.md` quotes it.
//!
//! Run with `cargo run --release -p pulsewatch-core --example demo_flags -- [CONFIG]`, where
//! CONFIG is a file with a `[detector.pulse]` block (default: the shipped constants).

use std::path::Path;

use pulsewatch_core::config::Config;
use pulsewatch_core::detect::Detector;
use pulsewatch_core::detect::pulse::{Pulse, PulseParams};
use pulsewatch_core::domain::Point;

fn params(path: Option<&str>) -> Result<PulseParams, Box<dyn std::error::Error>> {
    let Some(path) = path else {
        return Ok(PulseParams::default());
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    Ok(Config::from_toml(&text, Path::new(path))?.detector.pulse)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args().nth(1);
    let p = params(arg.as_deref())?;
    let mut total = 0;
    for s in pulsewatch_core::nab::demo::corpus() {
        let mut d = Pulse::with_params(p);
        let flags: Vec<usize> = s
            .timestamps
            .iter()
            .zip(&s.values)
            .enumerate()
            .filter(|&(_, (&timestamp, &value))| d.update(Point { timestamp, value }) >= 0.5)
            .map(|(i, _)| i)
            .collect();
        total += flags.len();
        println!(
            "{} ({} points): {} flagged, at {:?}",
            s.name,
            s.values.len(),
            flags.len(),
            &flags[..flags.len().min(30)]
        );
    }
    println!("total: {total} flagged");
    Ok(())
}
