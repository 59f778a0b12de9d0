//! Key bindings: `[tui.keys]` (parsed and checked in `pulsewatch_core::config`) mapped onto
//! crossterm's key events.

use std::collections::HashMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

pub use pulsewatch_core::config::Action;
use pulsewatch_core::config::{KeyChord, KeyName, KeysConfig};

/// A key as crossterm reports it: code and modifiers (Shift is folded into the character).
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

    /// The crossterm key of a configured chord.
    pub fn from_chord(c: KeyChord) -> Key {
        let code = match c.key {
            KeyName::Char(ch) => KeyCode::Char(ch),
            KeyName::Tab => KeyCode::Tab,
            KeyName::BackTab => KeyCode::BackTab,
            KeyName::Up => KeyCode::Up,
            KeyName::Down => KeyCode::Down,
            KeyName::Left => KeyCode::Left,
            KeyName::Right => KeyCode::Right,
            KeyName::PageUp => KeyCode::PageUp,
            KeyName::PageDown => KeyCode::PageDown,
            KeyName::Home => KeyCode::Home,
            KeyName::End => KeyCode::End,
            KeyName::Enter => KeyCode::Enter,
            KeyName::Esc => KeyCode::Esc,
        };
        Key {
            code,
            ctrl: c.ctrl,
            alt: c.alt,
        }
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
    /// The map of `[tui.keys]`; an unknown key or a key bound twice is an error naming the
    /// action's key.
    pub fn from_config(c: &KeysConfig) -> Result<Self, String> {
        let mut map = HashMap::new();
        let mut bindings = Vec::new();
        for (action, chords) in c.parsed()? {
            let keys: Vec<Key> = chords.into_iter().map(Key::from_chord).collect();
            for k in &keys {
                map.insert(*k, action);
            }
            bindings.push((action, keys));
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
        let mut c = KeysConfig::default();
        c.0.insert(Action::Pause, vec!["F13x".into()]);
        let e = KeyMap::from_config(&c).expect_err("unknown key");
        assert!(e.contains("[tui.keys] pause") && e.contains("F13x"), "{e}");
        let mut c = KeysConfig::default();
        c.0.insert(Action::Pause, vec!["q".into()]);
        let e = KeyMap::from_config(&c).expect_err("clash");
        assert!(e.contains("already bound to quit"), "{e}");
    }
}
