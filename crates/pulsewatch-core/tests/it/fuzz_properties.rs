//! The fuzz targets of `pulsewatch::fuzz`, run in CI: every committed seed, every crash the
//! coverage-guided fuzzers (`fuzz/`, cargo-fuzz) have found, and a few hundred structured
//! inputs per target from proptest. The long runs are local: see fuzz/README.md.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use pulsewatch_core::fuzz;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 5] = [
    ("nab_csv", fuzz::nab_csv),
    ("labels_json", fuzz::labels_json),
    ("config_toml", fuzz::config_toml),
    ("query_range", fuzz::query_range),
    ("grouping_key", fuzz::grouping_key),
];

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn seeds_and_found_crashes_pass_every_target() {
    let root = testkit::corpus::repo_root().join("fuzz");
    let mut seeds = 0;
    for (name, target) in TARGETS {
        let seed_files = files_under(&root.join("seeds").join(name));
        assert!(!seed_files.is_empty(), "no seeds for fuzz target {name}");
        seeds += seed_files.len();
        for file in seed_files
            .iter()
            .chain(&files_under(&root.join("regressions").join(name)))
        {
            let data = std::fs::read(file).expect("read a committed fuzz input");
            let result = std::panic::catch_unwind(|| target(&data));
            assert!(
                result.is_ok(),
                "fuzz target {name} fails on {}",
                file.display()
            );
        }
    }
    assert!(seeds >= 10, "only {seeds} seeds");
}

/// The accepted examples must stay accepted: a target that rejected everything would pass the
/// properties below without testing the parsers' success paths.
#[test]
fn valid_seeds_are_accepted() {
    let root = testkit::corpus::repo_root().join("fuzz/seeds");
    let csv = std::fs::read(root.join("nab_csv/plain.csv")).expect("seed");
    let parsed = pulsewatch_core::nab::parse_series_csv(&csv, Path::new("plain.csv"))
        .expect("plain.csv parses");
    assert_eq!(parsed.1, vec![20.5, 21.0, -325.0]);
    let text = std::fs::read_to_string(root.join("config_toml/default.toml")).expect("seed");
    let cfg = pulsewatch_core::config::Config::from_toml(&text, Path::new("default.toml"))
        .expect("default config parses");
    fuzz::validate(&cfg).expect("default config validates");
    let body = std::fs::read(root.join("query_range/matrix.json")).expect("seed");
    let q = pulsewatch_core::config::NamedQuery::new("up", "up");
    let series = pulsewatch_core::prom::parse_query_range(&q, "http://x", 200, &body[1..])
        .expect("matrix answer parses");
    assert_eq!(series.len(), 1);
    assert_eq!(
        series[0].points.len(),
        2,
        "NaN and +Inf samples are dropped"
    );
}

fn csv_line() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "20(1[3-5]|99)-(0[1-9]|1[0-2]|13)-([0-2][0-9]|3[0-2]) ([01][0-9]|2[0-4]):[0-6][0-9]:[0-6][0-9],-?[0-9]{1,6}(\\.[0-9]{0,4})?(e[+-]?[0-9]{1,3})?",
        1 => "2014-04-01 00:00:00,(NaN|nan|inf|-inf|Infinity|1e999|0x10|1_000| 5 |)",
        1 => "[ -~]{0,30}",
        1 => "\"[^\"]{0,10}\"?,[0-9,\"]{0,6}",
        1 => "\\PC{0,12}",
    ]
}

fn csv_file() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            6 => Just("timestamp,value".to_string()),
            1 => "(timestamp|value|time|\u{feff}timestamp)(,value)?(,extra)?",
        ],
        prop::collection::vec(csv_line(), 0..25),
        prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
        any::<bool>(),
    )
        .prop_map(|(header, rows, eol, final_eol)| {
            let mut s = header;
            for r in rows {
                s.push_str(eol);
                s.push_str(&r);
            }
            if final_eol {
                s.push_str(eol);
            }
            s.into_bytes()
        })
}

fn label_ts() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        6 => "2014-01-01 0[0-6]:[0-5][05]:00(\\.0{1,6})?".prop_map(serde_json::Value::from),
        1 => "2014-01-0[0-3] [0-9:. ]{0,12}".prop_map(serde_json::Value::from),
        1 => any::<i64>().prop_map(serde_json::Value::from),
        1 => Just(serde_json::Value::Null),
    ]
}

fn labels_file() -> impl Strategy<Value = Vec<u8>> {
    let window = prop_oneof![
        8 => (label_ts(), label_ts()).prop_map(|(a, b)| serde_json::json!([a, b])),
        1 => prop::collection::vec(label_ts(), 0..4).prop_map(serde_json::Value::from),
        1 => label_ts(),
    ];
    let key = prop_oneof![Just("x/input.csv".to_string()), "[a-z/._]{0,12}"];
    prop_oneof![
        8 => prop::collection::btree_map(key, prop::collection::vec(window, 0..4), 0..3)
            .prop_map(|m| serde_json::to_vec_pretty(&m).unwrap_or_default()),
        1 => "[\\[\\]{}\",: 0-9a-z\\n]{0,40}".prop_map(String::into_bytes),
    ]
}

/// The default config with one value replaced by something a user might type.
fn config_file() -> impl Strategy<Value = Vec<u8>> {
    let default = pulsewatch_core::config::Config::default().to_toml();
    let lines: Vec<String> = default.lines().map(str::to_string).collect();
    let assignable: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains(" = "))
        .map(|(i, _)| i)
        .collect();
    let value = prop_oneof![
        "-?[0-9]{1,4}(\\.[0-9]{1,3})?",
        "\"-?[0-9]{0,4}(ns|us|ms|s|m|h|d|w|y|x)?\"",
        "\"[ -~]{0,16}\"",
        "(true|false|nan|inf|-inf|-0\\.0|1e400|\\[\\]|\\{\\}|\\[\"q\"\\]|\"\")",
        "\"(http|https|ftp|)://[a-z0-9.:\\[\\]/@%]{0,20}\"",
    ];
    (
        prop::sample::select(assignable),
        value,
        prop::option::of("[a-z_]{1,10} = [0-9\"a-z]{1,5}"),
    )
        .prop_map(move |(i, v, extra)| {
            let mut out = lines.clone();
            let key = out[i].split(" = ").next().unwrap_or_default().to_string();
            out[i] = format!("{key} = {v}");
            if let Some(e) = extra {
                out.insert(i + 1, e);
            }
            out.join("\n").into_bytes()
        })
}

fn sample() -> impl Strategy<Value = serde_json::Value> {
    let value = prop_oneof![
        "-?[0-9]{1,5}(\\.[0-9]{1,3})?(e[+-]?[0-9]{1,3})?".prop_map(serde_json::Value::from),
        "(NaN|\\+Inf|-Inf|x|)".prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
    ];
    let ts = prop_oneof![
        (1_600_000_000i64..1_800_000_000).prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        "[0-9]{1,10}".prop_map(serde_json::Value::from),
    ];
    prop_oneof![
        8 => (ts, value).prop_map(|(t, v)| serde_json::json!([t, v])),
        1 => Just(serde_json::json!([1])),
        1 => Just(serde_json::json!({})),
    ]
}

fn query_answer() -> impl Strategy<Value = Vec<u8>> {
    let labels = prop::collection::btree_map("(__name__|[a-z]{1,6})", "\\PC{0,8}", 0..4);
    let series = (labels, prop::collection::vec(sample(), 0..6))
        .prop_map(|(metric, values)| serde_json::json!({"metric": metric, "values": values}));
    (
        any::<u8>(),
        prop_oneof![Just("success"), Just("error"), Just("")],
        prop_oneof![Just("matrix"), Just("vector"), Just("scalar")],
        prop::collection::vec(series, 0..4),
        any::<bool>(),
    )
        .prop_map(|(status, st, rt, result, truncate)| {
            let body = serde_json::json!({
                "status": st,
                "data": {"resultType": rt, "result": result},
                "errorType": "bad_data",
                "error": "boom",
            });
            let mut bytes = vec![status];
            let text = body.to_string().into_bytes();
            let keep = if truncate { text.len() / 2 } else { text.len() };
            bytes.extend_from_slice(&text[..keep]);
            bytes
        })
}

fn grouping_input() -> impl Strategy<Value = Vec<u8>> {
    let part = prop_oneof![
        "[A-Za-z0-9_.-]{0,8}",
        "(\\.|\\.\\.|/|%2F|=|@base64|\\?|#| )",
        "\\PC{0,6}",
    ];
    prop::collection::vec(part, 1..6).prop_map(|parts| parts.join("\0").into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn nab_csv_inputs(data in csv_file()) {
        fuzz::nab_csv(&data);
    }

    #[test]
    fn labels_json_inputs(data in labels_file()) {
        fuzz::labels_json(&data);
    }

    #[test]
    fn config_toml_inputs(data in config_file()) {
        fuzz::config_toml(&data);
    }

    #[test]
    fn query_range_inputs(data in query_answer()) {
        fuzz::query_range(&data);
    }

    #[test]
    fn grouping_key_inputs(data in grouping_input()) {
        fuzz::grouping_key(&data);
    }

    #[test]
    fn arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..200)) {
        for (_, target) in TARGETS {
            target(&data);
        }
    }
}
