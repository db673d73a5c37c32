//! Batch updates, writes that land late, merges and deletions of contacts.

use super::*;

#[tokio::test]
async fn batch_update_writes_known_contacts_and_reports_unknown_ids() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    double.define_property("chat_transcript");
    let ada = double.seed_contact("ada@example.com", &[]).id;
    let grace = double.seed_contact("grace@example.com", &[]).id;
    let client = Client::new(&double);

    let body = json!({"inputs": [
        {"id": ada, "properties": {"chat_transcript": "one"}},
        {"id": "GRACE@example.com", "idProperty": "email", "properties": {"chat_transcript": "two"}},
    ]});
    let (status, _, answer) = client.send("POST", BATCH_UPDATE, Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "COMPLETE");
    assert!(answer["startedAt"].is_string() && answer["completedAt"].is_string());
    assert!(answer.get("errors").is_none(), "{answer}");
    let mut ids: Vec<&str> = answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [ada.as_str(), grace.as_str()]);
    let transcript = |id: &str| {
        double
            .contact(id)
            .and_then(|c| c.properties.get("chat_transcript").cloned())
    };
    assert_eq!(transcript(&ada).as_deref(), Some("one"));
    assert_eq!(transcript(&grace).as_deref(), Some("two"));

    // An unknown id does not fail the batch: the rest is written, and the answer (a 200, as the 2026-09 documents
    // list it) names the unknown id in its `errors`.
    let body = json!({"inputs": [
        {"id": ada, "properties": {"chat_transcript": "three"}},
        {"id": "999999", "properties": {"chat_transcript": "lost"}},
    ]});
    let (status, _, answer) = client.send("POST", BATCH_UPDATE, Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["results"].as_array().map(Vec::len), Some(1));
    assert_eq!(answer["results"][0]["id"], ada.as_str());
    assert_eq!(
        answer["results"][0]["properties"]["chat_transcript"],
        "three"
    );
    assert_eq!(answer["numErrors"], 1);
    let error = &answer["errors"][0];
    assert_eq!(error["status"], "error");
    assert_eq!(error["category"], "OBJECT_NOT_FOUND");
    assert_eq!(error["context"]["ids"], json!(["999999"]));
    // Every field the documents' `StandardError` requires is there.
    assert_eq!(
        (&error["errors"], &error["links"]),
        (&json!([]), &json!({}))
    );
    assert!(error["message"].is_string(), "{error}");
    assert_eq!(transcript(&ada).as_deref(), Some("three"));
    assert_eq!(double.call_count("batch_update"), 2);
}

#[tokio::test]
async fn batch_update_refuses_bad_batches_whole() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    double.define_property("chat_transcript");
    let ada = double.seed_contact("ada@example.com", &[]).id;
    let grace = double.seed_contact("grace@example.com", &[]).id;
    let client = Client::new(&double);
    let update = |id: &str, text: &str| json!({"id": id, "properties": {"chat_transcript": text}});

    let duplicates = json!({"inputs": [update(&ada, "a"), update(&grace, "b"), update(&ada, "c")]});
    let (status, _, body) = client.send("POST", BATCH_UPDATE, Some(duplicates)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["category"], "VALIDATION_ERROR");
    assert_eq!(
        body["message"],
        format!("Duplicate IDs found in batch input: [{ada}]")
    );
    // The same contact by id and by e-mail is a duplicate too.
    let by_email = json!({"id": "ada@example.com", "idProperty": "email", "properties": {}});
    let spelled_twice = json!({"inputs": [update(&ada, "a"), by_email]});
    let (status, _, body) = client.send("POST", BATCH_UPDATE, Some(spelled_twice)).await;
    assert_eq!(status, 400, "{body}");

    // One invalid value fails the whole batch, and nothing is written.
    let invalid = json!({"inputs": [
        update(&ada, "fine"),
        {"id": grace, "properties": {"chat_transcript": "x".repeat(65_537)}},
        {"id": "999999", "properties": {"favourite_colour": "blue"}},
    ]});
    let (status, _, body) = client.send("POST", BATCH_UPDATE, Some(invalid)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["category"], "VALIDATION_ERROR");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Property values were not valid: ")
            && message.contains("INVALID_LENGTH")
            && message.contains("PROPERTY_DOESNT_EXIST"),
        "{body}"
    );
    let bad_email = json!({"inputs": [{"id": ada, "properties": {"email": "not an email"}}]});
    let (status, _, body) = client.send("POST", BATCH_UPDATE, Some(bad_email)).await;
    assert_eq!(status, 400, "{body}");

    let too_many: Vec<Value> = (0..101).map(|_| update(&ada, "x")).collect();
    let shapes = [
        json!({"inputs": too_many}),
        json!({"inputs": []}),
        json!({"properties": {"chat_transcript": "no wrapper"}}),
        json!({"inputs": {"id": ada}}),
        json!({"inputs": [{"properties": {}}]}),
    ];
    for shape in shapes {
        let (status, _, body) = client.send("POST", BATCH_UPDATE, Some(shape)).await;
        assert_eq!(
            (status, body["category"].as_str()),
            (400, Some("VALIDATION_ERROR"))
        );
    }
    assert!(
        double
            .contacts()
            .iter()
            .all(|c| !c.properties.contains_key("chat_transcript")),
        "no refused batch wrote anything"
    );
    assert_eq!(
        double.contact(&ada).expect("ada").properties["email"],
        "ada@example.com"
    );
}

#[tokio::test]
async fn batch_and_patch_writes_to_one_contact_overlap() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    double.define_property("chat_transcript");
    let ada = double.seed_contact("ada@example.com", &[]).id;
    let grace = double.seed_contact("grace@example.com", &[]).id;
    let linus = double.seed_contact("linus@example.com", &[]).id;
    double.faults().set_latency(Duration::from_millis(150));
    let client = std::sync::Arc::new(Client::new(&double));

    let batch = {
        let client = client.clone();
        let (ada, grace) = (ada.clone(), grace.clone());
        tokio::spawn(async move {
            let body = json!({"inputs": [
                {"id": ada, "properties": {"chat_transcript": "batch"}},
                {"id": grace, "properties": {"chat_transcript": "batch"}},
            ]});
            client.send("POST", BATCH_UPDATE, Some(body)).await.0
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    let patch = |id: String| {
        let client = client.clone();
        tokio::spawn(async move {
            let body = json!({"properties": {"chat_transcript": "patch"}});
            let path = format!("/crm/objects/2026-09/contacts/{id}");
            client.send("PATCH", &path, Some(body)).await.0
        })
    };
    let (other, same) = (patch(linus.clone()), patch(grace.clone()));
    let (batch, other, same) = tokio::join!(batch, other, same);
    assert_eq!(
        (
            batch.expect("task"),
            other.expect("task"),
            same.expect("task")
        ),
        (200, 200, 200)
    );
    let overlaps = double.overlapping_patches();
    assert_eq!(overlaps.len(), 1, "{overlaps:?}");
    assert!(overlaps[0].contains(&grace), "{overlaps:?}");
}

#[tokio::test]
async fn a_late_write_answers_502_then_lands_and_stays_in_flight_until_then() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    double.define_property("chat_transcript");
    let ada = double.seed_contact("ada@example.com", &[]).id;
    let client = Client::new(&double);
    let path = format!("/crm/objects/2026-09/contacts/{ada}");
    let transcript = || {
        double
            .contact(&ada)
            .and_then(|c| c.properties.get("chat_transcript").cloned())
    };

    double.set_late_writes(1.0, Duration::from_millis(300));
    let body = json!({"properties": {"chat_transcript": "late"}});
    let (status, _, answer) = client.send("PATCH", &path, Some(body)).await;
    assert_eq!(status, 502, "{answer}");
    assert_eq!(answer["status"], "error");
    assert_eq!(answer["category"], "INTERNAL_ERROR");
    assert_eq!(answer["message"], "Bad Gateway");
    assert_eq!((double.late_writes(), double.late_writes_pending()), (1, 1));
    assert_eq!(transcript(), None, "not landed yet");

    // A client that writes again before the late write has landed races it, and is caught.
    double.set_late_writes(0.0, Duration::ZERO);
    let body = json!({"properties": {"chat_transcript": "retry"}});
    let (status, _, _) = client.send("PATCH", &path, Some(body)).await;
    assert_eq!(status, 200);
    assert_eq!(transcript().as_deref(), Some("retry"));
    let overlaps = double.overlapping_patches();
    assert_eq!(overlaps.len(), 1, "{overlaps:?}");
    assert!(overlaps[0].contains(&ada), "{overlaps:?}");

    wait_for_late_writes(&double).await;
    assert_eq!(
        transcript().as_deref(),
        Some("late"),
        "the late write landed last and overwrote the retry"
    );
    assert_eq!(double.peak_requests_in_window(), 2);

    // A late batch update lands too; a write after it has landed is no overlap.
    double.clear_calls();
    double.set_late_writes(1.0, Duration::from_millis(50));
    let body = json!({"inputs": [
        {"id": ada, "properties": {"chat_transcript": "late batch"}},
        {"id": "999999", "properties": {"chat_transcript": "nobody"}},
    ]});
    let (status, _, _) = client.send("POST", BATCH_UPDATE, Some(body)).await;
    assert_eq!(status, 502);
    assert_eq!(double.late_writes(), 1);
    wait_for_late_writes(&double).await;
    assert_eq!(transcript().as_deref(), Some("late batch"));
    double.set_late_writes(0.0, Duration::ZERO);
    let body = json!({"properties": {"chat_transcript": "after"}});
    let (status, _, _) = client.send("PATCH", &path, Some(body)).await;
    assert_eq!(status, 200);
    assert_eq!(double.overlapping_patches(), Vec::<String>::new());
}

#[tokio::test]
async fn a_merge_gives_a_new_id_and_retires_both_old_ones() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    double.define_property("chat_transcript");
    let primary = double
        .seed_contact("ada@example.com", &[("firstname", "Ada")])
        .id;
    let secondary = double
        .seed_contact(
            "augusta@example.com",
            &[("firstname", "Augusta"), ("lastname", "Lovelace")],
        )
        .id;
    let client = Client::new(&double);

    assert_eq!(double.merge_contacts(&primary, "999999"), None);
    assert_eq!(double.merge_contacts(&primary, &primary), None);
    let merged = double
        .merge_contacts(&primary, &secondary)
        .expect("both exist");
    assert!(merged != primary && merged != secondary, "a new id");

    for old in [&primary, &secondary] {
        let path = format!("/crm/objects/2026-09/contacts/{old}");
        let (status, _, body) = client.send("GET", &path, None).await;
        assert_eq!(
            (status, body["category"].as_str()),
            (404, Some("OBJECT_NOT_FOUND"))
        );
        let patch = json!({"properties": {"chat_transcript": "x"}});
        let (status, _, _) = client.send("PATCH", &path, Some(patch)).await;
        assert_eq!(status, 404);
    }
    for email in ["ada@example.com", "AUGUSTA@example.com"] {
        let path = format!(
            "/crm/objects/2026-09/contacts/{email}?idProperty=email&properties=firstname,lastname"
        );
        let (status, _, body) = client.send("GET", &path, None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["id"], merged.as_str());
        assert_eq!(body["properties"]["firstname"], "Ada", "the primary wins");
        assert_eq!(
            body["properties"]["lastname"], "Lovelace",
            "the secondary fills gaps"
        );
    }

    let body = json!({"inputs": [
        {"id": primary, "properties": {"chat_transcript": "to the old id"}},
        {"id": merged, "properties": {"chat_transcript": "to the new id"}},
    ]});
    let (status, _, answer) = client.send("POST", BATCH_UPDATE, Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["errors"][0]["context"]["ids"], json!([primary]));
    assert_eq!(answer["results"][0]["id"], merged.as_str());
    assert_eq!(double.contacts().len(), 1);
}

#[tokio::test]
async fn a_deleted_contact_is_gone_everywhere() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    let id = double.seed_contact("ada@example.com", &[]).id;
    let client = Client::new(&double);

    assert!(double.delete_contact(&id));
    assert!(!double.delete_contact(&id), "already gone");
    let by_id = format!("/crm/objects/2026-09/contacts/{id}");
    let by_email = "/crm/objects/2026-09/contacts/ada@example.com?idProperty=email";
    for path in [by_id.as_str(), by_email] {
        let (status, _, _) = client.send("GET", path, None).await;
        assert_eq!(status, 404, "{path}");
    }
    let patch = json!({"properties": {"firstname": "Ada"}});
    let (status, _, _) = client.send("PATCH", &by_id, Some(patch)).await;
    assert_eq!(status, 404);
    assert!(double.contact_by_email("ada@example.com").is_none());

    // The e-mail is free again: an upsert creates a new contact.
    let (status, body) = client.upsert("ada@example.com", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(body["results"][0]["new"], true);
    assert_ne!(body["results"][0]["id"], id.as_str());
}
