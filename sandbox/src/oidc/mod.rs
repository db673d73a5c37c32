//! A local double of an OpenID Connect provider (what Amazon Cognito, Google, Entra ID or Okta are to a deployed
//! agent console), for `make dev` and the tests: the parts a single-page app with authorization code + PKCE uses.
//!
//! * `GET /.well-known/openid-configuration` (discovery) and `GET /jwks` (the RS256 signing keys: `keys.rs`);
//! * `GET /authorize`: the sign-in page (fields "E-mail" and "Password", a "Sign in" button); `POST /authorize`
//!   checks the password and redirects to the client's `redirect_uri` with a one-time `code` and the `state`;
//! * `POST /token`: `authorization_code` (the code once, within a minute, with the same `redirect_uri` and client,
//!   and the PKCE `code_verifier` whose S256 hash is the `code_challenge`) and `refresh_token` grants; both answer an
//!   ID token (`iss`, `sub`, `aud`, `exp`, `iat`, `email`, `email_verified`, `name`, `nonce`);
//! * `POST /revoke` (RFC 7009) and `GET /logout` (RP-initiated logout): the refresh token stops working.
//!
//! Like a real provider it refuses an unknown client, a `redirect_uri` that is not registered (on the page, never by
//! redirecting there), `plain` PKCE or none, a wrong verifier, a reused or expired code, and — once an agent is
//! removed ([`OidcDouble::remove_agent`]) — their refresh token: a person removed from the provider gets no new
//! token. It keeps no browser session of its own, so every authorization shows the sign-in page.

mod keys;
mod routes;

use crate::support::{any_local_port, lock};
use keys::SigningKey;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;

/// How long a code may wait for its exchange.
const CODE_LIFETIME: Duration = Duration::from_secs(60);
/// An ID token's lifetime unless a test sets another (Cognito's default is an hour).
const DEFAULT_ID_TOKEN_LIFETIME: Duration = Duration::from_secs(3_600);

struct Agent {
    sub: String,
    name: String,
    password: String,
}

struct Client {
    redirect_uris: Vec<String>,
}

/// What a code stands for until it is exchanged.
struct Grant {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    email: String,
    expires: Instant,
}

struct RefreshGrant {
    client_id: String,
    email: String,
}

pub struct OidcState {
    issuer: Mutex<String>,
    /// The first signs; the others are still published (a rotation in progress).
    keys: Mutex<Vec<SigningKey>>,
    clients: Mutex<BTreeMap<String, Client>>,
    agents: Mutex<BTreeMap<String, Agent>>,
    codes: Mutex<HashMap<String, Grant>>,
    refresh_tokens: Mutex<HashMap<String, RefreshGrant>>,
    id_token_lifetime: Mutex<Duration>,
}

/// A running OpenID provider double on a loopback port; dropping it stops the server.
pub struct OidcDouble {
    state: Arc<OidcState>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for OidcDouble {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl OidcDouble {
    /// Starts on `127.0.0.1` with an OS-chosen port.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(any_local_port()).await
    }

    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(OidcState {
            issuer: Mutex::new(format!("http://{addr}")),
            keys: Mutex::new(vec![SigningKey::generate()?]),
            clients: Mutex::new(BTreeMap::new()),
            agents: Mutex::new(BTreeMap::new()),
            codes: Mutex::new(HashMap::new()),
            refresh_tokens: Mutex::new(HashMap::new()),
            id_token_lifetime: Mutex::new(DEFAULT_ID_TOKEN_LIFETIME),
        });
        let router = routes::router(state.clone());
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "the OpenID provider double stopped");
            }
        });
        Ok(Self { state, addr, task })
    }

    /// The issuer, `http://127.0.0.1:PORT`: the `iss` of its tokens and the base of every endpoint.
    pub fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Registers a public client (no secret: a single-page app) with the redirect URIs it may use.
    pub fn register_client(&self, client_id: &str, redirect_uris: &[&str]) {
        lock(&self.state.clients).insert(
            client_id.to_owned(),
            Client {
                redirect_uris: redirect_uris.iter().map(|u| (*u).to_owned()).collect(),
            },
        );
    }

    /// Adds a person who may sign in (e-mail compared case-insensitively).
    pub fn add_agent(&self, email: &str, name: &str, password: &str) {
        lock(&self.state.agents).insert(
            email.to_ascii_lowercase(),
            Agent {
                sub: uuid::Uuid::new_v4().to_string(),
                name: name.to_owned(),
                password: password.to_owned(),
            },
        );
    }

    /// Removes a person, as an administrator does at the provider: they cannot sign in, and their refresh tokens
    /// and unexchanged codes stop working. ID tokens already issued stay valid until they expire, as everywhere.
    pub fn remove_agent(&self, email: &str) {
        let email = email.to_ascii_lowercase();
        lock(&self.state.agents).remove(&email);
        lock(&self.state.refresh_tokens).retain(|_, grant| grant.email != email);
        lock(&self.state.codes).retain(|_, grant| grant.email != email);
    }

    /// A new signing key: it signs from now on, and the old one stays published (as providers rotate).
    pub fn rotate_key(&self) -> std::io::Result<()> {
        let key = SigningKey::generate()?;
        lock(&self.state.keys).insert(0, key);
        Ok(())
    }

    /// The lifetime of the ID tokens issued from now on.
    pub fn set_id_token_lifetime(&self, lifetime: Duration) {
        *lock(&self.state.id_token_lifetime) = lifetime;
    }

    /// An ID token for `email` and `client_id` as the token endpoint would issue it, expiring `lifetime_seconds`
    /// from now (negative: already expired); `None` for someone who cannot sign in. For tests that need a token
    /// without a browser.
    pub fn id_token(&self, email: &str, client_id: &str, lifetime_seconds: i64) -> Option<String> {
        self.state.id_token(
            &email.to_ascii_lowercase(),
            client_id,
            None,
            lifetime_seconds,
        )
    }

    /// Signs arbitrary claims with the provider's current key (tests of what a verifier must refuse).
    pub fn sign(&self, claims: &Value) -> String {
        lock(&self.state.keys)[0].sign(claims)
    }
}

impl OidcState {
    fn issuer(&self) -> String {
        lock(&self.issuer).clone()
    }

    fn id_token(
        &self,
        email: &str,
        client_id: &str,
        nonce: Option<&str>,
        lifetime_seconds: i64,
    ) -> Option<String> {
        let agents = lock(&self.agents);
        let agent = agents.get(email)?;
        let now = unix_now();
        let mut claims = json!({
            "iss": self.issuer(),
            "sub": agent.sub,
            "aud": client_id,
            "iat": now,
            "auth_time": now,
            "exp": now + lifetime_seconds,
            "email": email,
            "email_verified": true,
            "name": agent.name,
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        Some(lock(&self.keys)[0].sign(&claims))
    }

    fn lifetime(&self) -> i64 {
        lock(&self.id_token_lifetime).as_secs() as i64
    }
}
