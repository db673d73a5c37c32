//! `make invoke-env`: what the Lambda binaries need to give the documented answers to the sample events in `events/`
//! when run locally under `cargo lambda watch` (or the Runtime API emulator the tests use).
//!
//! DynamoDB Local on a known port with the table, the HubSpot and Stream sandboxes (Stream with the secret the
//! events are signed with), and the channel the sample message events belong to, registered to a contact of the
//! sandbox HubSpot, so `message.*` events answer `recorded` rather than `ignored`. The variables pointing the
//! binaries at all this are written to `events/local.env` for `cargo lambda watch --env-file`.
//!
//! Under `sam local` the functions run in containers with the template's own environment, as deployed: they read
//! their secrets by ARN (`*_SECRET_ARN`), so a local Secrets Manager serves the same test secrets under the ARNs of
//! [`SECRET_ARNS`], and everything listens on an address the containers reach ([`InvokeEnv::start_on`]).

use chat_sync::adapters::dynamo::DynamoStore;
use chat_sync::adapters::hubspot::TRANSCRIPT_PROPERTY;
use chat_sync::adapters::stream::StreamClient;
use chat_sync::config::{Env, SupportAgent};
use chat_sync::domain::{ChannelRef, ContactId, Email, Identity, Timestamp, UserId};
use chat_sync::ports::{ChannelMapping, Channels, StoreError};
use sandbox::{DynamoDbLocal, HubSpotDouble, SecretsManagerDouble, StreamDouble};
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// The HubSpot app's client secret the `hubspot-webhook-*.json` events are signed with: public, for local use only.
pub use sandbox::fixtures::HUBSPOT_CLIENT_SECRET as EVENTS_HUBSPOT_CLIENT_SECRET;
/// The Stream key the events carry in `x-api-key`.
pub use sandbox::fixtures::STREAM_KEY as EVENTS_STREAM_KEY;
/// The secret the webhook events in `events/` are signed with (`sign-events`): public, for local use only.
pub use sandbox::fixtures::STREAM_SECRET as EVENTS_STREAM_SECRET;
/// The origin of `registration-preflight.json` and `agent-sessions-no-token.json` (the agent console's, locally).
pub const EVENTS_ORIGIN: &str = "http://localhost:3000";
/// The agent console's identity provider, locally: none answers there (`.invalid` never resolves). The sample event
/// carries no ID token, so the function refuses it before it would ask the provider for its keys.
pub const EVENTS_AGENT_ISSUER: &str = "https://identity-provider.invalid/local";
/// The agent console's client id at that provider.
pub const EVENTS_AGENT_AUDIENCE: &str = "local-agent-console";
pub const TABLE: &str = "chat-sync-local";
use sandbox::fixtures::SANDBOX_HUBSPOT_TOKEN as HUBSPOT_TOKEN;
/// Where the local Secrets Manager keeps each secret, by the template parameter that names it: `samconfig.toml`'s
/// `local` environment gives the template these ARNs.
pub const SECRET_ARNS: [(&str, &str); 3] = [
    (
        "HubSpotTokenSecretArn",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:chat-sync-local/hubspot-token",
    ),
    (
        "StreamSecretArn",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:chat-sync-local/stream-secret",
    ),
    (
        "HubSpotClientSecretArn",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:chat-sync-local/hubspot-client-secret",
    ),
];

/// The e-mail of the sample conversation's contact (the events carry only the visitor's Stream id and name).
pub const SAMPLE_EMAIL: &str = "ada.lovelace@example.com";

/// Where each service listens; 0 picks a free port (the tests), `Ports::KNOWN` is what the README documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub dynamodb: u16,
    pub hubspot: u16,
    pub stream: u16,
}

impl Ports {
    /// DynamoDB Local where `setup --local-table` looks by default, the sandboxes beside it (cargo lambda watch
    /// takes 9000).
    pub const KNOWN: Ports = Ports {
        dynamodb: 8000,
        hubspot: 8001,
        stream: 8002,
    };
}

#[derive(Debug, thiserror::Error)]
pub enum InvokeEnvError {
    #[error("DynamoDB Local could not start on port {port}: {source} (is something else listening there?)")]
    DynamoDb { port: u16, source: std::io::Error },
    #[error("the {service} sandbox could not listen on port {port}: {source}")]
    Sandbox {
        service: &'static str,
        port: u16,
        source: std::io::Error,
    },
    #[error("the sample event {file}: {problem}")]
    SampleEvent { file: String, problem: String },
    #[error("DynamoDB Local: {0}")]
    Store(#[from] StoreError),
    #[error("the Stream sandbox refused the support agent's setup: {0}")]
    StreamAccess(String),
    #[error("cannot write {path}: {source}")]
    EnvFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Everything running, until `stop` (or drop: the doubles stop with their handles, the JVM with its owner).
pub struct InvokeEnv {
    host: IpAddr,
    dynamodb: DynamoDbLocal,
    secrets: SecretsManagerDouble,
    hubspot: HubSpotDouble,
    stream: StreamDouble,
    sample: SampleConversation,
}

/// The conversation the sample message events belong to, read from `webhook-message-new.json` itself.
#[derive(Debug, Clone)]
pub struct SampleConversation {
    pub channel: ChannelRef,
    pub visitor_id: UserId,
    pub visitor_name: String,
}

impl SampleConversation {
    pub fn from_events(events: &Path) -> Result<Self, InvokeEnvError> {
        let file = "webhook-message-new.json";
        let problem = |problem: String| InvokeEnvError::SampleEvent {
            file: file.to_owned(),
            problem,
        };
        let text =
            std::fs::read_to_string(events.join(file)).map_err(|e| problem(e.to_string()))?;
        let event: Value = serde_json::from_str(&text).map_err(|e| problem(e.to_string()))?;
        let body: Value = event["body"]
            .as_str()
            .ok_or_else(|| problem("no body".into()))
            .and_then(|body| serde_json::from_str(body).map_err(|e| problem(e.to_string())))?;
        let field = |name: &str, value: &Value| {
            value
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| problem(format!("no {name}")))
        };
        let channel =
            ChannelRef::parse_cid(&field("cid", &body["cid"])?).map_err(|e| problem(e.reason))?;
        let visitor_id = UserId::parse("user.id", &field("user.id", &body["user"]["id"])?)
            .map_err(|e| problem(e.reason))?;
        Ok(Self {
            channel,
            visitor_id,
            visitor_name: field("user.name", &body["user"]["name"])?,
        })
    }
}

impl InvokeEnv {
    /// Starts DynamoDB Local and the sandboxes on `ports` of the loopback address, creates the table and registers
    /// the sample conversation.
    pub async fn start(ports: Ports, events: &Path) -> Result<Self, InvokeEnvError> {
        Self::start_on(IpAddr::V4(Ipv4Addr::LOCALHOST), ports, events).await
    }

    /// [`Self::start`], the sandboxes listening on `host` (containers reach the host's docker bridge address, not
    /// its loopback; DynamoDB Local listens on every address).
    pub async fn start_on(
        host: IpAddr,
        ports: Ports,
        events: &Path,
    ) -> Result<Self, InvokeEnvError> {
        let sample = SampleConversation::from_events(events)?;
        let dynamodb = DynamoDbLocal::start((ports.dynamodb != 0).then_some(ports.dynamodb), None)
            .await
            .map_err(|source| InvokeEnvError::DynamoDb {
                port: ports.dynamodb,
                source,
            })?;
        let loopback = |port| SocketAddr::new(host, port);
        let hubspot = HubSpotDouble::start_on(loopback(ports.hubspot), HUBSPOT_TOKEN)
            .await
            .map_err(|source| InvokeEnvError::Sandbox {
                service: "HubSpot",
                port: ports.hubspot,
                source,
            })?;
        // What `setup --hubspot` creates in a real portal.
        hubspot.define_property(TRANSCRIPT_PROPERTY);
        let stream = StreamDouble::start_on(
            loopback(ports.stream),
            EVENTS_STREAM_KEY,
            EVENTS_STREAM_SECRET,
        )
        .await
        .map_err(|source| InvokeEnvError::Sandbox {
            service: "Stream",
            port: ports.stream,
            source,
        })?;
        let secrets = SecretsManagerDouble::start_on(
            loopback(0),
            SECRET_ARNS.iter().map(|(parameter, arn)| {
                let value = match *parameter {
                    "HubSpotTokenSecretArn" => HUBSPOT_TOKEN,
                    "StreamSecretArn" => EVENTS_STREAM_SECRET,
                    _ => EVENTS_HUBSPOT_CLIENT_SECRET,
                };
                (arn.to_string(), value.to_owned())
            }),
        )
        .await
        .map_err(|source| InvokeEnvError::Sandbox {
            service: "Secrets Manager",
            port: 0,
            source,
        })?;
        let env = Self {
            host,
            dynamodb,
            secrets,
            hubspot,
            stream,
            sample,
        };
        env.prepare_table().await?;
        env.prepare_stream().await?;
        Ok(env)
    }

    /// What `setup --stream-access` does to a deployed app: the agent registration adds to each channel exists, and
    /// visitors are confined to their channels.
    async fn prepare_stream(&self) -> Result<(), InvokeEnvError> {
        let failed = |e: String| InvokeEnvError::StreamAccess(e);
        let http = chat_sync::adapters::http::client().map_err(|e| failed(e.to_string()))?;
        let chat = StreamClient::new(
            http,
            &self.stream.base_url(),
            EVENTS_STREAM_KEY,
            EVENTS_STREAM_SECRET.into(),
        )
        .map_err(|e| failed(e.to_string()))?;
        let agent = SupportAgent::load(&Env::default()).map_err(|e| failed(e.to_string()))?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        chat.ensure_agent(&agent.id, &agent.name, true, deadline)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let channel_type =
            chat_sync::config::channel_type(&Env::default()).map_err(|e| failed(e.to_string()))?;
        chat.ensure_agent_role(true, deadline)
            .await
            .map_err(|e| failed(e.to_string()))?;
        chat.restrict_visitors(&channel_type, true, deadline)
            .await
            .map_err(|e| failed(e.to_string()))?;
        Ok(())
    }

    async fn prepare_table(&self) -> Result<(), InvokeEnvError> {
        let store = DynamoStore::new(
            chat_sync::app::local_dynamodb(&self.dynamodb.endpoint()).await,
            TABLE.to_owned(),
        );
        store.create_table().await?;
        let (first, last) = self
            .sample
            .visitor_name
            .split_once(' ')
            .unwrap_or((self.sample.visitor_name.as_str(), ""));
        let contact = self.hubspot.seed_contact(
            SAMPLE_EMAIL,
            &[
                ("firstname", first),
                ("lastname", last),
                ("email", SAMPLE_EMAIL),
            ],
        );
        let sample_problem = |problem: String| InvokeEnvError::SampleEvent {
            file: "webhook-message-new.json".into(),
            problem,
        };
        // As a registration through the form would store it (the events carry no identity token).
        let mapping = ChannelMapping::registered(
            self.sample.channel.clone(),
            ContactId::parse(&contact.id).map_err(|e| sample_problem(e.reason))?,
            self.sample.visitor_id.clone(),
            self.sample.visitor_name.clone(),
            Identity::Unverified,
            Timestamp::now(),
        );
        // Registering twice (a restart against a running DynamoDB Local) is fine: the mapping is the same.
        let email = Email::parse(SAMPLE_EMAIL).map_err(|e| sample_problem(e.reason))?;
        match store.save_channel(&mapping, &email).await {
            Ok(_) | Err(StoreError::AlreadyExists) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// The variables a Lambda binary needs to use this environment, in the order `events/local.env` lists them.
    pub fn variables(&self) -> Vec<(&'static str, String)> {
        vec![
            // The AWS SDK sends DynamoDB requests here; DynamoDB Local keeps one database per key and region.
            ("AWS_ENDPOINT_URL_DYNAMODB", self.dynamodb_endpoint()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "local".into()),
            ("AWS_SECRET_ACCESS_KEY", "local".into()),
            ("TABLE_NAME", TABLE.into()),
            ("HUBSPOT_BASE_URL", self.hubspot.base_url()),
            ("HUBSPOT_ACCESS_TOKEN", HUBSPOT_TOKEN.into()),
            ("HUBSPOT_CLIENT_SECRET", EVENTS_HUBSPOT_CLIENT_SECRET.into()),
            ("STREAM_BASE_URL", self.stream.base_url()),
            ("STREAM_API_KEY", EVENTS_STREAM_KEY.into()),
            ("STREAM_API_SECRET", EVENTS_STREAM_SECRET.into()),
            ("ALLOWED_ORIGINS", EVENTS_ORIGIN.into()),
            ("AGENT_OIDC_ISSUER", EVENTS_AGENT_ISSUER.into()),
            ("AGENT_OIDC_AUDIENCE", EVENTS_AGENT_AUDIENCE.into()),
            ("AGENT_CONSOLE_ORIGINS", EVENTS_ORIGIN.into()),
            ("RUST_LOG", "info".into()),
        ]
    }

    /// DynamoDB Local at the address the sandboxes listen on.
    fn dynamodb_endpoint(&self) -> String {
        format!(
            "http://{}",
            SocketAddr::new(self.host, self.dynamodb.port())
        )
    }

    /// The `--env-vars` file of `sam local`: the template's own variables that differ locally (it passes a
    /// function only those its template declares), for every function (`Parameters`). Secrets stay behind their
    /// ARNs, read from the local Secrets Manager as the deployed functions read them from AWS's.
    pub fn sam_env_vars(&self) -> Value {
        json!({
            "Parameters": {
                "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "false",
                "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_endpoint(),
                "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.secrets.base_url(),
                "TABLE_NAME": TABLE,
                "HUBSPOT_BASE_URL": self.hubspot.base_url(),
                "STREAM_BASE_URL": self.stream.base_url(),
                // The template derives these from the Cognito pool it creates, which a local run has not.
                "AGENT_OIDC_ISSUER": EVENTS_AGENT_ISSUER,
                "AGENT_OIDC_AUDIENCE": EVENTS_AGENT_AUDIENCE,
                "AGENT_CONSOLE_ORIGINS": EVENTS_ORIGIN,
            }
        })
    }

    /// `events/local.env`: `KEY=VALUE` lines, as `cargo lambda watch --env-file` reads them.
    pub fn env_file(&self) -> String {
        let mut text = String::from(
            "# Written by `make invoke-env` for `cargo lambda watch --env-file events/local.env`: local endpoints\n\
             # and the sandboxes' test credentials, valid while it runs. Not for real credentials.\n",
        );
        for (name, value) in self.variables() {
            text.push_str(&format!("{name}={value}\n"));
        }
        text
    }

    pub fn write_env_file(&self, path: &Path) -> Result<(), InvokeEnvError> {
        std::fs::write(path, self.env_file()).map_err(|source| InvokeEnvError::EnvFile {
            path: path.to_owned(),
            source,
        })
    }

    pub fn sample(&self) -> &SampleConversation {
        &self.sample
    }

    /// The sandbox Stream (its webhook URL, for `sam local start-api`'s check).
    pub fn stream(&self) -> &StreamDouble {
        &self.stream
    }

    /// The sandbox HubSpot, to look at what the functions wrote.
    pub fn hubspot(&self) -> &HubSpotDouble {
        &self.hubspot
    }

    /// Stops the JVM and waits until it has exited, so its port is free when this returns.
    pub async fn stop(mut self) -> std::io::Result<()> {
        self.dynamodb.stop().await
    }
}
