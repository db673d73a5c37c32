//! Stream's official JavaScript SDK (`stream-chat` in node_modules) against the double, in Node: the checks live in
//! `tests/sdk/stream-sdk.mjs`; this test starts the double, runs the script and fails on a non-zero exit. `make test`
//! installs node_modules (`npm ci`), so a missing SDK is a failure, not a skip.

use sandbox::StreamDouble;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

const KEY: &str = "sdk-key";
const SECRET: &str = "sdk-test-secret";

#[tokio::test]
async fn the_official_sdk_works_against_the_double() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sdk = root.join("../node_modules/stream-chat/package.json");
    assert!(
        sdk.exists(),
        "node_modules/stream-chat is missing: run `npm ci` at the repository root (make test does)"
    );
    let double = StreamDouble::start(KEY, SECRET).await.expect("starts");
    let script = root.join("tests/sdk/stream-sdk.mjs");
    let run = tokio::process::Command::new("node")
        .arg(&script)
        .env("STREAM_BASE_URL", double.base_url())
        .env("STREAM_API_KEY", KEY)
        .env("STREAM_API_SECRET", SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("the SDK script finishes within 90 s")
        .expect("node runs (Node 20+ is required)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the SDK script failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        double.call_count("connect") >= 3,
        "the script connected over the websocket"
    );
}
