//! The HubSpot webhooks Lambda (`POST /hubspot/webhooks` behind the HTTP API): wiring only.

use chat_sync::app::Handler;
use chat_sync::lambda::{app_or_exit, init_or_exit};
use lambda_http::{Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    chat_sync::telemetry::init();
    let webhooks = init_or_exit(
        app_or_exit(Handler::HubSpotWebhooks)
            .await
            .hubspot_webhooks(),
    )
    .await;
    chat_sync::lambda::run_http(move |request: Request| {
        let webhooks = webhooks.clone();
        async move { webhooks.handle(request).await }
    })
    .await
}
