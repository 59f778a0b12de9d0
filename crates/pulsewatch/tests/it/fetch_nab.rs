//! `fetch-nab` against a local HTTP server serving `../shared/nab`, with injected faults:
//! full download and re-run, corrupt bodies, dropped connections, flaky transfers, HTTP errors,
//! timeouts, and the real binary end to end.

use crate::support::http_server;

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use http_server::{Fault, TestServer};
use predicates::prelude::*;
use pulsewatch_core::nab::Corpus;
use pulsewatch_engine::sources::fetch::{self, FetchError, FetchOptions, ManifestEntry, Progress};

const RETRIES: u32 = 3;
const NYC_TAXI: &str = "data/realKnownCause/nyc_taxi.csv";
const AAPL: &str = "data/realTweets/Twitter_volume_AAPL.csv";
const EC2: &str = "data/realAWSCloudwatch/ec2_cpu_utilization_5f5533.csv";
const JUMPSUP: &str = "data/artificialWithAnomaly/art_daily_jumpsup.csv";

/// The source corpus, or `None` (after printing why) when it is missing outside CI.
fn nab_source() -> Option<PathBuf> {
    let dir = testkit::corpus::repo_root().join("../shared/nab");
    if dir.join("data").is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("NAB corpus not found at {}, and CI=true", dir.display());
    }
    println!(
        "skipped: NAB corpus not found at {} (fetch_nab tests need it to serve)",
        dir.display()
    );
    None
}

fn manifest() -> Vec<ManifestEntry> {
    fetch::manifest().expect("embedded manifest")
}

/// Fast options: small backoff, short timeout, no progress output.
fn options(dest: &Path, base_url: String) -> FetchOptions {
    let mut o = FetchOptions::new(dest.to_path_buf(), base_url);
    o.retries = RETRIES;
    o.backoff = Duration::from_millis(20);
    o.timeout = Duration::from_secs(10);
    o.progress = Progress::Hidden;
    o
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every manifest file except `except` is in `dest`, byte-identical to `src`.
fn assert_files_match(src: &Path, dest: &Path, except: &[&str]) {
    for e in manifest() {
        if except.contains(&e.path.as_str()) {
            continue;
        }
        assert!(
            read(&e.local_path(dest)) == read(&e.local_path(src)),
            "{} differs from the source",
            e.path
        );
    }
}

/// No temporary (`.part` / dot) files anywhere under `dir`.
fn assert_no_temp_files(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            !name.starts_with('.') && !name.ends_with(".part"),
            "temporary file left: {}",
            entry.path().display()
        );
        if entry.file_type().expect("file type").is_dir() {
            assert_no_temp_files(&entry.path());
        }
    }
}

fn incomplete_failures(err: &FetchError) -> &[FetchError] {
    match err {
        FetchError::Incomplete { failures, .. } => failures,
        other => panic!("expected FetchError::Incomplete, got {other}"),
    }
}

#[tokio::test]
async fn full_download_then_rerun_skips_everything() {
    let Some(src) = nab_source() else { return };
    let server = TestServer::serve_dir(&src);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("nab");
    let opts = options(&dest, server.base_url());
    let n = manifest().len();

    let summary = fetch::fetch_nab(&opts).await.expect("fetch");
    assert_eq!(summary.downloaded, n);
    assert_eq!(summary.skipped, 0);
    let expected_bytes: u64 = manifest()
        .iter()
        .map(|e| std::fs::metadata(e.local_path(&src)).expect("meta").len())
        .sum();
    assert_eq!(summary.bytes, expected_bytes);
    assert_eq!(server.total_requests(), n);
    assert!(summary.to_string().contains(&format!("{n} files verified")));
    assert_files_match(&src, &dest, &[]);
    assert_no_temp_files(&dest);
    let corpus = Corpus::load(&dest).expect("downloaded corpus loads");
    assert_eq!(corpus.series.len(), 58);

    server.reset_counts();
    let again = fetch::fetch_nab(&opts).await.expect("second fetch");
    assert_eq!((again.downloaded, again.skipped, again.bytes), (0, n, 0));
    assert_eq!(server.total_requests(), 0, "second run made requests");
}

#[tokio::test]
async fn always_corrupt_file_fails_and_leaves_no_file() {
    let Some(src) = nab_source() else { return };
    let server = TestServer::serve_dir(&src);
    server.set_fault(NYC_TAXI, Fault::CorruptBody);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("nab");

    let err = fetch::fetch_nab(&options(&dest, server.base_url()))
        .await
        .expect_err("corrupt file must fail the run");
    let msg = err.to_string();
    assert!(msg.contains(NYC_TAXI), "{msg}");
    assert!(msg.contains("SHA-256 checksum mismatch"), "{msg}");
    assert!(msg.contains(&server.url(NYC_TAXI)), "{msg}");
    assert!(msg.contains("1 of 71 files failed"), "{msg}");
    assert_eq!(incomplete_failures(&err).len(), 1);
    // Treated as a flaky transfer: retried, then reported.
    assert_eq!(server.requests(NYC_TAXI), RETRIES as usize + 1);
    let final_path = dest.join(NYC_TAXI);
    assert!(
        !final_path.exists(),
        "corrupt file at {}",
        final_path.display()
    );
    assert_no_temp_files(&dest);
    assert_files_match(&src, &dest, &[NYC_TAXI]);
}

#[tokio::test]
async fn existing_files_survive_corrupt_downloads() {
    let Some(src) = nab_source() else { return };
    let server = TestServer::serve_dir(&src);
    server.set_fault(NYC_TAXI, Fault::CorruptBody);
    server.set_fault(AAPL, Fault::CorruptBody);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("nab");
    // A local copy with the wrong hash (re-downloaded, but the download is corrupt) ...
    let wrong = dest.join(NYC_TAXI);
    std::fs::create_dir_all(wrong.parent().expect("parent")).expect("mkdir");
    std::fs::write(&wrong, b"timestamp,value\nlocally edited\n").expect("write");
    // ... and a valid local copy (skipped, never requested).
    let valid = dest.join(AAPL);
    std::fs::create_dir_all(valid.parent().expect("parent")).expect("mkdir");
    std::fs::copy(src.join(AAPL), &valid).expect("copy");

    let err = fetch::fetch_nab(&options(&dest, server.base_url()))
        .await
        .expect_err("corrupt download must fail");
    let failures = incomplete_failures(&err);
    assert_eq!(failures.len(), 1, "{err}");
    assert!(failures[0].to_string().contains(NYC_TAXI), "{err}");
    assert_eq!(
        read(&wrong),
        b"timestamp,value\nlocally edited\n",
        "the local file was replaced by a corrupt download"
    );
    assert_eq!(server.requests(NYC_TAXI), RETRIES as usize + 1);
    assert_eq!(server.requests(AAPL), 0, "a valid local file was requested");
    assert_eq!(read(&valid), read(&src.join(AAPL)));
    assert_no_temp_files(&dest);
    assert_files_match(&src, &dest, &[NYC_TAXI]);
}

#[tokio::test]
async fn connection_dropped_mid_body_on_every_attempt() {
    let Some(src) = nab_source() else { return };
    let server = TestServer::serve_dir(&src);
    server.set_fault(EC2, Fault::DropMidBody);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("nab");

    let err = fetch::fetch_nab(&options(&dest, server.base_url()))
        .await
        .expect_err("dropped connections must fail");
    let msg = err.to_string();
    assert!(msg.contains(&server.url(EC2)), "{msg}");
    assert!(
        msg.contains(&format!("gave up after {} attempts", RETRIES + 1)),
        "{msg}"
    );
    assert_eq!(server.requests(EC2), RETRIES as usize + 1);
    assert!(
        !dest.join(EC2).exists(),
        "partial file left at the final path"
    );
    assert_no_temp_files(&dest);
    assert_files_match(&src, &dest, &[EC2]);
}

#[tokio::test]
async fn flaky_transfer_is_retried_until_it_verifies() {
    let Some(src) = nab_source() else { return };
    let server = TestServer::serve_dir(&src);
    server.set_fault_first(NYC_TAXI, 2, Fault::DropMidBody);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("nab");
    // Base URL without the trailing slash: one is appended.
    let base = server.base_url().trim_end_matches('/').to_owned();

    let summary = fetch::fetch_nab(&options(&dest, base))
        .await
        .expect("succeeds on the third attempt");
    assert_eq!(summary.downloaded, manifest().len());
    assert_eq!(server.requests(NYC_TAXI), 3);
    assert_files_match(&src, &dest, &[]);
    assert_no_temp_files(&dest);
}

#[tokio::test]
async fn http_404_is_reported_at_once_and_500_is_retried() {
    let Some(src) = nab_source() else { return };
    let server = TestServer::serve_dir(&src);
    server.set_fault(JUMPSUP, Fault::Status(404));
    server.set_fault(NYC_TAXI, Fault::Status(500));
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("nab");

    let err = fetch::fetch_nab(&options(&dest, server.base_url()))
        .await
        .expect_err("HTTP errors must fail");
    let msg = err.to_string();
    assert!(msg.contains("2 of 71 files failed"), "{msg}");
    let failures = incomplete_failures(&err);
    assert_eq!(failures.len(), 2);
    // Manifest order: data/artificialWithAnomaly/... comes before data/realKnownCause/...
    let not_found = failures[0].to_string();
    assert!(not_found.contains(&server.url(JUMPSUP)), "{not_found}");
    assert!(not_found.contains("HTTP 404"), "{not_found}");
    assert!(msg.contains(&not_found), "first failure not shown: {msg}");
    let server_error = failures[1].to_string();
    assert!(
        server_error.contains(&server.url(NYC_TAXI)),
        "{server_error}"
    );
    assert!(server_error.contains("HTTP 500"), "{server_error}");
    assert_eq!(server.requests(JUMPSUP), 1, "a 404 was retried");
    assert_eq!(server.requests(NYC_TAXI), RETRIES as usize + 1);
    assert!(!dest.join(JUMPSUP).exists());
    assert!(!dest.join(NYC_TAXI).exists());
    assert_no_temp_files(&dest);
}

#[tokio::test]
async fn stalled_body_times_out() {
    let Some(src) = nab_source() else { return };
    let server = TestServer::serve_dir(&src);
    server.set_fault(AAPL, Fault::Stall(Duration::from_secs(30)));
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("nab");
    let mut opts = options(&dest, server.base_url());
    opts.timeout = Duration::from_millis(500);
    opts.retries = 1;

    let err = fetch::fetch_nab(&opts)
        .await
        .expect_err("stalled transfer must time out");
    let msg = err.to_string();
    assert!(msg.contains(AAPL) && msg.contains("timed out"), "{msg}");
    assert_eq!(server.requests(AAPL), 2);
    assert!(!dest.join(AAPL).exists());
    assert_no_temp_files(&dest);
}

#[tokio::test]
async fn unreachable_server_stops_early() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("nab");
    let mut opts = options(&dest, format!("http://127.0.0.1:{port}/"));
    opts.retries = 1;

    let err = fetch::fetch_nab(&opts)
        .await
        .expect_err("nothing to download from");
    let msg = err.to_string();
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(msg.contains("not attempted"), "{msg}");
    let FetchError::Incomplete {
        failures,
        not_attempted,
        ..
    } = &err
    else {
        panic!("expected FetchError::Incomplete, got {err}");
    };
    // Only the files already in flight when the first one gave up were tried.
    assert!(failures.len() <= opts.concurrency, "{msg}");
    assert_eq!(failures.len() + not_attempted, manifest().len());
    assert!(failures.iter().all(FetchError::is_unreachable), "{msg}");
    assert!(manifest().iter().all(|e| !e.local_path(&dest).exists()));
}

#[tokio::test]
async fn bad_base_url_is_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for bad in ["http//no-scheme", "ftp://example.com/nab/"] {
        let err = fetch::fetch_nab(&options(tmp.path(), bad.to_owned()))
            .await
            .expect_err(bad);
        assert!(matches!(err, FetchError::BadBaseUrl { .. }), "{err}");
        assert!(err.to_string().contains(bad), "{err}");
    }
    assert_eq!(
        std::fs::read_dir(tmp.path()).expect("read_dir").count(),
        0,
        "a bad URL must not touch the destination"
    );
}

#[test]
fn binary_fetches_a_loadable_corpus() {
    let Some(src) = nab_source() else { return };
    let server = TestServer::serve_dir(&src);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("nab");
    let logs = tmp.path().join("logs");

    Command::cargo_bin("pulsewatch")
        .expect("binary")
        .args(["fetch-nab", "--base-url", &server.base_url(), "--dest"])
        .arg(&dest)
        // Keep a developer's ./config.toml or ~/.config/pulsewatch out of it.
        .current_dir(tmp.path())
        .env("XDG_CONFIG_HOME", tmp.path().join("xdg"))
        .env("PULSEWATCH_LOGGING_DIR", &logs)
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "fetch-nab: 71 files verified in {} (71 downloaded, 0 already present",
            dest.display()
        )))
        .stderr(predicate::str::contains("fetch-nab: [71/71] "))
        .stderr(predicate::str::contains(NYC_TAXI));

    let corpus = Corpus::load(&dest).expect("downloaded corpus loads");
    assert_eq!(corpus.series.len(), 58);
    assert_files_match(&src, &dest, &[]);
    let log = std::fs::read_to_string(logs.join("ingest.log")).expect("ingest.log");
    assert!(log.contains("fetch-nab done"), "{log}");
}
