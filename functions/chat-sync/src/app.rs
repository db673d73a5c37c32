//! The one assembly of the app: [`App::build`] turns [`Parts`] into the handlers and the flusher. Every Lambda's
//! `main.rs`, `make dev`, the tests and the benchmarks call it; only where the parts come from differs: from
//! configuration ([`Parts::from_env`], which reads it through `config` alone) or from the sandboxes.
//!
//! Invariant: a handler is built exactly when its parts are there, and from nothing else, so each Lambda gets (and
//! each function's role lets it read) only the settings and secrets its own handler needs. Adding a handler is a
//! variant of [`Handler`], its settings in [`Parts`] (loaded by [`Parts::from_env`]), and its block in
//! [`App::build`] with its accessor.

use crate::adapters::dynamo::DynamoStore;
use crate::adapters::http::client;
use crate::adapters::hubspot::HubSpotClient;
use crate::adapters::oidc::OidcVerifier;
use crate::adapters::stream::StreamClient;
use crate::budget::BudgetPlan;
use crate::config::{
    self, AgentSessionSettings, ConfigError, Env, FlushSettings, HubSpotSettings,
    HubSpotWebhooksSettings, RegistrationSettings, SecretsManager, StreamSettings, SweeperSettings,
    WebhookSettings,
};
use crate::erasure::Erasure;
use crate::handlers::agent_sessions::AgentSessions;
use crate::handlers::hubspot_webhooks::HubSpotWebhooks;
use crate::handlers::registration::Registration;
use crate::handlers::sweeper::Sweeper;
use crate::handlers::webhook::Webhook;
use crate::ports::RateBudget;
use crate::retention::Retention;
use crate::sync::TranscriptSync;
use std::sync::Arc;

/// The handlers a process serves: each Lambda one, `make dev` and the tests all of them; the operators' `erase`
/// command erasure alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    Registration,
    Webhook,
    Sweeper,
    HubSpotWebhooks,
    /// Erasure here and in Stream ([`App::erasure`]), without a webhook.
    Erasure,
    /// Agents' Stream sessions from their identity provider's ID tokens.
    AgentSessions,
}

impl Handler {
    pub const ALL: [Handler; 6] = [
        Handler::Registration,
        Handler::Webhook,
        Handler::Sweeper,
        Handler::HubSpotWebhooks,
        Handler::Erasure,
        Handler::AgentSessions,
    ];
}

/// What the app is built from. `None` leaves out what needs it: the HubSpot webhooks Lambda has no HubSpot token,
/// the webhook Lambda no Stream API key.
pub struct Parts {
    /// The DynamoDB table (and the client reaching it).
    pub store: Arc<DynamoStore>,
    /// HubSpot's base URL, token and the app's rate limit.
    pub hubspot: Option<HubSpotSettings>,
    /// Stream's base URL, API key and secret.
    pub stream: Option<StreamSettings>,
    /// How the flusher spends its time (the webhook's flush and the sweeper's).
    pub flush: Option<FlushSettings>,
    pub registration: Option<RegistrationSettings>,
    pub webhook: Option<WebhookSettings>,
    pub sweeper: Option<SweeperSettings>,
    pub hubspot_webhooks: Option<HubSpotWebhooksSettings>,
    pub agent_sessions: Option<AgentSessionSettings>,
}

impl Parts {
    /// The parts `handlers` need, from configuration, and nothing else: a Lambda reads only its own settings and
    /// secrets (the template gives each function exactly those).
    pub async fn from_env(
        env: &Env,
        aws: &aws_config::SdkConfig,
        handlers: &[Handler],
    ) -> Result<Self, ConfigError> {
        let wants = |handler: Handler| handlers.contains(&handler);
        let secrets = SecretsManager::new(aws);
        let needs_hubspot =
            wants(Handler::Registration) || wants(Handler::Webhook) || wants(Handler::Sweeper);
        let needs_stream = wants(Handler::Registration)
            || wants(Handler::AgentSessions)
            || wants(Handler::Sweeper)
            || wants(Handler::HubSpotWebhooks)
            || wants(Handler::Erasure);
        let needs_flush = wants(Handler::Webhook) || wants(Handler::Sweeper);
        // The handler's own settings first, the table last: a cold start names the first problem in that order.
        Ok(Self {
            hubspot: match needs_hubspot {
                true => Some(HubSpotSettings::load(env, &secrets).await?),
                false => None,
            },
            stream: match needs_stream {
                true => Some(StreamSettings::load(env, &secrets).await?),
                false => None,
            },
            flush: match needs_flush {
                true => Some(FlushSettings::load(env)?),
                false => None,
            },
            registration: match wants(Handler::Registration) {
                true => Some(RegistrationSettings::load(env, &secrets).await?),
                false => None,
            },
            webhook: match wants(Handler::Webhook) {
                true => Some(WebhookSettings::load(env, &secrets).await?),
                false => None,
            },
            sweeper: match wants(Handler::Sweeper) {
                true => Some(SweeperSettings::load(env)?),
                false => None,
            },
            hubspot_webhooks: match wants(Handler::HubSpotWebhooks) {
                true => Some(HubSpotWebhooksSettings::load(env, &secrets).await?),
                false => None,
            },
            agent_sessions: match wants(Handler::AgentSessions) {
                true => Some(AgentSessionSettings::load(env)?),
                false => None,
            },
            store: config::store(env, aws)?,
        })
    }
}

/// The app: the handlers whose parts were given, and the clients they share.
pub struct App {
    pub store: Arc<DynamoStore>,
    /// The HubSpot rate budget every function shares, kept in the table.
    pub budget: Option<Arc<dyn RateBudget>>,
    pub crm: Option<Arc<HubSpotClient>>,
    pub chat: Option<Arc<StreamClient>>,
    /// The flusher: renders and writes transcripts to HubSpot.
    pub sync: Option<TranscriptSync>,
    pub registration: Option<Arc<Registration>>,
    pub webhook: Option<Arc<Webhook>>,
    pub sweeper: Option<Arc<Sweeper>>,
    pub hubspot_webhooks: Option<Arc<HubSpotWebhooks>>,
    pub agent_sessions: Option<Arc<AgentSessions>>,
}

/// A handler asked for whose parts are missing: a wiring mistake of the caller, named like a configuration error.
fn missing(handler: &str, part: &str) -> ConfigError {
    ConfigError {
        variable: part.to_owned(),
        problem: format!("is needed by the {handler} handler but was not given"),
    }
}

/// The Stream client for `settings` on the shared `http` client (a secret Stream's signer refuses is a
/// configuration error).
pub fn stream_client(
    http: reqwest::Client,
    settings: &StreamSettings,
) -> Result<StreamClient, ConfigError> {
    StreamClient::new(
        http,
        &settings.base_url,
        &settings.api_key,
        settings.api_secret.clone(),
    )
    .map_err(|e| ConfigError {
        variable: "STREAM_API_SECRET".into(),
        problem: e.to_string(),
    })
}

impl App {
    /// Builds every handler whose parts are in `parts`.
    pub fn build(parts: Parts) -> Result<Self, ConfigError> {
        let store = parts.store;
        let http = client()?;
        let hubspot = parts.hubspot.map(|settings| {
            let budget: Arc<dyn RateBudget> =
                Arc::new(store.budget(BudgetPlan::new(settings.rate_limit)));
            let crm = Arc::new(HubSpotClient::new(
                http.clone(),
                &settings.base_url,
                settings.access_token.clone(),
                budget.clone(),
            ));
            (crm, budget)
        });
        let chat = match &parts.stream {
            Some(settings) => Some(Arc::new(stream_client(http.clone(), settings)?)),
            None => None,
        };
        let sync = match (&hubspot, parts.flush) {
            (Some((crm, budget)), Some(flush)) => {
                flush.check()?;
                Some(TranscriptSync::new(
                    store.clone(),
                    crm.clone(),
                    budget.clone(),
                    flush,
                ))
            }
            _ => None,
        };
        let registration = match parts.registration {
            Some(settings) => {
                let (crm, _) = hubspot
                    .as_ref()
                    .ok_or_else(|| missing("registration", "HUBSPOT_ACCESS_TOKEN"))?;
                let (chat, stream) = chat
                    .as_ref()
                    .zip(parts.stream.as_ref())
                    .ok_or_else(|| missing("registration", "STREAM_API_KEY"))?;
                Some(Arc::new(Registration::new(
                    crm.clone(),
                    chat.clone(),
                    store.clone(),
                    Arc::new(store.throttle(&stream.api_secret)),
                    chat.tokens(),
                    settings,
                )))
            }
            None => None,
        };
        let webhook = match parts.webhook {
            Some(settings) => {
                let sync = sync
                    .clone()
                    .ok_or_else(|| missing("webhook", "HUBSPOT_ACCESS_TOKEN"))?;
                Some(Arc::new(
                    Webhook::new(
                        store.clone(),
                        sync,
                        settings.api_secret,
                        settings.mapping_cache,
                    )
                    .with_agents(settings.agents),
                ))
            }
            None => None,
        };
        let sweeper = match parts.sweeper {
            Some(settings) => {
                let sync = sync
                    .clone()
                    .ok_or_else(|| missing("sweeper", "HUBSPOT_ACCESS_TOKEN"))?;
                let chat = chat
                    .clone()
                    .ok_or_else(|| missing("sweeper", "STREAM_API_KEY"))?;
                let mut sweeper = Sweeper::new(store.clone(), sync, settings.budget)
                    .with_purge(Erasure::new(store.clone(), chat));
                if let Some(period) = settings.retention {
                    sweeper = sweeper.with_retention(Retention::new(store.clone(), period));
                }
                if settings.metrics {
                    sweeper = sweeper.with_metrics(store.table());
                }
                Some(Arc::new(sweeper))
            }
            None => None,
        };
        let hubspot_webhooks = match parts.hubspot_webhooks {
            Some(settings) => {
                let chat = chat
                    .clone()
                    .ok_or_else(|| missing("HubSpot webhooks", "STREAM_API_KEY"))?;
                Some(Arc::new(
                    HubSpotWebhooks::new(Erasure::new(store.clone(), chat), settings.client_secret)
                        .with_public_base_url(settings.public_base_url),
                ))
            }
            None => None,
        };
        let agent_sessions = match parts.agent_sessions {
            Some(settings) => {
                let chat = chat
                    .clone()
                    .ok_or_else(|| missing("agent sessions", "STREAM_API_KEY"))?;
                let verifier =
                    OidcVerifier::new(http.clone(), &settings.oidc_issuer, &settings.oidc_audience);
                let tokens = chat.tokens();
                Some(Arc::new(AgentSessions::new(
                    verifier, chat, tokens, settings,
                )))
            }
            None => None,
        };
        let (crm, budget) = hubspot.unzip();
        Ok(Self {
            store,
            budget,
            crm,
            chat,
            sync,
            registration,
            webhook,
            sweeper,
            hubspot_webhooks,
            agent_sessions,
        })
    }

    /// The app of one Lambda (or of the dev server, with [`Handler::ALL`]), from configuration.
    pub async fn from_env(
        env: &crate::config::Env,
        aws: &aws_config::SdkConfig,
        handlers: &[Handler],
    ) -> Result<Self, ConfigError> {
        Self::build(Parts::from_env(env, aws, handlers).await?)
    }

    pub fn registration(&self) -> Result<Arc<Registration>, ConfigError> {
        self.registration
            .clone()
            .ok_or_else(|| missing("registration", "RegistrationSettings"))
    }

    pub fn webhook(&self) -> Result<Arc<Webhook>, ConfigError> {
        self.webhook
            .clone()
            .ok_or_else(|| missing("webhook", "WebhookSettings"))
    }

    pub fn sweeper(&self) -> Result<Arc<Sweeper>, ConfigError> {
        self.sweeper
            .clone()
            .ok_or_else(|| missing("sweeper", "SweeperSettings"))
    }

    /// Erasure here and in Stream (what the HubSpot webhooks and the sweeper's purge run, and the `erase` command).
    pub fn erasure(&self) -> Result<Erasure, ConfigError> {
        let chat = self
            .chat
            .clone()
            .ok_or_else(|| missing("erasure", "STREAM_API_KEY"))?;
        Ok(Erasure::new(self.store.clone(), chat))
    }

    pub fn agent_sessions(&self) -> Result<Arc<AgentSessions>, ConfigError> {
        self.agent_sessions
            .clone()
            .ok_or_else(|| missing("agent sessions", "AgentSessionSettings"))
    }

    pub fn hubspot_webhooks(&self) -> Result<Arc<HubSpotWebhooks>, ConfigError> {
        self.hubspot_webhooks
            .clone()
            .ok_or_else(|| missing("HubSpot webhooks", "HubSpotWebhooksSettings"))
    }
}

/// A DynamoDB client for DynamoDB Local at `endpoint` (dev server, tests, benchmarks): fixed dummy credentials and
/// region, because DynamoDB Local keeps one database per access key and region.
pub async fn local_dynamodb(endpoint: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&local_aws(endpoint).await)
}

/// AWS configuration for local runs: every AWS call goes to DynamoDB Local at `endpoint`.
pub async fn local_aws(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "dynamodb-local",
        ))
        .endpoint_url(endpoint)
        .load()
        .await
}
