//! backup-monitor: watches that every database backup of every company and site really
//! happened, and tells the people who must act.

pub mod api;
pub mod app;
pub mod auth;
pub mod check;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod notify;
pub mod scheduler;
pub mod telemetry;
pub mod web;
