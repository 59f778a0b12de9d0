//! The shipped config.toml: equals the built-in defaults, documents every key, and the binary
//! reports bad config clearly.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use pulsewatch_core::config::Config;

const SHIPPED: &str = include_str!("../../../../config.toml");

#[test]
fn shipped_config_equals_builtin_defaults() {
    let parsed = Config::from_toml(SHIPPED, Path::new("config.toml")).expect("config.toml parses");
    assert_eq!(parsed, Config::default());
}

#[test]
fn every_shipped_key_has_a_comment() {
    let mut prev = "";
    let mut keys = 0;
    for line in SHIPPED.lines() {
        let t = line.trim();
        if let Some((key, _)) = t.split_once(" = ")
            && !t.starts_with('#')
        {
            keys += 1;
            assert!(
                prev.starts_with('#'),
                "key `{key}` in config.toml has no comment above it"
            );
        }
        if !t.is_empty() {
            prev = t;
        }
    }
    assert!(keys >= 25, "only {keys} keys found");
}

#[test]
fn print_config_shows_env_override() {
    Command::cargo_bin("pulsewatch")
        .expect("binary")
        .current_dir(testkit::corpus::repo_root())
        .args(["--config", "config.toml", "print-config"])
        .env("PULSEWATCH_DATA_DIR", "/srv/nab")
        .assert()
        .success()
        .stdout(predicate::str::contains("dir = \"/srv/nab\""))
        .stdout(predicate::str::contains("PULSEWATCH_DATA_DIR"));
}

#[test]
fn bad_config_names_file_line_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[replay]\nspeed = 2.0\nsped = 3.0\n").expect("write");
    Command::cargo_bin("pulsewatch")
        .expect("binary")
        .arg("--config")
        .arg(&path)
        .arg("print-config")
        .assert()
        .failure()
        .stderr(predicate::str::contains("bad.toml: line 3"))
        .stderr(predicate::str::contains("sped"));
}
