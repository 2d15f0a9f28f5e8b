//! HTTP tests: every test starts the real server on a free port over a fresh SQLite file
//! and talks to it through a real socket.

mod helpers;
mod smtp;

mod alerts;
mod commands;
mod docs;
mod entries;
mod jobs;
mod scheduler;
mod service;
