//! TUI render cost: one frame at 200×60 with all 58 NAB series (history of 2,000 points each,
//! forecasts in place), per tab, into ratatui's TestBackend (goal ≤ 2 ms per frame); and one
//! Live frame with 10,000 synthetic PromQL-like series of 240 points, the cursor in the middle
//! (goal ≤ 5 ms).
//! Run with `cargo bench --bench tui`; `cargo bench --bench tui_idle` measures the real binary's
//! idle CPU and memory.

use testkit::corpus::bench_root as corpus_root;

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use pulsewatch::tui::app::{SortBy, Tab};
use pulsewatch::tui::{self, ui};
use pulsewatch_core::config::Config;
use pulsewatch_core::detect::Point;
use pulsewatch_core::forecast::ForecastSettings;
use pulsewatch_core::forecast::SeriesForecast;
use pulsewatch_core::forecast::model::forecast_series;
use pulsewatch_core::nab::Corpus;
use pulsewatch_engine::engine::core::Core;
use pulsewatch_engine::sources::replay;
use pulsewatch_engine::sources::source::SourceKind;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn bench(c: &mut Criterion) {
    let Some(root) = corpus_root() else {
        eprintln!("tui bench skipped: no NAB corpus at data/nab (run `pulsewatch fetch-nab`)");
        return;
    };
    let corpus = Corpus::load(&root).expect("corpus loads");
    let cfg = Config::default();
    let fset = ForecastSettings::from_config(&cfg.forecast).expect("forecast settings");
    let mut core = Core::new(
        pulsewatch_engine::services::core_settings(&cfg, SourceKind::Nab).expect("settings"),
    );
    for s in &corpus.series {
        let n = s.len().min(3000);
        let pts: Vec<Point> = (0..n)
            .map(|i| Point {
                timestamp: s.timestamps[i],
                value: s.values[i],
            })
            .collect();
        core.ingest(replay::info(s), &pts, false);
        if let Ok(f) = forecast_series(&s.timestamps[..n], &s.values[..n], &fset, fset.model) {
            core.set_forecast(
                &s.key,
                Arc::new(SeriesForecast {
                    series: s.key.clone(),
                    forecast: Some(Arc::new(f)),
                    long: None,
                    capacity: None,
                    error: None,
                    pending: false,
                    fits: 1,
                    history_points: n,
                    replay_time: Some(s.timestamps[n - 1]),
                    current: None,
                    next: None,
                }),
            );
        }
    }
    let snap = core.snapshot();
    let mut app = tui::new_app(&cfg, snap).expect("app");
    app.selected = 40;
    let mut term = Terminal::new(TestBackend::new(200, 60)).expect("terminal");
    let mut g = c.benchmark_group("tui_frame_200x60_58_series");
    for tab in Tab::ALL {
        app.tab = tab;
        g.bench_function(tab.title(), |b| {
            b.iter(|| {
                term.draw(|f| ui::draw(f, &app)).expect("draw");
            })
        });
    }
    g.finish();
}

fn bench_fleet(c: &mut Criterion) {
    use pulsewatch_core::domain::SeriesInfo;
    let cfg = Config::default();
    let mut core = Core::new(
        pulsewatch_engine::services::core_settings(&cfg, SourceKind::Prometheus).expect("settings"),
    );
    let n = 10_000;
    let t0 = 1_790_000_000;
    for i in 0..n {
        let pts: Vec<Point> = (0..240)
            .map(|k| {
                let t = t0 + k * 15;
                Point {
                    timestamp: t,
                    value: testkit::exporter::value(i, t),
                }
            })
            .collect();
        let id = format!(
            "synth{{group=\"{}\",series=\"{}\"}}",
            testkit::exporter::group_label(i),
            testkit::exporter::series_label(i)
        );
        let info = SeriesInfo {
            id: id.clone(),
            name: id,
            category: "synth".into(),
            source: SourceKind::Prometheus,
            instance: None,
        };
        core.ingest(info, &pts, false);
    }
    let snap = core.snapshot();
    let mut app = tui::new_app(&cfg, snap.clone()).expect("app");
    app.selected = n / 2;
    app.tab = Tab::ALL[0];
    let mut term = Terminal::new(TestBackend::new(200, 60)).expect("terminal");
    let mut g = c.benchmark_group("tui_frame_200x60_10000_series");
    g.bench_function(Tab::ALL[0].title(), |b| {
        b.iter(|| {
            term.draw(|f| ui::draw(f, &app)).expect("draw");
        })
    });
    // Triage views: the frame once the rows are built.
    app.sort = SortBy::Score;
    app.set_filter("~group=\"g0[0-4]".into());
    app.group_by = Some("group".into());
    app.set_filter(app.filter_text.clone());
    g.bench_function("Live grouped, regex-filtered", |b| {
        b.iter(|| {
            term.draw(|f| ui::draw(f, &app)).expect("draw");
        })
    });
    app.tab = Tab::Events;
    g.bench_function("Events", |b| {
        b.iter(|| {
            term.draw(|f| ui::draw(f, &app)).expect("draw");
        })
    });
    g.finish();

    // What a new engine snapshot costs the UI: filter, sort and group 10,000 series again.
    let mut g = c.benchmark_group("tui_rows_on_new_snapshot_10000_series");
    let mut version = snap.version;
    let cases: [(&str, SortBy, &str, Option<&str>); 5] = [
        ("name order", SortBy::Name, "", None),
        ("sorted by score", SortBy::Score, "", None),
        ("sorted by last hour", SortBy::Recent, "", None),
        ("substring filter", SortBy::Score, "s12", None),
        (
            "regex filter, grouped",
            SortBy::Score,
            "~group=\"g0[0-4]",
            Some("group"),
        ),
    ];
    for (name, sort, filter, group) in cases {
        let mut app = tui::new_app(&cfg, snap.clone()).expect("app");
        app.sort = sort;
        app.group_by = group.map(str::to_string);
        app.set_filter(filter.to_string());
        g.bench_function(name, |b| {
            b.iter(|| {
                version += 1;
                let mut next = (*snap).clone();
                next.version = version;
                app.set_snapshot(Arc::new(next));
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench, bench_fleet);
criterion_main!(benches);
