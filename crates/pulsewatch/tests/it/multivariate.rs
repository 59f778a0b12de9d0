//! The LSTM autoencoder's multivariate mode through the engine's core: the series of one
//! instance are scored by one model, a planted break in their relation is flagged on the group
//! with the member of largest error named (one event for the group, not one per member), and a
//! series without an instance keeps a model of its own.

use pulsewatch_core::config::{DetectorConfig, LstmAeConfig};
use pulsewatch_core::detect::{DetectorKind, Point};
use pulsewatch_engine::engine::core::{Core, CoreSettings};
use pulsewatch_engine::sources::source::{SeriesInfo, SourceKind};

const BREAK: usize = 560;
const T0: i64 = 1_700_000_000;

fn ts(row: usize) -> i64 {
    T0 + 60 * row as i64
}

fn info(id: &str, instance: Option<&str>) -> SeriesInfo {
    SeriesInfo {
        id: id.to_string(),
        name: id.to_string(),
        category: "host".into(),
        source: SourceKind::Host,
        instance: instance.map(str::to_string),
    }
}

/// (cpu, memory, latency) rows: memory and latency follow a smooth load that cpu is; from
/// `BREAK` latency drifts (over 40 rows) 13 rows behind the load and stays there, so no member
/// alone shows anything unusual.
fn rows(n: usize) -> Vec<[f64; 3]> {
    let load = |t: f64| (t / 6.0).sin() + 0.6 * (t / 14.3).sin() + 0.4 * (t / 3.7 + 1.0).sin();
    let mut state = 7u64;
    let mut noise = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        0.05 * (((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0)
    };
    (0..n)
        .map(|t| {
            let x = t as f64;
            let u = (t.saturating_sub(BREAK) as f64 / 40.0).min(1.0);
            let lag = 13.0 * u * u * (3.0 - 2.0 * u);
            [
                load(x) + noise(),
                0.6 * load(x) + 0.5 * (x / 40.0).sin() + noise(),
                2.0 * load(x - lag) + 1.0 + noise(),
            ]
        })
        .collect()
}

/// A multivariate lstm-ae small enough to fit in a test (sequence 20, hidden 16, 400 rows).
fn small_group_model() -> DetectorConfig {
    DetectorConfig {
        lstm_ae: LstmAeConfig {
            sequence: 20,
            hidden: 16,
            batch: 16,
            train: 400,
            multivariate: true,
            ..LstmAeConfig::default()
        },
        ..DetectorConfig::default()
    }
}

#[test]
fn an_instance_is_scored_jointly_and_a_break_is_flagged_with_its_largest_error() {
    let detector_cfg = small_group_model();
    let mut core = Core::new(CoreSettings {
        source: SourceKind::Host,
        detector: DetectorKind::LstmAe,
        detector_cfg,
        threshold: 0.5,
        history: 1000,
        store: None,
        events_keep: 100,
    });
    let names = ["cpu", "memory", "latency"];
    for (t, row) in rows(700).iter().enumerate() {
        // One poll: each member reports through its own stream, as the host source emits them.
        for (name, &value) in names.iter().zip(row) {
            let p = Point {
                timestamp: ts(t),
                value,
            };
            core.ingest(info(name, Some("db-1")), &[p], false);
        }
        let p = Point {
            timestamp: ts(t),
            value: row[0],
        };
        core.ingest(info("alone", None), &[p], false);
        // A running group event is every member's latest, and listed once.
        if t >= BREAK && t % 5 == 0 {
            let listed = core.snapshot().events_newest_first();
            let running = listed
                .iter()
                .filter(|e| e.open && e.group.is_some())
                .count();
            assert!(
                running <= 1,
                "row {t}: the group's running event listed {running} times"
            );
        }
    }
    let snap = core.snapshot();
    let events = snap.events_newest_first();
    let group: Vec<_> = events.iter().filter(|e| e.series != "alone").collect();
    assert!(
        group.iter().all(|e| e.start >= ts(BREAK)),
        "alarm before the break"
    );
    let caught: Vec<_> = group.iter().filter(|e| e.start <= ts(BREAK + 81)).collect();
    assert!(!caught.is_empty(), "the break was missed");
    // One event per run of flagged rows of the group: group events never overlap in time, and
    // each names the member with the largest error at its peak as its series.
    assert!(group.iter().all(|e| e.group.as_deref() == Some("db-1")));
    let mut spans: Vec<(i64, i64)> = group.iter().map(|e| (e.start, e.end)).collect();
    spans.sort();
    assert!(
        spans.windows(2).all(|w| w[0].1 < w[1].0),
        "overlapping group events (one per member?): {spans:?}"
    );
    for e in &caught {
        assert!(names.contains(&e.series.as_str()), "{}", e.series);
        let reason = e.reason.as_ref().expect("a reason");
        assert_eq!(reason.signal, "joint_reconstruction");
        // Which member carries the largest error is the model's call (the core test checks
        // it on its own stream); the reason names one of the group.
        assert!(
            reason
                .text
                .contains(&format!("largest error: {} ", e.series)),
            "{} names another member than {}",
            reason.text,
            e.series
        );
    }
    // Each names the group's members, and each member's events (the API's `series=`) hold
    // every group event, whichever member led it.
    for e in &group {
        let mut members = e.members.clone();
        members.sort();
        assert_eq!(members, ["cpu", "latency", "memory"], "{e:?}");
    }
    for n in names {
        let of = snap.events_of(n).expect("a known series");
        assert_eq!(
            of.iter().filter(|e| e.group.is_some()).count(),
            group.len(),
            "{n}"
        );
    }
    let alone = snap.events_of("alone").expect("a known series");
    assert!(
        alone
            .iter()
            .all(|e| e.group.is_none() && e.series == "alone")
    );
    assert!(snap.events_of("nope").is_none());
    // The group's latest event (running or closed) is every member's.
    let latest = group.iter().map(|e| e.start).max().expect("an event");
    let shown: Vec<_> = names
        .iter()
        .map(|n| {
            let ev = snap.get(n).and_then(|v| v.event.clone()).expect("an event");
            (ev.start, ev.end, ev.group.clone())
        })
        .collect();
    assert!(shown.iter().all(|s| *s == shown[0]), "{shown:?}");
    assert!(shown[0].0 >= latest && shown[0].2.as_deref() == Some("db-1"));
    // Every member carries the group's score (the first two one poll behind the last); the
    // series without an instance is scored by a model of its own.
    let scores = |id: &str| -> Vec<f64> {
        let v = snap.get(id).expect("series");
        v.points.iter().map(|p| p.score).collect()
    };
    let (cpu, latency, alone) = (scores("cpu"), scores("latency"), scores("alone"));
    assert_eq!(cpu[1..], latency[..latency.len() - 1]);
    assert_ne!(cpu, alone);
    assert!(snap.get("cpu").is_some_and(|v| !v.warming_up));

    // After a restart, the kept group events are back as every member's latest event.
    core.close_all();
    let kept = core.snapshot().events.to_vec();
    assert_eq!(kept.len(), events.len());
    let mut restarted = Core::new(CoreSettings {
        source: SourceKind::Host,
        detector: DetectorKind::LstmAe,
        detector_cfg: small_group_model(),
        threshold: 0.5,
        history: 1000,
        store: None,
        events_keep: 100,
    });
    restarted.restore_events(kept);
    for name in names {
        let p = Point {
            timestamp: ts(700),
            value: 0.0,
        };
        restarted.ingest(info(name, Some("db-1")), &[p], false);
    }
    let after = restarted.snapshot();
    let latest_start = group.iter().map(|e| e.start).max();
    for name in names {
        let ev = after.get(name).and_then(|v| v.event.clone());
        assert_eq!(ev.as_ref().map(|e| e.start), latest_start, "{name}");
        assert_eq!(ev.and_then(|e| e.group.clone()).as_deref(), Some("db-1"));
    }
}

mod engine_loop {
    use super::*;
    use std::time::{Duration, Instant};

    use pulsewatch_core::store::ModelStore;
    use pulsewatch_engine::engine::state::{Snapshot, TrainState};
    use pulsewatch_engine::engine::{self, Control, EngineSettings, SourceSpec};
    use pulsewatch_engine::sources::replay::ReplayControl;
    use pulsewatch_engine::sources::source::SourceEvent;
    use tokio::sync::mpsc;

    const NAMES: [&str; 3] = ["cpu", "memory", "latency"];

    fn settings(store: &ModelStore) -> EngineSettings {
        EngineSettings {
            core: CoreSettings {
                source: SourceKind::Host,
                detector: DetectorKind::LstmAe,
                detector_cfg: small_group_model(),
                threshold: 0.5,
                history: 1000,
                store: Some(store.clone()),
                events_keep: 100,
            },
            forecast: None,
            retrain_interval: Duration::ZERO,
            replay: ReplayControl {
                paused: false,
                speed: 1.0,
            },
            events_file: None,
            auto_choices_file: None,
        }
    }

    /// Rows `range` of the group, one event per member per row, as the host source polls.
    async fn send_rows(tx: &mpsc::Sender<SourceEvent>, range: std::ops::Range<usize>) {
        let all = rows(range.end);
        for t in range {
            for (name, &value) in NAMES.iter().zip(&all[t]) {
                let points = vec![Point {
                    timestamp: ts(t),
                    value,
                }];
                let ev = SourceEvent::Points {
                    info: info(name, Some("db-1")),
                    points,
                    restart: false,
                };
                tx.send(ev).await.expect("engine alive");
            }
        }
    }

    /// Waits for a snapshot where `f` holds for every member.
    async fn members(
        rx: &mut tokio::sync::watch::Receiver<std::sync::Arc<Snapshot>>,
        what: &str,
        f: impl Fn(&pulsewatch_engine::engine::state::SeriesView) -> bool,
    ) -> std::sync::Arc<Snapshot> {
        let t0 = Instant::now();
        tokio::time::timeout(
            Duration::from_secs(60),
            rx.wait_for(|s| NAMES.iter().all(|n| s.get(n).is_some_and(&f))),
        )
        .await
        .unwrap_or_else(|_| panic!("timed out after {:?} waiting for {what}", t0.elapsed()))
        .expect("engine alive")
        .clone()
    }

    /// `r` on one member refits the group's model in the background: every member shows the
    /// retrain, the model is saved under the group's key, a cancel stops the next one with the
    /// previous model in use, and after a restart the group scores with the saved model long
    /// before it could have trained one of its own.
    #[test]
    fn a_group_retrains_from_one_member_saves_its_model_and_restores_it_after_a_restart() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = ModelStore::new(tmp.path());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (tx, rx) = mpsc::channel(64);
            let eng = engine::spawn(settings(&store), SourceSpec::Channel(rx)).expect("engine");
            let mut snaps = eng.subscribe();
            send_rows(&tx, 0..450).await;
            members(&mut snaps, "450 rows", |v| v.ingested == 450).await;
            // The automatic fit on the first 400 rows was saved under the group's key.
            let path = store.path("lstm-ae", "instance=db-1");
            let (outcome, _) = store.load(
                "lstm-ae",
                &DetectorKind::LstmAe.params(&settings(&store).core.detector_cfg),
                "instance=db-1",
            );
            assert!(
                matches!(outcome, pulsewatch_core::store::LoadOutcome::Loaded(_)),
                "the group's first fit was not saved: {outcome:?}"
            );
            assert!(eng.send(Control::Retrain {
                series: Some("memory".into()),
            }));
            let snap = members(&mut snaps, "the group's retrain", |v| {
                matches!(v.training, Some(TrainState::Finished { .. }))
            })
            .await;
            for n in NAMES {
                let v = snap.get(n).expect("member");
                assert!(
                    matches!(
                        &v.training,
                        Some(TrainState::Finished {
                            save_error: None,
                            ..
                        })
                    ),
                    "{n}: {:?}",
                    v.training
                );
            }
            let saved = std::fs::metadata(&path).expect("the group's model file");
            // Scoring goes on with the new model, from the live window.
            send_rows(&tx, 450..470).await;
            members(&mut snaps, "rows after the retrain", |v| v.ingested == 470).await;

            // A retrain cancelled at once ends cancelled on every member; the file stays.
            assert!(eng.send(Control::Retrain {
                series: Some("cpu".into()),
            }));
            assert!(eng.send(Control::CancelRetrain {
                series: Some("latency".into()),
            }));
            members(&mut snaps, "the cancelled retrain", |v| {
                v.training == Some(TrainState::Cancelled)
            })
            .await;
            let after = std::fs::metadata(&path).expect("model file");
            assert_eq!(saved.modified().ok(), after.modified().ok());
            eng.shutdown().await;

            // A restart: the group restores the saved model when it forms, so it is past its
            // warm-up (the calibration's 150 scores after a 20-row window) at row 200, where a
            // group training itself would still wait for its 400th row.
            let (tx, rx) = mpsc::channel(64);
            let eng = engine::spawn(settings(&store), SourceSpec::Channel(rx)).expect("engine");
            let mut snaps = eng.subscribe();
            send_rows(&tx, 0..200).await;
            let snap = members(&mut snaps, "200 rows after the restart", |v| {
                v.ingested == 200
            })
            .await;
            for n in NAMES {
                let v = snap.get(n).expect("member");
                assert!(
                    !v.warming_up,
                    "{n} still warming up: the model was not restored"
                );
            }
            eng.shutdown().await;

            // Without the saved model the same stream is still warming up at row 200.
            std::fs::remove_file(&path).expect("remove the model");
            let (tx, rx) = mpsc::channel(64);
            let eng = engine::spawn(settings(&store), SourceSpec::Channel(rx)).expect("engine");
            let mut snaps = eng.subscribe();
            send_rows(&tx, 0..200).await;
            let snap = members(&mut snaps, "200 rows, no model", |v| v.ingested == 200).await;
            assert!(
                NAMES
                    .iter()
                    .all(|n| snap.get(n).is_some_and(|v| v.warming_up))
            );
            eng.shutdown().await;
        });
    }
}
