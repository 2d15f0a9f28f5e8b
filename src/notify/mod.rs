//! Telling people: the email sender and the outbox delivery loop.

pub mod email;
pub mod outbox;
