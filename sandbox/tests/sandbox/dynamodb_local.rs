//! DynamoDB Local starts, answers, keeps persisted data across a restart, and stops.

use sandbox::DynamoDbLocal;
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
