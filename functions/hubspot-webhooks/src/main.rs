//! The HubSpot webhooks Lambda (`POST /hubspot/webhooks` behind the HTTP API): wiring only.

use chat_sync::config::Env;
use lambda_http::{service_fn, Error, Request};
use std::convert::Infallible;
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
    lambda_http::run(service_fn(move |request: Request| {
        let webhooks = webhooks.clone();
        async move { Ok::<_, Infallible>(webhooks.handle(request).await) }
    }))
    .await
}
