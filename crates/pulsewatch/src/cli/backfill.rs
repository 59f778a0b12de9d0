//! `backfill`: NAB history as Prometheus TSDB blocks, or sent to VictoriaMetrics' import API,
//! scored and forecast by the engine's code.

use std::path::PathBuf;
use std::time::Instant;

use color_eyre::eyre::{Result, eyre};

use super::load_corpus;
use pulsewatch_core::config::Config;
use pulsewatch_core::detect::DetectorKind;

#[derive(Debug, clap::Args)]
pub struct BackfillArgs {
    /// Output folder: nab.om and the blocks.
    #[arg(long, value_name = "DIR", default_value = "backfill")]
    pub out: PathBuf,
    /// Series to write, by key (realKnownCause/nyc_taxi.csv) or name (nyc_taxi); default all.
    #[arg(long, value_name = "SERIES", value_delimiter = ',')]
    pub series: Vec<String>,
    /// Also write the detector's scores and flags ([detector] name and threshold).
    #[arg(long)]
    pub scores: bool,
    /// Also write rolling forecasts (refitted once per [forecast] horizon, causal).
    #[arg(long)]
    pub forecast: bool,
    /// promtool's --max-block-duration.
    #[arg(long, value_name = "DURATION", default_value = "720h")]
    pub max_block_duration: String,
    /// The promtool binary.
    #[arg(long, value_name = "PATH", default_value = "promtool")]
    pub promtool: PathBuf,
    /// Corpus root (default: [data] dir).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Instead of blocks: send the history with its original timestamps to the VictoriaMetrics
    /// at URL (its `/api/v1/import`), e.g. http://127.0.0.1:8428.
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
}

pub fn run(args: BackfillArgs, cfg: &Config) -> Result<()> {
    let BackfillArgs {
        out,
        series,
        scores,
        forecast,
        max_block_duration,
        promtool,
        data,
        to,
    } = args;
    let root = data.unwrap_or_else(|| cfg.data.dir.clone());
    let corpus = load_corpus(&root, None)?;
    let chosen: Vec<_> = if series.is_empty() {
        corpus.series
    } else {
        let mut out = Vec::new();
        for want in &series {
            let s = corpus
                .series
                .iter()
                .find(|s| &s.key == want || &s.name == want)
                .ok_or_else(|| {
                    eyre!(
                        "--series {want:?}: no such NAB series in {}",
                        root.display()
                    )
                })?;
            out.push(s.clone());
        }
        out
    };
    let opts = pulsewatch_engine::export::backfill::BackfillOptions {
        scores: if scores {
            let kind: DetectorKind = cfg.detector.name;
            cfg.detector.validate().map_err(|e| eyre!(e))?;
            Some((kind, cfg.detector.clone(), cfg.detector.threshold))
        } else {
            None
        },
        forecast: if forecast {
            Some(
                pulsewatch_core::forecast::ForecastSettings::for_config(cfg)
                    .map_err(|e| eyre!(e))?,
            )
        } else {
            None
        },
    };
    let t0 = Instant::now();
    if let Some(url) = to {
        url::Url::parse(&url).map_err(|e| eyre!("--to {url:?}: not a URL: {e}"))?;
        let n = super::runtime()?
            .block_on(pulsewatch_engine::export::backfill::import_to_victoria(
                &chosen, &opts, &url,
            ))
            .map_err(|e| eyre!("backfill --to: {e}"))?;
        println!(
            "sent {n} samples of {} series to {url} in {:.1?}",
            chosen.len(),
            t0.elapsed()
        );
        return Ok(());
    }
    let r = pulsewatch_engine::export::backfill::create_blocks(
        &chosen,
        &opts,
        &out,
        &promtool,
        &max_block_duration,
    )
    .map_err(|e| eyre!(e))?;
    println!(
        "wrote {} samples of {} series to {} and {} blocks into {} in {:.1?}\n\
         serve: prometheus --storage.tsdb.path={} --storage.tsdb.retention.time=100y",
        r.samples,
        chosen.len(),
        r.openmetrics.display(),
        r.blocks,
        r.blocks_dir.display(),
        t0.elapsed(),
        r.blocks_dir.display()
    );
    Ok(())
}
