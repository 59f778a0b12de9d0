//! One pipeline: `--once` is the engine in batch mode, so on the NAB corpus it must flag exactly
//! what the long-running engine flags when the same corpus is replayed through it to the end,
//! and list the same anomaly events.

use crate::support::corpus;
use crate::support::servers;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pulsewatch_core::config::Config;
use pulsewatch_core::domain::SourceKind;
use pulsewatch_core::nab::Corpus;
use pulsewatch_engine::engine::{self, SourceSpec};
use pulsewatch_engine::services;

#[test]
fn once_flags_what_the_long_running_engine_flags_on_every_series() {
    let Some(root) = corpus::nab_root() else {
        return;
    };
    // 1. The real binary: `--once --json`, export off.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = servers::pulsewatch(dir.path());
    cmd.args(["--once", "--json"])
        .env("PULSEWATCH_DATA_DIR", &root)
        .env("PULSEWATCH_PUSHGATEWAY_URL", "");
    let doc = servers::once_json(cmd, "NAB, export off");
    let once: BTreeMap<String, (u64, u64)> = doc["series"]
        .as_array()
        .expect("series array")
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap_or_default().to_string(),
                (
                    s["points"].as_u64().unwrap_or(0),
                    s["anomalies"].as_u64().unwrap_or(0),
                ),
            )
        })
        .collect();

    // 2. The long-running engine on a replay of the same corpus, fast, to the end.
    let corpus = Corpus::load(&root).expect("corpus");
    let total: u64 = corpus.series.iter().map(|s| s.len() as u64).sum();
    let mut cfg = Config::default();
    cfg.data.dir = root.clone();
    cfg.retrain.model_dir = dir.path().join("models");
    cfg.events.file = dir.path().join("live-events.jsonl");
    let mut settings = services::engine_settings(&cfg, SourceKind::Nab).expect("settings");
    settings.forecast = None;
    settings.replay.paused = false;
    settings.replay.speed = 20_000.0;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    type Event = (String, i64, i64, u64);
    let event_of = |e: &serde_json::Value| -> Event {
        (
            e["series"].as_str().unwrap_or_default().to_string(),
            e["start"].as_i64().unwrap_or(0),
            e["end"].as_i64().unwrap_or(0),
            e["points"].as_u64().unwrap_or(0),
        )
    };
    let mut once_events: Vec<Event> = doc["events"]
        .as_array()
        .expect("events array")
        .iter()
        .map(event_of)
        .collect();
    let (live, mut live_events): (BTreeMap<String, (u64, u64)>, Vec<Event>) = rt.block_on(async {
        let handle = engine::spawn(
            settings,
            SourceSpec::Replay {
                series: std::sync::Arc::new(corpus.series.clone()),
                target: root.display().to_string(),
                loop_at_end: false,
            },
        )
        .expect("engine");
        let t0 = Instant::now();
        let mut snaps = handle.subscribe();
        loop {
            let s = snaps.borrow_and_update().clone();
            if s.ingested() == total {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(300),
                "replay did not finish: {} of {total} points",
                s.ingested()
            );
            let _ = tokio::time::timeout(Duration::from_secs(1), snaps.changed()).await;
        }
        let s = handle.latest();
        handle.shutdown().await;
        let events = s
            .events_newest_first()
            .iter()
            .map(|e| event_of(&serde_json::to_value(e.as_ref()).expect("event JSON")))
            .collect();
        (
            s.series
                .iter()
                .map(|v| (v.info.id.clone(), (v.ingested, v.anomalies)))
                .collect(),
            events,
        )
    });

    assert_eq!(once.len(), 58, "--once saw every NAB series");
    assert_eq!(live.len(), once.len());
    let flagged: u64 = once.values().map(|c| c.1).sum();
    assert!(flagged > 0, "pulse flags something on NAB");
    for (id, counts) in &once {
        assert_eq!(
            live.get(id),
            Some(counts),
            "{id}: --once (points, anomalies) vs the long-running engine"
        );
    }
    // The same events: consecutive flags of a series, in both.
    once_events.sort();
    live_events.sort();
    assert!(!once_events.is_empty());
    let flagged_in_events: u64 = once_events.iter().map(|e| e.3).sum();
    assert_eq!(
        flagged_in_events, flagged,
        "every flagged point is in one event"
    );
    assert_eq!(once_events, live_events);
}

#[test]
fn every_detector_flags_a_small_share_of_nab_at_the_default_threshold() {
    let Some(root) = corpus::nab_root() else {
        return;
    };
    // One flag threshold (0.5) for every detector: each maps its score so that 0.5 is an
    // anomaly (NAB's own windowedGaussian score is 0.5 at the mean, which would flag every
    // point; live it is mapped, scored for NAB it is not).
    for det in ["pulse", "windowed-gaussian", "isolation-forest"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = servers::pulsewatch(dir.path());
        cmd.args(["--once", "--json", "--detector", det])
            .env("PULSEWATCH_DATA_DIR", &root)
            .env("PULSEWATCH_PUSHGATEWAY_URL", "");
        let doc = servers::once_json(cmd, det);
        let points = doc["totals"]["points"].as_u64().unwrap_or(0);
        let flagged = doc["totals"]["anomalies"].as_u64().unwrap_or(0);
        assert!(points > 300_000, "{det}: {points} points");
        // Measured 2026-12-08: pulse 0.2 %, windowed-gaussian 0.3 %, isolation-forest 0.3 %.
        let share = flagged as f64 / points as f64;
        assert!(
            flagged > 0 && share < 0.01,
            "{det}: {flagged} of {points} flagged"
        );
    }
}
