//! A real HTTP receiver on 127.0.0.1 (axum) standing in for Slack, Teams, ntfy or a webhook
//! endpoint: it records every request and answers from a script (500 then 200, a 404, a slow
//! answer…), then 200.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// One request as the receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("a UTF-8 body")
    }
}

/// An answer of the script.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// A status with a body (services explain refusals there).
    Says(u16, &'static str),
    /// A status with `Retry-After: seconds`.
    RetryAfter(u16, u64),
    /// 200, after this long.
    Slow(Duration),
    /// A redirect (301, 307…) to `Location`.
    Redirect(u16, String),
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    script: VecDeque<Reply>,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    /// A receiver that accepts everything (200).
    pub async fn start() -> Self {
        Self::scripted(Vec::new()).await
    }

    /// A receiver that answers `script` in order, then 200.
    pub async fn scripted(script: Vec<Reply>) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            received: Vec::new(),
            script: script.into(),
        }));
        let app = Router::new().fallback(answer).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Serves until the test's runtime ends.
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// Waits until `n` requests have arrived (the service delivers in the background), at
    /// most 10 s.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} requests, got {}: {got:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn answer(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = {
        let mut inner = inner.lock().unwrap();
        inner.received.push(Received {
            method: method.to_string(),
            target: uri
                .path_and_query()
                .map(ToString::to_string)
                .unwrap_or_default(),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        });
        inner.script.pop_front()
    };
    let status = |code: u16| StatusCode::from_u16(code).unwrap();
    match reply {
        None => StatusCode::OK.into_response(),
        Some(Reply::Status(code)) => status(code).into_response(),
        Some(Reply::Says(code, text)) => (status(code), text).into_response(),
        Some(Reply::RetryAfter(code, seconds)) => {
            (status(code), [("retry-after", seconds.to_string())]).into_response()
        }
        Some(Reply::Redirect(code, to)) => (status(code), [("location", to)]).into_response(),
        Some(Reply::Slow(wait)) => {
            tokio::time::sleep(wait).await;
            StatusCode::OK.into_response()
        }
    }
}
