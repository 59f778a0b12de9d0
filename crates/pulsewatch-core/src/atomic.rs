//! Atomic file writes: a temp file in the same folder, synced, then renamed over the target, so
//! a reader never sees a half-written file and the old file survives a failed write. Used by the
//! model store and the results writers.

use std::io::Write;
use std::path::{Path, PathBuf};

/// An I/O error on a named file (the I/O error is part of the message, so it prints once).
#[derive(Debug, thiserror::Error)]
#[error("{}: {error}", path.display())]
pub struct FileError {
    pub path: PathBuf,
    pub error: std::io::Error,
}

/// Writes `bytes` to `path` atomically (creating its folder).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |e: std::io::Error| FileError {
        path: path.to_path_buf(),
        error: e,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".pulsewatch-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}
