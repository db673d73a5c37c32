//! The Lambda binary refuses to start on bad configuration with one line naming the variable — no panic.

use std::process::Command;

fn run(env: &[(&str, &str)]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_registration"))
        .env_clear()
        .envs(env.iter().copied())
        // Keep the AWS SDK from probing instance metadata for a region.
        .env("AWS_REGION", "us-east-1")
        .env("AWS_LAMBDA_FUNCTION_NAME", "registration")
        .output()
        .expect("binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned()
            + &String::from_utf8_lossy(&output.stdout),
    )
}

#[test]
fn missing_configuration_names_the_variable_and_exits_cleanly() {
    let (code, output) = run(&[]);
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("HUBSPOT_ACCESS_TOKEN is not set"),
        "{output}"
    );
    assert!(!output.contains("panicked"), "{output}");

    let (code, output) = run(&[
        ("HUBSPOT_ACCESS_TOKEN", "pat-secret-value"),
        ("STREAM_API_KEY", "key"),
        ("STREAM_API_SECRET", "stream-secret-value"),
        ("TABLE_NAME", "t"),
        ("VISITOR_TOKEN_TTL_SECONDS", "a day"),
    ]);
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("VISITOR_TOKEN_TTL_SECONDS must be a whole number"),
        "{output}"
    );
    assert!(
        !output.contains("pat-secret-value") && !output.contains("stream-secret-value"),
        "no secret in logs"
    );
}
