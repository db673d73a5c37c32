//! The API's edges: scopes, batch reads, portal validation rules, the 2026-09 paths and their required fields.

use super::*;

#[tokio::test]
async fn a_call_without_its_scope_answers_403_missing_scopes() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    let ada = double.seed_contact("ada@example.com", &[]).id;
    let client = Client::new(&double);
    let (status, _, created) = client
        .send(
            "POST",
            NOTES,
            Some(note(&ada, "hi", "2026-11-24T10:00:00Z")),
        )
        .await;
    assert_eq!(status, 201, "everything is granted by default");
    let id = created["id"].as_str().expect("id").to_owned();

    double.set_scopes(Some(vec!["crm.objects.contacts.read".to_owned()]));
    double.set_rate_limit(Some(100));
    double.faults().fail_next("notes_create", 1, 500);
    let (status, headers, body) = client
        .send(
            "POST",
            NOTES,
            Some(note(&ada, "hi", "2026-11-24T10:00:00Z")),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["status"], "error");
    assert_eq!(body["category"], "MISSING_SCOPES");
    assert_eq!(
        body["message"],
        "This app hasn't been granted all required scopes to make this call. Read more about required scopes \
         here: https://developers.hubspot.com/scopes."
    );
    assert!(body["correlationId"].is_string());
    assert_eq!(
        body["errors"],
        json!([{
            "message": "One or more of the following scopes are required.",
            "context": {"requiredGranularScopes": ["crm.objects.contacts.write"]},
        }])
    );
    assert_eq!(
        body["links"]["scopes"],
        "https://developers.hubspot.com/scopes"
    );
    assert_eq!(
        header(&headers, "x-hubspot-ratelimit-remaining").as_deref(),
        Some("99"),
        "a refused call counts"
    );

    // Reads need only the read scope.
    let reads = [
        format!("{NOTES}/{id}"),
        format!("/crm/objects/2026-09/contacts/{ada}"),
        "/crm/objects/2026-09/contacts".to_owned(),
    ];
    for path in &reads {
        let (status, _, body) = client.send("GET", path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let read = json!({"properties": [], "propertiesWithHistory": [], "inputs": [{"id": id}]});
    let (status, _, _) = client.send("POST", NOTES_BATCH_READ, Some(read)).await;
    assert_eq!(status, 200);
    let (status, _) = read_note_associations(&client, &ada, None).await;
    assert_eq!(status, 200);
    let (status, _, body) = client
        .send("GET", "/crm/properties/2026-09/contacts/email", None)
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        body["errors"][0]["context"]["requiredGranularScopes"],
        json!(["crm.schemas.contacts.read"])
    );
    let (status, _, _) = client
        .send(
            "PATCH",
            &format!("{NOTES}/{id}"),
            Some(json!({"properties": {"hs_note_body": "x"}})),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(double.late_writes(), 0);

    // The 403 stood in front of the backend: the scripted fault is still there once the scope is granted.
    double.set_scopes(None);
    let (status, _, _) = client
        .send(
            "POST",
            NOTES,
            Some(note(&ada, "hi", "2026-11-24T10:00:00Z")),
        )
        .await;
    assert_eq!(status, 500);
    assert_eq!(double.notes().len(), 1, "nothing written by a refused call");
    assert_eq!(double.call_count("notes_create"), 3);
}

#[tokio::test]
async fn contacts_batch_read_by_id_and_email() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    let ada = double
        .seed_contact("ada@example.com", &[("firstname", "Ada")])
        .id;
    let client = Client::new(&double);
    let path = "/crm/objects/2026-09/contacts/batch/read";

    let read = json!({"properties": ["firstname"], "propertiesWithHistory": [],
                      "inputs": [{"id": ada}, {"id": "999999"}]});
    let (status, _, answer) = client.send("POST", path, Some(read)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["results"][0]["properties"]["firstname"], "Ada");
    assert_eq!(answer["errors"][0]["context"]["ids"], json!(["999999"]));
    assert_eq!(answer["numErrors"], 1);
    let read = json!({"idProperty": "email", "properties": [], "propertiesWithHistory": [],
                      "inputs": [{"id": "ADA@example.com"}]});
    let (status, _, answer) = client.send("POST", path, Some(read)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["results"][0]["id"], ada.as_str());
    assert_eq!(
        answer["results"][0]["properties"]["email"],
        "ada@example.com"
    );
    assert_eq!(double.call_count("batch_read"), 2);
}

#[tokio::test]
async fn a_validation_rule_refuses_only_the_inputs_of_a_batch_that_break_it() {
    use sandbox::hubspot::ValidationRule;
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    double.define_property("chat_transcript");
    let ada = double.seed_contact("ada@example.com", &[]).id;
    let grace = double.seed_contact("grace@example.com", &[]).id;
    let linus = double.seed_contact("linus@example.com", &[]).id;
    let client = Client::new(&double);
    double.set_validation_rule("chat_transcript", Some(ValidationRule::MaxLength(10)));
    let graces_writes = double.property_writes(&grace);
    // HubSpot's message quotes (the start of) the value it refused.
    let message = "The value \"eleven char…\" of property \"chat_transcript\" is longer than 10 characters, the \
                   most this portal's validation rule (MAX_LENGTH) allows.";
    let transcript = |id: &str| {
        double
            .contact(id)
            .and_then(|c| c.properties.get("chat_transcript").cloned())
    };

    // Grace's value is one character too long: hers is refused, the others are written, the unknown id reported.
    let body = json!({"inputs": [
        {"id": ada, "properties": {"chat_transcript": "ten chars!"}},
        {"id": grace, "properties": {"chat_transcript": "eleven char"}},
        {"id": "999999", "properties": {"chat_transcript": "nobody"}},
        {"id": "LINUS@example.com", "idProperty": "email", "properties": {"chat_transcript": "short"}},
    ]});
    let (status, _, answer) = client.send("POST", BATCH_UPDATE, Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    let mut written: Vec<&str> = answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    written.sort_unstable();
    assert_eq!(written, [ada.as_str(), linus.as_str()]);
    assert_eq!(answer["numErrors"], 2);
    let refused = answer["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .find(|e| e["category"] == "VALIDATION_ERROR")
        .expect("Grace's input is refused");
    assert_eq!(
        refused,
        &json!({
            "status": "error",
            "category": "VALIDATION_ERROR",
            "message": message,
            "context": {"ids": [grace], "propertyName": ["chat_transcript"]},
            "errors": [{"message": message, "code": "MAX_LENGTH", "in": "chat_transcript"}],
            "links": {},
        })
    );
    assert_eq!(transcript(&ada).as_deref(), Some("ten chars!"));
    assert_eq!(transcript(&linus).as_deref(), Some("short"));
    assert_eq!(transcript(&grace), None);
    assert_eq!(
        double.property_writes(&grace),
        graces_writes,
        "nothing of Grace's input was written"
    );

    // A single write that breaks the rule is refused whole, with the same message; clearing a value breaks nothing.
    let path = format!("/crm/objects/2026-09/contacts/{grace}");
    let long = json!({"properties": {"chat_transcript": "eleven char", "firstname": "Grace"}});
    let (status, _, body) = client.send("PATCH", &path, Some(long)).await;
    assert_eq!(
        (status, body["category"].as_str(), body["message"].as_str()),
        (400, Some("VALIDATION_ERROR"), Some(message)),
        "{body}"
    );
    assert_eq!(
        double.property_writes(&grace),
        graces_writes,
        "nor of the PATCH"
    );
    let cleared = json!({"properties": {"chat_transcript": ""}});
    assert_eq!(client.send("PATCH", &path, Some(cleared)).await.0, 200);
    let create = json!({"properties": {"email": "new@example.com", "chat_transcript": "eleven char"},
                        "associations": []});
    let (status, _, body) = client
        .send("POST", "/crm/objects/2026-09/contacts", Some(create))
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some(message)),
        "{body}"
    );
    assert!(double.contact_by_email("new@example.com").is_none());

    // An upsert refuses just the input too: nobody is created for it.
    let (status, body) = client
        .upsert("new@example.com", json!({"chat_transcript": "eleven char"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"], json!([]));
    assert_eq!(
        body["errors"][0]["context"]["ids"],
        json!(["new@example.com"])
    );
    assert!(double.contact_by_email("new@example.com").is_none());

    // Once the rule is gone, the same value is written.
    double.set_validation_rule("chat_transcript", None);
    let body = json!({"inputs": [{"id": grace, "properties": {"chat_transcript": "eleven char"}}]});
    let (status, _, answer) = client.send("POST", BATCH_UPDATE, Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.get("errors").is_none(), "{answer}");
    assert_eq!(transcript(&grace).as_deref(), Some("eleven char"));
}

#[tokio::test]
async fn only_the_2026_09_paths_are_served_with_the_fields_they_require() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    let client = Client::new(&double);
    // Another version's path is no route of the double.
    let (status, _, body) = client
        .send("GET", "/crm/objects/2026-03/contacts", None)
        .await;
    assert_eq!(
        (status, body["category"].as_str()),
        (404, Some("OBJECT_NOT_FOUND"))
    );
    assert_eq!(double.call_count("not_found"), 1);

    // A create carries `associations`, [] for none.
    let contacts = "/crm/objects/2026-09/contacts";
    let properties = json!({"email": "ada@example.com", "firstname": "Ada"});
    let (status, _, body) = client
        .send("POST", contacts, Some(json!({ "properties": properties })))
        .await;
    assert_eq!(
        (status, body["category"].as_str()),
        (400, Some("VALIDATION_ERROR")),
        "{body}"
    );
    let (status, _, body) = client
        .send(
            "POST",
            contacts,
            Some(json!({ "properties": properties, "associations": [] })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    for field in ["id", "createdAt", "updatedAt", "archived", "properties"] {
        assert!(body.get(field).is_some(), "{field}: {body}");
    }
    // An upsert input carries `properties`.
    let (status, _, body) = client
        .send(
            "POST",
            "/crm/objects/2026-09/contacts/batch/upsert",
            Some(json!({"inputs": [{"id": "bo@example.com", "idProperty": "email"}]})),
        )
        .await;
    assert_eq!(
        (status, body["category"].as_str()),
        (400, Some("VALIDATION_ERROR")),
        "{body}"
    );
    assert_eq!(double.contacts().len(), 1);
}
