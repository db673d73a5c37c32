//! DynamoDB Local starts, answers, keeps persisted data across a restart, and stops; a port another server holds
//! is never taken for it.

use sandbox::{DynamoDbLocal, HubSpotDouble};
use std::time::Duration;

async fn list_tables(http: &reqwest::Client, endpoint: &str) -> reqwest::Result<reqwest::Response> {
    http.post(endpoint)
        .header("X-Amz-Target", "DynamoDB_20120810.ListTables")
        .header("Content-Type", "application/x-amz-json-1.0")
        // DynamoDB Local does not check signatures, but separates databases by access key and region.
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body("{}")
        .timeout(Duration::from_secs(5))
        .send()
        .await
}

#[tokio::test]
async fn start_restart_and_stop() {
    let dir = std::env::temp_dir().join(format!("ddb-local-test-{}", std::process::id()));
    let mut ddb = DynamoDbLocal::start(None, Some(dir.clone()))
        .await
        .expect("DynamoDB Local starts");
    let endpoint = ddb.endpoint();
    assert_eq!(endpoint, format!("http://127.0.0.1:{}", ddb.port()));
    // Below the ephemeral range, where no double's port 0 and no outgoing connection can take it mid-restart.
    if let Some(low) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
    {
        assert!(
            ddb.port() < low,
            "port {} in the ephemeral range",
            ddb.port()
        );
    }
    let http = reqwest::Client::new();

    let create = http
        .post(&endpoint)
        .header("X-Amz-Target", "DynamoDB_20120810.CreateTable")
        .header("Content-Type", "application/x-amz-json-1.0")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(
            r#"{"TableName":"sandbox-test","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],
                "KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}"#,
        )
        .send()
        .await
        .expect("create table");
    assert_eq!(
        create.status(),
        200,
        "{}",
        create.text().await.unwrap_or_default()
    );

    ddb.restart().await.expect("restarts");
    assert_eq!(ddb.endpoint(), endpoint, "same port");
    let tables = list_tables(&http, &endpoint)
        .await
        .expect("answers after restart");
    let body = tables.text().await.expect("body");
    assert!(
        body.contains("\"sandbox-test\""),
        "persisted table survived the restart: {body}"
    );

    ddb.stop().await.expect("stops");
    assert!(
        list_tables(&http, &endpoint).await.is_err(),
        "nothing listens after stop"
    );
    ddb.stop().await.expect("stopping twice is fine");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_port_another_server_answers_on_is_never_taken_for_dynamodb_local() {
    // A HubSpot double answers any HTTP request (404 "No route"): DynamoDB Local cannot bind its port, and that
    // answer must not pass for the instance being ready.
    let double = HubSpotDouble::start("token").await.expect("double starts");
    let port: u16 = double
        .base_url()
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("a port in the double's URL");
    let started = DynamoDbLocal::start(Some(port), None).await;
    assert!(
        started.is_err(),
        "DynamoDB Local reported ready on port {port}, which the HubSpot double holds"
    );
}
