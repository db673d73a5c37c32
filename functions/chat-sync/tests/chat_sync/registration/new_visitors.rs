//! A new visitor gets a contact, Stream users, a channel, a stored mapping and a token; an existing e-mail links to
//! its contact; concurrent registrations of one e-mail make one contact.

use super::*;

#[tokio::test]
async fn new_visitor_gets_contact_users_channel_mapping_and_token() {
    let app = TestApp::start().await;
    let response = app.registration.handle(event("registration.json")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap_or_default()),
        Some("http://localhost:3000")
    );
    let body = json_body(&response);
    assert_eq!(body["apiKey"], STREAM_KEY);
    // Not Stream's default URL: the widget's SDK must be told where this Stream is.
    assert_eq!(
        body["streamBaseUrl"],
        app.stream.base_url().trim_end_matches('/')
    );
    assert_eq!(body["channelType"], "messaging");
    let visitor = body["customerId"].as_str().expect("customerId");
    let channel_id = body["channelId"].as_str().expect("channelId");

    // HubSpot: one contact, e-mail lowercased, names set, created by a single create call.
    let contact = app
        .hubspot
        .contact_by_email("ada.lovelace@example.com")
        .expect("contact created");
    assert_eq!(
        contact.properties.get("firstname").map(String::as_str),
        Some("Ada")
    );
    assert_eq!(
        contact.properties.get("lastname").map(String::as_str),
        Some("Lovelace")
    );
    assert_eq!(app.hubspot.call_count("create_contact"), 1);
    assert_eq!(
        app.hubspot.calls().len(),
        1,
        "one call to HubSpot, no GET-then-POST"
    );

    // Stream: visitor and agent upserted in one call; the channel created server-side with both as members.
    assert_eq!(app.stream.call_count("upsert_users"), 1);
    let users = app.stream.users();
    assert!(users
        .iter()
        .any(|u| u.id == visitor && u.name == "Ada Lovelace"));
    assert!(users.iter().any(|u| u.id == AGENT_ID));
    let channel = app
        .stream
        .channels()
        .into_iter()
        .find(|c| c.id == channel_id)
        .expect("channel created");
    assert_eq!(channel.created_by_id, AGENT_ID);
    // The channel says, for the agents' tools, that the visitor's e-mail was typed, not verified.
    assert_eq!(
        channel.custom.get("visitor_identity"),
        Some(&serde_json::json!("unverified"))
    );
    let mut members = channel.members.clone();
    members.sort();
    let mut expected = vec![visitor.to_owned(), AGENT_ID.to_owned()];
    expected.sort();
    assert_eq!(members, expected);

    // DynamoDB: the channel maps to the contact.
    let key = ChannelRef::new(
        ChannelType::parse("messaging").expect("valid"),
        ChannelId::parse(channel_id).expect("valid"),
    );
    let mapping = app
        .store
        .channel(&key)
        .await
        .expect("read")
        .expect("mapping stored");
    assert_eq!(mapping.contact_id.as_str(), contact.id);
    assert_eq!(mapping.visitor_id.as_str(), visitor);
    // The e-mail is stored beside the mapping, for finding a merged contact again, and read only for that.
    let email = app
        .store
        .contact_email(&mapping.contact_id)
        .await
        .expect("read")
        .expect("e-mail stored");
    assert_eq!(email.as_str(), "ada.lovelace@example.com");
}

#[tokio::test]
async fn ids_are_random_per_registration_and_not_derived_from_the_person() {
    let app = TestApp::start().await;
    let (_, first) = register(&app, ADA).await;
    let (_, second) = register(&app, ADA).await;
    assert_ne!(first["customerId"], second["customerId"]);
    assert_ne!(first["channelId"], second["channelId"]);
    for body in [&first, &second] {
        let visitor = body["customerId"].as_str().expect("id");
        let channel = body["channelId"].as_str().expect("id");
        // Nothing of the name or the e-mail: a prefix and 128 random bits in hex. (Hex digits can spell "ada" by
        // chance, so the check is on the whole shape.)
        for (id, prefix) in [(visitor, "visitor-"), (channel, "chat-")] {
            let random = id
                .strip_prefix(prefix)
                .unwrap_or_else(|| panic!("{id} has the {prefix} prefix"));
            assert_eq!(random.len(), 32, "{id}");
            assert!(random.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
            assert!(!id.contains("lovelace") && !id.contains("example"), "{id}");
        }
    }
}

#[tokio::test]
async fn an_existing_email_with_other_names_links_to_the_contact_and_leaves_it_untouched() {
    let app = TestApp::start().await;
    let existing = app.hubspot.seed_contact(
        "ada.lovelace@example.com",
        &[("firstname", "Ada"), ("lastname", "Lovelace")],
    );
    let writes_before = app.hubspot.property_writes(&existing.id);
    // Anyone who knows the e-mail can type it with other names: that must not rename the customer.
    let (status, body) = register(
        &app,
        r#"{"firstName":"Mallory","lastName":"Intruder","email":"ADA.LOVELACE@example.com"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        app.hubspot.property_writes(&existing.id),
        writes_before,
        "no property of the existing contact was written"
    );
    let contacts = app.hubspot.contacts();
    assert_eq!(contacts.len(), 1, "no duplicate contact");
    assert_eq!(
        contacts[0].properties.get("firstname").map(String::as_str),
        Some("Ada")
    );
    // One HubSpot request on the way: the create, answered 409 with the existing id.
    assert_eq!(app.hubspot.calls().len(), 1, "{:?}", app.hubspot.calls());
    assert_eq!(app.hubspot.calls()[0].status, 409);
    // The channel is linked to the existing contact, and says the e-mail was not verified.
    let mapping = stored_mapping(&app, &body).await;
    assert_eq!(mapping.contact_id.as_str(), existing.id);
    assert_eq!(mapping.identity, Identity::Unverified);
}

#[tokio::test]
async fn a_verified_visitor_may_update_the_names_in_one_request() {
    let app = TestApp::start().await;
    let existing = app.hubspot.seed_contact(
        "ada.lovelace@example.com",
        &[("firstname", "Ada"), ("lastname", "Lovelace")],
    );
    let (status, body) = register(
        &app,
        &verified("Augusta Ada", "King", "Ada.Lovelace@Example.com"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let contact = app.hubspot.contact(&existing.id).expect("same contact");
    assert_eq!(
        contact.properties.get("firstname").map(String::as_str),
        Some("Augusta Ada")
    );
    assert_eq!(app.hubspot.calls().len(), 1, "one HubSpot request");
    assert_eq!(app.hubspot.call_count("upsert"), 1);
    let mapping = stored_mapping(&app, &body).await;
    assert_eq!(mapping.identity, Identity::Verified);

    // A new verified visitor gets a new contact with the names.
    let (status, _) = register(&app, &verified("Grace", "Hopper", "grace@example.com")).await;
    assert_eq!(status, StatusCode::OK);
    let grace = app
        .hubspot
        .contact_by_email("grace@example.com")
        .expect("created");
    assert_eq!(
        grace.properties.get("lastname").map(String::as_str),
        Some("Hopper")
    );
}

#[tokio::test]
async fn concurrent_registrations_with_one_email_make_one_contact() {
    let app = TestApp::start().await;
    let bodies: Vec<String> = (0..12)
        .map(|i| {
            let email = if i % 2 == 0 {
                "Grace@Example.com"
            } else {
                "grace@example.COM"
            };
            format!(r#"{{"firstName":"Grace","lastName":"Hopper {i}","email":"{email}"}}"#)
        })
        .collect();
    let results = futures::future::join_all(bodies.iter().map(|b| register(&app, b))).await;
    assert!(
        results.iter().all(|(status, _)| *status == StatusCode::OK),
        "{results:?}"
    );
    let contacts = app.hubspot.contacts();
    assert_eq!(contacts.len(), 1, "one contact");
    // Exactly one create went through; every other registration was told the existing id (409) and wrote nothing.
    let writes = app.hubspot.property_writes(&contacts[0].id);
    assert_eq!(
        writes.iter().filter(|w| w.property == "lastname").count(),
        1,
        "{writes:?}"
    );
    let created = app
        .hubspot
        .calls()
        .iter()
        .filter(|c| c.route == "create_contact" && c.status == 201)
        .count();
    assert_eq!(created, 1);
    for (_, body) in &results {
        let mapping = app
            .store
            .channel(&channel_ref(body))
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(
            mapping.contact_id.as_str(),
            contacts[0].id,
            "every channel maps to it"
        );
    }
    let channels: std::collections::HashSet<_> = results
        .iter()
        .map(|(_, b)| b["channelId"].to_string())
        .collect();
    assert_eq!(
        channels.len(),
        12,
        "every registration gets its own channel"
    );
}

#[tokio::test]
async fn token_verifies_with_the_secret_and_expires_at_expires_at() {
    #[derive(serde::Deserialize)]
    struct Claims {
        user_id: String,
        iat: i64,
        exp: i64,
    }
    let app = TestApp::start().await;
    let (status, body) = register(&app, ADA).await;
    assert_eq!(status, StatusCode::OK);
    let token = body["customerToken"].as_str().expect("token");
    let claims = decode::<Claims>(
        token,
        &DecodingKey::from_secret(STREAM_SECRET.as_bytes()),
        &Validation::new(Algorithm::HS256),
    )
    .expect("valid HS256 token")
    .claims;
    assert_eq!(claims.user_id, body["customerId"].as_str().expect("id"));
    let expires_at = time::OffsetDateTime::parse(
        body["expiresAt"].as_str().expect("expiresAt"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339");
    assert_eq!(claims.exp, expires_at.unix_timestamp());
    assert_eq!(claims.exp - claims.iat, 3_600);
    assert!(decode::<Claims>(
        token,
        &DecodingKey::from_secret(b"another"),
        &Validation::new(Algorithm::HS256)
    )
    .is_err());
}
