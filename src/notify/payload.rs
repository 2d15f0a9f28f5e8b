//! The request each kind of channel takes, as its service documents it: Slack's incoming
//! webhook message, a Teams Workflows message carrying an Adaptive Card, ntfy's plain-text
//! publish with its headers, and our own signed JSON webhook.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::domain::alert::Brief;
use crate::domain::channel::Severity;

/// The header that carries a webhook body's HMAC-SHA256 under the channel's secret.
pub const SIGNATURE_HEADER: &str = "X-Backup-Monitor-Signature";

/// One HTTP POST: its body, content type and extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
}

const JSON: &str = "application/json";

fn json_payload(value: &Value) -> Payload {
    Payload {
        body: value.to_string().into_bytes(),
        content_type: JSON,
        headers: Vec::new(),
    }
}

/// Slack's incoming webhook `{"text": …}` (Mattermost and Rocket.Chat take it as is): the
/// title in bold after an emoji, then the brief. `&`, `<` and `>` are escaped as Slack
/// requires (so a `<!channel>` in an error message cannot page a whole channel); Markdown
/// renderers (Mattermost, Rocket.Chat) decode the same entities.
pub fn slack(brief: &Brief, severity: Severity) -> Payload {
    let text = format!(
        "{} *{}*\n{}",
        severity.emoji(),
        slack_escape(&brief.title),
        slack_escape(&brief.text_after_title())
    );
    json_payload(&json!({ "text": text }))
}

fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A Microsoft Teams Workflows webhook message: one attachment holding an Adaptive Card
/// (1.4) with the title, what happened, the facts, the reason and a button to the job.
pub fn teams(brief: &Brief, severity: Severity) -> Payload {
    let mut body = vec![
        json!({"type": "TextBlock", "text": brief.title, "weight": "Bolder", "size": "Medium",
               "color": severity.card_color(), "wrap": true}),
        json!({"type": "TextBlock", "text": brief.headline, "wrap": true}),
    ];
    if !brief.facts.is_empty() {
        let facts: Vec<Value> = brief
            .facts
            .iter()
            .map(|(title, value)| json!({"title": title, "value": value}))
            .collect();
        body.push(json!({"type": "FactSet", "facts": facts}));
    }
    for line in &brief.lines {
        body.push(json!({"type": "TextBlock", "text": line, "wrap": true, "spacing": "None"}));
    }
    if let Some(reason) = &brief.reason {
        body.push(json!({"type": "TextBlock", "text": reason, "wrap": true,
                         "fontType": "Monospace", "isSubtle": true}));
    }
    let mut card = json!({
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": body,
    });
    if let Some(link) = &brief.link {
        card["actions"] =
            json!([{"type": "Action.OpenUrl", "title": "Open in backup-monitor", "url": link}]);
    }
    json_payload(&json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    }))
}

/// ntfy's publish: the brief as the plain-text body, with `Title`, `Priority` (1 to 5),
/// `Tags` (the first one shown as an emoji) and `Click` (the link) as headers.
pub fn ntfy(brief: &Brief, priority: u8, tags: &[&str]) -> Payload {
    let mut headers = vec![
        ("Title", header_text(&brief.title)),
        ("Priority", priority.to_string()),
        ("Tags", header_text(&tags.join(","))),
    ];
    if let Some(link) = brief.link.as_ref().filter(|l| l.is_ascii()) {
        headers.push(("Click", header_text(link)));
    }
    Payload {
        body: brief.text_after_title().into_bytes(),
        content_type: "text/plain; charset=utf-8",
        headers,
    }
}

/// A header value that HTTP can carry: control characters become spaces, and text that is
/// not ASCII becomes an RFC 2047 encoded word (`=?UTF-8?B?…?=`), which ntfy decodes.
pub fn header_text(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.is_ascii() {
        clean
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(clean.as_bytes())
        )
    }
}

/// Our webhook: the JSON document, signed with `X-Backup-Monitor-Signature:
/// sha256=<hex HMAC-SHA256 of the body>` when the channel has a secret.
pub fn webhook(document: &Value, secret: Option<&str>) -> Payload {
    let mut payload = json_payload(document);
    if let Some(secret) = secret {
        payload
            .headers
            .push((SIGNATURE_HEADER, signature(secret, &payload.body)));
    }
    payload
}

/// `sha256=<hex HMAC-SHA256 of body under secret>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn brief() -> Brief {
        Brief {
            title: "FAILED acme/Lyon db=erp for 02:30 UTC".into(),
            headline: "The agent reported a FAILED backup.".into(),
            facts: vec![("Company".into(), "acme".into())],
            lines: Vec::new(),
            reason: Some("pg_dump: <stdin> & <!channel>".into()),
            link: Some("https://m.example/#job=3".into()),
        }
    }

    #[test]
    fn slack_text_escapes_what_slack_would_read_as_a_mention() {
        let payload = slack(&brief(), Severity::Problem);
        let value: Value = serde_json::from_slice(&payload.body).unwrap();
        let text = value["text"].as_str().unwrap();
        assert_eq!(
            text,
            "🔴 *FAILED acme/Lyon db=erp for 02:30 UTC*\nThe agent reported a FAILED backup.\nCompany: acme\nReason: pg_dump: &lt;stdin&gt; &amp; &lt;!channel&gt;\nhttps://m.example/#job=3"
        );
        assert_eq!(value.as_object().unwrap().len(), 1, "only text");
    }

    #[test]
    fn non_ascii_header_text_is_an_encoded_word_and_control_characters_go() {
        assert_eq!(header_text("LATE acme/Lyon"), "LATE acme/Lyon");
        assert_eq!(header_text("a\r\nb"), "a  b");
        assert_eq!(header_text("Société"), "=?UTF-8?B?U29jacOpdMOp?=");
    }

    #[test]
    fn a_signature_is_the_hmac_sha256_of_the_body_in_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let unsigned = webhook(&json!({"text": "x"}), None);
        assert!(unsigned.headers.is_empty());
    }
}
