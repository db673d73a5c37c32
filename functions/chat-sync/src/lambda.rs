//! The Lambda runtime glue: a cold start that cannot work reports why and ends (`init_or_exit`), and the webhook
//! runs so that its transcript flush happens after the response (`run_webhook`).
//!
//! A synchronous invocation (Function URL) returns to the caller as soon as the runtime posts the response, but
//! Lambda freezes the environment only once every extension has asked for the next event. An *internal extension*
//! in this process waits for each invocation's pending flush and runs it before asking: Stream gets its answer
//! right after the message is stored, and HubSpot is written in the same invocation, under the lease, with time to
//! gather a burst.

use crate::config::ConfigError;
use crate::handlers::webhook::Webhook;
use crate::sync::PendingFlush;
use lambda_extension::{Extension, LambdaEvent, NextEvent};
use lambda_http::{service_fn, Error, Request};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::sync::Mutex;

/// The `Lambda-Runtime-Function-Error-Type` and `errorType` of a cold start stopped by its configuration.
pub const CONFIGURATION_ERROR: &str = "Runtime.ConfigurationError";

/// Ends a cold start that cannot work: one line naming the variable (no panic, no backtrace, no value), the same
/// message reported to the Runtime API's `/runtime/init/error` so the invocation waiting on this cold start fails at
/// once with it (on AWS and under `cargo lambda`) instead of waiting for a runtime that never asks for its event,
/// then exit code 1.
pub async fn init_or_exit<T>(result: Result<T, ConfigError>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => {
            tracing::error!(variable = %error.variable, "{error}");
            eprintln!("{error}");
            // Set by Lambda and by cargo-lambda's emulator; absent when the binary is started by hand.
            if let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") {
                report_init_error(&api, &error).await;
            }
            std::process::exit(1);
        }
    }
}

/// `AWS_LAMBDA_RUNTIME_API` is `host:port` on AWS; cargo-lambda gives a URL with a path of its own
/// (`http://[::]:9000/.rt/webhook`), which the runtime client also accepts.
fn init_error_url(api: &str) -> String {
    let base = if api.contains("://") {
        api.to_owned()
    } else {
        format!("http://{api}")
    };
    format!(
        "{}/2018-06-01/runtime/init/error",
        base.trim_end_matches('/')
    )
}

async fn report_init_error(api: &str, error: &ConfigError) {
    let body = serde_json::json!({
        "errorMessage": error.to_string(),
        "errorType": CONFIGURATION_ERROR,
    });
    // The Runtime API is local: if it does not answer within seconds, exiting is still the right end.
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(client) => client,
        Err(problem) => {
            tracing::error!(%problem, "cannot report the init error to the Runtime API");
            return;
        }
    };
    let sent = client
        .post(init_error_url(api))
        .header("Lambda-Runtime-Function-Error-Type", CONFIGURATION_ERROR)
        .json(&body)
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => {}
        Ok(response) => {
            tracing::error!(status = %response.status(), "the Runtime API refused the init error report")
        }
        Err(problem) => {
            tracing::error!(%problem, "cannot report the init error to the Runtime API")
        }
    }
}

/// Serves the webhook on the Lambda runtime. Without an Extensions API (some local emulators), falls back to
/// flushing before answering, which is correct, only slower to acknowledge.
pub async fn run_webhook(webhook: Arc<Webhook>) -> Result<(), Error> {
    // Exactly one message per invocation (a flush or nothing), so the extension never waits for a flush that
    // belongs to another invocation.
    let (pending, queue) = unbounded_channel::<Option<PendingFlush>>();
    let queue = Arc::new(Mutex::new(queue));
    let registration = Extension::new()
        .with_events(&["INVOKE"])
        .with_events_processor(lambda_extension::service_fn(move |event: LambdaEvent| {
            let queue = queue.clone();
            async move { run_pending(event, &queue).await }
        }))
        .with_extension_name("transcript-flush")
        .register()
        .await;
    let extension = match registration {
        Ok(extension) => extension,
        Err(error) => {
            tracing::warn!(%error, "no Lambda Extensions API: flushing transcripts before answering");
            return lambda_http::run(service_fn(move |request: Request| {
                let webhook = webhook.clone();
                async move { Ok::<_, Infallible>(webhook.handle(request).await) }
            }))
            .await;
        }
    };
    let handler = lambda_http::run(service_fn(move |request: Request| {
        let (webhook, pending) = (webhook.clone(), pending.clone());
        async move {
            let (response, flush) = webhook.receive(request).await;
            if let Err(unsent) = pending.send(flush) {
                // The extension is gone (it only stops with the process): flush here rather than lose the work.
                if let Some(flush) = unsent.0 {
                    flush.run().await;
                }
            }
            Ok::<_, Infallible>(response)
        }
    }));
    tokio::try_join!(handler, extension.run())?;
    Ok(())
}

async fn run_pending(
    event: LambdaEvent,
    queue: &Mutex<UnboundedReceiver<Option<PendingFlush>>>,
) -> Result<(), Error> {
    if let NextEvent::Shutdown(_) = event.next {
        return Ok(());
    }
    match queue.lock().await.recv().await {
        Some(Some(flush)) => {
            flush.run().await;
        }
        Some(None) => {}
        None => return Err("the webhook handler stopped".into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::init_error_url;

    #[test]
    fn the_init_error_goes_to_the_runtime_api_as_aws_and_cargo_lambda_name_it() {
        assert_eq!(
            init_error_url("127.0.0.1:9001"),
            "http://127.0.0.1:9001/2018-06-01/runtime/init/error"
        );
        assert_eq!(
            init_error_url("http://[::]:9000/.rt/webhook"),
            "http://[::]:9000/.rt/webhook/2018-06-01/runtime/init/error"
        );
        assert_eq!(
            init_error_url("http://localhost:9000/.rt/webhook/"),
            "http://localhost:9000/.rt/webhook/2018-06-01/runtime/init/error"
        );
    }
}
