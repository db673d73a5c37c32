//! `POST /agent-sessions`: an agent signed in at the identity provider gets a Stream session of their own.

use crate::support::{
    deliver, http_request, json_body, register_visitor, TestApp, STREAM_KEY, STREAM_SECRET,
};
use chat_sync::adapters::stream_access::AGENT_ROLE;
use chat_sync::config::{AgentSessionSettings, AllowedOrigins};
use chat_sync::domain::ChannelType;
use chat_sync::handlers::agent_sessions::AgentSessions;
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use lambda_http::http::StatusCode;
use sandbox::OidcDouble;
use serde_json::{json, Value};
use std::sync::Arc;

const CLIENT_ID: &str = "agent-console";
const CONSOLE: &str = "https://console.example.com";

async fn provider() -> OidcDouble {
    let oidc = OidcDouble::start()
        .await
        .expect("the OpenID provider double");
    oidc.register_client(CLIENT_ID, &[&format!("{CONSOLE}/")]);
    oidc.add_agent("ada@agents.example", "Ada Agent", "sandbox-password");
    oidc.add_agent("bob@agents.example", "Bob Agent", "sandbox-password");
    oidc
}

fn sessions(app: &TestApp, oidc: &OidcDouble) -> Arc<AgentSessions> {
    app.agent_sessions_with(AgentSessionSettings {
        oidc_issuer: oidc.issuer(),
        oidc_audience: CLIENT_ID.to_owned(),
        channel_type: ChannelType::parse("messaging").expect("valid"),
        session_ttl: AgentSessionSettings::MAX_SESSION,
        console_origins: AllowedOrigins::parse(CONSOLE).expect("origin"),
        hubspot_portal_id: Some("12345".to_owned()),
    })
}

async fn open(handler: &AgentSessions, token: Option<&str>) -> (StatusCode, Value) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("origin", CONSOLE)];
    if let Some(bearer) = bearer.as_deref() {
        headers.push(("authorization", bearer));
    }
    let response = handler.handle(http_request("POST", "", &headers)).await;
    (response.status(), json_body(&response))
}

fn stream_claims(token: &str) -> Value {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_aud = false;
    decode::<Value>(
        token,
        &DecodingKey::from_secret(STREAM_SECRET.as_bytes()),
        &validation,
    )
    .expect("a Stream token signed with the app secret")
    .claims
}

/// Client-side REST as Stream's SDK calls it with a user token.
async fn as_user(app: &TestApp, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!(
            "{}{path}?api_key={STREAM_KEY}",
            app.stream.base_url()
        ))
        .header("authorization", token)
        .header("stream-auth-type", "jwt")
        .json(body)
        .send()
        .await
        .expect("the Stream double answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_signed_in_agent_gets_an_hours_session_as_their_own_stream_user_and_answers_as_agent() {
    let app = TestApp::start().await;
    let oidc = provider().await;
    let handler = sessions(&app, &oidc);
    let (contact, _visitor, channel) = register_visitor(&app, "Grace", "grace@example.com").await;

    let id_token = oidc
        .id_token("ada@agents.example", CLIENT_ID, 3_600)
        .expect("Ada signs in");
    let (status, session) = open(&handler, Some(&id_token)).await;
    assert_eq!(status, 200, "{session}");
    let user_id = session["userId"].as_str().expect("userId").to_owned();
    assert!(
        user_id.starts_with("agent-") && user_id.len() == 46,
        "{user_id}"
    );
    assert_eq!(session["userName"], "Ada Agent");
    assert_eq!(session["role"], AGENT_ROLE);
    assert_eq!(session["channelType"], "messaging");
    assert_eq!(session["hubspotPortalId"], "12345");
    assert_eq!(session["apiKey"], STREAM_KEY);
    let token = session["token"].as_str().expect("token").to_owned();
    let claims = stream_claims(&token);
    assert_eq!(claims["user_id"], user_id.as_str());
    let lifetime = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert!((1..=3_600).contains(&lifetime), "{claims}");
    // The agent's own Stream user, with the agents' role; the e-mail is not written to Stream.
    let stored = app
        .stream
        .users()
        .into_iter()
        .find(|u| u.id == user_id)
        .expect("the agent's user exists");
    assert_eq!(
        (stored.name.as_str(), stored.role.as_str()),
        ("Ada Agent", AGENT_ROLE)
    );

    // Again: the same user. Bob: another.
    let (_, again) = open(&handler, Some(&id_token)).await;
    assert_eq!(again["userId"], user_id.as_str());
    let bob = oidc
        .id_token("bob@agents.example", CLIENT_ID, 3_600)
        .expect("Bob");
    let (status, bob) = open(&handler, Some(&bob)).await;
    assert_eq!(status, 200, "{bob}");
    assert_ne!(bob["userId"], user_id.as_str());

    // CORS for the console's origin only.
    let response = handler
        .handle(http_request("OPTIONS", "", &[("origin", CONSOLE)]))
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        response.headers()["access-control-allow-headers"],
        "authorization, content-type",
        "the console sends its ID token in Authorization"
    );
    let response = handler
        .handle(http_request(
            "OPTIONS",
            "",
            &[("origin", "https://evil.example")],
        ))
        .await;
    assert_eq!(response.status(), 403);

    // Ada reads the visitor's conversation (not a member) and answers in it with her token.
    let path = format!("/channels/messaging/{channel}");
    let (status, read) = as_user(
        &app,
        &token,
        &format!("{path}/query"),
        &json!({"state": true}),
    )
    .await;
    assert_eq!(status, 200, "{read}");
    // Registration told the console whose conversation it is: the contact's id and the e-mail as registered.
    assert_eq!(
        read["channel"]["custom"]["contact_id"],
        contact.as_str(),
        "{read}"
    );
    assert_eq!(
        read["channel"]["custom"]["visitor_email"], "grace@example.com",
        "{read}"
    );
    // Stream takes messages from members: she joins (what "Assign to me" does), then answers.
    let (status, joined) = as_user(
        &app,
        &token,
        &path,
        &json!({"add_members": [{"user_id": user_id}]}),
    )
    .await;
    assert_eq!(status, 201, "{joined}");
    let (status, sent) = as_user(
        &app,
        &token,
        &format!("{path}/message"),
        &json!({"message": {"text": "Happy to help"}}),
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    // Her line reaches the webhook as Stream sends it (her role in the event) and reads "Ada Agent (agent)".
    let event =
        sandbox::stream::message_event("message.new", "messaging", &channel, &sent["message"]);
    let (status, body, _, _) = deliver(&app, &event).await;
    assert_eq!(status, 200, "{body}");
    // The flush after the ack may leave it to the sweeper (a lingering flush of the registration's header).
    app.sweeper().sweep().await.expect("sweep");
    let transcript = app.transcript(&contact);
    assert!(
        transcript.contains("Ada Agent (agent): Happy to help"),
        "{transcript:?}"
    );
    // The agents' role reads and writes the product's channel type, nothing app-wide: no user search.
    let payload = json!({"filter_conditions": {"id": {"$eq": user_id}}}).to_string();
    let search = reqwest::Client::new()
        .get(format!("{}/users", app.stream.base_url()))
        .query(&[("api_key", STREAM_KEY), ("payload", payload.as_str())])
        .header("authorization", &token)
        .header("stream-auth-type", "jwt")
        .send()
        .await
        .expect("answer");
    assert_eq!(search.status().as_u16(), 403);
}

#[tokio::test]
async fn agent_sessions_refuse_whatever_does_not_prove_a_signed_in_agent() {
    let app = TestApp::start().await;
    let oidc = provider().await;
    let handler = sessions(&app, &oidc);
    let users_before = app.stream.users().len();
    let issuer = oidc.issuer();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = |changes: Value| {
        let mut claims = json!({
            "iss": issuer, "sub": "someone", "aud": CLIENT_ID, "iat": now, "exp": now + 600,
            "email": "ada@agents.example", "email_verified": true, "name": "Ada Agent",
        });
        for (key, value) in changes.as_object().expect("object") {
            if value.is_null() {
                claims.as_object_mut().expect("object").remove(key);
            } else {
                claims[key] = value.clone();
            }
        }
        claims
    };
    // Signed by another provider's key (same issuer name, unknown kid): forged.
    let other = OidcDouble::start().await.expect("another provider");
    // A visitor's Stream token (HS256 with the app secret).
    let (_, visitor) = {
        let response = app
            .registration
            .handle(http_request(
                "POST",
                r#"{"firstName":"Eve","lastName":"Visitor","email":"eve@example.com"}"#,
                &[("content-type", "application/json")],
            ))
            .await;
        (response.status(), json_body(&response))
    };
    let visitor_token = visitor["customerToken"].as_str().expect("token").to_owned();
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no token", None, "missing_token"),
        ("garbage", Some("not-a-jwt".into()), "invalid_token"),
        (
            "a visitor's Stream token",
            Some(visitor_token),
            "invalid_token",
        ),
        (
            "expired",
            oidc.id_token("ada@agents.example", CLIENT_ID, -120),
            "token_expired",
        ),
        (
            "forged",
            Some(other.sign(&claims(json!({})))),
            "invalid_token",
        ),
        (
            "another application's",
            Some(oidc.sign(&claims(json!({"aud": "other-app"})))),
            "invalid_token",
        ),
        (
            "another issuer's",
            Some(oidc.sign(&claims(json!({"iss": "https://evil.example"})))),
            "invalid_token",
        ),
        (
            "not yet valid",
            Some(oidc.sign(&claims(json!({"nbf": now + 3_600})))),
            "invalid_token",
        ),
        (
            "without e-mail",
            Some(oidc.sign(&claims(json!({"email": null})))),
            "email_required",
        ),
        (
            "with an unverified e-mail",
            Some(oidc.sign(&claims(json!({"email_verified": false})))),
            "email_required",
        ),
    ];
    for (case, token, code) in cases {
        let (status, body) = open(&handler, token.as_deref()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some(code)),
            "{case}: {body}"
        );
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{case}: {body}"
        );
    }
    // `alg: none` and HS256 over the provider's public key material are refused before any key is looked at.
    let header = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        r#"{"alg":"none","typ":"JWT"}"#,
    );
    let payload = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        claims(json!({})).to_string(),
    );
    let (status, body) = open(&handler, Some(&format!("{header}.{payload}."))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token")),
        "{body}"
    );
    // Nobody was written to Stream by any of them (the visitor's registration wrote one).
    assert_eq!(app.stream.users().len(), users_before + 1);
    assert!(app.stream.users().iter().all(|u| u.role != AGENT_ROLE));
}

#[tokio::test]
async fn a_rotated_provider_key_verifies_after_one_refetch_and_a_session_ends_with_its_id_token() {
    let app = TestApp::start().await;
    let oidc = provider().await;
    let handler = sessions(&app, &oidc);
    let first = oidc
        .id_token("ada@agents.example", CLIENT_ID, 3_600)
        .expect("Ada");
    assert_eq!(open(&handler, Some(&first)).await.0, 200);
    oidc.rotate_key().expect("a new key");
    // The next token has a kid the cached keys lack: one refetch, and it verifies.
    let rotated = oidc
        .id_token("ada@agents.example", CLIENT_ID, 120)
        .expect("Ada");
    let (status, session) = open(&handler, Some(&rotated)).await;
    assert_eq!(status, 200, "{session}");
    // An ID token with two minutes left gives a session of at most two minutes.
    let claims = stream_claims(session["token"].as_str().expect("token"));
    let lifetime = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert!((1..=120).contains(&lifetime), "{claims}");
    // The old key is still published (rotation in progress): its tokens still verify.
    assert_eq!(open(&handler, Some(&first)).await.0, 200);
}

/// `application/x-www-form-urlencoded` of `pairs`.
fn form(pairs: &[(&str, &str)]) -> String {
    reqwest::Url::parse_with_params("http://form.invalid/", pairs)
        .expect("a URL")
        .query()
        .unwrap_or_default()
        .to_owned()
}

async fn post_form(http: &reqwest::Client, url: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
    http.post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs))
        .send()
        .await
        .expect("the provider answers")
}

/// The sandbox provider behaves like a real one: the code flow with PKCE, and the refusals a client meets.
/// Then: an agent removed at the provider gets no fresh ID token, so no new session; their last Stream token
/// stops working at its expiry.
#[tokio::test]
async fn the_code_flow_refuses_what_a_provider_refuses_and_a_removed_agent_gets_no_new_session() {
    use base64::Engine;
    use sha2::Digest;
    let app = TestApp::start().await;
    let oidc = provider().await;
    let handler = sessions(&app, &oidc);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let issuer = oidc.issuer();
    let redirect = format!("{CONSOLE}/");
    let verifier = "a-pkce-verifier-of-at-least-forty-three-characters-0123456789";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let authorize = |redirect_uri: String, password: &'static str| {
        vec![
            ("client_id", CLIENT_ID.to_owned()),
            ("redirect_uri", redirect_uri),
            ("response_type", "code".to_owned()),
            ("scope", "openid email".to_owned()),
            ("state", "s1".to_owned()),
            ("code_challenge", challenge.clone()),
            ("code_challenge_method", "S256".to_owned()),
            ("email", "ada@agents.example".to_owned()),
            ("password", password.to_owned()),
        ]
    };
    let pairs = |v: &[(&'static str, String)]| -> Vec<(&'static str, String)> { v.to_vec() };
    let send = |v: Vec<(&'static str, String)>| {
        let http = http.clone();
        let url = format!("{issuer}/authorize");
        async move {
            let borrowed: Vec<(&str, &str)> = v.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_form(&http, &url, &borrowed).await
        }
    };
    // A redirect URI the client did not register: refused on the provider's page, never redirected to.
    let refused = send(authorize(
        "https://evil.example/".to_owned(),
        "sandbox-password",
    ))
    .await;
    assert_eq!(refused.status(), 400);
    assert!(refused.headers().get("location").is_none());
    // A wrong password: the form again, no code.
    let wrong = send(authorize(redirect.clone(), "nope")).await;
    assert_eq!(wrong.status(), 200);
    assert!(wrong
        .text()
        .await
        .expect("page")
        .contains("Wrong e-mail or password"));
    let code_of = |response: &reqwest::Response| {
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("a redirect");
        let url = reqwest::Url::parse(location).expect("URL");
        assert!(location.starts_with(&redirect), "{location}");
        assert_eq!(
            url.query_pairs()
                .find(|(k, _)| k == "state")
                .map(|(_, v)| v.into_owned()),
            Some("s1".to_owned())
        );
        url.query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .expect("a code")
    };
    let token_url = format!("{issuer}/token");
    let exchange = |code: String, verifier: &'static str, redirect_uri: String| {
        let http = http.clone();
        let url = token_url.clone();
        async move {
            let response = post_form(
                &http,
                &url,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", &redirect_uri),
                    ("client_id", CLIENT_ID),
                    ("code_verifier", verifier),
                ],
            )
            .await;
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    // A wrong verifier: refused, and the code is spent.
    let code = code_of(&send(pairs(&authorize(redirect.clone(), "sandbox-password"))).await);
    let (status, body) = exchange(
        code.clone(),
        "another-verifier-of-at-least-forty-three-characters-0123456789",
        redirect.clone(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let (status, _) = exchange(code, verifier, redirect.clone()).await;
    assert_eq!(status, 400, "a code is worth one attempt");
    // Another redirect URI at the exchange: refused.
    let code = code_of(&send(authorize(redirect.clone(), "sandbox-password")).await);
    let (status, _) = exchange(
        code,
        verifier,
        "https://console.example.com/other".to_owned(),
    )
    .await;
    assert_eq!(status, 400);
    // The real thing: tokens once, the code not twice.
    let code = code_of(&send(authorize(redirect.clone(), "sandbox-password")).await);
    let (status, tokens) = exchange(code.clone(), verifier, redirect.clone()).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, _) = exchange(code, verifier, redirect.clone()).await;
    assert_eq!(status, 400, "a reused code");
    let id_token = tokens["id_token"].as_str().expect("id_token").to_owned();
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned();
    assert_eq!(open(&handler, Some(&id_token)).await.0, 200);
    // Renewal: the refresh token gives a fresh ID token, which opens a fresh session.
    let renewed = post_form(
        &http,
        &token_url,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", CLIENT_ID),
        ],
    )
    .await;
    assert_eq!(renewed.status(), 200);
    let renewed: Value = renewed.json().await.expect("JSON");
    let fresh = renewed["id_token"].as_str().expect("id_token");
    let (status, session) = open(&handler, Some(fresh)).await;
    assert_eq!(status, 200, "{session}");

    // Removed at the provider: no fresh ID token, so no new session.
    oidc.remove_agent("ada@agents.example");
    let refused = post_form(
        &http,
        &token_url,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", CLIENT_ID),
        ],
    )
    .await;
    assert_eq!(refused.status(), 400);
    let refused: Value = refused.json().await.expect("JSON");
    assert_eq!(refused["error"], "invalid_grant");
    assert!(oidc
        .id_token("ada@agents.example", CLIENT_ID, 3_600)
        .is_none());

    // The last Stream token works until it expires, then Stream refuses it: a session whose ID token had two
    // seconds left.
    oidc.add_agent("bob@agents.example", "Bob Agent", "sandbox-password");
    let short = oidc
        .id_token("bob@agents.example", CLIENT_ID, 2)
        .expect("Bob");
    let (status, session) = open(&handler, Some(&short)).await;
    assert_eq!(status, 200, "{session}");
    let token = session["token"].as_str().expect("token").to_owned();
    let payload = json!({"filter_conditions": {"type": "messaging"}});
    assert_eq!(as_user(&app, &token, "/channels", &payload).await.0, 201);
    tokio::time::sleep(std::time::Duration::from_millis(3_200)).await;
    let (status, body) = as_user(&app, &token, "/channels", &payload).await;
    assert_eq!(status, 401, "an expired agent token still works: {body}");
}

/// A visitor's token reads its own conversation only: it lists no other, reads no other, and opens no console.
#[tokio::test]
async fn a_visitors_token_reads_only_its_own_conversation() {
    let app = TestApp::start().await;
    let oidc = provider().await;
    let handler = sessions(&app, &oidc);
    let (_, _, grace_channel) = register_visitor(&app, "Grace", "grace@example.com").await;
    let response = app
        .registration
        .handle(http_request(
            "POST",
            r#"{"firstName":"Alan","lastName":"Turing","email":"alan@example.com"}"#,
            &[("content-type", "application/json")],
        ))
        .await;
    let alan = json_body(&response);
    let token = alan["customerToken"].as_str().expect("token").to_owned();
    let own = alan["channelId"].as_str().expect("channel").to_owned();
    let (status, listed) = as_user(
        &app,
        &token,
        "/channels",
        &json!({"filter_conditions": {"type": "messaging"}}),
    )
    .await;
    assert!((200..300).contains(&status), "{listed}");
    let ids: Vec<&str> = listed["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .filter_map(|c| c["channel"]["id"].as_str())
        .collect();
    assert_eq!(ids, [own.as_str()], "{listed}");
    let (status, body) = as_user(
        &app,
        &token,
        &format!("/channels/messaging/{grace_channel}/query"),
        &json!({"state": true}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = open(&handler, Some(&token)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );
}
