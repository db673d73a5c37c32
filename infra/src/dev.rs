//! `make dev`: the whole system on one machine, with no accounts.
//!
//! DynamoDB Local, the HubSpot and Stream doubles (or the real services when their credentials are set), the
//! handlers built by the same `App::build` the Lambdas call at cold start, served by axum at the
//! deployed paths next to a demo page, and the sweeper on a timer instead of EventBridge.

mod api;
mod assets;
mod backends;
mod guard;
mod mode;

pub use mode::{Mode, PartialCredentials, CREDENTIALS};

use api::DevApi;
use assets::Pages;
use backends::{Database, Sandbox};
use chat_sync::app::Handler;
use chat_sync::config::{ConfigError, Env, SecretsManager, StreamSettings, SupportAgent};
use chat_sync::handlers::sweeper::Sweeper;
use chat_sync::ports::{StoreError, UpstreamError};
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Log filter when `RUST_LOG` is unset: the sweeper's own per-run line would repeat every few seconds, so the dev
/// server logs sweeps itself, and only those that found work.
pub const DEFAULT_LOG_FILTER: &str = "info,chat_sync::handlers::sweeper=warn";

/// How long open requests may take to finish after Ctrl-C before the server stops anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The dev server's own settings (everything else is the handlers' configuration, see docs/operations.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevConfig {
    pub port: u16,
    pub table: String,
    pub sweep_interval: Duration,
}

impl DevConfig {
    pub fn load(env: &Env) -> Result<Self, ConfigError> {
        let raw_port = env.optional("PORT", "3000");
        let port = raw_port
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| ConfigError {
                variable: "PORT".into(),
                problem: format!("must be a port number (1-65535), got {raw_port:?}"),
            })?;
        Ok(Self {
            port,
            table: env.optional("TABLE_NAME", "chat-sync-dev"),
            sweep_interval: env.seconds("SWEEP_INTERVAL_SECONDS", 5, 1..=3_600)?,
        })
    }

    pub fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// This server's origin, as the embed example addresses it.
    pub fn origin(&self) -> String {
        format!("http://{}", self.address())
    }

    /// Where the agent console is served, under both spellings of this machine (the identity provider's
    /// registered redirect URIs).
    pub fn console_urls(&self) -> [String; 2] {
        self.origins().map(|origin| format!("{origin}/agent/"))
    }

    /// What a browser on this machine uses; both spellings, since people type either.
    pub fn origins(&self) -> [String; 2] {
        [
            format!("http://127.0.0.1:{}", self.port),
            format!("http://localhost:{}", self.port),
        ]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Credentials(#[from] PartialCredentials),
    #[error("cannot listen on {address}: {source} (set PORT to use another port)")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("DynamoDB Local could not start: {0}")]
    DynamoDb(std::io::Error),
    #[error("the {service} double could not start: {source}")]
    Sandbox {
        service: &'static str,
        source: std::io::Error,
    },
    #[error("could not create the table {table}: {source}")]
    Table { table: String, source: StoreError },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("could not set up the support agent in Stream (as setup --stream-access does): {0}")]
    StreamAccess(UpstreamError),
}

/// Starts everything, serves until `shutdown` resolves, then stops everything it started.
pub async fn run(env: Env, shutdown: impl Future<Output = ()> + Send) -> Result<(), DevError> {
    let config = DevConfig::load(&env)?;
    let mode = Mode::detect(&env)?;
    // Bind first: a taken port should fail in milliseconds, not after DynamoDB Local has started.
    let listener = tokio::net::TcpListener::bind(config.address())
        .await
        .map_err(|source| DevError::Bind {
            address: config.address(),
            source,
        })?;
    let database = Database::start(&env).await?;
    let outcome = async {
        let app = App::start(env, &config, mode, &database).await?;
        let sweeping = tokio::spawn(sweep_forever(app.sweeper, config.sweep_interval));
        print_banner(&config, &app.env, &database, app.sandbox.as_ref());
        let served = serve(listener, app.router, shutdown).await;
        sweeping.abort();
        served
    }
    .await;
    // Also after a failed start: the JVM must not outlive us, and its port must be free when we exit.
    if let Err(error) = database.stop().await {
        tracing::warn!(%error, "DynamoDB Local did not stop cleanly");
    }
    tracing::info!("stopped");
    outcome
}

/// The handlers and dev endpoints, wired to the database and to the doubles or the real services.
struct App {
    router: axum::Router,
    sweeper: Arc<Sweeper>,
    /// Held for the doubles' lifetime: dropping it stops them.
    sandbox: Option<Sandbox>,
    /// The configuration the handlers were built from.
    env: Env,
}

impl App {
    async fn start(
        mut env: Env,
        config: &DevConfig,
        mode: Mode,
        database: &Database,
    ) -> Result<Self, DevError> {
        let aws = chat_sync::app::local_aws(database.endpoint()).await;
        let sandbox = match mode {
            Mode::Sandbox => {
                let webhook_url = format!("http://{}/webhooks", config.address());
                let sandbox = Sandbox::start(webhook_url, &config.console_urls()).await?;
                sandbox.configure(&mut env);
                Some(sandbox)
            }
            Mode::Live => None,
        };
        env.set("TABLE_NAME", config.table.clone());
        if !env.is_set("ALLOWED_ORIGINS") {
            env.set("ALLOWED_ORIGINS", config.origins().join(","));
        }
        if !env.is_set("AGENT_CONSOLE_ORIGINS") {
            env.set("AGENT_CONSOLE_ORIGINS", config.origins().join(","));
        }
        // HubSpot's webhooks need the app's client secret: the sandbox has one; with real services, the route is
        // served once HUBSPOT_CLIENT_SECRET is set (HubSpot must reach it through a tunnel, like Stream).
        // The agent console's sessions: the sandbox's identity provider, or in live mode the one AGENT_OIDC_ISSUER
        // names (unset: the console is not served).
        let handlers: Vec<Handler> = Handler::ALL
            .into_iter()
            .filter(|handler| match handler {
                Handler::HubSpotWebhooks => env.is_set("HUBSPOT_CLIENT_SECRET"),
                Handler::AgentSessions => env.is_set("AGENT_OIDC_ISSUER"),
                _ => true,
            })
            .collect();
        if !handlers.contains(&Handler::HubSpotWebhooks) {
            tracing::info!("HUBSPOT_CLIENT_SECRET is not set: /hubspot/webhooks is not served");
        }
        if !handlers.contains(&Handler::AgentSessions) {
            tracing::info!(
                "AGENT_OIDC_ISSUER is not set: /agent-sessions and the agent console are not served"
            );
        }
        // The same assembly, from the same configuration, as the Lambdas' main.rs at cold start.
        let app = chat_sync::app::App::from_env(&env, &aws, &handlers).await?;
        app.store
            .create_table()
            .await
            .map_err(|source| DevError::Table {
                table: config.table.clone(),
                source,
            })?;
        let api = Arc::new(dev_api(&env, &aws, config, mode, &app, database.endpoint()).await?);
        Ok(Self {
            router: api::router(
                api::Handlers {
                    registration: app.registration()?,
                    webhook: app.webhook()?,
                    hubspot_webhooks: app.hubspot_webhooks.clone(),
                    agent_sessions: app.agent_sessions.clone(),
                },
                api,
            ),
            sweeper: app.sweeper()?,
            sandbox,
            env,
        })
    }
}

/// Serves until `shutdown`, then lets open requests finish for up to `DRAIN_TIMEOUT`.
async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), DevError> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(
        // The socket peer goes to the handlers as API Gateway's `sourceIp` (the registration throttle's address).
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            stopped.await.ok();
        })
        .into_future(),
    );
    let ended = tokio::select! {
        result = &mut server => result,
        () = shutdown => {
            tracing::info!("shutting down");
            stop.send(()).ok();
            match tokio::time::timeout(DRAIN_TIMEOUT, &mut server).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!("requests still open after {DRAIN_TIMEOUT:?}; closing them");
                    server.abort();
                    Ok(Ok(()))
                }
            }
        }
    };
    match ended {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(DevError::Serve(error)),
        Err(join) => Err(DevError::Serve(std::io::Error::other(join))),
    }
}

/// Clients for the dev endpoints, from the same settings the handlers read.
async fn dev_api(
    env: &Env,
    aws: &aws_config::SdkConfig,
    config: &DevConfig,
    mode: Mode,
    app: &chat_sync::app::App,
    dynamodb_endpoint: &str,
) -> Result<DevApi, DevError> {
    let stream = StreamSettings::load(env, &SecretsManager::new(aws)).await?;
    let missing = |part: &str| ConfigError {
        variable: part.to_owned(),
        problem: "is needed by the dev endpoints".to_owned(),
    };
    let chat = app.chat.clone().ok_or_else(|| missing("STREAM_API_KEY"))?;
    // `setup --stream-access`, as a deployment runs it once: registration only adds the agent to channels, so it
    // must exist. The sandbox also gets the product's grants, so the demo runs with a visitor's real rights; a live
    // app's grants are `setup`'s to change, not the dev server's.
    let agent = SupportAgent::load(env)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    chat.ensure_agent(&agent.id, &agent.name, true, deadline)
        .await
        .map_err(DevError::StreamAccess)?;
    if mode == Mode::Sandbox {
        chat.ensure_agent_role(true, deadline)
            .await
            .map_err(DevError::StreamAccess)?;
        chat.restrict_visitors(&chat_sync::config::channel_type(env)?, true, deadline)
            .await
            .map_err(DevError::StreamAccess)?;
    }
    let console = env.is_set("AGENT_OIDC_ISSUER").then(|| api::ConsoleConfig {
        issuer: env.optional("AGENT_OIDC_ISSUER", ""),
        client_id: env.optional("AGENT_OIDC_AUDIENCE", ""),
        hubspot_portal_id: env.optional("HUBSPOT_PORTAL_ID", ""),
    });
    Ok(DevApi {
        mode,
        agent_id: agent.id,
        console,
        crm: app
            .crm
            .clone()
            .ok_or_else(|| missing("HUBSPOT_ACCESS_TOKEN"))?,
        store: app.store.clone(),
        dynamodb_endpoint: dynamodb_endpoint.to_owned(),
        pages: Pages::new(
            &config.origin(),
            &stream.base_url,
            &env.optional("AGENT_OIDC_ISSUER", ""),
        ),
    })
}

/// The EventBridge schedule, locally: one sweep per interval, each finishing before the next starts.
async fn sweep_forever(sweeper: Arc<Sweeper>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match sweeper.sweep().await {
            Ok(report) if report.flush.rounds > 0 => {
                tracing::info!(?report, "sweeper flushed waiting contacts")
            }
            Ok(report) => tracing::debug!(?report, "sweep: nothing waiting"),
            Err(error) => tracing::warn!(%error, "sweep failed; trying again in {every:?}"),
        }
    }
}

fn print_banner(config: &DevConfig, env: &Env, database: &Database, sandbox: Option<&Sandbox>) {
    let url = format!("http://{}/", config.address());
    let mode =
        match sandbox {
            Some(sandbox) => sandbox.describe(),
            None => format!(
            "live: HubSpot {}, Stream {}; Stream posts webhooks to the URL set in its dashboard \
             (reach {url}webhooks through a tunnel to sync messages). The demo page's CRM view is off: it would hand \
             real CRM data to whoever reaches this server; the agent console signs in at AGENT_OIDC_ISSUER",
            env.optional("HUBSPOT_BASE_URL", chat_sync::adapters::hubspot::DEFAULT_BASE_URL),
            env.optional("STREAM_BASE_URL", chat_sync::adapters::stream::DEFAULT_BASE_URL),
        ),
        };
    let widget = if assets::widget_built() {
        format!(
            "{url}chat-sync-widget.js (a page with only its embed tag: {url}embed-example.html)"
        )
    } else {
        "not built: run `make widget` (make dev does), or the pages have no chat".to_owned()
    };
    println!(
        "\nchat-sync dev server\n  \
           open      {url}\n  \
           widget    {widget}\n  \
           agents    {url}agent/ (the agent console)\n  \
           mode      {mode}\n  \
           DynamoDB  {}, table {}\n  \
           sweeper   every {}s\n  \
           stop      Ctrl-C\n",
        database.describe(),
        config.table,
        config.sweep_interval.as_secs(),
    );
}

/// Ctrl-C or SIGTERM. Installed only once startup is done: until then the default action ends the process at
/// once, and DynamoDB Local's launcher still kills its JVM (it watches a pipe that closes with us).
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM; use Ctrl-C");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = interrupt => {},
            () = terminate => {},
        }
    }
    #[cfg(not(unix))]
    {
        interrupt.await.ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let config = DevConfig::load(&Env::default()).expect("defaults");
        assert_eq!(
            config,
            DevConfig {
                port: 3000,
                table: "chat-sync-dev".into(),
                sweep_interval: Duration::from_secs(5),
            }
        );
        assert_eq!(
            config.origins(),
            ["http://127.0.0.1:3000", "http://localhost:3000"]
        );
        let env = Env::from_pairs([
            ("PORT", "8080"),
            ("TABLE_NAME", "mine"),
            ("SWEEP_INTERVAL_SECONDS", "30"),
        ]);
        let config = DevConfig::load(&env).expect("overrides");
        assert_eq!(config.address().to_string(), "127.0.0.1:8080");
        assert_eq!(config.table, "mine");
        assert_eq!(config.sweep_interval, Duration::from_secs(30));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for port in ["0", "65536", "http"] {
            let env = Env::from_pairs([("PORT", port)]);
            assert_eq!(DevConfig::load(&env).expect_err(port).variable, "PORT");
        }
        let env = Env::from_pairs([("SWEEP_INTERVAL_SECONDS", "0")]);
        assert_eq!(
            DevConfig::load(&env).expect_err("zero").variable,
            "SWEEP_INTERVAL_SECONDS"
        );
    }
}
