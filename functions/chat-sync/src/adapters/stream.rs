//! Stream Chat server-side client (server JWT, users, channels), visitor tokens and webhook signatures.

use super::backoff::Backoff;
use super::http::send_json;
use crate::domain::{ChannelRef, ContactId, Email, Identity, Timestamp, UserId};
use crate::ports::{ChatService, ChatUser, UpstreamError};
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use jsonwebtoken::{encode, EncodingKey, Header};
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::Sha256;
use std::time::{Duration, Instant};

const SERVICE: &str = "Stream";

/// Stream's limit of users per `POST /users/delete`.
const MAX_USERS_PER_DELETE: usize = 100;
/// The first wait before asking after a task, and the longest between two asks: Stream runs a deletion in the
/// background, often in well under a second, sometimes in many.
const TASK_POLL: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(1));

pub const DEFAULT_BASE_URL: &str = "https://chat.stream-io-api.com";

#[derive(Clone, Debug)]
pub struct StreamClient {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
    secret: SecretString,
    /// A server token is as good as the secret: kept secret too.
    server_token: SecretString,
    per_attempt: Duration,
    backoff: Backoff,
}

#[derive(Serialize)]
struct ServerClaims {
    server: bool,
}

#[derive(Serialize)]
struct UserClaims<'a> {
    user_id: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("could not sign a Stream token: {0}")]
pub struct TokenError(String);

impl StreamClient {
    /// A client on the shared `http` client (`adapters::http::client`).
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        api_key: &str,
        secret: SecretString,
    ) -> Result<Self, TokenError> {
        let server_token = SecretString::from(sign(&ServerClaims { server: true }, &secret)?);
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            secret,
            server_token,
            per_attempt: Duration::from_secs(3),
            backoff: Backoff::new(3, Duration::from_millis(200), Duration::from_secs(1)),
        })
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The signer of visitor tokens for this app.
    pub fn tokens(&self) -> VisitorTokens {
        VisitorTokens {
            api_key: self.api_key.clone(),
            secret: self.secret.clone(),
            // The SDK defaults to Stream's own URL; any other (a regional edge, the sandbox) must reach the widget.
            base_url: (self.base_url != DEFAULT_BASE_URL).then(|| self.base_url.clone()),
        }
    }

    /// One server-side request: `api_key` query, raw JWT in `Authorization`, `Stream-Auth-Type: jwt`.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        deadline: Instant,
    ) -> Result<Value, UpstreamError> {
        let request = request
            .query(&[("api_key", self.api_key.as_str())])
            .header(
                reqwest::header::AUTHORIZATION,
                self.server_token.expose_secret(),
            )
            .header("stream-auth-type", "jwt");
        send_json(SERVICE, request, deadline, self.per_attempt, rate_limit).await
    }

    pub(super) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        deadline: Instant,
    ) -> Result<Value, UpstreamError> {
        self.call_with_query(method, path, &[], body, deadline)
            .await
    }

    /// [`Self::call`] with query parameters (URL-encoded here).
    pub(super) async fn call_with_query(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        deadline: Instant,
    ) -> Result<Value, UpstreamError> {
        let url = format!("{}{path}", self.base_url);
        let attempt = |_| {
            let mut request = self.http.request(method.clone(), &url).query(query);
            if let Some(body) = body {
                request = request.json(body);
            }
            self.send(request, deadline)
        };
        self.backoff.retry(deadline, attempt).await
    }

    /// App settings (`GET /app`), for setup automation.
    pub async fn app_settings(&self, deadline: Instant) -> Result<Value, UpstreamError> {
        self.call(reqwest::Method::GET, "/app", None, deadline)
            .await
    }

    /// Partial update of app settings (`PATCH /app`): only the given fields change.
    pub async fn update_app_settings(
        &self,
        settings: &Value,
        deadline: Instant,
    ) -> Result<Value, UpstreamError> {
        self.call(reqwest::Method::PATCH, "/app", Some(settings), deadline)
            .await
    }
}

/// Issues client-side (visitor) tokens: HS256 over `user_id`, `iat` and `exp`, so a leaked token expires.
#[derive(Clone)]
pub struct VisitorTokens {
    api_key: String,
    secret: SecretString,
    base_url: Option<String>,
}

impl VisitorTokens {
    /// Tokens for an app on Stream's default base URL.
    pub fn new(api_key: &str, secret: SecretString) -> Self {
        Self {
            api_key: api_key.to_owned(),
            secret,
            base_url: None,
        }
    }

    /// The public api key the widget connects with.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The base URL the widget's SDK must use, when it is not the SDK's default (`DEFAULT_BASE_URL`).
    pub fn base_url(&self) -> Option<&str> {
        self.base_url.as_deref()
    }

    /// A token for `user`, valid from `now` for `ttl`. Returns the token and its expiry.
    pub fn issue(
        &self,
        user: &UserId,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<(String, Timestamp), TokenError> {
        let exp = now.unix_seconds() + ttl.as_secs() as i64;
        let expires_at = Timestamp::from_unix_seconds(exp)
            .ok_or_else(|| TokenError("expiry out of range".into()))?;
        let claims = UserClaims {
            user_id: user.as_str(),
            iat: now.unix_seconds(),
            exp,
        };
        Ok((sign(&claims, &self.secret)?, expires_at))
    }
}

fn sign<T: Serialize>(claims: &T, secret: &SecretString) -> Result<String, TokenError> {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret.expose_secret().as_bytes()),
    )
    .map_err(|e| TokenError(e.to_string()))
}

/// Stream's 429 carries `X-RateLimit-Reset` (unix seconds) for the endpoint's window.
fn rate_limit(headers: &HeaderMap, _body: &str) -> (Option<Duration>, bool) {
    let reset = headers
        .get("x-ratelimit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let wait = reset.map(|reset| {
        let seconds = (reset - Timestamp::now().unix_seconds()).clamp(0, 60) as u64;
        Duration::from_secs(seconds).max(Duration::from_millis(100))
    });
    (wait, false)
}

#[async_trait]
impl ChatService for StreamClient {
    async fn upsert_users(
        &self,
        users: &[ChatUser],
        deadline: Instant,
    ) -> Result<(), UpstreamError> {
        let mut map = Map::new();
        for user in users {
            map.insert(
                user.id.as_str().to_owned(),
                json!({ "id": user.id.as_str(), "name": user.name, "role": user.role }),
            );
        }
        let body = json!({ "users": map });
        self.call(reqwest::Method::POST, "/users", Some(&body), deadline)
            .await
            .map(|_| ())
    }

    async fn create_channel(
        &self,
        channel: &ChannelRef,
        created_by: &UserId,
        members: &[UserId],
        identity: Identity,
        deadline: Instant,
    ) -> Result<(), UpstreamError> {
        // Members as `ChannelMemberRequest` objects (`{"user_id"}`), as Stream's document has them; bare ids are a
        // legacy form the API still takes but no longer documents.
        let members: Vec<Value> = members
            .iter()
            .map(|m| json!({ "user_id": m.as_str() }))
            .collect();
        let body = json!({
            "data": {
                "created_by_id": created_by.as_str(),
                "members": members,
                "custom": { "visitor_identity": identity.as_str() },
            },
            "state": false,
            "watch": false,
            "presence": false,
        });
        let path = format!(
            "/channels/{}/{}/query",
            channel.channel_type, channel.channel_id
        );
        self.call(reqwest::Method::POST, &path, Some(&body), deadline)
            .await
            .map(|_| ())
    }

    async fn describe_contact(
        &self,
        channel: &ChannelRef,
        contact_id: &ContactId,
        email: &Email,
        deadline: Instant,
    ) -> Result<(), UpstreamError> {
        // `PATCH /channels/{type}/{id}` (UpdateChannelPartial): these two fields, nothing else touched.
        let body = json!({ "set": {
            "contact_id": contact_id.as_str(),
            "visitor_email": email.as_str(),
        } });
        let path = format!("/channels/{}/{}", channel.channel_type, channel.channel_id);
        self.call(reqwest::Method::PATCH, &path, Some(&body), deadline)
            .await
            .map(|_| ())
    }

    async fn delete_channels(
        &self,
        channels: &[ChannelRef],
        deadline: Instant,
    ) -> Result<(), UpstreamError> {
        for channel in channels {
            let path = format!(
                "/channels/{}/{}?hard_delete=true",
                channel.channel_type, channel.channel_id
            );
            match self
                .call(reqwest::Method::DELETE, &path, None, deadline)
                .await
            {
                // Gone already: deleted with its visitor, or by a retried erasure.
                Ok(_) | Err(UpstreamError::Rejected { status: 404, .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    async fn delete_users(&self, users: &[UserId], deadline: Instant) -> Result<(), UpstreamError> {
        // Hard, with their messages and their conversation channels (hard user deletion requires both hard).
        let modes = [
            ("user", "hard"),
            ("messages", "hard"),
            ("conversations", "hard"),
        ];
        self.delete_users_as(users, &modes, deadline).await
    }

    async fn user_exists(&self, user: &UserId, deadline: Instant) -> Result<bool, UpstreamError> {
        Ok(self.find_user(user, deadline).await?.is_some())
    }

    async fn prune_users(&self, users: &[UserId], deadline: Instant) -> Result<(), UpstreamError> {
        // No `messages` or `conversations` mode: both stay.
        self.delete_users_as(users, &[("user", "pruning")], deadline)
            .await
    }
}

impl StreamClient {
    /// `POST /users/delete` with `modes`, the only way Stream's published API deletes users. It answers a task; the
    /// users are deleted only once the task has completed, so each batch's task is followed to the end before this
    /// returns. A user Stream no longer has is skipped by the task: a repeated erasure completes too.
    async fn delete_users_as(
        &self,
        users: &[UserId],
        modes: &[(&str, &str)],
        deadline: Instant,
    ) -> Result<(), UpstreamError> {
        for batch in users.chunks(MAX_USERS_PER_DELETE) {
            let mut body = json!({
                "user_ids": batch.iter().map(UserId::as_str).collect::<Vec<_>>(),
            });
            for (mode, value) in modes {
                body[*mode] = json!(value);
            }
            let answer = self
                .call(
                    reqwest::Method::POST,
                    "/users/delete",
                    Some(&body),
                    deadline,
                )
                .await?;
            let task = task_id(&answer)?;
            self.await_task(task, deadline).await?;
        }
        Ok(())
    }

    /// The user with this id, as `GET /users` (query users) shows it; `None` if Stream has none.
    pub(super) async fn find_user(
        &self,
        id: &UserId,
        deadline: Instant,
    ) -> Result<Option<Value>, UpstreamError> {
        let payload = json!({
            "filter_conditions": { "id": { "$eq": id.as_str() } },
            "limit": 1,
        })
        .to_string();
        let found = self
            .call_with_query(
                reqwest::Method::GET,
                "/users",
                &[("payload", payload.as_str())],
                None,
                deadline,
            )
            .await?;
        Ok(found
            .get("users")
            .and_then(Value::as_array)
            .and_then(|users| {
                users
                    .iter()
                    .find(|u| u.get("id").and_then(Value::as_str) == Some(id.as_str()))
            })
            .cloned())
    }

    /// Asks `GET /tasks/{id}` until the task has `completed`, waiting longer between asks (up to
    /// [`TASK_POLL`]`.1`), within `deadline`.
    ///
    /// A task that `failed` may have done part of its work: [`UpstreamError::Indeterminate`], which the caller
    /// retries with a new task (erasure answers 503 and HubSpot redelivers). One still running when no ask fits
    /// before `deadline` is a [`UpstreamError::Timeout`]: it may yet complete.
    async fn await_task(&self, task_id: &str, deadline: Instant) -> Result<Value, UpstreamError> {
        let path = format!("/tasks/{task_id}");
        let mut wait = TASK_POLL.0;
        loop {
            if Instant::now() + wait >= deadline {
                return Err(UpstreamError::Timeout { service: SERVICE });
            }
            tokio::time::sleep(wait).await;
            let task = self
                .call(reqwest::Method::GET, &path, None, deadline)
                .await?;
            match task.get("status").and_then(Value::as_str) {
                Some("completed") => return Ok(task),
                Some("failed") => {
                    let error = task.get("error");
                    let field = |name: &str| {
                        error
                            .and_then(|e| e.get(name))
                            .and_then(Value::as_str)
                            .unwrap_or("unknown")
                            .to_owned()
                    };
                    return Err(UpstreamError::Indeterminate {
                        service: SERVICE,
                        detail: format!(
                            "task {task_id} failed: {}: {}",
                            field("type"),
                            field("description")
                        ),
                    });
                }
                // Waiting, pending, running: not done yet.
                Some(_) => {}
                None => {
                    return Err(UpstreamError::Protocol {
                        service: SERVICE,
                        detail: format!("task {task_id} has no status"),
                    })
                }
            }
            wait = (wait * 2).min(TASK_POLL.1);
        }
    }
}

/// The task id of a `POST /users/delete` answer. It goes into a path, so only the characters of Stream's ids
/// (UUIDs) are taken: anything else is an answer we do not understand.
fn task_id(answer: &Value) -> Result<&str, UpstreamError> {
    answer
        .get("task_id")
        .and_then(Value::as_str)
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .ok_or_else(|| UpstreamError::Protocol {
            service: SERVICE,
            detail: "the deletion's answer has no usable task_id".to_owned(),
        })
}

/// Checks Stream's `X-Signature`: lowercase hex HMAC-SHA256 of the exact body bytes with the app secret.
/// The comparison is constant-time (`verify_slice`).
pub fn verify_signature(secret: &str, body: &[u8], signature: &str) -> bool {
    let Ok(expected) = hex::decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// Signs a body the way Stream does (used by tests and the event re-signing tool).
pub fn sign_body(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC accepts keys of any length; this arm cannot be reached.
        Err(_) => return String::new(),
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "porewqKAFDSAKZssecretsercretfads";
    const VECTOR: &str = "e527a6ad4993a4c9a30680c8be4b3eda1c36ab104f1f7d39c744bd27016a9624";

    #[test]
    fn reference_test_vector() {
        assert_eq!(sign_body(SECRET, br#"{"a":1}"#), VECTOR);
        assert!(verify_signature(SECRET, br#"{"a":1}"#, VECTOR));
    }

    #[test]
    fn only_a_base_url_other_than_streams_default_is_handed_to_the_widget() {
        let tokens = |base_url: &str| {
            let http = crate::adapters::http::client().expect("an HTTP client");
            StreamClient::new(http, base_url, "key", SECRET.into())
                .expect("client")
                .tokens()
        };
        assert_eq!(tokens(DEFAULT_BASE_URL).base_url(), None);
        assert_eq!(tokens("https://chat.stream-io-api.com/").base_url(), None);
        assert_eq!(
            tokens("http://127.0.0.1:4100/").base_url(),
            Some("http://127.0.0.1:4100")
        );
    }

    #[test]
    fn rejects_tampering_wrong_secret_and_garbage() {
        assert!(!verify_signature(SECRET, br#"{"a":2}"#, VECTOR));
        assert!(!verify_signature("another-secret", br#"{"a":1}"#, VECTOR));
        assert!(!verify_signature(SECRET, br#"{"a":1}"#, ""));
        assert!(!verify_signature(SECRET, br#"{"a":1}"#, "zz"));
        assert!(!verify_signature(SECRET, br#"{"a":1}"#, &VECTOR[..62]));
    }
}
