//! `setup`: the one-time configuration the old tutorial did by hand in dashboards, done idempotently.
//!
//! - `--hubspot`: creates the `chat_transcript` contact property in HubSpot.
//! - `--stream-webhook URL`: points Stream's webhook at the deployed webhook function, keeping every other hook.
//! - `--stream-access`: creates the support agent if missing (else sets only its name) and confines a visitor's
//!   token to its own channel (the channel type's and the app's grants; see `chat_sync::adapters::stream_access`).
//! - `--local-table NAME`: creates the table in DynamoDB Local, with the schema template.yaml deploys.
//!
//! Every step may run again: what is already there is reported, not redone. `--dry-run` makes only read-only calls.
//! All credentials are resolved before the first step, so a missing one changes nothing.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use chat_sync::adapters::dynamo::DynamoStore;
use chat_sync::adapters::hubspot::{HubSpotClient, REQUIRED_SCOPES, TRANSCRIPT_PROPERTY};
use chat_sync::adapters::stream::StreamClient;
use chat_sync::adapters::stream_access::{AgentChange, GrantsChange, AGENT_ROLE_ON_CREATION};
use chat_sync::config::{
    ConfigError, Env, HubSpotSettings, SecretSource, SecretsManager, StreamSettings, SupportAgent,
};
use chat_sync::domain::ChannelType;
use chat_sync::ports::UpstreamError;
use serde_json::{json, Map, Value};
use std::fmt;
use std::time::{Duration, Instant};

pub const USAGE: &str = "\
Usage: setup [--dry-run] [--hubspot] [--stream-webhook URL] [--stream-access [--confine-other-types] [--enable-auth-checks]] [--local-table NAME [--dynamodb-endpoint URL]]

Steps (any combination, at least one):
  --hubspot                 create the chat_transcript contact property in HubSpot and check the app's
                            scopes (contacts and notes); names any that are missing
  --stream-webhook URL      point Stream's webhook at URL (the stack's WebhookFunctionUrl output);
                            other hooks and settings are kept
  --stream-access           create the support agent if missing (else set only its name; never its role or
                            profile) and restrict what a visitor's token may do on the channel type; says on
                            which other channel types a visitor's token may still create channels
  --confine-other-types     with --stream-access: take channel creation from visitors on those other types too
                            (for a Stream app that serves only chat-sync)
  --enable-auth-checks      with --stream-access: switch Stream's disable_auth_checks and
                            disable_permissions_checks off if either is on (otherwise setup stops: with either
                            on, nothing confines a visitor)
  --local-table NAME        create the table in DynamoDB Local
  --dynamodb-endpoint URL   DynamoDB Local's address (default http://127.0.0.1:8000)

Options:
  --dry-run                 say what would change; make only read-only calls
  -h, --help                show this help

Environment:
  HUBSPOT_ACCESS_TOKEN      for --hubspot (or HUBSPOT_ACCESS_TOKEN_SECRET_ARN, read from Secrets Manager)
  STREAM_API_KEY            for --stream-webhook
  STREAM_API_SECRET         for --stream-webhook (or STREAM_API_SECRET_SECRET_ARN)
  SUPPORT_AGENT_ID, SUPPORT_AGENT_NAME, STREAM_CHANNEL_TYPE   for --stream-access (default support-agent,
                            Support, messaging)
  HUBSPOT_BASE_URL, STREAM_BASE_URL   API addresses (default: the public APIs)
";

/// DynamoDB Local's default address (its jar listens on port 8000 unless told otherwise).
pub const DEFAULT_DYNAMODB_ENDPOINT: &str = "http://127.0.0.1:8000";

/// The events the webhook handler acts on; the hook must deliver all of them.
pub use chat_sync::handlers::webhook::EVENT_TYPES as WEBHOOK_EVENT_TYPES;

/// How long one step may take, retries included.
const STEP_BUDGET: Duration = Duration::from_secs(30);

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub hubspot: bool,
    pub stream_webhook: Option<String>,
    pub stream_access: bool,
    /// With `stream_access`: no channel creation for visitors on the app's other channel types either.
    pub confine_other_types: bool,
    /// With `stream_access`: switch Stream's auth and permission checks back on if either is off.
    pub enable_auth_checks: bool,
    pub local_table: Option<String>,
    pub dynamodb_endpoint: String,
    pub dry_run: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            hubspot: false,
            stream_webhook: None,
            stream_access: false,
            confine_other_types: false,
            enable_auth_checks: false,
            local_table: None,
            dynamodb_endpoint: DEFAULT_DYNAMODB_ENDPOINT.to_owned(),
            dry_run: false,
        }
    }
}

impl Options {
    pub fn has_steps(&self) -> bool {
        self.hubspot
            || self.stream_webhook.is_some()
            || self.stream_access
            || self.local_table.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Run(Options),
}

/// Parses the arguments (without the program name). Accepts `--flag value` and `--flag=value`.
pub fn parse_args<I>(args: I) -> Result<Command, String>
where
    I: IntoIterator<Item = String>,
{
    let mut options = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        let switch = matches!(
            flag.as_str(),
            "-h" | "--help"
                | "--dry-run"
                | "--hubspot"
                | "--stream-access"
                | "--confine-other-types"
                | "--enable-auth-checks"
        );
        if switch && inline.is_some() {
            return Err(format!("{flag} takes no value"));
        }
        let mut value = |what: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{flag} needs {what}"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--dry-run" => options.dry_run = true,
            "--hubspot" => options.hubspot = true,
            "--stream-access" => options.stream_access = true,
            "--confine-other-types" => options.confine_other_types = true,
            "--enable-auth-checks" => options.enable_auth_checks = true,
            "--stream-webhook" | "--webhook-url" => {
                options.stream_webhook = Some(webhook_url(&flag, value("a URL")?)?);
            }
            "--local-table" => options.local_table = Some(table_name(value("a table name")?)?),
            "--dynamodb-endpoint" => {
                options.dynamodb_endpoint = http_url(&flag, &value("a URL")?)?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if options.confine_other_types && !options.stream_access {
        return Err("--confine-other-types goes with --stream-access".into());
    }
    if options.enable_auth_checks && !options.stream_access {
        return Err("--enable-auth-checks goes with --stream-access".into());
    }
    if !options.has_steps() {
        return Err(
            "nothing to do: choose --hubspot, --stream-webhook URL, --stream-access and/or --local-table NAME"
                .into(),
        );
    }
    Ok(Command::Run(options))
}

/// An http(s) URL with a host, without a trailing slash.
fn http_url(flag: &str, value: &str) -> Result<String, String> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .unwrap_or_default();
    if rest.is_empty()
        || rest.starts_with('/')
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!("{flag} must be an http(s) URL, got {value:?}"));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// Stream posts every message to this URL from the internet: https only. Kept exactly as given (a Function URL
/// ends with '/'), because "already configured" compares it with what Stream has.
fn webhook_url(flag: &str, value: String) -> Result<String, String> {
    http_url(flag, &value)?;
    if !value.starts_with("https://") {
        return Err(format!(
            "{flag} must be an https URL (the stack's WebhookFunctionUrl), got {value:?}"
        ));
    }
    Ok(value)
}

/// DynamoDB's rule for table names: 3 to 255 of `[A-Za-z0-9_.-]`.
fn table_name(value: String) -> Result<String, String> {
    let valid = (3..=255).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(value)
    } else {
        Err(format!(
            "--local-table must be 3 to 255 letters, digits, '_', '.' or '-', got {value:?}"
        ))
    }
}

/// Why setup failed; every message says what to check and none contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "HubSpot rejected the access token ({status}): check HUBSPOT_ACCESS_TOKEN and the app's scopes {}",
        REQUIRED_SCOPES.join(", ")
    )]
    HubSpotCredentials { status: u16 },
    #[error(
        "Stream rejected the credentials ({status}): check STREAM_API_KEY and STREAM_API_SECRET (the app's server-side \
         key and secret)"
    )]
    StreamCredentials { status: u16 },
    // An operator's terminal, not a log: the service's own words help here.
    #[error("{step} failed ({at}): {source}{}", source.detail().map(|d| format!(": {d}")).unwrap_or_default())]
    Upstream {
        step: &'static str,
        /// The base URL, so a wrong HUBSPOT_BASE_URL / STREAM_BASE_URL shows.
        at: String,
        source: UpstreamError,
    },
    #[error(
        "the HubSpot app lacks the scopes chat-sync needs: {}. It needs {}: the project's app gets them by \
         `make hubspot-upload hubspot-install` (hubspot/ lists them), a legacy private app in its settings (Scopes); \
         then run setup again. Notes are written with the contact scopes, and TRANSCRIPT_TARGETS=property writes none",
        .0.join(", "),
        REQUIRED_SCOPES.join(", ")
    )]
    MissingScopes(Vec<String>),
    #[error("Stream's app settings are not what setup expects: {0}")]
    UnexpectedSettings(String),
    #[error(
        "the Stream app has {} switched on: anyone holding the public API key can connect as any user (the support \
         agent included) or ignore every grant, so visitors are not confined. Run setup --stream-access \
         --enable-auth-checks to switch {} off (PATCH /app), or switch it off in Stream's dashboard",
        .0.join(" and "),
        if .0.len() == 1 { "it" } else { "them" }
    )]
    AuthChecksOff(Vec<&'static str>),
    #[error("DynamoDB at {endpoint} failed ({detail}): is DynamoDB Local running there?")]
    DynamoDb { endpoint: String, detail: String },
}

fn hubspot_error(step: &'static str, at: &str, error: UpstreamError) -> SetupError {
    match error {
        UpstreamError::Rejected {
            status: status @ (401 | 403),
            ..
        } => SetupError::HubSpotCredentials { status },
        source => SetupError::Upstream {
            step,
            at: at.to_owned(),
            source,
        },
    }
}

fn stream_error(step: &'static str, at: &str, error: UpstreamError) -> SetupError {
    match error {
        UpstreamError::Rejected {
            status: status @ (401 | 403),
            ..
        } => SetupError::StreamCredentials { status },
        source => SetupError::Upstream {
            step,
            at: at.to_owned(),
            source,
        },
    }
}

/// How Stream delivers webhooks to this app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookMode {
    /// `event_hooks`: a list of hooks (newer apps).
    EventHooks,
    /// The single `webhook_url` setting (older apps).
    Legacy,
}

impl fmt::Display for HookMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HookMode::EventHooks => "event_hooks",
            HookMode::Legacy => "webhook_url",
        })
    }
}

/// What one step found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The token has every scope the transcripts (property and notes) need.
    ScopesPresent,
    PropertyCreated,
    PropertyAlreadyThere,
    PropertyWouldBeCreated,
    WebhookSet {
        url: String,
        mode: HookMode,
    },
    WebhookWouldBeSet {
        url: String,
        mode: HookMode,
    },
    WebhookAlreadyConfigured {
        url: String,
    },
    TableCreated {
        table: String,
    },
    TableAlreadyThere {
        table: String,
    },
    TableWouldBeCreated {
        table: String,
    },
    /// The support agent: created, renamed or left as it was (or what a dry run would do).
    Agent {
        id: String,
        change: AgentChange,
        dry_run: bool,
    },
    /// The visitor's grants on the channel type and app-wide.
    VisitorGrants {
        channel_type: String,
        change: GrantsChange,
        dry_run: bool,
    },
    /// The app's other channel types on which a visitor's token could create channels (Stream's defaults), and
    /// whether that was taken from it (`--confine-other-types`).
    OtherChannelTypes {
        types: Vec<String>,
        confined: bool,
        dry_run: bool,
    },
    /// Stream's `disable_auth_checks` / `disable_permissions_checks` were on and are switched off
    /// (`--enable-auth-checks`).
    AuthChecks {
        switched_off: Vec<&'static str>,
        dry_run: bool,
    },
    /// Something the operator should look at; nothing was changed because of it.
    Note(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::ScopesPresent => write!(
                f,
                "HubSpot: the app has the scopes contacts, notes and their associations need"
            ),
            Outcome::PropertyCreated => write!(
                f,
                "HubSpot: created the contact property {TRANSCRIPT_PROPERTY}"
            ),
            Outcome::PropertyAlreadyThere => {
                write!(
                    f,
                    "HubSpot: the contact property {TRANSCRIPT_PROPERTY} is already there"
                )
            }
            Outcome::PropertyWouldBeCreated => {
                write!(
                    f,
                    "HubSpot: would create the contact property {TRANSCRIPT_PROPERTY}"
                )
            }
            Outcome::WebhookSet { url, mode } => {
                write!(f, "Stream: webhook set to {url} (via {mode})")
            }
            Outcome::WebhookWouldBeSet { url, mode } => {
                write!(f, "Stream: would set the webhook to {url} (via {mode})")
            }
            Outcome::WebhookAlreadyConfigured { url } => {
                write!(f, "Stream: the webhook {url} is already configured")
            }
            Outcome::TableCreated { table } => write!(f, "DynamoDB Local: created table {table}"),
            Outcome::TableAlreadyThere { table } => {
                write!(
                    f,
                    "DynamoDB Local: table {table} is already there (left as it is)"
                )
            }
            Outcome::TableWouldBeCreated { table } => {
                write!(f, "DynamoDB Local: would create table {table}")
            }
            Outcome::Agent {
                id,
                change,
                dry_run,
            } => {
                let would = if *dry_run { "would be " } else { "" };
                match change {
                    AgentChange::Created => write!(
                        f,
                        "Stream: the support agent {id} {would}created (role {AGENT_ROLE_ON_CREATION}; promote it in                          Stream's dashboard if it needs more, setup never changes it)"
                    ),
                    AgentChange::Renamed => write!(
                        f,
                        "Stream: the support agent {id}'s name {would}updated (its role and profile are kept)"
                    ),
                    AgentChange::Unchanged => {
                        write!(f, "Stream: the support agent {id} is already there")
                    }
                }
            }
            Outcome::VisitorGrants {
                channel_type,
                change,
                dry_run,
            } => {
                let would = if *dry_run { "would be " } else { "" };
                let mut changed = Vec::new();
                if change.channel_type {
                    changed.push(format!("the {channel_type} channel type's grants"));
                }
                if change.app {
                    changed.push("the app-wide grants".to_owned());
                }
                if changed.is_empty() {
                    write!(
                        f,
                        "Stream: visitors are already confined to their own channels ({channel_type} and app grants)"
                    )
                } else {
                    write!(
                        f,
                        "Stream: {} {would}set so a visitor reads and writes only its own channel",
                        changed.join(" and ")
                    )
                }
            }
            Outcome::OtherChannelTypes { types, .. } if types.is_empty() => write!(
                f,
                "Stream: no other channel type lets a visitor's token create channels"
            ),
            Outcome::OtherChannelTypes {
                types,
                confined: true,
                dry_run,
            } => {
                let would = if *dry_run { "would be " } else { "" };
                write!(
                    f,
                    "Stream: channel creation {would}taken from visitors on the other channel types too: {}",
                    types.join(", ")
                )
            }
            Outcome::OtherChannelTypes { types, .. } => write!(
                f,
                "Stream: a visitor's token may still create channels of the other types {} (Stream's defaults); \
                 if this Stream app serves only chat-sync, run again with --confine-other-types",
                types.join(", ")
            ),
            Outcome::AuthChecks {
                switched_off,
                dry_run: false,
            } => write!(
                f,
                "Stream: switched {} off: tokens must be signed with the app secret and grants apply again",
                switched_off.join(" and ")
            ),
            Outcome::AuthChecks {
                switched_off,
                dry_run: true,
            } => write!(
                f,
                "Stream: would switch {} off (dry run)",
                switched_off.join(" and ")
            ),
            Outcome::Note(note) => write!(f, "note: {note}"),
        }
    }
}

/// The change Stream's app settings need, worked out from `GET /app`.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookPlan {
    AlreadyConfigured,
    /// `patch` is the whole `PATCH /app` body: only the one field that changes.
    Patch {
        mode: HookMode,
        patch: Value,
    },
}

/// Works out how to point the app's webhook at `url` without touching anything else.
///
/// With `event_hooks`, an enabled `webhook` hook for `url` that receives the message events is enough. Otherwise the
/// hook for `url` is updated in place (keeping its id and other fields) or a new one is added; every other hook is
/// sent back as it came, because `PATCH /app` replaces the whole list. Without `event_hooks`, `webhook_url` is set.
pub fn plan_webhook(settings: &Value, url: &str) -> Result<(WebhookPlan, Vec<String>), SetupError> {
    // `GET /app` answers `{"app": {...}}`; accept the bare settings object too.
    let app = settings.get("app").unwrap_or(settings);
    if !app.is_object() {
        return Err(SetupError::UnexpectedSettings("no app object".into()));
    }
    let mut notes = Vec::new();
    // Apps that have `event_hooks` still deliver to a legacy `webhook_url`: when it already points here, adding a hook
    // for the same URL would have Stream deliver every event twice.
    let legacy_here = app.get("webhook_url").and_then(Value::as_str) == Some(url);
    match app.get("event_hooks") {
        Some(Value::Array(hooks)) if legacy_here => {
            if hooks
                .iter()
                .any(|hook| is_webhook_for(hook, url) && is_enabled(hook))
            {
                notes.push(format!(
                    "both the app's webhook_url and an event hook point at {url}, so Stream delivers each event \
                     twice (harmless, but twice the invocations): remove one in Stream's dashboard"
                ));
            }
            notes.extend(legacy_event_notes(app));
            Ok((WebhookPlan::AlreadyConfigured, notes))
        }
        Some(Value::Array(hooks)) => {
            let mut hooks = hooks.clone();
            let is_webhook =
                |hook: &Value| hook.get("hook_type").and_then(Value::as_str) == Some("webhook");
            let others = hooks
                .iter()
                .filter(|hook| is_webhook(hook) && !is_webhook_for(hook, url))
                .count();
            if others > 0 {
                notes.push(format!(
                    "{others} other webhook hook(s) with other URLs are left as they are; remove stale ones in \
                     Stream's dashboard, or they receive the same events"
                ));
            }
            if hooks
                .iter()
                .any(|hook| is_webhook_for(hook, url) && delivers_message_events(hook))
            {
                return Ok((WebhookPlan::AlreadyConfigured, notes));
            }
            match hooks.iter().position(|hook| is_webhook_for(hook, url)) {
                Some(index) => {
                    let hook = &mut hooks[index];
                    let mut event_types: Vec<Value> = hook
                        .get("event_types")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    // An empty list means every event: enabling the hook is enough, narrowing it would not be.
                    if !event_types.is_empty() {
                        for event in WEBHOOK_EVENT_TYPES {
                            if !event_types.iter().any(|e| e.as_str() == Some(event)) {
                                event_types.push(json!(event));
                            }
                        }
                    }
                    let Some(fields) = hook.as_object_mut() else {
                        return Err(SetupError::UnexpectedSettings(
                            "a hook is not an object".into(),
                        ));
                    };
                    fields.insert("enabled".into(), json!(true));
                    fields.insert("event_types".into(), Value::Array(event_types));
                    Ok((event_hooks_patch(hooks), notes))
                }
                None => {
                    hooks.push(json!({
                        "hook_type": "webhook",
                        "enabled": true,
                        "webhook_url": url,
                        "event_types": WEBHOOK_EVENT_TYPES,
                    }));
                    Ok((event_hooks_patch(hooks), notes))
                }
            }
        }
        Some(Value::Null) | None => {
            notes.extend(legacy_event_notes(app));
            if legacy_here {
                return Ok((WebhookPlan::AlreadyConfigured, notes));
            }
            Ok((
                WebhookPlan::Patch {
                    mode: HookMode::Legacy,
                    patch: json!({ "webhook_url": url }),
                },
                notes,
            ))
        }
        Some(_) => Err(SetupError::UnexpectedSettings(
            "event_hooks is not a list".into(),
        )),
    }
}

/// The message events a legacy `webhook_url` does not receive (`webhook_events`: empty means every event).
fn legacy_event_notes(app: &Value) -> Option<String> {
    let events = app.get("webhook_events").and_then(Value::as_array)?;
    let missing: Vec<&str> = WEBHOOK_EVENT_TYPES
        .into_iter()
        .filter(|event| !events.is_empty() && !events.iter().any(|e| e.as_str() == Some(event)))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "the app's webhook_events leave out {}; enable them in Stream's dashboard",
            missing.join(", ")
        )
    })
}

fn event_hooks_patch(hooks: Vec<Value>) -> WebhookPlan {
    WebhookPlan::Patch {
        mode: HookMode::EventHooks,
        patch: Value::Object(Map::from_iter([(
            "event_hooks".to_owned(),
            Value::Array(hooks),
        )])),
    }
}

fn is_webhook_for(hook: &Value, url: &str) -> bool {
    hook.get("hook_type").and_then(Value::as_str) == Some("webhook")
        && hook.get("webhook_url").and_then(Value::as_str) == Some(url)
}

/// Enabled, and subscribed to all events (an empty list) or at least to the message events.
fn is_enabled(hook: &Value) -> bool {
    hook.get("enabled")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn delivers_message_events(hook: &Value) -> bool {
    let enabled = is_enabled(hook);
    let covered = match hook.get("event_types").and_then(Value::as_array) {
        Some(types) if !types.is_empty() => WEBHOOK_EVENT_TYPES
            .iter()
            .all(|event| types.iter().any(|t| t.as_str() == Some(event))),
        _ => true,
    };
    enabled && covered
}

/// Reads `NAME_SECRET_ARN` secrets from AWS Secrets Manager, loading the AWS configuration only if one is needed.
#[derive(Default)]
pub struct LazySecretsManager(tokio::sync::OnceCell<SecretsManager>);

#[async_trait::async_trait]
impl SecretSource for LazySecretsManager {
    async fn secret_string(&self, arn: &str) -> Result<String, String> {
        let secrets = self
            .0
            .get_or_init(|| async { SecretsManager::new(&chat_sync::config::aws().await) })
            .await;
        secrets.secret_string(arn).await
    }
}

/// The selected steps, with their clients built and credentials resolved. (`Debug` shows no credential: the
/// clients keep them as `SecretString`.)
#[derive(Debug)]
pub struct Setup {
    hubspot: Option<HubSpotStep>,
    stream: Option<StreamStep>,
    access: Option<AccessStep>,
    table: Option<TableStep>,
    dry_run: bool,
}

#[derive(Debug)]
struct AccessStep {
    client: StreamClient,
    base_url: String,
    agent: SupportAgent,
    channel_type: ChannelType,
    confine_other_types: bool,
    enable_auth_checks: bool,
}

#[derive(Debug)]
struct HubSpotStep {
    client: HubSpotClient,
    base_url: String,
}

#[derive(Debug)]
struct StreamStep {
    client: StreamClient,
    base_url: String,
    webhook_url: String,
}

#[derive(Debug)]
struct TableStep {
    table: String,
    endpoint: String,
}

impl Setup {
    /// Resolves every credential the selected steps need, before any of them runs.
    pub async fn from_env(
        options: &Options,
        env: &Env,
        secrets: &dyn SecretSource,
    ) -> Result<Self, SetupError> {
        let hubspot = if options.hubspot {
            let settings = HubSpotSettings::load(env, secrets).await?;
            Some(HubSpotStep {
                // A command run by hand makes a handful of requests and may run before any table exists: it keeps
                // its own budget on the same plan.
                client: HubSpotClient::new(
                    &settings.base_url,
                    settings.access_token.clone(),
                    std::sync::Arc::new(chat_sync::budget::ProcessBudget::new(settings.rate_limit)),
                ),
                base_url: settings.base_url,
            })
        } else {
            None
        };
        let stream = match &options.stream_webhook {
            Some(url) => {
                let settings = StreamSettings::load(env, secrets).await?;
                let client = StreamClient::new(
                    &settings.base_url,
                    &settings.api_key,
                    settings.api_secret.clone(),
                )
                .map_err(|e| ConfigError {
                    variable: "STREAM_API_SECRET".into(),
                    problem: e.to_string(),
                })?;
                Some(StreamStep {
                    client,
                    base_url: settings.base_url,
                    webhook_url: url.clone(),
                })
            }
            None => None,
        };
        let access = if options.stream_access {
            let settings = StreamSettings::load(env, secrets).await?;
            Some(AccessStep {
                client: chat_sync::app::stream_client(&settings)?,
                base_url: settings.base_url,
                agent: SupportAgent::load(env)?,
                channel_type: chat_sync::config::channel_type(env)?,
                confine_other_types: options.confine_other_types,
                enable_auth_checks: options.enable_auth_checks,
            })
        } else {
            None
        };
        Ok(Self {
            hubspot,
            stream,
            access,
            table: options.local_table.clone().map(|table| TableStep {
                table,
                endpoint: options.dynamodb_endpoint.clone(),
            }),
            dry_run: options.dry_run,
        })
    }

    /// Runs the steps in order, reporting each outcome as it happens; stops at the first failure.
    pub async fn run(&self, report: &mut dyn FnMut(&Outcome)) -> Result<(), SetupError> {
        if let Some(hubspot) = &self.hubspot {
            report(&self.transcript_property(hubspot).await?);
            report(&self.scopes(hubspot).await?);
        }
        if let Some(stream) = &self.stream {
            for outcome in self.stream_webhook(stream).await? {
                report(&outcome);
            }
        }
        if let Some(access) = &self.access {
            for outcome in self.stream_access(access).await? {
                report(&outcome);
            }
        }
        if let Some(table) = &self.table {
            report(&self.local_table(table).await?);
        }
        Ok(())
    }

    async fn stream_access(&self, step: &AccessStep) -> Result<Vec<Outcome>, SetupError> {
        const STEP: &str = "setting up the agent and visitors' rights in Stream";
        let deadline = Instant::now() + STEP_BUDGET;
        let failed = |e| stream_error(STEP, &step.base_url, e);
        let apply = !self.dry_run;
        // First: with either check off, nothing below confines anybody.
        let checks = step
            .client
            .checks_off(step.enable_auth_checks, apply, deadline)
            .await
            .map_err(failed)?;
        if !checks.on.is_empty() && !step.enable_auth_checks {
            return Err(SetupError::AuthChecksOff(checks.on));
        }
        let agent = step
            .client
            .ensure_agent(&step.agent.id, &step.agent.name, apply, deadline)
            .await
            .map_err(failed)?;
        let grants = step
            .client
            .restrict_visitors(&step.channel_type, apply, deadline)
            .await
            .map_err(failed)?;
        let elsewhere = step
            .client
            .channel_creation_elsewhere(
                &step.channel_type,
                step.confine_other_types,
                apply,
                deadline,
            )
            .await
            .map_err(failed)?;
        let mut outcomes = Vec::new();
        if !checks.on.is_empty() {
            outcomes.push(Outcome::AuthChecks {
                switched_off: checks.on,
                dry_run: self.dry_run,
            });
        }
        outcomes.extend([
            Outcome::Agent {
                id: step.agent.id.as_str().to_owned(),
                change: agent,
                dry_run: self.dry_run,
            },
            Outcome::VisitorGrants {
                channel_type: step.channel_type.as_str().to_owned(),
                change: grants,
                dry_run: self.dry_run,
            },
            Outcome::OtherChannelTypes {
                types: elsewhere,
                confined: step.confine_other_types,
                dry_run: self.dry_run,
            },
        ]);
        Ok(outcomes)
    }

    /// Checks the token's scopes with requests that change nothing (so also in a dry run).
    async fn scopes(&self, hubspot: &HubSpotStep) -> Result<Outcome, SetupError> {
        const STEP: &str = "checking the HubSpot app's scopes";
        let missing = hubspot
            .client
            .missing_scopes(Instant::now() + STEP_BUDGET)
            .await
            .map_err(|e| hubspot_error(STEP, &hubspot.base_url, e))?;
        if missing.is_empty() {
            Ok(Outcome::ScopesPresent)
        } else {
            Err(SetupError::MissingScopes(missing))
        }
    }

    async fn transcript_property(&self, hubspot: &HubSpotStep) -> Result<Outcome, SetupError> {
        const STEP: &str = "creating the HubSpot property";
        let deadline = Instant::now() + STEP_BUDGET;
        let failed = |e| hubspot_error(STEP, &hubspot.base_url, e);
        if self.dry_run {
            let exists = hubspot
                .client
                .transcript_property_exists(deadline)
                .await
                .map_err(failed)?;
            return Ok(if exists {
                Outcome::PropertyAlreadyThere
            } else {
                Outcome::PropertyWouldBeCreated
            });
        }
        let created = hubspot
            .client
            .ensure_transcript_property(deadline)
            .await
            .map_err(failed)?;
        Ok(if created {
            Outcome::PropertyCreated
        } else {
            Outcome::PropertyAlreadyThere
        })
    }

    async fn stream_webhook(&self, stream: &StreamStep) -> Result<Vec<Outcome>, SetupError> {
        const STEP: &str = "setting Stream's webhook";
        let deadline = Instant::now() + STEP_BUDGET;
        let failed = |e| stream_error(STEP, &stream.base_url, e);
        let settings = stream.client.app_settings(deadline).await.map_err(failed)?;
        let (plan, notes) = plan_webhook(&settings, &stream.webhook_url)?;
        let mut outcomes: Vec<Outcome> = notes.into_iter().map(Outcome::Note).collect();
        let url = stream.webhook_url.clone();
        outcomes.push(match plan {
            WebhookPlan::AlreadyConfigured => Outcome::WebhookAlreadyConfigured { url },
            WebhookPlan::Patch { mode, .. } if self.dry_run => {
                Outcome::WebhookWouldBeSet { url, mode }
            }
            WebhookPlan::Patch { mode, patch } => {
                stream
                    .client
                    .update_app_settings(&patch, deadline)
                    .await
                    .map_err(failed)?;
                Outcome::WebhookSet { url, mode }
            }
        });
        Ok(outcomes)
    }

    async fn local_table(&self, step: &TableStep) -> Result<Outcome, SetupError> {
        let (table, endpoint) = (step.table.as_str(), step.endpoint.as_str());
        let client = chat_sync::app::local_dynamodb(endpoint).await;
        let failed = |detail: String| SetupError::DynamoDb {
            endpoint: endpoint.to_owned(),
            detail,
        };
        let table = table.to_owned();
        if self.dry_run {
            return match client.describe_table().table_name(&table).send().await {
                Ok(_) => Ok(Outcome::TableAlreadyThere { table }),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    Ok(Outcome::TableWouldBeCreated { table })
                }
                Err(e) => Err(failed(dynamodb_detail(&e))),
            };
        }
        let created = DynamoStore::new(client, table.clone())
            .create_table()
            .await
            .map_err(|e| failed(e.to_string()))?;
        Ok(if created {
            Outcome::TableCreated { table }
        } else {
            Outcome::TableAlreadyThere { table }
        })
    }
}

fn dynamodb_detail(error: &SdkError<DescribeTableError>) -> String {
    match error.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("ServiceError"),
            service.message().unwrap_or_default()
        ),
        None => {
            // Connection refused and the like: the SDK's Display hides the cause, its source chain has it.
            let mut detail = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                detail = format!("{detail}: {cause}");
                source = cause.source();
            }
            detail.chars().take(300).collect()
        }
    }
}

/// Resolves credentials from `env` (and Secrets Manager for `*_SECRET_ARN`), then runs the selected steps.
pub async fn run(
    options: &Options,
    env: &Env,
    report: &mut dyn FnMut(&Outcome),
) -> Result<(), SetupError> {
    Setup::from_env(options, env, &LazySecretsManager::default())
        .await?
        .run(report)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Command, String> {
        parse_args(list.iter().map(|a| (*a).to_owned()))
    }

    fn run_options(list: &[&str]) -> Options {
        match args(list) {
            Ok(Command::Run(options)) => options,
            other => panic!("{list:?} gave {other:?}"),
        }
    }

    #[test]
    fn parses_steps_in_both_flag_forms() {
        let options = run_options(&[
            "--hubspot",
            "--stream-webhook",
            "https://abc.lambda-url.eu-west-1.on.aws/",
            "--local-table=chat-sync",
            "--dynamodb-endpoint=http://127.0.0.1:8123/",
            "--stream-access",
            "--confine-other-types",
            "--enable-auth-checks",
            "--dry-run",
        ]);
        assert_eq!(
            options,
            Options {
                hubspot: true,
                stream_webhook: Some("https://abc.lambda-url.eu-west-1.on.aws/".into()),
                stream_access: true,
                confine_other_types: true,
                enable_auth_checks: true,
                local_table: Some("chat-sync".into()),
                dynamodb_endpoint: "http://127.0.0.1:8123".into(),
                dry_run: true,
            }
        );
        assert_eq!(
            run_options(&["--local-table", "t-1"]).dynamodb_endpoint,
            DEFAULT_DYNAMODB_ENDPOINT
        );
        assert_eq!(args(&["--dry-run", "-h"]), Ok(Command::Help));
    }

    #[test]
    fn rejects_what_cannot_work() {
        for bad in [
            &[][..],
            &["--dry-run"],
            &["--stream-webhook"],
            &["--stream-webhook", "http://insecure.example/hook"],
            &["--stream-webhook", "hooks.example"],
            &["--local-table", "x"],
            &["--local-table", "has space"],
            &["--dynamodb-endpoint", "localhost:8000", "--hubspot"],
            &["--hubspot=yes"],
            &["--hubspot", "--verbose"],
            &["--confine-other-types", "--hubspot"],
            &["--stream-access", "--confine-other-types=yes"],
        ] {
            assert!(args(bad).is_err(), "{bad:?} was accepted");
        }
        let error = args(&["--stream-webhook"]).expect_err("no URL");
        assert!(error.contains("--stream-webhook needs a URL"), "{error}");
    }

    const URL: &str = "https://abc.lambda-url.eu-west-1.on.aws/";

    fn patch(plan: WebhookPlan) -> (HookMode, Value) {
        match plan {
            WebhookPlan::Patch { mode, patch } => (mode, patch),
            WebhookPlan::AlreadyConfigured => panic!("expected a patch"),
        }
    }

    #[test]
    fn legacy_apps_get_webhook_url_only() {
        let (plan, notes) = plan_webhook(
            &json!({"app": {"webhook_url": "https://old.example/", "name": "x"}}),
            URL,
        )
        .expect("plan");
        assert_eq!(
            patch(plan),
            (HookMode::Legacy, json!({ "webhook_url": URL }))
        );
        assert!(notes.is_empty());
        let (plan, _) = plan_webhook(
            &json!({"app": {"webhook_url": URL, "event_hooks": null}}),
            URL,
        )
        .expect("plan");
        assert_eq!(plan, WebhookPlan::AlreadyConfigured);
        let (_, notes) =
            plan_webhook(&json!({"app": {"webhook_events": ["message.new"]}}), URL).expect("plan");
        assert!(
            notes[0].contains("message.updated, message.deleted"),
            "{notes:?}"
        );
    }

    #[test]
    fn event_hooks_keep_every_other_hook() {
        let sqs = json!({"id": "h-1", "hook_type": "sqs", "enabled": true, "sqs_queue_url": "q"});
        let other = json!({"id": "h-2", "hook_type": "webhook", "enabled": true, "webhook_url": "https://else/"});
        let settings = json!({"app": {"event_hooks": [sqs, other], "webhook_url": ""}});
        let (plan, notes) = plan_webhook(&settings, URL).expect("plan");
        let (mode, body) = patch(plan);
        assert_eq!(mode, HookMode::EventHooks);
        assert_eq!(
            body.as_object().map(|o| o.len()),
            Some(1),
            "only event_hooks changes"
        );
        let hooks = body["event_hooks"].as_array().expect("list");
        assert_eq!(hooks.len(), 3);
        assert_eq!(hooks[0], sqs);
        assert_eq!(hooks[1], other);
        assert_eq!(
            hooks[2],
            json!({"hook_type": "webhook", "enabled": true, "webhook_url": URL,
                   "event_types": WEBHOOK_EVENT_TYPES})
        );
        assert_eq!(notes.len(), 1, "the other webhook is pointed out");
    }

    #[test]
    fn event_hooks_fix_our_hook_in_place_or_leave_it() {
        let ours = json!({"id": "h-9", "hook_type": "webhook", "enabled": false, "webhook_url": URL,
                          "event_types": ["channel.created"]});
        let (plan, _) = plan_webhook(&json!({"app": {"event_hooks": [ours]}}), URL).expect("plan");
        let (_, body) = patch(plan);
        assert_eq!(
            body["event_hooks"],
            json!([{"id": "h-9", "hook_type": "webhook", "enabled": true, "webhook_url": URL,
                    "event_types": ["channel.created", "message.new", "message.updated", "message.deleted",
                                    "message.undeleted", "channel.truncated", "channel.deleted", "user.deleted",
                                    "user.messages.deleted"]}])
        );
        // Disabled, subscribed to everything: enabled as it is, not narrowed to the message events.
        let all = json!({"hook_type": "webhook", "enabled": false, "webhook_url": URL, "event_types": []});
        let (plan, _) = plan_webhook(&json!({"app": {"event_hooks": [all]}}), URL).expect("plan");
        let (_, body) = patch(plan);
        assert_eq!(body["event_hooks"][0]["enabled"], true);
        assert_eq!(body["event_hooks"][0]["event_types"], json!([]));
        for configured in [
            json!({"hook_type": "webhook", "enabled": true, "webhook_url": URL, "event_types": []}),
            json!({"hook_type": "webhook", "enabled": true, "webhook_url": URL,
                   "event_types": ["message.deleted", "message.new", "message.updated", "reaction.new",
                                   "message.undeleted", "channel.truncated", "channel.deleted", "user.deleted",
                                   "user.messages.deleted"]}),
        ] {
            let (plan, _) = plan_webhook(&json!({"event_hooks": [configured]}), URL).expect("plan");
            assert_eq!(plan, WebhookPlan::AlreadyConfigured);
        }
    }

    #[test]
    fn credential_errors_name_what_to_check() {
        let rejected = |status| UpstreamError::Rejected {
            service: "HubSpot",
            status,
            detail: "Authentication credentials not found".into(),
        };
        let message = hubspot_error("x", "http://h", rejected(401)).to_string();
        assert!(
            message
                .starts_with("HubSpot rejected the access token (401): check HUBSPOT_ACCESS_TOKEN"),
            "{message}"
        );
        assert!(message.contains("crm.schemas.contacts.write"), "{message}");
        assert!(stream_error("x", "http://s", rejected(403))
            .to_string()
            .contains("STREAM_API_SECRET"));
        assert!(matches!(
            hubspot_error("x", "http://h", rejected(400)),
            SetupError::Upstream { .. }
        ));
    }
}
