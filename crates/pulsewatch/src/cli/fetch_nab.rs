//! `fetch-nab`: the corpus download.

use std::path::PathBuf;

use color_eyre::eyre::Result;

use super::runtime;
use pulsewatch_core::config::Config;
use pulsewatch_engine::sources::fetch;

#[derive(Debug, clap::Args)]
pub struct FetchNabArgs {
    /// Destination folder (default: [data] dir).
    #[arg(long, value_name = "DIR")]
    pub dest: Option<PathBuf>,
    /// Base URL the file paths are appended to.
    #[arg(long, value_name = "URL", default_value = fetch::DEFAULT_BASE_URL)]
    pub base_url: String,
}

pub fn run(args: FetchNabArgs, cfg: &Config) -> Result<()> {
    let FetchNabArgs { dest, base_url } = args;
    let dest = dest.unwrap_or_else(|| cfg.data.dir.clone());
    let rt = runtime()?;
    let opts = fetch::FetchOptions::new(dest, base_url);
    let summary = rt.block_on(fetch::fetch_nab(&opts))?;
    println!("{summary}");
    Ok(())
}
