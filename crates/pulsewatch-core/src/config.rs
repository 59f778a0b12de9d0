//! One config file for everything, layered:
//!
//! 1. built-in defaults ([`Config::default`], identical to the shipped `config.toml`);
//! 2. the file: `--config PATH`, else `./config.toml`, else `$XDG_CONFIG_HOME/pulsewatch/config.toml`
//!    (a partial file is fine; unknown keys are rejected);
//! 3. environment overrides `PULSEWATCH_<SECTION>_<KEY>` (e.g. `PULSEWATCH_DATA_DIR`,
//!    `PULSEWATCH_PUSHGATEWAY_URL`, `PULSEWATCH_DETECTOR_WINDOWED_GAUSSIAN_WINDOW`), for secrets and CI.
//!
//! A bad file gives one error naming the file, the line and the key; a bad environment override
//! names the variable.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::{DetectorKind, ModelKind, Named, SourceKind};
use crate::forecast::{ProphetOptimizer, SeasonalityMode};

/// Environment variable prefix for overrides.
pub const ENV_PREFIX: &str = "PULSEWATCH_";
/// Environment variables with the prefix that are not config keys.
/// `PULSEWATCH_*` variables that are not config keys: the config file's path, and the debug
/// builds' deliberate panic (for the terminal-restore test).
const ENV_RESERVED: &[&str] = &["PULSEWATCH_CONFIG", "PULSEWATCH_DEBUG_PANIC"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {msg}", path.display())]
    Parse { path: PathBuf, msg: String },
    #[error("environment variable {var}: {msg}")]
    Env { var: String, msg: String },
    /// A value the checks refuse; `origin` says where the config came from.
    #[error("{origin}: {msg}")]
    Invalid { origin: String, msg: String },
}

/// A duration written like `250ms`, `15s`, `5m`, `1h`, `1d` (humantime syntax); `0s` means off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub const fn secs(s: u64) -> Self {
        HumanDuration(Duration::from_secs(s))
    }
    pub const fn millis(ms: u64) -> Self {
        HumanDuration(Duration::from_millis(ms))
    }
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            return f.write_str("0s");
        }
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "0" {
            return Ok(HumanDuration(Duration::ZERO));
        }
        humantime::parse_duration(s)
            .map(HumanDuration)
            .map_err(|e| format!("invalid duration {s:?} ({e}); write e.g. 250ms, 15s, 5m, 1h, 1d"))
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub source: SourceConfig,
    pub data: DataConfig,
    pub replay: ReplayConfig,
    pub prometheus: PrometheusConfig,
    pub host: HostConfig,
    pub pushgateway: PushgatewayConfig,
    pub api: ApiConfig,
    pub detector: DetectorConfig,
    pub forecast: ForecastConfig,
    pub retrain: RetrainConfig,
    pub events: EventsConfig,
    pub tui: TuiConfig,
    pub logging: LoggingConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// Where series come from: "nab" (replay of the NAB corpus), "prometheus" (PromQL
    /// query_range polls) or "host" (this machine's CPU, memory and network).
    pub kind: SourceKind,
    /// Newest points per series the engine keeps for the UI, the API and retraining.
    pub history: usize,
    /// "k/n": take only the series whose id hashes to k modulo n (see `shard`); "" = all.
    pub shard: String,
}
impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            kind: SourceKind::Nab,
            history: 2000,
            shard: String::new(),
        }
    }
}
impl SourceConfig {
    /// The shard setting, parsed; errors name the key.
    pub fn shard(&self) -> Result<Option<crate::shard::Shard>, String> {
        crate::shard::Shard::parse_setting(&self.shard).map_err(|e| format!("[source] shard: {e}"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    /// How often this machine's metrics are sampled.
    pub interval: HumanDuration,
}
impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            interval: HumanDuration::secs(5),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address of the /metrics endpoint and JSON API ("" = off; `--listen ADDR` overrides).
    pub listen: String,
    /// Bearer token required by the API's POST endpoints ("" = none).
    pub token: String,
    /// File holding that token (one trailing newline ignored); excludes `token`.
    pub token_file: PathBuf,
}

impl ApiConfig {
    /// The POST endpoints' token, from `token` or `token_file` (`None` = no token).
    pub fn resolved_token(&self) -> Result<Option<String>, String> {
        let t = secret("[api] token", &self.token, &self.token_file)?;
        Ok((!t.is_empty()).then_some(t))
    }
}

/// A secret given inline (`key`) or in a file (`key_file`), never both. The file's content is
/// taken as is but for one trailing newline (as `echo` and secret mounts write it); an empty file
/// is an error, since it is never what was meant. Errors name the key and the file, never the
/// secret.
pub fn secret(key: &str, inline: &str, file: &Path) -> Result<String, String> {
    if file.as_os_str().is_empty() {
        return Ok(inline.to_string());
    }
    if !inline.is_empty() {
        return Err(format!("{key} and {key}_file are both set; keep one"));
    }
    let text =
        std::fs::read_to_string(file).map_err(|e| format!("{key}_file {}: {e}", file.display()))?;
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if text.is_empty() {
        return Err(format!("{key}_file {}: the file is empty", file.display()));
    }
    Ok(text.to_string())
}

/// One named PromQL query of the Prometheus source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedQuery {
    /// Short name; every result series is called `<name>{<labels>}`.
    pub name: String,
    /// The PromQL expression.
    pub query: String,
    /// Capacity threshold for every series of this query: time to rising to `above`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// ... or to falling to `below` (at most one of the two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
}

impl NamedQuery {
    /// A query without a threshold.
    pub fn new(name: &str, query: &str) -> Self {
        NamedQuery {
            name: name.into(),
            query: query.into(),
            above: None,
            below: None,
        }
    }
}

/// One `[[forecast.thresholds]]` entry: a series pattern and the value it must not cross.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdConfig {
    /// A series id; `*` matches any run of characters (`"disk_used*"`).
    pub series: String,
    /// Time to rising to this value...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// ... or to falling to this one (exactly one of the two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
}

/// Default queries: node-exporter on Linux, with `or` variants for windows_exporter.
pub fn default_queries() -> Vec<NamedQuery> {
    vec![
        NamedQuery::new(
            "cpu_busy",
            "1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[1m])) or \
             1 - avg by (instance) (rate(windows_cpu_time_total{mode=\"idle\"}[1m]))",
        ),
        NamedQuery::new(
            "memory_used",
            "1 - sum by (instance) (node_memory_MemAvailable_bytes) / sum by (instance) (node_memory_MemTotal_bytes) or \
             1 - sum by (instance) (windows_memory_available_bytes) / sum by (instance) (windows_cs_physical_memory_bytes)",
        ),
        NamedQuery::new(
            "network_errors",
            "sum by (instance) (rate(node_network_receive_errs_total[1m]) + \
             rate(node_network_transmit_errs_total[1m])) or \
             sum by (instance) (rate(windows_net_packets_received_errors_total[1m]) + \
             rate(windows_net_packets_outbound_errors_total[1m]))",
        ),
    ]
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Root of the NAB corpus (data/, labels/, config/).
    pub dir: PathBuf,
}
impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dir: PathBuf::from("data/nab"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplayConfig {
    /// Points per second replayed per series.
    pub speed: f64,
    /// Start paused.
    pub paused: bool,
    /// Start again from the first row when a series ends.
    pub loop_at_end: bool,
}
impl ReplayConfig {
    pub fn validate(&self) -> Result<(), String> {
        let speed = self.speed;
        if !(speed.is_finite() && speed > 0.0) {
            return Err(format!(
                "[replay] speed {speed} must be a positive number of points per second"
            ));
        }
        Ok(())
    }
}

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig {
            speed: 10.0,
            paused: false,
            loop_at_end: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusConfig {
    /// Base URL of the Prometheus server to poll with query_range.
    pub url: String,
    /// query_range step.
    pub step: HumanDuration,
    /// How far back each poll reads.
    pub window: HumanDuration,
    /// Per-request timeout.
    pub timeout: HumanDuration,
    /// Named PromQL queries; each result series becomes a monitored series.
    pub queries: Vec<NamedQuery>,
    /// Basic-auth user name ("" = none).
    pub username: String,
    /// Basic-auth password ("" = none); prefer PULSEWATCH_PROMETHEUS_PASSWORD or `password_file`.
    pub password: String,
    /// File holding the basic-auth password (one trailing newline ignored); excludes `password`.
    pub password_file: PathBuf,
    /// Bearer token ("" = none); prefer PULSEWATCH_PROMETHEUS_BEARER_TOKEN or `bearer_token_file`.
    pub bearer_token: String,
    /// File holding the bearer token (one trailing newline ignored); excludes `bearer_token`.
    pub bearer_token_file: PathBuf,
    /// Extra HTTP headers on every query, e.g. `{ "X-Scope-OrgID" = "tenant-a" }` for a Mimir or
    /// Cortex tenant.
    pub headers: BTreeMap<String, String>,
    /// PEM file of CA certificates to trust for an https url, besides the system's ("" = none).
    pub ca_file: PathBuf,
}

/// Header names whose values `print-config` hides (they usually carry credentials).
pub fn secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "authorization"
        || n == "cookie"
        || ["token", "key", "secret", "auth", "password"]
            .iter()
            .any(|w| n.contains(w))
}

/// The longest `[prometheus] window` accepted.
pub const MAX_PROMETHEUS_WINDOW: Duration = Duration::from_secs(366 * 86_400);

impl PrometheusConfig {
    /// Checks `[prometheus]`; errors name the key.
    pub fn validate(&self) -> Result<(), String> {
        let url = self.url.trim_end_matches('/').to_string();
        let parsed = url::Url::parse(&url).map_err(|e| format!("[prometheus] url {url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "[prometheus] url {url:?}: only http and https are supported (e.g. \"http://{url}\")"
            ));
        }
        if self.window.0 > MAX_PROMETHEUS_WINDOW {
            return Err(format!(
                "[prometheus] window {} is longer than the most a query_range may span here (366d)",
                self.window
            ));
        }
        if self.step.0 < Duration::from_secs(1) {
            return Err(format!(
                "[prometheus] step {} is below Prometheus' 1s resolution",
                self.step
            ));
        }
        if self.window.0 < self.step.0 {
            return Err(format!(
                "[prometheus] window {} is shorter than step {}",
                self.window, self.step
            ));
        }
        if self.queries.is_empty() {
            return Err("[prometheus] queries is empty: nothing to poll".into());
        }
        let token = secret(
            "[prometheus] bearer_token",
            &self.bearer_token,
            &self.bearer_token_file,
        )?;
        let password = secret("[prometheus] password", &self.password, &self.password_file)?;
        if !token.is_empty() && (!self.username.is_empty() || !password.is_empty()) {
            return Err(
                "[prometheus] bearer_token and username/password are both set; keep one".into(),
            );
        }
        if !password.is_empty() && self.username.is_empty() {
            return Err("[prometheus] password is set but username is empty".into());
        }
        for (name, value) in &self.headers {
            http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("[prometheus.headers] {name:?} is not an HTTP header name"))?;
            http::HeaderValue::from_str(value).map_err(|_| {
                format!("[prometheus.headers] {name}: the value is not a valid HTTP header value")
            })?;
        }
        if !self.ca_file.as_os_str().is_empty() && !self.ca_file.is_file() {
            return Err(format!(
                "[prometheus] ca_file {}: no such file",
                self.ca_file.display()
            ));
        }
        let mut names = std::collections::HashSet::new();
        for q in &self.queries {
            if q.name.trim().is_empty() || q.query.trim().is_empty() {
                return Err("[[prometheus.queries]]: every query needs a name and a query".into());
            }
            if !names.insert(q.name.as_str()) {
                return Err(format!(
                    "[[prometheus.queries]]: the name {:?} is used twice",
                    q.name
                ));
            }
        }
        Ok(())
    }
}
impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            url: "http://127.0.0.1:9090".into(),
            step: HumanDuration::secs(15),
            window: HumanDuration::secs(3600),
            timeout: HumanDuration::secs(10),
            queries: default_queries(),
            username: String::new(),
            password: String::new(),
            password_file: PathBuf::new(),
            bearer_token: String::new(),
            bearer_token_file: PathBuf::new(),
            headers: BTreeMap::new(),
            ca_file: PathBuf::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushgatewayConfig {
    /// Base URL of the Pushgateway.
    pub url: String,
    /// The `job` grouping label.
    pub job: String,
    /// Per-request timeout.
    pub timeout: HumanDuration,
    /// Delete our groups when a long-running replay or the TUI exits.
    pub delete_on_exit: bool,
    /// Basic-auth user name ("" = none).
    pub username: String,
    /// Basic-auth password ("" = none); prefer PULSEWATCH_PUSHGATEWAY_PASSWORD.
    pub password: String,
    /// Bearer token ("" = none); prefer PULSEWATCH_PUSHGATEWAY_BEARER_TOKEN.
    pub bearer_token: String,
    /// File holding the basic-auth password (one trailing newline ignored); excludes `password`.
    pub password_file: PathBuf,
    /// File holding the bearer token (one trailing newline ignored); excludes `bearer_token`.
    pub bearer_token_file: PathBuf,
}
impl PushgatewayConfig {
    /// Checks `[pushgateway]` (an empty url turns export off); errors name the key, never a
    /// secret.
    pub fn validate(&self) -> Result<(), String> {
        let base = self.url.trim();
        if base.is_empty() {
            return Ok(());
        }
        let parsed = url::Url::parse(base)
            .map_err(|e| format!("[pushgateway] url {base:?} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "[pushgateway] url {base:?}: only http and https are supported"
            ));
        }
        if self.job.trim().is_empty() {
            return Err("[pushgateway] job must not be empty".into());
        }
        secret(
            "[pushgateway] bearer_token",
            &self.bearer_token,
            &self.bearer_token_file,
        )?;
        secret(
            "[pushgateway] password",
            &self.password,
            &self.password_file,
        )?;
        Ok(())
    }
}

impl Default for PushgatewayConfig {
    fn default() -> Self {
        PushgatewayConfig {
            url: "http://127.0.0.1:9091".into(),
            job: "pulsewatch".into(),
            timeout: HumanDuration::secs(5),
            delete_on_exit: true,
            username: String::new(),
            password: String::new(),
            bearer_token: String::new(),
            password_file: PathBuf::new(),
            bearer_token_file: PathBuf::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// Detector used by the TUI and headless mode.
    pub name: DetectorKind,
    /// Anomaly flag threshold on the [0,1] score.
    pub threshold: f64,
    /// `pulse`'s constants (what `pulsewatch tune` prints; the defaults are its choice on NAB).
    pub pulse: crate::detect::pulse::PulseParams,
    pub windowed_gaussian: WindowedGaussianConfig,
    pub isolation_forest: IsolationForestConfig,
    pub lstm_ae: LstmAeConfig,
}
impl DetectorConfig {
    /// Range checks of every detector setting (a 0 or an absurd size is always a typo, and some
    /// would exhaust memory). Errors name the key.
    pub fn validate(&self) -> Result<(), String> {
        fn within<T: PartialOrd + fmt::Display>(
            key: &str,
            v: T,
            lo: T,
            hi: T,
        ) -> Result<(), String> {
            if v >= lo && v <= hi {
                Ok(())
            } else {
                Err(format!("{key} = {v} is outside {lo}..={hi}"))
            }
        }
        fn positive(key: &str, v: f64) -> Result<(), String> {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("{key} = {v} must be a positive number"))
            }
        }
        within("[detector] threshold", self.threshold, 0.0, 1.0)?;
        self.pulse.validate()?;
        let g = &self.windowed_gaussian;
        within(
            "[detector.windowed_gaussian] window",
            g.window,
            2,
            10_000_000,
        )?;
        within("[detector.windowed_gaussian] step", g.step, 1, g.window)?;
        let f = &self.isolation_forest;
        within("[detector.isolation_forest] trees", f.trees, 1, 10_000)?;
        within(
            "[detector.isolation_forest] sample_size",
            f.sample_size,
            2,
            1 << 20,
        )?;
        within("[detector.isolation_forest] window", f.window, 1, 10_000)?;
        within("[detector.isolation_forest] train", f.train, 1, 10_000_000)?;
        within(
            "[detector.isolation_forest] refit_every",
            f.refit_every,
            0,
            10_000_000,
        )?;
        within(
            "[detector.isolation_forest] threshold",
            f.threshold,
            0.0,
            1.0,
        )?;
        f.calibration
            .validate("[detector.isolation_forest.calibration]")?;
        let l = &self.lstm_ae;
        within("[detector.lstm_ae] sequence", l.sequence, 2, 10_000)?;
        within("[detector.lstm_ae] hidden", l.hidden, 1, 4096)?;
        within("[detector.lstm_ae] epochs", l.epochs, 1, 100_000)?;
        within("[detector.lstm_ae] batch", l.batch, 1, 1 << 20)?;
        within("[detector.lstm_ae] train", l.train, 1, 10_000_000)?;
        positive("[detector.lstm_ae] learning_rate", l.learning_rate)?;
        positive("[detector.lstm_ae] threshold", l.threshold)?;
        l.calibration.validate("[detector.lstm_ae.calibration]")?;
        Ok(())
    }
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            name: DetectorKind::Pulse,
            threshold: 0.5,
            pulse: crate::detect::pulse::PulseParams::default(),
            windowed_gaussian: WindowedGaussianConfig::default(),
            isolation_forest: IsolationForestConfig::default(),
            lstm_ae: LstmAeConfig::default(),
        }
    }
}

/// Which Isolation Forest: the streaming, calibrated default, or the replaced system's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationForestPreset {
    /// Refitted on a sliding window, its isolation score calibrated per series.
    Streaming,
    /// The replaced system's configuration: fitted once on the first 750 points, the raw
    /// isolation score mapped with `threshold`, no calibration (`train`, `refit_every` and
    /// `calibration` are then ignored).
    Seed,
}

impl Named for IsolationForestPreset {
    const WHAT: &'static str = "isolation forest preset";
    fn all() -> &'static [Self] {
        &[
            IsolationForestPreset::Streaming,
            IsolationForestPreset::Seed,
        ]
    }
    fn name(self) -> &'static str {
        match self {
            IsolationForestPreset::Streaming => "streaming",
            IsolationForestPreset::Seed => "seed",
        }
    }
}

crate::named_serde!(IsolationForestPreset);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IsolationForestConfig {
    /// `streaming` (the default) or `seed` (the replaced system's configuration).
    pub preset: IsolationForestPreset,
    /// Number of trees.
    pub trees: usize,
    /// Points sampled (without replacement) to grow each tree.
    pub sample_size: usize,
    /// Length of the sliding window of values each feature vector is made from.
    pub window: usize,
    /// Points of history the forest is fitted on: at most the latest `train` points at each
    /// fit; never points after the one being scored.
    pub train: usize,
    /// Refit on the latest `train` points every this many points (0 = fit once).
    pub refit_every: usize,
    /// Seed preset: the isolation score (0..1) that counts as anomalous, mapped to 0.5. (The
    /// streaming preset's calibrated output puts `calibration.alarm` at 0.5.)
    pub threshold: f64,
    /// Random seed (fits are reproducible).
    pub seed: u64,
    /// The per-series calibration of the isolation score (streaming only); keys left out keep
    /// this detector's defaults.
    #[serde(deserialize_with = "iforest_calibration")]
    pub calibration: crate::detect::calibrate::CalibrationParams,
}
impl Default for IsolationForestConfig {
    fn default() -> Self {
        IsolationForestConfig {
            preset: IsolationForestPreset::Streaming,
            trees: 100,
            sample_size: 256,
            window: 30,
            train: 1000,
            refit_every: 50,
            threshold: 0.6,
            seed: 42,
            calibration: crate::detect::calibrate::CalibrationParams {
                memory: 450.0,
                warmup: 10,
                ..crate::detect::calibrate::CalibrationParams::default()
            },
        }
    }
}

fn iforest_calibration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<crate::detect::calibrate::CalibrationParams, D::Error> {
    crate::detect::calibrate::deserialize_over(d, IsolationForestConfig::default().calibration)
}

fn lstm_calibration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<crate::detect::calibrate::CalibrationParams, D::Error> {
    crate::detect::calibrate::deserialize_over(d, LstmAeConfig::default().calibration)
}

impl IsolationForestConfig {
    /// The replaced system's configuration (`preset = "seed"`).
    pub fn seed_preset() -> Self {
        IsolationForestConfig {
            preset: IsolationForestPreset::Seed,
            train: 750,
            refit_every: 0,
            ..IsolationForestConfig::default()
        }
    }

    /// What the detector runs: the seed preset fixes `train`, `refit_every` and the calibration,
    /// keeping the others.
    pub fn effective(&self) -> Self {
        match self.preset {
            IsolationForestPreset::Streaming => self.clone(),
            IsolationForestPreset::Seed => IsolationForestConfig {
                trees: self.trees,
                sample_size: self.sample_size,
                window: self.window,
                seed: self.seed,
                ..IsolationForestConfig::seed_preset()
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LstmAeConfig {
    /// Length of the sequences the autoencoder reconstructs.
    pub sequence: usize,
    /// Hidden size of the encoder and decoder LSTMs.
    pub hidden: usize,
    /// Most training epochs (training stops earlier on the held-back windows).
    pub epochs: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// Mini-batch size.
    pub batch: usize,
    /// Scale of the reconstruction error (squared, on standardised values): the raw score is
    /// 0.5 at `threshold` and 0.05 more per decade above (a log scale), which the calibration
    /// then ranks per series.
    pub threshold: f64,
    /// Points of history the model is trained on (the first points of a series).
    pub train: usize,
    /// Random seed for initialisation and shuffling.
    pub seed: u64,
    /// Calibrate the raw score per series (else the output is the raw score itself, 0.5 at
    /// `threshold`, as the replaced system's was).
    pub calibrate: bool,
    /// The per-series calibration of the raw score; keys left out keep this detector's
    /// defaults.
    #[serde(deserialize_with = "lstm_calibration")]
    pub calibration: crate::detect::calibrate::CalibrationParams,
    /// Multivariate mode: one model over every series of one `instance` (the host source's
    /// series form one group; PromQL series group by their `instance` label), scoring the
    /// group's joint reconstruction. Series without an instance (NAB) stay univariate.
    /// (Not serialised when off, so univariate models keep their fingerprint.)
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub multivariate: bool,
}
impl Default for LstmAeConfig {
    fn default() -> Self {
        LstmAeConfig {
            sequence: 25,
            hidden: 32,
            epochs: 30,
            learning_rate: 0.01,
            batch: 64,
            threshold: 0.025,
            train: 500,
            seed: 42,
            calibrate: true,
            calibration: crate::detect::calibrate::CalibrationParams {
                memory: 1600.0,
                ..crate::detect::calibrate::CalibrationParams::default()
            },
            multivariate: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowedGaussianConfig {
    /// Points in the rolling window.
    pub window: usize,
    /// Once the window is full, mean and std are recomputed every `step` points.
    pub step: usize,
}
impl Default for WindowedGaussianConfig {
    fn default() -> Self {
        WindowedGaussianConfig {
            window: 6400,
            step: 100,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForecastConfig {
    /// Default model: "auto" (chosen per series by rolling-origin validation), "snaive",
    /// "theta", "mstl", "ets" or "prophet".
    pub model: ModelKind,
    /// How far ahead to forecast.
    pub horizon: HumanDuration,
    /// Width of the prediction interval (0..1).
    pub interval_width: f64,
    /// How often the engine refits forecasts of series with new points ("0s" = only on demand).
    pub refresh: HumanDuration,
    /// How far the long view and time-to-threshold look ahead ("0s": only `horizon`).
    pub long_horizon: HumanDuration,
    /// Capacity thresholds: `[[forecast.thresholds]] series = "disk_used*"  above = 0.9`.
    pub thresholds: Vec<ThresholdConfig>,
    pub prophet: ProphetConfig,
    pub mstl: MstlConfig,
}
impl Default for ForecastConfig {
    fn default() -> Self {
        ForecastConfig {
            model: ModelKind::Auto,
            horizon: HumanDuration::secs(86_400),
            interval_width: 0.95,
            refresh: HumanDuration::secs(60),
            long_horizon: HumanDuration::secs(7 * 86_400),
            thresholds: Vec::new(),
            prophet: ProphetConfig::default(),
            mstl: MstlConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProphetConfig {
    /// Flexibility of Prophet's trend (larger = more changepoints); must be > 0.
    pub changepoint_prior_scale: f64,
    /// "additive" or "multiplicative".
    pub seasonality_mode: SeasonalityMode,
    /// "auto", or a list such as ["daily", "weekly"].
    pub seasonalities: Vec<String>,
    /// "native" (Stan's L-BFGS on Prophet's objective, in Rust; the default) or "wasmstan"
    /// (Prophet's Stan model compiled to WebAssembly, run by wasmtime; 3 to 5x slower).
    pub optimizer: ProphetOptimizer,
}
impl Default for ProphetConfig {
    fn default() -> Self {
        ProphetConfig {
            changepoint_prior_scale: 0.05,
            seasonality_mode: SeasonalityMode::Additive,
            seasonalities: vec!["auto".into()],
            optimizer: ProphetOptimizer::Native,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MstlConfig {
    /// "auto", or a list of periods such as ["daily", "weekly"].
    pub periods: Vec<String>,
}
impl Default for MstlConfig {
    fn default() -> Self {
        MstlConfig {
            periods: vec!["auto".into()],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrainConfig {
    /// Retrain fitted detectors on this schedule ("0s" = only on demand).
    pub interval: HumanDuration,
    /// Where fitted models are saved.
    pub model_dir: PathBuf,
}
impl Default for RetrainConfig {
    fn default() -> Self {
        RetrainConfig {
            interval: HumanDuration::secs(0),
            model_dir: PathBuf::from("models"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Anomaly events are appended here (JSON lines) and reloaded on start; "" = keep them in
    /// memory only. Relative to the config file; without one, in the XDG state folder.
    pub file: PathBuf,
    /// Newest events kept in memory and in the file.
    pub keep: usize,
}
impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            file: PathBuf::from("events.jsonl"),
            keep: 10_000,
        }
    }
}
impl EventsConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=1_000_000).contains(&self.keep) {
            return Err(format!(
                "[events] keep {} must be between 1 and 1000000 events",
                self.keep
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TuiConfig {
    /// Render tick: the screen redraws at most this often unless something changes.
    pub tick: HumanDuration,
    /// Chart marker: "braille", "dot", "block" or "bar" (non-braille for limited fonts).
    pub marker: MarkerName,
    /// Capture the mouse.
    pub mouse: bool,
    /// "default" (16 ANSI colours, readable on light and dark terminals) or "mono" (no colour;
    /// also chosen when NO_COLOR is set).
    pub theme: ThemeName,
    /// Spikes injected per press on the Test spikes tab.
    pub spike_count: usize,
    /// Size of injected spikes, in robust standard deviations of the series.
    pub spike_magnitude: f64,
    pub keys: KeysConfig,
}
impl TuiConfig {
    /// Range checks (the key bindings are checked by [`KeysConfig::parsed`]). Errors name the key.
    pub fn validate(&self) -> Result<(), String> {
        let m = self.spike_magnitude;
        if !(m.is_finite() && m > 0.0 && m <= 1000.0) {
            return Err(format!(
                "[tui] spike_magnitude = {m} must be a number in (0, 1000] (robust standard deviations)"
            ));
        }
        if !(1..=1000).contains(&self.spike_count) {
            return Err(format!(
                "[tui] spike_count = {} is outside 1..=1000",
                self.spike_count
            ));
        }
        if self.tick.0 < Duration::from_millis(10) {
            return Err(format!(
                "[tui] tick = {} is below 10ms",
                humantime::format_duration(self.tick.0)
            ));
        }
        self.keys.parsed().map(|_| ())
    }
}

impl Default for TuiConfig {
    fn default() -> Self {
        TuiConfig {
            tick: HumanDuration::millis(500),
            marker: MarkerName::Braille,
            mouse: false,
            theme: ThemeName::Default,
            spike_count: 3,
            spike_magnitude: 6.0,
            keys: KeysConfig::default(),
        }
    }
}

/// What a key does in the TUI: the one list of actions. `[tui.keys]` maps an action's name to
/// its keys; the help screen lists them in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Quit,
    NextTab,
    PrevTab,
    Live,
    Forecast,
    Spikes,
    Events,
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
    LongView,
    Inject,
    InjectAtCursor,
    Clear,
    Sort,
    Filter,
    Group,
    Open,
    Help,
}

impl Action {
    pub const ALL: [Action; 29] = [
        Action::Quit,
        Action::NextTab,
        Action::PrevTab,
        Action::Live,
        Action::Forecast,
        Action::Spikes,
        Action::Events,
        Action::Up,
        Action::Down,
        Action::PageUp,
        Action::PageDown,
        Action::Left,
        Action::Right,
        Action::Retrain,
        Action::RetrainAll,
        Action::Cancel,
        Action::Pause,
        Action::Faster,
        Action::Slower,
        Action::Model,
        Action::LongView,
        Action::Inject,
        Action::InjectAtCursor,
        Action::Clear,
        Action::Sort,
        Action::Filter,
        Action::Group,
        Action::Open,
        Action::Help,
    ];

    /// Its name under `[tui.keys]`, what the help screen says, and its default keys.
    fn spec(self) -> (&'static str, &'static str, &'static [&'static str]) {
        match self {
            Action::Quit => ("quit", "quit", &["q"]),
            Action::NextTab => ("next_tab", "next tab", &["tab"]),
            Action::PrevTab => ("prev_tab", "previous tab", &["backtab"]),
            Action::Live => ("live", "Live tab", &["1"]),
            Action::Forecast => ("forecast", "Forecast tab", &["2"]),
            Action::Spikes => ("spikes", "Test spikes tab", &["3"]),
            Action::Events => ("events", "anomaly events tab", &["4"]),
            Action::Up => ("up", "select previous series", &["up", "k"]),
            Action::Down => ("down", "select next series", &["down", "j"]),
            Action::PageUp => ("page_up", "page up", &["pageup"]),
            Action::PageDown => ("page_down", "page down", &["pagedown"]),
            Action::Left => ("left", "spike cursor left", &["left", "h"]),
            Action::Right => ("right", "spike cursor right", &["right", "l"]),
            Action::Retrain => ("retrain", "retrain selected series", &["r"]),
            Action::RetrainAll => ("retrain_all", "retrain every series", &["R"]),
            Action::Cancel => ("cancel", "close / cancel retrains", &["esc"]),
            Action::Pause => ("pause", "pause / resume replay", &["p"]),
            Action::Faster => ("faster", "replay faster", &["+", "="]),
            Action::Slower => ("slower", "replay slower", &["-"]),
            Action::Model => ("model", "switch forecast model", &["m"]),
            Action::LongView => ("long_view", "7-day forecast view", &["w"]),
            Action::Inject => ("inject", "inject spikes at random", &["i"]),
            Action::InjectAtCursor => ("inject_at_cursor", "inject one at the cursor", &["I"]),
            Action::Clear => ("clear", "clear injected spikes", &["c"]),
            Action::Sort => ("sort", "sort: score, 1h, name", &["s"]),
            Action::Filter => ("filter", "filter (~ for a regex)", &["/"]),
            Action::Group => ("group", "group by a label", &["g"]),
            Action::Open => ("open", "open group / event", &["enter"]),
            Action::Help => ("help", "this help", &["?"]),
        }
    }

    /// What the help screen says.
    pub fn describe(self) -> &'static str {
        self.spec().1
    }

    /// The keys bound when `[tui.keys]` does not name the action.
    pub fn default_keys(self) -> &'static [&'static str] {
        self.spec().2
    }
}

impl Named for Action {
    const WHAT: &'static str = "key action";
    fn all() -> &'static [Self] {
        &Action::ALL
    }
    fn name(self) -> &'static str {
        self.spec().0
    }
}

crate::named_serde!(Action);

/// A key without its modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyName {
    Char(char),
    Tab,
    BackTab,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    Enter,
    Esc,
}

/// A key with its modifiers, as written in `[tui.keys]`: `q`, `R`, `ctrl-c`, `alt-x`, `tab`,
/// `backtab`, `up`, `pagedown`, `enter`, `esc`, `space`, `?` (Shift is part of the character).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyChord {
    pub key: KeyName,
    pub ctrl: bool,
    pub alt: bool,
}

impl KeyChord {
    pub fn parse(s: &str) -> Result<KeyChord, String> {
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
        let key = match rest.to_ascii_lowercase().as_str() {
            "tab" => KeyName::Tab,
            "backtab" | "shift-tab" => KeyName::BackTab,
            "up" => KeyName::Up,
            "down" => KeyName::Down,
            "left" => KeyName::Left,
            "right" => KeyName::Right,
            "pageup" => KeyName::PageUp,
            "pagedown" => KeyName::PageDown,
            "home" => KeyName::Home,
            "end" => KeyName::End,
            "enter" => KeyName::Enter,
            "esc" => KeyName::Esc,
            "space" => KeyName::Char(' '),
            _ => {
                let mut chars = rest.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => KeyName::Char(if ctrl { c.to_ascii_lowercase() } else { c }),
                    _ => return Err(format!("unknown key {s:?}")),
                }
            }
        };
        Ok(KeyChord { key, ctrl, alt })
    }
}

/// `[tui.keys]`: keys per action. A file names only the actions it rebinds; the others keep
/// their default keys.
#[derive(Debug, Clone, PartialEq)]
pub struct KeysConfig(pub BTreeMap<Action, Vec<String>>);

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig(
            Action::ALL
                .iter()
                .map(|&a| (a, a.default_keys().iter().map(|k| k.to_string()).collect()))
                .collect(),
        )
    }
}

impl KeysConfig {
    /// The keys of `action`.
    pub fn keys(&self, action: Action) -> &[String] {
        self.0.get(&action).map_or(&[], Vec::as_slice)
    }

    /// Every binding parsed, in action order; an unknown key or a key bound to two actions is
    /// an error naming the action's key.
    pub fn parsed(&self) -> Result<Vec<(Action, Vec<KeyChord>)>, String> {
        let mut seen: BTreeMap<String, Action> = BTreeMap::new();
        let mut out = Vec::with_capacity(Action::ALL.len());
        for a in Action::ALL {
            let mut chords = Vec::new();
            for k in self.keys(a) {
                let chord =
                    KeyChord::parse(k).map_err(|e| format!("[tui.keys] {}: {e}", a.name()))?;
                if let Some(prev) = seen.insert(format!("{chord:?}"), a)
                    && prev != a
                {
                    return Err(format!(
                        "[tui.keys] {}: key {k:?} is already bound to {}",
                        a.name(),
                        prev.describe()
                    ));
                }
                chords.push(chord);
            }
            out.push((a, chords));
        }
        Ok(out)
    }
}

impl Serialize for KeysConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for KeysConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let given = BTreeMap::<Action, Vec<String>>::deserialize(d)?;
        let mut keys = KeysConfig::default();
        keys.0.extend(given);
        Ok(keys)
    }
}

/// `[tui] theme`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThemeName {
    /// 16 ANSI colours, readable on light and dark terminals.
    Default,
    /// No colour (also chosen when NO_COLOR is set).
    Mono,
}

impl Named for ThemeName {
    const WHAT: &'static str = "theme";
    fn all() -> &'static [Self] {
        &[ThemeName::Default, ThemeName::Mono]
    }
    fn name(self) -> &'static str {
        match self {
            ThemeName::Default => "default",
            ThemeName::Mono => "mono",
        }
    }
}

crate::named_serde!(ThemeName);

/// `[tui] marker`: how chart points are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerName {
    Braille,
    Dot,
    Block,
    Bar,
}

impl Named for MarkerName {
    const WHAT: &'static str = "marker";
    fn all() -> &'static [Self] {
        &[
            MarkerName::Braille,
            MarkerName::Dot,
            MarkerName::Block,
            MarkerName::Bar,
        ]
    }
    fn name(self) -> &'static str {
        match self {
            MarkerName::Braille => "braille",
            MarkerName::Dot => "dot",
            MarkerName::Block => "block",
            MarkerName::Bar => "bar",
        }
    }
}

crate::named_serde!(MarkerName);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// "error", "warn", "info", "debug" or "trace" (or a tracing filter directive).
    pub level: String,
    /// Directory for log files (one per component plus pulsewatch.log).
    pub dir: PathBuf,
}
impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "info".into(),
            dir: PathBuf::from("logs"),
        }
    }
}

/// Where the default folders go when no config file names them.
#[derive(Debug, Clone, PartialEq)]
pub struct Homes {
    /// The NAB corpus goes to `<data>/nab`, fitted models to `<data>/models`.
    pub data: PathBuf,
    /// Log files go to `<state>/logs`.
    pub state: PathBuf,
}

impl Homes {
    /// `$XDG_DATA_HOME/pulsewatch` and `$XDG_STATE_HOME/pulsewatch` (on Linux
    /// `~/.local/share/pulsewatch` and `~/.local/state/pulsewatch`; the platform's folders
    /// elsewhere).
    pub fn xdg(d: &directories::ProjectDirs) -> Homes {
        Homes {
            data: d.data_dir().to_path_buf(),
            state: d
                .state_dir()
                .unwrap_or_else(|| d.data_local_dir())
                .to_path_buf(),
        }
    }
}

/// Where the effective config came from (for `print-config` and logs).
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Defaults,
    File(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Defaults => f.write_str("built-in defaults"),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub source: Source,
    /// Environment variables that overrode a key.
    pub env_overrides: Vec<String>,
}

impl Loaded {
    /// Makes the config's folders independent of the current directory: relative paths read
    /// from a config file are taken relative to that file's folder; with built-in defaults the
    /// data, model and log folders go under `homes` (when given). A path set by a `PULSEWATCH_*`
    /// variable stays as given (relative to the current directory, as in a shell).
    pub fn place(&mut self, homes: Option<&Homes>) {
        let overrides = &self.env_overrides;
        let from_env = |var: &str| overrides.iter().any(|k| k.eq_ignore_ascii_case(var));
        let c = &mut self.config;
        let paths: [(&str, &mut PathBuf); 10] = [
            ("PULSEWATCH_DATA_DIR", &mut c.data.dir),
            ("PULSEWATCH_RETRAIN_MODEL_DIR", &mut c.retrain.model_dir),
            ("PULSEWATCH_LOGGING_DIR", &mut c.logging.dir),
            ("PULSEWATCH_EVENTS_FILE", &mut c.events.file),
            (
                "PULSEWATCH_PUSHGATEWAY_PASSWORD_FILE",
                &mut c.pushgateway.password_file,
            ),
            (
                "PULSEWATCH_PUSHGATEWAY_BEARER_TOKEN_FILE",
                &mut c.pushgateway.bearer_token_file,
            ),
            ("PULSEWATCH_API_TOKEN_FILE", &mut c.api.token_file),
            (
                "PULSEWATCH_PROMETHEUS_PASSWORD_FILE",
                &mut c.prometheus.password_file,
            ),
            (
                "PULSEWATCH_PROMETHEUS_BEARER_TOKEN_FILE",
                &mut c.prometheus.bearer_token_file,
            ),
            ("PULSEWATCH_PROMETHEUS_CA_FILE", &mut c.prometheus.ca_file),
        ];
        match &self.source {
            Source::File(file) => {
                let base = file.parent().unwrap_or(Path::new(""));
                for (var, p) in paths {
                    if !from_env(var) && !p.as_os_str().is_empty() && p.is_relative() {
                        *p = base.join(&*p);
                    }
                }
            }
            Source::Defaults => {
                let Some(h) = homes else { return };
                let [(dv, data), (mv, models), (lv, logs), (ev, events), ..] = paths;
                for (var, p, home) in [
                    (dv, data, h.data.join("nab")),
                    (mv, models, h.data.join("models")),
                    (lv, logs, h.state.join("logs")),
                    (ev, events, h.state.join("events.jsonl")),
                ] {
                    if !from_env(var) {
                        *p = home;
                    }
                }
            }
        }
    }

    /// [`Config::validate`], the one pass every command runs before it starts; the error names
    /// the file (or the built-in defaults) and the environment variables that were applied.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.config.validate().map_err(|msg| ConfigError::Invalid {
            origin: self.origin(),
            msg,
        })
    }

    /// `config.toml`, or `built-in defaults`, with the environment overrides applied.
    pub fn origin(&self) -> String {
        let mut o = self.source.to_string();
        if !self.env_overrides.is_empty() {
            o.push_str(&format!(" with {}", self.env_overrides.join(", ")));
        }
        o
    }
}

impl Config {
    /// Parses config text; `path` names errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            msg: describe_toml_error(&e, text),
        })
    }

    /// Full lookup: explicit path, ./config.toml, XDG config dir, defaults; then environment.
    /// Relative paths in a file are relative to the file's folder; without a file, the data,
    /// model and log folders are the XDG data and state folders ([`Homes::xdg`]).
    pub fn load(explicit: Option<&Path>) -> Result<Loaded, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let dirs = directories::ProjectDirs::from("", "", "pulsewatch");
        let xdg = dirs.as_ref().map(|d| d.config_dir().join("config.toml"));
        let homes = dirs.as_ref().map(Homes::xdg);
        let mut loaded = Self::load_from(explicit, Path::new("config.toml"), xdg.as_deref(), &env)?;
        loaded.place(homes.as_ref());
        Ok(loaded)
    }

    /// [`Config::load`] with its inputs spelled out (for tests).
    pub fn load_from(
        explicit: Option<&Path>,
        local: &Path,
        xdg: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<Loaded, ConfigError> {
        let path = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None if local.is_file() => Some(local.to_path_buf()),
            None => xdg.filter(|p| p.is_file()).map(Path::to_path_buf),
        };
        let (config, source) = match path {
            Some(p) => {
                let text = std::fs::read_to_string(&p).map_err(|e| ConfigError::Read {
                    path: p.clone(),
                    source: e,
                })?;
                (Self::from_toml(&text, &p)?, Source::File(p))
            }
            None => (Config::default(), Source::Defaults),
        };
        let (config, env_overrides) = apply_env(config, env)?;
        Ok(Loaded {
            config,
            source,
            env_overrides,
        })
    }

    /// Every check made on a config before anything starts, in one pass: detector, forecast,
    /// replay, Prometheus and Pushgateway settings, secrets and key bindings. Errors name the key
    /// (the caller adds the file).
    pub fn validate(&self) -> Result<(), String> {
        self.source.shard()?;
        self.detector.validate()?;
        crate::forecast::ForecastSettings::for_config(self).map_err(|e| e.to_string())?;
        self.replay.validate()?;
        self.prometheus.validate()?;
        self.pushgateway.validate()?;
        self.api.resolved_token()?;
        self.tui.validate()?;
        self.events.validate()?;
        Ok(())
    }

    /// The config with every inline secret replaced by `"<hidden>"` (for `print-config`, whose
    /// output ends up in bug reports). Secret files are paths, not secrets, and stay.
    pub fn redacted(&self) -> Config {
        let hide = |s: &mut String| {
            if !s.is_empty() {
                *s = "<hidden>".into();
            }
        };
        let mut c = self.clone();
        hide(&mut c.pushgateway.password);
        hide(&mut c.pushgateway.bearer_token);
        hide(&mut c.prometheus.password);
        hide(&mut c.prometheus.bearer_token);
        for (name, value) in c.prometheus.headers.iter_mut() {
            if secret_header(name) {
                hide(value);
            }
        }
        hide(&mut c.api.token);
        c
    }

    /// The effective config as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot serialise config: {e}\n"))
    }
}

fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    let msg = e.message().trim_end().to_string();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let line_text = text.lines().nth(line - 1).unwrap_or("").trim();
            match toml_key_at(text, line) {
                Some(key) => format!("line {line}: {key}: {msg} (at `{line_text}`)"),
                None => format!("line {line}: {msg} (at `{line_text}`)"),
            }
        }
        None => msg,
    }
}

/// `[section] key` for a `key = value` line of `text` (1-based), from the nearest table header
/// above it; `None` for other lines.
fn toml_key_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line.checked_sub(1)?)?.trim();
    let (key, _) = here.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || key.starts_with('#') || key.starts_with('[') {
        return None;
    }
    let section = lines[..line - 1]
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| {
            l.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        });
    Some(match section {
        Some(s) if !s.is_empty() => format!("[{s}] {key}"),
        _ => key.to_string(),
    })
}

/// Applies `PULSEWATCH_<SECTION>_<KEY>` overrides. The variable's name is matched against the
/// config's key tree (case-insensitive, `-` and `_` alike); its value is parsed as the type the
/// key has.
fn apply_env(
    config: Config,
    env: &[(String, String)],
) -> Result<(Config, Vec<String>), ConfigError> {
    let mut vars: Vec<&(String, String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && !ENV_RESERVED.contains(&k.as_str()))
        .collect();
    if vars.is_empty() {
        return Ok((config, Vec::new()));
    }
    vars.sort();
    let mut table = toml::Table::try_from(&config).map_err(|e| ConfigError::Env {
        var: ENV_PREFIX.into(),
        msg: e.to_string(),
    })?;
    let mut applied = Vec::new();
    for (var, raw) in vars {
        let name = &var[ENV_PREFIX.len()..];
        let env_err = |msg: String| ConfigError::Env {
            var: var.clone(),
            msg,
        };
        let path = find_key(&table, name).ok_or_else(|| {
            env_err("matches no config key (see `pulsewatch print-config` for the keys)".into())
        })?;
        let slot =
            lookup_mut(&mut table, &path).ok_or_else(|| env_err("matches no config key".into()))?;
        *slot = env_value(slot, raw)
            .map_err(|m| env_err(format!("{} = {raw:?}: {m}", path.join("."))))?;
        let check: Result<Config, _> = table.clone().try_into();
        if let Err(e) = check {
            return Err(env_err(format!(
                "{}: {}",
                path.join("."),
                e.message().trim()
            )));
        }
        applied.push(var.clone());
    }
    let config = table
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Env {
            var: ENV_PREFIX.into(),
            msg: e.message().to_string(),
        })?;
    Ok((config, applied))
}

fn norm(key: &str) -> String {
    key.to_ascii_uppercase().replace('-', "_")
}

/// Finds the key path whose normalised, `_`-joined name equals `name`.
fn find_key(table: &toml::Table, name: &str) -> Option<Vec<String>> {
    for (k, v) in table {
        let nk = norm(k);
        if name == nk && !v.is_table() {
            return Some(vec![k.clone()]);
        }
        if let (Some(rest), toml::Value::Table(sub)) = (name.strip_prefix(&format!("{nk}_")), v)
            && let Some(mut p) = find_key(sub, rest)
        {
            p.insert(0, k.clone());
            return Some(p);
        }
    }
    None
}

fn lookup_mut<'a>(table: &'a mut toml::Table, path: &[String]) -> Option<&'a mut toml::Value> {
    let (first, rest) = path.split_first()?;
    let v = table.get_mut(first)?;
    if rest.is_empty() {
        return Some(v);
    }
    match v {
        toml::Value::Table(t) => lookup_mut(t, rest),
        _ => None,
    }
}

fn env_value(current: &toml::Value, raw: &str) -> Result<toml::Value, String> {
    use toml::Value as V;
    Ok(match current {
        V::String(_) => V::String(raw.to_string()),
        V::Integer(_) => V::Integer(
            raw.trim()
                .parse()
                .map_err(|_| "expected an integer".to_string())?,
        ),
        V::Float(_) => V::Float(
            raw.trim()
                .parse()
                .map_err(|_| "expected a number".to_string())?,
        ),
        V::Boolean(_) => V::Boolean(match raw.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => return Err("expected true or false".into()),
        }),
        V::Array(_) => {
            let doc: toml::Table = toml::from_str(&format!("v = {raw}"))
                .map_err(|_| "expected a TOML array such as [\"a\", \"b\"]".to_string())?;
            doc.get("v").cloned().ok_or("expected an array")?
        }
        _ => return Err("cannot be set from the environment".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn env_overrides_nested_keys_and_types() {
        let e = env(&[
            ("PULSEWATCH_DATA_DIR", "/corpus"),
            ("PULSEWATCH_DETECTOR_WINDOWED_GAUSSIAN_WINDOW", "128"),
            ("PULSEWATCH_PUSHGATEWAY_DELETE_ON_EXIT", "false"),
            ("PULSEWATCH_FORECAST_HORIZON", "2h"),
            ("PULSEWATCH_CONFIG", "ignored"),
            ("OTHER", "x"),
        ]);
        let l = Config::load_from(None, Path::new("/nonexistent/config.toml"), None, &e)
            .expect("loads");
        assert_eq!(l.config.data.dir, PathBuf::from("/corpus"));
        assert_eq!(l.config.detector.windowed_gaussian.window, 128);
        assert!(!l.config.pushgateway.delete_on_exit);
        assert_eq!(l.config.forecast.horizon, HumanDuration::secs(7200));
        assert_eq!(l.env_overrides.len(), 4);
    }

    #[test]
    fn env_errors_name_the_variable() {
        let e = env(&[("PULSEWATCH_DETECTOR_WINDOWED_GAUSSIAN_WINDOW", "many")]);
        let err =
            Config::load_from(None, Path::new("/nonexistent"), None, &e).expect_err("bad int");
        assert!(
            err.to_string()
                .contains("PULSEWATCH_DETECTOR_WINDOWED_GAUSSIAN_WINDOW"),
            "{err}"
        );
        let e = env(&[("PULSEWATCH_NOPE_KEY", "1")]);
        let err =
            Config::load_from(None, Path::new("/nonexistent"), None, &e).expect_err("unknown");
        assert!(err.to_string().contains("PULSEWATCH_NOPE_KEY"), "{err}");
        let e = env(&[("PULSEWATCH_FORECAST_HORIZON", "soon")]);
        let err =
            Config::load_from(None, Path::new("/nonexistent"), None, &e).expect_err("duration");
        assert!(err.to_string().contains("forecast.horizon"), "{err}");
    }

    #[test]
    fn file_errors_name_file_line_and_key() {
        let text = "[data]\ndir = \"x\"\n\n[replay]\nspeeed = 3.0\n";
        let err = Config::from_toml(text, Path::new("my.toml")).expect_err("unknown key");
        let s = err.to_string();
        assert!(s.starts_with("my.toml: line 5:"), "{s}");
        assert!(s.contains("speeed"), "{s}");
        let err = Config::from_toml("[replay]\nspeed = \"fast\"\n", Path::new("c.toml"))
            .expect_err("type");
        let s = err.to_string();
        assert!(s.contains("line 2") && s.contains("speed"), "{s}");
    }

    #[test]
    fn secrets_come_inline_or_from_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("token");
        std::fs::write(&f, "s3cr3t\r\n").expect("write");
        assert_eq!(secret("[api] token", "", &f).as_deref(), Ok("s3cr3t"));
        assert_eq!(
            secret("[api] token", "inline", Path::new("")).as_deref(),
            Ok("inline")
        );
        std::fs::write(&f, "two\nlines\n\n").expect("write");
        assert_eq!(secret("[api] token", "", &f).as_deref(), Ok("two\nlines\n"));
        let both = secret("[api] token", "inline", &f).unwrap_err();
        assert_eq!(
            both,
            "[api] token and [api] token_file are both set; keep one"
        );
        let missing = dir.path().join("nope");
        let e = secret("[pushgateway] password", "", &missing).unwrap_err();
        assert!(e.starts_with("[pushgateway] password_file "), "{e}");
        assert!(e.contains("nope"), "{e}");
        std::fs::write(&f, "\n").expect("write");
        let e = secret("[api] token", "", &f).unwrap_err();
        assert!(e.ends_with("the file is empty"), "{e}");
    }

    #[test]
    fn a_partial_calibration_table_keeps_the_detector_s_own_defaults() {
        let text = "[detector.isolation_forest.calibration]\nwarmup = 50\n\n\
                    [detector.lstm_ae.calibration]\nrest = 30\n";
        let c = Config::from_toml(text, Path::new("c.toml")).expect("parses");
        let (f, l) = (&c.detector.isolation_forest, &c.detector.lstm_ae);
        assert_eq!(f.calibration.warmup, 50);
        assert_eq!(
            f.calibration.memory, 450.0,
            "the forest's memory, not the prior's 5000"
        );
        assert_eq!(l.calibration.rest, 30);
        assert_eq!(l.calibration.memory, 1600.0);
        let base = crate::detect::calibrate::CalibrationParams::default();
        assert_eq!(
            (f.calibration.smooth, f.calibration.alarm),
            (base.smooth, base.alarm)
        );
        let err = Config::from_toml(
            "[detector.lstm_ae.calibration]\nmemroy = 10.0\n",
            Path::new("c.toml"),
        )
        .expect_err("unknown key");
        let s = err.to_string();
        assert!(s.contains("line 2") && s.contains("memroy"), "{s}");
    }

    #[test]
    fn partial_file_keeps_defaults() {
        let c = Config::from_toml("[replay]\nspeed = 3.5\n", Path::new("c.toml")).expect("parses");
        assert_eq!(c.replay.speed, 3.5);
        assert_eq!(c.data, DataConfig::default());
    }

    #[test]
    fn lookup_order_explicit_local_xdg() {
        let dir = tempfile::tempdir().expect("tempdir");
        let local = dir.path().join("local.toml");
        let xdg = dir.path().join("xdg.toml");
        std::fs::write(&xdg, "[replay]\nspeed = 2.0\n").expect("write");
        let l = Config::load_from(None, &local, Some(&xdg), &[]).expect("xdg");
        assert_eq!(l.config.replay.speed, 2.0);
        std::fs::write(&local, "[replay]\nspeed = 3.0\n").expect("write");
        let l = Config::load_from(None, &local, Some(&xdg), &[]).expect("local");
        assert_eq!(l.config.replay.speed, 3.0);
        let missing = dir.path().join("missing.toml");
        let err = Config::load_from(Some(&missing), &local, Some(&xdg), &[])
            .expect_err("explicit missing");
        assert!(err.to_string().contains("missing.toml"));
    }

    #[test]
    fn folders_do_not_depend_on_the_current_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pw.toml");
        std::fs::write(
            &file,
            "[data]\ndir = \"corpus\"\n[logging]\ndir = \"/var/log/pw\"\n",
        )
        .expect("write");
        let homes = Homes {
            data: PathBuf::from("/home/u/.local/share/pulsewatch"),
            state: PathBuf::from("/home/u/.local/state/pulsewatch"),
        };
        // From a file: relative to the file's folder; absolute paths stay.
        let env = vec![(
            "PULSEWATCH_RETRAIN_MODEL_DIR".to_string(),
            "here/models".to_string(),
        )];
        let mut l =
            Config::load_from(Some(&file), Path::new("/nonexistent"), None, &env).expect("loads");
        l.place(Some(&homes));
        assert_eq!(l.config.data.dir, dir.path().join("corpus"));
        assert_eq!(l.config.logging.dir, PathBuf::from("/var/log/pw"));
        // A variable's path is the shell's: relative to the current directory.
        assert_eq!(l.config.retrain.model_dir, PathBuf::from("here/models"));
        // Built-in defaults: the XDG data and state folders.
        let mut l = Config::load_from(None, Path::new("/nonexistent"), None, &[]).expect("loads");
        l.place(Some(&homes));
        assert_eq!(l.config.data.dir, homes.data.join("nab"));
        assert_eq!(l.config.retrain.model_dir, homes.data.join("models"));
        assert_eq!(l.config.logging.dir, homes.state.join("logs"));
    }
}
