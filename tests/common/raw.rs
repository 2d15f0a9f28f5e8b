//! HTTP over a bare TCP socket, for what a client library hides: half-sent requests,
//! stalled connections, the exact headers of an answer and whether the server closed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An answer read off the socket: its status line and headers (names lowercased), and its
/// body as text.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawAnswer {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A request head (`GET /healthz` and the like) with `Host` and the given extra header
/// lines, ready to send.
pub fn head(request_line: &str, addr: SocketAddr, extra: &[&str]) -> String {
    let mut out = format!("{request_line} HTTP/1.1\r\nHost: {addr}\r\n");
    for line in extra {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out
}

/// Opens a connection and sends `bytes` (a whole request, or part of one).
pub async fn send(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("send");
    stream
}

/// Reads one answer with a `Content-Length` body, within `within`.
pub async fn read_answer(stream: &mut (impl AsyncRead + Unpin), within: Duration) -> RawAnswer {
    tokio::time::timeout(within, async {
        let mut buf = Vec::new();
        let mut byte = [0_u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            let n = stream
                .read(&mut byte)
                .await
                .expect("read the answer's head");
            assert!(
                n > 0,
                "the connection closed before a whole answer: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&buf).into_owned();
        let mut lines = text.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"));
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0_u8; length];
        stream.read_exact(&mut body).await.expect("read the body");
        RawAnswer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    })
    .await
    .expect("an answer in time")
}

/// How the server ended a connection, seen from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The server closed it (end of stream, or a reset), after this long.
    Closed(Duration),
    /// Still open after the time waited.
    Open,
}

/// Waits up to `within` for the server to close `stream`, discarding what it sends.
pub async fn wait_for_close(stream: &mut (impl AsyncRead + Unpin), within: Duration) -> Ended {
    let started = Instant::now();
    let mut sink = [0_u8; 4096];
    let read = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    match read {
        Ok(()) => Ended::Closed(started.elapsed()),
        Err(_) => Ended::Open,
    }
}
