//! The NAB corpus reader: the real corpus with its quirks, and one clear error per bad input.

use testkit::corpus;

use std::fs;
use std::path::{Path, PathBuf};

use pulsewatch_core::eval::scorer::probationary_len;
use pulsewatch_core::nab::{Corpus, format_timestamp};

#[test]
fn loads_whole_corpus_with_documented_totals() {
    let Some(root) = corpus::nab_root() else {
        return;
    };
    let c = Corpus::load(&root).expect("corpus loads");
    assert_eq!(c.series.len(), 58);
    assert_eq!(c.total_rows(), 365_558);
    assert_eq!(c.total_windows(), 116);
    let categories: std::collections::BTreeSet<&str> =
        c.series.iter().map(|s| s.category.as_str()).collect();
    assert_eq!(categories.len(), 7);
    let empty: Vec<&str> = c
        .series
        .iter()
        .zip(&c.windows)
        .filter(|(_, w)| w.is_empty())
        .map(|(s, _)| s.key.as_str())
        .collect();
    assert_eq!(empty.len(), 6, "{empty:?}");
    let (mut prob, mut scored, mut inside) = (0, 0, 0);
    for (s, ws) in c.series.iter().zip(&c.windows) {
        let p = probationary_len(s.len());
        prob += p;
        scored += s.len() - p;
        for w in ws {
            assert!(w.first_row >= p, "{} window starts in probation", s.key);
            inside += w.last_row - w.first_row + 1;
        }
    }
    assert_eq!((prob, scored, inside), (32_716, 332_842, 33_495));
}

/// Rows = non-empty lines minus the header, counted independently of the CSV reader.
fn line_rows(path: &Path) -> usize {
    let text = fs::read_to_string(path).expect("read");
    text.split('\n').filter(|l| !l.trim().is_empty()).count() - 1
}

#[test]
fn crlf_and_missing_final_newline_files_keep_every_row() {
    let Some(root) = corpus::nab_root() else {
        return;
    };
    let c = Corpus::load(&root).expect("corpus loads");
    let quirky = [
        "realAdExchange/exchange-2_cpc_results.csv",
        "realKnownCause/rogue_agent_key_hold.csv",
        "realKnownCause/rogue_agent_key_updown.csv",
        "realKnownCause/nyc_taxi.csv",
        "realTraffic/TravelTime_387.csv",
        "realTraffic/speed_t4013.csv",
    ];
    for key in quirky {
        let s = c.series.iter().find(|s| s.key == key).expect(key);
        let path = root.join("data").join(key);
        assert_eq!(s.len(), line_rows(&path), "{key}");
        let text = fs::read_to_string(&path).expect("read");
        let last = text
            .trim_end()
            .rsplit('\n')
            .next()
            .expect("last line")
            .trim_end();
        let (ts, v) = last.split_once(',').expect("two fields");
        assert_eq!(
            format_timestamp(*s.timestamps.last().expect("rows")),
            ts,
            "{key}"
        );
        assert_eq!(
            *s.values.last().expect("rows"),
            v.parse::<f64>().expect("f64"),
            "{key}"
        );
    }
    assert_eq!(
        c.series
            .iter()
            .find(|s| s.key == "realKnownCause/nyc_taxi.csv")
            .map(|s| s.len()),
        Some(10_320)
    );
}

#[test]
fn duplicate_and_backwards_timestamps_are_kept_in_file_order() {
    let Some(root) = corpus::nab_root() else {
        return;
    };
    let c = Corpus::load(&root).expect("corpus loads");
    let get = |k: &str| c.series.iter().find(|s| s.key == k).expect(k);
    let dst = pulsewatch_core::nab::parse_timestamp(b"2014-03-09 03:00:00").expect("ts");
    for key in [
        "realAWSCloudwatch/ec2_disk_write_bytes_1ef3de.csv",
        "realAWSCloudwatch/ec2_network_in_5abac7.csv",
        "realKnownCause/ec2_request_latency_system_failure.csv",
    ] {
        assert_eq!(
            get(key).timestamps.iter().filter(|&&t| t == dst).count(),
            12,
            "{key}"
        );
    }
    let m = get("realKnownCause/machine_temperature_system_failure.csv");
    let backwards: Vec<usize> = (1..m.len())
        .filter(|&i| m.timestamps[i] < m.timestamps[i - 1])
        .collect();
    assert_eq!(backwards, vec![10_149]);
    assert_eq!(
        format_timestamp(m.timestamps[10_148]),
        "2014-01-07 02:55:00"
    );
    assert_eq!(
        format_timestamp(m.timestamps[10_149]),
        "2014-01-07 02:00:00"
    );
}

/// A one-file corpus in a temp dir: `data/cat/f.csv` with `csv`, and `labels` as the windows JSON.
fn mini(csv: &[u8], labels: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    fs::create_dir_all(root.join("data/cat")).expect("mkdir");
    fs::create_dir_all(root.join("labels")).expect("mkdir");
    fs::write(root.join("data/cat/f.csv"), csv).expect("write");
    fs::write(root.join("labels/combined_windows.json"), labels).expect("write");
    (dir, root)
}

const GOOD: &[u8] =
    b"timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01 00:05:00,2\n2014-01-01 00:10:00,3\n";
const NO_WINDOWS: &str = r#"{"cat/f.csv": []}"#;

fn load_err(csv: &[u8], labels: &str) -> String {
    let (_d, root) = mini(csv, labels);
    Corpus::load(&root).expect_err("must fail").to_string()
}

#[track_caller]
fn assert_names(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "error {msg:?} should contain {p:?}");
    }
}

#[test]
fn good_mini_corpus_loads() {
    let (_d, root) = mini(
        GOOD,
        r#"{"cat/f.csv": [["2014-01-01 00:05:00.000000", "2014-01-01 00:10:00.000000"]]}"#,
    );
    let c = Corpus::load(&root).expect("loads");
    assert_eq!(c.windows[0][0].first_row, 1);
    assert_eq!(c.windows[0][0].last_row, 2);
}

#[test]
fn bad_csv_input_names_file_and_line() {
    let cases: &[(&[u8], &[&str])] = &[
        (b"", &["f.csv:1:", "empty file"]),
        (
            b"time,value\n2014-01-01 00:00:00,1\n",
            &["f.csv:1:", "expected header"],
        ),
        (b"2014-01-01 00:00:00,1\n", &["f.csv:1:", "expected header"]),
        (b"timestamp,value\n", &["f.csv:2:", "no data rows"]),
        (
            b"timestamp,value\n2014-01-01 00:00:00,1\n2014-13-01 00:00:00,1\n",
            &["f.csv:3:", "bad timestamp"],
        ),
        (
            b"timestamp,value\n2014-01-01T00:00:00,1\n",
            &["f.csv:2:", "bad timestamp"],
        ),
        (
            b"timestamp,value\n2014-01-01 00:00:00,abc\n",
            &["f.csv:2:", "not a number"],
        ),
        (
            b"timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01 00:05:00,NaN\n",
            &["f.csv:3:", "not finite"],
        ),
        (
            b"timestamp,value\n2014-01-01 00:00:00,inf\n",
            &["f.csv:2:", "not finite"],
        ),
        (
            b"timestamp,value\n2014-01-01 00:00:00,1,7\n",
            &["f.csv:2:", "expected 2 fields"],
        ),
        (
            b"timestamp,value\n2014-01-01 00:00:00\n",
            &["f.csv:2:", "expected 2 fields"],
        ),
        (
            b"\xEF\xBB\xBFtimestamp,value\n2014-01-01 00:00:00,1\n",
            &["f.csv:1:", "byte-order mark"],
        ),
    ];
    for (csv, parts) in cases {
        let msg = load_err(csv, NO_WINDOWS);
        assert_names(&msg, parts);
        assert_names(&msg, &["data/cat/f.csv"]);
    }
}

#[test]
fn bad_labels_name_file_and_key() {
    let w = |s: &str| format!(r#"{{"cat/f.csv": {s}}}"#);
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            w(r#"[["2014-01-01 00:07:00.000000", "2014-01-01 00:10:00.000000"]]"#),
            vec![
                "combined_windows.json",
                "key \"cat/f.csv\"",
                "2014-01-01 00:07:00",
                "not a timestamp of the data file",
            ],
        ),
        (
            w(r#"[["2014-01-01 00:05:00.000000", "2015-01-01 00:10:00.000000"]]"#),
            vec![
                "combined_windows.json",
                "key \"cat/f.csv\"",
                "end 2015-01-01 00:10:00",
            ],
        ),
        (
            w(r#"[["yesterday", "today"]]"#),
            vec!["key \"cat/f.csv\"", "bad timestamp"],
        ),
        (
            w(r#"[["2014-01-01 00:05:00.000000"]]"#),
            vec!["key \"cat/f.csv\"", "expected [start, end]"],
        ),
        (
            w(r#""none""#),
            vec!["key \"cat/f.csv\"", "list of [start, end]"],
        ),
        (
            w(r#"[["2014-01-01 00:10:00.000000", "2014-01-01 00:05:00.000000"]]"#),
            vec!["key \"cat/f.csv\"", "is after end"],
        ),
        (
            r#"{}"#.to_string(),
            vec!["data/cat/f.csv", "no key \"cat/f.csv\""],
        ),
        (
            r#"{"cat/f.csv": [], "cat/g.csv": []}"#.to_string(),
            vec!["combined_windows.json", "key \"cat/g.csv\"", "no data file"],
        ),
        (
            r#"{"cat/f.csv": [}"#.to_string(),
            vec!["combined_windows.json:1:", "invalid JSON"],
        ),
    ];
    for (labels, parts) in cases {
        let msg = load_err(GOOD, &labels);
        assert_names(&msg, &parts);
    }
}

#[test]
fn bad_profiles_and_thresholds_name_the_key() {
    let (_d, root) = mini(GOOD, NO_WINDOWS);
    fs::create_dir_all(root.join("config")).expect("mkdir");
    fs::write(
        root.join("config/profiles.json"),
        r#"{"standard": {"CostMatrix": {"tpWeight": 1.0}}}"#,
    )
    .expect("w");
    fs::write(
        root.join("config/thresholds.json"),
        r#"{"det": {"standard": {"threshold": "x", "score": 1}}}"#,
    )
    .expect("w");
    let c = Corpus::load(&root).expect("loads");
    assert_names(
        &c.profiles().expect_err("bad").to_string(),
        &["profiles.json", "key \"standard\"", "fpWeight"],
    );
    assert_names(
        &c.thresholds().expect_err("bad").to_string(),
        &["thresholds.json", "key \"det\""],
    );
}
