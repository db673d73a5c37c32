//! The webhook Lambda (Stream's webhook, a Lambda Function URL): wiring only.

use chat_sync::config::Env;
use lambda_http::{service_fn, Error, Request};
use std::convert::Infallible;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    chat_sync::telemetry::init();
    let webhook = Arc::new(chat_sync::wiring::or_exit(
        chat_sync::wiring::webhook(&Env::from_process(), &chat_sync::wiring::aws().await).await,
    ));
    lambda_http::run(service_fn(move |request: Request| {
        let webhook = webhook.clone();
        async move { Ok::<_, Infallible>(webhook.handle(request).await) }
    }))
    .await
}
