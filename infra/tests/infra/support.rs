//! What the infra tests share: where the repository is, and the local AWS environment a command run as an operator
//! runs it (the `backlog` and `erase` binaries) needs to reach this binary's DynamoDB Local.

use std::path::Path;
use std::process::Command;

/// The repository's root (the workspace).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("infra/ has a parent")
}

/// The variables that point a command's AWS SDK at DynamoDB Local at `endpoint`, with the credentials and region
/// `chat_sync::app::local_aws` uses: DynamoDB Local keeps one database per access key and region, the tests' own.
pub fn local_aws_command(program: impl AsRef<std::ffi::OsStr>, endpoint: &str) -> Command {
    let mut command = Command::new(program);
    command
        .env("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env_remove("AWS_PROFILE");
    command
}

/// A table of its own on this binary's DynamoDB Local: its endpoint, its name, and the store on it.
pub async fn local_table(
    prefix: &str,
) -> (String, String, chat_sync::adapters::dynamo::DynamoStore) {
    let endpoint = sandbox::DynamoDbLocal::shared().endpoint();
    let table = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
    let store = chat_sync::adapters::dynamo::DynamoStore::new(
        chat_sync::app::local_dynamodb(&endpoint).await,
        &table,
    );
    store
        .create_table()
        .await
        .expect("table created in DynamoDB Local");
    (endpoint, table, store)
}
