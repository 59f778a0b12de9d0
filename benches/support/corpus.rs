//! The NAB corpus for benchmarks: `PULSEWATCH_DATA_DIR`, else `data/nab`; `None` when absent.

use std::path::PathBuf;

pub fn corpus_root() -> Option<PathBuf> {
    let root = std::env::var_os("PULSEWATCH_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/nab"));
    root.join("data").is_dir().then_some(root)
}
