//! Running the webhook on Lambda so that its transcript flush happens after the response.
//!
//! A synchronous invocation (Function URL) returns to the caller as soon as the runtime posts the response, but
//! Lambda freezes the environment only once every extension has asked for the next event. An *internal extension*
//! in this process waits for each invocation's pending flush and runs it before asking: Stream gets its answer
//! right after the message is stored, and HubSpot is written in the same invocation, under the lease, with time to
//! gather a burst.

use crate::handlers::webhook::Webhook;
use crate::sync::PendingFlush;
use lambda_extension::{Extension, LambdaEvent, NextEvent};
use lambda_http::{service_fn, Error, Request};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::sync::Mutex;

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
