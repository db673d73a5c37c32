//! The provider's endpoints (see the module above for what each checks).

use super::{random_token, Grant, OidcState, RefreshGrant, CODE_LIFETIME};
use crate::support::lock;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

type St = State<Arc<OidcState>>;

pub(super) fn router(state: Arc<OidcState>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize_page).post(sign_in))
        .route("/token", post(token))
        .route("/revoke", post(revoke))
        .route("/logout", get(logout))
        .layer(axum::middleware::from_fn(cors))
        .with_state(state)
}

/// The discovery document, keys, token and revocation endpoints answer any origin (single-page apps call them
/// from the browser, as Cognito's, Okta's and Entra's allow).
async fn cors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if request.method() == Method::OPTIONS {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        return response;
    }
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

fn form(bytes: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

async fn discovery(State(s): St) -> Json<Value> {
    let issuer = s.issuer();
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "end_session_endpoint": format!("{issuer}/logout"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": ["openid", "email", "profile", "offline_access"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "email", "email_verified", "name", "nonce"],
    }))
}

async fn jwks(State(s): St) -> Json<Value> {
    let keys: Vec<Value> = lock(&s.keys).iter().map(|k| k.jwk()).collect();
    Json(json!({ "keys": keys }))
}

/// The authorization request's parameters, checked in the order a provider must: the client and its
/// `redirect_uri` first (a failure there is shown, never redirected), then the rest (redirected as an error).
struct AuthRequest {
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    code_challenge: String,
    nonce: Option<String>,
}

enum AuthProblem {
    /// Shown on the provider's page: the redirect URI cannot be trusted.
    Page(&'static str),
    /// Sent back to the client's redirect URI.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: &'static str,
    },
}

impl AuthRequest {
    fn parse(s: &OidcState, params: &HashMap<String, String>) -> Result<Self, AuthProblem> {
        let client_id = params.get("client_id").cloned().unwrap_or_default();
        let redirect_uri = params.get("redirect_uri").cloned().unwrap_or_default();
        {
            let clients = lock(&s.clients);
            let Some(client) = clients.get(&client_id) else {
                return Err(AuthProblem::Page("unknown client_id"));
            };
            if !client.redirect_uris.contains(&redirect_uri) {
                return Err(AuthProblem::Page(
                    "redirect_uri is not registered for this client",
                ));
            }
        }
        let state = params.get("state").cloned();
        let redirect = |error, description| AuthProblem::Redirect {
            redirect_uri: redirect_uri.clone(),
            state: state.clone(),
            error,
            description,
        };
        if params.get("response_type").map(String::as_str) != Some("code") {
            return Err(redirect(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
        let scope = params.get("scope").cloned().unwrap_or_default();
        if !scope.split(' ').any(|s| s == "openid") {
            return Err(redirect("invalid_scope", "scope must include openid"));
        }
        let challenge = params.get("code_challenge").cloned().unwrap_or_default();
        if params.get("code_challenge_method").map(String::as_str) != Some("S256")
            || challenge.len() != 43
        {
            return Err(redirect(
                "invalid_request",
                "PKCE is required: code_challenge with code_challenge_method=S256",
            ));
        }
        Ok(Self {
            client_id,
            redirect_uri,
            state,
            code_challenge: challenge,
            nonce: params.get("nonce").cloned(),
        })
    }
}

fn redirect_to(uri: &str, params: &[(&str, &str)]) -> Response {
    let mut url = url::Url::parse(uri).unwrap_or_else(|_| {
        url::Url::parse("http://invalid.invalid/").expect("a constant URL parses")
    });
    for (name, value) in params {
        url.query_pairs_mut().append_pair(name, value);
    }
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(location) = HeaderValue::from_str(url.as_str()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn problem_response(problem: AuthProblem) -> Response {
    match problem {
        AuthProblem::Page(why) => page(StatusCode::BAD_REQUEST, &error_body(why)),
        AuthProblem::Redirect {
            redirect_uri,
            state,
            error,
            description,
        } => {
            let mut params = vec![("error", error), ("error_description", description)];
            if let Some(state) = state.as_deref() {
                params.push(("state", state));
            }
            redirect_to(&redirect_uri, &params)
        }
    }
}

async fn authorize_page(State(s): St, RawQuery(query): RawQuery) -> Response {
    let params = form(query.unwrap_or_default().as_bytes());
    match AuthRequest::parse(&s, &params) {
        Ok(_) => page(StatusCode::OK, &sign_in_form(&params, None)),
        Err(problem) => problem_response(problem),
    }
}

async fn sign_in(State(s): St, body: Bytes) -> Response {
    let params = form(&body);
    let request = match AuthRequest::parse(&s, &params) {
        Ok(request) => request,
        Err(problem) => return problem_response(problem),
    };
    let email = params
        .get("email")
        .map(|e| e.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let password = params.get("password").cloned().unwrap_or_default();
    let known = lock(&s.agents)
        .get(&email)
        .is_some_and(|agent| agent.password == password);
    if !known {
        // The page again with the error, as providers answer a failed sign-in (200: the form is the answer).
        return page(
            StatusCode::OK,
            &sign_in_form(&params, Some("Wrong e-mail or password.")),
        );
    }
    let code = random_token();
    lock(&s.codes).insert(
        code.clone(),
        Grant {
            client_id: request.client_id,
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge,
            nonce: request.nonce,
            email,
            expires: Instant::now() + CODE_LIFETIME,
        },
    );
    let mut answer = vec![("code", code.as_str())];
    if let Some(state) = request.state.as_deref() {
        answer.push(("state", state));
    }
    redirect_to(&request.redirect_uri, &answer)
}

fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn tokens(
    s: &OidcState,
    email: &str,
    client_id: &str,
    nonce: Option<&str>,
    refresh: &str,
) -> Response {
    let lifetime = s.lifetime();
    let Some(id_token) = s.id_token(email, client_id, nonce, lifetime) else {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the user no longer exists",
        );
    };
    let mut response = Json(json!({
        "token_type": "Bearer",
        "id_token": id_token,
        // The access token is the ID token's twin here: nothing in this project calls a resource server with it.
        "access_token": id_token,
        "refresh_token": refresh,
        "expires_in": lifetime,
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn token(State(s): St, body: Bytes) -> Response {
    let params = form(&body);
    let get = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    let client_id = get("client_id");
    if !lock(&s.clients).contains_key(client_id) {
        return token_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client_id",
        );
    }
    match get("grant_type") {
        "authorization_code" => {
            // Removed on first use, good or bad: a code is worth one attempt.
            let Some(grant) = lock(&s.codes).remove(get("code")) else {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown or used code",
                );
            };
            if grant.expires < Instant::now() {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the code has expired",
                );
            }
            if grant.client_id != client_id || grant.redirect_uri != get("redirect_uri") {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "client_id or redirect_uri differ from the authorization request's",
                );
            }
            let verifier = get("code_verifier");
            let valid_verifier = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            if !valid_verifier
                || URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
                    != grant.code_challenge
            {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "code_verifier does not match the code_challenge",
                );
            }
            let refresh = random_token();
            lock(&s.refresh_tokens).insert(
                refresh.clone(),
                RefreshGrant {
                    client_id: client_id.to_owned(),
                    email: grant.email.clone(),
                },
            );
            tokens(
                &s,
                &grant.email,
                client_id,
                grant.nonce.as_deref(),
                &refresh,
            )
        }
        "refresh_token" => {
            let refresh = get("refresh_token");
            let email = match lock(&s.refresh_tokens).get(refresh) {
                Some(grant) if grant.client_id == client_id => grant.email.clone(),
                _ => {
                    return token_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "the refresh token is not valid",
                    )
                }
            };
            tokens(&s, &email, client_id, None, refresh)
        }
        _ => token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "use authorization_code or refresh_token",
        ),
    }
}

/// RFC 7009: the token is forgotten; an unknown token is not an error.
async fn revoke(State(s): St, body: Bytes) -> Response {
    let params = form(&body);
    if let Some(token) = params.get("token") {
        lock(&s.refresh_tokens).remove(token);
    }
    StatusCode::OK.into_response()
}

/// RP-initiated logout: back to `post_logout_redirect_uri` if it is one of the client's registered URIs.
async fn logout(State(s): St, RawQuery(query): RawQuery) -> Response {
    let params = form(query.unwrap_or_default().as_bytes());
    let target = params.get("post_logout_redirect_uri").filter(|uri| {
        let clients = lock(&s.clients);
        match params.get("client_id") {
            Some(id) => clients
                .get(id)
                .is_some_and(|c| c.redirect_uris.contains(uri)),
            None => clients.values().any(|c| c.redirect_uris.contains(uri)),
        }
    });
    match target {
        Some(uri) => redirect_to(uri, &[]),
        None => page(
            StatusCode::OK,
            "<h1>Signed out</h1><p>You can close this page.</p>",
        ),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn error_body(why: &str) -> String {
    format!(
        "<h1>Sign-in request refused</h1><p role=\"alert\">{}</p>",
        escape(why)
    )
}

/// The authorization request's parameters carried through the form.
const CARRIED: [&str; 8] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
];

fn sign_in_form(params: &HashMap<String, String>, error: Option<&str>) -> String {
    let hidden: String = CARRIED
        .iter()
        .filter_map(|name| {
            params.get(*name).map(|value| {
                format!(
                    "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                    escape(value)
                )
            })
        })
        .collect();
    let alert = error
        .map(|e| format!("<p role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let email = params.get("email").map(|e| escape(e)).unwrap_or_default();
    format!(
        "<h1>Sandbox identity provider</h1>\
         <p>Sign in as an agent (make dev: ada@agents.example or bob@agents.example, password sandbox-password).</p>\
         {alert}\
         <form method=\"post\" action=\"/authorize\">{hidden}\
         <label for=\"email\">E-mail</label><input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" value=\"{email}\" required autofocus>\
         <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form>"
    )
}

fn page(status: StatusCode, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in · sandbox identity provider</title>\
         <style>body{{font:15px system-ui,sans-serif;max-width:360px;margin:60px auto;padding:0 16px}}\
         label{{display:block;margin:12px 0 4px;font-weight:600}}input{{width:100%;padding:8px;font:inherit}}\
         button{{margin-top:16px;padding:8px 16px;font:inherit}}[role=alert]{{color:#b42318}}</style></head>\
         <body><main>{body}</main></body></html>"
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // No form-action: Chromium applies it to the redirect that follows the form, to the client's origin.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    response
}
