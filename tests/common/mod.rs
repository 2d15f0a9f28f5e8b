//! What the integration tests share, in one place: the service on a free port over a
//! temporary database ([`spawn_app`]), clients with a token, a valid job, the binary, and
//! every path into the library ([`library`]), so that moving a library module means editing
//! this directory, not every test.
//!
//! Each test binary takes it with `mod common;` (`tests/api/` with a `#[path]`); none uses
//! all of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

mod app;
mod assertions;
mod binary;
mod library;
mod raw;

use std::net::TcpListener;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

// No test binary uses every helper.
#[allow(unused_imports)]
pub use self::{
    app::{spawn_app, spawn_app_in, spawn_app_with, TestApp},
    assertions::{assert_422, errors, total_count},
    binary::{command, serve_logging_to, stderr, stdout, terminate, wait_for_listening, Ran, BIN},
    library::*,
    raw::{head, read_answer, send, wait_for_close, Ended, RawAnswer},
};

/// The admin token every test app accepts (as BACKUP_MONITOR_ADMIN_TOKEN would give it).
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A client that sends `token` as a bearer token (None: no Authorization header) and does
/// not follow redirects.
pub fn client_with(token: Option<&str>) -> reqwest::Client {
    client_builder(token).build().unwrap()
}

/// [`client_with`] before it is built, for a test that needs more (a timeout, say).
pub fn client_builder(token: Option<&str>) -> reqwest::ClientBuilder {
    install_crypto_provider();
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
    }
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
}

/// A job body with every field the API requires, and nothing else.
pub fn valid_job() -> Value {
    json!({
        "database_name": "erp",
        "agent_id_responsible": "agent-lyon-1",
        "company_name": "acme",
        "city": "Lyon",
        "expected_hour_utc": 2,
        "expected_minute_utc": 30,
        "backup_frequency": "daily",
        "final_storage_path_template": "/backups/{company_name}/{city}/{database_name}/%Y-%m-%d.dump"
    })
}

/// An hour of the day twelve hours from now: a daily job expected then has no slot falling
/// due, nor one within its grace, for hours (`valid_job`'s 02:30 has both between 02:30 and
/// 03:30 UTC, so a test of "nothing due yet" that uses it fails in that hour).
pub fn hour_far_from_now() -> u32 {
    use chrono::Timelike;
    (Utc::now().hour() + 12) % 24
}

/// `base` with the fields of `changes` set (a `null` in `changes` removes the field).
pub fn with(base: Value, changes: Value) -> Value {
    let mut out = base;
    if let (Some(o), Some(c)) = (out.as_object_mut(), changes.as_object()) {
        for (k, v) in c {
            if v.is_null() {
                o.remove(k);
            } else {
                o.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// An RFC 3339 instant, e.g. `at("2026-11-21T03:30:00Z")`.
pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A port of 127.0.0.1 that refuses every connection for as long as the returned socket
/// lives: bound and never listening, so that no other test's server is given the port in
/// the meantime (one from [`free_port`] can be, and then answers).
pub fn closed_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}

/// A port of 127.0.0.1 that nothing listens on (free when this returns), for a test that
/// starts a server on it later; [`closed_port`] for one that must stay closed.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
