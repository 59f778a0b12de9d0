//! The TUI's state and its reaction to keys. Pure: keys go in, [`Effect`]s come out, and the
//! event loop ([`super::run`]) carries them out, so whole-app tests can script keys and engine
//! snapshots without a terminal.

use std::collections::HashMap;
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
use pulsewatch_engine::engine::state::{AnomalyEvent, SeriesView, Snapshot, TrainState};
use pulsewatch_engine::export::pushgateway::PushStatus;

/// The four tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Live,
    Forecast,
    Spikes,
    Events,
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Live, Tab::Forecast, Tab::Spikes, Tab::Events];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Live => "Live",
            Tab::Forecast => "Forecast",
            Tab::Spikes => "Test spikes",
            Tab::Events => "Events",
        }
    }

    pub fn index(self) -> usize {
        match self {
            Tab::Live => 0,
            Tab::Forecast => 1,
            Tab::Spikes => 2,
            Tab::Events => 3,
        }
    }

    fn next(self) -> Tab {
        Tab::ALL[(self.index() + 1) % Tab::ALL.len()]
    }

    fn prev(self) -> Tab {
        Tab::ALL[(self.index() + Tab::ALL.len() - 1) % Tab::ALL.len()]
    }
}

/// The Live table's order (`s` cycles it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// Latest score, highest first.
    Score,
    /// Points flagged in the last hour, most first (then score).
    Recent,
    /// Series id.
    Name,
}

impl SortBy {
    fn next(self) -> SortBy {
        match self {
            SortBy::Name => SortBy::Score,
            SortBy::Score => SortBy::Recent,
            SortBy::Recent => SortBy::Name,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SortBy::Score => "score now",
            SortBy::Recent => "anomalies last hour",
            SortBy::Name => "name",
        }
    }
}

/// The `/` filter: a case-insensitive substring of the name, category or id, or a regex when
/// it starts with `~`. A regex that does not compile filters nothing and says why.
#[derive(Debug, Clone, Default)]
pub enum Filter {
    #[default]
    All,
    Text(String),
    Regex(regex::Regex),
    Invalid(String),
}

impl Filter {
    pub fn parse(text: &str) -> Filter {
        if text.is_empty() {
            Filter::All
        } else if let Some(re) = text.strip_prefix('~') {
            match regex::Regex::new(re) {
                Ok(r) => Filter::Regex(r),
                Err(e) => Filter::Invalid(
                    e.to_string()
                        .lines()
                        .last()
                        .unwrap_or("invalid regex")
                        .trim()
                        .to_string(),
                ),
            }
        } else {
            Filter::Text(text.to_lowercase())
        }
    }

    fn matches_one(&self, hay: &str) -> bool {
        match self {
            Filter::All | Filter::Invalid(_) => true,
            Filter::Text(t) => contains_ci(hay, t),
            Filter::Regex(r) => r.is_match(hay),
        }
    }

    /// Whether a series (name, category, id) passes.
    pub fn matches(&self, name: &str, category: &str, id: &str) -> bool {
        match self {
            Filter::All | Filter::Invalid(_) => true,
            _ => [name, category, id].iter().any(|h| self.matches_one(h)),
        }
    }

    pub fn error(&self) -> Option<&str> {
        match self {
            Filter::Invalid(e) => Some(e),
            _ => None,
        }
    }
}

/// `needle` (lower case) in `hay`, ignoring case; ASCII without allocating.
fn contains_ci(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if hay.is_ascii() && needle.is_ascii() {
        let (h, n) = (hay.as_bytes(), needle.as_bytes());
        return h
            .windows(n.len())
            .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b));
    }
    hay.to_lowercase().contains(needle)
}

/// A row of the grouped Live table.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    /// The label's value ("" when the series lacks the label).
    pub value: String,
    pub count: usize,
    /// Series with a flagged point in the last hour.
    pub anomalous: usize,
    /// The series with the highest latest score, and that score.
    pub worst: Option<usize>,
    pub worst_score: f64,
}

impl GroupRow {
    /// Share of the group's series with an anomaly in the last hour.
    pub fn rate(&self) -> f64 {
        self.anomalous as f64 / self.count.max(1) as f64
    }
}

/// The value of `label` for a series: `category` and `source` are built in; other labels are
/// read from a PromQL series id.
pub fn label_value(s: &SeriesView, label: &str) -> String {
    match label {
        "category" => s.info.category.clone(),
        "source" => s.info.source.name().to_string(),
        _ => pulsewatch_core::prom::series_labels(&s.info.id)
            .into_iter()
            .find(|(k, _)| k == label)
            .map(|(_, v)| v)
            .unwrap_or_default(),
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
    /// The Forecast tab draws the long view (`[forecast] long_horizon`) instead of the horizon.
    pub long_view: bool,
    holdout_pending: Option<(String, ModelKind)>,
    /// Points the series had ingested when its held-out accuracy was last asked for.
    holdout_at: u64,
    /// Set when the screen must be redrawn.
    pub dirty: bool,
    pub sort: SortBy,
    /// The filter's text (as typed) and its parsed form.
    pub filter_text: String,
    pub filter: Filter,
    /// The filter line has the keyboard.
    pub filter_editing: bool,
    /// The label the Live table is grouped by, and the group opened with Enter.
    pub group_by: Option<String>,
    pub group_open: Option<String>,
    /// Series (indices into the snapshot) in table order, after filter, group and sort.
    pub rows: Vec<usize>,
    /// The grouped table (when grouped and no group is open).
    pub groups: Vec<GroupRow>,
    /// Events passing the filter, newest first, and the selected one.
    pub events: Vec<Arc<AnomalyEvent>>,
    pub event_selected: usize,
    /// The event opened on the Live chart (Enter on the Events tab).
    pub focus: Option<Arc<AnomalyEvent>>,
    /// What the rows were built from: snapshot version and a settings generation.
    built: (u64, u64),
    generation: u64,
    /// The selected row's key (series id or group value), kept across re-sorts.
    selected_key: Option<String>,
    /// Group-label values by series id, for the label they were read for.
    group_cache: (String, HashMap<String, String>),
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
        let mut app = App {
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
            long_view: false,
            holdout_pending: None,
            holdout_at: 0,
            dirty: true,
            sort: SortBy::Name,
            filter_text: String::new(),
            filter: Filter::All,
            filter_editing: false,
            group_by: None,
            group_open: None,
            rows: Vec::new(),
            groups: Vec::new(),
            events: Vec::new(),
            event_selected: 0,
            focus: None,
            built: (u64::MAX, 0),
            generation: 1,
            selected_key: None,
            group_cache: (String::new(), HashMap::new()),
        };
        app.refresh();
        app
    }

    /// Whether the Live table lists groups.
    pub fn grouped(&self) -> bool {
        self.group_by.is_some() && self.group_open.is_none()
    }

    /// Rows in the Live table (groups or series).
    pub fn row_count(&self) -> usize {
        if self.grouped() {
            self.groups.len()
        } else {
            self.rows.len()
        }
    }

    /// The selected series, if any (in a grouped table, the selected group's worst series).
    pub fn current(&self) -> Option<&SeriesView> {
        let i = if self.grouped() {
            self.groups.get(self.selected)?.worst?
        } else {
            *self.rows.get(self.selected)?
        };
        self.snap.series.get(i).map(Arc::as_ref)
    }

    fn key_of(&self, row: usize) -> Option<String> {
        if self.grouped() {
            self.groups.get(row).map(|g| g.value.clone())
        } else {
            self.rows
                .get(row)
                .and_then(|&i| self.snap.series.get(i))
                .map(|s| s.info.id.clone())
        }
    }

    /// Selects the series `id` in the Live table (stays put when it is not listed).
    pub fn select_series(&mut self, id: &str) {
        if let Some(row) = self
            .rows
            .iter()
            .position(|&i| self.snap.series.get(i).is_some_and(|s| s.info.id == id))
            && !self.grouped()
        {
            self.selected = row;
            self.selected_key = self.key_of(row);
        }
    }

    /// Settings that shape the rows changed.
    fn reshape(&mut self) {
        self.generation += 1;
        self.refresh();
        self.dirty = true;
    }

    /// Rebuilds rows, groups and events when the snapshot or the settings changed; the
    /// selection follows its series (or group).
    pub fn refresh(&mut self) {
        let key = (self.snap.version, self.generation);
        if self.built == key {
            return;
        }
        self.built = key;
        let snap = self.snap.clone();
        let group_label = self.group_by.clone();
        // Each series' value of the group label (parsed from its id once per label).
        let values: Vec<String> = match &group_label {
            None => Vec::new(),
            Some(l) => {
                if self.group_cache.0 != *l {
                    self.group_cache = (l.clone(), HashMap::new());
                }
                let cache = &mut self.group_cache.1;
                snap.series
                    .iter()
                    .map(|s| {
                        cache
                            .entry(s.info.id.clone())
                            .or_insert_with(|| label_value(s, l))
                            .clone()
                    })
                    .collect()
            }
        };
        let value = |i: usize| values.get(i).map_or("", String::as_str);
        let filter = &self.filter;
        let passes = |s: &SeriesView| filter.matches(&s.info.name, &s.info.category, &s.info.id);
        let mut rows: Vec<usize> = (0..snap.series.len())
            .filter(|&i| {
                passes(&snap.series[i])
                    && match &self.group_open {
                        Some(v) if group_label.is_some() => value(i) == v,
                        _ => true,
                    }
            })
            .collect();
        // Each series' latest score, read once (a sort compares each many times).
        let scores: Vec<f64> = if self.sort == SortBy::Name && group_label.is_none() {
            Vec::new()
        } else {
            snap.series
                .iter()
                .map(|s| s.last().map_or(-1.0, |p| p.score))
                .collect()
        };
        let score = |i: usize| scores.get(i).copied().unwrap_or(-1.0);
        match self.sort {
            SortBy::Name => {}
            SortBy::Score => {
                rows.sort_unstable_by(|&a, &b| score(b).total_cmp(&score(a)).then(a.cmp(&b)))
            }
            SortBy::Recent => rows.sort_unstable_by(|&a, &b| {
                (snap.series[b].recent_anomalies)
                    .cmp(&snap.series[a].recent_anomalies)
                    .then(score(b).total_cmp(&score(a)))
                    .then(a.cmp(&b))
            }),
        }
        self.groups.clear();
        if let (Some(_), None) = (&group_label, &self.group_open) {
            let mut by: std::collections::BTreeMap<&str, GroupRow> = Default::default();
            for &i in &rows {
                let s = &snap.series[i];
                let v = value(i);
                let g = by.entry(v).or_insert_with(|| GroupRow {
                    value: v.to_string(),
                    count: 0,
                    anomalous: 0,
                    worst: None,
                    worst_score: -1.0,
                });
                g.count += 1;
                g.anomalous += usize::from(s.recent_anomalies > 0);
                if score(i) > g.worst_score {
                    g.worst_score = score(i);
                    g.worst = Some(i);
                }
            }
            let mut groups: Vec<GroupRow> = by.into_values().collect();
            match self.sort {
                SortBy::Name => {}
                SortBy::Score => groups.sort_by(|a, b| b.worst_score.total_cmp(&a.worst_score)),
                SortBy::Recent => groups.sort_by(|a, b| {
                    b.rate()
                        .total_cmp(&a.rate())
                        .then(b.worst_score.total_cmp(&a.worst_score))
                }),
            }
            self.groups = groups;
        }
        self.rows = rows;
        // Events: the same filter (and open group) as the series.
        let group_open = self.group_open.clone();
        // A multivariate group's event passes when any of its members does.
        let index = |id: &str| {
            snap.series
                .binary_search_by(|s| s.info.id.as_str().cmp(id))
                .ok()
        };
        let events: Vec<Arc<AnomalyEvent>> = snap
            .events_newest_first()
            .into_iter()
            .filter(|e| {
                filter.matches(&e.name, &e.category, &e.series)
                    || e.members.iter().any(|m| {
                        index(m).is_some_and(|i| {
                            let info = &snap.series[i].info;
                            filter.matches(&info.name, &info.category, m)
                        })
                    })
            })
            .filter(|e| match (&group_label, &group_open) {
                (Some(_), Some(v)) => index(&e.series).is_none_or(|i| {
                    value(i) == v
                        || e.members
                            .iter()
                            .any(|m| index(m).is_some_and(|j| value(j) == v))
                }),
                _ => true,
            })
            .collect();
        let ev_key = self
            .events
            .get(self.event_selected)
            .map(|e| (e.series.clone(), e.start));
        self.events = events;
        self.event_selected = ev_key
            .and_then(|(s, t)| {
                self.events
                    .iter()
                    .position(|e| e.series == s && e.start == t)
            })
            .unwrap_or(0)
            .min(self.events.len().saturating_sub(1));
        // The selection follows its key.
        let n = self.row_count();
        let found = self
            .selected_key
            .clone()
            .and_then(|k| (0..n).find(|&r| self.key_of(r).as_deref() == Some(k.as_str())));
        self.selected = found.unwrap_or(self.selected).min(n.saturating_sub(1));
        self.selected_key = self.key_of(self.selected);
    }

    /// A new engine snapshot; returns effects it triggers (held-out evaluation of a newly
    /// forecast series on the Forecast tab).
    pub fn set_snapshot(&mut self, snap: Arc<Snapshot>) -> Vec<Effect> {
        if snap.version != self.snap.version {
            self.snap = snap;
            self.dirty = true;
            self.refresh();
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
    /// (series, model), and again once the series has grown by a quarter since (a live or
    /// replayed series outgrows "too short", and its accuracy moves); the shown result stays
    /// until the new one arrives.
    fn holdout_effect(&mut self) -> Option<Effect> {
        if self.tab != Tab::Forecast {
            return None;
        }
        let model = self.model()?;
        let s = self.current()?;
        let id = s.info.id.clone();
        let ingested = s.ingested;
        let current = ingested < self.holdout_at.saturating_add(self.holdout_at / 4);
        let have = self
            .holdout
            .as_ref()
            .is_some_and(|h| h.series == id && h.model == model && current);
        let pending = self
            .holdout_pending
            .as_ref()
            .is_some_and(|(p, m)| *p == id && *m == model);
        if have || pending || s.points.len() < MIN_HOLDOUT_POINTS {
            return None;
        }
        self.holdout_pending = Some((id.clone(), model));
        self.holdout_at = ingested;
        Some(Effect::Engine(Control::Analyse(AnalysisRequest::Holdout {
            series: id,
            model,
        })))
    }

    fn select(&mut self, to: isize) {
        if self.tab == Tab::Events {
            let n = self.events.len();
            if n > 0 {
                self.event_selected = to.clamp(0, n as isize - 1) as usize;
            }
            return;
        }
        let n = self.row_count();
        if n == 0 {
            return;
        }
        let to = to.clamp(0, n as isize - 1) as usize;
        if to != self.selected {
            self.selected = to;
            self.selected_key = self.key_of(to);
            self.spikes = None;
            self.focus = None;
        }
    }

    /// The row moved by up/down: the event list on the Events tab, else the series table.
    fn cursor(&self) -> usize {
        if self.tab == Tab::Events {
            self.event_selected
        } else {
            self.selected
        }
    }

    /// Typing in the filter line: characters edit it (the rows follow at once), Enter keeps
    /// it, Esc clears it.
    fn filter_key(&mut self, key: &KeyEvent) {
        use crossterm::event::{KeyCode, KeyModifiers};
        match key.code {
            KeyCode::Esc => {
                self.filter_editing = false;
                self.set_filter(String::new());
            }
            KeyCode::Enter => self.filter_editing = false,
            KeyCode::Backspace => {
                let mut t = self.filter_text.clone();
                t.pop();
                self.set_filter(t);
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                let t = format!("{}{c}", self.filter_text);
                self.set_filter(t);
            }
            _ => {}
        }
    }

    pub fn set_filter(&mut self, text: String) {
        self.filter = Filter::parse(&text);
        self.filter_text = text;
        self.selected = 0;
        self.selected_key = None;
        self.event_selected = 0;
        self.reshape();
    }

    /// `g`: no grouping → category → each label of the PromQL series → no grouping.
    fn next_group(&mut self) {
        let mut labels = vec!["category".to_string()];
        let mut seen = std::collections::BTreeSet::new();
        for s in &self.snap.series {
            if s.info.source == pulsewatch_engine::sources::source::SourceKind::Prometheus {
                for (k, _) in pulsewatch_core::prom::series_labels(&s.info.id) {
                    seen.insert(k);
                }
            }
        }
        labels.extend(seen);
        self.group_by = match &self.group_by {
            None => labels.first().cloned(),
            Some(cur) => labels
                .iter()
                .position(|l| l == cur)
                .and_then(|i| labels.get(i + 1))
                .cloned(),
        };
        self.group_open = None;
        self.selected = 0;
        self.selected_key = None;
        self.reshape();
    }

    /// Enter: opens the selected group, or jumps from an event to its series' chart.
    fn open(&mut self) {
        match self.tab {
            Tab::Events => {
                let Some(e) = self.events.get(self.event_selected).cloned() else {
                    return;
                };
                if self.grouped() {
                    self.group_by = None;
                }
                self.reshape();
                let Some(row) = self.rows.iter().position(|&i| {
                    self.snap
                        .series
                        .get(i)
                        .is_some_and(|s| s.info.id == e.series)
                }) else {
                    self.message = Some(format!("{} is no longer monitored", e.name));
                    return;
                };
                self.selected = row;
                self.selected_key = self.key_of(row);
                self.tab = Tab::Live;
                self.message = Some(format!(
                    "event of {} at {} (Esc returns to the live view)",
                    e.name,
                    super::ui::fmt_time(e.peak_timestamp)
                ));
                self.focus = Some(e);
            }
            Tab::Live if self.grouped() => {
                if let Some(g) = self.groups.get(self.selected) {
                    self.group_open = Some(g.value.clone());
                    self.selected = 0;
                    self.selected_key = None;
                    self.reshape();
                }
            }
            _ => {}
        }
    }

    /// Esc: closes the innermost thing open (event, filter, group); `false` when nothing was.
    fn close_one(&mut self) -> bool {
        if self.focus.take().is_some() {
            self.message = Some("back to the live view".into());
        } else if !self.filter_text.is_empty() {
            self.set_filter(String::new());
            self.message = Some("filter cleared".into());
        } else if self.group_open.take().is_some() {
            self.selected = 0;
            self.selected_key = None;
            self.reshape();
            self.message = Some("back to the groups".into());
        } else {
            return false;
        }
        true
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
        if self.filter_editing {
            let ctrl_c = key.code == crossterm::event::KeyCode::Char('c')
                && key
                    .modifiers
                    .contains(crossterm::event::KeyModifiers::CONTROL);
            if ctrl_c {
                self.quit = true;
            } else {
                self.filter_key(key);
            }
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
            Action::Events => self.tab = Tab::Events,
            Action::Up => self.select(self.cursor() as isize - 1),
            Action::Down => self.select(self.cursor() as isize + 1),
            Action::PageUp => self.select(self.cursor() as isize - page),
            Action::PageDown => self.select(self.cursor() as isize + page),
            Action::Sort => {
                self.sort = self.sort.next();
                self.message = Some(format!("sorted by {}", self.sort.label()));
                self.reshape();
            }
            Action::Filter => {
                self.filter_editing = true;
                self.message = None;
            }
            Action::Group => {
                self.next_group();
                self.message = Some(match &self.group_by {
                    Some(l) => format!("grouped by {l} (Enter opens a group)"),
                    None => "not grouped".into(),
                });
            }
            Action::Open => self.open(),
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
                if !self.close_one() {
                    self.message = Some("retrains cancelled".into());
                    out.push(Effect::Engine(Control::CancelRetrain { series: None }));
                }
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
                // Round the list of models, in `ModelKind::ALL` order.
                let all = ModelKind::ALL;
                let next = self
                    .model()
                    .and_then(|m| all.iter().position(|&k| k == m))
                    .map_or(all[0], |i| all[(i + 1) % all.len()]);
                self.message = Some(format!("forecast model: {} (refitting)", next.name()));
                self.holdout = None;
                out.push(Effect::Engine(Control::SetForecastModel(next)));
            }
            Action::Inject => out.extend(self.spike_request(false)),
            Action::InjectAtCursor => out.extend(self.spike_request(true)),
            Action::LongView => {
                self.long_view = !self.long_view;
                self.tab = Tab::Forecast;
                self.message = Some(
                    if self.long_view {
                        "forecast: long view ([forecast] long_horizon)"
                    } else {
                        "forecast: horizon view"
                    }
                    .into(),
                );
            }
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
