//! The main job: the TUI, `--headless`, or `--once`.

use std::process::ExitCode;
use std::time::Duration;

use color_eyre::eyre::{Result, eyre};

use super::{Cli, runtime};
use pulsewatch_core::config::Config;
use pulsewatch_core::domain::SourceKind;
use pulsewatch_engine::export::api;
use pulsewatch_engine::services;

/// The main job: `--once`, or the long-running monitor. `--once` exits with
/// [`services::exit`]'s codes: 1 when the push or a query failed, 2 when no query returned a
/// series.
pub fn live(cli: &Cli, mut cfg: Config) -> Result<ExitCode> {
    if let Some(d) = &cli.detector {
        cfg.detector.name = d.parse().map_err(|e: String| eyre!("--detector: {e}"))?;
    }
    if let Some(sh) = &cli.shard {
        pulsewatch_core::shard::Shard::parse_setting(sh).map_err(|e| eyre!("--shard: {e}"))?;
        cfg.source.shard = sh.clone();
    }
    let kind: SourceKind = match cli.source.as_deref() {
        Some(s) => s.parse().map_err(|e: String| eyre!("--source: {e}"))?,
        None => cfg.source.kind,
    };
    let listen = match cli.listen.as_deref().unwrap_or(&cfg.api.listen) {
        "" => None,
        a => Some(api::parse_listen(a).map_err(|e| eyre!(e))?),
    };
    let rt = runtime()?;
    if cli.once {
        let report = rt.block_on(services::once(&cfg, kind))?;
        if cli.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::report::json(&report))?
            );
        } else {
            print!("{}", crate::report::table(&report));
        }
        if let Some(f) = report.failure() {
            eprintln!("Error: {f}");
        }
        return Ok(ExitCode::from(report.exit_code()));
    }
    if cli.headless {
        rt.block_on(crate::headless::run(
            &cfg,
            kind,
            listen,
            Duration::from_secs(5),
        ))?;
    } else {
        rt.block_on(crate::tui::run(&cfg, kind, listen))?;
    }
    Ok(ExitCode::SUCCESS)
}
