//! Rendering: one function per screen region.
//!
//! ```text
//! ┌──────────────────────────────────────────────────────────────────────────────┐
//! │ header: source, replay time and speed, detector state, forecast, push, source │  draw_header
//! │ tabs:   1 Live  2 Forecast  3 Test spikes                          ? help     │  draw_tabs
//! ├──────────────────────────────────────────────────────────────────────────────┤
//! │ Live:      series table (sparkline, value, score, anomalies)                  │  draw_live_table
//! │            detail chart (values, anomaly markers, forecast band)              │  draw_detail
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

use super::app::{App, TEST_POINTS, Tab};
use super::keys::Action;
use pulsewatch_engine::engine::state::{ScoredPoint, SeriesView};
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
    let mut src = if narrow {
        format!("{} ×{}", s.source, s.series.len())
    } else {
        format!("{} {} series", s.source, s.series.len())
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
    let n = app.snap.series.len() as u16;
    let list_h = (n + 1)
        .min(area.height.saturating_mul(45) / 100)
        .max(3.min(area.height));
    let [list, detail] =
        Layout::vertical([Constraint::Length(list_h), Constraint::Min(0)]).areas(area);
    draw_live_table(f, app, list);
    if detail.height >= 3 {
        draw_detail(f, app, detail);
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
    let header_cells: Vec<&str> = if wide {
        vec!["series", "category", "recent", "value", "score", "anom"]
    } else {
        vec!["series", "recent", "value", "score", "anom"]
    };
    let header = Row::new(header_cells).style(t.dim());
    let threshold = app.snap.threshold;
    // Only the rows that fit are built (thousands of series cost no more than a screenful): the
    // window scrolls just enough to keep the selection in view, as ratatui's own would.
    let visible = usize::from(area.height.saturating_sub(1)).max(1);
    let offset = app.selected.saturating_sub(visible - 1);
    let rows: Vec<Row> = app
        .snap
        .series
        .iter()
        .skip(offset)
        .take(visible)
        .map(|s| {
            let last = s.last();
            let value = last.map_or("-".into(), |p| fmt_value(p.value));
            let score = last.map_or(0.0, |p| p.score);
            let name_style = if s.stale { t.dim() } else { t.base() };
            let name = if s.stale {
                format!("{} (stale)", s.info.name)
            } else {
                s.info.name.clone()
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
        Constraint::Length(5),
        Constraint::Length(5),
    ]);
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(t.selected());
    let mut state = TableState::default().with_selected(Some(app.selected - offset));
    f.render_stateful_widget(table, area, &mut state);
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
    let pts = s.points.tail(shown);
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
    if let (Some(f), Some(last)) = (
        s.forecast.as_ref().and_then(|f| f.forecast.as_ref()),
        pts.last(),
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
    let title = format!(
        " {} · {} · value {} · score {} (threshold {:.2}) · {} anomalies ",
        s.info.name,
        s.info.category,
        last.map_or("-".into(), |p| fmt_value(p.value)),
        last.map_or("-".into(), |p| format!("{:.2}", p.score)),
        app.snap.threshold,
        s.anomalies
    );
    let mut datasets = vec![plot_line("value", &line, t.series(), app.marker)];
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
    let info_h = 4.min(area.height.saturating_sub(3));
    let [chart_area, info] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(info_h)]).areas(area);
    let sf = s.forecast.as_deref();
    let fc = sf.and_then(|f| f.forecast.as_deref());
    let mut lines: Vec<Line> = Vec::new();
    match fc {
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
    lines.push(Line::from(vec![
        Span::styled(app.keys.hint(Action::Model), t.key()),
        Span::styled(" switch model (mstl → ets → prophet)  ", t.dim()),
        Span::styled(app.keys.hint(Action::Retrain), t.key()),
        Span::styled(" refit", t.dim()),
    ]));
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
    let y = bounds(hist.iter().chain(&lo).chain(&hi).map(|q| q.1));
    let mid = (x0 as i64 + x1 as i64) / 2;
    let datasets = vec![
        plot_line("history", &hist, t.series(), app.marker),
        plot_line("forecast", &p, t.forecast(), app.marker),
        plot_line("lower", &lo, t.band(), app.marker),
        plot_line("upper", &hi, t.band(), app.marker),
    ];
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
