//! Serving HTTP/1.1 connections with the limits of `[server]`, which `axum::serve` has no
//! setting for: at most `max_connections` at once (beyond it, nothing more is accepted until
//! one closes; the rest wait in the listen backlog), a deadline to send a request head
//! (`header_read_timeout_seconds`, counted from the connection's opening, or from the first
//! byte of a later request), a deadline between requests and for a client to take its
//! answer (`idle_timeout_seconds`), and graceful shutdown: on the signal, stop accepting,
//! finish the requests in flight, then close.
//!
//! Also: each request carries `ConnectInfo<SocketAddr>` (the rate limiter's client address),
//! and an answer given before the request body was read whole says `Connection: close`,
//! since the connection cannot carry another request after it (413, 401 on a POST, 408).
//! Such a connection is closed the way web servers do it ("lingering close"): the answer
//! is sent and our side shut down, then what the client still sends is read and dropped for
//! a moment, so that closing with unread bytes (a TCP reset) does not destroy the answer
//! before the client has read it.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, Response};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::{Service, ServiceExt};

/// How long a connection closed with its request body unread keeps reading (and dropping)
/// what the client still sends, at most.
const LINGER: Duration = Duration::from_secs(2);

/// The connection limits, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes, then waits for the open
/// connections to finish their requests.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    warn_if_too_few_files(limits.max_connections);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop, stopping) = watch::channel(());
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // A connection slot first: beyond the limit, clients wait in the backlog.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = serve_connection(stream, peer, app.clone(), limits, stopping.clone());
        connections.spawn(async move {
            connection.await;
            drop(permit);
        });
        while let Some(ended) = connections.try_join_next() {
            log_abnormal_end(ended);
        }
    }
    drop(listener);
    drop(stop);
    tracing::debug!(
        connections = connections.len(),
        "not accepting any more; waiting for the open connections"
    );
    while let Some(ended) = connections.join_next().await {
        log_abnormal_end(ended);
    }
}

/// File descriptors the service needs besides its connections (SQLite's files, the
/// listener, the logs, the runtime's).
const OTHER_FILES: u64 = 64;

/// Warns when the process may not open enough files for `max_connections` connections
/// (read from `/proc/self/limits`; nothing is said where that file does not exist).
fn warn_if_too_few_files(max_connections: usize) {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return;
    };
    let soft: Option<u64> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok());
    let needed = u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_add(OTHER_FILES);
    if let Some(soft) = soft.filter(|soft| *soft < needed) {
        tracing::warn!(
            open_files_limit = soft,
            max_connections,
            "the process may open only {soft} files, fewer than server.max_connections needs \
             ({needed}): raise LimitNOFILE in the systemd unit (or ulimit -n), or lower \
             server.max_connections"
        );
    }
}

fn log_abnormal_end(ended: Result<(), tokio::task::JoinError>) {
    if let Err(e) = ended {
        tracing::error!(error = %e, "a connection's task ended abnormally");
    }
}

/// An error of `accept`: a client that went away is nothing; anything else (out of file
/// descriptors, say) is logged and waited out, as hyper's own server did.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection (out of file descriptors? compare LimitNOFILE with server.max_connections); retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Serves one connection until the client or the server closes it, a deadline passes, or
/// (after `stopping` fires) its request in flight is answered.
async fn serve_connection<S>(
    stream: TcpStream,
    peer: SocketAddr,
    app: S,
    limits: Limits,
    mut stopping: watch::Receiver<()>,
) where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let activity = Arc::new(Activity::new(Instant::now()));
    let io = TokioIo::new(Watched {
        inner: Some(stream),
        activity: activity.clone(),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request: Request<Incoming>| {
            answer(app.clone(), request, peer, activity.clone())
        })
    };
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(connection);
    let mut shutting_down = false;
    loop {
        let deadline = activity.deadline(limits);
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            _ = stopping.changed(), if !shutting_down => {
                shutting_down = true;
                connection.as_mut().graceful_shutdown();
            }
            () = sleep_until(deadline) => {
                if activity.deadline(limits).is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!(%peer, "closing a connection that sent no request head, or took no answer, in time");
                    return;
                }
            }
            () = activity.changed.notified() => {}
        }
    }
    if let Some(stream) = activity.take_lingering() {
        linger(stream).await;
    }
}

/// Reads and drops what the client still sends, until it closes or [`LINGER`] has passed;
/// our side was shut down already, after the answer.
async fn linger(mut stream: TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut sink = vec![0_u8; 64 * 1024];
    let _ = tokio::time::timeout(LINGER, async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// One request through `app`, with its client address, its body watched to its end and
/// its answer's body tracked until it is sent.
async fn answer<S>(
    app: S,
    request: Request<Incoming>,
    peer: SocketAddr,
    activity: Arc<Activity>,
) -> Result<Response<Body>, Infallible>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    let handling = activity.request_started();
    let (parts, body) = request.into_parts();
    // An empty body is read whole from the start.
    let read_whole = Arc::new(AtomicBool::new(http_body::Body::is_end_stream(&body)));
    let mut request = Request::from_parts(
        parts,
        Body::new(WatchedBody {
            inner: body,
            read_whole: read_whole.clone(),
        }),
    );
    request.extensions_mut().insert(ConnectInfo(peer));
    let mut response = app.oneshot(request).await?;
    if !read_whole.load(Ordering::Acquire) {
        // Hyper will not read the rest of the body to reach the next request: it closes
        // the connection after this answer. Say so, so that the client does not send its
        // next request on a connection that is going away.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        activity.phase().linger = true;
    }
    let responding = handling.answered();
    Ok(response.map(|body| {
        Body::new(AnswerBody {
            inner: body,
            _responding: responding,
        })
    }))
}

/// What a connection is doing, for its deadlines.
struct Activity {
    opened: Instant,
    state: Mutex<Phase>,
    /// Woken when a deadline may have come nearer (an answer sent, a new head begun).
    changed: Notify,
}

struct Phase {
    /// Requests whose answer is being made.
    handling: usize,
    /// Answers being sent.
    responding: usize,
    /// Whether a request head has been read whole on this connection.
    served_any: bool,
    /// When the connection last became idle.
    idle_since: Instant,
    /// When the first byte of the next request came, while idle.
    head_started: Option<Instant>,
    /// When the last bytes were written.
    last_write: Instant,
    /// Whether the connection closes with a request body unread (see [`linger`]).
    linger: bool,
    /// The socket, once hyper has shut it down, when it is to linger.
    lingering: Option<TcpStream>,
}

impl Activity {
    fn new(now: Instant) -> Self {
        Self {
            opened: now,
            state: Mutex::new(Phase {
                handling: 0,
                responding: 0,
                served_any: false,
                idle_since: now,
                head_started: None,
                last_write: now,
                linger: false,
                lingering: None,
            }),
            changed: Notify::new(),
        }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// When the connection is to be closed if nothing happens; None while a request is
    /// being handled (`request_timeout_seconds` bounds that).
    fn deadline(&self, limits: Limits) -> Option<Instant> {
        let phase = self.phase();
        if phase.handling > 0 {
            None
        } else if phase.responding > 0 {
            Some(phase.last_write + limits.idle_timeout)
        } else if !phase.served_any {
            Some(self.opened + limits.header_read_timeout)
        } else if let Some(started) = phase.head_started {
            Some(started + limits.header_read_timeout)
        } else {
            Some(phase.idle_since + limits.idle_timeout)
        }
    }

    fn request_started(self: &Arc<Self>) -> Handling {
        let mut phase = self.phase();
        phase.handling += 1;
        phase.served_any = true;
        phase.head_started = None;
        Handling(self.clone())
    }

    fn read(&self) {
        let mut phase = self.phase();
        if phase.served_any
            && phase.handling == 0
            && phase.responding == 0
            && phase.head_started.is_none()
        {
            phase.head_started = Some(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    fn wrote(&self) {
        self.phase().last_write = Instant::now();
    }

    fn take_lingering(&self) -> Option<TcpStream> {
        self.phase().lingering.take()
    }
}

/// A request being handled; dropped when its answer is made (or the request abandoned).
struct Handling(Arc<Activity>);

impl Handling {
    fn answered(self) -> Responding {
        {
            let mut phase = self.0.phase();
            phase.responding += 1;
            phase.last_write = Instant::now();
        }
        Responding(self.0.clone())
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.finish(|phase| phase.handling -= 1);
    }
}

/// An answer being sent; dropped once hyper has written its body.
struct Responding(Arc<Activity>);

impl Drop for Responding {
    fn drop(&mut self) {
        self.0.finish(|phase| phase.responding -= 1);
    }
}

impl Activity {
    /// Ends a request's handling or its answer (`end` counts it down); with neither left,
    /// the connection is idle from now.
    fn finish(&self, end: impl FnOnce(&mut Phase)) {
        let mut phase = self.phase();
        end(&mut phase);
        if phase.handling == 0 && phase.responding == 0 {
            phase.idle_since = Instant::now();
        }
        drop(phase);
        self.changed.notify_one();
    }
}

/// The connection's socket, telling its [`Activity`] about reads and writes. When hyper
/// shuts it down on a connection that is to linger, the socket goes to the `Activity`
/// instead of being closed with the connection.
struct Watched {
    inner: Option<TcpStream>,
    activity: Arc<Activity>,
}

impl Watched {
    fn stream(&mut self) -> io::Result<&mut TcpStream> {
        self.inner
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let Some(stream) = self.inner.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let polled = Pin::new(stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(self.stream()?).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(self.stream()?).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(TcpStream::is_write_vectored)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.stream()?).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(stream) = self.inner.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let shut = Pin::new(stream).poll_shutdown(cx);
        if matches!(shut, Poll::Ready(Ok(()))) {
            let this = &mut *self;
            let mut phase = this.activity.phase();
            if phase.linger {
                phase.lingering = this.inner.take();
            }
        }
        shut
    }
}

/// A request body that records whether it was read to its end.
struct WatchedBody {
    inner: Incoming,
    read_whole: Arc<AtomicBool>,
}

impl http_body::Body for WatchedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => self.inner.is_end_stream(),
            _ => false,
        };
        if ended {
            self.read_whole.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An answer's body, which keeps the connection "responding" until hyper drops it.
struct AnswerBody {
    inner: Body,
    _responding: Responding,
}

impl http_body::Body for AnswerBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
