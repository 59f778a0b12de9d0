//! `pulsewatch fetch-nab`: downloads the Numenta Anomaly Benchmark (NAB) corpus from the pinned
//! upstream commit and verifies every file.
//!
//! # What is fetched
//!
//! The file list is the manifest [`MANIFEST`] (`src/ingest/nab_manifest.sha256`, embedded at
//! compile time), one `<sha256 in 64 hex digits><two spaces><relative path>` line per file, the
//! format of `sha256sum`. It holds every file under `data/`, `labels/` and `config/` of
//! `numenta/NAB` at commit [`NAB_COMMIT`]: the 58 series CSVs (plus `data/README.md`), the label
//! files (`labels/combined_windows.json` is what the scorer reads) and `config/profiles.json` /
//! `config/thresholds.json`; 71 files, 9.6 MB. Upstream's `results/` folder is not fetched.
//!
//! A file's URL is the base URL followed by its relative path, e.g. [`DEFAULT_BASE_URL`] +
//! `data/realKnownCause/nyc_taxi.csv`; a base URL without a trailing `/` gets one. It must be an
//! absolute `http`/`https` URL without a query or fragment, or the run fails with
//! [`FetchError::BadBaseUrl`] before anything is requested. The file lands at
//! `<dest>/<relative path>` (parent folders are created).
//!
//! # How
//!
//! * **Skip**: a file that already exists at its final path with the manifest's SHA-256 is not
//!   requested at all (counted as "already present"). One that exists with another hash is
//!   downloaded again.
//! * **Concurrency**: up to [`FetchOptions::concurrency`] files (default 4) are in flight at once.
//! * **Timeout**: each request, from connecting to the last body byte, may take at most
//!   [`FetchOptions::timeout`] (default 60 s).
//! * **Verify**: the body is streamed into a temporary file while being hashed; the SHA-256 must
//!   equal the manifest's and the length the `Content-Length`.
//! * **Retries**: connection errors, timeouts, truncated bodies, checksum mismatches (a flaky
//!   transfer) and HTTP 5xx / 408 / 429 are retried up to [`FetchOptions::retries`] times (default
//!   3, i.e. at most 4 requests per file), waiting [`FetchOptions::backoff`] (default 500 ms)
//!   before the first retry and doubling the wait for each further one (capped at 30 s). Other
//!   HTTP errors (404 and the rest of 4xx) and local I/O errors are reported at once.
//! * **Atomic writes**: the temporary file is created next to the final one (named
//!   `.<file name>.<random>.part`, so the corpus reader never mistakes it for a series) and renamed
//!   over the final path only after the hash matched. A failed, interrupted or corrupt download
//!   leaves nothing at the final path, and never destroys a file that is already there; the
//!   temporary file is removed when the attempt fails.
//! * **Progress**: with stderr on a terminal an [`indicatif`] bar (files done / total, bytes
//!   fetched, the last file); otherwise one plain line per finished file on stderr, e.g.
//!   `fetch-nab: [12/71] data/realKnownCause/nyc_taxi.csv (266 KB)` (see [`Progress`]). Every file,
//!   retry and failure is also logged with `tracing` (into the log files, never the terminal).
//!
//! # Errors
//!
//! Each failure is one [`FetchError`] naming the file and its URL. A failing file does not stop
//! the others: the run finishes every file it can (so a re-run only has to fetch what is still
//! missing), prints each failure on stderr as it happens, and then returns
//! [`FetchError::Incomplete`], which says how many files failed and shows the first one in
//! manifest order (its `failures` field holds them all). One exception keeps an unreachable server
//! from costing minutes of retries: if a file's last attempt got no response at all (connection
//! refused, DNS failure, or a timeout before the headers) and no file has been downloaded yet in
//! this run, no further files are started; they are counted as "not attempted".

use pulsewatch_core::num::hex;
use std::fmt;
use std::io::{IsTerminal, Write as _};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::{StatusCode, Url};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// Upstream commit the manifest was made from (see ../shared/nab/SOURCE.md).
pub const NAB_COMMIT: &str = "ea702d75cc2258d9d7dd35ca8e5e2539d71f3140";
/// Raw-file base URL of that commit.
pub const DEFAULT_BASE_URL: &str =
    "https://raw.githubusercontent.com/numenta/NAB/ea702d75cc2258d9d7dd35ca8e5e2539d71f3140/";

/// The manifest: SHA-256 and relative path of every file `fetch-nab` downloads, in `sha256sum`
/// format (`<64 hex digits>  <path>` per line). Made from the upstream files at [`NAB_COMMIT`].
pub const MANIFEST: &str = include_str!("nab_manifest.sha256");

/// Default number of files downloaded at once.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Default limit for one request (connect, headers and whole body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default number of retries after a file's first failed attempt.
pub const DEFAULT_RETRIES: u32 = 3;
/// Default wait before the first retry; doubled for each further retry.
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between two attempts, however many retries are configured.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One manifest line: a file to download and the hash it must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// Relative path with `/` separators, e.g. `data/realKnownCause/nyc_taxi.csv`; also the
    /// URL suffix.
    pub path: String,
    /// Expected SHA-256 of the file, 64 lowercase hex digits.
    pub sha256: String,
}

impl ManifestEntry {
    /// Where the file goes under `root`.
    pub fn local_path(&self, root: &Path) -> PathBuf {
        let mut p = root.to_path_buf();
        p.extend(self.path.split('/'));
        p
    }
}

/// Parses manifest text (`<64 hex digits>  <relative path>` per line; blank lines are ignored).
/// Paths must be relative, `/`-separated, without `.`/`..` segments, and unique.
pub fn parse_manifest(text: &str) -> Result<Vec<ManifestEntry>, FetchError> {
    let mut entries: Vec<ManifestEntry> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let err = |reason: String| FetchError::Manifest {
            line: i + 1,
            reason,
        };
        let Some((sha, path)) = line.split_once("  ") else {
            return Err(err(format!(
                "expected `<sha256>  <path>` (two spaces), got {line:?}"
            )));
        };
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err(format!("SHA-256 must be 64 hex digits, got {sha:?}")));
        }
        let path_ok = !path.is_empty()
            && !path.contains('\\')
            && path
                .split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
        if !path_ok {
            return Err(err(format!(
                "path must be relative, `/`-separated, without empty, `.` or `..` segments; got {path:?}"
            )));
        }
        if !seen.insert(path.to_owned()) {
            return Err(err(format!("duplicate path {path:?}")));
        }
        entries.push(ManifestEntry {
            path: path.to_owned(),
            sha256: sha.to_ascii_lowercase(),
        });
    }
    Ok(entries)
}

/// The embedded manifest [`MANIFEST`], parsed.
pub fn manifest() -> Result<Vec<ManifestEntry>, FetchError> {
    parse_manifest(MANIFEST)
}

/// How progress is shown on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Progress {
    /// A progress bar if stderr is a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// Always the progress bar.
    Bar,
    /// One plain line per finished file (and per retry or failure).
    Lines,
    /// Nothing on stderr (the `tracing` log still gets everything).
    Hidden,
}

/// What to download where, and how patiently.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Corpus root; files land at `<dest>/<relative path>`.
    pub dest: PathBuf,
    /// Base URL the relative paths are appended to (a missing trailing `/` is added).
    pub base_url: String,
    /// Files downloaded at once (0 counts as 1).
    pub concurrency: usize,
    /// Limit for one request, from connecting to the last body byte.
    pub timeout: Duration,
    /// Retries after a file's first failed attempt (so at most `retries + 1` requests per file),
    /// for retryable failures only (see the module doc).
    pub retries: u32,
    /// Wait before the first retry; doubled for each further retry, capped at 30 s.
    pub backoff: Duration,
    /// How progress is shown on stderr.
    pub progress: Progress,
}

impl FetchOptions {
    /// Options with the defaults: 4 files at once, 60 s per request, 3 retries starting at
    /// 500 ms, automatic progress display.
    pub fn new(dest: PathBuf, base_url: String) -> Self {
        FetchOptions {
            dest,
            base_url,
            concurrency: DEFAULT_CONCURRENCY,
            timeout: DEFAULT_TIMEOUT,
            retries: DEFAULT_RETRIES,
            backoff: DEFAULT_BACKOFF,
            progress: Progress::Auto,
        }
    }

    /// The base URL, checked and with a trailing `/`.
    pub fn normalized_base_url(&self) -> Result<Url, FetchError> {
        normalize_base_url(&self.base_url)
    }

    /// Wait before retry number `retry` (1-based).
    fn backoff_for(&self, retry: u32) -> Duration {
        let factor = 1u32 << retry.saturating_sub(1).min(20);
        self.backoff.saturating_mul(factor).min(MAX_BACKOFF)
    }
}

/// Checks a base URL (absolute `http`/`https`, no query or fragment) and appends a missing
/// trailing `/`.
pub fn normalize_base_url(raw: &str) -> Result<Url, FetchError> {
    let bad = |reason: String| FetchError::BadBaseUrl {
        url: raw.to_owned(),
        reason,
    };
    let trimmed = raw.trim();
    let with_slash = if trimmed.ends_with('/') {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/")
    };
    let url = Url::parse(&with_slash).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "unsupported scheme {:?} (expected http or https)",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host".to_owned()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment".to_owned()));
    }
    Ok(url)
}

/// What a successful run did.
#[derive(Debug, Clone, Default)]
pub struct FetchSummary {
    /// Corpus root the files are in.
    pub dest: PathBuf,
    /// Files downloaded (and verified) in this run.
    pub downloaded: usize,
    /// Files that were already present with the right hash.
    pub skipped: usize,
    /// Bytes downloaded in this run.
    pub bytes: u64,
}

impl FetchSummary {
    /// Files verified in total (downloaded or already present).
    pub fn verified(&self) -> usize {
        self.downloaded + self.skipped
    }
}

impl fmt::Display for FetchSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fetch-nab: {} files verified in {} ({} downloaded, {} already present, {} fetched)",
            self.verified(),
            self.dest.display(),
            self.downloaded,
            self.skipped,
            fmt_bytes(self.bytes)
        )
    }
}

/// Everything that can go wrong; per-file variants name the file and its URL.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The base URL cannot be parsed or is not usable.
    #[error("invalid base URL {url:?}: {reason}")]
    BadBaseUrl { url: String, reason: String },
    /// The embedded manifest is malformed (a build problem, not a network one).
    #[error("embedded NAB manifest, line {line}: {reason}")]
    Manifest { line: usize, reason: String },
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {reason}")]
    Client { reason: String },
    /// The server answered with a non-success status.
    #[error("{path}: HTTP {status} from {url}")]
    Status {
        path: String,
        url: String,
        status: StatusCode,
    },
    /// Connecting, sending or receiving failed (including timeouts and dropped connections).
    #[error("{path}: download from {url} failed: {reason}")]
    Transfer {
        path: String,
        url: String,
        reason: String,
        /// No response arrived: the connection could not be made or timed out before the headers.
        unreachable: bool,
    },
    /// The body ended before `Content-Length` bytes arrived (or ran past it).
    #[error("{path}: truncated download from {url}: got {received} of {expected} bytes")]
    Truncated {
        path: String,
        url: String,
        expected: u64,
        received: u64,
    },
    /// The downloaded bytes do not have the manifest's SHA-256.
    #[error(
        "{path}: SHA-256 checksum mismatch for {url}: expected {expected}, got {actual} ({bytes} bytes)"
    )]
    ChecksumMismatch {
        path: String,
        url: String,
        expected: String,
        actual: String,
        bytes: u64,
    },
    /// A local file-system operation failed.
    #[error("{path}: {action} {}: {error}", file.display())]
    Io {
        path: String,
        action: &'static str,
        file: PathBuf,
        error: std::io::Error,
    },
    /// A retryable failure persisted through every attempt.
    #[error("{last} (gave up after {attempts} attempts)")]
    GaveUp {
        attempts: u32,
        last: Box<FetchError>,
    },
    /// Some files failed (the others were downloaded or already present, or not attempted
    /// because the server looked unreachable).
    #[error(
        "fetch-nab: {failed} of {total} files failed{} ({verified} verified in {}); first: {first}",
        not_attempted_note(*not_attempted),
        dest.display(),
        failed = failures.len()
    )]
    Incomplete {
        total: usize,
        verified: usize,
        /// Files not started because the server looked unreachable.
        not_attempted: usize,
        dest: PathBuf,
        /// The first failure in manifest order (also `failures[0]`'s message).
        first: String,
        /// Every failure, in manifest order.
        failures: Vec<FetchError>,
    },
}

fn not_attempted_note(n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(", {n} not attempted as the server looks unreachable")
    }
}

impl FetchError {
    /// Whether no response arrived at all (on the last attempt, if retried): connection refused,
    /// DNS failure, or a timeout before the headers.
    pub fn is_unreachable(&self) -> bool {
        match self {
            FetchError::Transfer { unreachable, .. } => *unreachable,
            FetchError::GaveUp { last, .. } => last.is_unreachable(),
            _ => false,
        }
    }

    /// Whether another attempt may succeed: transfer problems, truncated or corrupt bodies, and
    /// HTTP 5xx / 408 / 429.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => {
                status.is_server_error()
                    || *status == StatusCode::REQUEST_TIMEOUT
                    || *status == StatusCode::TOO_MANY_REQUESTS
            }
            FetchError::Transfer { .. }
            | FetchError::Truncated { .. }
            | FetchError::ChecksumMismatch { .. } => true,
            FetchError::GaveUp { .. }
            | FetchError::BadBaseUrl { .. }
            | FetchError::Manifest { .. }
            | FetchError::Client { .. }
            | FetchError::Io { .. }
            | FetchError::Incomplete { .. } => false,
        }
    }
}

/// Downloads every manifest file missing (or wrong) under `opts.dest`, verifying each; see the
/// module doc for retries, atomic writes, progress and how failures are reported.
pub async fn fetch_nab(opts: &FetchOptions) -> Result<FetchSummary, FetchError> {
    let base = opts.normalized_base_url()?;
    let entries = manifest()?;
    let client = build_client(&base, opts.timeout)?;
    let reporter = Reporter::new(opts.progress, entries.len());
    tracing::info!(
        dest = %opts.dest.display(),
        base_url = %base,
        files = entries.len(),
        concurrency = opts.concurrency,
        retries = opts.retries,
        "fetch-nab started"
    );
    let ctx = Ctx {
        opts,
        base: &base,
        client: &client,
        reporter: &reporter,
        downloaded: AtomicUsize::new(0),
        unreachable: AtomicBool::new(false),
    };
    let mut results: Vec<(usize, Result<Outcome, FetchError>)> =
        stream::iter(entries.iter().enumerate())
            .map(|(i, entry)| {
                let ctx = &ctx;
                async move {
                    if ctx.unreachable.load(Ordering::SeqCst) {
                        return (i, Ok(Outcome::NotAttempted));
                    }
                    let result = fetch_one(ctx, entry).await;
                    match &result {
                        Ok(Outcome::Downloaded(_)) => {
                            ctx.downloaded.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e)
                            if e.is_unreachable()
                                && ctx.downloaded.load(Ordering::SeqCst) == 0
                                && !ctx.unreachable.swap(true, Ordering::SeqCst) =>
                        {
                            ctx.reporter.note(&format!(
                                "fetch-nab: cannot reach {}; not starting the remaining files",
                                ctx.base
                            ));
                            tracing::error!(
                                base_url = %ctx.base,
                                "server unreachable; not starting the remaining files"
                            );
                        }
                        _ => {}
                    }
                    ctx.reporter.finished(entry, &result);
                    (i, result)
                }
            })
            .buffer_unordered(opts.concurrency.max(1))
            .collect()
            .await;
    reporter.finish();
    results.sort_by_key(|(i, _)| *i);

    let mut summary = FetchSummary {
        dest: opts.dest.clone(),
        ..FetchSummary::default()
    };
    let mut failures = Vec::new();
    let mut not_attempted = 0;
    for (_, result) in results {
        match result {
            Ok(Outcome::Downloaded(bytes)) => {
                summary.downloaded += 1;
                summary.bytes += bytes;
            }
            Ok(Outcome::Skipped) => summary.skipped += 1,
            Ok(Outcome::NotAttempted) => not_attempted += 1,
            Err(e) => failures.push(e),
        }
    }
    if let Some(first) = failures.first() {
        tracing::error!(
            failed = failures.len(),
            not_attempted,
            verified = summary.verified(),
            first = %first,
            "fetch-nab incomplete"
        );
        return Err(FetchError::Incomplete {
            total: entries.len(),
            verified: summary.verified(),
            not_attempted,
            dest: opts.dest.clone(),
            first: first.to_string(),
            failures,
        });
    }
    tracing::info!(
        downloaded = summary.downloaded,
        skipped = summary.skipped,
        bytes = summary.bytes,
        "fetch-nab done"
    );
    Ok(summary)
}

/// Shared state of one run.
struct Ctx<'a> {
    opts: &'a FetchOptions,
    base: &'a Url,
    client: &'a reqwest::Client,
    reporter: &'a Reporter,
    /// Files downloaded so far.
    downloaded: AtomicUsize,
    /// Set when the server looks unreachable: no new files are started.
    unreachable: AtomicBool,
}

enum Outcome {
    /// Downloaded and verified, with its size.
    Downloaded(u64),
    /// Already present with the right hash.
    Skipped,
    /// Not started because the server looked unreachable.
    NotAttempted,
}

fn build_client(base: &Url, timeout: Duration) -> Result<reqwest::Client, FetchError> {
    let mut builder = crate::http::client_builder()
        .user_agent(concat!("pulsewatch/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout);
    // A proxy cannot reach this machine's loopback interface, so don't route local mirrors
    // (and the tests' server) through one configured in the environment.
    if is_loopback(base) {
        builder = builder.no_proxy();
    }
    builder.build().map_err(|e| FetchError::Client {
        reason: error_chain(&e),
    })
}

fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some(host) if host.eq_ignore_ascii_case("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// One file: skip if present and valid, else download with retries.
async fn fetch_one(ctx: &Ctx<'_>, entry: &ManifestEntry) -> Result<Outcome, FetchError> {
    let final_path = entry.local_path(&ctx.opts.dest);
    let url =
        Url::parse(&format!("{}{}", ctx.base, entry.path)).map_err(|e| FetchError::BadBaseUrl {
            url: ctx.opts.base_url.clone(),
            reason: format!("cannot append {:?}: {e}", entry.path),
        })?;
    let io_err = |action: &'static str, file: &Path, error: std::io::Error| FetchError::Io {
        path: entry.path.clone(),
        action,
        file: file.to_path_buf(),
        error,
    };

    match tokio::fs::read(&final_path).await {
        Ok(existing) => {
            let actual = sha256_hex(&existing);
            if actual == entry.sha256 {
                tracing::info!(
                    path = %entry.path,
                    bytes = existing.len(),
                    "already present, verified"
                );
                return Ok(Outcome::Skipped);
            }
            tracing::warn!(
                path = %entry.path,
                expected = %entry.sha256,
                actual = %actual,
                "present with another SHA-256; downloading again"
            );
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("cannot read existing file", &final_path, e)),
    }

    let parent = final_path
        .parent()
        .map_or_else(|| ctx.opts.dest.clone(), Path::to_path_buf);
    tokio::fs::create_dir_all(&parent)
        .await
        .map_err(|e| io_err("cannot create folder", &parent, e))?;

    let mut attempt: u32 = 1;
    loop {
        match download_once(ctx, entry, &url, &parent, &final_path).await {
            Ok(bytes) => {
                tracing::info!(path = %entry.path, %url, bytes, attempt, "downloaded, verified");
                return Ok(Outcome::Downloaded(bytes));
            }
            Err(e) if e.is_retryable() && attempt <= ctx.opts.retries => {
                let wait = ctx.opts.backoff_for(attempt);
                tracing::warn!(
                    path = %entry.path,
                    %url,
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    error = %e,
                    "attempt failed; retrying"
                );
                ctx.reporter
                    .retrying(&e, attempt, ctx.opts.retries + 1, wait);
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(e) => {
                tracing::error!(path = %entry.path, %url, attempt, error = %e, "download failed");
                return Err(if attempt > 1 {
                    FetchError::GaveUp {
                        attempts: attempt,
                        last: Box::new(e),
                    }
                } else {
                    e
                });
            }
        }
    }
}

/// One attempt: GET, stream into a temp file next to the final path while hashing, check length
/// and hash, then rename over the final path. On any error the temp file is removed (dropping
/// the `TempPath` deletes it) and the final path is untouched.
async fn download_once(
    ctx: &Ctx<'_>,
    entry: &ManifestEntry,
    url: &Url,
    parent: &Path,
    final_path: &Path,
) -> Result<u64, FetchError> {
    let transfer = |unreachable: bool| {
        move |e: reqwest::Error| {
            let e = e.without_url(); // the error names the URL already
            FetchError::Transfer {
                path: entry.path.clone(),
                url: url.to_string(),
                unreachable,
                reason: if e.is_timeout() {
                    format!(
                        "timed out after {} ({})",
                        humantime::format_duration(ctx.opts.timeout),
                        error_chain(&e)
                    )
                } else {
                    error_chain(&e)
                },
            }
        }
    };
    let io_err = |action: &'static str, file: &Path, error: std::io::Error| FetchError::Io {
        path: entry.path.clone(),
        action,
        file: file.to_path_buf(),
        error,
    };

    let mut response = ctx.client.get(url.clone()).send().await.map_err(|e| {
        let unreachable = e.is_connect() || e.is_timeout();
        transfer(unreachable)(e)
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Status {
            path: entry.path.clone(),
            url: url.to_string(),
            status,
        });
    }
    let expected_len = response.content_length();

    let file_name = final_path
        .file_name()
        .map_or_else(|| "download".into(), |n| n.to_string_lossy().into_owned());
    let prefix = format!(".{file_name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".part");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Like a normally created file (subject to the umask), not tempfile's private 0600.
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let temp = builder
        .tempfile_in(parent)
        .map_err(|e| io_err("cannot create a temporary file in", parent, e))?;
    let (std_file, temp_path) = temp.into_parts();
    let mut file = tokio::fs::File::from_std(std_file);

    let mut hasher = Sha256::new();
    let mut received: u64 = 0;
    while let Some(chunk) = response.chunk().await.map_err(transfer(false))? {
        hasher.update(&chunk);
        received += chunk.len() as u64;
        file.write_all(&chunk)
            .await
            .map_err(|e| io_err("cannot write", &temp_path, e))?;
    }
    if let Some(expected) = expected_len
        && expected != received
    {
        return Err(FetchError::Truncated {
            path: entry.path.clone(),
            url: url.to_string(),
            expected,
            received,
        });
    }
    let actual = hex(&hasher.finalize());
    if actual != entry.sha256 {
        return Err(FetchError::ChecksumMismatch {
            path: entry.path.clone(),
            url: url.to_string(),
            expected: entry.sha256.clone(),
            actual,
            bytes: received,
        });
    }
    file.flush()
        .await
        .map_err(|e| io_err("cannot write", &temp_path, e))?;
    file.sync_all()
        .await
        .map_err(|e| io_err("cannot sync", &temp_path, e))?;
    drop(file);
    temp_path
        .persist(final_path)
        .map_err(|e| io_err("cannot move the verified download to", final_path, e.error))?;
    Ok(received)
}

/// Progress on stderr (bar or lines) for one run.
enum Reporter {
    Bar { bar: ProgressBar, bytes: AtomicU64 },
    Lines { total: usize, done: AtomicUsize },
    Hidden,
}

impl Reporter {
    fn new(mode: Progress, total: usize) -> Self {
        let mode = match mode {
            Progress::Auto if std::io::stderr().is_terminal() => Progress::Bar,
            Progress::Auto => Progress::Lines,
            other => other,
        };
        match mode {
            Progress::Bar => {
                let bar =
                    ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
                let style = ProgressStyle::with_template(
                    "fetch-nab [{bar:30}] {pos}/{len} files {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
                bar.set_style(style);
                Reporter::Bar {
                    bar,
                    bytes: AtomicU64::new(0),
                }
            }
            Progress::Lines => Reporter::Lines {
                total,
                done: AtomicUsize::new(0),
            },
            Progress::Auto | Progress::Hidden => Reporter::Hidden,
        }
    }

    fn finished(&self, entry: &ManifestEntry, result: &Result<Outcome, FetchError>) {
        match self {
            Reporter::Bar { bar, bytes } => {
                let so_far = match result {
                    Ok(Outcome::Downloaded(n)) => bytes.fetch_add(*n, Ordering::Relaxed) + n,
                    _ => bytes.load(Ordering::Relaxed),
                };
                if let Err(e) = result {
                    bar.println(format!("fetch-nab: FAILED {e}"));
                }
                bar.set_message(format!("{} fetched, {}", fmt_bytes(so_far), entry.path));
                bar.inc(1);
            }
            Reporter::Lines { total, done } => {
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                let line = match result {
                    Ok(Outcome::Downloaded(bytes)) => {
                        format!("{} ({})", entry.path, fmt_bytes(*bytes))
                    }
                    Ok(Outcome::Skipped) => format!("{} (already present)", entry.path),
                    Ok(Outcome::NotAttempted) => format!("{} (not attempted)", entry.path),
                    // The error names the file.
                    Err(e) => format!("FAILED {e}"),
                };
                eprint_line(&format!("fetch-nab: [{n}/{total}] {line}"));
            }
            Reporter::Hidden => {}
        }
    }

    /// A line above the bar / between the lines.
    fn note(&self, line: &str) {
        match self {
            Reporter::Bar { bar, .. } => bar.println(line),
            Reporter::Lines { .. } => eprint_line(line),
            Reporter::Hidden => {}
        }
    }

    fn retrying(&self, error: &FetchError, attempt: u32, attempts: u32, wait: Duration) {
        let line = format!(
            "fetch-nab: attempt {attempt}/{attempts} failed, retrying in {}: {error}",
            humantime::format_duration(wait)
        );
        self.note(&line);
    }

    fn finish(&self) {
        if let Reporter::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}

/// Writes one line to stderr, ignoring errors (progress must never fail a download).
fn eprint_line(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// An error and its sources, joined with `: `.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Decimal units, as in `266 KB` / `9.6 MB`.
fn fmt_bytes(n: u64) -> String {
    let x = n as f64;
    if n < 1_000 {
        format!("{n} B")
    } else if n < 1_000_000 {
        format!("{:.0} KB", x / 1e3)
    } else if n < 1_000_000_000 {
        format!("{:.1} MB", x / 1e6)
    } else {
        format!("{:.1} GB", x / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lists_the_corpus() {
        let entries = manifest().expect("embedded manifest parses");
        let csvs = entries
            .iter()
            .filter(|e| e.path.starts_with("data/") && e.path.ends_with(".csv"))
            .count();
        assert_eq!(csvs, 58, "data CSVs in the manifest");
        for needed in [
            "labels/combined_windows.json",
            "config/profiles.json",
            "config/thresholds.json",
        ] {
            assert!(
                entries.iter().any(|e| e.path == needed),
                "manifest lacks {needed}"
            );
        }
        for e in &entries {
            assert_eq!(e.sha256.len(), 64, "{}", e.path);
            assert!(
                e.sha256.bytes().all(|b| b.is_ascii_hexdigit()),
                "{}",
                e.path
            );
            assert!(
                ["data/", "labels/", "config/"]
                    .iter()
                    .any(|p| e.path.starts_with(p)),
                "unexpected {}",
                e.path
            );
        }
        // Every non-empty raw line is an entry, in the exact `sha256sum` format.
        let lines = MANIFEST.lines().filter(|l| !l.trim().is_empty()).count();
        assert_eq!(lines, entries.len());
        for line in MANIFEST.lines().filter(|l| !l.trim().is_empty()) {
            let (sha, _) = line.split_once("  ").expect("two spaces");
            assert_eq!(sha.len(), 64, "{line}");
            assert!(sha.bytes().all(|b| b.is_ascii_hexdigit()), "{line}");
        }
    }

    #[test]
    fn manifest_rejects_bad_lines() {
        let sha = "a".repeat(64);
        for bad in [
            "abc  data/x.csv".to_owned(),
            format!("{sha} data/x.csv"),
            format!("{sha}  /etc/passwd"),
            format!("{sha}  data/../x.csv"),
            format!("{sha}  data//x.csv"),
            format!("{sha}  data/x.csv\n{sha}  data/x.csv"),
            format!("{}  data/x.csv", "g".repeat(64)),
        ] {
            assert!(
                matches!(parse_manifest(&bad), Err(FetchError::Manifest { .. })),
                "{bad:?} accepted"
            );
        }
        let ok =
            parse_manifest(&format!("{}  data/a b.csv\r\n\n", "A".repeat(64))).expect("valid line");
        assert_eq!(ok[0].sha256, "a".repeat(64));
        assert_eq!(ok[0].path, "data/a b.csv");
    }

    #[test]
    fn base_url_is_checked_and_gets_a_trailing_slash() {
        let u = normalize_base_url("http://127.0.0.1:8080/nab").expect("valid");
        assert_eq!(u.as_str(), "http://127.0.0.1:8080/nab/");
        let u = normalize_base_url(DEFAULT_BASE_URL).expect("valid");
        assert_eq!(u.as_str(), DEFAULT_BASE_URL);
        for bad in [
            "not a url",
            "ftp://example.com/",
            "http://example.com/?x=1",
            "",
        ] {
            let err = normalize_base_url(bad).expect_err(bad);
            assert!(matches!(err, FetchError::BadBaseUrl { .. }), "{bad}: {err}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
        assert!(is_loopback(
            &normalize_base_url("http://127.0.0.1:1/").expect("ok")
        ));
        assert!(is_loopback(
            &normalize_base_url("http://[::1]:1/").expect("ok")
        ));
        assert!(!is_loopback(
            &normalize_base_url(DEFAULT_BASE_URL).expect("ok")
        ));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let mut o = FetchOptions::new(PathBuf::from("x"), DEFAULT_BASE_URL.to_owned());
        o.backoff = Duration::from_millis(100);
        assert_eq!(o.backoff_for(1), Duration::from_millis(100));
        assert_eq!(o.backoff_for(2), Duration::from_millis(200));
        assert_eq!(o.backoff_for(3), Duration::from_millis(400));
        assert_eq!(o.backoff_for(40), MAX_BACKOFF);
    }

    #[test]
    fn sizes_and_summary_read_well() {
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(265_771), "266 KB");
        assert_eq!(fmt_bytes(9_635_710), "9.6 MB");
        let s = FetchSummary {
            dest: PathBuf::from("data/nab"),
            downloaded: 68,
            skipped: 3,
            bytes: 9_635_710,
        };
        assert_eq!(
            s.to_string(),
            "fetch-nab: 71 files verified in data/nab (68 downloaded, 3 already present, 9.6 MB fetched)"
        );
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }
}
