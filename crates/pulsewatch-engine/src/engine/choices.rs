//! `auto`'s validated choices kept between batch runs (`--once` from cron): the forecast service
//! keeps each series' choice in memory and validates again only once the series has grown by a
//! horizon ([`AutoMemo::fresh_for`]); a batch run starts from nothing, so without this file every
//! run would validate every series again (about 30 ms a series at 4,000 points: minutes for a
//! fleet of ten thousand).
//!
//! The file (`auto-choices.json` in `[retrain] model_dir`, one per shard when sharded) holds the
//! choices of the series of the latest run, with the horizon and interval width they were
//! validated for; a file made for other settings is ignored. Choices of series the run did not
//! have (another configuration's, run from another cron line with the same model folder) are
//! carried over while they could still be reused ([`carry_over`]: validated less than a horizon
//! before the run's newest validation, in data time, so a replay of old data and a live job
//! sharing a folder still drop each other's), so two such jobs do not undo each other's
//! validations. A run reads the file again when it saves ([`save_merged`]), under an exclusive
//! lock on `<file>.lock` beside it (the OS's advisory file lock, released when the run's handle
//! closes, so a run that dies leaves no stale lock), so two runs that overlap keep each other's
//! new choices too. It is a cache: one that cannot be read or parsed is reported once (naming
//! the file) and replaced by the next run's choices; it is written atomically (a temporary file
//! renamed over it), so a run that stops half-way leaves the previous one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pulsewatch_core::forecast::ForecastSettings;
use pulsewatch_core::forecast::auto::AutoMemo;

/// File name inside the model folder.
pub const FILE: &str = "auto-choices.json";
const FORMAT: &str = "pulsewatch.auto-choices/v1";

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ChoiceFile {
    format: String,
    horizon_secs: u64,
    interval_width: f64,
    choices: BTreeMap<String, AutoMemo>,
}

/// Where the choices are kept for a model folder: [`FILE`], or `auto-choices-<k>-of-<n>.json`
/// for shard k of n, so the instances of a sharded fleet sharing one folder keep theirs apart.
pub fn path_in(model_dir: &Path, shard: Option<pulsewatch_core::shard::Shard>) -> PathBuf {
    match shard {
        None => model_dir.join(FILE),
        Some(s) => model_dir.join(format!("auto-choices-{}-of-{}.json", s.index, s.count)),
    }
}

/// The choices saved at `path` for `settings`: empty when there is no file or it was made for
/// another horizon or interval width; `Err` (naming the file) when it cannot be read or parsed.
pub fn load(
    path: &Path,
    settings: &ForecastSettings,
) -> Result<BTreeMap<String, AutoMemo>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let file: ChoiceFile =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if file.format != FORMAT {
        return Err(format!(
            "{}: format {:?}, expected {FORMAT:?}",
            path.display(),
            file.format
        ));
    }
    let same = file.horizon_secs == settings.horizon.as_secs()
        && file.interval_width == settings.interval_width;
    Ok(if same { file.choices } else { BTreeMap::new() })
}

/// Adds to `keep` (this run's choices) the choices in `previous` (the file as loaded) of series
/// this run did not forecast (`ran` is false for them) that could still be reused: validated
/// less than `horizon_secs` before the newest validation in `keep` (older ones would be
/// validated again anyway, and a series that is gone drops out). With nothing validated in this
/// run there is no reference time and all of them are carried over.
pub fn carry_over(
    keep: &mut BTreeMap<String, AutoMemo>,
    previous: BTreeMap<String, AutoMemo>,
    ran: impl Fn(&str) -> bool,
    horizon_secs: i64,
) {
    let newest = keep.values().map(|m| m.validated_end).max();
    for (id, memo) in previous {
        let fresh = newest.is_none_or(|n| n - memo.validated_end < horizon_secs);
        if !ran(&id) && fresh {
            keep.entry(id).or_insert(memo);
        }
    }
}

/// Saves this run's `choices` to `path` with the still-fresh choices of the series it did not
/// run (`ran` false) carried over from the file as it is *now* (read again under the lock, so a
/// run that saved since this one started keeps its choices): [`carry_over`], then [`save`],
/// holding an exclusive lock on `<path>.lock` from the read to the rename. A file that cannot be
/// read or parsed is replaced (it was reported when the run loaded it).
pub fn save_merged(
    path: &Path,
    settings: &ForecastSettings,
    mut choices: BTreeMap<String, AutoMemo>,
    ran: impl Fn(&str) -> bool,
    horizon_secs: i64,
) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let lock_path = path.with_extension("json.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
    let now = load(path, settings).unwrap_or_default();
    carry_over(&mut choices, now, ran, horizon_secs);
    save(path, settings, choices)
    // `lock` is dropped here: the lock is released after the rename.
}

/// Writes `choices` for `settings` to `path` atomically (creating its folder).
pub fn save(
    path: &Path,
    settings: &ForecastSettings,
    choices: BTreeMap<String, AutoMemo>,
) -> Result<(), String> {
    let file = ChoiceFile {
        format: FORMAT.into(),
        horizon_secs: settings.horizon.as_secs(),
        interval_width: settings.interval_width,
        choices,
    };
    let text = serde_json::to_string(&file).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulsewatch_core::shard::Shard;

    #[test]
    fn shards_keep_their_choices_apart() {
        let dir = Path::new("/m");
        assert_eq!(path_in(dir, None), Path::new("/m/auto-choices.json"));
        let s = |index| Some(Shard { index, count: 3 });
        assert_eq!(path_in(dir, s(1)), Path::new("/m/auto-choices-1-of-3.json"));
        assert_ne!(path_in(dir, s(0)), path_in(dir, s(2)));
    }

    fn settings() -> ForecastSettings {
        ForecastSettings::default()
    }

    /// A choice as the file holds it (seasonal naive, validated at `validated_end`).
    fn memo(validated_end: i64) -> AutoMemo {
        serde_json::from_value(serde_json::json!({
            "choice": {"Model": "snaive"}, "half_width": null, "why": "test",
            "validated_end": validated_end, "validated": true, "horizon": 24, "step": 3600,
        }))
        .expect("memo")
    }

    fn one(id: &str, end: i64) -> BTreeMap<String, AutoMemo> {
        BTreeMap::from([(id.to_string(), memo(end))])
    }

    /// A run that loaded the file before another run saved (two cron lines overlapping) keeps
    /// the other's new choices: the save reads the file again instead of trusting what the run
    /// loaded at its start.
    #[test]
    fn a_save_keeps_choices_another_run_saved_since_this_one_loaded() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("models").join(FILE);
        let f = settings();
        let horizon = 86_400;
        // Run A starts: nothing saved yet.
        let loaded_by_a = load(&path, &f).expect("load");
        assert!(loaded_by_a.is_empty());
        // Run B (series x) saves while A is still fitting.
        save_merged(&path, &f, one("x", 1_000), |id| id == "x", horizon).expect("b saves");
        // A (series a) saves: x survives.
        save_merged(&path, &f, one("a", 1_100), |id| id == "a", horizon).expect("a saves");
        let now = load(&path, &f).expect("load");
        assert_eq!(now.keys().collect::<Vec<_>>(), ["a", "x"], "{now:?}");
        assert_eq!(now["x"].validated_end, 1_000);
        // The lock file stays beside it; the lock itself went with the handle.
        assert!(path.with_extension("json.lock").exists());
    }

    /// Many runs saving at once lose nobody's choices (the read-modify-write is under the lock).
    #[test]
    fn concurrent_saves_keep_every_run_s_choices() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join(FILE);
        let f = settings();
        std::thread::scope(|s| {
            for t in 0..6 {
                let (path, f) = (&path, &f);
                s.spawn(move || {
                    for k in 0..15 {
                        let id = format!("s{t}-{k}");
                        save_merged(path, f, one(&id, 5_000), |x| x == id, 86_400).expect("save");
                    }
                });
            }
        });
        let now = load(&path, &f).expect("load");
        assert_eq!(now.len(), 90, "lost choices: {:?}", now.keys());
    }
}
