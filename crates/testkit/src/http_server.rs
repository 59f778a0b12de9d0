//! A small HTTP/1.1 file server for tests, with per-path fault injection.
//!
//! [`TestServer::serve_dir`] binds `127.0.0.1:0` and serves `GET`/`HEAD` of the files under a
//! root folder: `200` with `Content-Length`, `404` for anything missing, one request per
//! connection (`Connection: close`). A `POST` (e.g. a form-encoded Prometheus `query_range`) or a
//! `PUT` (a Pushgateway push) is answered like a `GET` of its path; its body is read and ignored. Per request path (relative
//! to the root, `/`-separated, no leading `/`) it counts requests and can inject a [`Fault`], on
//! every request or only on the first K ([`TestServer::set_fault_first`], e.g. for retry tests).
//! It runs on its own thread with its own tokio runtime, so sync tests, async tests and child
//! processes can all use it, and it stops (aborting open connections) when dropped.
//!
//! Include it with `#[path = "support/http_server.rs"] mod http_server;`.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// What to do instead of serving a file normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Serve the file with some bytes flipped (same length, so only a checksum notices).
    CorruptBody,
    /// Send the headers (announcing the full `Content-Length`) and half the body, then close.
    DropMidBody,
    /// Answer with this status and a short text body instead of the file.
    Status(u16),
    /// Send the headers and half the body, then wait this long before closing (for timeouts).
    Stall(Duration),
    /// Serve these bytes instead of the file's (with their own `Content-Length`).
    Replace(Vec<u8>),
    /// Wait this long before answering at all (a server too slow to send its headers).
    Delay(Duration),
}

struct Rule {
    fault: Fault,
    /// Requests the fault still applies to; `None` = all.
    remaining: Option<usize>,
}

#[derive(Default)]
struct State {
    rules: HashMap<String, Rule>,
    counts: HashMap<String, usize>,
    /// Request bodies per path, in arrival order (POST forms, PUT pushes; "" for GET).
    bodies: HashMap<String, Vec<String>>,
    /// Request heads (request line and headers) per path, in arrival order.
    heads: HashMap<String, Vec<String>>,
    total: usize,
}

/// A running server; see the module doc.
pub struct TestServer {
    addr: SocketAddr,
    root: PathBuf,
    state: Arc<Mutex<State>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts serving the files under `root` on `127.0.0.1` (random free port).
    pub fn serve_dir(root: impl Into<PathBuf>) -> TestServer {
        let root = root.into();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("set_nonblocking");
        let addr = listener.local_addr().expect("local_addr");
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, rx) = oneshot::channel();
        let thread = {
            let root = Arc::new(root.clone());
            let state = Arc::clone(&state);
            std::thread::Builder::new()
                .name(format!("test-http-{}", addr.port()))
                .spawn(move || run(listener, root, state, rx))
                .expect("spawn server thread")
        };
        TestServer {
            addr,
            root,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `http://127.0.0.1:<port>/`
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// URL of a path relative to the root.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url(), key(path))
    }

    /// Applies `fault` to every request for `path` (until cleared).
    pub fn set_fault(&self, path: &str, fault: Fault) {
        self.lock().rules.insert(
            key(path),
            Rule {
                fault,
                remaining: None,
            },
        );
    }

    /// Applies `fault` to the next `times` requests for `path`, then serves it normally.
    pub fn set_fault_first(&self, path: &str, times: usize, fault: Fault) {
        self.lock().rules.insert(
            key(path),
            Rule {
                fault,
                remaining: Some(times),
            },
        );
    }

    pub fn clear_fault(&self, path: &str) {
        self.lock().rules.remove(&key(path));
    }

    /// The bodies of the requests for `path` so far, oldest first.
    pub fn bodies(&self, path: &str) -> Vec<String> {
        self.lock()
            .bodies
            .get(&key(path))
            .cloned()
            .unwrap_or_default()
    }

    /// The heads (request line and headers) of the requests for `path` so far, oldest first.
    pub fn heads(&self, path: &str) -> Vec<String> {
        self.lock()
            .heads
            .get(&key(path))
            .cloned()
            .unwrap_or_default()
    }

    /// Requests received for `path` (whatever the answer was).
    pub fn requests(&self, path: &str) -> usize {
        self.lock().counts.get(&key(path)).copied().unwrap_or(0)
    }

    /// Requests received in total.
    pub fn total_requests(&self) -> usize {
        self.lock().total
    }

    /// Forgets the request counts (faults stay).
    pub fn reset_counts(&self) {
        let mut s = self.lock();
        s.counts.clear();
        s.bodies.clear();
        s.heads.clear();
        s.total = 0;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the counts from the others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Normalises a path to a rule/count key: no leading `/`.
fn key(path: &str) -> String {
    path.trim_start_matches('/').to_owned()
}

fn run(
    listener: std::net::TcpListener,
    root: Arc<PathBuf>,
    state: Arc<Mutex<State>>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("test server runtime");
    rt.block_on(async move {
        let listener = TcpListener::from_std(listener).expect("tokio listener");
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        let root = Arc::clone(&root);
                        let state = Arc::clone(&state);
                        tokio::spawn(async move {
                            let _ = handle(stream, &root, &state).await;
                        });
                    }
                }
            }
        }
    });
    // Dropping the runtime cancels connections still open (e.g. stalled ones).
    drop(rt);
}

async fn handle(mut stream: TcpStream, root: &Path, state: &Mutex<State>) -> std::io::Result<()> {
    let Some((head, mut request_body)) = read_head(&mut stream).await? else {
        return Ok(());
    };
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !matches!(method, "GET" | "HEAD" | "POST" | "PUT") {
        return respond_text(&mut stream, 405, "only GET, HEAD, POST and PUT").await;
    }
    if method == "POST" || method == "PUT" {
        // Read the request body, so closing the connection does not reset it under the client.
        let mut left = content_length(&head).saturating_sub(request_body.len());
        let mut chunk = [0u8; 2048];
        while left > 0 {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            request_body.extend_from_slice(&chunk[..n]);
            left = left.saturating_sub(n);
        }
    }
    let path = percent_decode(target.split(['?', '#']).next().unwrap_or(""));
    let path = key(&path);
    let fault = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        s.total += 1;
        *s.counts.entry(path.clone()).or_insert(0) += 1;
        s.bodies
            .entry(path.clone())
            .or_default()
            .push(String::from_utf8_lossy(&request_body).into_owned());
        s.heads.entry(path.clone()).or_default().push(head.clone());
        match s.rules.get_mut(&path) {
            Some(Rule {
                remaining: Some(0), ..
            })
            | None => None,
            Some(rule) => {
                if let Some(n) = rule.remaining.as_mut() {
                    *n -= 1;
                }
                Some(rule.fault.clone())
            }
        }
    };
    if let Some(Fault::Delay(d)) = fault {
        tokio::time::sleep(d).await;
    }
    if let Some(Fault::Status(code)) = fault {
        return respond_text(&mut stream, code, &format!("injected status {code}")).await;
    }
    let safe = !path.is_empty()
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != ".." && !seg.contains('\\'));
    let file = root.join(&path);
    let body = match (safe, file.is_file()) {
        (true, true) => tokio::fs::read(&file).await?,
        _ => return respond_text(&mut stream, 404, "not found").await,
    };
    let body = match &fault {
        Some(Fault::CorruptBody) => corrupt(body),
        Some(Fault::Replace(bytes)) => bytes.clone(),
        _ => body,
    };
    write_head(&mut stream, 200, "application/octet-stream", body.len()).await?;
    if method == "HEAD" {
        return finish(stream).await;
    }
    match fault {
        Some(Fault::DropMidBody) => {
            stream.write_all(&body[..body.len() / 2]).await?;
            stream.flush().await?;
            Ok(()) // dropping the stream closes the connection early
        }
        Some(Fault::Stall(wait)) => {
            stream.write_all(&body[..body.len() / 2]).await?;
            stream.flush().await?;
            tokio::time::sleep(wait).await;
            Ok(())
        }
        _ => {
            stream.write_all(&body).await?;
            finish(stream).await
        }
    }
}

/// Reads up to the blank line ending the request head; `None` if the client went away. Also
/// returns how many bytes after the head (the start of a body) were read with it.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            return Ok(Some((head, buf[end + 4..].to_vec())));
        }
        if buf.len() > 64 * 1024 {
            return Ok(None);
        }
    }
}

/// The request's `Content-Length` (0 when absent or unreadable).
fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn write_head(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    len: usize,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n\
         Connection: close\r\n\r\n",
        reason(status)
    );
    stream.write_all(head.as_bytes()).await
}

async fn respond_text(stream: &mut TcpStream, status: u16, text: &str) -> std::io::Result<()> {
    let body = format!("{text}\n");
    write_head(stream, status, "text/plain; charset=utf-8", body.len()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.flush().await?;
    stream.shutdown().await
}

async fn finish(mut stream: TcpStream) -> std::io::Result<()> {
    stream.flush().await?;
    stream.shutdown().await
}

/// Flips every bit of about 8 bytes spread over the body (at least the first byte).
fn corrupt(mut body: Vec<u8>) -> Vec<u8> {
    let step = (body.len() / 8).max(1);
    for b in body.iter_mut().step_by(step) {
        *b ^= 0xff;
    }
    body
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Injected",
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
