//! The sweeper Lambda (an EventBridge schedule): wiring only.

use chat_sync::config::Env;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    chat_sync::telemetry::init();
    let sweeper = Arc::new(
        chat_sync::lambda::init_or_exit(
            chat_sync::wiring::sweeper(&Env::from_process(), &chat_sync::wiring::aws().await).await,
        )
        .await,
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let sweeper = sweeper.clone();
        async move { Ok::<_, Error>(serde_json::to_value(sweeper.handle(event.payload).await?)?) }
    }))
    .await
}
