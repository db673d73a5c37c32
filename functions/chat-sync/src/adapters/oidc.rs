//! Verifies an agent's OpenID Connect ID token against the identity provider's published keys: the check the
//! agent-session function makes itself, behind API Gateway's JWT authorizer, so that a misconfigured route or a
//! direct invocation cannot hand out a Stream token.
//!
//! The provider is found by its issuer URL alone (OpenID Connect Discovery): `{issuer}/.well-known/openid-configuration`
//! names the `jwks_uri`, whose keys are cached by `kid`. A token signed with a `kid` the cache lacks makes one
//! refetch (key rotation), at most [`MISS_REFETCHES`] per [`MISS_WINDOW`], so forged `kid`s cannot make us hammer
//! the provider; the whole set is refetched after [`KEYS_MAX_AGE`] in any case, so a key the provider withdrew
//! stops verifying.
//!
//! Invariants:
//! - Only `RS256` is accepted (never `none`, never HMAC, whatever the header says), with a `kid` that one of the
//!   issuer's published RSA signing keys has.
//! - `iss` is exactly the configured issuer (and the discovery document must say so too); `aud` contains, or
//!   `client_id` is, the configured audience; `exp` has not passed and `nbf` (if present) has, with [`LEEWAY`].
//! - The token names the person by `sub` and carries an `email` the provider has not marked unverified.
//! - Nothing in a token is believed before its signature verifies, and a token is never logged or stored.

use crate::domain::{Email, Timestamp};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Clock difference tolerated between the provider and us.
pub const LEEWAY: Duration = Duration::from_secs(60);
/// Refetches for `kid`s we do not know: at most this many per [`MISS_WINDOW`].
pub const MISS_REFETCHES: usize = 5;
pub const MISS_WINDOW: Duration = Duration::from_secs(60);
/// The keys are refetched after this long even if every `kid` is known.
pub const KEYS_MAX_AGE: Duration = Duration::from_secs(3_600);
/// Each request to the provider (discovery, keys).
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest token accepted: a real ID token is 1-2 KB.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The person an ID token vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentIdentity {
    pub issuer: String,
    pub subject: String,
    pub email: Email,
    /// The `name` claim, if the provider sends one.
    pub name: Option<String>,
    /// The token's `exp`: no session outlives the proof it was given for.
    pub expires_at: Timestamp,
}

/// Why a token proves nothing. Each is the caller's to fix by signing in again; none says more about a token
/// whose signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OidcRefusal {
    #[error("the token is not a JWT this service accepts")]
    Malformed,
    #[error("the token's signature does not verify with the identity provider's keys")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by another identity provider")]
    WrongIssuer,
    #[error("the token was issued for another application")]
    WrongAudience,
    #[error("the token carries no verified e-mail address")]
    NoEmail,
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error(transparent)]
    Refused(#[from] OidcRefusal),
    /// The provider's discovery document or keys could not be read: nobody can be verified until it answers.
    #[error("the identity provider's keys could not be read: {0}")]
    Unavailable(String),
}

struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    fetched: Instant,
}

#[derive(Default)]
struct Cache {
    keys: Option<Keys>,
    /// When unknown `kid`s made us refetch, within the last [`MISS_WINDOW`].
    misses: std::collections::VecDeque<Instant>,
}

pub struct OidcVerifier {
    http: reqwest::Client,
    issuer: String,
    audience: String,
    /// One fetch at a time; whoever waits on it sees the keys the fetch brought.
    cache: Mutex<Cache>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    aud: Option<Audience>,
    client_id: Option<String>,
    email: Option<String>,
    email_verified: Option<serde_json::Value>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl OidcVerifier {
    /// `issuer` exactly as the provider writes it in `iss` (no trailing slash added or removed); `audience` the
    /// console's client id; `http` the shared client (`adapters::http::client`).
    pub fn new(http: reqwest::Client, issuer: &str, audience: &str) -> Self {
        Self {
            http,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            cache: Mutex::new(Cache::default()),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The identity `token` vouches for, or why it vouches for nothing.
    pub async fn verify(&self, token: &str) -> Result<AgentIdentity, OidcError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(OidcRefusal::Malformed.into());
        }
        let header = decode_header(token).map_err(|_| OidcRefusal::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(OidcRefusal::BadSignature.into());
        }
        let kid = header.kid.ok_or(OidcRefusal::BadSignature)?;
        let key = self.key(&kid).await?.ok_or(OidcRefusal::BadSignature)?;

        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_aud = false; // `aud` or `client_id`: checked below.
        validation.validate_nbf = true;
        validation.leeway = LEEWAY.as_secs();
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let claims = decode::<Claims>(token, &key, &validation)
            .map_err(|error| {
                use jsonwebtoken::errors::ErrorKind;
                match error.kind() {
                    ErrorKind::ExpiredSignature => OidcRefusal::Expired,
                    ErrorKind::ImmatureSignature => OidcRefusal::NotYetValid,
                    ErrorKind::InvalidIssuer => OidcRefusal::WrongIssuer,
                    ErrorKind::InvalidSignature => OidcRefusal::BadSignature,
                    _ => OidcRefusal::Malformed,
                }
            })?
            .claims;
        let audience_matches = match &claims.aud {
            Some(Audience::One(aud)) => *aud == self.audience,
            Some(Audience::Many(auds)) => auds.contains(&self.audience),
            None => claims.client_id.as_deref() == Some(self.audience.as_str()),
        };
        if !audience_matches {
            return Err(OidcRefusal::WrongAudience.into());
        }
        if claims.sub.is_empty() || claims.sub.len() > 255 {
            return Err(OidcRefusal::Malformed.into());
        }
        // Some providers send `email_verified` as the string "true" (Cognito did for years).
        let unverified = match &claims.email_verified {
            Some(serde_json::Value::Bool(verified)) => !verified,
            Some(serde_json::Value::String(verified)) => verified != "true",
            _ => false,
        };
        let email = claims
            .email
            .as_deref()
            .filter(|_| !unverified)
            .and_then(|email| Email::parse(email).ok())
            .ok_or(OidcRefusal::NoEmail)?;
        let expires_at = Timestamp::from_unix_seconds(claims.exp).ok_or(OidcRefusal::Malformed)?;
        Ok(AgentIdentity {
            issuer: self.issuer.clone(),
            subject: claims.sub,
            email,
            name: claims.name.filter(|name| !name.trim().is_empty()),
            expires_at,
        })
    }

    /// The key for `kid`: from the cache, or after a refetch if the cache is old or lacks it (and was not just
    /// refetched).
    async fn key(&self, kid: &str) -> Result<Option<DecodingKey>, OidcError> {
        let mut cache = self.cache.lock().await;
        let now = Instant::now();
        while cache
            .misses
            .front()
            .is_some_and(|at| now.duration_since(*at) >= MISS_WINDOW)
        {
            cache.misses.pop_front();
        }
        let stale = match cache.keys.as_ref() {
            None => true,
            Some(cached) if cached.fetched.elapsed() >= KEYS_MAX_AGE => true,
            Some(cached) if !cached.by_kid.contains_key(kid) => {
                let allowed = cache.misses.len() < MISS_REFETCHES;
                if allowed {
                    cache.misses.push_back(now);
                }
                allowed
            }
            Some(_) => false,
        };
        let keys = &mut cache.keys;
        if stale {
            match self.fetch().await {
                Ok(by_kid) => {
                    *keys = Some(Keys {
                        by_kid,
                        fetched: Instant::now(),
                    })
                }
                // Keys we have still verify what they verified; only an empty cache is an outage.
                Err(error) if keys.is_none() => return Err(error),
                Err(error) => {
                    tracing::warn!(%error, "could not refresh the identity provider's keys")
                }
            }
        }
        Ok(keys.as_ref().and_then(|k| k.by_kid.get(kid).cloned()))
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, OidcError> {
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let discovery: Discovery = self.get_json(&discovery_url).await?;
        if discovery.issuer != self.issuer {
            return Err(OidcError::Unavailable(format!(
                "the discovery document names issuer {:?}, not the configured one",
                discovery.issuer
            )));
        }
        let set: JwkSet = self.get_json(&discovery.jwks_uri).await?;
        let keys: HashMap<String, DecodingKey> = set
            .keys
            .iter()
            .filter(|jwk| matches!(jwk.algorithm, AlgorithmParameters::RSA(_)))
            .filter(|jwk| {
                !matches!(&jwk.common.public_key_use, Some(usage) if *usage != PublicKeyUse::Signature)
            })
            .filter(|jwk| {
                matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256))
            })
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                DecodingKey::from_jwk(jwk).ok().map(|key| (kid, key))
            })
            .collect();
        tracing::info!(
            keys = keys.len(),
            "fetched the identity provider's signing keys"
        );
        Ok(keys)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let response = self
            .http
            .get(url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(OidcError::Unavailable(format!(
                "{url} answered {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|e| OidcError::Unavailable(format!("{url}: {}", e.without_url())))
    }
}
