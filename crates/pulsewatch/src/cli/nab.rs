//! `score`, `eval` and `scoreboard`: the NAB corpus through the scorer and the detectors.

use std::path::PathBuf;
use std::time::Instant;

use color_eyre::eyre::{Result, eyre};

use super::load_corpus;
use pulsewatch_core::config::Config;
use pulsewatch_core::detect::DetectorKind;
use pulsewatch_core::eval::{self, ThresholdChoice};

#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// Results folder holding <DETECTOR>/<category>/<DETECTOR>_<file>.csv.
    #[arg(long, value_name = "DIR")]
    pub results: PathBuf,
    /// Detector name (folder under --results).
    #[arg(long, value_name = "NAME")]
    pub detector: String,
    /// Corpus root (default: [data] dir).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Find thresholds by NAB's corpus-wide optimisation instead of config/thresholds.json.
    #[arg(long)]
    pub optimize: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn score(args: ScoreArgs, cfg: &Config) -> Result<()> {
    let ScoreArgs {
        results,
        detector,
        data,
        optimize,
        json,
    } = args;
    let root = data.unwrap_or_else(|| cfg.data.dir.clone());
    let corpus = load_corpus(&root, None)?;
    let scores = eval::results::read_detector_results(&results, &detector, &corpus)?;
    let profiles = corpus.profiles()?;
    let thresholds = corpus.thresholds()?;
    let choice = if optimize {
        ThresholdChoice::Optimize
    } else {
        ThresholdChoice::Shipped(&thresholds)
    };
    let report = eval::score_corpus(&corpus, &profiles, &detector, &scores, &choice, false)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.summary_table());
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Detector name (default: [detector] name).
    #[arg(long, value_name = "NAME")]
    pub detector: Option<String>,
    /// Corpus root (default: [data] dir).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Output folder for results (NAB layout).
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// Use another windows file (e.g. labels/combined_windows_tiny.json) to evaluate a subset.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn eval(args: EvalArgs, cfg: &Config) -> Result<()> {
    let EvalArgs {
        detector,
        data,
        out,
        labels,
        json,
    } = args;
    let kind: DetectorKind = match detector {
        Some(d) => d.parse().map_err(|e: String| eyre!("--detector: {e}"))?,
        None => cfg.detector.name,
    };
    cfg.detector.validate().map_err(|e| eyre!(e))?;
    let root = data.unwrap_or_else(|| cfg.data.dir.clone());
    let corpus = load_corpus(&root, labels.as_deref())?;
    let t0 = Instant::now();
    let report = eval::evaluate(&corpus, &corpus.profiles()?, kind, &cfg.detector, &out)?;
    let elapsed = t0.elapsed();
    let summary = out.join(kind.name()).join("summary.json");
    pulsewatch_core::atomic::write_atomic(
        &summary,
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.full_table());
        println!(
            "\nresults: {} (NAB layout); scored {} rows in {:.2?}",
            out.join(kind.name()).display(),
            corpus.total_rows(),
            elapsed
        );
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct ScoreboardArgs {
    /// Detectors to evaluate (default: all).
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub detectors: Vec<String>,
    /// Corpus root (default: [data] dir).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Output folder for results (NAB layout).
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
}

pub fn scoreboard(args: ScoreboardArgs, cfg: &Config) -> Result<()> {
    let ScoreboardArgs {
        detectors,
        data,
        out,
    } = args;
    let kinds: Vec<DetectorKind> = if detectors.is_empty() {
        DetectorKind::ALL.to_vec()
    } else {
        detectors
            .iter()
            .map(|d| d.parse().map_err(|e: String| eyre!(e)))
            .collect::<Result<_>>()?
    };
    let root = data.unwrap_or_else(|| cfg.data.dir.clone());
    let corpus = load_corpus(&root, None)?;
    let profiles = corpus.profiles()?;
    let mut rows = Vec::new();
    for kind in kinds {
        let t0 = Instant::now();
        let report = eval::evaluate(&corpus, &profiles, kind, &cfg.detector, &out)?;
        let elapsed = t0.elapsed();
        eprintln!("scoreboard: {kind} done in {elapsed:.1?}");
        rows.push((kind, report, elapsed));
    }
    println!("| detector | standard | reward_low_FP_rate | reward_low_FN_rate | eval time |");
    println!("|---|---|---|---|---|");
    for (kind, r, elapsed) in &rows {
        let s: Vec<String> = r
            .profiles
            .iter()
            .map(|p| format!("{:.2}", p.normalized))
            .collect();
        println!(
            "| {kind} (ours) | {} | {:.2} s |",
            s.join(" | "),
            elapsed.as_secs_f64()
        );
    }
    for (det, s) in eval::scoreboard::PUBLISHED {
        if eval::scoreboard::SHOWN.contains(det) || *det == "knncad" || *det == "htmjava" {
            println!(
                "| *published:* {det} | {:.2} | {:.2} | {:.2} | |",
                s[0], s[1], s[2]
            );
        }
    }
    Ok(())
}
