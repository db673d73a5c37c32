//! The webhook Lambda (Stream's webhook, a Lambda Function URL): wiring only.

use chat_sync::app::Handler;
use chat_sync::lambda::{app_or_exit, init_or_exit};
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    chat_sync::telemetry::init();
    let webhook = init_or_exit(app_or_exit(Handler::Webhook).await.webhook()).await;
    chat_sync::lambda::run_webhook(webhook).await
}
