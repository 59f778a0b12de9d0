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
//! validations; two runs writing at the same moment may still lose one's new choices (the next
//! run validates those series again). It is a cache: one that cannot be read or parsed is
//! reported once (naming the file) and replaced by the next run's choices; it is written
//! atomically (a temporary file renamed over it), so a run that stops half-way leaves the
//! previous one.

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
}
