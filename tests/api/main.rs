//! HTTP tests: every test starts the real server on a free port over a fresh SQLite file
//! and talks to it through a real socket.

#[path = "../common/mod.rs"]
mod common;
mod smtp;

mod alerts;
mod auth;
mod backup;
mod commands;
mod companies;
mod connections;
mod docs;
mod entries;
mod jobs;
mod observability;
mod retention;
mod scheduler;
mod schedules;
mod service;
mod tokens;
mod trust;
