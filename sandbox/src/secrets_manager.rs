//! A local AWS Secrets Manager that answers `GetSecretValue`, the one call the functions make: for `sam local`,
//! where the functions run with the template's environment (`*_SECRET_ARN`, as deployed) and read their secrets
//! by ARN as on AWS, with `AWS_ENDPOINT_URL_SECRETS_MANAGER` pointing here.
//!
//! The wire format is Secrets Manager's (AWS JSON 1.1): `POST /`, `X-Amz-Target: secretsmanager.GetSecretValue`,
//! body `{"SecretId": ...}`; an unknown secret answers 400 `ResourceNotFoundException`, as AWS does. Requests must
//! carry a SigV4 `Authorization` header (the SDK always signs); the signature itself is not checked, as the secrets
//! here are the sandboxes' public test credentials.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Serving until dropped.
pub struct SecretsManagerDouble {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl SecretsManagerDouble {
    /// Serves `secrets` (ARN, value) on `addr` (port 0: a free one).
    pub async fn start_on(
        addr: SocketAddr,
        secrets: impl IntoIterator<Item = (String, String)>,
    ) -> std::io::Result<Self> {
        let secrets: Arc<BTreeMap<String, String>> = Arc::new(secrets.into_iter().collect());
        let router = Router::new()
            .route("/", post(get_secret_value))
            .with_state(secrets);
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, double = "secrets-manager", "test double server stopped");
            }
        });
        Ok(Self { addr, task })
    }

    /// `http://HOST:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for SecretsManagerDouble {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [("content-type", CONTENT_TYPE)],
        json!({ "__type": kind, "message": message }).to_string(),
    )
        .into_response()
}

async fn get_secret_value(
    State(secrets): State<Arc<BTreeMap<String, String>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if !header("authorization").is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 ")) {
        return error(
            StatusCode::BAD_REQUEST,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        );
    }
    if header("x-amz-target") != Some("secretsmanager.GetSecretValue") {
        return error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            "only GetSecretValue is served here",
        );
    }
    let Some(id) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["SecretId"].as_str().map(str::to_owned))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "SecretId is required",
        );
    };
    let Some((arn, value)) = secrets.get_key_value(&id) else {
        return error(
            StatusCode::BAD_REQUEST,
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret.",
        );
    };
    let name = arn.rsplit(':').next().unwrap_or(arn);
    (
        StatusCode::OK,
        [("content-type", CONTENT_TYPE)],
        json!({
            "ARN": arn,
            "Name": name,
            "SecretString": value,
            "VersionId": "00000000-0000-4000-8000-000000000001",
            "VersionStages": ["AWSCURRENT"],
            "CreatedDate": 1_764_547_200.0,
        })
        .to_string(),
    )
        .into_response()
}
