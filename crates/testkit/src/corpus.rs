//! Locates the NAB corpus for tests: `data/nab` (linked by .ci/run), else `../shared/nab`.
//! Missing corpus: a failure under CI (CI=true), a plainly printed skip elsewhere.

use std::path::{Path, PathBuf};

/// The workspace root (where `data/`, `compose/`, `grafana/` and `fuzz/` live).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")))
}

/// The corpus for benchmarks: `PULSEWATCH_DATA_DIR`, else `data/nab`; `None` when absent.
pub fn bench_root() -> Option<PathBuf> {
    let root = std::env::var_os("PULSEWATCH_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("data/nab"));
    root.join("data").is_dir().then_some(root)
}

pub fn nab_root() -> Option<PathBuf> {
    let here = repo_root();
    for cand in [here.join("data/nab"), here.join("../shared/nab")] {
        if cand.join("data").is_dir() && cand.join("labels/combined_windows.json").is_file() {
            return Some(cand);
        }
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("NAB corpus not found at data/nab or ../shared/nab, and CI=true");
    }
    eprintln!(
        "SKIPPED: NAB corpus not found at data/nab or ../shared/nab (run `pulsewatch fetch-nab`)"
    );
    None
}

/// The shipped reference results (`results/numenta`, `results/windowedGaussian`), if present.
#[allow(dead_code)]
pub fn nab_results() -> Option<PathBuf> {
    let root = nab_root()?;
    let r = root.join("results");
    if r.join("final_results.json").is_file() {
        return Some(r);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("NAB reference results not found at {}", r.display());
    }
    eprintln!(
        "SKIPPED: NAB reference results not found at {}",
        r.display()
    );
    None
}
