//! The HubSpot webhooks Lambda (`POST /hubspot/webhooks` behind the HTTP API): wiring only.

use chat_sync::config::Env;
use lambda_http::{Error, Request};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    chat_sync::telemetry::init();
    let webhooks = Arc::new(
        chat_sync::lambda::init_or_exit(
            chat_sync::wiring::hubspot_webhooks(
                &Env::from_process(),
                &chat_sync::wiring::aws().await,
            )
            .await,
        )
        .await,
    );
    chat_sync::lambda::run_http(move |request: Request| {
        let webhooks = webhooks.clone();
        async move { webhooks.handle(request).await }
    })
    .await
}
