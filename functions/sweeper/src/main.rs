//! The sweeper Lambda (an EventBridge schedule): wiring only.

use chat_sync::app::Handler;
use chat_sync::lambda::{app_or_exit, init_or_exit};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    chat_sync::telemetry::init();
    let sweeper = init_or_exit(app_or_exit(Handler::Sweeper).await.sweeper()).await;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let sweeper = sweeper.clone();
        async move { Ok::<_, Error>(serde_json::to_value(sweeper.handle(event.payload).await?)?) }
    }))
    .await
}
