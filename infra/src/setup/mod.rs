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
//!
//! By concept: `args` reads the command line, `outcome` says what each step did or why it failed, and `hubspot`,
//! `webhook`, `access` and `table` hold the steps.

mod access;
mod args;
mod hubspot;
mod outcome;
mod table;
mod webhook;

pub use args::{parse_args, Command, Options, USAGE};
pub use outcome::{HookMode, Outcome, SetupError};
pub use webhook::{plan_webhook, WebhookPlan};

use chat_sync::adapters::hubspot::HubSpotClient;
use chat_sync::adapters::stream::StreamClient;
use chat_sync::config::{
    Env, HubSpotSettings, SecretSource, SecretsManager, StreamSettings, SupportAgent,
};
use chat_sync::domain::ChannelType;
use std::time::Duration;

/// DynamoDB Local's default address (its jar listens on port 8000 unless told otherwise).
pub const DEFAULT_DYNAMODB_ENDPOINT: &str = "http://127.0.0.1:8000";

/// The events the webhook handler acts on; the hook must deliver all of them.
pub use chat_sync::handlers::webhook::EVENT_TYPES as WEBHOOK_EVENT_TYPES;

/// How long one step may take, retries included.
const STEP_BUDGET: Duration = Duration::from_secs(30);

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
        let http = chat_sync::adapters::http::client()?;
        let hubspot = if options.hubspot {
            let settings = HubSpotSettings::load(env, secrets).await?;
            Some(HubSpotStep {
                // A command run by hand makes a handful of requests and may run before any table exists: it keeps
                // its own budget on the same plan.
                client: HubSpotClient::new(
                    http.clone(),
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
                Some(StreamStep {
                    client: chat_sync::app::stream_client(http.clone(), &settings)?,
                    base_url: settings.base_url,
                    webhook_url: url.clone(),
                })
            }
            None => None,
        };
        let access = if options.stream_access {
            let settings = StreamSettings::load(env, secrets).await?;
            Some(AccessStep {
                client: chat_sync::app::stream_client(http.clone(), &settings)?,
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
