//! Rendering: one function per screen region.
//!
//! ```text
//! ┌──────────────────────────────────────────────────────────────────────────────┐
//! │ header: source, replay time and speed, detector state, forecast, push, source │  draw_header
//! │ tabs:   1 Live  2 Forecast  3 Test spikes  4 Events                ? help     │  draw_tabs
//! ├──────────────────────────────────────────────────────────────────────────────┤
//! │ Live:      filter · sort · group · shown/total                                │  draw_controls
//! │            series table (sparkline, value, score, last hour, anomalies)       │  draw_live_table
//! │            or grouped table (series, anomaly rate, worst series)              │  draw_group_table
//! │            detail chart (values, anomaly markers, forecast band, reason)      │  draw_detail
//! │ Events:    anomaly events, newest first; the selected one's reason            │  draw_events
//! │ Forecast:  history + forecast band with real timestamps; model, fit, accuracy │  draw_forecast
//! │ Spikes:    spiked copy with caught/missed markers; recall, delay, false alarms│  draw_spikes
//! ├──────────────────────────────────────────────────────────────────────────────┤
//! │ footer: last action or key hints                                              │  draw_footer
//! └──────────────────────────────────────────────────────────────────────────────┘
//!                         help popup over everything                                 draw_help
//! ```
//!
//! Rendering reads the [`App`] only; it never blocks and never does I/O.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Cell, Chart, Clear, Dataset, GraphType, Paragraph, Row, Table,
    TableState, Tabs, Wrap,
};

use super::app::{App, SortBy, TEST_POINTS, Tab};
use super::keys::Action;
use pulsewatch_engine::engine::state::{AnomalyEvent, ScoredPoint, SeriesView};
use pulsewatch_engine::sources::source::SourceKind;

/// Smallest screen we draw the full UI on; smaller gets a one-line notice.
pub const MIN_WIDTH: u16 = 20;
pub const MIN_HEIGHT: u16 = 6;

pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        if area.width > 0 && area.height > 0 {
            f.render_widget(
                Paragraph::new("pulsewatch: window too small").wrap(Wrap { trim: true }),
                area,
            );
        }
        return;
    }
    let [header, tabs, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(f, app, header);
    draw_tabs(f, app, tabs);
    match app.tab {
        Tab::Live => draw_live(f, app, body),
        Tab::Forecast => draw_forecast(f, app, body),
        Tab::Spikes => draw_spikes(f, app, body),
        Tab::Events => draw_events(f, app, body),
    }
    draw_footer(f, app, footer);
    if app.help {
        draw_help(f, app, area);
    }
}

/// `2014-04-10 12:00` (UTC; NAB times are naive).
pub fn fmt_time(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0).map_or_else(
        || ts.to_string(),
        |d| d.format("%Y-%m-%d %H:%M").to_string(),
    )
}

fn fmt_short_time(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map_or_else(|| ts.to_string(), |d| d.format("%m-%d %H:%M").to_string())
}

pub use pulsewatch_core::num::compact as fmt_value;

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else if n == 0 {
        String::new()
    } else {
        let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

fn draw_header(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let s = &app.snap;
    let narrow = area.width < 110;
    let sep = || Span::styled(" │ ", t.dim());
    let mut spans = Vec::new();
    if !narrow {
        spans.push(Span::styled("pulsewatch", t.title()));
        spans.push(sep());
    }
    if let Some(n) = &app.notice {
        spans.push(Span::styled(format!("{n} "), t.warn()));
    }
    let shown = if app.rows.len() == s.series.len() {
        s.series.len().to_string()
    } else {
        format!("{}/{}", app.rows.len(), s.series.len())
    };
    let mut src = if narrow {
        format!("{} ×{shown}", s.source)
    } else {
        format!("{} {shown} series", s.source)
    };
    if s.source == SourceKind::Nab {
        if s.paused {
            src.push_str(" paused");
        } else {
            src.push_str(&format!(" ▶{}/s", fmt_value(s.speed)));
        }
    }
    spans.push(Span::styled(src, t.title()));
    spans.push(sep());
    let state = app.model_state();
    let st_style = if state.starts_with("ready") {
        t.ok()
    } else {
        t.warn()
    };
    spans.push(Span::raw(format!("{} ", s.detector)));
    spans.push(Span::styled(state, st_style));
    if !s.forecast_model.is_empty() && !narrow {
        spans.push(sep());
        spans.push(Span::raw(s.forecast_model.clone()));
    }
    spans.push(sep());
    match &app.push {
        None => spans.push(Span::styled("push off", t.dim())),
        Some(p) if p.ok => spans.push(Span::styled("push ok", t.ok())),
        Some(p) if p.idle => spans.push(Span::styled("push …", t.dim())),
        Some(p) if p.absent_default() => spans.push(Span::styled(
            format!("push: none at {}", p.base_url()),
            t.dim(),
        )),
        Some(p) => spans.push(Span::styled(format!("push DEGRADED: {}", p.error), t.bad())),
    }
    spans.push(sep());
    let src_word = if narrow { "src" } else { "source" };
    match &s.status {
        None => spans.push(Span::styled(format!("{src_word} starting"), t.dim())),
        Some(st) if st.healthy => spans.push(Span::styled(format!("{src_word} ok"), t.ok())),
        Some(st) => spans.push(Span::styled(
            format!("{src_word} DEGRADED: {}", st.message),
            t.bad(),
        )),
    }
    if let Some(p) = app.current().and_then(SeriesView::last) {
        spans.push(sep());
        spans.push(Span::raw(fmt_time(p.timestamp)));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_tabs(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let help = format!("{} help ", app.keys.hint(Action::Help));
    let hw = (help.chars().count() as u16).min(area.width / 3);
    let [left, right] =
        Layout::horizontal([Constraint::Min(1), Constraint::Length(hw)]).areas(area);
    let titles: Vec<Line> = Tab::ALL
        .iter()
        .map(|tab| Line::from(format!("{} {}", tab.index() + 1, tab.title())))
        .collect();
    let tabs = Tabs::new(titles)
        .select(app.tab.index())
        .style(t.dim())
        .highlight_style(t.title().add_modifier(Modifier::REVERSED))
        .divider("│");
    f.render_widget(tabs, left);
    f.render_widget(
        Paragraph::new(help)
            .style(t.dim())
            .alignment(Alignment::Right),
        right,
    );
}

fn draw_footer(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let line = if let Some(m) = &app.message {
        Line::from(Span::styled(m.clone(), t.base()))
    } else {
        let k = |a: Action| app.keys.hint(a);
        let hints = [
            (k(Action::Quit), "quit"),
            (format!("{}/{}", k(Action::Up), k(Action::Down)), "select"),
            (k(Action::Filter), "filter"),
            (k(Action::Sort), "sort"),
            (k(Action::Group), "group"),
            (k(Action::Retrain), "retrain"),
            (k(Action::Pause), "pause"),
            (
                format!("{}/{}", k(Action::Faster), k(Action::Slower)),
                "speed",
            ),
            (k(Action::Model), "model"),
            (k(Action::Inject), "spikes"),
            (k(Action::Help), "help"),
        ];
        let mut spans = Vec::new();
        for (key, what) in hints {
            spans.push(Span::styled(key, t.key()));
            spans.push(Span::styled(format!(" {what}  "), t.dim()));
        }
        Line::from(spans)
    };
    f.render_widget(Paragraph::new(line), area);
}

const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A text sparkline of the newest `width` values.
pub fn sparkline(points: &[ScoredPoint], width: usize) -> String {
    let tail = &points[points.len().saturating_sub(width)..];
    let (lo, hi) = tail
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.value), b.max(p.value))
        });
    let span = hi - lo;
    tail.iter()
        .map(|p| {
            if !(span.is_finite() && span > 0.0) {
                LEVELS[0]
            } else {
                let k = ((p.value - lo) / span * 7.0).round() as usize;
                LEVELS[k.min(7)]
            }
        })
        .collect()
}

fn draw_live(f: &mut Frame, app: &App, area: Rect) {
    let n = app.row_count() as u16;
    let [controls, area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    draw_controls(f, app, controls);
    let list_h = (n + 1)
        .min(area.height.saturating_mul(45) / 100)
        .max(3.min(area.height));
    let [list, detail] =
        Layout::vertical([Constraint::Length(list_h), Constraint::Min(0)]).areas(area);
    if app.grouped() {
        draw_group_table(f, app, list);
    } else {
        draw_live_table(f, app, list);
    }
    if detail.height >= 3 {
        draw_detail(f, app, detail);
    }
}

/// The filter line (being typed, or its error), the sort, the grouping and how many rows show.
fn draw_controls(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let k = |a: Action| app.keys.hint(a);
    let mut spans = Vec::new();
    if app.filter_editing {
        spans.push(Span::styled("filter: ", t.key()));
        spans.push(Span::styled(format!("{}▏", app.filter_text), t.title()));
        spans.push(Span::styled("  (Enter keeps, Esc clears)", t.dim()));
    } else if app.filter_text.is_empty() {
        spans.push(Span::styled(k(Action::Filter), t.key()));
        spans.push(Span::styled(" filter", t.dim()));
    } else {
        spans.push(Span::styled("filter: ", t.dim()));
        spans.push(Span::styled(app.filter_text.clone(), t.title()));
    }
    if let Some(e) = app.filter.error() {
        spans.push(Span::styled(
            format!("  bad regex, filtering nothing: {e}"),
            t.bad(),
        ));
    }
    let sep = || Span::styled(" · ", t.dim());
    spans.push(sep());
    spans.push(Span::styled(
        format!("sort: {}", app.sort.label()),
        t.base(),
    ));
    spans.push(sep());
    let group = match (&app.group_by, &app.group_open) {
        (None, _) => "group: none".to_string(),
        (Some(l), None) => format!("group: {l} ({} groups)", app.groups.len()),
        (Some(l), Some(v)) => format!("group: {l}={v}"),
    };
    spans.push(Span::styled(group, t.base()));
    spans.push(sep());
    let what = if app.tab == Tab::Events {
        format!("{} events", app.events.len())
    } else {
        format!("{}/{} series", app.rows.len(), app.snap.series.len())
    };
    spans.push(Span::styled(what, t.title()));
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// A table of the visible rows (header, rows, column widths) with row `selected` highlighted.
fn draw_rows<'a>(
    f: &mut Frame,
    app: &App,
    (header, rows, widths): (Row<'a>, Vec<Row<'a>>, Vec<Constraint>),
    selected: usize,
    area: Rect,
) {
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(app.theme.selected());
    let mut state = TableState::default().with_selected(Some(selected));
    f.render_stateful_widget(table, area, &mut state);
}

/// Rows `offset..offset + visible` of a table of `n` rows keep `selected` in view.
fn window(selected: usize, height: u16) -> (usize, usize) {
    let visible = usize::from(height.saturating_sub(1)).max(1);
    (selected.saturating_sub(visible - 1), visible)
}

fn draw_group_table(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let label = app.group_by.as_deref().unwrap_or("group");
    let header = Row::new(vec![
        label.to_string(),
        "series".into(),
        "anomalous 1h".into(),
        "worst series".into(),
        "score".into(),
    ])
    .style(t.dim());
    let (offset, visible) = window(app.selected, area.height);
    let threshold = app.snap.threshold;
    let rows: Vec<Row> = app
        .groups
        .iter()
        .skip(offset)
        .take(visible)
        .map(|g| {
            let worst = g
                .worst
                .and_then(|i| app.snap.series.get(i))
                .map_or("-".to_string(), |s| s.info.name.clone());
            let rate_style = if g.anomalous > 0 { t.warn() } else { t.dim() };
            Row::new(vec![
                Cell::from(if g.value.is_empty() {
                    "(none)".to_string()
                } else {
                    g.value.clone()
                }),
                Cell::from(g.count.to_string()),
                Cell::from(format!("{:.0} % ({})", g.rate() * 100.0, g.anomalous))
                    .style(rate_style),
                Cell::from(worst),
                Cell::from(if g.worst_score < 0.0 {
                    "-".into()
                } else {
                    format!("{:.2}", g.worst_score)
                })
                .style(t.score(g.worst_score.max(0.0), threshold)),
            ])
        })
        .collect();
    let widths = vec![
        Constraint::Min(12),
        Constraint::Length(6),
        Constraint::Length(12),
        Constraint::Min(10),
        Constraint::Length(5),
    ];
    draw_rows(f, app, (header, rows, widths), app.selected - offset, area);
}

fn draw_events(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let [controls, area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    draw_controls(f, app, controls);
    let detail_h = 3.min(area.height.saturating_sub(2));
    let [list, detail] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(detail_h)]).areas(area);
    if app.events.is_empty() {
        let mut lines = vec![Line::styled(
            "no anomaly events yet: consecutive flagged points of a series show up here",
            t.dim(),
        )];
        if let Some(w) = &app.snap.events_warning {
            lines.push(Line::styled(w.clone(), t.warn()));
        }
        f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), list);
        return;
    }
    let wide = area.width >= 100;
    let mut head = vec!["start", "series", "pts", "peak", "value", "expected"];
    if wide {
        head.push("reason");
    }
    let header = Row::new(head).style(t.dim());
    let (offset, visible) = window(app.event_selected, list.height);
    let threshold = app.snap.threshold;
    let rows: Vec<Row> = app
        .events
        .iter()
        .skip(offset)
        .take(visible)
        .map(|e| {
            let expected = e.expected.map_or("-".to_string(), |b| {
                format!("{}..{}", fmt_value(b.lower), fmt_value(b.upper))
            });
            let start = if e.open {
                format!("{} now", fmt_short_time(e.start))
            } else {
                fmt_short_time(e.start)
            };
            let mut cells = vec![
                Cell::from(start),
                Cell::from(event_name(e)),
                Cell::from(e.points.to_string()),
                Cell::from(format!("{:.2}", e.peak_score)).style(t.score(e.peak_score, threshold)),
                Cell::from(fmt_value(e.peak_value)),
                Cell::from(expected).style(t.dim()),
            ];
            if wide {
                cells.push(Cell::from(
                    e.reason.as_ref().map_or(String::new(), |r| r.text.clone()),
                ));
            }
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(15),
        Constraint::Min(12),
        Constraint::Length(4),
        Constraint::Length(5),
        Constraint::Length(9),
        Constraint::Length(17),
    ];
    if wide {
        widths.push(Constraint::Min(30));
    }
    draw_rows(
        f,
        app,
        (header, rows, widths),
        app.event_selected - offset,
        list,
    );
    if let Some(e) = app.events.get(app.event_selected) {
        let mut lines = vec![Line::from(vec![
            Span::styled(format!("{} ", event_name(e)), t.title()),
            Span::raw(format!(
                "{} → {} · peak {:.2} at {} · {} by {}",
                fmt_time(e.start),
                fmt_time(e.end),
                e.peak_score,
                fmt_time(e.peak_timestamp),
                e.category,
                e.detector
            )),
        ])];
        let why = e
            .reason
            .as_ref()
            .map_or("no reason given".to_string(), |r| r.text.clone());
        lines.push(Line::from(vec![
            Span::styled(app.keys.hint(Action::Open), t.key()),
            Span::styled(" chart  ", t.dim()),
            Span::raw(why),
        ]));
        f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), detail);
    }
}

/// An event's series, or for a multivariate group's event "instance: member" (the member with
/// the largest error at the peak).
fn event_name(e: &AnomalyEvent) -> String {
    match &e.group {
        Some(g) => format!("{g}: {}", e.name),
        None => e.name.clone(),
    }
}

fn draw_live_table(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let wide = area.width >= 70;
    let spark_w: u16 = if area.width >= 120 {
        30
    } else if area.width >= 60 {
        16
    } else {
        8
    };
    let sorted = |name: &'static str, by: SortBy| -> String {
        if app.sort == by {
            format!("{name}▼")
        } else {
            name.to_string()
        }
    };
    let mut header_cells: Vec<String> = vec![sorted("series", SortBy::Name)];
    if wide {
        header_cells.push("category".into());
    }
    header_cells.extend([
        "recent".to_string(),
        "value".into(),
        sorted("score", SortBy::Score),
        sorted("1h", SortBy::Recent),
        "anom".into(),
    ]);
    let header = Row::new(header_cells).style(t.dim());
    let threshold = app.snap.threshold;
    // Only the rows that fit are built (thousands of series cost no more than a screenful): the
    // window scrolls just enough to keep the selection in view, as ratatui's own would.
    let (offset, visible) = window(app.selected, area.height);
    let rows: Vec<Row> = app
        .rows
        .iter()
        .skip(offset)
        .take(visible)
        .filter_map(|&i| app.snap.series.get(i))
        .map(|s| {
            let last = s.last();
            let value = last.map_or("-".into(), |p| fmt_value(p.value));
            let score = last.map_or(0.0, |p| p.score);
            let name_style = if s.stale { t.dim() } else { t.base() };
            let name = if s.stale {
                format!("{} (stale)", row_name(s))
            } else {
                row_name(s)
            };
            let mut cells = vec![Cell::from(name).style(name_style)];
            if wide {
                cells.push(Cell::from(s.info.category.clone()).style(t.dim()));
            }
            cells.push(
                Cell::from(sparkline(
                    &s.points.tail(spark_w as usize),
                    spark_w as usize,
                ))
                .style(t.series()),
            );
            cells.push(Cell::from(value));
            cells.push(
                Cell::from(last.map_or("-".into(), |_| format!("{score:.2}")))
                    .style(t.score(score, threshold)),
            );
            let hour_style = if s.recent_anomalies > 0 {
                t.warn()
            } else {
                t.dim()
            };
            cells.push(Cell::from(s.recent_anomalies.to_string()).style(hour_style));
            let anom_style = if s.anomalies > 0 { t.warn() } else { t.dim() };
            cells.push(Cell::from(s.anomalies.to_string()).style(anom_style));
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![Constraint::Min(10)];
    if wide {
        widths.push(Constraint::Length(15));
    }
    widths.extend([
        Constraint::Length(spark_w),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(4),
        Constraint::Length(5),
    ]);
    draw_rows(f, app, (header, rows, widths), app.selected - offset, area);
}

/// A series' name in the Live table: a PromQL series shows its label values (`host-a:9100, api`)
/// beside its query in the category column; the chart title shows the whole id.
fn row_name(s: &SeriesView) -> String {
    if s.info.source == SourceKind::Prometheus {
        let labels = pulsewatch_core::prom::series_labels(&s.info.id);
        if !labels.is_empty() {
            let values: Vec<String> = labels.into_iter().map(|(_, v)| v).collect();
            return values.join(", ");
        }
    }
    s.info.name.clone()
}

/// Data bounds with 5 % padding (a flat line gets ±1).
fn bounds(values: impl Iterator<Item = f64>) -> [f64; 2] {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return [0.0, 1.0];
    }
    let pad = ((hi - lo) * 0.05).max(if hi == lo { 1.0 } else { 0.0 });
    [lo - pad, hi + pad]
}

fn draw_detail(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let Some(s) = app.current() else {
        f.render_widget(
            Paragraph::new("waiting for the first series…")
                .block(Block::default().borders(Borders::TOP)),
            area,
        );
        return;
    };
    let shown = (area.width as usize * 2).clamp(10, 2000);
    // An event opened from the Events tab: the kept points around it, else the newest.
    let focus = app
        .focus
        .as_ref()
        .filter(|e| e.series == s.info.id)
        .map(|e| (e, around(&s.points, e.start, e.end, shown)));
    let pts = match &focus {
        Some((_, Some(p))) => p.clone(),
        _ => s.points.tail(shown),
    };
    let line: Vec<(f64, f64)> = pts.iter().map(|p| (p.timestamp as f64, p.value)).collect();
    let flagged: Vec<(f64, f64)> = pts
        .iter()
        .filter(|p| p.anomaly)
        .map(|p| (p.timestamp as f64, p.value))
        .collect();
    let injected: Vec<(f64, f64)> = pts
        .iter()
        .filter(|p| p.injected)
        .map(|p| (p.timestamp as f64, p.value))
        .collect();
    let (mut fc_p, mut fc_l, mut fc_u) = (Vec::new(), Vec::new(), Vec::new());
    if let (Some(f), Some(last), None) = (
        s.forecast.as_ref().and_then(|f| f.forecast.as_ref()),
        pts.last(),
        focus.as_ref(),
    ) {
        let steps = (pts.len() / 5).max(1);
        for (i, &ts) in f.timestamps.iter().enumerate().take(steps) {
            if ts > last.timestamp {
                fc_p.push((ts as f64, f.point[i]));
                fc_l.push((ts as f64, f.lower[i]));
                fc_u.push((ts as f64, f.upper[i]));
            }
        }
    }
    let x0 = line.first().map_or(0.0, |p| p.0);
    let x1 = fc_p
        .last()
        .map(|p| p.0)
        .or(line.last().map(|p| p.0))
        .unwrap_or(1.0)
        .max(x0 + 1.0);
    let y = bounds(line.iter().chain(&fc_l).chain(&fc_u).map(|p| p.1));
    let last = s.last();
    let mut title = format!(
        " {} · {} · value {} · score {} (threshold {:.2}) · {} anomalies ",
        s.info.name,
        s.info.category,
        last.map_or("-".into(), |p| fmt_value(p.value)),
        last.map_or("-".into(), |p| format!("{:.2}", p.score)),
        app.snap.threshold,
        s.anomalies
    );
    let mut peak_line = Vec::new();
    match &focus {
        Some((e, kept)) => {
            title = format!(
                " {} · event {} peak {:.2}{}{} ",
                s.info.name,
                fmt_time(e.peak_timestamp),
                e.peak_score,
                e.reason
                    .as_ref()
                    .map_or(String::new(), |r| format!(": {}", r.text)),
                if kept.is_none() {
                    " · older than the kept history"
                } else {
                    ""
                }
            );
            if kept.is_some() {
                peak_line = vec![
                    (e.peak_timestamp as f64, y[0]),
                    (e.peak_timestamp as f64, y[1]),
                ];
            }
        }
        None => {
            if let Some(e) = &s.event {
                let when = if e.open {
                    "now".to_string()
                } else {
                    fmt_short_time(e.peak_timestamp)
                };
                let why = e
                    .reason
                    .as_ref()
                    .map_or(format!("score {:.2}", e.peak_score), |r| r.text.clone());
                title.push_str(&format!("· anomaly {when}: {why} "));
            }
        }
    }
    let mut datasets = vec![plot_line("value", &line, t.series(), app.marker)];
    if !peak_line.is_empty() {
        datasets.push(plot_line("event", &peak_line, t.warn(), app.marker));
    }
    if !fc_p.is_empty() {
        datasets.push(plot_line("forecast", &fc_p, t.forecast(), app.marker));
        datasets.push(plot_line("band", &fc_l, t.band(), app.marker));
        datasets.push(plot_line("", &fc_u, t.band(), app.marker));
    }
    if !flagged.is_empty() {
        datasets.push(plot_marks("anomaly", &flagged, t.bad()));
    }
    if !injected.is_empty() {
        datasets.push(plot_marks("spike", &injected, t.spike()));
    }
    let (xa, ya) = time_value_axes([x0, x1], y);
    let chart = chart_widget(datasets, t, &title, area.width, xa, ya);
    f.render_widget(chart, area);
}

/// The kept points around `[start, end]`: `n` points centred on the event, or `None` when the
/// event is older than the kept history.
fn around(
    points: &pulsewatch_engine::engine::state::History,
    start: i64,
    end: i64,
    n: usize,
) -> Option<Vec<ScoredPoint>> {
    let len = points.len();
    let first = points.get(0)?;
    if first.timestamp > end {
        return None;
    }
    // Binary search for the first kept point at or after `start`.
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if points.get(mid).is_some_and(|p| p.timestamp < start) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let from = lo.saturating_sub(n / 2).min(len.saturating_sub(n));
    Some(
        (from..(from + n).min(len))
            .filter_map(|i| points.get(i))
            .collect(),
    )
}

/// A line dataset.
fn plot_line<'a>(
    name: &'a str,
    data: &'a [(f64, f64)],
    style: Style,
    marker: Marker,
) -> Dataset<'a> {
    Dataset::default()
        .name(name)
        .marker(marker)
        .graph_type(GraphType::Line)
        .style(style)
        .data(data)
}

/// Markers (a dot per point), e.g. anomalies or spikes.
fn plot_marks<'a>(name: &'a str, data: &'a [(f64, f64)], style: Style) -> Dataset<'a> {
    Dataset::default()
        .name(name)
        .marker(Marker::Dot)
        .graph_type(GraphType::Scatter)
        .style(style)
        .data(data)
}

/// A chart with a top-border title, dimmed axes and labels, and no legend.
/// An axis: its bounds and labels.
type AxisSpec = ([f64; 2], Vec<String>);

/// Time on x and value on y, each labelled at both ends (the Live and Test spikes charts).
fn time_value_axes(x: [f64; 2], y: [f64; 2]) -> (AxisSpec, AxisSpec) {
    (
        (
            x,
            vec![fmt_short_time(x[0] as i64), fmt_short_time(x[1] as i64)],
        ),
        (y, vec![fmt_value(y[0]), fmt_value(y[1])]),
    )
}

fn chart_widget<'a>(
    datasets: Vec<Dataset<'a>>,
    t: super::theme::Theme,
    title: &str,
    width: u16,
    x: AxisSpec,
    y: AxisSpec,
) -> Chart<'a> {
    let labels = |v: Vec<String>| -> Vec<Span<'a>> {
        v.into_iter().map(|l| Span::styled(l, t.dim())).collect()
    };
    Chart::new(datasets)
        .block(
            Block::default()
                .borders(Borders::TOP)
                .title(Span::styled(truncate(title, width as usize), t.title())),
        )
        .x_axis(
            Axis::default()
                .bounds(x.0)
                .labels(labels(x.1))
                .style(t.dim()),
        )
        .y_axis(
            Axis::default()
                .bounds(y.0)
                .labels(labels(y.1))
                .style(t.dim()),
        )
        .legend_position(None)
}

fn draw_forecast(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let Some(s) = app.current() else {
        f.render_widget(Paragraph::new("waiting for the first series…"), area);
        return;
    };
    let capacity = s.capacity();
    let sf = s.forecast.as_deref();
    let short = sf.and_then(|f| f.forecast.as_deref());
    let long = sf.and_then(|f| f.long.as_deref());
    // The long view when asked for and fitted; the info lines always describe the fit itself.
    let fc = if app.long_view { long.or(short) } else { short };
    let mut lines: Vec<Line> = Vec::new();
    match short {
        Some(fc) => {
            lines.push(Line::from(vec![
                Span::styled(format!("model {}: ", fc.model.name()), t.title()),
                Span::raw(format!(
                    "{} · fit {:.0} ms · {} steps of {} s · {:.0} % band",
                    fc.detail,
                    fc.fit_time.as_secs_f64() * 1000.0,
                    fc.len(),
                    fc.step,
                    fc.level * 100.0
                )),
            ]));
            if let Some(w) = &fc.why {
                lines.push(Line::styled(format!("chosen by {w}"), t.dim()));
            }
            if let Some(n) = &fc.note {
                lines.push(Line::styled(n.clone(), t.dim()));
            }
        }
        None => {
            let why = sf
                .and_then(|f| f.error.clone())
                .unwrap_or_else(|| "waiting for enough history".into());
            lines.push(Line::styled(format!("no forecast yet: {why}"), t.warn()));
        }
    }
    let held = match &app.holdout {
        Some(h) if h.series == s.info.id && h.model.name() == app.snap.forecast_model => {
            match &h.result {
                Ok(a) => Line::raw(format!(
                    "held-out last horizon: MASE {} · sMAPE {:.1} % · coverage {:.0} % (n={})",
                    a.mase.map_or("-".into(), |m| format!("{m:.2}")),
                    a.smape,
                    a.coverage * 100.0,
                    a.n
                )),
                Err(e) => Line::styled(format!("held-out: {e}"), t.dim()),
            }
        }
        _ => Line::styled("held-out: computing…", t.dim()),
    };
    lines.push(held);
    if let Some((cap, now)) = capacity {
        let soon = cap.earliest.is_some();
        lines.push(Line::from(vec![
            Span::styled("capacity: ", t.title()),
            Span::styled(
                cap.describe(now),
                if soon { t.warn() } else { Style::default() },
            ),
        ]));
    }
    let view = match (app.long_view, long.is_some()) {
        (true, true) => " horizon view",
        (true, false) => " long view: not fitted (long_horizon ≤ horizon)",
        (false, _) => " long view",
    };
    lines.push(Line::from(vec![
        Span::styled(app.keys.hint(Action::Model), t.key()),
        Span::styled(" switch model  ", t.dim()),
        Span::styled(app.keys.hint(Action::Retrain), t.key()),
        Span::styled(" refit  ", t.dim()),
        Span::styled(app.keys.hint(Action::LongView), t.key()),
        Span::styled(view, t.dim()),
    ]));
    // As many rows as the info lines take wrapped, leaving the chart at least 3.
    let width = area.width.max(1) as usize;
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(width)).sum();
    let info_h = u16::try_from(rows)
        .unwrap_or(u16::MAX)
        .min(area.height.saturating_sub(3));
    let [chart_area, info] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(info_h)]).areas(area);
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), info);

    let Some(fc) = fc else {
        return;
    };
    let Some(first_fc) = fc.timestamps.first().copied() else {
        return;
    };
    // History from two horizons before the forecast starts up to now: when the replay has moved
    // past the fit, the actual values run alongside the band.
    let horizon = fc.timestamps.last().copied().unwrap_or(first_fc) - first_fc;
    let start = first_fc - 2 * horizon.max(fc.step);
    let hist: Vec<(f64, f64)> = s
        .points
        .iter()
        .filter(|p| p.timestamp >= start)
        .map(|p| (p.timestamp as f64, p.value))
        .collect();
    let pts = |v: &[f64]| -> Vec<(f64, f64)> {
        fc.timestamps
            .iter()
            .zip(v)
            .map(|(&ts, &y)| (ts as f64, y))
            .collect()
    };
    let (p, lo, hi) = (pts(&fc.point), pts(&fc.lower), pts(&fc.upper));
    let x0 = hist
        .first()
        .map_or(first_fc as f64, |q| q.0)
        .min(first_fc as f64);
    let x1 = p
        .last()
        .map_or(x0 + 1.0, |q| q.0)
        .max(hist.last().map_or(x0, |q| q.0))
        .max(x0 + 1.0);
    let limit: Vec<(f64, f64)> = capacity
        .map(|(c, _)| vec![(x0, c.threshold.value), (x1, c.threshold.value)])
        .unwrap_or_default();
    let y = bounds(hist.iter().chain(&lo).chain(&hi).chain(&limit).map(|q| q.1));
    let mid = (x0 as i64 + x1 as i64) / 2;
    let mut datasets = vec![
        plot_line("history", &hist, t.series(), app.marker),
        plot_line("forecast", &p, t.forecast(), app.marker),
        plot_line("lower", &lo, t.band(), app.marker),
        plot_line("upper", &hi, t.band(), app.marker),
    ];
    if !limit.is_empty() {
        datasets.push(plot_line("threshold", &limit, t.warn(), app.marker));
    }
    let title = format!(" {} · {} ", s.info.name, s.info.category);
    let chart = chart_widget(
        datasets,
        t,
        &title,
        area.width,
        (
            [x0, x1],
            vec![fmt_time(x0 as i64), fmt_time(mid), fmt_time(x1 as i64)],
        ),
        (
            y,
            vec![
                fmt_value(y[0]),
                fmt_value((y[0] + y[1]) / 2.0),
                fmt_value(y[1]),
            ],
        ),
    );
    f.render_widget(chart, chart_area);
}

fn draw_spikes(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let Some(s) = app.current() else {
        f.render_widget(Paragraph::new("waiting for the first series…"), area);
        return;
    };
    let report = app
        .spikes
        .as_ref()
        .filter(|v| v.series == s.info.id)
        .map(|v| &v.report);
    let list_h = report.map_or(2, |r| (r.results.len() as u16 + 2).min(area.height / 3));
    let [chart_area, info] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(list_h)]).areas(area);

    let hist: Vec<(f64, f64)> = match report {
        Some(r) => r
            .spiked
            .iter()
            .map(|p| (p.timestamp as f64, p.value))
            .collect(),
        None => s
            .points
            .tail(TEST_POINTS)
            .iter()
            .map(|p| (p.timestamp as f64, p.value))
            .collect(),
    };
    let y = bounds(hist.iter().map(|p| p.1));
    let (mut caught, mut missed, mut alarms) = (Vec::new(), Vec::new(), Vec::new());
    if let Some(r) = report {
        for res in &r.results {
            let pt = (
                res.spike.timestamp as f64,
                hist.get(res.spike.index).map_or(0.0, |p| p.1),
            );
            if res.caught {
                caught.push(pt);
            } else {
                missed.push(pt);
            }
        }
        for &i in &r.alarms {
            alarms.push(hist.get(i).copied().unwrap_or((0.0, 0.0)));
        }
    }
    let cursor_idx = hist.len().saturating_sub(1 + app.cursor_back);
    let cursor: Vec<(f64, f64)> = hist
        .get(cursor_idx)
        .map(|p| vec![(p.0, y[0]), (p.0, y[1])])
        .unwrap_or_default();
    let mut datasets = vec![
        plot_line(
            if report.is_some() {
                "spiked copy"
            } else {
                "history"
            },
            &hist,
            t.series(),
            app.marker,
        ),
        plot_line("cursor", &cursor, t.dim(), app.marker),
    ];
    if !caught.is_empty() {
        datasets.push(plot_marks(
            "caught",
            &caught,
            t.ok().add_modifier(Modifier::BOLD),
        ));
    }
    if !missed.is_empty() {
        datasets.push(plot_marks("missed", &missed, t.bad()));
    }
    if !alarms.is_empty() {
        datasets.push(plot_marks("false alarm", &alarms, t.warn()));
    }
    let x0 = hist.first().map_or(0.0, |p| p.0);
    let x1 = hist.last().map_or(1.0, |p| p.0).max(x0 + 1.0);
    let title = format!(
        " {} · {} spike(s) of {:.1}σ · cursor {} ",
        s.info.name,
        app.spike_count,
        app.spike_magnitude,
        hist.get(cursor_idx)
            .map_or("-".into(), |p| fmt_short_time(p.0 as i64))
    );
    let (xa, ya) = time_value_axes([x0, x1], y);
    let chart = chart_widget(datasets, t, &title, area.width, xa, ya);
    f.render_widget(chart, chart_area);

    let k = |a: Action| app.keys.hint(a);
    let mut lines = Vec::new();
    match report {
        None => {
            let state = if app.spike_running {
                "running…  ".to_string()
            } else {
                String::new()
            };
            lines.push(Line::from(vec![
                Span::raw(state),
                Span::styled(k(Action::Inject), t.key()),
                Span::styled(" inject at random  ", t.dim()),
                Span::styled(format!("{}/{}", k(Action::Left), k(Action::Right)), t.key()),
                Span::styled(" move cursor  ", t.dim()),
                Span::styled(k(Action::InjectAtCursor), t.key()),
                Span::styled(" inject at cursor  ", t.dim()),
                Span::styled(k(Action::Clear), t.key()),
                Span::styled(" clear", t.dim()),
            ]));
        }
        Some(r) => {
            let caught_n = r.results.iter().filter(|x| x.caught).count();
            lines.push(Line::from(vec![
                Span::styled(format!("injected {} · ", r.results.len()), t.base()),
                Span::styled(format!("caught {caught_n}"), t.ok()),
                Span::raw(format!(
                    " · recall {:.0} % · mean delay {} · false alarms {}",
                    r.recall * 100.0,
                    r.mean_delay
                        .map_or("-".into(), |d| format!("{d:.1} points")),
                    r.false_alarms
                )),
            ]));
            for (i, res) in r.results.iter().enumerate() {
                let (what, style) = if res.caught {
                    (
                        format!("caught after {} point(s)", res.delay.unwrap_or(0)),
                        t.ok(),
                    )
                } else {
                    ("missed".to_string(), t.bad())
                };
                lines.push(Line::from(vec![
                    Span::raw(format!(
                        "#{} {} {:+} ",
                        i + 1,
                        fmt_time(res.spike.timestamp),
                        (res.spike.delta * 100.0).round() / 100.0
                    )),
                    Span::styled(what, style),
                ]));
            }
        }
    }
    f.render_widget(Paragraph::new(lines), info);
}

fn draw_help(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let items: Vec<(String, &str)> = app
        .keys
        .bindings
        .iter()
        .map(|(a, keys)| {
            let ks: Vec<String> = keys.iter().map(|k| k.label()).collect();
            let ks = if *a == Action::Quit {
                format!("{}, Ctrl-C", ks.join(", "))
            } else {
                ks.join(", ")
            };
            (ks, a.describe())
        })
        .collect();
    // One column when it fits, else two.
    let cols = if items.len() as u16 + 2 <= area.height || area.width < 80 {
        1
    } else {
        2
    };
    let per = items.len().div_ceil(cols);
    let col_w: usize = 40;
    let rows: Vec<Line> = (0..per)
        .map(|r| {
            let mut spans = Vec::new();
            for c in 0..cols {
                if let Some((ks, what)) = items.get(c * per + r) {
                    spans.push(Span::styled(format!("{ks:>12}  "), t.key()));
                    spans.push(Span::raw(format!("{:<w$}", what, w = col_w - 14)));
                }
            }
            Line::from(spans)
        })
        .collect();
    let h = (rows.len() as u16 + 2).min(area.height);
    let w = ((col_w * cols) as u16 + 2).min(area.width);
    let popup = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(rows).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" keys (any key closes) ", t.title()))
                .style(Style::default()),
        ),
        popup,
    );
}
