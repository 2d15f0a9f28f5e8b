//! The connection itself, over a bare socket: `Connection: close` on every answer after
//! which the server closes, keep-alive, the header-read and idle deadlines, and a stop that
//! finishes the request in flight.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::common::{head, read_answer, send, spawn_app_with, wait_for_close, Ended};

const AUTHORIZATION: &str = "Authorization: Bearer test-admin-token-0123456789";

/// Asserts that the server closed the connection within `within`.
async fn assert_closed(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    within: Duration,
    case: &str,
) -> Duration {
    match wait_for_close(stream, within).await {
        Ended::Closed(after) => after,
        Ended::Open => panic!("{case}: the server kept the connection open past {within:?}"),
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_answered_413_with_connection_close_and_the_answer_arrives() {
    // Arrange: a client that sends its whole body before reading, as python-requests does;
    // a body larger than the sockets' buffers, so the server must read it to let it through
    let app = spawn_app_with(|s| s.server.body_limit_bytes = 64 * 1024).await;
    let body = vec![b' '; 32 * 1024 * 1024];
    let request = head(
        "POST /api/v1/entries",
        app.addr,
        &[
            AUTHORIZATION,
            "Content-Type: application/json",
            &format!("Content-Length: {}", body.len()),
        ],
    );
    let mut stream = send(app.addr, request.as_bytes()).await;

    // Act: the whole body, and only then the answer
    let sent = stream.write_all(&body).await;
    let answer = read_answer(&mut stream, Duration::from_secs(10)).await;

    // Assert
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(answer.header("connection"), Some("close"), "{answer:?}");
    let body: Value = serde_json::from_str(&answer.body).unwrap();
    assert!(body["detail"].is_string(), "{body}");
    assert!(
        sent.is_ok(),
        "the server reads the rest of the body instead of resetting the connection: {sent:?}"
    );
    assert_closed(&mut stream, Duration::from_secs(5), "after a 413").await;
}

#[tokio::test]
async fn a_request_whose_body_does_not_come_is_answered_408_with_connection_close() {
    // Arrange: a body announced, a tenth of it sent
    let app = spawn_app_with(|s| s.server.request_timeout_seconds = 1).await;
    let request = head(
        "POST /api/v1/entries",
        app.addr,
        &[
            AUTHORIZATION,
            "Content-Type: application/json",
            "Content-Length: 100",
        ],
    );
    let mut stream = send(app.addr, format!("{request}{{\"expected").as_bytes()).await;

    // Act
    let answer = read_answer(&mut stream, Duration::from_secs(10)).await;

    // Assert
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.header("connection"), Some("close"), "{answer:?}");
    let body: Value = serde_json::from_str(&answer.body).unwrap();
    assert!(body["detail"].is_string(), "{body}");
    assert_closed(&mut stream, Duration::from_secs(5), "after a 408").await;
}

#[tokio::test]
async fn an_answer_before_the_body_is_read_says_connection_close() {
    // A report with a wrong token: refused before its body is read.
    let app = spawn_app_with(|_| {}).await;
    let body = json!({"expected_job_id": 1, "status": "success"}).to_string();
    let request = head(
        "POST /api/v1/entries",
        app.addr,
        &[
            "Authorization: Bearer bm_wrong",
            "Content-Type: application/json",
            &format!("Content-Length: {}", body.len() + 10),
        ],
    );
    let mut stream = send(app.addr, format!("{request}{body}").as_bytes()).await;

    let answer = read_answer(&mut stream, Duration::from_secs(10)).await;

    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(answer.header("connection"), Some("close"), "{answer:?}");
    assert_closed(&mut stream, Duration::from_secs(5), "after a 401").await;
}

#[tokio::test]
async fn a_kept_alive_connection_serves_request_after_request_then_closes_when_idle() {
    // Arrange
    let app = spawn_app_with(|s| s.server.idle_timeout_seconds = 1).await;
    let job = json!({"database_name": "kept"});
    let create = {
        let mut body = crate::common::valid_job();
        body["database_name"] = job["database_name"].clone();
        body.to_string()
    };
    let mut stream = send(app.addr, b"").await;

    // Act: three requests, one a POST whose body is read, on one connection
    let mut statuses = Vec::new();
    for request in [
        head("GET /healthz", app.addr, &[]),
        format!(
            "{}{create}",
            head(
                "POST /api/v1/jobs",
                app.addr,
                &[
                    AUTHORIZATION,
                    "Content-Type: application/json",
                    &format!("Content-Length: {}", create.len()),
                ],
            )
        ),
        head("GET /api/v1/jobs", app.addr, &[AUTHORIZATION]),
    ] {
        stream.write_all(request.as_bytes()).await.unwrap();
        let answer = read_answer(&mut stream, Duration::from_secs(10)).await;
        assert_ne!(answer.header("connection"), Some("close"), "{answer:?}");
        statuses.push(answer.status);
    }
    let idle = assert_closed(&mut stream, Duration::from_secs(10), "idle").await;

    // Assert
    assert_eq!(statuses, [200, 201, 200]);
    assert!(
        idle >= Duration::from_millis(800),
        "closed after {idle:?} of idleness, before idle_timeout_seconds"
    );
}

#[tokio::test]
async fn a_half_sent_request_head_is_closed_after_the_header_read_timeout() {
    // Arrange: a long idle timeout, so that only the header deadline can close these
    let app = spawn_app_with(|s| {
        s.server.header_read_timeout_seconds = 1;
        s.server.idle_timeout_seconds = 60;
    })
    .await;

    // Act: a first request cut short; a second one cut short after a whole request
    let mut first = send(app.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
    let mut second = send(app.addr, head("GET /healthz", app.addr, &[]).as_bytes()).await;
    let answer = read_answer(&mut second, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    second
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let first_closed = assert_closed(&mut first, Duration::from_secs(5), "the first").await;
    assert_closed(&mut second, Duration::from_secs(5), "the second").await;
    let second_closed = started.elapsed();

    // Assert
    assert_eq!(answer.status, 200);
    assert!(first_closed <= Duration::from_secs(3), "{first_closed:?}");
    assert!(
        second_closed <= Duration::from_secs(3),
        "a head begun on a kept-alive connection has header_read_timeout_seconds, not the idle timeout: {second_closed:?}"
    );
}

#[tokio::test]
async fn stopping_finishes_the_request_in_flight_and_refuses_new_connections() {
    // Arrange: a report held up by another writer's lock
    let app = spawn_app_with(|_| {}).await;
    let job = app.create_job(json!({})).await;
    let db = rusqlite::Connection::open(&app.db_path).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (client, url, addr) = (app.client.clone(), app.url("/api/v1/entries/"), app.addr);
    let report = tokio::spawn(async move {
        client
            .post(url)
            .json(&json!({"expected_job_id": job["id"], "status": "success",
                          "backup_timestamp_utc": "2026-11-24T02:31:00Z"}))
            .send()
            .await
            .unwrap()
            .status()
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Act: stop, then let the writer through
    let stopping = tokio::spawn(app.stop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = tokio::net::TcpStream::connect(addr).await;
    db.execute_batch("COMMIT").unwrap();

    // Assert
    assert_eq!(
        report.await.unwrap(),
        201,
        "the request in flight is answered"
    );
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("the server stops once its request is answered")
        .unwrap();
    assert!(refused.is_err(), "no new connection once stopping");
}
