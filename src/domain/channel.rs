//! Channels: where alerts go (DESIGN §13). The kinds of channel, which alerts a channel
//! takes (routing), and what a receiver's HTTP answer means for a delivery.

use serde::Serialize;
use utoipa::ToSchema;

use super::alert::AlertKind;

/// The longest channel name: it is typed on the command line and shown in the API.
pub const NAME_MAX: usize = 64;

/// The name of the email channel that exists without being declared when SMTP is set up.
pub const EMAIL: &str = "email";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// A Slack incoming webhook (Mattermost and Rocket.Chat take the same message).
    Slack,
    /// A Microsoft Teams Workflows webhook, posting an Adaptive Card.
    Teams,
    /// Any HTTP endpoint, given the alert as JSON, signed when a secret is set.
    Webhook,
    /// An ntfy topic (ntfy.sh or self-hosted): a push notification on a phone.
    Ntfy,
    /// SMTP, to `alerts.to` and the job's `notify_emails`.
    Email,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 5] = [
        ChannelKind::Slack,
        ChannelKind::Teams,
        ChannelKind::Webhook,
        ChannelKind::Ntfy,
        ChannelKind::Email,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Slack => "slack",
            ChannelKind::Teams => "teams",
            ChannelKind::Webhook => "webhook",
            ChannelKind::Ntfy => "ntfy",
            ChannelKind::Email => "email",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == s)
    }

    /// Every kind's name, for messages: `slack, teams, webhook, ntfy, email`.
    pub fn names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }

    /// Whether the channel is an HTTP endpoint (and so needs a `url`).
    pub fn is_http(self) -> bool {
        self != ChannelKind::Email
    }
}

/// Whether `name` can name a channel: letters, digits, `-` and `_`, at most [`NAME_MAX`].
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= NAME_MAX
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Which alerts a channel takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// Only alerts about these companies (exact names); empty: every company.
    pub companies: Vec<String>,
    /// Only alerts of these kinds; empty: every kind.
    pub kinds: Vec<AlertKind>,
}

impl Route {
    /// Whether an alert of `kind` about `companies` goes to this channel. An alert about an
    /// agent is about the companies of the jobs it names: one of them is enough.
    pub fn takes(&self, kind: AlertKind, companies: &[String]) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&kind))
            && (self.companies.is_empty() || companies.iter().any(|c| self.companies.contains(c)))
    }
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver accepted it.
    Delivered,
    /// Not this time: tried again after the backoff, or after `after_seconds` when the
    /// receiver said so (`Retry-After`).
    Retry {
        reason: String,
        after_seconds: Option<u64>,
    },
    /// The receiver refused it for good (a 4xx other than 408 and 429): trying again would
    /// only be refused again, so it is recorded and not retried.
    Refused { reason: String },
}

/// How an HTTP status answers a delivery: 2xx delivered; 408, 429 and 5xx retried; any
/// other (4xx, or a redirect that was not followed) refused for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    Retry,
    Refused,
}

pub fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 429 | 500..=599 => Verdict::Retry,
        _ => Verdict::Refused,
    }
}

/// How urgent an alert is for ntfy (its `Priority` header, 1 to 5).
pub fn ntfy_priority(kind: AlertKind) -> u8 {
    match kind {
        AlertKind::Failed | AlertKind::Late | AlertKind::Hung | AlertKind::AgentSilent => 5,
        AlertKind::Suspect | AlertKind::Reminder => 4,
        AlertKind::Recovered | AlertKind::AgentBack => 3,
    }
}

/// How an alert looks at a glance: bad news, a warning, or good news.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Problem,
    Warning,
    Good,
}

pub fn severity(kind: AlertKind) -> Severity {
    match kind {
        AlertKind::Failed | AlertKind::Late | AlertKind::Hung | AlertKind::AgentSilent => {
            Severity::Problem
        }
        AlertKind::Suspect | AlertKind::Reminder => Severity::Warning,
        AlertKind::Recovered | AlertKind::AgentBack => Severity::Good,
    }
}

impl Severity {
    /// The emoji that leads a chat message.
    pub fn emoji(self) -> &'static str {
        match self {
            Severity::Problem => "🔴",
            Severity::Warning => "🟠",
            Severity::Good => "✅",
        }
    }

    /// ntfy's tag for it, which ntfy shows as that emoji.
    pub fn ntfy_tag(self) -> &'static str {
        match self {
            Severity::Problem => "rotating_light",
            Severity::Warning => "warning",
            Severity::Good => "white_check_mark",
        }
    }

    /// The Adaptive Card colour of the title.
    pub fn card_color(self) -> &'static str {
        match self {
            Severity::Problem => "Attention",
            Severity::Warning => "Warning",
            Severity::Good => "Good",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_filters_by_company_and_kind_and_an_empty_filter_takes_all() {
        let acme_failures = Route {
            companies: vec!["acme".into()],
            kinds: vec![AlertKind::Failed, AlertKind::Late],
        };
        let everything = Route::default();
        let companies = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let cases = [
            (
                &acme_failures,
                AlertKind::Failed,
                companies(&["acme"]),
                true,
                "its company and kind",
            ),
            (
                &acme_failures,
                AlertKind::Recovered,
                companies(&["acme"]),
                false,
                "another kind",
            ),
            (
                &acme_failures,
                AlertKind::Failed,
                companies(&["globex"]),
                false,
                "another company",
            ),
            (
                &acme_failures,
                AlertKind::Late,
                companies(&["Acme"]),
                false,
                "names match exactly",
            ),
            (
                &acme_failures,
                AlertKind::Late,
                companies(&["globex", "acme"]),
                true,
                "an agent alert naming one of its companies",
            ),
            (
                &acme_failures,
                AlertKind::Late,
                companies(&[]),
                false,
                "an agent alert naming no job",
            ),
            (
                &everything,
                AlertKind::AgentBack,
                companies(&[]),
                true,
                "no filter: everything",
            ),
        ];
        for (route, kind, companies, expected, why) in cases {
            assert_eq!(route.takes(kind, &companies), expected, "{why}");
        }
    }

    #[test]
    fn statuses_are_delivered_retried_or_refused() {
        let cases = [
            (200, Verdict::Delivered),
            (202, Verdict::Delivered),
            (204, Verdict::Delivered),
            (408, Verdict::Retry),
            (429, Verdict::Retry),
            (500, Verdict::Retry),
            (503, Verdict::Retry),
            (301, Verdict::Refused),
            (400, Verdict::Refused),
            (401, Verdict::Refused),
            (403, Verdict::Refused),
            (404, Verdict::Refused),
            (410, Verdict::Refused),
        ];
        for (status, expected) in cases {
            assert_eq!(verdict(status), expected, "{status}");
        }
    }

    #[test]
    fn ntfy_priorities_follow_the_design() {
        let priorities: Vec<(&str, u8)> = AlertKind::ALL
            .iter()
            .map(|k| (k.as_str(), ntfy_priority(*k)))
            .collect();
        assert_eq!(
            priorities,
            [
                ("late", 5),
                ("failed", 5),
                ("suspect", 4),
                ("hung", 5),
                ("recovered", 3),
                ("agent_silent", 5),
                ("agent_back", 3),
                ("reminder", 4)
            ]
        );
    }

    #[test]
    fn channel_names_are_short_words() {
        for good in ["ops", "acme-teams", "on_call_2"] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in ["", "a b", "ops/1", "é", &"x".repeat(NAME_MAX + 1)] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }
}
