//! `screenshots`: the TUI's tabs as SVG/PNG, from the real engine.

use std::path::PathBuf;

use color_eyre::eyre::{Result, eyre};

use super::runtime;
use pulsewatch_core::config::Config;

#[derive(Debug, clap::Args)]
pub struct ScreenshotsArgs {
    /// Output folder.
    #[arg(long, value_name = "DIR", default_value = "screenshots")]
    pub out: PathBuf,
    /// Seconds of replay before the pictures are taken.
    #[arg(long, default_value_t = 8)]
    pub seconds: u64,
    /// Replay speed (points per second per series) while waiting.
    #[arg(long, default_value_t = 400.0)]
    pub speed: f64,
    /// Terminal size, columns x rows.
    #[arg(long, default_value = "120x36")]
    pub size: String,
    /// Series to select (default: realKnownCause/nyc_taxi.csv).
    #[arg(long)]
    pub series: Option<String>,
}

pub fn run(args: ScreenshotsArgs, cfg: &Config) -> Result<()> {
    let ScreenshotsArgs {
        out,
        seconds,
        speed,
        size,
        series,
    } = args;
    let (w, h) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u16>().ok()?, h.parse::<u16>().ok()?)))
        .ok_or_else(|| eyre!("--size {size:?}: expected COLUMNSxROWS, e.g. 120x36"))?;
    let rt = runtime()?;
    let files = rt.block_on(crate::tui::screenshot::write_all(
        cfg,
        &out,
        seconds,
        speed,
        (w, h),
        series.as_deref(),
    ))?;
    for f in files {
        println!("{}", f.display());
    }
    Ok(())
}
