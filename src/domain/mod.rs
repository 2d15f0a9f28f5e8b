//! Pure domain values and rules: no I/O and no clock; time is always a parameter.

pub mod alert;
pub mod auth;
pub mod boolean;
pub mod channel;
pub mod content;
pub mod cron;
pub mod cron_words;
pub mod email;
pub mod entry;
pub mod job;
pub mod network;
pub mod schedule;
pub mod status;
pub mod template;
pub mod time;
pub mod zone;
