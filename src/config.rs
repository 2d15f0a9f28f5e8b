//! Settings: `monitor.toml`, then the environment (and `.env`), then command-line flags.
//!
//! Every key is listed once in [`KEYS`]; that table drives the environment names, the
//! error messages (which always name the key and where its value came from) and the test
//! that keeps `monitor.toml.example` complete.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, Serializer};

use crate::domain::alert::AlertKind;
use crate::domain::boolean;
use crate::domain::channel::{self, ChannelKind, Route};
use crate::domain::job::{REPEAT_MAX, REPEAT_MIN};
use crate::domain::network::AddressBlock;
use crate::domain::schedule::{GRACE_MAX, GRACE_MIN};

/// The commented example configuration, printed by nothing but checked by tests.
pub const EXAMPLE: &str = include_str!("../monitor.toml.example");

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub database: DatabaseSettings,
    #[serde(default)]
    pub scheduler: SchedulerSettings,
    #[serde(default)]
    pub smtp: SmtpSettings,
    #[serde(default)]
    pub alerts: AlertSettings,
    #[serde(default)]
    pub auth: AuthSettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub ingest: IngestSettings,
    #[serde(default)]
    pub retention: RetentionSettings,
    #[serde(default)]
    pub notify: NotifySettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    #[serde(deserialize_with = "string_list")]
    pub cors_origins: Vec<String>,
    pub body_limit_bytes: usize,
    pub request_timeout_seconds: u64,
    /// Connections served at once; more wait to be accepted (the listen backlog).
    pub max_connections: usize,
    /// A client that has not sent a whole request head within this time is disconnected.
    pub header_read_timeout_seconds: u64,
    /// A kept-alive connection with no request for this long is closed.
    pub idle_timeout_seconds: u64,
    /// Addresses (or CIDR blocks) of reverse proxies whose `X-Forwarded-For` is believed.
    #[serde(deserialize_with = "string_list")]
    pub trusted_proxies: Vec<String>,
    /// The address people and agents reach the service at (`https://monitor.example.com`),
    /// for the links in alerts and the ping URLs; unset: paths alone.
    pub public_url: Option<String>,
}

impl ServerSettings {
    /// `public_url` without a trailing slash, or "" when unset: what a path is appended to.
    pub fn url_prefix(&self) -> &str {
        self.public_url
            .as_deref()
            .map_or("", |u| u.trim_end_matches('/'))
    }

    /// `trusted_proxies`, parsed (the loaded settings hold only valid ones).
    pub fn trusted_proxy_blocks(&self) -> Vec<AddressBlock> {
        self.trusted_proxies
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            cors_origins: Vec::new(),
            body_limit_bytes: 1024 * 1024,
            request_timeout_seconds: 30,
            max_connections: 1024,
            header_read_timeout_seconds: 10,
            idle_timeout_seconds: 60,
            trusted_proxies: Vec::new(),
            public_url: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    pub url: String,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://backup-monitor.db".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerSettings {
    /// Whether the service runs the periodic tick at all (tests drive it by hand instead).
    pub enabled: bool,
    pub tick: String,
    pub default_grace_minutes: u32,
    pub max_catchup_slots: u32,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            tick: "0 * * * * *".to_owned(),
            default_grace_minutes: 60,
            max_catchup_slots: 100,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSettings {
    pub host: Option<String>,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: Option<String>,
    pub tls: SmtpTls,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            host: None,
            port: 587,
            username: None,
            password: None,
            from: None,
            tls: SmtpTls::Starttls,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    #[serde(deserialize_with = "string_list")]
    pub to: Vec<String>,
    /// While a job stays late, failed, suspect or hung, a `reminder` alert every this many
    /// minutes after the first alert (a job's own `repeat_every_minutes` wins); None: never.
    pub repeat_every_minutes: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    /// An admin token given by the environment (BACKUP_MONITOR_ADMIN_TOKEN), for automation.
    pub admin_token: Option<Secret>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            rate_limit_per_second: 50,
            rate_limit_burst: 100,
            admin_token: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    pub require_token: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    /// How far ahead of the server's clock a report may be dated; later is refused (422).
    pub max_clock_skew_seconds: u64,
}

impl IngestSettings {
    /// [`Self::max_clock_skew_seconds`] as a duration (saturating: a huge setting means
    /// "any date is accepted", never a panic).
    pub fn max_clock_skew(&self) -> chrono::Duration {
        i64::try_from(self.max_clock_skew_seconds)
            .ok()
            .and_then(chrono::Duration::try_seconds)
            .unwrap_or(chrono::Duration::MAX)
    }
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            max_clock_skew_seconds: 300,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Entries and alerts older than this many days are deleted (each job's latest success
    /// and latest failure are always kept); 0 keeps everything for ever.
    pub keep_days: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self { keep_days: 400 }
    }
}

/// Where alerts go besides the built-in email (DESIGN §13).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySettings {
    /// How long one HTTP delivery (connection and answer) may take before it is retried.
    pub timeout_seconds: u64,
    /// `[[notify.channels]]`, read by hand (`read_channels`) so that each problem names its
    /// channel and key.
    #[serde(skip_deserializing)]
    pub channels: Vec<ChannelSettings>,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            timeout_seconds: 10,
            channels: Vec::new(),
        }
    }
}

impl NotifySettings {
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_seconds)
    }
}

/// One `[[notify.channels]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelSettings {
    pub name: String,
    pub kind: ChannelKind,
    /// The endpoint; for Slack, Teams and ntfy the URL is the credential itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Secret>,
    /// Webhook only: the HMAC key of `X-Backup-Monitor-Signature`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// Only these companies' alerts; empty: every company.
    pub companies: Vec<String>,
    /// Only these kinds of alert; empty: every kind.
    pub kinds: Vec<AlertKind>,
}

impl ChannelSettings {
    /// The email channel that exists without being declared when `smtp.host` is set.
    pub fn implicit_email() -> Self {
        Self {
            name: channel::EMAIL.to_owned(),
            kind: ChannelKind::Email,
            url: None,
            secret: None,
            companies: Vec::new(),
            kinds: Vec::new(),
        }
    }

    pub fn route(&self) -> Route {
        Route {
            companies: self.companies.clone(),
            kinds: self.kinds.clone(),
        }
    }

    /// The environment variable that gives this channel's `url`, keeping it out of the file:
    /// `BACKUP_MONITOR_CHANNEL_<NAME>_URL`.
    pub fn url_env(name: &str) -> String {
        format!("BACKUP_MONITOR_CHANNEL_{}_URL", env_word(name))
    }

    /// `BACKUP_MONITOR_CHANNEL_<NAME>_SECRET`, the same for `secret`.
    pub fn secret_env(name: &str) -> String {
        format!("BACKUP_MONITOR_CHANNEL_{}_SECRET", env_word(name))
    }
}

/// A channel name as it appears in an environment variable: upper case, `-` as `_`.
fn env_word(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

/// A value that must never be printed: `Debug`, `Display` and `Serialize` all redact it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"********\")")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("********")
    }
}

/// How a key's value is read from an environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
    Boolean,
    List,
    /// An array of tables (`[[notify.channels]]`); from the environment, a JSON array of
    /// objects.
    Tables,
}

/// One configuration key: its section, its name, how to read it from the environment and
/// the seed's variable name for it, if it had one.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub section: &'static str,
    pub name: &'static str,
    pub kind: Kind,
    pub seed_env: Option<&'static str>,
}

impl Key {
    /// `BACKUP_MONITOR_<SECTION>_<KEY>`.
    pub fn env_name(&self) -> String {
        format!("BACKUP_MONITOR_{}_{}", self.section, self.name).to_uppercase()
    }
    pub fn dotted(&self) -> String {
        format!("{}.{}", self.section, self.name)
    }
}

const fn key(
    section: &'static str,
    name: &'static str,
    kind: Kind,
    seed_env: Option<&'static str>,
) -> Key {
    Key {
        section,
        name,
        kind,
        seed_env,
    }
}

/// `server.bind`, which `--bind` overrides.
const SERVER_BIND: Key = key("server", "bind", Kind::Text, None);
/// `database.url`, which `--database` overrides.
const DATABASE_URL: Key = key("database", "url", Kind::Text, Some("DATABASE_URL"));

/// `[[notify.channels]]`, read by [`read_channels`].
const NOTIFY_CHANNELS: Key = key("notify", "channels", Kind::Tables, None);

/// Every key the configuration knows.
pub const KEYS: &[Key] = &[
    SERVER_BIND,
    key("server", "cors_origins", Kind::List, Some("CORS_ORIGINS")),
    key("server", "body_limit_bytes", Kind::Integer, None),
    key("server", "request_timeout_seconds", Kind::Integer, None),
    key("server", "max_connections", Kind::Integer, None),
    key("server", "header_read_timeout_seconds", Kind::Integer, None),
    key("server", "idle_timeout_seconds", Kind::Integer, None),
    key("server", "trusted_proxies", Kind::List, None),
    key("server", "public_url", Kind::Text, None),
    DATABASE_URL,
    key("scheduler", "enabled", Kind::Boolean, None),
    key("scheduler", "tick", Kind::Text, None),
    key("scheduler", "default_grace_minutes", Kind::Integer, None),
    key("scheduler", "max_catchup_slots", Kind::Integer, None),
    key("smtp", "host", Kind::Text, Some("SMTP_HOST")),
    key("smtp", "port", Kind::Integer, Some("SMTP_PORT")),
    key("smtp", "username", Kind::Text, Some("SMTP_USERNAME")),
    key("smtp", "password", Kind::Text, Some("SMTP_PASSWORD")),
    key("smtp", "from", Kind::Text, Some("SMTP_FROM")),
    key("smtp", "tls", Kind::Text, Some("SMTP_TLS")),
    key("alerts", "to", Kind::List, None),
    key("alerts", "repeat_every_minutes", Kind::Integer, None),
    key("auth", "rate_limit_per_second", Kind::Integer, None),
    key("auth", "rate_limit_burst", Kind::Integer, None),
    key("metrics", "require_token", Kind::Boolean, None),
    key("ingest", "max_clock_skew_seconds", Kind::Integer, None),
    key("retention", "keep_days", Kind::Integer, None),
    key("notify", "timeout_seconds", Kind::Integer, None),
    NOTIFY_CHANNELS,
    key(
        "auth",
        "admin_token",
        Kind::Text,
        Some("BACKUP_MONITOR_ADMIN_TOKEN"),
    ),
];

/// Values given on the command line; they override everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub database_url: Option<String>,
    pub bind: Option<String>,
}

/// A configuration that cannot be used, explained in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

/// The configuration as `config check` shows it: the settings, each value that could not be
/// read at all left at its default, and every problem found, in the order of the sources.
#[derive(Debug, Clone)]
pub struct Checked {
    pub settings: Settings,
    pub problems: Vec<ConfigError>,
}

impl Checked {
    /// The settings if there is no problem, else the first problem.
    pub fn into_result(self) -> Result<Settings, ConfigError> {
        match self.problems.into_iter().next() {
            None => Ok(self.settings),
            Some(first) => Err(first),
        }
    }
}

/// Where the configuration file comes from: `--config`, else `BACKUP_MONITOR_CONFIG`.
pub fn config_path(flag: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    flag.map(Path::to_path_buf)
        .or_else(|| env("BACKUP_MONITOR_CONFIG").map(PathBuf::from))
}

/// Loads the settings from the process environment (after `.env`), the file and the flags;
/// the first problem, if any, is the error.
pub fn load(config_file: Option<&Path>, overrides: &Overrides) -> Result<Settings, ConfigError> {
    check(config_file, overrides).into_result()
}

/// Reads the settings as [`load`] does, but goes on past each problem to find them all.
pub fn check(config_file: Option<&Path>, overrides: &Overrides) -> Checked {
    let env = |name: &str| std::env::var(name).ok();
    let path = config_path(config_file, &env);
    let read = path.as_ref().map(|path| {
        (
            path.display().to_string(),
            std::fs::read_to_string(path).map_err(|e| {
                ConfigError(format!("cannot read config file {}: {e}", path.display()))
            }),
        )
    });
    match read {
        Some((_, Err(unreadable))) => {
            let mut checked = check_from(None, &env, overrides);
            checked.problems.insert(0, unreadable);
            checked
        }
        Some((name, Ok(text))) => check_from(Some((&name, &text)), &env, overrides),
        None => check_from(None, &env, overrides),
    }
}

/// Layers the three sources; separated from [`load`] so tests need no process state.
pub fn load_from(
    file: Option<(&str, &str)>,
    env: &dyn Fn(&str) -> Option<String>,
    overrides: &Overrides,
) -> Result<Settings, ConfigError> {
    check_from(file, env, overrides).into_result()
}

/// [`check`] over given sources.
pub fn check_from(
    file: Option<(&str, &str)>,
    env: &dyn Fn(&str) -> Option<String>,
    overrides: &Overrides,
) -> Checked {
    let mut problems = Vec::new();
    let mut table = toml::Table::new();
    // Where each key's value came from, for error messages.
    let mut sources: BTreeMap<String, String> = BTreeMap::new();

    if let Some((name, text)) = file {
        match text.parse::<toml::Table>() {
            Ok(parsed) => {
                let origin = format!("config file {name}");
                for (section, value) in parsed {
                    known_keys(&section, value, &origin, &mut problems, |key, value| {
                        sources.insert(format!("{section}.{key}"), origin.clone());
                        table
                            .entry(section.clone())
                            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                            .as_table_mut()
                            .and_then(|t| t.insert(key, value));
                    });
                }
            }
            Err(e) => problems.push(ConfigError(format!(
                "{name}: {} (the file was not read)",
                syntax_error(text, &e)
            ))),
        }
    }

    for key in KEYS {
        let found = env(&key.env_name())
            .map(|v| (key.env_name(), v))
            .or_else(|| key.seed_env.and_then(|n| env(n).map(|v| (n.to_owned(), v))));
        let Some((var, raw)) = found else { continue };
        match env_value(key, &raw) {
            Ok(value) => {
                set(&mut table, key, value);
                sources.insert(key.dotted(), format!("environment variable {var}"));
            }
            Err(reason) => problems.push(ConfigError(format!(
                "{} (environment variable {var}): {reason}",
                key.dotted()
            ))),
        }
    }

    if let Some(url) = &overrides.database_url {
        set(&mut table, &DATABASE_URL, toml::Value::String(url.clone()));
        sources.insert(DATABASE_URL.dotted(), "flag --database".into());
    }
    if let Some(bind) = &overrides.bind {
        set(&mut table, &SERVER_BIND, toml::Value::String(bind.clone()));
        sources.insert(SERVER_BIND.dotted(), "flag --bind".into());
    }

    let origin = |path: &str| {
        sources
            .get(path)
            .map(|s| format!(" ({s})"))
            .unwrap_or_default()
    };
    // The channels are read by hand, each problem naming its channel and key.
    let channels = table
        .get_mut(NOTIFY_CHANNELS.section)
        .and_then(toml::Value::as_table_mut)
        .and_then(|t| t.remove(NOTIFY_CHANNELS.name))
        .map(|value| {
            read_channels(
                value,
                &origin(&NOTIFY_CHANNELS.dotted()),
                env,
                &mut problems,
            )
        })
        .unwrap_or_default();
    // A value of the wrong type is a problem; the key is then left at its default, so that
    // the others can still be read and shown.
    let mut settings = loop {
        match serde_path_to_error::deserialize::<_, Settings>(toml::Value::Table(table.clone())) {
            Ok(settings) => break settings,
            Err(e) => {
                let path = e.path().to_string();
                let reason = if SECRET_KEYS.contains(&path.as_str()) {
                    "must be text (the value is not shown: it is a secret)".to_owned()
                } else {
                    one_line(&e.inner().to_string())
                };
                let shown = if path == "." { "configuration" } else { &path };
                problems.push(ConfigError(format!("{shown}{}: {reason}", origin(&path))));
                let removed = path.split_once('.').and_then(|(section, key)| {
                    table
                        .get_mut(section)
                        .and_then(toml::Value::as_table_mut)
                        .and_then(|t| t.remove(key))
                });
                if removed.is_none() {
                    break Settings::default();
                }
            }
        }
    };
    settings.notify.channels = channels;
    validate(&settings, &sources, &mut problems);
    // After the checks, which hold a given address to a dotted domain: a host's own name
    // often has no dot, and the mail server is the judge of what it accepts.
    if settings.smtp.host.is_some() && settings.smtp.from.is_none() {
        settings.smtp.from = Some(default_sender());
    }
    Checked { settings, problems }
}

/// The keys of a `[[notify.channels]]` table.
const CHANNEL_KEYS: [&str; 6] = ["name", "kind", "url", "secret", "companies", "kinds"];

/// Reads `[[notify.channels]]` (`origin` is ` (config file …)` or ` (environment variable
/// …)`), adding one problem per bad value, each naming the channel and the key; secrets are
/// never shown. A channel whose name or kind cannot be read is left out.
fn read_channels(
    value: toml::Value,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<ConfigError>,
) -> Vec<ChannelSettings> {
    let mut fail = |key: &str, at: &str, reason: &str| {
        problems.push(ConfigError(format!("{key}{at}: {reason}")));
    };
    let toml::Value::Array(items) = value else {
        fail(
            "notify.channels",
            origin,
            "must be a list of channels: [[notify.channels]] tables with name, kind and url",
        );
        return Vec::new();
    };
    let mut channels: Vec<ChannelSettings> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let toml::Value::Table(mut table) = item else {
            fail(
                &format!("notify.channels[{index}]"),
                origin,
                "must be a table with name, kind and url",
            );
            continue;
        };
        let name = match table.remove("name") {
            None => {
                fail(
                    &format!("notify.channels[{index}].name"),
                    origin,
                    "missing: every channel needs a name, used by send-test --channel and shown in the alerts' deliveries",
                );
                None
            }
            Some(toml::Value::String(name)) if channel::is_valid_name(&name) => Some(name),
            Some(toml::Value::String(name)) => {
                fail(
                    &format!("notify.channels[{index}].name"),
                    origin,
                    &format!(
                        "{name:?} is not a channel name: letters, digits, - and _, at most {} characters",
                        channel::NAME_MAX
                    ),
                );
                None
            }
            Some(_) => {
                fail(
                    &format!("notify.channels[{index}].name"),
                    origin,
                    "must be text",
                );
                None
            }
        };
        let at = match &name {
            Some(name) => format!("notify.channels.{name}"),
            None => format!("notify.channels[{index}]"),
        };
        if let Some(name) = &name {
            if names.contains(name) {
                fail(
                    &format!("{at}.name"),
                    origin,
                    "declared twice: each channel needs its own name",
                );
            }
            names.push(name.clone());
        }
        let kind = match table.remove("kind") {
            None => {
                fail(
                    &format!("{at}.kind"),
                    origin,
                    &format!("missing: one of {}", ChannelKind::names()),
                );
                None
            }
            Some(toml::Value::String(kind)) => {
                let parsed = ChannelKind::parse(&kind);
                if parsed.is_none() {
                    fail(
                        &format!("{at}.kind"),
                        origin,
                        &format!("{kind:?} is not one of {}", ChannelKind::names()),
                    );
                }
                parsed
            }
            Some(_) => {
                fail(
                    &format!("{at}.kind"),
                    origin,
                    &format!("must be text: one of {}", ChannelKind::names()),
                );
                None
            }
        };
        let mut read_secret = |key: &str, value: Option<toml::Value>| match value {
            None => None,
            Some(toml::Value::String(text)) => Some((Secret::new(text), origin.to_owned())),
            Some(_) => {
                fail(
                    &format!("{at}.{key}"),
                    origin,
                    "must be text (the value is not shown: it is a secret)",
                );
                None
            }
        };
        // A url of the wrong type is one problem, not two ("must be text", "missing").
        let url_given = table.contains_key("url");
        let mut url = read_secret("url", table.remove("url"));
        let mut secret = read_secret("secret", table.remove("secret"));
        if let Some(name) = &name {
            let var = ChannelSettings::url_env(name);
            if let Some(value) = env(&var) {
                url = Some((
                    Secret::new(value.trim()),
                    format!(" (environment variable {var})"),
                ));
            }
            let var = ChannelSettings::secret_env(name);
            if let Some(value) = env(&var) {
                secret = Some((Secret::new(value), format!(" (environment variable {var})")));
            }
        }
        let companies = match table.remove("companies") {
            None => Vec::new(),
            Some(value) => match text_list(value) {
                Some(list) if list.iter().all(|c| !c.trim().is_empty()) => list,
                _ => {
                    fail(
                        &format!("{at}.companies"),
                        origin,
                        "must be a list of company names, e.g. [\"acme\"] (leave it out for every company)",
                    );
                    Vec::new()
                }
            },
        };
        let kinds = match table.remove("kinds") {
            None => Vec::new(),
            Some(value) => {
                let mut kinds = Vec::new();
                let every = AlertKind::ALL.map(AlertKind::as_str).join(", ");
                match text_list(value) {
                    None => fail(
                        &format!("{at}.kinds"),
                        origin,
                        &format!(
                            "must be a list of alert kinds ({every}); leave it out for every kind"
                        ),
                    ),
                    Some(list) => {
                        for text in list {
                            match AlertKind::parse(&text) {
                                Some(kind) if !kinds.contains(&kind) => kinds.push(kind),
                                Some(_) => {}
                                None => fail(
                                    &format!("{at}.kinds"),
                                    origin,
                                    &format!("{text:?} is not an alert kind: {every}"),
                                ),
                            }
                        }
                    }
                }
                kinds
            }
        };
        let unknown: Vec<String> = table.keys().cloned().collect();
        for key in unknown {
            fail(
                &format!("{at}.{key}"),
                origin,
                &format!("unknown key; a channel takes {}", CHANNEL_KEYS.join(", ")),
            );
        }
        let Some(kind) = kind else { continue };
        match (&url, kind.is_http()) {
            (None, true) if url_given => {}
            (None, true) => fail(
                &format!("{at}.url"),
                origin,
                &format!(
                    "missing: the {} URL to post to{}",
                    kind.as_str(),
                    name.as_deref()
                        .map(|n| format!(" (or the environment variable {})", ChannelSettings::url_env(n)))
                        .unwrap_or_default()
                ),
            ),
            (Some((url, from)), true) => {
                if let Err(reason) = check_channel_url(url.expose()) {
                    fail(&format!("{at}.url"), from, &reason);
                }
            }
            (Some((_, from)), false) => fail(
                &format!("{at}.url"),
                from,
                "an email channel takes no url: it sends through [smtp] to alerts.to and the job's notify_emails",
            ),
            (None, false) => {}
        }
        if let Some((value, from)) = &secret {
            if kind != ChannelKind::Webhook {
                fail(
                    &format!("{at}.secret"),
                    from,
                    "only a webhook channel takes a secret (it signs the body)",
                );
            } else if value.expose().trim().is_empty() {
                fail(
                    &format!("{at}.secret"),
                    from,
                    "must not be empty (leave it out to send unsigned)",
                );
            }
        }
        if let Some(name) = name {
            channels.push(ChannelSettings {
                name,
                kind,
                url: url.map(|(u, _)| u),
                secret: secret.map(|(s, _)| s),
                companies,
                kinds,
            });
        }
    }
    channels
}

/// The strings of a TOML array, or None if it is not an array of strings.
fn text_list(value: toml::Value) -> Option<Vec<String>> {
    match value {
        toml::Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                toml::Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// A channel URL is `http(s)://host…`; the reason never repeats it (it is a secret).
fn check_channel_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url.trim())
        .map_err(|e| format!("not a URL ({e}; the value is not shown: it is a secret)"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "must start with https:// or http://, not {}:// (the value is not shown: it is a secret)",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("names no host (the value is not shown: it is a secret)".to_owned());
    }
    Ok(())
}

/// The keys whose values are secrets: never repeated in a message.
const SECRET_KEYS: [&str; 2] = ["smtp.password", "auth.admin_token"];

/// Hands each key of a file's `[section]` that [`KEYS`] knows to `keep`; an unknown section
/// or key, or a value where a section belongs, is a problem.
fn known_keys(
    section: &str,
    value: toml::Value,
    origin: &str,
    problems: &mut Vec<ConfigError>,
    mut keep: impl FnMut(String, toml::Value),
) {
    let names: Vec<&str> = KEYS
        .iter()
        .filter(|k| k.section == section)
        .map(|k| k.name)
        .collect();
    if names.is_empty() {
        let mut sections: Vec<&str> = Vec::new();
        for key in KEYS {
            if !sections.contains(&key.section) {
                sections.push(key.section);
            }
        }
        problems.push(ConfigError(format!(
            "[{section}] ({origin}): unknown section; the sections are {}",
            sections
                .iter()
                .map(|s| format!("[{s}]"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
        return;
    }
    let toml::Value::Table(keys) = value else {
        problems.push(ConfigError(format!(
            "{section} ({origin}): must be a section, [{section}]"
        )));
        return;
    };
    for (key, value) in keys {
        if names.contains(&key.as_str()) {
            keep(key, value);
        } else {
            problems.push(ConfigError(format!(
                "{section}.{key} ({origin}): unknown key; [{section}] takes {}",
                names.join(", ")
            )));
        }
    }
}

/// Where a TOML file fails to parse and why, without the text of the line: it may hold a
/// password.
fn syntax_error(text: &str, error: &toml::de::Error) -> String {
    let reason = error
        .message()
        .lines()
        .map(one_line)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let Some(at) = error.span().map(|span| span.start.min(text.len())) else {
        return format!("not valid TOML: {reason}");
    };
    let before = text.get(..at).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |start| start.chars().count())
        + 1;
    format!("line {line}, column {column}: not valid TOML: {reason}")
}

/// The sender of alerts when `smtp.from` is not set: `backup-monitor@<this host's name>`
/// (`localhost` if the name cannot go in an address). A mail server that wants a sender in
/// a real domain needs `smtp.from`.
pub fn default_sender() -> String {
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|h| is_host_name(h))
        .unwrap_or_else(|| "localhost".to_owned());
    format!("backup-monitor@{host}")
}

/// Letters, digits, `-` and dots between labels: a name a mail address can carry.
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn set(table: &mut toml::Table, key: &Key, value: toml::Value) {
    let section = table
        .entry(key.section)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(section) = section {
        section.insert(key.name.to_owned(), value);
    } else {
        // A scalar where a section belongs: replace it; deserialisation would reject it anyway.
        let mut fresh = toml::Table::new();
        fresh.insert(key.name.to_owned(), value);
        *section = toml::Value::Table(fresh);
    }
}

fn env_value(key: &Key, raw: &str) -> Result<toml::Value, String> {
    let raw = raw.trim();
    Ok(match key.kind {
        Kind::Text => toml::Value::String(raw.to_owned()),
        Kind::Integer => toml::Value::Integer(
            raw.parse::<i64>()
                .map_err(|_| format!("expected a whole number, got {raw:?}"))?,
        ),
        Kind::Boolean => toml::Value::Boolean(
            boolean::parse(raw)
                .ok_or_else(|| format!("expected a boolean ({}), got {raw:?}", boolean::words()))?,
        ),
        Kind::List => toml::Value::Array(
            parse_list(raw)?
                .into_iter()
                .map(toml::Value::String)
                .collect(),
        ),
        // The message of a JSON error may quote the text: it holds secrets (channel URLs).
        Kind::Tables => serde_json::from_str::<Vec<serde_json::Map<String, serde_json::Value>>>(raw)
            .ok()
            .and_then(|tables| toml::Value::try_from(tables).ok())
            .ok_or_else(|| {
                "expected a JSON array of objects, e.g. [{\"name\": \"ops\", \"kind\": \"slack\", \"url\": \"https://…\"}] (the value is not shown: it may hold secrets)".to_owned()
            })?,
    })
}

/// A list from the environment: comma-separated, or a JSON array as pydantic settings take.
fn parse_list(raw: &str) -> Result<Vec<String>, String> {
    if raw.starts_with('[') {
        return serde_json::from_str::<Vec<String>>(raw)
            .map_err(|e| format!("not a JSON array of strings: {e}"));
    }
    Ok(raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Accepts a list, or one string holding a comma-separated list.
fn string_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => parse_list(&s).map_err(serde::de::Error::custom)?,
        OneOrMany::Many(v) => v,
    })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A public URL is `http(s)://host[:port][/path]`, with no query or fragment: ping URLs and
/// links are made by appending a path to it.
fn check_public_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{url:?} is not a URL like https://monitor.example.com"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("{url:?} names no host"));
    }
    if rest.contains(['?', '#']) || rest.chars().any(char::is_whitespace) {
        return Err(format!(
            "{url:?} must not hold a query, a fragment or spaces: ping URLs and links are made by appending a path to it"
        ));
    }
    Ok(())
}

/// Adds a problem for each value that was read but cannot be used.
fn validate(s: &Settings, sources: &BTreeMap<String, String>, problems: &mut Vec<ConfigError>) {
    let mut fail = |key: &str, reason: String| {
        let origin = sources
            .get(key)
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        problems.push(ConfigError(format!("{key}{origin}: {reason}")));
    };
    if s.server.body_limit_bytes == 0 {
        fail("server.body_limit_bytes", "must be at least 1".into());
    }
    for (key, value) in [
        (
            "server.request_timeout_seconds",
            s.server.request_timeout_seconds,
        ),
        (
            "server.header_read_timeout_seconds",
            s.server.header_read_timeout_seconds,
        ),
        ("server.idle_timeout_seconds", s.server.idle_timeout_seconds),
        (
            "server.max_connections",
            u64::try_from(s.server.max_connections).unwrap_or(u64::MAX),
        ),
    ] {
        if value == 0 {
            fail(key, "must be at least 1".into());
        }
    }
    for proxy in &s.server.trusted_proxies {
        if let Err(reason) = proxy.parse::<AddressBlock>() {
            return fail("server.trusted_proxies", reason);
        }
    }
    if let Some(url) = &s.server.public_url {
        if let Err(reason) = check_public_url(url) {
            fail("server.public_url", reason);
        }
    }
    for origin in &s.server.cors_origins {
        if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
            fail(
                "server.cors_origins",
                format!("{origin:?} is not an origin like https://dashboard.example.com or *"),
            );
        }
    }
    if let Err(reason) = database_path(&s.database.url) {
        fail("database.url", reason);
    }
    if let Some(every) = s.alerts.repeat_every_minutes {
        if !(REPEAT_MIN..=REPEAT_MAX).contains(&every) {
            fail(
                "alerts.repeat_every_minutes",
                format!("{every} is out of range {REPEAT_MIN}..={REPEAT_MAX} (minutes; leave it out for no reminders)"),
            );
        }
    }
    if let Err(reason) = check_tick_expression(&s.scheduler.tick) {
        fail("scheduler.tick", reason);
    }
    if !(GRACE_MIN..=GRACE_MAX).contains(&s.scheduler.default_grace_minutes) {
        fail(
            "scheduler.default_grace_minutes",
            format!(
                "must be between {GRACE_MIN} and {GRACE_MAX}, got {}",
                s.scheduler.default_grace_minutes
            ),
        );
    }
    if s.scheduler.max_catchup_slots == 0 {
        fail("scheduler.max_catchup_slots", "must be at least 1".into());
    }
    if s.smtp.host.as_deref().is_some_and(|h| h.trim().is_empty()) {
        fail(
            "smtp.host",
            "must not be empty (leave it out to send no email)".into(),
        );
    }
    if s.smtp.port == 0 {
        fail("smtp.port", "must be between 1 and 65535".into());
    }
    if let Some(from) = &s.smtp.from {
        if !crate::domain::email::is_valid(from) {
            fail("smtp.from", format!("{from:?} is not an email address"));
        }
    }
    for to in &s.alerts.to {
        if !crate::domain::email::is_valid(to) {
            fail("alerts.to", format!("{to:?} is not an email address"));
        }
    }
    if s.auth.rate_limit_per_second == 0 {
        fail("auth.rate_limit_per_second", "must be at least 1".into());
    }
    if s.auth
        .admin_token
        .as_ref()
        .is_some_and(|t| t.expose().trim().len() < 16)
    {
        fail(
            "auth.admin_token",
            "must be at least 16 characters (use `backup-monitor token create` for a random one)"
                .into(),
        );
    }
    if s.auth.rate_limit_burst == 0 {
        fail("auth.rate_limit_burst", "must be at least 1".into());
    }
    if !(1..=300).contains(&s.notify.timeout_seconds) {
        fail(
            "notify.timeout_seconds",
            format!(
                "must be between 1 and 300, got {}",
                s.notify.timeout_seconds
            ),
        );
    }
    let mut email_channels = 0;
    for channel in &s.notify.channels {
        let at = format!("notify.channels.{}", channel.name);
        let origin = sources
            .get("notify.channels")
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        if channel.kind == ChannelKind::Email {
            email_channels += 1;
            if s.smtp.host.is_none() {
                problems.push(ConfigError(format!(
                    "{at}.kind{origin}: an email channel needs smtp.host (SMTP_HOST)"
                )));
            }
            if email_channels == 2 {
                problems.push(ConfigError(format!(
                    "{at}.kind{origin}: only one channel can be of kind email (it sends to alerts.to and the job's notify_emails): route it with companies and kinds"
                )));
            }
        } else if channel.name == channel::EMAIL {
            problems.push(ConfigError(format!(
                "{at}.name{origin}: the name email belongs to the email channel: give this {} channel another name",
                channel.kind.as_str()
            )));
        }
    }
}

/// The SQLite file named by a database URL: `sqlite://path`, `sqlite:///abs/path`,
/// SQLAlchemy's `sqlite:///./relative.db` and `sqlite:////abs/path`, or a plain path.
/// Whether `expression` is a tick schedule the scheduler accepts (tokio-cron-scheduler's
/// grammar: 6 fields, seconds first).
pub fn check_tick_expression(expression: &str) -> Result<(), String> {
    tokio_cron_scheduler::Job::new_async_tz(expression, chrono::Utc, |_, _| Box::pin(async {}))
        .map(|_| ())
        .map_err(|e| format!("{expression:?} is not a 6-field cron expression (seconds first, e.g. \"0 * * * * *\"): {e}"))
}

pub fn database_path(url: &str) -> Result<PathBuf, String> {
    let url = url.trim();
    let rest = match url.strip_prefix("sqlite:") {
        Some(rest) => rest.strip_prefix("//").unwrap_or(rest),
        None if url.contains("://") => {
            return Err(format!(
                "{url:?} is not a SQLite URL: use sqlite://path or a plain file path"
            ))
        }
        None => url,
    };
    let rest = rest.split('?').next().unwrap_or_default();
    let path = if let Some(abs) = rest.strip_prefix("//") {
        format!("/{abs}")
    } else if let Some(rel) = rest
        .strip_prefix('/')
        .filter(|r| r.starts_with("./") || r.starts_with("../"))
    {
        rel.to_owned()
    } else {
        rest.to_owned()
    };
    if path.is_empty() {
        return Err("names no file".to_owned());
    }
    if path == ":memory:" {
        return Err(
            "an in-memory database would lose every report at restart: name a file".to_owned(),
        );
    }
    Ok(PathBuf::from(path))
}

impl Settings {
    /// The SQLite file to open; valid once the settings are loaded.
    pub fn database_path(&self) -> PathBuf {
        database_path(&self.database.url).unwrap_or_else(|_| PathBuf::from("backup-monitor.db"))
    }

    /// Every channel alerts go to: the declared ones, and the email channel when `smtp.host`
    /// is set and no channel of kind email is declared (then it takes every alert, as it did
    /// before channels existed).
    pub fn channels(&self) -> Vec<ChannelSettings> {
        let mut all = self.notify.channels.clone();
        if self.smtp.host.is_some() && !all.iter().any(|c| c.kind == ChannelKind::Email) {
            all.insert(0, ChannelSettings::implicit_email());
        }
        all
    }

    /// The effective configuration as TOML, secrets redacted, for `config check`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn no_configuration_at_all_gives_the_documented_defaults() {
        let s = load_from(None, &no_env, &Overrides::default()).unwrap();
        assert_eq!(s.server.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(s.database_path(), PathBuf::from("backup-monitor.db"));
        assert_eq!(s.server.body_limit_bytes, 1_048_576);
        assert_eq!(s.scheduler.default_grace_minutes, 60);
        assert_eq!(s.smtp.tls, SmtpTls::Starttls);
        assert!(s.server.cors_origins.is_empty());
    }

    #[test]
    fn the_example_file_parses_and_documents_every_key() {
        let s = load_from(
            Some(("monitor.toml.example", EXAMPLE)),
            &no_env,
            &Overrides::default(),
        );
        assert!(s.is_ok(), "example does not load: {:?}", s.err());
        let uncommented: String = EXAMPLE
            .lines()
            .map(|l| l.trim_start_matches('#').trim_start())
            .collect::<Vec<_>>()
            .join("\n");
        for key in KEYS {
            let section = format!("[{}]", key.section);
            assert!(
                uncommented.contains(&section),
                "example lacks section {section}"
            );
            let line = match key.kind {
                Kind::Tables => format!("\n[[{}]]", key.dotted()),
                _ => format!("\n{} =", key.name),
            };
            assert!(
                uncommented.contains(&line),
                "example does not document {}",
                key.dotted()
            );
        }
    }

    #[test]
    fn environment_overrides_file_and_flags_override_environment() {
        let file =
            "[database]\nurl = \"sqlite://from-file.db\"\n[server]\nbind = \"0.0.0.0:9000\"\n";
        let env = env_of(&[("DATABASE_URL", "sqlite://from-env.db")]);
        let s = load_from(Some(("f.toml", file)), &env, &Overrides::default()).unwrap();
        assert_eq!(s.database_path(), PathBuf::from("from-env.db"));
        assert_eq!(s.server.bind.to_string(), "0.0.0.0:9000");

        let flags = Overrides {
            database_url: Some("flag.db".into()),
            bind: Some("127.0.0.1:1234".into()),
        };
        let s = load_from(Some(("f.toml", file)), &env, &flags).unwrap();
        assert_eq!(s.database_path(), PathBuf::from("flag.db"));
        assert_eq!(s.server.bind.port(), 1234);
    }

    #[test]
    fn prefixed_names_win_over_the_seed_names() {
        let env = env_of(&[
            ("SMTP_HOST", "seed.example.com"),
            ("BACKUP_MONITOR_SMTP_HOST", "ours.example.com"),
            ("SMTP_FROM", "monitor@example.com"),
        ]);
        let s = load_from(None, &env, &Overrides::default()).unwrap();
        assert_eq!(s.smtp.host.as_deref(), Some("ours.example.com"));
    }

    #[test]
    fn the_scheduler_is_on_by_default_and_can_be_switched_off_by_file_or_environment() {
        let s = load_from(None, &no_env, &Overrides::default()).unwrap();
        assert!(s.scheduler.enabled);
        let file = "[scheduler]\nenabled = false\n";
        let s = load_from(Some(("f.toml", file)), &no_env, &Overrides::default()).unwrap();
        assert!(!s.scheduler.enabled, "from the file");
        for raw in ["false", "0", "off"] {
            let env = env_of(&[("BACKUP_MONITOR_SCHEDULER_ENABLED", raw)]);
            let s = load_from(None, &env, &Overrides::default()).unwrap();
            assert!(!s.scheduler.enabled, "from the environment: {raw:?}");
        }
        let env = env_of(&[("BACKUP_MONITOR_SCHEDULER_ENABLED", "true")]);
        let s = load_from(Some(("f.toml", file)), &env, &Overrides::default()).unwrap();
        assert!(s.scheduler.enabled, "the environment wins over the file");
    }

    #[test]
    fn lists_from_the_environment_are_comma_separated_or_json() {
        for raw in ["a@x.org, b@x.org", "[\"a@x.org\",\"b@x.org\"]"] {
            let env = env_of(&[("BACKUP_MONITOR_ALERTS_TO", raw)]);
            let s = load_from(None, &env, &Overrides::default()).unwrap();
            assert_eq!(s.alerts.to, vec!["a@x.org", "b@x.org"], "from {raw:?}");
        }
        let env = env_of(&[("CORS_ORIGINS", "https://a.example,https://b.example")]);
        let s = load_from(None, &env, &Overrides::default()).unwrap();
        assert_eq!(s.server.cors_origins.len(), 2);
    }

    #[test]
    fn a_numeric_password_stays_text_and_is_never_printed() {
        let env = env_of(&[("SMTP_PASSWORD", "123456")]);
        let s = load_from(None, &env, &Overrides::default()).unwrap();
        assert_eq!(s.smtp.password.as_ref().unwrap().expose(), "123456");
        let shown = s.to_redacted_toml();
        assert!(!shown.contains("123456"), "{shown}");
        assert!(shown.contains("********"));
        assert!(!format!("{s:?}").contains("123456"));
    }

    #[test]
    fn bad_values_name_the_key_and_the_source() {
        type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (
                None,
                &[("SMTP_PORT", "abc")],
                "smtp.port (environment variable SMTP_PORT)",
            ),
            (
                None,
                &[("SMTP_PORT", "70000")],
                "smtp.port (environment variable SMTP_PORT)",
            ),
            (
                Some("[server]\nbind = \"nope\"\n"),
                &[],
                "server.bind (config file f.toml)",
            ),
            (Some("[server]\nbindd = \"x\"\n"), &[], "bindd"),
            (Some("[nosuch]\nx = 1\n"), &[], "nosuch"),
            (Some("[smtp]\ntls = \"ssl\"\n"), &[], "smtp.tls"),
            (
                None,
                &[("BACKUP_MONITOR_SCHEDULER_DEFAULT_GRACE_MINUTES", "0")],
                "scheduler.default_grace_minutes",
            ),
            (
                None,
                &[("BACKUP_MONITOR_SCHEDULER_TICK", "* * * * *")],
                "scheduler.tick",
            ),
            (None, &[("DATABASE_URL", "postgres://x/y")], "database.url"),
            (
                None,
                &[("BACKUP_MONITOR_SCHEDULER_TICK", "0 61 * * * *")],
                "scheduler.tick",
            ),
            (
                None,
                &[("BACKUP_MONITOR_ALERTS_TO", "not-an-address")],
                "alerts.to",
            ),
            (
                None,
                &[("BACKUP_MONITOR_METRICS_REQUIRE_TOKEN", "maybe")],
                "metrics.require_token",
            ),
            (
                None,
                &[("BACKUP_MONITOR_SCHEDULER_ENABLED", "sometimes")],
                "scheduler.enabled (environment variable BACKUP_MONITOR_SCHEDULER_ENABLED)",
            ),
            (
                Some("[scheduler]\nenabled = \"no\"\n"),
                &[],
                "scheduler.enabled (config file f.toml)",
            ),
            (Some("this is = = not toml"), &[], "f.toml"),
            (
                Some("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"proxy.lan\"]\n"),
                &[],
                "server.trusted_proxies (config file f.toml): \"proxy.lan\" is not an IP address",
            ),
            (
                None,
                &[("BACKUP_MONITOR_SERVER_TRUSTED_PROXIES", "127.0.0.1,10.0.0.0/40")],
                "server.trusted_proxies (environment variable BACKUP_MONITOR_SERVER_TRUSTED_PROXIES): \"10.0.0.0/40\"",
            ),
        ];
        for (file, vars, expected) in cases {
            let env = env_of(vars);
            let err = load_from(file.map(|f| ("f.toml", f)), &env, &Overrides::default())
                .expect_err(&format!("{file:?} {vars:?} should be refused"))
                .to_string();
            assert!(err.contains(expected), "{err:?} should name {expected:?}");
            assert!(!err.contains('\n'), "{err:?} should be one line");
        }
    }

    #[test]
    fn a_syntax_error_names_the_line_and_column_but_never_the_text_of_the_line() {
        let secret = "hunter2-s3cret";
        let files = [
            format!("[smtp]\nhost = \"smtp.example.com\"\npassword = \"{secret}\n"),
            format!("[smtp]\npassword = {secret}\n"),
            format!("[smtp]\npassword = \"{secret}\" trailing\n"),
            format!("[smtp]\npassword == \"{secret}\"\n"),
            format!("[smtp]\npassword = \"{secret}\\q\"\n"),
            format!("[smtp]\npassword = \"{secret}\"\npassword = \"{secret}\"\n"),
            format!("[smtp\npassword = \"{secret}\"\n"),
        ];
        for file in &files {
            let err = load_from(Some(("f.toml", file)), &no_env, &Overrides::default())
                .expect_err(file)
                .to_string();
            assert!(!err.contains("hunter2"), "{file:?} shows the secret: {err}");
            assert!(!err.contains('\n'), "{err:?} should be one line");
            assert!(
                err.starts_with("invalid configuration: f.toml: line "),
                "{err}"
            );
            assert!(err.contains(", column "), "{err}");
        }
        let err = load_from(Some(("f.toml", &files[1])), &no_env, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2, column 12"), "{err}");
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_refused_without_being_shown() {
        for file in [
            "[smtp]\npassword = 987654321\n",
            "[auth]\nadmin_token = 987654321987654321\n",
            "[smtp]\npassword = [\"987654321\"]\n",
        ] {
            let err = load_from(Some(("f.toml", file)), &no_env, &Overrides::default())
                .expect_err(file)
                .to_string();
            assert!(!err.contains("987654321"), "{err}");
            assert!(err.contains("(config file f.toml)"), "{err}");
        }
    }

    #[test]
    fn every_problem_is_found_and_the_rest_is_still_read() {
        let file = "[server]\nbindd = \"x\"\nbody_limit_bytes = 0\n[smtp]\nport = \"abc\"\nusername = \"mailer\"\n";
        let env = env_of(&[
            ("BACKUP_MONITOR_ALERTS_TO", "not-an-address"),
            ("BACKUP_MONITOR_SCHEDULER_ENABLED", "sometimes"),
            ("DATABASE_URL", "sqlite://kept.db"),
        ]);
        let checked = check_from(Some(("f.toml", file)), &env, &Overrides::default());
        let problems: Vec<String> = checked.problems.iter().map(ToString::to_string).collect();
        for key in [
            "server.bindd",
            "scheduler.enabled",
            "smtp.port",
            "server.body_limit_bytes",
            "alerts.to",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(key)),
                "{key} not in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), 5, "{problems:#?}");
        let s = &checked.settings;
        assert_eq!(
            s.smtp.port, 587,
            "an unreadable value is left at its default"
        );
        assert_eq!(s.smtp.username.as_deref(), Some("mailer"));
        assert_eq!(s.database_path(), PathBuf::from("kept.db"));
        assert_eq!(
            load_from(Some(("f.toml", file)), &env, &Overrides::default())
                .unwrap_err()
                .to_string(),
            problems[0],
            "start-up stops on the first"
        );
    }

    #[test]
    fn an_smtp_host_alone_sends_as_backup_monitor_at_this_host() {
        let env = env_of(&[("SMTP_HOST", "smtp.example.com")]);
        let s = load_from(None, &env, &Overrides::default()).unwrap();
        let from = s.smtp.from.unwrap();
        assert_eq!(from, default_sender());
        let host = from.strip_prefix("backup-monitor@").unwrap();
        assert!(is_host_name(host), "{host}");
        assert!(
            from.parse::<lettre::message::Mailbox>().is_ok(),
            "{from} is not an address lettre takes"
        );
        // No host, no sender; a given sender is kept.
        let s = load_from(None, &no_env, &Overrides::default()).unwrap();
        assert_eq!(s.smtp.from, None);
        let env = env_of(&[
            ("SMTP_HOST", "smtp.example.com"),
            ("SMTP_FROM", "alerts@example.com"),
        ]);
        let s = load_from(None, &env, &Overrides::default()).unwrap();
        assert_eq!(s.smtp.from.as_deref(), Some("alerts@example.com"));
    }

    #[test]
    fn host_names_that_cannot_go_in_an_address_are_refused() {
        for good in ["vm", "backup-01", "mail.example.com"] {
            assert!(is_host_name(good), "{good}");
        }
        for bad in ["", "a b", "-x", "x-", "a..b", "host_name", "ünï"] {
            assert!(!is_host_name(bad), "{bad:?}");
        }
    }

    const CHANNELS: &str = r#"
[smtp]
host = "smtp.example.com"
[[notify.channels]]
name = "ops"
kind = "slack"
url = "https://hooks.slack.com/services/T1/B1/hunter2-slack"
[[notify.channels]]
name = "itsm"
kind = "webhook"
url = "https://itsm.example.com/hook"
secret = "hunter2-hmac"
companies = ["acme", "globex"]
kinds = ["failed", "late"]
"#;

    #[test]
    fn channels_are_read_with_their_routing_and_email_is_implicit_with_smtp() {
        let s = load_from(Some(("f.toml", CHANNELS)), &no_env, &Overrides::default()).unwrap();
        let channels = s.channels();
        let names: Vec<&str> = channels.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["email", "ops", "itsm"],
            "email comes first, by itself"
        );
        let itsm = &s.notify.channels[1];
        assert_eq!(itsm.kind, ChannelKind::Webhook);
        assert_eq!(itsm.companies, ["acme", "globex"]);
        assert_eq!(itsm.kinds, [AlertKind::Failed, AlertKind::Late]);
        assert_eq!(itsm.secret.as_ref().unwrap().expose(), "hunter2-hmac");
        assert_eq!(s.notify.timeout_seconds, 10);

        // No SMTP: no email channel; a declared email channel replaces the implicit one.
        let s = load_from(None, &no_env, &Overrides::default()).unwrap();
        assert!(s.channels().is_empty());
        let routed = "[smtp]\nhost = \"h\"\n[[notify.channels]]\nname = \"mail\"\nkind = \"email\"\nkinds = [\"failed\"]\n";
        let s = load_from(Some(("f.toml", routed)), &no_env, &Overrides::default()).unwrap();
        let channels = s.channels();
        assert_eq!(channels.len(), 1);
        assert_eq!(channels[0].name, "mail");
        assert_eq!(channels[0].kinds, [AlertKind::Failed]);
    }

    #[test]
    fn channel_secrets_are_redacted_everywhere_they_could_show() {
        let s = load_from(Some(("f.toml", CHANNELS)), &no_env, &Overrides::default()).unwrap();
        let shown = s.to_redacted_toml();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[[notify.channels]]"), "{shown}");
        let parsed: toml::Table = shown.parse().unwrap();
        let channels = parsed["notify"]["channels"].as_array().unwrap();
        assert_eq!(channels[0]["url"].as_str(), Some("********"));
        assert_eq!(channels[1]["secret"].as_str(), Some("********"));
        assert_eq!(channels[1]["companies"].as_array().unwrap().len(), 2);
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn a_channel_url_can_come_from_the_environment_and_wins_over_the_file() {
        let file = "[[notify.channels]]\nname = \"on-call\"\nkind = \"ntfy\"\n";
        let env = env_of(&[(
            "BACKUP_MONITOR_CHANNEL_ON_CALL_URL",
            "https://ntfy.sh/topic-from-env",
        )]);
        let s = load_from(Some(("f.toml", file)), &env, &Overrides::default()).unwrap();
        assert_eq!(
            s.notify.channels[0].url.as_ref().unwrap().expose(),
            "https://ntfy.sh/topic-from-env"
        );
        let env = env_of(&[(
            "BACKUP_MONITOR_NOTIFY_CHANNELS",
            r#"[{"name": "ops", "kind": "slack", "url": "https://hooks.slack.com/x"}]"#,
        )]);
        let s = load_from(None, &env, &Overrides::default()).unwrap();
        assert_eq!(s.notify.channels[0].name, "ops");
        let env = env_of(&[("BACKUP_MONITOR_NOTIFY_CHANNELS", "not json hunter2")]);
        let err = load_from(None, &env, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("notify.channels (environment variable BACKUP_MONITOR_NOTIFY_CHANNELS)"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn each_bad_channel_value_is_one_line_naming_the_channel_and_the_key() {
        let channel = |body: &str| format!("[[notify.channels]]\n{body}\n");
        let cases: &[(String, &str)] = &[
            (channel("kind = \"slack\"\nurl = \"https://x.example/h\""), "notify.channels[0].name (config file f.toml): missing"),
            (channel("name = \"a b\"\nkind = \"slack\"\nurl = \"https://x.example/h\""), "notify.channels[0].name (config file f.toml): \"a b\" is not a channel name"),
            (channel("name = \"ops\"\nurl = \"https://x.example/h\""), "notify.channels.ops.kind (config file f.toml): missing: one of slack, teams, webhook, ntfy, email"),
            (channel("name = \"ops\"\nkind = \"discord\"\nurl = \"https://x.example/h\""), "notify.channels.ops.kind (config file f.toml): \"discord\" is not one of"),
            (channel("name = \"ops\"\nkind = \"slack\""), "notify.channels.ops.url (config file f.toml): missing: the slack URL to post to (or the environment variable BACKUP_MONITOR_CHANNEL_OPS_URL)"),
            (channel("name = \"ops\"\nkind = \"slack\"\nurl = \"hooks.slack.com/hunter2\""), "notify.channels.ops.url (config file f.toml): not a URL"),
            (channel("name = \"ops\"\nkind = \"slack\"\nurl = \"ftp://x.example/hunter2\""), "notify.channels.ops.url (config file f.toml): must start with https:// or http://"),
            (channel("name = \"ops\"\nkind = \"slack\"\nurl = 12345678"), "notify.channels.ops.url (config file f.toml): must be text (the value is not shown: it is a secret)"),
            (channel("name = \"ops\"\nkind = \"slack\"\nurl = \"https://x.example/h\"\nsecret = \"hunter2\""), "notify.channels.ops.secret (config file f.toml): only a webhook channel takes a secret"),
            (channel("name = \"ops\"\nkind = \"webhook\"\nurl = \"https://x.example/h\"\nsecret = \"  \""), "notify.channels.ops.secret (config file f.toml): must not be empty"),
            (channel("name = \"ops\"\nkind = \"slack\"\nurl = \"https://x.example/h\"\nkinds = [\"lat\"]"), "notify.channels.ops.kinds (config file f.toml): \"lat\" is not an alert kind: late, failed"),
            (channel("name = \"ops\"\nkind = \"slack\"\nurl = \"https://x.example/h\"\ncompanies = \"acme\""), "notify.channels.ops.companies (config file f.toml): must be a list of company names"),
            (channel("name = \"ops\"\nkind = \"slack\"\nurl = \"https://x.example/h\"\nchanel = \"#ops\""), "notify.channels.ops.chanel (config file f.toml): unknown key; a channel takes name, kind, url, secret, companies, kinds"),
            (channel("name = \"ops\"\nkind = \"email\""), "notify.channels.ops.kind (config file f.toml): an email channel needs smtp.host"),
            ("[smtp]\nhost = \"h\"\n".to_owned() + &channel("name = \"ops\"\nkind = \"email\"\nurl = \"https://x.example/hunter2\""), "notify.channels.ops.url (config file f.toml): an email channel takes no url"),
            (channel("name = \"email\"\nkind = \"slack\"\nurl = \"https://x.example/h\""), "notify.channels.email.name (config file f.toml): the name email belongs to the email channel"),
            (format!("{}{}", channel("name = \"ops\"\nkind = \"slack\"\nurl = \"https://x.example/h\""), channel("name = \"ops\"\nkind = \"ntfy\"\nurl = \"https://x.example/h\"")), "notify.channels.ops.name (config file f.toml): declared twice"),
            ("[smtp]\nhost = \"h\"\n".to_owned() + &channel("name = \"a\"\nkind = \"email\"") + &channel("name = \"b\"\nkind = \"email\""), "notify.channels.b.kind (config file f.toml): only one channel can be of kind email"),
            ("[notify]\nchannels = \"ops\"\n".to_owned(), "notify.channels (config file f.toml): must be a list of channels"),
            ("[notify]\ntimeout_seconds = 0\n".to_owned(), "notify.timeout_seconds (config file f.toml): must be between 1 and 300"),
        ];
        for (file, expected) in cases {
            let checked = check_from(Some(("f.toml", file)), &no_env, &Overrides::default());
            let problems: Vec<String> = checked.problems.iter().map(ToString::to_string).collect();
            assert_eq!(
                problems.len(),
                1,
                "{file}: one problem expected, got {problems:#?}"
            );
            let problem = &problems[0];
            assert!(
                problem.contains(expected),
                "{problem:?} should say {expected:?}"
            );
            assert!(!problem.contains('\n'), "{problem:?} should be one line");
            assert!(!problem.contains("hunter2"), "{problem:?} shows a secret");
        }
        let env = env_of(&[("BACKUP_MONITOR_CHANNEL_OPS_URL", "nope-hunter2")]);
        let file = channel("name = \"ops\"\nkind = \"slack\"");
        let err = load_from(Some(("f.toml", &file)), &env, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("notify.channels.ops.url (environment variable BACKUP_MONITOR_CHANNEL_OPS_URL): not a URL"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    /// A key read by `Settings` but missing from `KEYS` would be refused as unknown.
    #[test]
    fn keys_lists_every_setting() {
        let mut s = Settings::default();
        s.smtp.host = Some("h".into());
        s.smtp.username = Some("u".into());
        s.smtp.password = Some(Secret::new("p"));
        s.smtp.from = Some("f@example.com".into());
        s.auth.admin_token = Some(Secret::new("t"));
        let table: toml::Table = toml::to_string(&s).unwrap().parse().unwrap();
        for (section, keys) in &table {
            for key in keys.as_table().unwrap().keys() {
                assert!(
                    KEYS.iter().any(|k| k.section == section && k.name == key),
                    "{section}.{key} is not in KEYS"
                );
            }
        }
    }

    #[test]
    fn retention_keeps_400_days_by_default_and_reads_the_file_and_the_environment() {
        let s = load_from(None, &no_env, &Overrides::default()).unwrap();
        assert_eq!(s.retention.keep_days, 400);
        let file = "[retention]\nkeep_days = 30\n";
        let s = load_from(Some(("f.toml", file)), &no_env, &Overrides::default()).unwrap();
        assert_eq!(s.retention.keep_days, 30, "from the file");
        let env = env_of(&[("BACKUP_MONITOR_RETENTION_KEEP_DAYS", "0")]);
        let s = load_from(Some(("f.toml", file)), &env, &Overrides::default()).unwrap();
        assert_eq!(
            s.retention.keep_days, 0,
            "the environment wins; 0 is for ever"
        );
    }

    #[test]
    fn a_retention_that_is_not_a_count_of_days_is_refused_by_name() {
        type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)]);
        let cases: [Case; 4] = [
            (Some("[retention]\nkeep_days = -1\n"), &[]),
            (Some("[retention]\nkeep_days = \"a year\"\n"), &[]),
            (None, &[("BACKUP_MONITOR_RETENTION_KEEP_DAYS", "forever")]),
            (
                None,
                &[("BACKUP_MONITOR_RETENTION_KEEP_DAYS", "99999999999")],
            ),
        ];
        for (file, vars) in cases {
            let err = load_from(
                file.map(|f| ("f.toml", f)),
                &env_of(vars),
                &Overrides::default(),
            )
            .expect_err(&format!("{file:?} {vars:?} should be refused"))
            .to_string();
            assert!(err.contains("retention.keep_days"), "{err}");
            assert!(!err.contains('\n'), "{err:?} should be one line");
        }
    }

    #[test]
    fn the_clock_skew_reads_as_a_duration_even_when_huge() {
        let skew = |s| IngestSettings {
            max_clock_skew_seconds: s,
        };
        assert_eq!(skew(300).max_clock_skew(), chrono::Duration::seconds(300));
        assert_eq!(skew(u64::MAX).max_clock_skew(), chrono::Duration::MAX);
        assert_eq!(
            skew(1_000_000_000_000_000_000).max_clock_skew(),
            chrono::Duration::MAX
        );
    }

    #[test]
    fn a_public_url_is_a_base_a_path_can_be_appended_to() {
        for good in [
            "https://monitor.example.com",
            "http://10.0.0.5:8000/",
            "https://example.com/backup-monitor",
        ] {
            assert_eq!(check_public_url(good), Ok(()), "{good}");
        }
        for bad in [
            "monitor.example.com",
            "https://",
            "https://x.example/?a=1",
            "ftp://x",
        ] {
            assert!(check_public_url(bad).is_err(), "{bad}");
        }
        let server = ServerSettings {
            public_url: Some("https://m.example/".to_owned()),
            ..ServerSettings::default()
        };
        assert_eq!(server.url_prefix(), "https://m.example");
        assert_eq!(ServerSettings::default().url_prefix(), "");
    }

    #[test]
    fn trusted_proxies_take_addresses_and_blocks_of_both_families() {
        let env = env_of(&[(
            "BACKUP_MONITOR_SERVER_TRUSTED_PROXIES",
            "127.0.0.1, 10.0.0.0/8, ::1, fd00::/8",
        )]);
        let s = load_from(None, &env, &Overrides::default()).unwrap();
        let blocks = s.server.trusted_proxy_blocks();
        assert_eq!(blocks.len(), 4);
        assert!(blocks[1].contains("10.1.2.3".parse().unwrap()));
        let none = load_from(None, &no_env, &Overrides::default()).unwrap();
        assert!(
            none.server.trusted_proxy_blocks().is_empty(),
            "empty by default"
        );
    }

    #[test]
    fn database_urls_of_every_usual_shape_name_the_right_file() {
        let cases = [
            ("sqlite://backup-monitor.db", "backup-monitor.db"),
            ("sqlite:///var/lib/bm/db.sqlite", "/var/lib/bm/db.sqlite"),
            ("sqlite:///./backup_monitor.db", "./backup_monitor.db"),
            ("sqlite:////srv/bm.db", "/srv/bm.db"),
            ("sqlite:data/bm.db", "data/bm.db"),
            ("sqlite://bm.db?mode=rwc", "bm.db"),
            ("/abs/plain.db", "/abs/plain.db"),
            ("plain.db", "plain.db"),
        ];
        for (url, path) in cases {
            assert_eq!(database_path(url).unwrap(), PathBuf::from(path), "{url}");
        }
        for bad in ["", "sqlite://", "sqlite://:memory:", "mysql://h/db"] {
            assert!(database_path(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
