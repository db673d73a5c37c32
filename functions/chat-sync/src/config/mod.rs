//! Configuration from the environment, checked once at cold start. Secrets come from the environment locally and
//! from AWS Secrets Manager when deployed (`<NAME>_SECRET_ARN`); they are never logged.

use crate::domain::identity::{IdentityPolicy, IdentityVerifier};
use crate::domain::{ChannelType, UserId};
use crate::throttle::{parse_limit, RegistrationLimits};
use secrecy::SecretString;
use std::time::Duration;

mod env;
pub mod error;
pub use env::{Env, SecretSource, SecretsManager};
pub use error::ConfigError;

/// The browser origins allowed to call the registration API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    Any,
    List(Vec<String>),
}

impl AllowedOrigins {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let origins: Vec<String> = raw
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        if origins.iter().any(|o| o == "*") {
            // `*` is honoured only alone, so nobody gets it by accident inside a list.
            return if origins.len() == 1 {
                Ok(AllowedOrigins::Any)
            } else {
                Err(ConfigError::new(
                    "ALLOWED_ORIGINS",
                    "may be * alone, not * within a list",
                ))
            };
        }
        for origin in &origins {
            if !(origin.starts_with("https://") || origin.starts_with("http://")) {
                return Err(ConfigError::new(
                    "ALLOWED_ORIGINS",
                    format!("has {origin:?}, which is not an http(s) origin"),
                ));
            }
        }
        Ok(AllowedOrigins::List(origins))
    }

    /// The value for `Access-Control-Allow-Origin`, if this origin may call us.
    pub fn allow(&self, origin: &str) -> Option<String> {
        match self {
            AllowedOrigins::Any => Some("*".to_owned()),
            AllowedOrigins::List(list) => list.iter().find(|o| o.as_str() == origin).cloned(),
        }
    }
}

pub struct HubSpotSettings {
    pub base_url: String,
    pub access_token: SecretString,
    /// The app's rate limit (`HUBSPOT_RATE_LIMIT`), shared by every function through the budget.
    pub rate_limit: crate::budget::RateLimit,
}

impl HubSpotSettings {
    pub async fn load(env: &Env, secrets: &dyn SecretSource) -> Result<Self, ConfigError> {
        Ok(Self {
            base_url: env.url(
                "HUBSPOT_BASE_URL",
                crate::adapters::hubspot::DEFAULT_BASE_URL,
            )?,
            access_token: env.secret("HUBSPOT_ACCESS_TOKEN", secrets).await?,
            rate_limit: crate::budget::RateLimit::parse(
                &env.optional("HUBSPOT_RATE_LIMIT", "100/10"),
            )
            .map_err(|problem| ConfigError::new("HUBSPOT_RATE_LIMIT", problem))?,
        })
    }
}

pub struct StreamSettings {
    pub base_url: String,
    pub api_key: String,
    pub api_secret: SecretString,
}

impl StreamSettings {
    pub async fn load(env: &Env, secrets: &dyn SecretSource) -> Result<Self, ConfigError> {
        Ok(Self {
            base_url: env.url("STREAM_BASE_URL", crate::adapters::stream::DEFAULT_BASE_URL)?,
            api_key: env.required("STREAM_API_KEY")?,
            api_secret: env.secret("STREAM_API_SECRET", secrets).await?,
        })
    }
}

/// The support agent (`SUPPORT_AGENT_ID`, `SUPPORT_AGENT_NAME`): added to every channel by registration, created
/// and named by `setup` (see `adapters::stream_access`).
#[derive(Debug, Clone)]
pub struct SupportAgent {
    pub id: UserId,
    pub name: String,
}

impl SupportAgent {
    /// `SUPPORT_AGENT_ID` when unset.
    pub const DEFAULT_ID: &'static str = "support-agent";

    pub fn load(env: &Env) -> Result<Self, ConfigError> {
        let id = support_agent_id(env)?;
        let name = env.optional("SUPPORT_AGENT_NAME", "Support");
        if name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(ConfigError::new(
                "SUPPORT_AGENT_NAME",
                "must be at most 100 characters, no control characters",
            ));
        }
        Ok(Self { id, name })
    }
}

/// `SUPPORT_AGENT_ID`, parsed here only (registration adds the agent, the webhook labels its lines `(agent)`).
fn support_agent_id(env: &Env) -> Result<UserId, ConfigError> {
    UserId::parse(
        "SUPPORT_AGENT_ID",
        &env.optional("SUPPORT_AGENT_ID", SupportAgent::DEFAULT_ID),
    )
    .map_err(|e| ConfigError::new("SUPPORT_AGENT_ID", e.reason))
}

/// `STREAM_CHANNEL_TYPE`: the Stream channel type of the support conversations (default `messaging`).
pub fn channel_type(env: &Env) -> Result<ChannelType, ConfigError> {
    ChannelType::parse(&env.optional("STREAM_CHANNEL_TYPE", "messaging"))
        .map_err(|e| ConfigError::new("STREAM_CHANNEL_TYPE", e.reason))
}

/// What the registration Lambda needs.
pub struct RegistrationSettings {
    pub channel_type: ChannelType,
    pub support_agent_id: UserId,
    pub visitor_token_ttl: Duration,
    pub allowed_origins: AllowedOrigins,
    /// `IDENTITY_SECRET` and `REQUIRE_IDENTITY` (see `domain::identity`).
    pub identity: IdentityPolicy,
    /// `REGISTRATION_LIMIT_PER_IP` and `REGISTRATION_LIMIT_PER_EMAIL` (see `throttle`).
    pub limits: RegistrationLimits,
}

/// Shortest `IDENTITY_SECRET` accepted: a short one could be guessed from a token and its e-mail, and then anyone
/// could pass for any customer.
const MIN_IDENTITY_SECRET_CHARS: usize = 32;

/// `IDENTITY_SECRET` (or `IDENTITY_SECRET_SECRET_ARN`), optional, and `REQUIRE_IDENTITY` (default `false`), which
/// needs it.
pub async fn identity_policy(
    env: &Env,
    secrets: &dyn SecretSource,
) -> Result<IdentityPolicy, ConfigError> {
    use secrecy::ExposeSecret;
    let secret = env.optional_secret("IDENTITY_SECRET", secrets).await?;
    if secret
        .as_ref()
        .is_some_and(|s| s.expose_secret().chars().count() < MIN_IDENTITY_SECRET_CHARS)
    {
        return Err(ConfigError::new(
            "IDENTITY_SECRET",
            format!(
                "must be at least {MIN_IDENTITY_SECRET_CHARS} characters (e.g. the output of openssl rand -hex 32)"
            ),
        ));
    }
    let required = env.flag("REQUIRE_IDENTITY", false)?;
    if required && secret.is_none() {
        return Err(ConfigError::new(
            "REQUIRE_IDENTITY",
            "is true, but IDENTITY_SECRET (or IDENTITY_SECRET_SECRET_ARN) is not set: no registration could be verified",
        ));
    }
    Ok(IdentityPolicy::new(
        secret.map(IdentityVerifier::new),
        required,
    ))
}

fn limit(
    env: &Env,
    name: &str,
    default: &str,
) -> Result<Option<crate::budget::RateLimit>, ConfigError> {
    parse_limit(&env.optional(name, default)).map_err(|problem| ConfigError::new(name, problem))
}

impl RegistrationSettings {
    pub async fn load(env: &Env, secrets: &dyn SecretSource) -> Result<Self, ConfigError> {
        Ok(Self {
            channel_type: channel_type(env)?,
            support_agent_id: support_agent_id(env)?,
            visitor_token_ttl: env.seconds(
                "VISITOR_TOKEN_TTL_SECONDS",
                86_400,
                60..=30 * 86_400,
            )?,
            allowed_origins: AllowedOrigins::parse(&env.optional("ALLOWED_ORIGINS", ""))?,
            identity: identity_policy(env, secrets).await?,
            limits: RegistrationLimits {
                per_ip: limit(
                    env,
                    "REGISTRATION_LIMIT_PER_IP",
                    RegistrationLimits::DEFAULT_PER_IP,
                )?,
                per_email: limit(
                    env,
                    "REGISTRATION_LIMIT_PER_EMAIL",
                    RegistrationLimits::DEFAULT_PER_EMAIL,
                )?,
            },
        })
    }
}

/// What the agent-session function needs (see `handlers::agent_sessions`).
pub struct AgentSessionSettings {
    /// `AGENT_OIDC_ISSUER`: the identity provider's issuer URL, exactly as its tokens' `iss` has it.
    pub oidc_issuer: String,
    /// `AGENT_OIDC_AUDIENCE`: the console's OAuth client id at that provider.
    pub oidc_audience: String,
    pub channel_type: ChannelType,
    /// `AGENT_SESSION_TTL_SECONDS` (default and most 3600): the Stream token's lifetime; the console renews it.
    pub session_ttl: Duration,
    /// `AGENT_CONSOLE_ORIGINS`: where the console is hosted (CORS), as `ALLOWED_ORIGINS` is for the widget.
    pub console_origins: AllowedOrigins,
    /// `HUBSPOT_PORTAL_ID`, optional: the console links a contact to `app.hubspot.com/contacts/{portal}/...`.
    pub hubspot_portal_id: Option<String>,
}

impl AgentSessionSettings {
    /// The longest Stream session handed to an agent: an hour, renewed while the console is open, so that an
    /// agent removed from the identity provider keeps Stream access for at most this long.
    pub const MAX_SESSION: Duration = Duration::from_secs(3_600);

    pub fn load(env: &Env) -> Result<Self, ConfigError> {
        // Exactly as given: an issuer is compared with `iss` byte for byte, trailing slash included (Auth0's has one).
        let oidc_issuer = env.required("AGENT_OIDC_ISSUER")?.trim().to_owned();
        if !(oidc_issuer.starts_with("https://") || oidc_issuer.starts_with("http://")) {
            return Err(ConfigError::new(
                "AGENT_OIDC_ISSUER",
                "must be the identity provider's issuer URL (https://...)",
            ));
        }
        let oidc_audience = env.required("AGENT_OIDC_AUDIENCE")?;
        let hubspot_portal_id = match env.optional("HUBSPOT_PORTAL_ID", "").trim() {
            "" => None,
            id if id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()) => Some(id.to_owned()),
            _ => {
                return Err(ConfigError::new(
                    "HUBSPOT_PORTAL_ID",
                    "must be the HubSpot account's number (Settings → Account details)",
                ))
            }
        };
        Ok(Self {
            oidc_issuer,
            oidc_audience,
            channel_type: channel_type(env)?,
            session_ttl: env.seconds(
                "AGENT_SESSION_TTL_SECONDS",
                Self::MAX_SESSION.as_secs(),
                60..=Self::MAX_SESSION.as_secs(),
            )?,
            console_origins: AllowedOrigins::parse(&env.optional("AGENT_CONSOLE_ORIGINS", ""))?,
            hubspot_portal_id,
        })
    }
}

/// `MESSAGE_RETENTION_DAYS`: how long a synced, idle contact's messages are kept (see `retention`).
pub fn retention_period(env: &Env) -> Result<crate::retention::RetentionPeriod, ConfigError> {
    use crate::retention::RetentionPeriod;
    env.number(
        "MESSAGE_RETENTION_DAYS",
        RetentionPeriod::DEFAULT_DAYS,
        1..=RetentionPeriod::MAX_DAYS,
    )
    .map(RetentionPeriod::days)
}

/// The Stream user ids whose lines read `(agent)`: `SUPPORT_AGENT_ID` and the comma-separated `AGENT_IDS`. Anyone
/// else who is not the channel's visitor is shown with their Stream role.
pub fn agent_ids(env: &Env) -> Result<Vec<String>, ConfigError> {
    let mut ids = vec![support_agent_id(env)?.as_str().to_owned()];
    ids.extend(
        env.optional("AGENT_IDS", "")
            .split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_owned),
    );
    for id in &ids {
        UserId::parse("AGENT_IDS", id).map_err(|e| {
            ConfigError::new(
                "AGENT_IDS",
                format!("has {id:?}, which is not a Stream user id: {}", e.reason),
            )
        })?;
    }
    ids.dedup();
    Ok(ids)
}

/// What the webhook handler needs besides the flusher.
pub struct WebhookSettings {
    /// `STREAM_API_SECRET`: Stream signs its webhooks with it.
    pub api_secret: SecretString,
    /// See [`agent_ids`].
    pub agents: Vec<String>,
    /// See [`WebhookSettings::mapping_cache`].
    pub mapping_cache: Duration,
}

impl WebhookSettings {
    pub async fn load(env: &Env, secrets: &dyn SecretSource) -> Result<Self, ConfigError> {
        Ok(Self {
            api_secret: env.secret("STREAM_API_SECRET", secrets).await?,
            agents: agent_ids(env)?,
            mapping_cache: Self::mapping_cache(env)?,
        })
    }

    /// `WEBHOOK_MAPPING_CACHE_SECONDS`: how long a warm webhook uses the channel mapping an earlier delivery read,
    /// instead of reading it again (0 reads it every time). The store's gate decides every change made on a copy.
    pub fn mapping_cache(env: &Env) -> Result<Duration, ConfigError> {
        env.seconds("WEBHOOK_MAPPING_CACHE_SECONDS", 300, 0..=3_600)
    }
}

/// What the sweeper needs besides the flusher and Stream (for purges).
pub struct SweeperSettings {
    /// `SWEEPER_BUDGET_SECONDS`: how long one sweep may run.
    pub budget: Duration,
    /// `MESSAGE_RETENTION_DAYS`; `None` runs no retention pass (tests of other things).
    pub retention: Option<crate::retention::RetentionPeriod>,
    /// Whether each sweep publishes the backlog metrics (EMF, named after the table).
    pub metrics: bool,
}

impl SweeperSettings {
    pub fn load(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            budget: env.seconds("SWEEPER_BUDGET_SECONDS", 40, 1..=800)?,
            retention: Some(retention_period(env)?),
            metrics: true,
        })
    }
}

/// What the HubSpot webhooks handler needs besides Stream (for erasures).
pub struct HubSpotWebhooksSettings {
    /// `HUBSPOT_CLIENT_SECRET`: HubSpot signs its webhooks with the app's client secret.
    pub client_secret: SecretString,
    /// `PUBLIC_BASE_URL`: the URL HubSpot calls, when a proxy hides it from the request.
    pub public_base_url: Option<String>,
}

impl HubSpotWebhooksSettings {
    pub async fn load(env: &Env, secrets: &dyn SecretSource) -> Result<Self, ConfigError> {
        Ok(Self {
            client_secret: env.secret("HUBSPOT_CLIENT_SECRET", secrets).await?,
            public_base_url: if env.is_set("PUBLIC_BASE_URL") {
                Some(env.url("PUBLIC_BASE_URL", "")?)
            } else {
                None
            },
        })
    }
}

/// AWS SDK configuration from the environment (`AWS_ENDPOINT_URL_DYNAMODB` points it at DynamoDB Local).
pub async fn aws() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// The longest one DynamoDB request may take before the SDK gives up on it and retries (its own retry policy):
/// our requests take milliseconds, and without a cut-off a stalled connection would hold a flush or a sweep until
/// the Lambda times out. The webhook's ack has its own, shorter budget over all its requests.
const DYNAMODB_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// The store on `TABLE_NAME`, through `aws` with the attempt timeout.
pub fn store(
    env: &Env,
    aws: &aws_config::SdkConfig,
) -> Result<std::sync::Arc<crate::adapters::dynamo::DynamoStore>, ConfigError> {
    let table = env.required("TABLE_NAME")?;
    // Keep the defaults (e.g. the connect timeout) and add the attempt timeout.
    let timeouts = aws
        .timeout_config()
        .map(|t| t.to_builder())
        .unwrap_or_default()
        .operation_attempt_timeout(DYNAMODB_ATTEMPT_TIMEOUT)
        .build();
    let config = aws_sdk_dynamodb::config::Builder::from(aws)
        .timeout_config(timeouts)
        .build();
    Ok(std::sync::Arc::new(
        crate::adapters::dynamo::DynamoStore::new(
            aws_sdk_dynamodb::Client::from_conf(config),
            table,
        ),
    ))
}

/// How the transcript flusher spends its time (see `sync`).
#[derive(Debug, Clone, Copy)]
pub struct FlushSettings {
    /// A webhook's flush (which runs after its response) starts no new HubSpot write after this long; what is left
    /// goes to the next webhook or the sweeper. A started write may run `write_timeout` more: the webhook Lambda's
    /// timeout covers both.
    pub webhook_budget: Duration,
    /// How long a webhook's flush first waits for more messages before rendering (group commit); doubled on each
    /// further round while changes keep coming. After the response, so it delays the CRM, never Stream's ack.
    pub linger: Duration,
    /// How long a conversation's note waits after a new message before it is rewritten (`FLUSH_NOTE_WAIT_MS`),
    /// from the oldest message not in it, and again from the last while the conversation talks (`note_max_wait`):
    /// the property shows each message within a round, and the notes take every message of the wait in one write
    /// instead of one a round. An edit, a deletion or an erasure does not wait. Zero: notes are written with the
    /// property.
    pub note_wait: Duration,
    /// How long a conversation that keeps talking may hold its note back (`FLUSH_NOTE_MAX_WAIT_MS`): a note whose
    /// wait is over while its contact's last change is younger than `note_wait` waits again, from that change
    /// (the note goes out once the conversation pauses), until its oldest change not in it is this old. Not more
    /// than `note_wait`: the wait counts from the oldest change alone, never again.
    pub note_max_wait: Duration,
    /// Lease length; renewed before every HubSpot write.
    pub lease_ttl: Duration,
    /// Longest single HubSpot write.
    pub write_timeout: Duration,
    /// How long after an ambiguous answer (timeout, 5xx) a write may still land at HubSpot: no newer write starts
    /// before then (see `sync`, fencing).
    pub late_write_window: Duration,
    /// Where transcripts go (`TRANSCRIPT_TARGETS`).
    pub targets: Targets,
}

/// Where transcripts are written: one timeline note per conversation, the `chat_transcript` contact property, or
/// both (`TRANSCRIPT_TARGETS` = `notes`, `property` or `notes,property`; default both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Targets {
    pub notes: bool,
    pub property: bool,
}

impl Targets {
    pub const BOTH: Targets = Targets {
        notes: true,
        property: true,
    };

    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let mut targets = Targets {
            notes: false,
            property: false,
        };
        for target in raw.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match target {
                "notes" => targets.notes = true,
                "property" => targets.property = true,
                "both" => targets = Targets::BOTH,
                other => {
                    return Err(ConfigError::new(
                        "TRANSCRIPT_TARGETS",
                        format!("has {other:?}; use notes, property or both"),
                    ))
                }
            }
        }
        if !(targets.notes || targets.property) {
            return Err(ConfigError::new(
                "TRANSCRIPT_TARGETS",
                "names no target; use notes, property or both",
            ));
        }
        Ok(targets)
    }
}

impl FlushSettings {
    pub fn load(env: &Env) -> Result<Self, ConfigError> {
        let settings = Self {
            webhook_budget: env.millis("WEBHOOK_FLUSH_BUDGET_MS", 5_000, 0..=20_000)?,
            linger: env.millis("FLUSH_LINGER_MS", 1_600, 0..=5_000)?,
            note_wait: env.millis("FLUSH_NOTE_WAIT_MS", 20_000, 0..=300_000)?,
            note_max_wait: env.millis("FLUSH_NOTE_MAX_WAIT_MS", 120_000, 0..=3_600_000)?,
            lease_ttl: env.seconds("LEASE_TTL_SECONDS", 15, 5..=300)?,
            write_timeout: env.millis("HUBSPOT_WRITE_TIMEOUT_MS", 2_000, 100..=2_500)?,
            late_write_window: env.seconds("HUBSPOT_LATE_WRITE_SECONDS", 10, 1..=120)?,
            targets: Targets::parse(&env.optional("TRANSCRIPT_TARGETS", "both"))?,
        };
        settings.check()?;
        Ok(settings)
    }

    /// A write is sent only while its lease outlives it and the late-write window (plus a second of clock skew),
    /// and the lease is renewed right before a write if need be: so the lease must be longer than that.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.write_timeout + self.late_write_window + Duration::from_secs(1) >= self.lease_ttl {
            return Err(ConfigError::new(
                "LEASE_TTL_SECONDS",
                "must be more than HUBSPOT_WRITE_TIMEOUT_MS + HUBSPOT_LATE_WRITE_SECONDS + 1 s, so a lease outlives \
                 any write that may still land",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    struct NoSecrets;

    #[async_trait::async_trait]
    impl SecretSource for NoSecrets {
        async fn secret_string(&self, arn: &str) -> Result<String, String> {
            if arn == "arn:good" {
                Ok("from-secrets-manager\n".into())
            } else {
                Err("could not be read".into())
            }
        }
    }

    #[tokio::test]
    async fn secrets_come_from_env_or_secret_arn() {
        let env = Env::from_pairs([("HUBSPOT_ACCESS_TOKEN", "pat-1")]);
        assert_eq!(
            env.secret("HUBSPOT_ACCESS_TOKEN", &NoSecrets)
                .await
                .expect("set")
                .expose_secret(),
            "pat-1"
        );
        let env = Env::from_pairs([("HUBSPOT_ACCESS_TOKEN_SECRET_ARN", "arn:good")]);
        assert_eq!(
            env.secret("HUBSPOT_ACCESS_TOKEN", &NoSecrets)
                .await
                .expect("resolved")
                .expose_secret(),
            "from-secrets-manager"
        );
        let env = Env::from_pairs([("HUBSPOT_ACCESS_TOKEN_SECRET_ARN", "arn:bad")]);
        let err = env
            .secret("HUBSPOT_ACCESS_TOKEN", &NoSecrets)
            .await
            .expect_err("unreadable");
        assert_eq!(err.variable, "HUBSPOT_ACCESS_TOKEN_SECRET_ARN");
        let err = Env::default()
            .secret("STREAM_API_SECRET", &NoSecrets)
            .await
            .expect_err("missing");
        assert!(
            err.to_string().contains("STREAM_API_SECRET is not set"),
            "{err}"
        );
        // A secret's Debug form never shows it.
        let secret = Env::from_pairs([("STREAM_API_SECRET", "s3cr3t-value")])
            .secret("STREAM_API_SECRET", &NoSecrets)
            .await
            .expect("set");
        assert!(!format!("{secret:?}").contains("s3cr3t"));
    }

    #[tokio::test]
    async fn identity_settings_are_checked_at_cold_start() {
        let long = "k".repeat(MIN_IDENTITY_SECRET_CHARS);
        let policy = identity_policy(&Env::default(), &NoSecrets)
            .await
            .expect("optional");
        assert!(!policy.requires_verification());
        let err = identity_policy(&Env::from_pairs([("REQUIRE_IDENTITY", "true")]), &NoSecrets)
            .await
            .err()
            .expect("required without a secret");
        assert_eq!(err.variable, "REQUIRE_IDENTITY");
        let err = identity_policy(&Env::from_pairs([("IDENTITY_SECRET", "short")]), &NoSecrets)
            .await
            .err()
            .expect("too short");
        assert_eq!(err.variable, "IDENTITY_SECRET");
        assert!(!err.to_string().contains("short\""), "{err}");
        let err = identity_policy(
            &Env::from_pairs([
                ("IDENTITY_SECRET", long.as_str()),
                ("REQUIRE_IDENTITY", "yes"),
            ]),
            &NoSecrets,
        )
        .await
        .err()
        .expect("not a boolean");
        assert_eq!(err.variable, "REQUIRE_IDENTITY");
        let policy = identity_policy(
            &Env::from_pairs([
                ("IDENTITY_SECRET", long.as_str()),
                ("REQUIRE_IDENTITY", "TRUE"),
            ]),
            &NoSecrets,
        )
        .await
        .expect("valid");
        assert!(policy.requires_verification());
        let err = identity_policy(
            &Env::from_pairs([("IDENTITY_SECRET_SECRET_ARN", "arn:bad")]),
            &NoSecrets,
        )
        .await
        .err()
        .expect("unreadable");
        assert_eq!(err.variable, "IDENTITY_SECRET_SECRET_ARN");
    }

    #[tokio::test]
    async fn malformed_values_name_the_variable() {
        let env = Env::from_pairs([("VISITOR_TOKEN_TTL_SECONDS", "soon")]);
        let err = RegistrationSettings::load(&env, &NoSecrets)
            .await
            .err()
            .expect("invalid");
        assert_eq!(err.variable, "VISITOR_TOKEN_TTL_SECONDS");
        let env = Env::from_pairs([("HUBSPOT_BASE_URL", "api.hubapi.com")]);
        assert_eq!(
            env.url("HUBSPOT_BASE_URL", "https://x")
                .expect_err("no scheme")
                .variable,
            "HUBSPOT_BASE_URL"
        );
        for variable in ["REGISTRATION_LIMIT_PER_IP", "REGISTRATION_LIMIT_PER_EMAIL"] {
            let env = Env::from_pairs([(variable, "lots")]);
            let err = RegistrationSettings::load(&env, &NoSecrets)
                .await
                .err()
                .expect("invalid");
            assert_eq!(err.variable, variable);
        }
        let env = Env::from_pairs([("REGISTRATION_LIMIT_PER_IP", "0")]);
        let settings = RegistrationSettings::load(&env, &NoSecrets)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.limits.per_ip, None, "0 turns it off");
        assert!(settings.limits.per_email.is_some(), "on by default");
        let env = Env::from_pairs([("SUPPORT_AGENT_ID", "Support Agent")]);
        assert_eq!(
            RegistrationSettings::load(&env, &NoSecrets)
                .await
                .err()
                .expect("invalid")
                .variable,
            "SUPPORT_AGENT_ID"
        );
    }

    #[test]
    fn retention_is_thirty_days_unless_set_and_never_off() {
        let days = |raw: Option<&str>| {
            let env = Env::from_pairs(raw.map(|raw| ("MESSAGE_RETENTION_DAYS", raw)));
            retention_period(&env).map(|p| p.duration().as_secs() / 86_400)
        };
        assert_eq!(days(None).expect("default"), 30);
        assert_eq!(days(Some("7")).expect("set"), 7);
        for bad in ["0", "3651", "-1", "a month"] {
            assert_eq!(
                days(Some(bad)).expect_err(bad).variable,
                "MESSAGE_RETENTION_DAYS"
            );
        }
    }

    #[test]
    fn origins_star_only_when_alone() {
        assert_eq!(AllowedOrigins::parse("*").expect("ok"), AllowedOrigins::Any);
        assert!(AllowedOrigins::parse("https://a.example, *").is_err());
        assert!(AllowedOrigins::parse("a.example").is_err());
        let list = AllowedOrigins::parse("https://a.example/, https://b.example").expect("ok");
        assert_eq!(
            list.allow("https://a.example").as_deref(),
            Some("https://a.example")
        );
        assert_eq!(list.allow("https://evil.example"), None);
        assert_eq!(
            AllowedOrigins::parse("")
                .expect("empty")
                .allow("https://a.example"),
            None
        );
    }
}
