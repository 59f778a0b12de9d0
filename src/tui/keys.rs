//! Key bindings from `[tui.keys]`.

use std::collections::HashMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::config::KeysConfig;

/// What a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    NextTab,
    PrevTab,
    Live,
    Forecast,
    Spikes,
    Up,
    Down,
    PageUp,
    PageDown,
    Left,
    Right,
    Retrain,
    RetrainAll,
    Cancel,
    Pause,
    Faster,
    Slower,
    Model,
    Inject,
    InjectAtCursor,
    Clear,
    Help,
}

impl Action {
    /// What the help screen says.
    pub fn describe(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::NextTab => "next tab",
            Action::PrevTab => "previous tab",
            Action::Live => "Live tab",
            Action::Forecast => "Forecast tab",
            Action::Spikes => "Test spikes tab",
            Action::Up => "select previous series",
            Action::Down => "select next series",
            Action::PageUp => "page up",
            Action::PageDown => "page down",
            Action::Left => "spike cursor left",
            Action::Right => "spike cursor right",
            Action::Retrain => "retrain selected series",
            Action::RetrainAll => "retrain every series",
            Action::Cancel => "cancel retrains / close help",
            Action::Pause => "pause / resume replay",
            Action::Faster => "replay faster",
            Action::Slower => "replay slower",
            Action::Model => "switch forecast model",
            Action::Inject => "inject spikes at random",
            Action::InjectAtCursor => "inject spikes at the cursor",
            Action::Clear => "clear injected spikes",
            Action::Help => "this help",
        }
    }
}

/// A parsed key: code and modifiers (Shift is folded into the character).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
    pub alt: bool,
}

impl Key {
    pub fn from_event(e: &KeyEvent) -> Key {
        Key {
            code: e.code,
            ctrl: e.modifiers.contains(KeyModifiers::CONTROL),
            alt: e.modifiers.contains(KeyModifiers::ALT),
        }
    }

    pub fn parse(s: &str) -> Result<Key, String> {
        let mut ctrl = false;
        let mut alt = false;
        let mut rest = s;
        loop {
            let lower = rest.to_ascii_lowercase();
            if let Some(r) = lower.strip_prefix("ctrl-") {
                ctrl = true;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = lower.strip_prefix("alt-") {
                alt = true;
                rest = &rest[rest.len() - r.len()..];
            } else {
                break;
            }
        }
        let code = match rest.to_ascii_lowercase().as_str() {
            "tab" => KeyCode::Tab,
            "backtab" | "shift-tab" => KeyCode::BackTab,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "enter" => KeyCode::Enter,
            "esc" => KeyCode::Esc,
            "space" => KeyCode::Char(' '),
            _ => {
                let mut chars = rest.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => KeyCode::Char(if ctrl { c.to_ascii_lowercase() } else { c }),
                    _ => return Err(format!("unknown key {s:?}")),
                }
            }
        };
        Ok(Key { code, ctrl, alt })
    }

    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "Shift-Tab".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            other => format!("{other:?}"),
        };
        let mut s = String::new();
        if self.ctrl {
            s.push_str("Ctrl-");
        }
        if self.alt {
            s.push_str("Alt-");
        }
        s + &base
    }
}

/// Keys → actions, and actions → their keys (for the help and the footer).
#[derive(Debug, Clone)]
pub struct KeyMap {
    map: HashMap<Key, Action>,
    pub bindings: Vec<(Action, Vec<Key>)>,
}

impl KeyMap {
    pub fn from_config(c: &KeysConfig) -> Result<Self, String> {
        let table: [(Action, &str, &Vec<String>); 23] = [
            (Action::Quit, "quit", &c.quit),
            (Action::NextTab, "next_tab", &c.next_tab),
            (Action::PrevTab, "prev_tab", &c.prev_tab),
            (Action::Live, "live", &c.live),
            (Action::Forecast, "forecast", &c.forecast),
            (Action::Spikes, "spikes", &c.spikes),
            (Action::Up, "up", &c.up),
            (Action::Down, "down", &c.down),
            (Action::PageUp, "page_up", &c.page_up),
            (Action::PageDown, "page_down", &c.page_down),
            (Action::Left, "left", &c.left),
            (Action::Right, "right", &c.right),
            (Action::Retrain, "retrain", &c.retrain),
            (Action::RetrainAll, "retrain_all", &c.retrain_all),
            (Action::Cancel, "cancel", &c.cancel),
            (Action::Pause, "pause", &c.pause),
            (Action::Faster, "faster", &c.faster),
            (Action::Slower, "slower", &c.slower),
            (Action::Model, "model", &c.model),
            (Action::Inject, "inject", &c.inject),
            (
                Action::InjectAtCursor,
                "inject_at_cursor",
                &c.inject_at_cursor,
            ),
            (Action::Clear, "clear", &c.clear),
            (Action::Help, "help", &c.help),
        ];
        let mut map = HashMap::new();
        let mut bindings = Vec::new();
        for (action, name, keys) in table {
            let mut parsed = Vec::new();
            for k in keys {
                let key = Key::parse(k).map_err(|e| format!("[tui.keys] {name}: {e}"))?;
                if let Some(prev) = map.insert(key, action)
                    && prev != action
                {
                    return Err(format!(
                        "[tui.keys] {name}: key {k:?} is already bound to {}",
                        prev.describe()
                    ));
                }
                parsed.push(key);
            }
            bindings.push((action, parsed));
        }
        // Ctrl-C always quits.
        map.insert(
            Key {
                code: KeyCode::Char('c'),
                ctrl: true,
                alt: false,
            },
            Action::Quit,
        );
        Ok(KeyMap { map, bindings })
    }

    pub fn action(&self, e: &KeyEvent) -> Option<Action> {
        self.map.get(&Key::from_event(e)).copied()
    }

    /// The first key of `a`, for hints.
    pub fn hint(&self, a: Action) -> String {
        self.bindings
            .iter()
            .find(|(b, _)| *b == a)
            .and_then(|(_, k)| k.first())
            .map_or_else(|| "-".into(), Key::label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, m)
    }

    #[test]
    fn defaults_parse_and_map() {
        let km = KeyMap::from_config(&KeysConfig::default()).expect("defaults are valid");
        assert_eq!(
            km.action(&ev(KeyCode::Char('q'), KeyModifiers::NONE)),
            Some(Action::Quit)
        );
        assert_eq!(
            km.action(&ev(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            km.action(&ev(KeyCode::Char('c'), KeyModifiers::NONE)),
            Some(Action::Clear)
        );
        assert_eq!(
            km.action(&ev(KeyCode::Char('R'), KeyModifiers::SHIFT)),
            Some(Action::RetrainAll)
        );
        assert_eq!(
            km.action(&ev(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(Action::PrevTab)
        );
        assert_eq!(
            km.action(&ev(KeyCode::Char('j'), KeyModifiers::NONE)),
            Some(Action::Down)
        );
        assert_eq!(km.action(&ev(KeyCode::Char('x'), KeyModifiers::NONE)), None);
        assert_eq!(km.hint(Action::Help), "?");
    }

    #[test]
    fn bad_bindings_name_the_key() {
        let c = KeysConfig {
            pause: vec!["F13x".into()],
            ..KeysConfig::default()
        };
        let e = KeyMap::from_config(&c).expect_err("unknown key");
        assert!(e.contains("[tui.keys] pause") && e.contains("F13x"), "{e}");
        let c = KeysConfig {
            pause: vec!["q".into()],
            ..KeysConfig::default()
        };
        let e = KeyMap::from_config(&c).expect_err("clash");
        assert!(e.contains("already bound to quit"), "{e}");
    }
}
