//! The agent-session Lambda (`POST /agent-sessions` behind the HTTP API's JWT authorizer): wiring only.

use chat_sync::config::Env;
use lambda_http::{Error, Request};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    chat_sync::telemetry::init();
    let sessions = Arc::new(
        chat_sync::lambda::init_or_exit(
            chat_sync::wiring::agent_sessions(
                &Env::from_process(),
                &chat_sync::wiring::aws().await,
            )
            .await,
        )
        .await,
    );
    chat_sync::lambda::run_http(move |request: Request| {
        let sessions = sessions.clone();
        async move { sessions.handle(request).await }
    })
    .await
}
