//! A real SMTP server on 127.0.0.1 (mailin-embedded) that keeps what it receives.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailin_embedded::response::{INVALID_CREDENTIALS, OK};
use mailin_embedded::{AuthMechanism, Handler, Response, Server, SslConfig};

#[derive(Debug, Clone, Default)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

impl Mail {
    /// The subject, unfolded (a long header continues on lines that start with a space).
    pub fn subject(&self) -> String {
        let mut lines = self
            .data
            .lines()
            .skip_while(|l| !l.starts_with("Subject: "));
        let mut subject = lines
            .next()
            .and_then(|l| l.strip_prefix("Subject: "))
            .unwrap_or_default()
            .to_owned();
        for more in lines.take_while(|l| l.starts_with(' ') || l.starts_with('\t')) {
            subject.push_str(more);
        }
        subject
    }

    /// The body, decoded from quoted-printable when the message says so.
    pub fn body(&self) -> String {
        let normalized = self.data.replace("\r\n", "\n");
        let (headers, body) = normalized.split_once("\n\n").unwrap_or(("", &normalized));
        if !headers.contains("quoted-printable") {
            return body.to_owned();
        }
        let joined = body.replace("=\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'=', Some(byte)) => {
                    out.push(byte);
                    i += 3;
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[derive(Clone)]
struct Collector {
    received: Arc<Mutex<Vec<Mail>>>,
    current: Mail,
    password: Option<String>,
    /// How long each message takes to be accepted (a slow server).
    delay: Duration,
}

impl Handler for Collector {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        self.current = Mail {
            from: from.to_owned(),
            ..Mail::default()
        };
        OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        self.current.to.push(to.to_owned());
        OK
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        self.current.data.push_str(&String::from_utf8_lossy(buf));
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        std::thread::sleep(self.delay);
        self.received.lock().unwrap().push(self.current.clone());
        OK
    }

    fn auth_plain(&mut self, _authz: &str, _user: &str, password: &str) -> Response {
        if self.password.as_deref() == Some(password) {
            mailin_embedded::response::AUTH_OK
        } else {
            INVALID_CREDENTIALS
        }
    }
}

pub struct SmtpServer {
    pub port: u16,
    received: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpServer {
    /// Starts a plain SMTP server on a free port.
    pub fn start() -> Self {
        Self::start_on(0, None)
    }

    /// Starts it on `port` (0: any free port); with a password, it offers AUTH PLAIN and
    /// takes only that password.
    pub fn start_on(port: u16, password: Option<&str>) -> Self {
        Self::start_with(port, password, Duration::ZERO)
    }

    /// A plain SMTP server that takes `delay` to accept each message.
    pub fn start_slow(delay: Duration) -> Self {
        Self::start_with(0, None, delay)
    }

    fn start_with(port: u16, password: Option<&str>, delay: Duration) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind SMTP port");
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let handler = Collector {
            received: received.clone(),
            current: Mail::default(),
            password: password.map(str::to_owned),
            delay,
        };
        let mut server = Server::new(handler);
        server
            .with_name("smtp.test")
            .with_ssl(SslConfig::None)
            .expect("no TLS")
            .with_tcp_listener(listener);
        if password.is_some() {
            server.with_auth(AuthMechanism::Plain);
        }
        // Serves until the test process ends.
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        Self { port, received }
    }

    pub fn received(&self) -> Vec<Mail> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `n` messages have arrived (the server under test delivers in the
    /// background), at most 25 s: an alert queued by a tick run beside the server (not by
    /// the server itself) is found by the delivery loop's poll (every 5 s).
    pub async fn wait_for(&self, n: usize) -> Vec<Mail> {
        let deadline = Instant::now() + Duration::from_secs(25);
        loop {
            let mails = self.received();
            if mails.len() >= n {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} emails, got {}: {mails:?}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
