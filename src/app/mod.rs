//! Building the service (database, migrations, listener, routes and layers) and running it
//! until a shutdown signal. `Application::build` accepts port 0, which is what tests use.

mod server;
pub mod state;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::Layer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::normalize_path::NormalizePathLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use self::state::AppState;
use crate::api::auth::AuthState;
use crate::api::{self, ApiState};
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::writer::Writer;
use crate::db::Db;
use crate::domain::alert::AlertKind;
use crate::domain::entry::ReportStatus;
use crate::metrics;
use crate::notify::outbox::Outbox;
use crate::rate_limit::{self, Limiter};
use crate::scheduler::{Scheduler, TickSettings};
use crate::service::tokens;
use crate::systemd;
use crate::web;

pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Opens the database, applies migrations and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Clock::system()).await
    }

    /// [`Application::build`] with the clock the service reads `now` from (tests set it).
    pub async fn build_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        metrics::init(
            &ReportStatus::ALL.map(ReportStatus::as_str),
            &AlertKind::ALL.map(AlertKind::as_str),
        );
        crate::install_crypto_provider();
        let path = settings.database_path();
        let db = Db::open(&path)?;
        let migrating = db.clone();
        crate::systemd::starting(
            "applying database migrations",
            tokio::task::spawn_blocking(move || migrating.migrate()),
        )
        .await
        .context("Failed to run migrations")??;
        tracing::info!(database = %path.display(), "database ready");
        let bootstrapping = db.clone();
        let admin_token = settings.auth.admin_token.clone();
        tokio::task::spawn_blocking(move || {
            tokens::bootstrap(&bootstrapping, admin_token.as_ref())
        })
        .await
        .context("Failed to set up the first admin token")??;
        let listener = TcpListener::bind(settings.server.bind)
            .await
            .with_context(|| format!("Failed to listen on {}", settings.server.bind))?;
        let limiter = Arc::new(Limiter::new(&settings.auth));
        let writer = Writer::start(
            db.writer_conn()
                .context("Failed to open the writer's connection")?,
        )
        .context("Failed to start the writer thread")?;
        let secrets = db.clone();
        let badge_secret: Arc<str> = tokio::task::spawn_blocking(move || {
            secrets.installation_value("badge_secret", tokens::generate_secret)
        })
        .await
        .context("Failed to read the badge secret")??
        .into();
        let settings = Arc::new(settings);
        Ok(Self {
            listener,
            state: AppState {
                auth: AuthState {
                    db: db.clone(),
                    admin_token: settings.auth.admin_token.clone(),
                    limiter,
                    trusted_proxies: settings.server.trusted_proxy_blocks().into(),
                },
                api: ApiState {
                    db,
                    settings,
                    alerts_queued: Arc::new(Notify::new()),
                    writer,
                    badge_secret,
                    clock,
                },
            },
        })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The group-commit writer the handlers use, for tests of its faults.
    #[doc(hidden)]
    pub fn writer(&self) -> Writer {
        self.state.api.writer.clone()
    }

    /// Starts the scheduler (unless `scheduler.enabled` is false) and the alert delivery,
    /// serves until `shutdown` completes, then finishes the requests in flight, the current
    /// tick and the delivery round.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.local_addr()?;
        let state = self.state;
        let settings = state.api.settings.clone();
        let db = state.api.db.clone();

        let outbox = Outbox::from_settings(db.clone(), &settings, state.api.alerts_queued.clone())?;
        if outbox.channels().is_empty() {
            tracing::warn!("no SMTP server (smtp.host) and no notify.channels configured: alerts are recorded in the outbox and logged, not sent");
        }
        let (stop_delivery, delivery_stopped) = tokio::sync::oneshot::channel::<()>();
        let delivery = tokio::spawn(outbox.run(async {
            let _ = delivery_stopped.await;
        }));
        let forgetting = tokio::spawn(rate_limit::forget_idle_keys(state.auth.limiter.clone()));
        let metrics_upkeep = tokio::spawn(metrics::upkeep());
        let checkpointing = tokio::spawn(crate::db::checkpoint_continually(
            db.clone(),
            state.api.writer.clone(),
            crate::db::CHECKPOINT_EVERY,
        ));
        let scheduler = if settings.scheduler.enabled {
            Some(
                Scheduler::start(
                    db.clone(),
                    state.api.writer.clone(),
                    &settings.scheduler.tick,
                    TickSettings {
                        max_catchup: usize::try_from(settings.scheduler.max_catchup_slots)
                            .unwrap_or(usize::MAX),
                        repeat_every_minutes: settings.alerts.repeat_every_minutes,
                    },
                    settings.retention.keep_days,
                    state.api.alerts_queued.clone(),
                )
                .await?,
            )
        } else {
            tracing::info!("scheduler disabled (scheduler.enabled = false): no tick will run, no missing backup will be recorded, nothing old will be pruned");
            None
        };

        systemd::ready(addr);
        let watchdog = systemd::watchdog(db, state.api.writer.clone());
        tracing::info!(%addr, "listening on http://{addr} (API docs at http://{addr}/docs)");
        let limits = server::Limits {
            max_connections: settings.server.max_connections,
            header_read_timeout: Duration::from_secs(settings.server.header_read_timeout_seconds),
            idle_timeout: Duration::from_secs(settings.server.idle_timeout_seconds),
        };
        let app = NormalizePathLayer::trim_trailing_slash().layer(router(state));
        server::serve(self.listener, app, limits, shutdown).await;

        systemd::stopping();
        forgetting.abort();
        metrics_upkeep.abort();
        checkpointing.abort();
        if let Some(watchdog) = watchdog {
            watchdog.abort();
        }
        if let Some(scheduler) = scheduler {
            scheduler.stop().await;
        }
        let _ = stop_delivery.send(());
        if let Err(e) = delivery.await {
            tracing::error!(error = %e, "alert delivery ended abnormally");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Every route with its layers. Trailing slashes are trimmed before routing (see
/// `run_until_stopped`), so `/api/v1/jobs/` and `/api/v1/jobs` are the same route.
pub fn router(state: AppState) -> Router {
    let settings = state.api.settings.clone();
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request| {
            let route = request
                .extensions()
                .get::<MatchedPath>()
                .map(MatchedPath::as_str)
                .unwrap_or("unmatched");
            // A ping URL's path holds its key, a credential: the route names it instead.
            let path = if api::ping::PING_PREFIXES
                .iter()
                .any(|p| request.uri().path().starts_with(p))
            {
                route
            } else {
                request.uri().path()
            };
            // A stored report fills in the entry's fields (`Reported::committed`): one line
            // per report, the response's, says what was stored.
            tracing::info_span!(
                "request",
                method = %request.method(),
                route,
                path,
                entry_id = tracing::field::Empty,
                job_id = tracing::field::Empty,
                entry_status = tracing::field::Empty,
            )
        })
        .on_response(DefaultOnResponse::new().level(Level::INFO));
    let mut router = Router::new()
        .merge(api::router(settings.metrics.require_token).with_state(state.api.clone()))
        .merge(
            web::router()
                .layer(SetResponseHeaderLayer::overriding(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(CONTENT_SECURITY_POLICY),
                ))
                .layer(SetResponseHeaderLayer::overriding(
                    header::X_FRAME_OPTIONS,
                    HeaderValue::from_static("DENY"),
                ))
                .layer(SetResponseHeaderLayer::overriding(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                )),
        )
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::auth::authenticate::<AppState>,
        ))
        .layer(axum::middleware::from_fn(api::metrics::track))
        .layer(DefaultBodyLimit::max(settings.server.body_limit_bytes))
        .layer(axum::middleware::from_fn_with_state(
            Duration::from_secs(settings.server.request_timeout_seconds),
            api::time_limit,
        ))
        .layer(trace)
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .with_state(state);
    if let Some(cors) = cors(&settings.server.cors_origins) {
        router = router.layer(cors);
    }
    router
}

/// The pages may load only this host's own files (the vendored Swagger UI and ReDoc draw
/// icons from `data:` URLs, ReDoc styles inline and searches in a `blob:` worker), and may
/// not be framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
    style-src 'self' 'unsafe-inline'; worker-src 'self' blob:; object-src 'none'; \
    base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// CORS for the configured origins; none configured, no CORS headers at all. Credentials
/// are never allowed: the API takes bearer tokens, not cookies.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .expose_headers([api::TOTAL_COUNT, HeaderName::from_static("x-next-cursor")])
            .max_age(Duration::from_secs(600)),
    )
}

/// Completes on Ctrl-C or SIGTERM. The handlers are installed when this is called (inside
/// the runtime), not when the future is first polled: a SIGTERM that comes while the
/// service is still starting (systemd stopping it right after READY) stops it cleanly too.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let listen = |kind: SignalKind, name: &'static str| {
        let registered = signal(kind);
        async move {
            match registered {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for {name}");
                    std::future::pending::<()>().await;
                }
            }
        }
    };
    let interrupt = listen(SignalKind::interrupt(), "Ctrl-C");
    let terminate = listen(SignalKind::terminate(), "SIGTERM");
    async move {
        tokio::select! {
            () = interrupt => {},
            () = terminate => {},
        }
        tracing::info!("shutdown requested: finishing requests in flight");
    }
}
