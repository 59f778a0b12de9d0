//! The terminal UI: a thin consumer of the engine.
//!
//! The engine, the pusher and the API run as background tasks ([`crate::headless::Services`]).
//! The UI loop selects over terminal events, a render tick (`[tui] tick`) and results of work it
//! handed to the blocking pool (spike tests, held-out forecast accuracy); it never awaits network
//! I/O. Keys become [`app::Effect`]s: engine [`crate::engine::Control`]s go back over the control
//! channel. The screen is redrawn only when something changed: a key, a resize, a new snapshot
//! seen at the tick, or a finished job.
//!
//! The terminal is restored on quit, on error, on panic (ratatui's panic hook) and on SIGINT /
//! SIGTERM (they end the loop like `q`).

pub mod app;
pub mod keys;
pub mod screenshot;
pub mod theme;
pub mod ui;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;

use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use self::app::{App, Effect, HoldoutView, SpikeView};
use self::keys::KeyMap;
use self::theme::Theme;
use crate::config::Config;
use crate::detect::spikes;
use crate::engine::SourceSpec;
use crate::export::pushgateway;
use crate::forecast::ForecastSettings;
use crate::headless::{self, Services};
use crate::ingest::demo;
use crate::ingest::source::SourceKind;

/// `NO_COLOR` set to a non-empty value.
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Builds the app's static parts from `[tui]` (validated before the terminal is touched).
pub fn new_app(cfg: &Config, snap: Arc<crate::engine::state::Snapshot>) -> Result<App> {
    let theme = Theme::from_config(&cfg.tui.theme, no_color()).map_err(|e| eyre!(e))?;
    let keys = KeyMap::from_config(&cfg.tui.keys).map_err(|e| eyre!(e))?;
    let marker = app::marker(&cfg.tui.marker).map_err(|e| eyre!(e))?;
    let mut app = App::new(snap, theme, keys, marker);
    app.spike_count = cfg.tui.spike_count.max(1);
    app.spike_magnitude = cfg.tui.spike_magnitude;
    Ok(app)
}

/// Runs the TUI until `q`, Ctrl-C, SIGINT or SIGTERM.
pub async fn run(cfg: &Config, kind: SourceKind, listen: Option<SocketAddr>) -> Result<()> {
    if !std::io::stdout().is_terminal() {
        bail!(
            "stdout is not a terminal, so the TUI cannot start; use `pulsewatch --once` for a \
             one-shot run (cron, CI) or `pulsewatch --headless` to keep monitoring without a UI"
        );
    }
    let mut app = new_app(
        cfg,
        Arc::new(crate::engine::state::Snapshot::empty(
            kind,
            &cfg.detector.name,
            cfg.detector.threshold,
        )),
    )?;
    let forecast = ForecastSettings::from_config(&cfg.forecast).map_err(|e| eyre!(e))?;
    let nab_missing = kind == SourceKind::Nab && !cfg.data.dir.join("data").is_dir();
    let services = if nab_missing {
        app.notice = Some("DEMO DATA (no NAB corpus: run `pulsewatch fetch-nab`)".into());
        let settings = headless::engine_settings(cfg, kind)?;
        let pusher = pushgateway::Pusher::new(&cfg.pushgateway, "demo").map_err(|e| eyre!(e))?;
        let spec = SourceSpec::Replay {
            series: Arc::new(demo::corpus()),
            target: "built-in demo data".into(),
            loop_at_end: true,
        };
        Services::start_with(cfg, settings, spec, pusher, listen).await?
    } else {
        Services::start(cfg, kind, listen).await?
    };
    let mut terminal = ratatui::try_init().wrap_err("cannot set up the terminal")?;
    if cfg.tui.mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
    }
    let res = event_loop(&mut terminal, &mut app, &services, cfg, forecast).await;
    if cfg.tui.mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    }
    ratatui::restore();
    if let Some(e) = services.stop(cfg.pushgateway.delete_on_exit).await {
        eprintln!("pulsewatch: {e}");
    }
    res
}

enum Done {
    Spikes(SpikeView),
    Holdout(HoldoutView),
}

/// Carries out effects: engine commands go over the control channel; spike tests and held-out
/// evaluations run on the blocking pool and report to `done`.
pub fn perform(
    effects: Vec<Effect>,
    services: &Services,
    cfg: &Config,
    forecast: &ForecastSettings,
    done: &mpsc::UnboundedSender<DoneMsg>,
) {
    for e in effects {
        match e {
            Effect::Engine(c) => {
                services.engine.send(c);
            }
            Effect::RunSpikes(req) => {
                let kind = services.engine.latest().detector.parse();
                let dcfg = cfg.detector.clone();
                let threshold = cfg.detector.threshold;
                let tx = done.clone();
                tokio::task::spawn_blocking(move || {
                    let Ok(kind) = kind else {
                        return;
                    };
                    let placed = spikes::place_spikes(&req.points, &req.spec);
                    let report = spikes::run_spike_test_isolated(
                        &req.points,
                        &placed,
                        kind,
                        &dcfg,
                        threshold,
                        req.spec.window,
                    );
                    let _ = tx.send(DoneMsg(Done::Spikes(SpikeView {
                        series: req.series,
                        report,
                    })));
                });
            }
            Effect::Holdout {
                series,
                points,
                model,
            } => {
                let mut settings = forecast.clone();
                settings.model = model;
                let tx = done.clone();
                tokio::task::spawn_blocking(move || {
                    let ts: Vec<i64> = points.iter().map(|p| p.timestamp).collect();
                    let vs: Vec<f64> = points.iter().map(|p| p.value).collect();
                    let result = crate::forecast::metrics::holdout(&ts, &vs, &settings, model)
                        .map(|h| h.accuracy)
                        .map_err(|e| e.to_string());
                    let _ = tx.send(DoneMsg(Done::Holdout(HoldoutView {
                        series,
                        model,
                        result,
                    })));
                });
            }
        }
    }
}

/// A finished background job for the UI.
pub struct DoneMsg(Done);

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    services: &Services,
    cfg: &Config,
    forecast: ForecastSettings,
) -> Result<()> {
    let mut events = EventStream::new();
    let snaps = services.engine.subscribe();
    let push = services.push.as_ref().map(|p| p.status.clone());
    let mut tick = tokio::time::interval(cfg.tui.tick.0.max(std::time::Duration::from_millis(20)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<DoneMsg>();
    let signal = headless::shutdown_signal();
    tokio::pin!(signal);
    // Debug builds only: a deliberate panic once data is on screen, for the test that a panic
    // restores the terminal and writes its report to the log.
    let debug_panic =
        cfg!(debug_assertions) && std::env::var_os("PULSEWATCH_DEBUG_PANIC").is_some();
    loop {
        if app.dirty {
            terminal.draw(|f| ui::draw(f, app))?;
            app.dirty = false;
            if debug_panic && !app.snap.series.is_empty() {
                panic!("PULSEWATCH_DEBUG_PANIC is set: deliberate panic in the UI loop");
            }
        }
        if app.quit {
            return Ok(());
        }
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                    let effects = app.on_key(&k);
                    perform(effects, services, cfg, &forecast, &done_tx);
                }
                Some(Ok(Event::Resize(..))) => app.dirty = true,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(eyre!("reading the terminal: {e}")),
                None => return Ok(()),
            },
            _ = tick.tick() => {
                let snap = snaps.borrow().clone();
                let effects = app.set_snapshot(snap);
                app.set_push(push.as_ref().map(|p| p.borrow().clone()));
                perform(effects, services, cfg, &forecast, &done_tx);
            }
            Some(DoneMsg(d)) = done_rx.recv() => match d {
                Done::Spikes(v) => app.set_spikes(v),
                Done::Holdout(h) => app.set_holdout(h),
            },
            _ = &mut signal => return Ok(()),
        }
    }
}
