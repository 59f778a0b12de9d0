//! `pulsewatch screenshots`: runs the real engine on the NAB replay (or the demo data), renders
//! each tab into ratatui's TestBackend and writes it as SVG (one `<text>` per cell, so columns
//! line up whatever the font), then PNG through `rsvg-convert` when it is installed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr, eyre};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

use super::app::{App, SPIKE_WINDOW, Tab};
use super::ui;
use pulsewatch_core::config::Config;
use pulsewatch_core::nab::demo;
use pulsewatch_engine::analysis::SpikeSpec;
use pulsewatch_engine::engine::state::Snapshot;
use pulsewatch_engine::engine::{Control, SourceSpec};
use pulsewatch_engine::services::{self as headless, Services};
use pulsewatch_engine::sources::source::SourceKind;
use pulsewatch_engine::{AnalysisRequest, EngineEvent};

/// How long the screenshots wait for the engine's analysis results.
const ANALYSIS_TIMEOUT: Duration = Duration::from_secs(120);
const CELL_W: f64 = 9.0;
const CELL_H: f64 = 19.0;
const FG: &str = "#d4d4d4";
const BG: &str = "#1e1e1e";

fn hex(c: Color, fg: bool) -> String {
    let named = match c {
        Color::Reset => return (if fg { FG } else { BG }).to_string(),
        Color::Black => "#1e1e1e",
        Color::Red => "#f44747",
        Color::Green => "#6a9955",
        Color::Yellow => "#d7ba7d",
        Color::Blue => "#569cd6",
        Color::Magenta => "#c586c0",
        Color::Cyan => "#4ec9b0",
        Color::Gray => "#a0a0a0",
        Color::DarkGray => "#6e6e6e",
        Color::LightRed => "#ff7b72",
        Color::LightGreen => "#b5cea8",
        Color::LightYellow => "#ffd700",
        Color::LightBlue => "#9cdcfe",
        Color::LightMagenta => "#d670d6",
        Color::LightCyan => "#9ef0f0",
        Color::White => "#ffffff",
        Color::Rgb(r, g, b) => return format!("#{r:02x}{g:02x}{b:02x}"),
        Color::Indexed(_) => return (if fg { FG } else { BG }).to_string(),
    };
    named.to_string()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The buffer as an SVG image.
pub fn buffer_to_svg(buf: &Buffer) -> String {
    let w = buf.area.width as f64 * CELL_W;
    let h = buf.area.height as f64 * CELL_H;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="{BG}"/>"#);
    let _ = writeln!(
        out,
        r#"<g font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="15">"#
    );
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            let Some(cell) = buf.cell((buf.area.x + x, buf.area.y + y)) else {
                continue;
            };
            let reversed = cell.modifier.contains(Modifier::REVERSED);
            let (mut fg, mut bg) = (hex(cell.fg, true), hex(cell.bg, false));
            if reversed {
                std::mem::swap(&mut fg, &mut bg);
                if cell.fg == Color::Reset {
                    bg = FG.into();
                }
                if cell.bg == Color::Reset {
                    fg = BG.into();
                }
            }
            let px = x as f64 * CELL_W;
            let py = y as f64 * CELL_H;
            if bg != BG {
                let _ = writeln!(
                    out,
                    r#"<rect x="{px}" y="{py}" width="{CELL_W}" height="{CELL_H}" fill="{bg}"/>"#
                );
            }
            let sym = cell.symbol();
            if sym.trim().is_empty() {
                continue;
            }
            let weight = if cell.modifier.contains(Modifier::BOLD) {
                r#" font-weight="bold""#
            } else {
                ""
            };
            let opacity = if cell.modifier.contains(Modifier::DIM) {
                r#" fill-opacity="0.6""#
            } else {
                ""
            };
            let _ = writeln!(
                out,
                r#"<text x="{px}" y="{}" fill="{fg}"{weight}{opacity}>{}</text>"#,
                py + CELL_H * 0.78,
                escape(sym)
            );
        }
    }
    out.push_str("</g>\n</svg>\n");
    out
}

fn render(app: &App, w: u16, h: u16) -> Result<Buffer> {
    let mut term = Terminal::new(TestBackend::new(w, h))?;
    term.draw(|f| ui::draw(f, app))?;
    Ok(term.backend().buffer().clone())
}

/// Runs the engine for `seconds` at `speed`, then writes `live`, `forecast` and `spikes` as SVG
/// (and PNG when `rsvg-convert` is found) into `out`. Returns the files written.
pub async fn write_all(
    cfg: &Config,
    out: &Path,
    seconds: u64,
    speed: f64,
    size: (u16, u16),
    series: Option<&str>,
) -> Result<Vec<PathBuf>> {
    let mut settings = headless::engine_settings(cfg, SourceKind::Nab)?;
    settings.replay.speed = speed;
    settings.replay.paused = false;
    // A demonstration run: its anomaly events are not the user's.
    settings.events_file = None;
    let demo_data = !cfg.data.dir.join("data").is_dir();
    let spec = if demo_data {
        SourceSpec::Replay {
            series: Arc::new(demo::corpus()),
            target: "built-in demo data".into(),
            loop_at_end: true,
        }
    } else {
        headless::source_spec(cfg, SourceKind::Nab)?
    };
    let services = Services::start_with(cfg, settings, spec, None, None).await?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let want = series.unwrap_or("realKnownCause/nyc_taxi.csv");
    let fits = |snap: &Snapshot| {
        snap.series
            .iter()
            .find(|s| s.info.id == want)
            .and_then(|s| s.forecast.as_ref())
            .map(|f| (f.fits, f.pending))
    };
    let before = fits(&services.engine.latest()).map_or(0, |(n, _)| n);
    services.engine.send(Control::Pause);
    services.engine.send(Control::Retrain { series: None });
    // The shown series first (as `r` does), then wait for its refit on the whole history.
    services.engine.send(Control::Retrain {
        series: Some(want.to_string()),
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    let deadline = tokio::time::Instant::now() + ANALYSIS_TIMEOUT;
    while tokio::time::Instant::now() < deadline
        && !fits(&services.engine.latest()).is_some_and(|(n, pending)| n > before && !pending)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let snap = services.engine.latest();
    let mut app = super::new_app(cfg, snap.clone())?;
    app.select_series(want);
    // The Forecast and Test spikes tabs show analysis results: ask the engine for them.
    let mut events = services.engine.events();
    let mut asked = 0;
    if let Some(s) = app.current() {
        let id = s.info.id.clone();
        if let Ok(model) = snap.forecast_model.parse() {
            services
                .engine
                .send(Control::Analyse(AnalysisRequest::Holdout {
                    series: id.clone(),
                    model,
                }));
            asked += 1;
        }
        services
            .engine
            .send(Control::Analyse(AnalysisRequest::Spikes {
                series: id,
                spec: SpikeSpec {
                    count: app.spike_count,
                    magnitude: app.spike_magnitude,
                    seed: 7,
                    at: None,
                    window: SPIKE_WINDOW,
                },
                at_back: None,
            }));
        asked += 1;
    }
    let deadline = tokio::time::Instant::now() + ANALYSIS_TIMEOUT;
    while asked > 0 {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(EngineEvent::Spikes(v))) => app.set_spikes(v),
            Ok(Ok(EngineEvent::Holdout(h))) => app.set_holdout(h),
            Ok(Ok(EngineEvent::Refused { reason, .. })) => eprintln!("screenshots: {reason}"),
            Ok(Err(_)) | Err(_) => break,
        }
        asked -= 1;
    }
    services.stop(false).await;
    if demo_data {
        app.notice = Some("DEMO DATA (no NAB corpus: run `pulsewatch fetch-nab`)".into());
    }
    app.message = None;
    std::fs::create_dir_all(out).wrap_err_with(|| format!("cannot create {}", out.display()))?;
    let mut files = Vec::new();
    for tab in Tab::ALL {
        app.tab = tab;
        let buf = render(&app, size.0, size.1)?;
        let name = match tab {
            Tab::Live => "live",
            Tab::Forecast => "forecast",
            Tab::Spikes => "spikes",
            Tab::Events => "events",
        };
        let svg = out.join(format!("{name}.svg"));
        std::fs::write(&svg, buffer_to_svg(&buf))
            .wrap_err_with(|| format!("cannot write {}", svg.display()))?;
        files.push(svg.clone());
        let png = out.join(format!("{name}.png"));
        match std::process::Command::new("rsvg-convert")
            .arg("-o")
            .arg(&png)
            .arg(&svg)
            .status()
        {
            Ok(s) if s.success() => files.push(png),
            Ok(s) => return Err(eyre!("rsvg-convert failed on {} ({s})", svg.display())),
            Err(_) => eprintln!(
                "rsvg-convert not found: wrote {} only (apt-get install librsvg2-bin for PNGs)",
                svg.display()
            ),
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::layout::Rect;
    use ratatui::style::Style;

    #[test]
    fn svg_has_one_text_per_visible_cell_with_colours() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 4, 2));
        buf.set_string(0, 0, "a<b", Style::default().fg(Color::Red));
        buf.set_string(0, 1, "x", Style::default().add_modifier(Modifier::REVERSED));
        let svg = buffer_to_svg(&buf);
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<text").count(), 4);
        assert!(svg.contains(">&lt;</text>"));
        assert!(svg.contains(r##"fill="#f44747""##));
        // Reverse video paints a background cell.
        assert!(svg.contains(&format!(r#"fill="{FG}"/>"#)));
    }
}
