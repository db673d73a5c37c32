//! Who is calling, checked as Stream checks it.
//!
//! REST: `api_key` query parameter, the raw JWT in `Authorization` (no `Bearer`), `Stream-Auth-Type: jwt`. The
//! websocket `/connect` carries the same three as query parameters (`api_key`, `authorization`,
//! `stream-auth-type`). A token is HS256 over `{"server": true}` (the backend: every permission) or
//! `{"user_id", "iat"?, "exp"?}` (a user: the channel type's grants apply). A user token is refused when it is
//! expired (code 40), issued in the future, or issued (`iat`) before the user's `revoke_tokens_issued_before` —
//! which deleting a user also sets, so a deleted user's tokens stop working (code 40, as Stream answers).
//!
//! With the app setting `disable_auth_checks` on, as on Stream, a user token is taken at its word: its signature is
//! not checked, so anyone holding the public API key can call as any user (a server token still needs the secret).

use super::errors::StreamError;
use super::StreamState;
use crate::support::{lock, Req};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Value};
use std::time::Duration;
use time::OffsetDateTime;

/// Tokens issued a little in the future are accepted (clock skew), as Stream does.
const IAT_LEEWAY_SECS: i64 = 5;

/// Who is calling: the server (every permission) or a user (the channel type's grants).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Actor {
    Server,
    User(String),
}

impl Actor {
    /// Whom a call acts as: the calling user, or for the server the user the request names in `field` (required,
    /// as Stream requires it server-side).
    pub(crate) fn acting_user(
        &self,
        endpoint: &str,
        given: Option<&str>,
        field: &str,
    ) -> Result<String, StreamError> {
        match (self, given) {
            (Self::User(user), _) => Ok(user.clone()),
            (Self::Server, Some(user)) if !user.is_empty() => Ok(user.to_owned()),
            (Self::Server, _) => Err(StreamError::input(
                endpoint,
                format!("{field} is a required field when using server side auth"),
            )),
        }
    }
}

/// A server-side token (`{"server": true}`, HS256), as the real server SDKs create.
pub fn server_token(secret: &str) -> Result<String, jsonwebtoken::errors::Error> {
    encode(
        &Header::new(Algorithm::HS256),
        &json!({ "server": true }),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

/// A user token (`{"user_id", "iat", "exp"?}`, HS256); `ttl: None` = never expires.
pub fn user_token(
    secret: &str,
    user_id: &str,
    ttl: Option<Duration>,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let mut claims = json!({ "user_id": user_id, "iat": now });
    if let Some(ttl) = ttl {
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        claims["exp"] = json!(now.saturating_add(ttl));
    }
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

impl StreamState {
    /// Stream's REST auth: `api_key` query parameter, raw JWT in `Authorization`, `Stream-Auth-Type: jwt`.
    /// `allow_user: false` for server-only endpoints (app settings, channel types, user deletion).
    pub(crate) fn authenticate(&self, req: &Req, allow_user: bool) -> Result<Actor, StreamError> {
        let query = req.query();
        self.check_api_key(query.get("api_key").map(String::as_str))?;
        let Some(token) = req
            .header("authorization")
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return Err(StreamError::auth(
                5,
                "JWTAuth error: the Authorization header is missing",
            ));
        };
        if token.len() >= 7 && token[..7].eq_ignore_ascii_case("bearer ") {
            return Err(StreamError::auth(
                5,
                "JWTAuth error: token contains an invalid number of segments (send the raw JWT, without a Bearer prefix)",
            ));
        }
        check_auth_type(req.header("stream-auth-type"))?;
        match self.verify_token(token)? {
            Actor::User(_) if !allow_user => Err(StreamError {
                status: 403,
                code: 17,
                message: "this endpoint requires server-side authentication".to_owned(),
            }),
            actor => Ok(actor),
        }
    }

    pub(crate) fn check_api_key(&self, key: Option<&str>) -> Result<(), StreamError> {
        match key {
            None => Err(StreamError::auth(2, "api_key not found")),
            Some(key) if key != self.api_key => {
                Err(StreamError::auth(2, &format!("api_key not valid: {key}")))
            }
            Some(_) => Ok(()),
        }
    }

    /// Signature, `exp`, `iat` (not in the future, not before the user's revocation), and the claims' shape.
    pub(crate) fn verify_token(&self, token: &str) -> Result<Actor, StreamError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        validation.validate_aud = false;
        validation.leeway = 0;
        let key = DecodingKey::from_secret(self.secret.as_bytes());
        let unchecked = || {
            jsonwebtoken::dangerous::insecure_decode_claims::<Value>(token)
                .ok()
                .filter(|claims| claims.get("server").is_none())
        };
        let claims = match decode::<Value>(token, &key, &validation) {
            Ok(data) => data.claims,
            Err(e)
                if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::InvalidSignature)
                    && lock(&self.data).setting_on("disable_auth_checks") =>
            {
                match unchecked() {
                    Some(claims) => claims,
                    None => return Err(StreamError::auth(5, "JWTAuth error: signature is not valid")),
                }
            }
            Err(e) => {
                return Err(match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                        StreamError::auth(40, "JWTAuth error: token is expired (exp)")
                    }
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => StreamError::auth(
                        5,
                        "JWTAuth error: signature is not valid. Make sure the token is created using the secret for \
                         this API key",
                    ),
                    _ => StreamError::auth(5, &format!("JWTAuth error: token is not valid: {e}")),
                })
            }
        };
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let iat = claims.get("iat").and_then(Value::as_i64);
        if iat.is_some_and(|iat| iat > now + IAT_LEEWAY_SECS) {
            return Err(StreamError::auth(
                5,
                "JWTAuth error: token used before issue at (iat)",
            ));
        }
        if claims.get("server").and_then(Value::as_bool) == Some(true) {
            return Ok(Actor::Server);
        }
        let Some(user) = claims.get("user_id").and_then(Value::as_str) else {
            return Err(StreamError::auth(
                5,
                "JWTAuth error: token has neither a server nor a user_id claim",
            ));
        };
        // A token without `iat` cannot prove it came after a revocation, so a revocation refuses it too.
        if let Some(before_ms) = lock(&self.data).revocations.get(user) {
            if iat.is_none_or(|iat| iat.saturating_mul(1000) < *before_ms) {
                return Err(StreamError::auth(
                    40,
                    "This token has been revoked, please generate a new token",
                ));
            }
        }
        Ok(Actor::User(user.to_owned()))
    }
}

pub(crate) fn check_auth_type(value: Option<&str>) -> Result<(), StreamError> {
    if value.is_some_and(|t| t.eq_ignore_ascii_case("jwt")) {
        Ok(())
    } else {
        Err(StreamError::auth(
            5,
            "Stream-Auth-Type header must be 'jwt'",
        ))
    }
}
