//! Identity verification: the site's identity token, its expiry, the README's command, `REQUIRE_IDENTITY`, and the
//! conversation header that says how the visitor was identified.

use super::*;

#[tokio::test]
async fn a_wrong_identity_token_is_a_401_that_changes_nothing() {
    let app = TestApp::start().await;
    let ada = "ada.lovelace@example.com";
    let exp = unix_now() + 3_600;
    let cases = [
        // Grace's token presented with Ada's e-mail.
        identity_token("grace@example.com"),
        // Ada's claims under another secret.
        site_token(
            &serde_json::json!({"email": ada, "exp": exp}),
            "another-secret-0123456789abcdef-0123",
        ),
        // Ada's token, one character of the signature changed.
        {
            let mut token = identity_token(ada);
            let at = token.len() - 10;
            let changed = if &token[at..=at] == "A" { "B" } else { "A" };
            token.replace_range(at..=at, changed);
            token
        },
        // Ada's token with its signature cut short, and with none ("alg":"none").
        {
            let token = identity_token(ada);
            token[..token.len() - 6].to_owned()
        },
        {
            let token = identity_token(ada);
            let unsigned = token.rsplit_once('.').expect("three parts").0;
            format!("{unsigned}.")
        },
    ];
    for token in cases {
        let (status, body) = register(&app, &with_token("Ada", "Lovelace", ada, &token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token}: {body}");
        assert_eq!(body["code"], "identity_not_verified", "{token}: {body}");
        assert_eq!(body["field"], "identityToken");
    }
    // Not a token at all: the site's backend sends something else than the documented format.
    for token in ["not-a-token", ""] {
        let (status, body) = register(&app, &with_token("Ada", "Lovelace", ada, token)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{token:?}: {body}");
        assert_eq!(body["code"], "invalid_identity_token", "{token:?}: {body}");
        assert_eq!(body["field"], "identityToken");
    }
    let (status, body) = register(
        &app,
        r#"{"firstName":"Ada","lastName":"Lovelace","email":"ada@example.com","identityToken":42}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_identity_token");
    assert_no_upstream_calls(&app);
    assert_eq!(app.item_count().await, 0, "nothing stored");
}

/// Issue 21, item 10: an identity token carries its expiry, under the same signature as the e-mail. A valid one
/// verifies; an expired one is 401 `identity_token_expired`; one whose `exp` was changed no longer verifies (401
/// `identity_not_verified`); one without `exp` — including every token of the old format, the bare hex HMAC of the
/// e-mail — is 400 `invalid_identity_token`, as is one that expires more than a day ahead. None changes anything.
#[tokio::test]
async fn identity_tokens_expire_and_their_expiry_is_signed() {
    let app = TestApp::start().await;
    let ada = "ada.lovelace@example.com";
    let now = unix_now();
    let claims = |exp: serde_json::Value| serde_json::json!({"email": ada, "exp": exp});

    let expired = site_token(&claims(serde_json::json!(now - 120)), IDENTITY_SECRET);
    let tampered = {
        // The expired token with a later `exp` pasted in, its signature kept.
        let mut parts: Vec<String> = expired.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(claims(serde_json::json!(now + 600)).to_string());
        parts.join(".")
    };
    let legacy = {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(IDENTITY_SECRET.as_bytes())
            .expect("any key length");
        mac.update(ada.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    let refusals = [
        ("expired", expired, 401, "identity_token_expired"),
        ("tampered expiry", tampered, 401, "identity_not_verified"),
        (
            "no expiry",
            site_token(&serde_json::json!({"email": ada}), IDENTITY_SECRET),
            400,
            "invalid_identity_token",
        ),
        (
            "expiry not a number",
            site_token(&claims(serde_json::json!("tomorrow")), IDENTITY_SECRET),
            400,
            "invalid_identity_token",
        ),
        (
            "old format (no expiry)",
            legacy,
            400,
            "invalid_identity_token",
        ),
        (
            "expiry more than a day ahead (milliseconds for seconds)",
            site_token(&claims(serde_json::json!(now * 1_000)), IDENTITY_SECRET),
            400,
            "invalid_identity_token",
        ),
    ];
    for (what, token, status, code) in refusals {
        let (got, body) = register(&app, &with_token("Ada", "Lovelace", ada, &token)).await;
        assert_eq!(got.as_u16(), status, "{what}: {body}");
        assert_eq!(body["code"], code, "{what}: {body}");
        assert_eq!(body["field"], "identityToken", "{what}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: {body}"
        );
    }
    assert_no_upstream_calls(&app);
    assert_eq!(app.item_count().await, 0, "nothing stored");

    let valid = site_token(&claims(serde_json::json!(now + 600)), IDENTITY_SECRET);
    let (status, body) = register(&app, &with_token("Ada", "Lovelace", ada, &valid)).await;
    assert_eq!(status, StatusCode::OK, "valid: {body}");
    let mapping = stored_mapping(&app, &body).await;
    assert_eq!(mapping.identity, Identity::Verified);
}

/// The README's example of how a site makes an identity token, run exactly as written (bash, openssl, date), makes
/// a token registration accepts as verified.
#[tokio::test]
async fn the_readmes_identity_token_command_makes_a_token_that_verifies() {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/security.md"),
    )
    .expect("docs/security.md");
    let section = readme
        .split_once("### Identity: who the visitor is")
        .expect("the README's identity section")
        .1;
    let section = section.split_once("\n### ").map_or(section, |(s, _)| s);
    let script = section
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(script, _)| script)
        .expect("the identity section shows its command in a ```sh block");
    let output = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .env("IDENTITY_SECRET", IDENTITY_SECRET)
        .output()
        .expect("run bash");
    assert!(
        output.status.success(),
        "the README's command failed: {}\n{script}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).expect("UTF-8");
    let token = token.trim();
    let email = script
        .split_once("email='")
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(email, _)| email)
        .expect("the command names its e-mail as email='…'");

    let app = TestApp::start().await;
    let (status, body) = register(&app, &with_token("Ada", "Lovelace", email, token)).await;
    assert_eq!(status, StatusCode::OK, "{token}: {body}");
    let mapping = stored_mapping(&app, &body).await;
    assert_eq!(mapping.identity, Identity::Verified);
}

#[tokio::test]
async fn require_identity_refuses_unverified_registrations() {
    let app = TestApp::start().await;
    let mut settings = support::registration_settings();
    settings.identity =
        IdentityPolicy::new(Some(IdentityVerifier::new(IDENTITY_SECRET.into())), true);
    let registration = app.registration_with(settings);
    let response = registration
        .handle(http_request("POST", ADA, &[JSON]))
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = json_body(&response);
    assert_eq!(body["code"], "identity_required", "{body}");
    assert_no_upstream_calls(&app);
    assert_eq!(app.item_count().await, 0);

    let body = verified("Ada", "Lovelace", "ada.lovelace@example.com");
    let response = registration
        .handle(http_request("POST", &body, &[JSON]))
        .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        json_body(&response)
    );
}

#[tokio::test]
async fn the_conversation_header_says_how_the_visitor_was_identified() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = register_visitor(&app, "Ada", "ada@example.com").await;
    let (status, body) = register(&app, &verified("Grace", "Hopper", "grace@example.com")).await;
    assert_eq!(status, StatusCode::OK);
    let grace = app
        .hubspot
        .contact_by_email("grace@example.com")
        .expect("created")
        .id;
    let grace_visitor = body["customerId"].as_str().expect("id").to_owned();
    let grace_channel = body["channelId"].as_str().expect("id").to_owned();
    for (visitor, channel) in [(&visitor, &channel), (&grace_visitor, &grace_channel)] {
        let event = message_event(
            "message.new",
            "messaging",
            channel,
            &message(
                "m-1",
                visitor,
                "Visitor",
                "hello",
                "2026-11-24T10:00:01.000Z",
            ),
        );
        let (status, _, _, _) = deliver(&app, &event).await;
        assert_eq!(status, StatusCode::OK);
    }
    app.sweep().await;
    let header = |contact: &str| {
        app.transcript(contact)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        header(&contact).ends_with("· e-mail as typed, not verified ==="),
        "{}",
        header(&contact)
    );
    assert!(
        header(&grace).ends_with("· e-mail verified by the site ==="),
        "{}",
        header(&grace)
    );
}
