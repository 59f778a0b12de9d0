//! The terminal UI: a thin consumer of the engine.
//!
//! The engine, the pusher and the API run as background tasks ([`pulsewatch_engine::services::Services`]).
//! The UI loop selects over terminal events, a render tick (`[tui] tick`) and engine events (the
//! results of the spike tests and held-out evaluations it asked the engine for); it never awaits
//! network I/O and never runs analysis itself. Keys become [`app::Effect`]s: engine [`pulsewatch_engine::engine::Control`]s go back over the control
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

use self::app::{App, Effect};
use self::keys::KeyMap;
use self::theme::Theme;
use pulsewatch_core::config::Config;
use pulsewatch_core::nab::demo;
use pulsewatch_engine::EngineEvent;
use pulsewatch_engine::engine::SourceSpec;
use pulsewatch_engine::export::pushgateway;
use pulsewatch_engine::services::{self as headless, Services};
use pulsewatch_engine::sources::source::SourceKind;

/// `NO_COLOR` set to a non-empty value.
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Builds the app's static parts from `[tui]` (validated before the terminal is touched).
pub fn new_app(cfg: &Config, snap: Arc<pulsewatch_engine::engine::state::Snapshot>) -> Result<App> {
    let theme = Theme::from_config(cfg.tui.theme, no_color());
    let keys = KeyMap::from_config(&cfg.tui.keys).map_err(|e| eyre!(e))?;
    let marker = app::marker(cfg.tui.marker);
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
        Arc::new(pulsewatch_engine::engine::state::Snapshot::empty(
            kind,
            cfg.detector.name.name(),
            cfg.detector.threshold,
        )),
    )?;
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
    let res = event_loop(&mut terminal, &mut app, &services, cfg).await;
    if cfg.tui.mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    }
    ratatui::restore();
    if let Some(e) = services.stop(cfg.pushgateway.delete_on_exit).await {
        eprintln!("pulsewatch: {e}");
    }
    res
}

/// Carries out effects: engine commands (analysis jobs included) go over the control channel.
pub fn perform(effects: Vec<Effect>, services: &Services) {
    for e in effects {
        match e {
            Effect::Engine(c) => {
                services.engine.send(c);
            }
        }
    }
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    services: &Services,
    cfg: &Config,
) -> Result<()> {
    let mut terminal_events = EventStream::new();
    let snaps = services.engine.subscribe();
    let push = services.push.as_ref().map(|p| p.status.clone());
    let mut tick = tokio::time::interval(cfg.tui.tick.0.max(std::time::Duration::from_millis(20)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut events = services.engine.events();
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
            ev = terminal_events.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                    let effects = app.on_key(&k);
                    perform(effects, services);
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
                perform(effects, services);
            }
            ev = events.recv() => match ev {
                Ok(EngineEvent::Spikes(v)) => app.set_spikes(v),
                Ok(EngineEvent::Holdout(h)) => app.set_holdout(h),
                Ok(EngineEvent::Refused { reason, .. }) => app.refused(reason),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
            },
            _ = &mut signal => return Ok(()),
        }
    }
}
