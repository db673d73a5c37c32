//! The agent-session Lambda (`POST /agent-sessions` behind the HTTP API's JWT authorizer): wiring only.

use chat_sync::app::Handler;
use chat_sync::lambda::{app_or_exit, init_or_exit};
use lambda_http::{Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    chat_sync::telemetry::init();
    let sessions = init_or_exit(app_or_exit(Handler::AgentSessions).await.agent_sessions()).await;
    chat_sync::lambda::run_http(move |request: Request| {
        let sessions = sessions.clone();
        async move { sessions.handle(request).await }
    })
    .await
}
