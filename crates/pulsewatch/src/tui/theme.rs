//! Colours: a 16-colour ANSI theme that reads on light and dark backgrounds (no white or black
//! text, no fixed backgrounds: selection is reverse video), and a mono theme (modifiers only) for
//! `NO_COLOR` and `[tui] theme = "mono"`.

use pulsewatch_core::config::ThemeName;
use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// From `[tui] theme`; `NO_COLOR` (set and non-empty) always wins.
    pub fn from_config(name: ThemeName, no_color: bool) -> Self {
        Theme {
            color: name == ThemeName::Default && !no_color,
        }
    }

    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    pub fn base(self) -> Style {
        Style::default()
    }
    pub fn title(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    pub fn dim(self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default().add_modifier(Modifier::DIM)
        }
    }
    pub fn ok(self) -> Style {
        self.fg(Color::Green)
    }
    pub fn warn(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }
    pub fn bad(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn selected(self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    pub fn key(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    /// The series line in charts.
    pub fn series(self) -> Style {
        self.fg(Color::Cyan)
    }
    /// Forecast point and band.
    pub fn forecast(self) -> Style {
        self.fg(Color::Magenta)
    }
    pub fn band(self) -> Style {
        self.fg(Color::Blue)
    }
    /// Injected spikes.
    pub fn spike(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    /// A score's style: red at or above the threshold, yellow above half of it.
    pub fn score(self, score: f64, threshold: f64) -> Style {
        if score >= threshold {
            self.bad()
        } else if score >= threshold / 2.0 {
            self.warn()
        } else {
            self.ok()
        }
    }
}
