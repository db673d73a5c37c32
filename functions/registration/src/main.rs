//! The registration Lambda (`POST /registrations` behind an API Gateway HTTP API): wiring only.

use chat_sync::config::Env;
use lambda_http::{Error, Request};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    chat_sync::telemetry::init();
    let registration = Arc::new(
        chat_sync::lambda::init_or_exit(
            chat_sync::wiring::registration(&Env::from_process(), &chat_sync::wiring::aws().await)
                .await,
        )
        .await,
    );
    chat_sync::lambda::run_http(move |request: Request| {
        let registration = registration.clone();
        async move { registration.handle(request).await }
    })
    .await
}
