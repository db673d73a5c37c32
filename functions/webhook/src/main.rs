//! The webhook Lambda (Stream's webhook, a Lambda Function URL): wiring only.

use chat_sync::config::Env;
use lambda_http::Error;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    chat_sync::telemetry::init();
    let webhook = Arc::new(
        chat_sync::lambda::init_or_exit(
            chat_sync::wiring::webhook(&Env::from_process(), &chat_sync::wiring::aws().await).await,
        )
        .await,
    );
    chat_sync::lambda::run_webhook(webhook).await
}
