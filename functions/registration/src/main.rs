//! The registration Lambda (`POST /registrations` behind an API Gateway HTTP API): wiring only.

use chat_sync::app::Handler;
use chat_sync::lambda::{app_or_exit, init_or_exit};
use lambda_http::{Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    chat_sync::telemetry::init();
    let registration = init_or_exit(app_or_exit(Handler::Registration).await.registration()).await;
    chat_sync::lambda::run_http(move |request: Request| {
        let registration = registration.clone();
        async move { registration.handle(request).await }
    })
    .await
}
