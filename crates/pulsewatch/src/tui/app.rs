//! The TUI's state and its reaction to keys. Pure: keys go in, [`Effect`]s come out, and the
//! event loop ([`super::run`]) carries them out, so whole-app tests can script keys and engine
//! snapshots without a terminal.

use std::sync::Arc;

use crossterm::event::KeyEvent;

use super::keys::{Action, KeyMap};
use super::theme::Theme;
use pulsewatch_core::config::MarkerName;
use pulsewatch_core::domain::ModelKind;
use pulsewatch_core::domain::Point;
use pulsewatch_engine::analysis::{
    AnalysisRequest, HoldoutOutcome, MIN_HOLDOUT_POINTS, MIN_SPIKE_POINTS, SpikeOutcome, SpikeSpec,
};
use pulsewatch_engine::engine::Control;
use pulsewatch_engine::engine::state::{SeriesView, Snapshot, TrainState};
use pulsewatch_engine::export::pushgateway::PushStatus;

/// The three tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Live,
    Forecast,
    Spikes,
}

impl Tab {
    pub const ALL: [Tab; 3] = [Tab::Live, Tab::Forecast, Tab::Spikes];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Live => "Live",
            Tab::Forecast => "Forecast",
            Tab::Spikes => "Test spikes",
        }
    }

    pub fn index(self) -> usize {
        match self {
            Tab::Live => 0,
            Tab::Forecast => 1,
            Tab::Spikes => 2,
        }
    }

    fn next(self) -> Tab {
        Tab::ALL[(self.index() + 1) % 3]
    }

    fn prev(self) -> Tab {
        Tab::ALL[(self.index() + 2) % 3]
    }
}

/// Something the event loop must do for the app: a command for the engine (analysis jobs
/// included: their results come back as engine events).
#[derive(Debug, Clone)]
pub enum Effect {
    Engine(Control),
}

/// A finished spike test, as the engine reports it.
pub type SpikeView = SpikeOutcome;
/// Held-out accuracy of one series and model, as the engine reports it.
pub type HoldoutView = HoldoutOutcome;

pub use pulsewatch_engine::analysis::{SPIKE_WINDOW, TEST_POINTS};

/// Replay speed limits of the faster/slower keys (points per second per series), the factor of
/// one press, and the speed assumed before the engine reports one.
pub const MAX_SPEED: f64 = 100_000.0;
pub const MIN_SPEED: f64 = 0.125;
pub const SPEED_STEP: f64 = 2.0;
const SPEED_UNKNOWN: f64 = 10.0;
/// Series moved by page up / page down.
pub const PAGE_ROWS: usize = 10;
/// Where the spike cursor starts, in points back from the newest point.
pub const CURSOR_START: usize = 50;

pub struct App {
    pub tab: Tab,
    pub selected: usize,
    pub help: bool,
    pub quit: bool,
    pub snap: Arc<Snapshot>,
    pub push: Option<PushStatus>,
    pub theme: Theme,
    pub keys: KeyMap,
    pub marker: ratatui::symbols::Marker,
    /// Feedback of the last action, shown in the footer.
    pub message: Option<String>,
    /// A notice shown in the header (e.g. built-in demo data).
    pub notice: Option<String>,
    pub spike_count: usize,
    pub spike_magnitude: f64,
    /// Spike cursor, as points back from the newest point.
    pub cursor_back: usize,
    spike_seed: u64,
    pub spikes: Option<SpikeView>,
    pub spike_running: bool,
    pub holdout: Option<HoldoutView>,
    holdout_pending: Option<(String, ModelKind)>,
    /// Set when the screen must be redrawn.
    pub dirty: bool,
}

/// The marker from `[tui] marker`.
pub fn marker(name: MarkerName) -> ratatui::symbols::Marker {
    use ratatui::symbols::Marker;
    match name {
        MarkerName::Braille => Marker::Braille,
        MarkerName::Dot => Marker::Dot,
        MarkerName::Block => Marker::Block,
        MarkerName::Bar => Marker::Bar,
    }
}

impl App {
    pub fn new(
        snap: Arc<Snapshot>,
        theme: Theme,
        keys: KeyMap,
        marker: ratatui::symbols::Marker,
    ) -> Self {
        App {
            tab: Tab::Live,
            selected: 0,
            help: false,
            quit: false,
            snap,
            push: None,
            theme,
            keys,
            marker,
            message: None,
            notice: None,
            spike_count: 3,
            spike_magnitude: 6.0,
            cursor_back: CURSOR_START,
            spike_seed: 1,
            spikes: None,
            spike_running: false,
            holdout: None,
            holdout_pending: None,
            dirty: true,
        }
    }

    /// The selected series, if any.
    pub fn current(&self) -> Option<&SeriesView> {
        self.snap.series.get(self.selected).map(Arc::as_ref)
    }

    /// A new engine snapshot; returns effects it triggers (held-out evaluation of a newly
    /// forecast series on the Forecast tab).
    pub fn set_snapshot(&mut self, snap: Arc<Snapshot>) -> Vec<Effect> {
        if snap.version != self.snap.version {
            self.snap = snap;
            self.dirty = true;
        }
        if self.selected >= self.snap.series.len() {
            self.selected = self.snap.series.len().saturating_sub(1);
        }
        self.holdout_effect().into_iter().collect()
    }

    pub fn set_push(&mut self, p: Option<PushStatus>) {
        if p != self.push {
            self.push = p;
            self.dirty = true;
        }
    }

    pub fn set_spikes(&mut self, v: SpikeView) {
        self.spike_running = false;
        let caught = v.report.results.iter().filter(|r| r.caught).count();
        self.message = Some(format!(
            "spike test on {}: {caught} of {} caught, {} false alarm(s)",
            v.series,
            v.report.results.len(),
            v.report.false_alarms
        ));
        self.spikes = Some(v);
        self.dirty = true;
    }

    /// The engine refused an analysis job (too little history, unknown series).
    pub fn refused(&mut self, reason: String) {
        self.spike_running = false;
        self.holdout_pending = None;
        self.message = Some(reason);
        self.dirty = true;
    }

    pub fn set_holdout(&mut self, h: HoldoutView) {
        if self
            .holdout_pending
            .as_ref()
            .is_some_and(|(s, m)| *s == h.series && *m == h.model)
        {
            self.holdout_pending = None;
        }
        self.holdout = Some(h);
        self.dirty = true;
    }

    fn model(&self) -> Option<ModelKind> {
        self.snap.forecast_model.parse().ok()
    }

    /// On the Forecast tab, asks for the held-out accuracy of the selected series once per
    /// (series, model).
    fn holdout_effect(&mut self) -> Option<Effect> {
        if self.tab != Tab::Forecast {
            return None;
        }
        let model = self.model()?;
        let s = self.current()?;
        let id = s.info.id.clone();
        let have = self
            .holdout
            .as_ref()
            .is_some_and(|h| h.series == id && h.model == model);
        let pending = self
            .holdout_pending
            .as_ref()
            .is_some_and(|(p, m)| *p == id && *m == model);
        if have || pending || s.points.len() < MIN_HOLDOUT_POINTS {
            return None;
        }
        self.holdout_pending = Some((id.clone(), model));
        Some(Effect::Engine(Control::Analyse(AnalysisRequest::Holdout {
            series: id,
            model,
        })))
    }

    fn select(&mut self, to: isize) {
        let n = self.snap.series.len();
        if n == 0 {
            return;
        }
        let to = to.clamp(0, n as isize - 1) as usize;
        if to != self.selected {
            self.selected = to;
            self.spikes = None;
        }
    }

    fn spike_request(&mut self, at_cursor: bool) -> Option<Effect> {
        let s = self.current()?;
        let have = s.points.len().min(TEST_POINTS);
        if have < MIN_SPIKE_POINTS {
            self.message = Some(format!(
                "{} has {have} points; the spike test needs {MIN_SPIKE_POINTS}",
                s.info.name,
            ));
            return None;
        }
        let at_back = at_cursor.then_some(self.cursor_back);
        let series = s.info.id.clone();
        self.spike_seed = self.spike_seed.wrapping_add(1);
        self.spike_running = true;
        self.message = Some(format!(
            "running the detector over a spiked copy of {series}"
        ));
        Some(Effect::Engine(Control::Analyse(AnalysisRequest::Spikes {
            series,
            spec: SpikeSpec {
                count: if at_cursor { 1 } else { self.spike_count },
                magnitude: self.spike_magnitude,
                seed: self.spike_seed,
                at: None,
                window: SPIKE_WINDOW,
            },
            at_back,
        })))
    }

    /// Reacts to a key.
    pub fn on_key(&mut self, key: &KeyEvent) -> Vec<Effect> {
        self.dirty = true;
        let action = self.keys.action(key);
        if self.help && action != Some(Action::Quit) {
            self.help = false;
            return Vec::new();
        }
        let Some(action) = action else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let page = PAGE_ROWS as isize;
        match action {
            Action::Quit => self.quit = true,
            Action::Help => self.help = true,
            Action::NextTab => self.tab = self.tab.next(),
            Action::PrevTab => self.tab = self.tab.prev(),
            Action::Live => self.tab = Tab::Live,
            Action::Forecast => self.tab = Tab::Forecast,
            Action::Spikes => self.tab = Tab::Spikes,
            Action::Up => self.select(self.selected as isize - 1),
            Action::Down => self.select(self.selected as isize + 1),
            Action::PageUp => self.select(self.selected as isize - page),
            Action::PageDown => self.select(self.selected as isize + page),
            Action::Left => {
                let max = self
                    .current()
                    .map_or(0, |s| s.points.len().min(TEST_POINTS).saturating_sub(1));
                self.cursor_back = (self.cursor_back + 1).min(max);
            }
            Action::Right => self.cursor_back = self.cursor_back.saturating_sub(1),
            Action::Retrain => {
                if let Some(s) = self.current() {
                    let id = s.info.id.clone();
                    self.message = Some(format!("retraining {} (Esc cancels)", s.info.name));
                    self.holdout = None;
                    out.push(Effect::Engine(Control::Retrain { series: Some(id) }));
                }
            }
            Action::RetrainAll => {
                self.message = Some("retraining every series (Esc cancels)".into());
                self.holdout = None;
                out.push(Effect::Engine(Control::Retrain { series: None }));
            }
            Action::Cancel => {
                self.message = Some("retrains cancelled".into());
                out.push(Effect::Engine(Control::CancelRetrain { series: None }));
            }
            Action::Pause => {
                let paused = !self.snap.paused;
                self.message = Some(if paused { "paused" } else { "resumed" }.into());
                out.push(Effect::Engine(if paused {
                    Control::Pause
                } else {
                    Control::Resume
                }));
            }
            Action::Faster | Action::Slower => {
                let cur = if self.snap.speed > 0.0 {
                    self.snap.speed
                } else {
                    SPEED_UNKNOWN
                };
                let speed = if action == Action::Faster {
                    (cur * SPEED_STEP).min(MAX_SPEED)
                } else {
                    (cur / SPEED_STEP).max(MIN_SPEED)
                };
                self.message = Some(format!("speed {speed} points/s"));
                out.push(Effect::Engine(Control::SetSpeed(speed)));
            }
            Action::Model => {
                let next = match self.model() {
                    Some(ModelKind::Mstl) => ModelKind::Ets,
                    Some(ModelKind::Ets) => ModelKind::Prophet,
                    _ => ModelKind::Mstl,
                };
                self.message = Some(format!("forecast model: {} (refitting)", next.name()));
                self.holdout = None;
                out.push(Effect::Engine(Control::SetForecastModel(next)));
            }
            Action::Inject => out.extend(self.spike_request(false)),
            Action::InjectAtCursor => out.extend(self.spike_request(true)),
            Action::Clear => {
                self.spikes = None;
                self.message = Some("spikes cleared".into());
            }
        }
        if matches!(action, Action::Inject | Action::InjectAtCursor) && self.tab != Tab::Spikes {
            self.tab = Tab::Spikes;
        }
        out.extend(self.holdout_effect());
        out
    }

    /// A one-word state of the detectors: learning, ready, training n %; and how many retrained
    /// models could not be saved (read-only or full model directory).
    pub fn model_state(&self) -> String {
        let unsaved = self
            .snap
            .series
            .iter()
            .filter(|s| {
                matches!(
                    &s.training,
                    Some(TrainState::Finished {
                        save_error: Some(_),
                        ..
                    })
                )
            })
            .count();
        let state = self.detector_state();
        if unsaved > 0 {
            format!("{state} · {unsaved} not saved")
        } else {
            state
        }
    }

    fn detector_state(&self) -> String {
        let mut training: Option<(usize, usize)> = None;
        let mut learning = 0;
        for s in &self.snap.series {
            if let Some(TrainState::Running { done, total, .. }) = &s.training {
                let t = training.get_or_insert((0, 0));
                t.0 += done;
                t.1 += total.max(&1);
            }
            if s.fitted == Some(false) || s.warming_up {
                learning += 1;
            }
        }
        if let Some((d, t)) = training {
            return format!("training {} %", (100 * d / t.max(1)).min(100));
        }
        if learning > 0 {
            format!("learning ({learning})")
        } else {
            "ready".into()
        }
    }
}

/// The newest `n` points of a series.
pub fn tail_points(s: &SeriesView, n: usize) -> Vec<Point> {
    s.points.tail(n).iter().map(|p| p.point()).collect()
}
