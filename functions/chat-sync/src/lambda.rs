//! The Lambda runtime glue: a cold start that cannot work reports why and ends (`init_or_exit`), every HTTP function
//! runs behind a guard that answers 400 to an event no URL can be made of (`run_http`), and the webhook runs so that
//! its transcript flush happens after the response (`run_webhook`).
//!
//! The guard exists because `lambda_http` turns each event into an `http::Request` before any handler runs, and
//! panics (`failed to build request`) on a path or query it cannot put in a URL: `q="<>\x` or `q=a b`, which a
//! client sends raw and API Gateway and Function URLs pass on. The panic ends the runtime with the invocation
//! unanswered, and anyone can send it unsigned: reserved concurrency fills with dying runtimes and real deliveries
//! are refused. So the event is checked first, the same way `lambda_http` builds the URL ([`representable`]), and
//! what it cannot represent gets a 400 `invalid_url` instead.
//!
//! A synchronous invocation (Function URL) returns to the caller as soon as the runtime posts the response, but
//! Lambda freezes the environment only once every extension has asked for the next event. An *internal extension*
//! in this process waits for each invocation's pending flush and runs it before asking: Stream gets its answer
//! right after the message is stored, and HubSpot is written in the same invocation, under the lease, with time to
//! gather a burst.

use crate::config::ConfigError;
use crate::handlers::webhook::Webhook;
use crate::handlers::ApiError;
use crate::sync::PendingFlush;
use lambda_extension::{Extension, LambdaEvent, NextEvent};
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use lambda_http::http::StatusCode;
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, Error, Request, Response, Service};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::sync::Mutex;

/// The `Lambda-Runtime-Function-Error-Type` and `errorType` of a cold start stopped by its configuration.
pub const CONFIGURATION_ERROR: &str = "Runtime.ConfigurationError";

/// The app of the Lambda serving `handler`, from the process's configuration, or an init error and exit.
pub async fn app_or_exit(handler: crate::app::Handler) -> crate::app::App {
    let env = crate::config::Env::from_process();
    init_or_exit(crate::app::App::from_env(&env, &crate::config::aws().await, &[handler]).await)
        .await
}

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

/// Whether `lambda_http` can make a request of this event: it builds `{scheme}://{host}{stage}{raw path}` with
/// `url::Url::parse(..).unwrap()` (scheme from `X-Forwarded-Proto`, else https; host from `Host`, else the domain
/// name; without a host, `http://localhost` + path), appends `?` and the raw query, and builds an `http::Uri` of it
/// with `.expect(..)`. This does the same, answering false where it would panic.
pub fn representable(event: &LambdaRequest) -> bool {
    #[allow(unreachable_patterns)] // one variant with our features; the enum is non-exhaustive
    let LambdaRequest::ApiGatewayV2(event) = event
    else {
        return true;
    };
    let headers = &event.headers;
    let host = headers
        .get(lambda_http::http::header::HOST)
        .and_then(|host| host.to_str().ok())
        .or(event.request_context.domain_name.as_deref());
    let raw_path = event.raw_path.as_deref().unwrap_or_default();
    let path = match event.request_context.stage.as_deref() {
        _ if std::env::var_os("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH").is_some() => {
            raw_path.to_owned()
        }
        None | Some("$default") => raw_path.to_owned(),
        Some(stage) if raw_path.starts_with(&format!("/{stage}/")) => raw_path.to_owned(),
        Some(stage) => format!("/{stage}{raw_path}"),
    };
    let url = match host {
        None => {
            url::Url::parse(&format!("http://localhost{path}")).map(|url| url.path().to_owned())
        }
        Some(host) => {
            let scheme = headers
                .get("x-forwarded-proto")
                .and_then(|scheme| scheme.to_str().ok())
                .unwrap_or("https");
            url::Url::parse(&format!("{scheme}://{host}{path}")).map(|url| url.to_string())
        }
    };
    let Ok(mut uri) = url else {
        return false;
    };
    if let Some(query) = event.raw_query_string.as_deref().filter(|q| !q.is_empty()) {
        uri.push('?');
        uri.push_str(query);
    }
    lambda_http::http::Uri::try_from(uri).is_ok()
}

/// What `run_http` answers: the handler's response as `lambda_http` renders it, or the guard's refusal.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Answer<T> {
    Handled(T),
    Refused(Box<ApiGatewayV2httpResponse>),
}

/// The answer to an event whose URL cannot be represented, in the shape API Gateway and Function URLs expect.
fn unrepresentable() -> ApiGatewayV2httpResponse {
    let (parts, body) = ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_url",
        "the request's URL has characters that must be percent-encoded",
    )
    .into_response()
    .into_parts();
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(parts.status.as_u16());
    response.headers = parts.headers;
    response.body = Some(body);
    response
}

/// Serves an HTTP function (API Gateway HTTP API or Function URL events) on the Lambda runtime, as
/// `lambda_http::run` does, except that an event it would panic on is answered 400 `invalid_url` (see the module
/// docs). The handler never fails: every outcome is an HTTP response.
pub async fn run_http<H, F>(handler: H) -> Result<(), Error>
where
    H: Fn(Request) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_http::LambdaEvent<LambdaRequest>| {
            let handler = handler.clone();
            async move {
                if !representable(&event.payload) {
                    tracing::warn!("refused an HTTP event whose URL cannot be represented");
                    return Ok::<_, Infallible>(Answer::Refused(Box::new(unrepresentable())));
                }
                let mut adapter =
                    lambda_http::Adapter::from(lambda_http::service_fn(move |request: Request| {
                        let handler = handler.clone();
                        async move { Ok::<_, Infallible>(handler(request).await) }
                    }));
                adapter.call(event).await.map(Answer::Handled)
            }
        },
    ))
    .await
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
            return run_http(move |request: Request| {
                let webhook = webhook.clone();
                async move { webhook.handle(request).await }
            })
            .await;
        }
    };
    let handler = run_http(move |request: Request| {
        let (webhook, pending) = (webhook.clone(), pending.clone());
        async move {
            let (response, flush) = webhook.receive(request).await;
            if let Err(unsent) = pending.send(flush) {
                // The extension is gone (it only stops with the process): flush here rather than lose the work.
                if let Some(flush) = unsent.0 {
                    flush.run().await;
                }
            }
            response
        }
    });
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
    use super::{init_error_url, representable};
    use lambda_http::request::LambdaRequest;
    use proptest::prelude::*;

    /// A Function URL event (payload 2.0) with this raw path, query, `Host` and `X-Forwarded-Proto`.
    fn event(path: &str, query: &str, host: Option<&str>, proto: Option<&str>) -> LambdaRequest {
        let mut headers = serde_json::Map::new();
        if let Some(host) = host {
            headers.insert("host".into(), host.into());
        }
        if let Some(proto) = proto {
            headers.insert("x-forwarded-proto".into(), proto.into());
        }
        serde_json::from_value(serde_json::json!({
            "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
            "headers": headers, "isBase64Encoded": false, "body": "{}",
            "requestContext": {
                "accountId": "anonymous", "apiId": "abc", "domainName": "abc.lambda-url.us-east-1.on.aws",
                "domainPrefix": "abc", "requestId": "r", "routeKey": "$default", "stage": "$default",
                "time": "24/Nov/2026:10:00:05 +0000", "timeEpoch": 1795687205000_i64,
                "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "198.51.100.7",
                         "userAgent": "curl"}
            }
        }))
        .expect("a payload 2.0 event")
    }

    /// Whether lambda_http's own conversion builds a request of the event (it panics where it cannot). Its panic
    /// messages are kept out of the test output.
    fn lambda_http_converts(event: LambdaRequest) -> bool {
        static QUIET: std::sync::Once = std::sync::Once::new();
        QUIET.call_once(|| {
            let default = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                let conversion = std::thread::current()
                    .name()
                    .is_some_and(|name| name.contains("representable"));
                if !conversion {
                    default(info);
                }
            }));
        });
        std::panic::catch_unwind(move || {
            let _ = lambda_http::http::Request::<lambda_http::Body>::from(event);
        })
        .is_ok()
    }

    /// [`lambda_http_converts`] on a thread of its own, whose panics the hook keeps quiet.
    fn converts_quietly(event: LambdaRequest) -> bool {
        std::thread::Builder::new()
            .name("representable-check".into())
            .spawn(move || lambda_http_converts(event))
            .expect("thread")
            .join()
            .expect("joined")
    }

    #[test]
    fn what_a_client_sends_raw_is_not_representable_and_ordinary_urls_are() {
        for (query, ok) in [
            ("", true),
            ("a=1&b=%22x%22", true),
            ("q=\"<>\\x", false),
            ("q=a b", false),
            ("q=\u{7f}", false),
        ] {
            let event = event("/", query, Some("abc.lambda-url.us-east-1.on.aws"), None);
            assert_eq!(representable(&event), ok, "{query:?}");
            assert_eq!(converts_quietly(event), ok, "{query:?}");
        }
        let event = event(
            "/a b",
            "",
            Some("abc.lambda-url.us-east-1.on.aws"),
            Some("https"),
        );
        assert_eq!(representable(&event), converts_quietly(event));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The guard says "representable" exactly when lambda_http's conversion would not panic.
        #[test]
        fn representable_agrees_with_lambda_https_conversion(
            path in "/[ -~é\u{7f}\t]{0,12}",
            query in "[ -~é\u{7f}]{0,12}",
            host in prop::option::of(prop::sample::select(vec![
                "abc.lambda-url.us-east-1.on.aws", "localhost:3000", "a b", "[::1]", "ex ample.com", "", "é.example",
            ])),
            proto in prop::option::of(prop::sample::select(vec!["https", "http", "a b", "", "h:ttp"])),
        ) {
            let event = event(&path, &query, host, proto);
            let expected = representable(&event);
            prop_assert_eq!(expected, converts_quietly(event));
        }
    }

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
