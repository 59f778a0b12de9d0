//! `--listen ADDR`: `/metrics` for Prometheus to scrape (the pull model Prometheus recommends for
//! long-running processes) and a small JSON API for other tools.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/metrics` | the exported metric set (same as pushed) |
//! | GET | `/api/v1/status` | source, exporter and replay state |
//! | GET | `/api/v1/series` | every series with its latest point, counters, forecast band and time to threshold (`capacity`) |
//! | GET | `/api/v1/points?series=ID&limit=N` | the newest N (default 100) scored points of a series |
//! | GET | `/api/v1/forecast?series=ID` | the series' current forecast (every step and band), its long view (`long`, decimated) and time to threshold |
//! | GET | `/api/v1/anomalies?since=T&series=ID&limit=N` | anomaly events, newest first: those ending at or after `T` (Unix seconds or RFC 3339, the data's time), of one series (id or name; a multivariate group's events are each member's), at most N (default 100) |
//! | POST | `/api/v1/retrain` | body `{"series": ID}` or empty for all: starts a retrain (202) |
//! | POST | `/api/v1/spike` | body `{"series": ID, "magnitude": 6}`: injects a test spike (202) |
//!
//! The API binds to 127.0.0.1 unless told otherwise. When `[api] token` is set, the POST
//! endpoints require `Authorization: Bearer <token>` (401 otherwise). Errors are JSON
//! `{"error": "..."}` with a 4xx status.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::metrics;
use super::pushgateway::PushStatus;
use crate::engine::state::{ScoredPoint, SeriesView, Snapshot};
use crate::engine::{Control, Controller};

/// What the handlers read and where they send commands.
#[derive(Clone)]
pub struct ApiState {
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    pub controller: Controller,
    /// Required bearer token for POSTs (`None`: open).
    pub token: Option<Arc<str>>,
    pub push: Option<watch::Receiver<PushStatus>>,
}

/// Parses `--listen`: `HOST:PORT`, `:PORT` or `PORT` (the last two bind 127.0.0.1).
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    let err = || format!("--listen {s:?}: expected HOST:PORT, :PORT or PORT (e.g. 127.0.0.1:9185)");
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let port = s.strip_prefix(':').unwrap_or(s);
    if let Ok(p) = port.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], p)));
    }
    if let Some(p) = s.strip_prefix("localhost:") {
        let p: u16 = p.parse().map_err(|_| err())?;
        return Ok(SocketAddr::from(([127, 0, 0, 1], p)));
    }
    Err(err())
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/api/v1/status", get(status))
        .route("/api/v1/series", get(series_list))
        .route("/api/v1/points", get(points))
        .route("/api/v1/forecast", get(forecast))
        .route("/api/v1/anomalies", get(anomalies))
        .route("/api/v1/retrain", post(retrain))
        .route("/api/v1/spike", post(spike))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such endpoint; see /api/v1/status",
            )
        })
        .with_state(state)
}

/// Binds `addr` and serves until `shutdown` resolves. Returns the bound address (port 0 picks a
/// free one) and the server task.
pub async fn serve(
    addr: SocketAddr,
    state: ApiState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, JoinHandle<()>), String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let app = router(state);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(target: "pulsewatch", error = %e, "API server stopped");
        }
    });
    Ok((bound, task))
}

fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(json!({ "error": msg.into() }))).into_response()
}

fn latest(st: &ApiState) -> Arc<Snapshot> {
    st.snapshots.borrow().clone()
}

async fn metrics_text(State(st): State<ApiState>) -> Response {
    match metrics::render(&latest(&st)) {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn status(State(st): State<ApiState>) -> Response {
    let snap = latest(&st);
    let push = st.push.as_ref().map(|p| p.borrow().clone());
    Json(json!({
        "version": snap.version,
        "source": snap.source,
        "status": snap.status,
        "detector": snap.detector,
        "threshold": snap.threshold,
        "forecast_model": snap.forecast_model,
        "paused": snap.paused,
        "speed": snap.speed,
        "series": snap.series.len(),
        "ingested": snap.ingested(),
        "anomalies": snap.anomalies(),
        "pushgateway": push,
    }))
    .into_response()
}

fn point_json(p: &ScoredPoint) -> Value {
    json!({
        "timestamp": p.timestamp,
        "value": p.value,
        "score": p.score,
        "anomaly": p.anomaly,
        "injected": p.injected,
    })
}

fn series_json(s: &SeriesView) -> Value {
    json!({
        "id": s.info.id,
        "name": s.info.name,
        "category": s.info.category,
        "source": s.info.source,
        "ingested": s.ingested,
        "anomalies": s.anomalies,
        "stale": s.stale,
        "last": s.last().as_ref().map(point_json),
        "anomalies_last_hour": s.recent_anomalies,
        "event": s.event.as_deref(),
        "forecast": s.expectation(),
        "capacity": s.capacity_json(),
        "training": s.training,
    })
}

async fn series_list(State(st): State<ApiState>) -> Response {
    let snap = latest(&st);
    let list: Vec<Value> = snap.series.iter().map(|s| series_json(s)).collect();
    Json(json!({ "version": snap.version, "series": list })).into_response()
}

#[derive(Deserialize)]
struct SeriesQuery {
    series: Option<String>,
    limit: Option<usize>,
}

fn find<'a>(snap: &'a Snapshot, q: &SeriesQuery) -> Result<&'a SeriesView, Box<Response>> {
    let Some(id) = q.series.as_deref() else {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "missing query parameter `series` (a series id from /api/v1/series)",
        )));
    };
    snap.get(id)
        .ok_or_else(|| Box::new(error(StatusCode::NOT_FOUND, format!("no series {id:?}"))))
}

async fn points(State(st): State<ApiState>, Query(q): Query<SeriesQuery>) -> Response {
    let snap = latest(&st);
    let s = match find(&snap, &q) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let limit = q.limit.unwrap_or(100);
    let pts: Vec<Value> = s.points.tail(limit).iter().map(point_json).collect();
    Json(json!({ "series": s.info.id, "version": snap.version, "points": pts })).into_response()
}

async fn forecast(State(st): State<ApiState>, Query(q): Query<SeriesQuery>) -> Response {
    let snap = latest(&st);
    let s = match find(&snap, &q) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let f = s.forecast.as_deref();
    Json(json!({
        "series": s.info.id,
        "forecast": f.and_then(|f| f.forecast.as_deref()),
        "error": f.and_then(|f| f.error.clone()),
        "pending": f.is_some_and(|f| f.pending),
        "expectation": s.expectation(),
        "capacity": s.capacity_json(),
        "long": f.and_then(|f| f.long.as_deref()),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct AnomalyQuery {
    since: Option<String>,
    series: Option<String>,
    limit: Option<usize>,
}

/// `since`: Unix seconds, or an RFC 3339 time.
fn parse_since(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    if let Ok(f) = s.parse::<f64>()
        && f.is_finite()
    {
        return Ok(f.floor() as i64);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp())
        .map_err(|e| {
            format!("query parameter `since` {s:?}: not Unix seconds or an RFC 3339 time ({e})")
        })
}

async fn anomalies(State(st): State<ApiState>, Query(q): Query<AnomalyQuery>) -> Response {
    let snap = latest(&st);
    let since = match q.since.as_deref().map(parse_since).transpose() {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let limit = q.limit.unwrap_or(100);
    let all = match q.series.as_deref() {
        Some(id) => match snap.events_of(id) {
            Some(evs) => evs,
            None => return error(StatusCode::NOT_FOUND, format!("no series {id:?}")),
        },
        None => snap.events_newest_first(),
    };
    let matching: Vec<_> = all
        .iter()
        .filter(|e| since.is_none_or(|t| e.ends_after(t)))
        .collect();
    let events: Vec<Value> = matching
        .iter()
        .take(limit)
        .filter_map(|e| serde_json::to_value(e.as_ref()).ok())
        .collect();
    Json(json!({
        "version": snap.version,
        "matching": matching.len(),
        "events": events,
        "warning": snap.events_warning,
    }))
    .into_response()
}

fn authorised(st: &ApiState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(token) = st.token.as_deref() else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given == Some(token) {
        Ok(())
    } else {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "this endpoint needs `Authorization: Bearer <[api] token>`",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        Err(Box::new(r))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RetrainBody {
    series: Option<String>,
}

async fn retrain(State(st): State<ApiState>, headers: HeaderMap, body: String) -> Response {
    if let Err(r) = authorised(&st, &headers) {
        return *r;
    }
    let req: RetrainBody = if body.trim().is_empty() {
        RetrainBody::default()
    } else {
        match serde_json::from_str(&body) {
            Ok(b) => b,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("body: {e}; expected {{\"series\": \"<id>\"}} or nothing"),
                );
            }
        }
    };
    if let Some(id) = &req.series
        && latest(&st).get(id).is_none()
    {
        return error(StatusCode::NOT_FOUND, format!("no series {id:?}"));
    }
    if !st.controller.send(Control::Retrain {
        series: req.series.clone(),
    }) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the engine has stopped");
    }
    (
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": true, "series": req.series })),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpikeBody {
    series: String,
    #[serde(default = "default_magnitude")]
    magnitude: f64,
}

fn default_magnitude() -> f64 {
    6.0
}

async fn spike(State(st): State<ApiState>, headers: HeaderMap, body: String) -> Response {
    if let Err(r) = authorised(&st, &headers) {
        return *r;
    }
    let req: SpikeBody = match serde_json::from_str(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("body: {e}; expected {{\"series\": \"<id>\", \"magnitude\": 6}}"),
            );
        }
    };
    if !req.magnitude.is_finite() {
        return error(StatusCode::BAD_REQUEST, "magnitude must be a finite number");
    }
    if latest(&st).get(&req.series).is_none() {
        return error(StatusCode::NOT_FOUND, format!("no series {:?}", req.series));
    }
    if !st.controller.send(Control::InjectSpike {
        series: req.series.clone(),
        magnitude: req.magnitude,
    }) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the engine has stopped");
    }
    (
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": true, "series": req.series, "magnitude": req.magnitude })),
    )
        .into_response()
}
