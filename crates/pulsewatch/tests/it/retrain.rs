//! Retraining and persistence: versioned model files with atomic writes, load-or-fit with a
//! warning and retrain on missing / corrupt / incompatible files, background retrain with progress
//! and cancellation, and the retrain schedule.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pulsewatch_core::detect::{Detector, FitControl, FitError, FitProgress, Point, Trainable};
use pulsewatch_core::store::{LoadOutcome, ModelStore, load_or_fit};
use pulsewatch_engine::retrain::{RetrainRequest, RetrainSchedule, TrainEvent, spawn_retrain};

/// A toy model with a fit step: learns mean and std; scores |z| squashed to [0, 1].
#[derive(Default)]
struct MeanModel {
    model: Option<(f64, f64)>,
    steps: usize,
    delay: Duration,
}

static FITS: AtomicUsize = AtomicUsize::new(0);

impl MeanModel {
    fn new(steps: usize, delay_ms: u64) -> Self {
        MeanModel {
            model: None,
            steps,
            delay: Duration::from_millis(delay_ms),
        }
    }
}

impl Detector for MeanModel {
    fn update(&mut self, p: Point) -> f64 {
        match self.model {
            Some((m, s)) => {
                let z = ((p.value - m) / s).abs();
                z / (1.0 + z)
            }
            None => 0.5,
        }
    }
    fn trainable(&mut self) -> Option<&mut dyn Trainable> {
        Some(self)
    }
}

impl Trainable for MeanModel {
    fn fit(&mut self, history: &[Point], ctl: &mut FitControl<'_>) -> Result<(), FitError> {
        if history.len() < 2 {
            return Err(FitError::TooShort {
                have: history.len(),
                need: 2,
            });
        }
        for step in 1..=self.steps {
            if ctl.cancelled() {
                return Err(FitError::Cancelled);
            }
            std::thread::sleep(self.delay);
            (ctl.progress)(FitProgress {
                done: step,
                total: self.steps,
                loss: Some(1.0 / step as f64),
            });
        }
        let n = history.len() as f64;
        let m = history.iter().map(|p| p.value).sum::<f64>() / n;
        let v = history.iter().map(|p| (p.value - m).powi(2)).sum::<f64>() / n;
        self.model = Some((m, v.sqrt().max(1e-9)));
        FITS.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn is_fitted(&self) -> bool {
        self.model.is_some()
    }
    fn save_state(&self) -> Option<Vec<u8>> {
        self.model.map(|(m, s)| format!("{m} {s}").into_bytes())
    }
    fn load_state(&mut self, bytes: &[u8]) -> Result<(), FitError> {
        let text = std::str::from_utf8(bytes).map_err(|e| FitError::BadState(e.to_string()))?;
        let mut it = text.split(' ').map(str::parse::<f64>);
        match (it.next(), it.next()) {
            (Some(Ok(m)), Some(Ok(s))) => {
                self.model = Some((m, s));
                Ok(())
            }
            _ => Err(FitError::BadState(format!("bad state {text:?}"))),
        }
    }
}

fn history(n: usize) -> Vec<Point> {
    (0..n)
        .map(|i| Point {
            timestamp: i as i64 * 300,
            value: (i % 7) as f64,
        })
        .collect()
}

fn no_temp_files(dir: &std::path::Path) {
    for e in walk(dir) {
        assert!(!e.ends_with(".tmp"), "temp file left: {e}");
    }
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

#[test]
fn store_round_trips_and_rejects_damaged_or_foreign_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ModelStore::new(dir.path());
    let key = "realKnownCause/nyc_taxi.csv";
    let (o, _) = store.load("toy", "p1", key);
    assert!(matches!(o, LoadOutcome::Missing(_)), "{o:?}");
    let path = store.save("toy", "p1", key, 100, b"1.5 2.5").expect("save");
    assert!(path.starts_with(dir.path().join("toy")));
    no_temp_files(dir.path());
    let (o, v) = store.load("toy", "p1", key);
    assert!(matches!(o, LoadOutcome::Loaded(_)), "{o:?}");
    let (h, payload) = v.expect("payload");
    assert_eq!(
        (h.trained_points, h.series.as_str(), payload.as_slice()),
        (100, key, &b"1.5 2.5"[..])
    );

    let reject = |why: &str| {
        let (o, v) = store.load("toy", "p1", key);
        match o {
            LoadOutcome::Rejected(_, reason) => assert!(reason.contains(why), "{reason}"),
            other => panic!("expected rejection for {why}, got {other:?}"),
        }
        assert!(v.is_none());
    };
    // Other parameters or detector: stale.
    assert!(matches!(
        store.load("toy", "p2", key).0,
        LoadOutcome::Rejected(..)
    ));
    // Flipped payload byte: checksum.
    let good = std::fs::read(&path).expect("read");
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    std::fs::write(&path, &bad).expect("write");
    reject("checksum");
    // Truncated.
    std::fs::write(&path, &good[..good.len() - 3]).expect("write");
    reject("checksum");
    // Not ours at all.
    std::fs::write(&path, b"PK\x03\x04 garbage").expect("write");
    reject("not a pulsewatch model");
    // A future format version.
    let text = String::from_utf8(good.clone())
        .expect("utf8")
        .replace("\"format_version\":1", "\"format_version\":99");
    std::fs::write(&path, text).expect("write");
    reject("format version 99");
}

#[test]
fn load_or_fit_trains_saves_restores_and_recovers_from_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ModelStore::new(dir.path());
    let h = history(500);
    let key = "cat/a.csv";
    let first = load_or_fit(Box::new(MeanModel::new(2, 0)), "toy", "p", key, &h, &store);
    assert!(matches!(first.outcome, LoadOutcome::Missing(_)));
    assert!(matches!(first.fitted, Some(Ok(_))));
    let mut a = first.detector;
    let path = store.path("toy", key);
    assert!(path.exists(), "model saved at {}", path.display());

    let second = load_or_fit(Box::new(MeanModel::new(2, 0)), "toy", "p", key, &h, &store);
    assert!(
        matches!(second.outcome, LoadOutcome::Loaded(_)),
        "{:?}",
        second.outcome
    );
    assert!(second.fitted.is_none(), "restored models are not refitted");
    let mut b = second.detector;
    let probe = Point {
        timestamp: 0,
        value: 42.0,
    };
    assert_eq!(a.update(probe), b.update(probe));

    // Corrupt the file: a warning and a retrain, never a panic; the file is valid again after.
    std::fs::write(&path, b"pulsewatch-model\n{not json").expect("corrupt");
    let third = load_or_fit(Box::new(MeanModel::new(2, 0)), "toy", "p", key, &h, &store);
    assert!(
        matches!(third.outcome, LoadOutcome::Rejected(..)),
        "{:?}",
        third.outcome
    );
    assert!(matches!(third.fitted, Some(Ok(_))));
    let fourth = load_or_fit(Box::new(MeanModel::new(2, 0)), "toy", "p", key, &h, &store);
    assert!(
        matches!(fourth.outcome, LoadOutcome::Loaded(_)),
        "{:?}",
        fourth.outcome
    );

    // A payload the detector cannot read (valid envelope): rejected, retrained.
    store.save("toy", "p", key, 1, b"nonsense").expect("save");
    let fifth = load_or_fit(Box::new(MeanModel::new(2, 0)), "toy", "p", key, &h, &store);
    assert!(
        matches!(fifth.outcome, LoadOutcome::Rejected(..)),
        "{:?}",
        fifth.outcome
    );
    assert!(matches!(fifth.fitted, Some(Ok(_))));
    no_temp_files(dir.path());
}

#[tokio::test]
async fn background_retrain_reports_progress_and_saves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ModelStore::new(dir.path());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let job = spawn_retrain(toy_request(&store, "cat/a.csv", MeanModel::new(4, 5)), tx);
    let det = job.finish().await;
    assert!(det.is_some());
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    let steps: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Progress { progress, .. } => Some(progress.done),
            _ => None,
        })
        .collect();
    assert_eq!(steps, vec![1, 2, 3, 4]);
    match events.last() {
        Some(TrainEvent::Finished {
            saved: Ok(Some(p)), ..
        }) => assert!(p.exists()),
        other => panic!("expected Finished with a saved model, got {other:?}"),
    }
}

#[tokio::test]
async fn cancelled_retrain_keeps_the_previous_model_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ModelStore::new(dir.path());
    let key = "cat/a.csv";
    let old = store.save("toy", "p", key, 10, b"1 1").expect("save");
    let before = std::fs::read(&old).expect("read");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let job = spawn_retrain(toy_request(&store, key, MeanModel::new(1000, 2)), tx);
    // Wait for the fit to be under way, then cancel.
    match rx.recv().await {
        Some(TrainEvent::Progress { .. }) => {}
        other => panic!("expected progress, got {other:?}"),
    }
    let t0 = Instant::now();
    job.cancel();
    assert!(
        job.finish().await.is_none(),
        "a cancelled retrain yields no detector"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "cancel took {:?}",
        t0.elapsed()
    );
    let mut last = None;
    while let Ok(e) = rx.try_recv() {
        last = Some(e);
    }
    assert!(
        matches!(last, Some(TrainEvent::Cancelled { .. })),
        "{last:?}"
    );
    assert_eq!(
        std::fs::read(&old).expect("read"),
        before,
        "model file untouched"
    );
}

#[tokio::test]
async fn failing_fit_reports_failure() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let job = spawn_retrain(
        RetrainRequest {
            detector: Box::new(MeanModel::new(1, 0)),
            name: "toy".into(),
            params: "p".into(),
            series: "s".into(),
            history: history(1),
            store: None,
        },
        tx,
    );
    assert!(job.finish().await.is_none());
    match rx.recv().await {
        Some(TrainEvent::Failed { error, .. }) => {
            assert!(error.contains("not enough history"), "{error}")
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[test]
fn schedule_is_due_once_per_interval_and_never_when_zero() {
    let t0 = Instant::now();
    let mut s = RetrainSchedule::new(Duration::from_secs(60), t0);
    assert!(!s.due(t0 + Duration::from_secs(59)));
    assert!(s.due(t0 + Duration::from_secs(60)));
    assert!(!s.due(t0 + Duration::from_secs(61)));
    assert!(s.due(t0 + Duration::from_secs(121)));
    s.reset(t0 + Duration::from_secs(150));
    assert!(!s.due(t0 + Duration::from_secs(200)));
    let mut off = RetrainSchedule::new(Duration::ZERO, t0);
    assert!(!off.due(t0 + Duration::from_secs(1_000_000)));
}

/// A retrain of the toy model on 300 points of history, saved to `store`.
fn toy_request(store: &ModelStore, series: &str, model: MeanModel) -> RetrainRequest {
    RetrainRequest {
        detector: Box::new(model),
        name: "toy".into(),
        params: "p".into(),
        series: series.into(),
        history: history(300),
        store: Some(store.clone()),
    }
}

/// A small tmpfs mounted over a folder for one test; unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// Mounts a `size`-byte tmpfs at `dir` (root only). Outside CI a machine that cannot mount
    /// skips the test with a notice; in CI that is a failure.
    fn mount(dir: &std::path::Path, size: usize) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_path_buf())),
            other => {
                let why = format!("cannot mount a tmpfs (needs root): {other:?}");
                assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
                eprintln!("SKIPPED: {why}");
                None
            }
        }
    }

    fn remount_read_only(&self) {
        let ok = std::process::Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .expect("run mount");
        assert!(ok.success(), "remount read-only");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

async fn retrain_into(store: &ModelStore, key: &str) -> (bool, Vec<TrainEvent>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let job = spawn_retrain(toy_request(store, key, MeanModel::new(4, 5)), tx);
    let det = job.finish().await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (det.is_some(), events)
}

/// A full, then a read-only model directory: the retrain still finishes and its model is used,
/// the event says why it was not saved, the previous model file is byte-for-byte intact and no
/// temp file is left behind.
#[tokio::test]
async fn full_or_read_only_model_dir_keeps_the_model_in_use_and_the_old_file_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models = dir.path().join("models");
    let Some(fs) = Tmpfs::mount(&models, 64 * 1024) else {
        return;
    };
    let store = ModelStore::new(&models);
    let key = "cat/a.csv";
    let old = store.save("toy", "p", key, 10, b"1 1").expect("save");
    let before = std::fs::read(&old).expect("read");

    // Fill the filesystem to the last byte.
    {
        use std::io::Write as _;
        let mut filler = std::fs::File::create(models.join("filler")).expect("filler");
        let block = vec![0u8; 4096];
        while filler.write_all(&block).is_ok() {}
        while filler.write_all(&block[..1]).is_ok() {}
    }
    let (in_use, events) = retrain_into(&store, key).await;
    assert!(
        in_use,
        "the fitted detector is returned although it cannot be saved"
    );
    match events.last() {
        Some(TrainEvent::Finished { saved: Err(e), .. }) => {
            assert!(e.contains("No space left on device"), "{e}");
            assert!(e.contains("a.csv.model"), "error names the file: {e}");
        }
        other => panic!("expected Finished with a save error, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&old).expect("read"),
        before,
        "old model changed"
    );
    no_temp_files(&models);

    // Room again, but the filesystem is now read-only.
    std::fs::remove_file(models.join("filler")).expect("remove filler");
    fs.remount_read_only();
    let (in_use, events) = retrain_into(&store, key).await;
    assert!(in_use);
    match events.last() {
        Some(TrainEvent::Finished { saved: Err(e), .. }) => {
            assert!(e.contains("Read-only file system"), "{e}");
        }
        other => panic!("expected Finished with a save error, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&old).expect("read"),
        before,
        "old model changed"
    );
    // The old model still loads.
    let (outcome, payload) = store.load("toy", "p", key);
    assert!(matches!(outcome, LoadOutcome::Loaded(_)), "{outcome:?}");
    assert_eq!(payload.map(|(_, p)| p), Some(b"1 1".to_vec()));
}

/// A detector that fits itself on its first window (no retrain asked) has its model saved, so
/// the series restarts fitted; without the file it starts unfitted again.
#[test]
fn an_automatic_first_fit_is_saved_and_restored_after_a_restart() {
    use pulsewatch_core::config::{DetectorConfig, IsolationForestConfig};
    use pulsewatch_core::detect::DetectorKind;
    use pulsewatch_engine::engine::core::{Core, CoreSettings};
    use pulsewatch_engine::sources::source::{SeriesInfo, SourceKind};

    let dir = tempfile::tempdir().expect("tempdir");
    let store = ModelStore::new(dir.path());
    let mut detector_cfg = DetectorConfig {
        isolation_forest: IsolationForestConfig {
            trees: 20,
            train: 200,
            // Fitted once: the first fit is the model (one refitted on a sliding window is not
            // saved: below).
            refit_every: 0,
            ..IsolationForestConfig::default()
        },
        ..DetectorConfig::default()
    };
    let core = |cfg: &DetectorConfig| {
        Core::new(CoreSettings {
            source: SourceKind::Nab,
            detector: DetectorKind::IsolationForest,
            detector_cfg: cfg.clone(),
            threshold: 0.5,
            history: 1000,
            store: Some(store.clone()),
            events_keep: 100,
        })
    };
    let info = SeriesInfo {
        id: "cat/a.csv".into(),
        name: "a".into(),
        category: "cat".into(),
        source: SourceKind::Nab,
        instance: None,
    };
    let h = history(500);
    let fitted = |core: &mut Core| core.snapshot().get("cat/a.csv").and_then(|v| v.fitted);
    let path = store.path("isolation-forest", "cat/a.csv");

    let mut first = core(&detector_cfg);
    first.ingest(info.clone(), &h[..150], false);
    assert_eq!(fitted(&mut first), Some(false));
    assert!(!path.exists(), "saved before any fit");
    first.ingest(info.clone(), &h[150..], false);
    assert_eq!(fitted(&mut first), Some(true));
    let params = DetectorKind::IsolationForest.params(&detector_cfg);
    let (outcome, saved) = store.load("isolation-forest", &params, "cat/a.csv");
    assert!(matches!(outcome, LoadOutcome::Loaded(_)), "{outcome:?}");
    let (header, _) = saved.expect("payload");
    // Saved at the fit (the points seen then), not at the end of the batch.
    assert!(
        (200..500).contains(&header.trained_points),
        "{}",
        header.trained_points
    );
    let written = std::fs::read(&path).expect("model file");
    first.ingest(info.clone(), &later(&h), false);
    assert_eq!(
        std::fs::read(&path).expect("model file"),
        written,
        "written again"
    );

    // A restart: fitted from its first point.
    let mut second = core(&detector_cfg);
    second.ingest(info.clone(), &h[..1], false);
    assert_eq!(
        fitted(&mut second),
        Some(true),
        "the saved fit was not restored"
    );

    // Without the file the series starts unfitted.
    std::fs::remove_file(&path).expect("remove");
    let mut third = core(&detector_cfg);
    third.ingest(info.clone(), &h[..1], false);
    assert_eq!(fitted(&mut third), Some(false));

    // A forest refitted on a sliding window fits itself but is not saved.
    detector_cfg.isolation_forest.refit_every = 100;
    let mut sliding = core(&detector_cfg);
    sliding.ingest(info.clone(), &h, false);
    sliding.ingest(info, &later(&h), false);
    assert_eq!(fitted(&mut sliding), Some(true));
    assert!(!path.exists(), "a sliding-window forest was saved");
    no_temp_files(dir.path());
}

/// `h` again, after its end.
fn later(h: &[Point]) -> Vec<Point> {
    let shift = h.last().map_or(0, |p| p.timestamp + 300);
    h.iter()
        .map(|p| Point {
            timestamp: p.timestamp + shift,
            value: p.value,
        })
        .collect()
}
