//! Builds the handlers from configuration: what each Lambda's `main.rs` calls at cold start.

use crate::adapters::dynamo::DynamoStore;
use crate::adapters::hubspot::HubSpotClient;
use crate::adapters::oidc::OidcVerifier;
use crate::adapters::stream::StreamClient;
use crate::budget::BudgetPlan;
use crate::config::{
    AgentSessionSettings, ConfigError, Env, FlushSettings, HubSpotSettings, RegistrationSettings,
    SecretsManager, StreamSettings,
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
use std::time::Duration;

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

fn store(env: &Env, aws: &aws_config::SdkConfig) -> Result<Arc<DynamoStore>, ConfigError> {
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
    Ok(Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(config),
        table,
    )))
}

/// The Stream client for `settings` (a secret Stream's signer refuses is a configuration error).
pub fn stream_client(settings: &StreamSettings) -> Result<StreamClient, ConfigError> {
    StreamClient::new(
        &settings.base_url,
        &settings.api_key,
        settings.api_secret.clone(),
    )
    .map_err(|e| ConfigError {
        variable: "STREAM_API_SECRET".into(),
        problem: e.to_string(),
    })
}

/// The HubSpot client and the rate budget it shares with every other function, kept in the table.
pub fn hubspot(
    store: &DynamoStore,
    settings: &HubSpotSettings,
) -> (Arc<HubSpotClient>, Arc<dyn RateBudget>) {
    let budget: Arc<dyn RateBudget> = Arc::new(store.budget(BudgetPlan::new(settings.rate_limit)));
    let client = HubSpotClient::new(
        &settings.base_url,
        settings.access_token.clone(),
        budget.clone(),
    );
    (Arc::new(client), budget)
}

fn transcript_sync(
    env: &Env,
    store: Arc<DynamoStore>,
    settings: HubSpotSettings,
) -> Result<TranscriptSync, ConfigError> {
    let (crm, budget) = hubspot(&store, &settings);
    Ok(TranscriptSync::new(
        store,
        crm,
        budget,
        FlushSettings::load(env)?,
    ))
}

pub async fn registration(
    env: &Env,
    aws: &aws_config::SdkConfig,
) -> Result<Registration, ConfigError> {
    let secrets = SecretsManager::new(aws);
    let settings = RegistrationSettings::load(env, &secrets).await?;
    let hubspot = HubSpotSettings::load(env, &secrets).await?;
    let stream = StreamSettings::load(env, &secrets).await?;
    let store = store(env, aws)?;
    let chat = stream_client(&stream)?;
    let tokens = chat.tokens();
    let (crm, _) = self::hubspot(&store, &hubspot);
    let throttle = Arc::new(store.throttle(&stream.api_secret));
    Ok(Registration::new(
        crm,
        Arc::new(chat),
        store,
        throttle,
        tokens,
        settings,
    ))
}

/// The agent-session function: the identity provider's verifier, and Stream to write the agent and sign its token.
pub async fn agent_sessions(
    env: &Env,
    aws: &aws_config::SdkConfig,
) -> Result<AgentSessions, ConfigError> {
    let settings = AgentSessionSettings::load(env)?;
    let stream = StreamSettings::load(env, &SecretsManager::new(aws)).await?;
    let chat = stream_client(&stream)?;
    let tokens = chat.tokens();
    let verifier = OidcVerifier::new(&settings.oidc_issuer, &settings.oidc_audience);
    Ok(AgentSessions::new(
        verifier,
        Arc::new(chat),
        tokens,
        settings,
    ))
}

pub async fn webhook(env: &Env, aws: &aws_config::SdkConfig) -> Result<Webhook, ConfigError> {
    let secrets = SecretsManager::new(aws);
    let hubspot = HubSpotSettings::load(env, &secrets).await?;
    let api_secret = env.secret("STREAM_API_SECRET", &secrets).await?;
    let store = store(env, aws)?;
    let agents = crate::config::agent_ids(env)?;
    let sync = transcript_sync(env, store.clone(), hubspot)?;
    Ok(Webhook::new(store, sync, api_secret).with_agents(agents))
}

pub async fn sweeper(env: &Env, aws: &aws_config::SdkConfig) -> Result<Sweeper, ConfigError> {
    let secrets = SecretsManager::new(aws);
    let hubspot = HubSpotSettings::load(env, &secrets).await?;
    let store = store(env, aws)?;
    let sync = transcript_sync(env, store.clone(), hubspot)?;
    let budget = env.seconds("SWEEPER_BUDGET_SECONDS", 40, 1..=800)?;
    let table = env.required("TABLE_NAME")?;
    let retention = Retention::new(store.clone(), crate::config::retention_period(env)?);
    let stream = StreamSettings::load(env, &secrets).await?;
    let purge = Erasure::new(store.clone(), Arc::new(stream_client(&stream)?));
    Ok(Sweeper::new(store, sync, budget)
        .with_metrics(&table)
        .with_retention(retention)
        .with_purge(purge))
}

pub async fn hubspot_webhooks(
    env: &Env,
    aws: &aws_config::SdkConfig,
) -> Result<HubSpotWebhooks, ConfigError> {
    let secrets = SecretsManager::new(aws);
    let client_secret = env.secret("HUBSPOT_CLIENT_SECRET", &secrets).await?;
    let public_base_url = if env.is_set("PUBLIC_BASE_URL") {
        Some(env.url("PUBLIC_BASE_URL", "")?)
    } else {
        None
    };
    Ok(
        HubSpotWebhooks::new(erasure(env, aws).await?, client_secret)
            .with_public_base_url(public_base_url),
    )
}

/// Erasure here and in Stream: the HubSpot webhooks Lambda and the operators' `erase` command.
pub async fn erasure(env: &Env, aws: &aws_config::SdkConfig) -> Result<Erasure, ConfigError> {
    let stream = StreamSettings::load(env, &SecretsManager::new(aws)).await?;
    Ok(Erasure::new(
        store(env, aws)?,
        Arc::new(stream_client(&stream)?),
    ))
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
