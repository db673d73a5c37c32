//! Structured logs: JSON lines in Lambda (CloudWatch), readable text locally.

/// Installs the global subscriber once; `RUST_LOG` filters (default `info`).
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let result = if in_lambda {
        builder
            .json()
            .flatten_event(true)
            .without_time() // CloudWatch stamps every line
            .try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
    // A second init (tests, the dev server) keeps the first subscriber.
    drop(result);
}
