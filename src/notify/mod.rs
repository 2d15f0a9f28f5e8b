//! Telling people: the channels (email through SMTP; Slack, Teams, ntfy and webhooks over
//! HTTP), the payload each takes, and the outbox delivery loop.

pub mod channel;
pub mod email;
pub mod http;
pub mod outbox;
pub mod payload;
