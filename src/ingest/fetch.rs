//! `pulsewatch fetch-nab`: downloads the NAB corpus from the pinned upstream commit.
//! (Implementation in progress.)

use std::fmt;
use std::path::PathBuf;

/// Upstream commit the manifest was made from (see ../shared/nab/SOURCE.md).
pub const NAB_COMMIT: &str = "ea702d75cc2258d9d7dd35ca8e5e2539d71f3140";
/// Raw-file base URL of that commit.
pub const DEFAULT_BASE_URL: &str =
    "https://raw.githubusercontent.com/numenta/NAB/ea702d75cc2258d9d7dd35ca8e5e2539d71f3140/";

#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub dest: PathBuf,
    pub base_url: String,
}

impl FetchOptions {
    pub fn new(dest: PathBuf, base_url: String) -> Self {
        FetchOptions { dest, base_url }
    }
}

#[derive(Debug, Clone, Default)]
pub struct FetchSummary {
    pub downloaded: usize,
    pub skipped: usize,
    pub bytes: u64,
}

impl fmt::Display for FetchSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} files downloaded ({} bytes), {} already present",
            self.downloaded, self.bytes, self.skipped
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("not implemented yet")]
    Unimplemented,
}

pub async fn fetch_nab(_opts: &FetchOptions) -> Result<FetchSummary, FetchError> {
    Err(FetchError::Unimplemented)
}
