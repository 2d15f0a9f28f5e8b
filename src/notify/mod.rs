//! Telling people: the channels (email through SMTP; Slack, Teams, ntfy and webhooks over
//! HTTP), the payload each takes, and the outbox delivery loop.

pub mod channel;
pub mod email;
pub mod http;
pub mod outbox;
pub mod payload;

/// An error and its causes on one line, each cause once: what a failure message shows after
/// its hint.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
