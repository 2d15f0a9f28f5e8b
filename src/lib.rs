//! backup-monitor: watches that every database backup of every company and site really
//! happened, and tells the people who must act.

pub mod agent;
pub mod api;
pub mod app;
pub mod check;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod db;
pub mod domain;
pub mod metrics;
pub mod notify;
pub mod output;
pub mod rate_limit;
pub mod scheduler;
pub mod service;
pub mod systemd;
pub mod telemetry;
pub mod transfer;
pub mod web;

/// rustls needs one process-wide crypto provider; ours is ring (no OpenSSL, no aws-lc).
/// Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// musl's allocator serialises threads; the static build uses mimalloc instead.
#[cfg(target_env = "musl")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
