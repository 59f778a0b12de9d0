//! Whole-app TUI tests: every tab rendered into ratatui's TestBackend from scripted engine state
//! and scripted keys, snapshot-tested with insta (tests/snapshots/); tiny sizes; NO_COLOR.
//!
//! The engine state is real: the built-in demo series scored by the real `pulse` detector and
//! forecast by the real MSTL model (fit times pinned so snapshots are stable).

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use pulsewatch::tui::app::{App, Effect, HoldoutView, SpikeView, TEST_POINTS, Tab, tail_points};
use pulsewatch::tui::theme::Theme;
use pulsewatch::tui::{self, ui};
use pulsewatch_core::config::Config;
use pulsewatch_core::detect::Point;
use pulsewatch_core::domain::Expectation;
use pulsewatch_core::forecast::SeriesForecast;
use pulsewatch_core::forecast::{ForecastSettings, ModelKind};
use pulsewatch_core::nab::demo;
use pulsewatch_engine::AnalysisRequest;
use pulsewatch_engine::engine::Control;
use pulsewatch_engine::engine::core::Core;
use pulsewatch_engine::engine::state::{Snapshot, TrainState};
use pulsewatch_engine::export::pushgateway::PushStatus;
use pulsewatch_engine::sources::replay;
use pulsewatch_engine::sources::source::{SourceKind, SourceStatus};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;

/// The engine's core as `cfg` sets it up for `source`.
fn core_for(cfg: &Config, source: SourceKind) -> Core {
    Core::new(pulsewatch_engine::services::core_settings(cfg, source).expect("settings"))
}

/// The demo series, the first 1,500 points each, scored and forecast.
fn snapshot() -> Arc<Snapshot> {
    let cfg = Config::default();
    let mut core = core_for(&cfg, SourceKind::Nab);
    let fset = ForecastSettings::from_config(&cfg.forecast).expect("forecast settings");
    let mut forecasts = Vec::new();
    for s in demo::corpus() {
        let n = 1500;
        let pts: Vec<Point> = s.timestamps[..n]
            .iter()
            .zip(&s.values[..n])
            .map(|(&timestamp, &value)| Point { timestamp, value })
            .collect();
        core.ingest(replay::info(&s), &pts, false);
        let mut f = pulsewatch_core::forecast::model::forecast_series(
            &s.timestamps[..n],
            &s.values[..n],
            &fset,
            ModelKind::Auto,
        )
        .expect("forecast");
        f.fit_time = Duration::from_millis(12);
        let next = Expectation {
            timestamp: f.timestamps[0],
            point: f.point[0],
            lower: f.lower[0],
            upper: f.upper[0],
        };
        forecasts.push((
            s.key.clone(),
            SeriesForecast {
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
                next: Some(next),
            },
        ));
    }
    for (id, f) in forecasts {
        core.set_forecast(&id, Arc::new(f));
    }
    core.forecast_model = "auto".into();
    core.speed = 10.0;
    core.status = Some(SourceStatus {
        source: SourceKind::Nab,
        target: "demo".into(),
        healthy: true,
        message: "6 series at 10 points/s".into(),
        last_ok: 0,
        poll_seconds: None,
    });
    core.snapshot()
}

fn app_with(theme: Theme) -> App {
    let cfg = Config::default();
    let mut app = tui::new_app(&cfg, snapshot()).expect("app");
    app.theme = theme;
    app.set_push(Some(PushStatus {
        url: "http://127.0.0.1:9091/metrics/job/pulsewatch/source/nab".into(),
        ok: true,
        pushes: 12,
        ..PushStatus::default()
    }));
    app
}

fn app() -> App {
    app_with(Theme { color: true })
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn render(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    term.draw(|f| ui::draw(f, app)).expect("draw");
    term
}

#[test]
fn live_tab_80x24() {
    let app = app();
    insta::assert_snapshot!("live_80x24", render(&app, 80, 24).backend());
}

#[test]
fn live_tab_200x60() {
    let app = app();
    insta::assert_snapshot!("live_200x60", render(&app, 200, 60).backend());
}

#[test]
fn forecast_tab_after_scripted_keys() {
    let mut app = app();
    // Down twice, then the Forecast tab: the third series (memory_used_bytes).
    let mut effects = Vec::new();
    for k in ['j', 'j', '2'] {
        effects.extend(app.on_key(&key(k)));
    }
    assert_eq!(app.tab, Tab::Forecast);
    assert_eq!(
        app.current().map(|s| s.info.name.as_str()),
        Some("memory_used_bytes")
    );
    // Entering the tab asks for the held-out accuracy of that series, once.
    let asked: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Engine(Control::Analyse(AnalysisRequest::Holdout { series, model })) => {
                Some((series.clone(), *model))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        asked,
        vec![("demo/memory_used_bytes.csv".to_string(), ModelKind::Auto)]
    );
    let before = render(&app, 80, 24);
    assert!(
        before.backend().to_string().contains("held-out: computing"),
        "{}",
        before.backend()
    );
    app.set_holdout(HoldoutView {
        series: "demo/memory_used_bytes.csv".into(),
        model: ModelKind::Auto,
        result: Ok(pulsewatch_core::forecast::metrics::Accuracy {
            n: 288,
            mae: 1.0e7,
            mase: Some(1.25),
            smape: 0.5,
            coverage: 0.96,
            naive_mae: 8.0e6,
        }),
    });
    insta::assert_snapshot!("forecast_80x24", render(&app, 80, 24).backend());
    insta::assert_snapshot!("forecast_120x40", render(&app, 120, 40).backend());
    // auto says what it chose and why, in full at 80 columns too (the info block wraps).
    let text = render(&app, 80, 24).backend().to_string();
    assert!(text.contains("model auto: "), "{text}");
    assert!(text.contains("chosen by validation MAE snaive "), "{text}");
    assert!(
        text.contains("m switch model"),
        "the key line is kept: {text}"
    );
}

#[test]
fn keys_send_engine_commands() {
    let mut app = app();
    let engine = |effects: Vec<Effect>| -> Vec<Control> {
        effects.into_iter().map(|Effect::Engine(c)| c).collect()
    };
    assert_eq!(engine(app.on_key(&key('p'))), vec![Control::Pause]);
    assert_eq!(engine(app.on_key(&key('+'))), vec![Control::SetSpeed(20.0)]);
    assert_eq!(engine(app.on_key(&key('-'))), vec![Control::SetSpeed(5.0)]);
    assert_eq!(
        engine(app.on_key(&key('r'))),
        vec![Control::Retrain {
            series: Some("demo/cpu_busy.csv".into())
        }]
    );
    assert!(
        render(&app, 80, 24)
            .backend()
            .to_string()
            .contains("retraining cpu_busy (Esc cancels)")
    );
    assert_eq!(
        engine(app.on_key(&KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE))),
        vec![Control::CancelRetrain { series: None }]
    );
    // From auto, the last of the round, `m` starts it again.
    assert_eq!(
        engine(app.on_key(&key('m'))),
        vec![Control::SetForecastModel(ModelKind::Mstl)]
    );
    // Tab cycling and direct selection.
    app.on_key(&KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
    assert_eq!(app.tab, Tab::Forecast);
    app.on_key(&KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT));
    assert_eq!(app.tab, Tab::Live);
    app.on_key(&key('3'));
    assert_eq!(app.tab, Tab::Spikes);
    // Selection stays in range.
    for _ in 0..20 {
        app.on_key(&key('j'));
    }
    assert_eq!(app.selected, 5);
    app.on_key(&KeyEvent::new(KeyCode::PageUp, KeyModifiers::NONE));
    assert_eq!(app.selected, 0);
    app.on_key(&key('q'));
    assert!(app.quit);
    let mut app2 = self::app();
    app2.on_key(&KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(app2.quit, "Ctrl-C quits");
}

#[test]
fn retrain_progress_shows_in_the_header() {
    let app0 = app();
    let mut snap = (*app0.snap).clone();
    let mut first = (*snap.series[0]).clone();
    first.training = Some(TrainState::Running {
        done: 4,
        total: 10,
        loss: Some(0.1),
    });
    snap.series[0] = Arc::new(first);
    snap.version += 1;
    let mut app = app();
    app.set_snapshot(Arc::new(snap));
    let text = render(&app, 80, 24).backend().to_string();
    assert!(text.contains("training 40 %"), "{text}");
}

#[test]
fn unsaved_models_show_in_the_header() {
    let app0 = app();
    let mut snap = (*app0.snap).clone();
    for i in 0..2 {
        let mut s = (*snap.series[i]).clone();
        s.training = Some(TrainState::Finished {
            seconds: 0.5,
            save_error: Some("models/pulse/x.model: No space left on device".into()),
        });
        snap.series[i] = Arc::new(s);
    }
    snap.version += 1;
    let mut app = app();
    app.set_snapshot(Arc::new(snap));
    let text = render(&app, 200, 30).backend().to_string();
    assert!(text.contains("· 2 not saved"), "{text}");
}

#[test]
fn test_spikes_tab_shows_caught_and_missed() {
    let mut app = app();
    app.on_key(&key('3'));
    let effects = app.on_key(&key('i'));
    let (series, spec, at_back) = effects
        .into_iter()
        .find_map(|e| match e {
            Effect::Engine(Control::Analyse(AnalysisRequest::Spikes {
                series,
                spec,
                at_back,
            })) => Some((series, spec, at_back)),
            _ => None,
        })
        .expect("i asks the engine for a spike test");
    assert_eq!(series, "demo/cpu_busy.csv");
    assert_eq!(spec.count, 3);
    assert_eq!(at_back, None);
    // What the engine runs for it, on the series' newest points.
    let cfg = Config::default();
    let points = tail_points(app.current().expect("selected"), TEST_POINTS);
    assert_eq!(points.len(), 1500);
    let report = pulsewatch_engine::analysis::spike_test(
        &points,
        spec,
        at_back,
        pulsewatch_core::detect::DetectorKind::Pulse,
        &cfg.detector,
        cfg.detector.threshold,
    );
    assert_eq!(report.results.len(), 3);
    app.set_spikes(SpikeView { series, report });
    let text = render(&app, 80, 24).backend().to_string();
    assert!(text.contains("injected 3"), "{text}");
    insta::assert_snapshot!("spikes_80x24", text);
    // Clear.
    app.on_key(&key('c'));
    assert!(app.spikes.is_none());
}

#[test]
fn help_lists_every_binding() {
    let mut app = app();
    app.on_key(&key('?'));
    insta::assert_snapshot!("help_80x24", render(&app, 80, 24).backend());
    let text = render(&app, 120, 40).backend().to_string();
    for what in [
        "quit",
        "retrain selected series",
        "inject spikes at random",
        "switch forecast model",
    ] {
        assert!(text.contains(what), "{what}: {text}");
    }
    // Any key closes it.
    app.on_key(&key('x'));
    assert!(!app.help);
}

#[test]
fn degraded_services_show_in_the_header() {
    let mut app = app();
    app.set_push(Some(PushStatus {
        url: "http://127.0.0.1:9/metrics/job/pulsewatch/source/nab".into(),
        ok: false,
        error: "PUT …: connection failed".into(),
        failures: 3,
        ..PushStatus::default()
    }));
    let text = render(&app, 200, 30).backend().to_string();
    assert!(
        text.contains("push DEGRADED: PUT …: connection failed"),
        "{text}"
    );
    // The built-in default URL with nothing there is no fault: a neutral "none at".
    let absent = PushStatus {
        url: "http://127.0.0.1:9091/metrics/job/pulsewatch/source/nab".into(),
        ok: false,
        error: "PUT …: connection refused".into(),
        failures: 3,
        unconfigured: true,
        ..PushStatus::default()
    };
    app.set_push(Some(absent.clone()));
    let term = render(&app, 200, 30);
    let text = term.backend().to_string();
    assert!(
        text.contains("push: none at http://127.0.0.1:9091"),
        "{text}"
    );
    assert!(!text.contains("DEGRADED"), "{text}");
    let buf = term.backend().buffer();
    let (w, h) = (buf.area.width, buf.area.height);
    let found = (0..h).find_map(|y| {
        let row: Vec<&str> = (0..w).map(|x| buf[(x, y)].symbol()).collect();
        (0..w as usize)
            .find(|&x| row[x..].concat().starts_with("push: none"))
            .map(|x| (x as u16, y))
    });
    let cell = &buf[found.expect("\"push: none\" in the header")];
    assert_ne!(
        cell.fg,
        ratatui::style::Color::Red,
        "not in the error colour"
    );
    // Once it has worked, a failure is a fault again.
    app.set_push(Some(PushStatus {
        pushes: 4,
        ..absent
    }));
    let text = render(&app, 200, 30).backend().to_string();
    assert!(text.contains("push DEGRADED"), "{text}");
}

#[test]
fn no_panic_at_any_size() {
    let mut app = app();
    for tab in ['1', '2', '3', '?'] {
        app.on_key(&key(tab));
        for (w, h) in [
            (0, 0),
            (1, 1),
            (20, 5),
            (19, 6),
            (20, 6),
            (40, 10),
            (80, 24),
            (300, 100),
        ] {
            let term = render(&app, w, h);
            if (w, h) == (20, 5) {
                assert!(term.backend().to_string().contains("pulsewatch"));
            }
        }
        if tab == '?' {
            app.on_key(&key('x'));
        }
    }
    insta::assert_snapshot!("tiny_20x5", render(&app, 20, 5).backend());
}

#[test]
fn no_color_renders_without_colours() {
    let mono = app_with(Theme::from_config(
        pulsewatch_core::config::ThemeName::Default,
        true,
    ));
    let term = render(&mono, 120, 40);
    let buf = term.backend().buffer();
    for cell in buf.content() {
        assert_eq!(cell.fg, Color::Reset, "fg colour under NO_COLOR");
        assert_eq!(cell.bg, Color::Reset, "bg colour under NO_COLOR");
    }
    // The default theme does use colour.
    let term = render(&app(), 120, 40);
    assert!(
        term.backend()
            .buffer()
            .content()
            .iter()
            .any(|c| c.fg != Color::Reset)
    );
    // Same text either way.
    assert_eq!(
        term.backend().to_string(),
        render(&mono, 120, 40).backend().to_string()
    );
}

/// Twelve PromQL-like series (3 instances × 2 jobs × 2 queries) of one hour at 10 s, scored by
/// the real `pulse`; series 1, 6 and 8 get a spike (closed events), series 4 one on its last
/// point (a running event).
fn fleet_snapshot() -> Arc<Snapshot> {
    use pulsewatch_engine::sources::source::SeriesInfo;
    let cfg = Config::default();
    let mut core = core_for(&cfg, SourceKind::Prometheus);
    let mut k = 0;
    for query in ["load", "requests"] {
        for job in ["api", "node"] {
            for instance in ["host-a:9100", "host-b:9100", "nyc-1:9100"] {
                let id = format!("{query}{{instance={instance:?},job={job:?}}}");
                let n = 600;
                let pts: Vec<Point> = (0..n)
                    .map(|i| {
                        let base = 10.0 + 3.0 * (i as f64 / 40.0 + k as f64).sin();
                        let spike = match (k, i) {
                            (1 | 6 | 8, 400) => 60.0,
                            (4, 599) => 80.0,
                            _ => 0.0,
                        };
                        Point {
                            timestamp: 1_700_000_000 + i * 10,
                            value: base + spike,
                        }
                    })
                    .collect();
                core.ingest(
                    SeriesInfo {
                        id: id.clone(),
                        name: id,
                        category: query.into(),
                        source: SourceKind::Prometheus,
                        instance: None,
                    },
                    &pts,
                    false,
                );
                k += 1;
            }
        }
    }
    core.status = Some(SourceStatus {
        source: SourceKind::Prometheus,
        target: "http://127.0.0.1:9090".into(),
        healthy: true,
        message: "12 series".into(),
        last_ok: 0,
        poll_seconds: Some(0.02),
    });
    core.snapshot()
}

fn fleet_app() -> App {
    let cfg = Config::default();
    let mut app = tui::new_app(&cfg, fleet_snapshot()).expect("app");
    app.theme = Theme { color: false };
    app
}

fn press(app: &mut App, code: KeyCode) -> Vec<Effect> {
    app.on_key(&KeyEvent::new(code, KeyModifiers::NONE))
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        app.on_key(&key(c));
    }
}

fn names(app: &App) -> Vec<String> {
    app.rows
        .iter()
        .map(|&i| app.snap.series[i].info.name.clone())
        .collect()
}

#[test]
fn sort_cycles_from_name_to_score_to_last_hour() {
    let mut app = fleet_app();
    assert_eq!(app.rows, (0..12).collect::<Vec<_>>(), "name order first");
    app.on_key(&key('s'));
    let scores: Vec<f64> = app
        .rows
        .iter()
        .map(|&i| app.snap.series[i].last().map_or(0.0, |p| p.score))
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "highest score first: {scores:?}"
    );
    assert_eq!(
        names(&app)[0],
        "load{instance=\"host-b:9100\",job=\"node\"}"
    );
    assert!(scores[0] > 0.5, "{scores:?}");
    // The selection follows its series across a re-sort.
    app.on_key(&key('j'));
    let picked = app.current().expect("selection").info.id.clone();
    app.on_key(&key('s'));
    assert_eq!(app.current().expect("selection").info.id, picked);
    let recent: Vec<u32> = app
        .rows
        .iter()
        .map(|&i| app.snap.series[i].recent_anomalies)
        .collect();
    assert!(recent.windows(2).all(|w| w[0] >= w[1]), "{recent:?}");
    assert_eq!(recent.iter().filter(|&&r| r > 0).count(), 4, "{recent:?}");
    app.on_key(&key('s'));
    assert_eq!(app.rows, (0..12).collect::<Vec<_>>());
    let mut sorted = fleet_app();
    sorted.on_key(&key('s'));
    insta::assert_snapshot!("sorted_80x24", render(&sorted, 80, 24).backend());
    insta::assert_snapshot!("sorted_200x60", render(&sorted, 200, 60).backend());
}

#[test]
fn filter_by_substring_and_regex_and_a_bad_regex() {
    let mut app = fleet_app();
    app.on_key(&key('/'));
    typed(&mut app, "NYC");
    assert!(app.filter_editing);
    assert_eq!(app.rows.len(), 4, "{:?}", names(&app));
    assert!(names(&app).iter().all(|n| n.contains("nyc-1")));
    let text = render(&app, 80, 24).backend().to_string();
    assert!(
        text.contains("filter: NYC") && text.contains("4/12 series"),
        "{text}"
    );
    insta::assert_snapshot!("filtered_80x24", text);
    insta::assert_snapshot!("filtered_200x60", render(&app, 200, 60).backend());
    // Keys while typing go to the filter: `q` is a letter here, not quit.
    typed(&mut app, "q");
    assert!(!app.quit);
    assert!(app.rows.is_empty());
    press(&mut app, KeyCode::Backspace);
    press(&mut app, KeyCode::Enter);
    assert!(!app.filter_editing);
    assert_eq!(app.rows.len(), 4);
    // A regex over the labels.
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.rows.len(), 12, "Esc clears the filter");
    app.on_key(&key('/'));
    typed(&mut app, "~host-b.*job=\"api\"|^requests.*nyc");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.rows.len(), 4, "{:?}", names(&app));
    // A regex that does not compile filters nothing and says why.
    press(&mut app, KeyCode::Esc);
    app.on_key(&key('/'));
    typed(&mut app, "~(host");
    assert_eq!(app.rows.len(), 12);
    let text = render(&app, 200, 60).backend().to_string();
    assert!(text.contains("bad regex, filtering nothing"), "{text}");
}

#[test]
fn group_by_label_then_open_a_group() {
    let mut app = fleet_app();
    app.on_key(&key('g'));
    assert_eq!(app.group_by.as_deref(), Some("category"));
    assert_eq!(app.groups.len(), 2);
    app.on_key(&key('g'));
    assert_eq!(app.group_by.as_deref(), Some("instance"));
    let g: Vec<(String, usize, usize)> = app
        .groups
        .iter()
        .map(|g| (g.value.clone(), g.count, g.anomalous))
        .collect();
    assert_eq!(
        g,
        vec![
            ("host-a:9100".to_string(), 4, 1),
            ("host-b:9100".to_string(), 4, 2),
            ("nyc-1:9100".to_string(), 4, 1),
        ]
    );
    insta::assert_snapshot!("grouped_80x24", render(&app, 80, 24).backend());
    insta::assert_snapshot!("grouped_200x60", render(&app, 200, 60).backend());
    // Sorted by score, the group holding the running event comes first; Enter opens it.
    app.on_key(&key('s'));
    assert_eq!(app.groups[0].value, "host-b:9100");
    press(&mut app, KeyCode::PageUp);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.group_open.as_deref(), Some("host-b:9100"));
    assert_eq!(app.rows.len(), 4);
    assert!(names(&app).iter().all(|n| n.contains("host-b")));
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.group_open, None);
    assert_eq!(app.groups.len(), 3);
    // g past the last label ungroups.
    for _ in 0..2 {
        app.on_key(&key('g'));
    }
    assert_eq!(app.group_by, None);
    assert_eq!(app.rows.len(), 12);
}

#[test]
fn events_view_lists_newest_first_and_enter_opens_the_chart() {
    let mut app = fleet_app();
    app.on_key(&key('4'));
    assert_eq!(app.tab, Tab::Events);
    // The four injected incidents (one still running).
    assert_eq!(app.events.len(), 4, "{:?}", app.events);
    assert!(app.events[0].open, "the running event is newest");
    assert!(app.events.windows(2).all(|w| w[0].end >= w[1].end));
    for e in &app.events {
        let r = e.reason.as_ref().expect("pulse gives a reason");
        assert!(
            ["level", "step", "level_shift"].contains(&r.signal.as_str()),
            "{r:?}"
        );
        assert!(r.text.contains("above its recent range"), "{}", r.text);
    }
    insta::assert_snapshot!("events_80x24", render(&app, 80, 24).backend());
    insta::assert_snapshot!("events_200x60", render(&app, 200, 60).backend());
    // The filter applies to events too.
    app.on_key(&key('/'));
    typed(&mut app, "host-a");
    press(&mut app, KeyCode::Enter);
    // host-a's injected incident.
    assert_eq!(app.events.len(), 1, "{:?}", app.events);
    assert!(app.events.iter().all(|e| e.series.contains("host-a")));
    let e = app.events[0].clone();
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.tab, Tab::Live);
    assert_eq!(
        app.current().map(|s| s.info.id.clone()),
        Some(e.series.clone())
    );
    let text = render(&app, 200, 60).backend().to_string();
    assert!(
        text.contains(&format!("event {}", ui::fmt_time(e.peak_timestamp))),
        "{text}"
    );
    insta::assert_snapshot!("event_chart_200x60", text);
    press(&mut app, KeyCode::Esc);
    assert!(app.focus.is_none());
}

/// A disk filling at 0.06 a day from 0.5, four days of 5-minute points, with a threshold at 0.9.
#[test]
fn forecast_tab_shows_time_to_threshold_and_the_long_view() {
    use pulsewatch_core::config::ThresholdConfig;
    let mut cfg = Config::default();
    cfg.forecast.model = ModelKind::Theta;
    cfg.forecast.thresholds.push(ThresholdConfig {
        series: "disk/*".into(),
        above: Some(0.9),
        below: None,
    });
    let t0 = 1_400_000_400;
    let n = 4 * 288;
    let s = pulsewatch_core::nab::Series {
        key: "disk/used_ratio.csv".into(),
        category: "disk".into(),
        name: "used_ratio".into(),
        timestamps: (0..n).map(|i| t0 + i as i64 * 300).collect(),
        values: (0..n)
            .map(|i| 0.5 + 0.06 * i as f64 / 288.0 + 0.002 * ((i * 7919) % 13) as f64 / 13.0)
            .collect(),
    };
    let pts: Vec<Point> = s
        .timestamps
        .iter()
        .zip(&s.values)
        .map(|(&timestamp, &value)| Point { timestamp, value })
        .collect();
    let mut core = core_for(&cfg, SourceKind::Nab);
    core.ingest(replay::info(&s), &pts, false);
    let fset = ForecastSettings::for_config(&cfg).expect("forecast settings");
    let fit = SeriesForecast::fit(&s.key, &pts, &fset);
    assert!(fit.capacity.is_some() && fit.long.is_some());
    core.set_forecast(&s.key, Arc::new(fit));
    let mut app = tui::new_app(&cfg, core.snapshot()).expect("app");
    app.on_key(&key('2'));
    let text = render(&app, 120, 30).backend().to_string();
    assert!(
        text.contains("capacity: crosses above 0.9 in about 2."),
        "{text}"
    );
    let last = *s.timestamps.last().expect("points");
    // The horizon view ends a day after the last point, the long view seven days after.
    assert!(text.contains(&ui::fmt_time(last + 86_400)), "{text}");
    app.on_key(&key('w'));
    assert!(app.long_view);
    let text = render(&app, 120, 30).backend().to_string();
    assert!(text.contains(&ui::fmt_time(last + 7 * 86_400)), "{text}");
    assert!(text.contains("w horizon view"), "{text}");
}

/// A multivariate group's event (kept in the events file, restored by the engine's core) names
/// the member with the largest error; the Events tab lists it under any member's filter, and
/// every member shows it as its latest event.
#[test]
fn a_group_event_passes_the_filter_of_any_member() {
    use pulsewatch_core::events::{AnomalyEvent, Flagged};
    use pulsewatch_engine::sources::source::SeriesInfo;
    let cfg = Config::default();
    let mut core = core_for(&cfg, SourceKind::Host);
    let info = |name: &str, instance: Option<&str>| SeriesInfo {
        id: format!("host/{name}"),
        name: name.into(),
        category: "host".into(),
        source: SourceKind::Host,
        instance: instance.map(str::to_string),
    };
    let t0 = 1_700_000_000;
    let flagged = Flagged {
        timestamp: t0 + 300,
        value: 97.0,
        score: 0.9,
    };
    let mut e = AnomalyEvent::begin(
        &info("cpu", Some("db-1")),
        "lstm-ae",
        flagged,
        None,
        None,
        t0,
    );
    e.group = Some("db-1".into());
    e.members = vec!["host/cpu".into(), "host/memory".into()];
    e.open = false;
    core.restore_events(vec![Arc::new(e)]);
    for (name, instance) in [
        ("cpu", Some("db-1")),
        ("memory", Some("db-1")),
        ("disk", None),
    ] {
        let pts: Vec<Point> = (0..20)
            .map(|i| Point {
                timestamp: t0 + 600 + i * 10,
                value: 50.0,
            })
            .collect();
        core.ingest(info(name, instance), &pts, false);
    }
    let snap = core.snapshot();
    for id in ["host/cpu", "host/memory"] {
        let ev = snap
            .get(id)
            .and_then(|v| v.event.clone())
            .expect("restored");
        assert_eq!(ev.group.as_deref(), Some("db-1"), "{id}");
    }
    assert!(snap.get("host/disk").is_some_and(|v| v.event.is_none()));
    let mut app = tui::new_app(&cfg, snap).expect("app");
    app.theme = Theme { color: false };
    app.on_key(&key('4'));
    assert_eq!(app.events.len(), 1);
    let text = render(&app, 120, 30).backend().to_string();
    assert!(text.contains("db-1: cpu"), "{text}");
    for (filter, shown) in [("memory", 1), ("cpu", 1), ("disk", 0)] {
        app.on_key(&key('/'));
        typed(&mut app, filter);
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.events.len(), shown, "filter {filter}: {:?}", app.events);
        app.on_key(&key('/'));
        for _ in filter.chars() {
            press(&mut app, KeyCode::Backspace);
        }
        press(&mut app, KeyCode::Enter);
    }
}

/// The Forecast tab's held-out accuracy is asked for again once the series has grown by a
/// quarter: a replay's early "too short" does not stay on screen for the rest of the run.
#[test]
fn held_out_accuracy_is_asked_again_once_the_series_has_grown() {
    let cfg = Config::default();
    let mut core = core_for(&cfg, SourceKind::Nab);
    let s = demo::corpus().into_iter().next().expect("a demo series");
    let points = |range: std::ops::Range<usize>| -> Vec<Point> {
        range
            .map(|i| Point {
                timestamp: s.timestamps[i],
                value: s.values[i],
            })
            .collect()
    };
    core.ingest(replay::info(&s), &points(0..400), false);
    core.forecast_model = "auto".into();
    let mut app = tui::new_app(&cfg, core.snapshot()).expect("app");
    let asks = |effects: Vec<Effect>| {
        effects
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Effect::Engine(Control::Analyse(AnalysisRequest::Holdout { .. }))
                )
            })
            .count()
    };
    assert_eq!(asks(app.on_key(&key('2'))), 1);
    app.set_holdout(HoldoutView {
        series: s.key.clone(),
        model: ModelKind::Auto,
        result: Err("series too short: the series spans less than the 86400s horizon".into()),
    });
    // 400 → 480 points: under a quarter more, the result stands.
    core.ingest(replay::info(&s), &points(400..480), false);
    assert_eq!(asks(app.set_snapshot(core.snapshot())), 0);
    // 500 points: asked again, once; the old result stays on screen until the new one.
    core.ingest(replay::info(&s), &points(480..500), false);
    assert_eq!(asks(app.set_snapshot(core.snapshot())), 1);
    assert_eq!(asks(app.set_snapshot(core.snapshot())), 0);
    let text = render(&app, 120, 40).backend().to_string();
    assert!(text.contains("series too short"), "{text}");
}
