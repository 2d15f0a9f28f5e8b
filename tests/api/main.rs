//! HTTP tests: every test starts the real server on a free port over a fresh SQLite file
//! and talks to it through a real socket.

#[path = "../common/mod.rs"]
mod common;
mod receiver;
mod smtp;
mod snooze;

mod alerts;
mod auth;
mod backup;
mod channels;
mod commands;
mod companies;
mod connections;
mod content;
mod docs;
mod entries;
mod jobs;
mod observability;
mod pings;
mod retention;
mod runs;
mod scheduler;
mod schedules;
mod service;
mod silent_agent;
mod tick_chunks;
mod tokens;
mod trust;
