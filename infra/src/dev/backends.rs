//! What the handlers talk to locally: DynamoDB Local, and in sandbox mode the HubSpot and Stream doubles.

use super::DevError;
use chat_sync::adapters::hubspot::TRANSCRIPT_PROPERTY;
use chat_sync::config::Env;
use sandbox::fixtures::{
    SANDBOX_AGENTS, SANDBOX_AGENT_CLIENT_ID, SANDBOX_AGENT_PASSWORD, SANDBOX_HUBSPOT_CLIENT_SECRET,
    SANDBOX_HUBSPOT_TOKEN, SANDBOX_STREAM_KEY, SANDBOX_STREAM_SECRET,
};
use sandbox::{DynamoDbLocal, HubSpotDouble, OidcDouble, StreamDouble};

/// Requests per rolling 10 s the sandbox HubSpot allows, as HubSpot does on Free/Starter.
pub const SANDBOX_RATE_LIMIT: u32 = 100;

/// DynamoDB Local: the one at `DYNAMODB_LOCAL_ENDPOINT`, or a JVM started (and stopped) by the dev server.
pub struct Database {
    endpoint: String,
    owned: Option<DynamoDbLocal>,
}

impl Database {
    pub async fn start(env: &Env) -> Result<Self, DevError> {
        if env.is_set("DYNAMODB_LOCAL_ENDPOINT") {
            let endpoint = env.url("DYNAMODB_LOCAL_ENDPOINT", "")?;
            return Ok(Self {
                endpoint,
                owned: None,
            });
        }
        let local = DynamoDbLocal::start(None, None)
            .await
            .map_err(DevError::DynamoDb)?;
        Ok(Self {
            endpoint: local.endpoint(),
            owned: Some(local),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// One line for the banner.
    pub fn describe(&self) -> String {
        match self.owned {
            Some(_) => format!(
                "{} (DynamoDB Local started for this run, in memory; stopped on exit)",
                self.endpoint
            ),
            None => format!("{} (DYNAMODB_LOCAL_ENDPOINT)", self.endpoint),
        }
    }

    /// Stops the JVM we started and waits until it has exited, so its port is free when we return.
    pub async fn stop(self) -> std::io::Result<()> {
        match self.owned {
            Some(mut local) => local.stop().await,
            None => Ok(()),
        }
    }
}

/// The HubSpot and Stream doubles on loopback ports, standing in for the real services, and the OpenID provider
/// the agents sign in to the console with.
pub struct Sandbox {
    hubspot: HubSpotDouble,
    stream: StreamDouble,
    oidc: OidcDouble,
}

impl Sandbox {
    /// Starts the doubles; the Stream double delivers signed webhooks to `webhook_url`, as Stream would, and the
    /// identity provider redirects signed-in agents to one of `console_urls`.
    pub async fn start(webhook_url: String, console_urls: &[String]) -> Result<Self, DevError> {
        let hubspot = HubSpotDouble::start(SANDBOX_HUBSPOT_TOKEN)
            .await
            .map_err(|source| DevError::Sandbox {
                service: "HubSpot",
                source,
            })?;
        // What `infra setup` creates in a real portal.
        hubspot.define_property(TRANSCRIPT_PROPERTY);
        // HubSpot's Free/Starter limit, enforced like HubSpot (refused requests count too): what a user sees locally
        // is what a real portal does.
        hubspot.set_rate_limit(Some(SANDBOX_RATE_LIMIT));
        let stream = StreamDouble::start(SANDBOX_STREAM_KEY, SANDBOX_STREAM_SECRET)
            .await
            .map_err(|source| DevError::Sandbox {
                service: "Stream",
                source,
            })?;
        stream.set_webhook_url(Some(webhook_url));
        let oidc = OidcDouble::start()
            .await
            .map_err(|source| DevError::Sandbox {
                service: "OpenID provider",
                source,
            })?;
        let redirects: Vec<&str> = console_urls.iter().map(String::as_str).collect();
        oidc.register_client(SANDBOX_AGENT_CLIENT_ID, &redirects);
        for (email, name) in SANDBOX_AGENTS {
            oidc.add_agent(email, name, SANDBOX_AGENT_PASSWORD);
        }
        Ok(Self {
            hubspot,
            stream,
            oidc,
        })
    }

    /// Points the handlers at the doubles, exactly as the variables would point them at the real services.
    pub fn configure(&self, env: &mut Env) {
        env.set("HUBSPOT_BASE_URL", self.hubspot.base_url());
        env.set("HUBSPOT_ACCESS_TOKEN", SANDBOX_HUBSPOT_TOKEN);
        env.set("HUBSPOT_CLIENT_SECRET", SANDBOX_HUBSPOT_CLIENT_SECRET);
        env.set("STREAM_BASE_URL", self.stream.base_url());
        env.set("STREAM_API_KEY", SANDBOX_STREAM_KEY);
        env.set("STREAM_API_SECRET", SANDBOX_STREAM_SECRET);
        env.set("AGENT_OIDC_ISSUER", self.oidc.issuer());
        env.set("AGENT_OIDC_AUDIENCE", SANDBOX_AGENT_CLIENT_ID);
    }

    /// One line for the banner.
    pub fn describe(&self) -> String {
        format!(
            "sandbox: HubSpot double {} ({SANDBOX_RATE_LIMIT} requests / 10 s, like Free/Starter), Stream double {}, \
             OpenID provider {} (agents {} and {}, password {SANDBOX_AGENT_PASSWORD}; no accounts; nothing leaves \
             this machine)",
            self.hubspot.base_url(),
            self.stream.base_url(),
            self.oidc.issuer(),
            SANDBOX_AGENTS[0].0,
            SANDBOX_AGENTS[1].0,
        )
    }
}
