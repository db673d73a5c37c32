//! Notes: creation, batch create/update/read, their associations to contacts, paging, merges and deletions.

use super::*;

#[tokio::test]
async fn a_note_is_created_on_a_contact_read_back_and_listed_under_it() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    let ada = double.seed_contact("ada@example.com", &[]).id;
    let client = Client::new(&double);

    let body = note(&ada, "<p>Hello</p>", "2026-11-24T10:00:00Z");
    let (status, _, created) = client.send("POST", NOTES, Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(id.parse::<u64>().is_ok(), "a numeric id: {id}");
    assert_eq!(created["archived"], false);
    assert!(created["createdAt"].is_string() && created["updatedAt"].is_string());
    let properties = &created["properties"];
    assert_eq!(properties["hs_note_body"], "<p>Hello</p>");
    assert_eq!(properties["hs_timestamp"], "2026-11-24T10:00:00.000Z");
    assert_eq!(properties["hs_object_id"], id.as_str());
    assert_eq!(properties["hs_createdate"], created["createdAt"]);
    assert_eq!(properties["hs_lastmodifieddate"], created["updatedAt"]);

    // Read back: the properties asked for (an undefined one is left out), and the system ones always.
    let path = format!("{NOTES}/{id}?properties=hs_note_body,hubspot_owner_id,no_such_thing");
    let (status, _, got) = client.send("GET", &path, None).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["properties"]["hs_note_body"], "<p>Hello</p>");
    assert_eq!(got["properties"]["hubspot_owner_id"], Value::Null);
    assert!(got["properties"].get("no_such_thing").is_none(), "{got}");
    assert!(got["properties"].get("hs_timestamp").is_none(), "{got}");
    assert_eq!(got["properties"]["hs_object_id"], id.as_str());
    let (status, _, bare) = client.send("GET", &format!("{NOTES}/{id}"), None).await;
    assert_eq!(status, 200);
    let mut names: Vec<&String> = bare["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
        "HubSpot names only the system properties when none are asked for"
    );
    let (status, _, missing) = client.send("GET", &format!("{NOTES}/999"), None).await;
    assert_eq!(
        (status, missing["category"].as_str()),
        (404, Some("OBJECT_NOT_FOUND"))
    );

    // The contact's notes, seen from the contact: association types are one-way, so contact → note is 201.
    let (status, listing) = read_note_associations(&client, &ada, None).await;
    assert_eq!(status, 200, "{listing}");
    let id_number: u64 = id.parse().expect("numeric");
    assert_eq!(listed_note_ids(&listing, &ada), [id_number]);
    assert!(listing["results"][0].get("paging").is_none(), "{listing}");
    assert!(listing.get("errors").is_none(), "{listing}");
    let (status, unknown) = read_note_associations(&client, "999999", None).await;
    assert_eq!(
        status, 200,
        "an unknown contact is an error entry: {unknown}"
    );
    assert_no_associations(&unknown, "999999");

    // A second, earlier note (epoch millis): listed after the first, in id order.
    let earlier = note(&ada, "first chat", "1764000000000");
    let (status, _, second) = client.send("POST", NOTES, Some(earlier)).await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(
        second["properties"]["hs_timestamp"], "2025-11-24T16:00:00.000Z",
        "stored as HubSpot answers it"
    );
    let second_id = second["id"].as_str().expect("id").to_owned();
    let (_, listing) = read_note_associations(&client, &ada, None).await;
    assert_eq!(
        listed_note_ids(&listing, &ada),
        [id_number, second_id.parse::<u64>().expect("numeric")]
    );
    let (status, answer) = read_note_associations(&client, &ada, Some("not a cursor")).await;
    assert_eq!(
        (status, answer["category"].as_str()),
        (400, Some("VALIDATION_ERROR")),
        "{answer}"
    );

    // The timeline runs by hs_timestamp, not by creation.
    assert_eq!(
        ids_of(&double.notes_of_contact(&ada)),
        [second_id.as_str(), id.as_str()]
    );
    assert_eq!(ids_of(&double.notes()), [id.as_str(), second_id.as_str()]);
    let stored = double.note(&id).expect("stored");
    assert_eq!(stored.contacts, [ada.as_str()]);
    assert_eq!(stored.properties["hs_note_body"], "<p>Hello</p>");

    // PATCH: 200 with the note, 404 for an unknown one.
    let update = json!({"properties": {"hs_note_body": "<p>Hello again</p>"}});
    let (status, _, patched) = client
        .send("PATCH", &format!("{NOTES}/{id}"), Some(update.clone()))
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["properties"]["hs_note_body"], "<p>Hello again</p>");
    assert_eq!(
        patched["properties"]["hs_timestamp"],
        "2026-11-24T10:00:00.000Z"
    );
    let (status, _, _) = client
        .send("PATCH", &format!("{NOTES}/999"), Some(update))
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = client
        .send(
            "PATCH",
            &format!("{NOTES}/{id}"),
            Some(json!({"properties": {"hs_timestamp": ""}})),
        )
        .await;
    assert_eq!(status, 400, "a note keeps its place on the timeline");
    assert_eq!(
        (
            double.call_count("notes_create"),
            double.call_count("notes_get"),
            double.call_count("contact_notes"),
            double.call_count("notes_update"),
        ),
        (2, 3, 4, 3)
    );
}

#[tokio::test]
async fn batch_create_makes_every_note_or_none() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    let ada = double.seed_contact("ada@example.com", &[]).id;
    let grace = double.seed_contact("grace@example.com", &[]).id;
    let client = Client::new(&double);

    let inputs = json!({"inputs": [
        note(&grace, "one", "2026-11-24T10:00:00Z"),
        note(&ada, "two", "2026-11-24T09:00:00Z"),
        note(&grace, "three", "2026-11-24T08:00:00Z"),
    ]});
    let (status, _, created) = client.send("POST", NOTES_BATCH_CREATE, Some(inputs)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "COMPLETE");
    assert!(created["startedAt"].is_string() && created["completedAt"].is_string());
    let results = created["results"].as_array().expect("results");
    let bodies: Vec<&str> = results
        .iter()
        .filter_map(|r| r["properties"]["hs_note_body"].as_str())
        .collect();
    assert_eq!(bodies, ["one", "two", "three"], "results in input order");
    let ids: Vec<&str> = results.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids_of(&double.notes_of_contact(&grace)), [ids[2], ids[0]]);
    assert_eq!(ids_of(&double.notes_of_contact(&ada)), [ids[1]]);

    let wrong_type = {
        let mut input = note(&ada, "x", "2026-11-24T10:00:00Z");
        input["associations"][0]["types"][0]["associationTypeId"] = json!(190);
        input
    };
    let user_defined = {
        let mut input = note(&ada, "x", "2026-11-24T10:00:00Z");
        input["associations"][0]["types"][0]["associationCategory"] = json!("USER_DEFINED");
        input
    };
    let fine = || note(&ada, "fine", "2026-11-24T10:00:00Z");
    let refused = [
        (
            "an unknown contact",
            vec![fine(), note("999999", "x", "2026-11-24T10:00:00Z")],
        ),
        (
            "no hs_timestamp",
            vec![
                fine(),
                json!({"properties": {"hs_note_body": "when?"}, "associations": []}),
            ],
        ),
        (
            "no associations, which the documents require ([] for none)",
            vec![json!({"properties": {"hs_note_body": "hi", "hs_timestamp": "1"}})],
        ),
        (
            "a timestamp that is none",
            vec![fine(), note(&ada, "x", "tomorrow")],
        ),
        (
            "a body over 65,536 characters",
            vec![
                fine(),
                note(&ada, &"x".repeat(65_537), "2026-11-24T10:00:00Z"),
            ],
        ),
        (
            "a body over 65,536 UTF-16 units",
            vec![note(&ada, &"😀".repeat(32_769), "2026-11-24T10:00:00Z")],
        ),
        ("a company association type", vec![fine(), wrong_type]),
        ("a user-defined association", vec![user_defined]),
        (
            "an undefined property",
            vec![json!({"properties": {"hs_timestamp": "1", "mood": "sunny"}, "associations": []})],
        ),
        (
            "a read-only property",
            vec![
                json!({"properties": {"hs_timestamp": "1", "hs_object_id": "7"}, "associations": []}),
            ],
        ),
        ("no inputs", vec![]),
        ("too many inputs", (0..101).map(|_| fine()).collect()),
    ];
    for (what, inputs) in refused {
        let (status, _, body) = client
            .send(
                "POST",
                NOTES_BATCH_CREATE,
                Some(json!({ "inputs": inputs })),
            )
            .await;
        assert_eq!(
            (status, body["category"].as_str()),
            (400, Some("VALIDATION_ERROR")),
            "{what}: {body}"
        );
    }
    assert_eq!(double.notes().len(), 3, "no refused batch created anything");

    // HubSpot's answers for the two the app is likeliest to meet.
    let missing =
        json!({"inputs": [{"properties": {"hs_note_body": "when?"}, "associations": []}]});
    let (_, _, body) = client.send("POST", NOTES_BATCH_CREATE, Some(missing)).await;
    assert_eq!(
        body["message"],
        "Error creating NOTE. Some required properties were not set."
    );
    assert_eq!(body["context"]["properties"], json!(["hs_timestamp"]));
    let too_long = json!({"inputs": [note(&ada, &"x".repeat(65_537), "2026-11-24T10:00:00Z")]});
    let (_, _, body) = client
        .send("POST", NOTES_BATCH_CREATE, Some(too_long))
        .await;
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("INVALID_LENGTH") && m.contains("hs_note_body")),
        "{body}"
    );

    // At the limit is fine, and a custom property works once defined.
    double.define_note_property("chat_id");
    let mut at_limit = note(&ada, &"x".repeat(65_536), "2026-11-24T10:00:00Z");
    at_limit["properties"]["chat_id"] = json!("c-1");
    let (status, _, body) = client
        .send(
            "POST",
            NOTES_BATCH_CREATE,
            Some(json!({"inputs": [at_limit]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["results"][0]["properties"]["chat_id"], "c-1");
    assert_eq!(double.call_count("notes_batch_create"), 16);
}

#[tokio::test]
async fn batch_update_and_read_of_notes_report_unknown_ids() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    let ada = double.seed_contact("ada@example.com", &[]).id;
    let client = Client::new(&double);
    let inputs = json!({"inputs": [
        note(&ada, "one", "2026-11-24T10:00:00Z"),
        note(&ada, "two", "2026-11-24T11:00:00Z"),
    ]});
    let (_, _, created) = client.send("POST", NOTES_BATCH_CREATE, Some(inputs)).await;
    let first = created["results"][0]["id"].as_str().expect("id").to_owned();
    let second = created["results"][1]["id"].as_str().expect("id").to_owned();
    let body_of = |id: &str| {
        double
            .note(id)
            .and_then(|n| n.properties.get("hs_note_body").cloned())
    };
    let update = |id: &str, text: &str| json!({"id": id, "properties": {"hs_note_body": text}});

    let (status, _, answer) = client
        .send(
            "POST",
            NOTES_BATCH_UPDATE,
            Some(json!({"inputs": [update(&first, "1"), update(&second, "2")]})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "COMPLETE");
    assert!(answer.get("errors").is_none(), "{answer}");
    assert_eq!(answer["results"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        (body_of(&first).as_deref(), body_of(&second).as_deref()),
        (Some("1"), Some("2"))
    );

    let (status, _, answer) = client
        .send(
            "POST",
            NOTES_BATCH_UPDATE,
            Some(json!({"inputs": [update(&first, "one again"), update("999", "lost")]})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["results"].as_array().map(Vec::len), Some(1));
    assert_eq!(answer["results"][0]["id"], first.as_str());
    assert_eq!(answer["numErrors"], 1);
    let error = &answer["errors"][0];
    assert_eq!(error["status"], "error");
    assert_eq!(error["category"], "OBJECT_NOT_FOUND");
    assert_eq!(error["context"]["ids"], json!(["999"]));
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("NOTE objects")),
        "{error}"
    );
    assert_eq!(body_of(&first).as_deref(), Some("one again"));

    let refused = [
        json!({"inputs": [update(&first, "a"), update(&first, "b")]}),
        json!({"inputs": [update(&first, "a"), {"id": second, "properties": {"hs_note_body": "x".repeat(65_537)}}]}),
        json!({"inputs": [{"id": "ada@example.com", "idProperty": "email", "properties": {}}]}),
    ];
    for body in refused {
        let (status, _, answer) = client.send("POST", NOTES_BATCH_UPDATE, Some(body)).await;
        assert_eq!(status, 400, "{answer}");
    }
    assert_eq!(
        body_of(&first).as_deref(),
        Some("one again"),
        "nothing written"
    );

    let read = json!({"properties": ["hs_note_body"], "propertiesWithHistory": [],
                      "inputs": [{"id": first}, {"id": second}]});
    let (status, _, answer) = client.send("POST", NOTES_BATCH_READ, Some(read)).await;
    assert_eq!(status, 200, "{answer}");
    let bodies: Vec<&str> = answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["properties"]["hs_note_body"].as_str())
        .collect();
    assert_eq!(bodies, ["one again", "2"]);
    let read = json!({"properties": ["hs_note_body"], "propertiesWithHistory": [],
                      "inputs": [{"id": first}, {"id": "999"}]});
    let (status, _, answer) = client.send("POST", NOTES_BATCH_READ, Some(read)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["results"][0]["id"], first.as_str());
    assert_eq!(answer["errors"][0]["category"], "OBJECT_NOT_FOUND");
    assert_eq!(answer["errors"][0]["context"]["ids"], json!(["999"]));
    // The documents require both property lists, [] for none; the double keeps no history.
    let incomplete = [
        json!({"properties": ["hs_note_body"], "inputs": [{"id": first}]}),
        json!({"propertiesWithHistory": [], "inputs": [{"id": first}]}),
        json!({"properties": [], "propertiesWithHistory": ["hs_note_body"], "inputs": [{"id": first}]}),
    ];
    for read in incomplete {
        let (status, _, answer) = client.send("POST", NOTES_BATCH_READ, Some(read)).await;
        assert_eq!(
            (status, answer["category"].as_str()),
            (400, Some("VALIDATION_ERROR")),
            "{answer}"
        );
    }
    assert_eq!(
        (
            double.call_count("notes_batch_update"),
            double.call_count("notes_batch_read")
        ),
        (5, 5)
    );
}

#[tokio::test]
async fn a_late_note_update_overlaps_a_second_update_of_that_note() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    let ada = double.seed_contact("ada@example.com", &[]).id;
    let client = Client::new(&double);
    let inputs = json!({"inputs": [
        note(&ada, "one", "2026-11-24T10:00:00Z"),
        note(&ada, "other", "2026-11-24T11:00:00Z"),
    ]});
    let (_, _, created) = client.send("POST", NOTES_BATCH_CREATE, Some(inputs)).await;
    let id = created["results"][0]["id"].as_str().expect("id").to_owned();
    let other = created["results"][1]["id"].as_str().expect("id").to_owned();
    let body_of = |id: &str| {
        double
            .note(id)
            .and_then(|n| n.properties.get("hs_note_body").cloned())
    };

    double.set_late_writes(1.0, Duration::from_millis(300));
    let late = json!({"inputs": [{"id": id, "properties": {"hs_note_body": "late"}}]});
    let (status, _, answer) = client.send("POST", NOTES_BATCH_UPDATE, Some(late)).await;
    assert_eq!(
        (status, answer["message"].as_str()),
        (502, Some("Bad Gateway"))
    );
    assert_eq!(double.late_writes_pending(), 1);
    assert_eq!(body_of(&id).as_deref(), Some("one"), "not landed yet");

    // Another note is not in flight; the same one is, until the late write has landed.
    double.set_late_writes(0.0, Duration::ZERO);
    let patch = |text: &str| json!({"properties": {"hs_note_body": text}});
    let (status, _, _) = client
        .send("PATCH", &format!("{NOTES}/{other}"), Some(patch("fine")))
        .await;
    assert_eq!(status, 200);
    assert_eq!(double.overlapping_patches(), Vec::<String>::new());
    let (status, _, _) = client
        .send("PATCH", &format!("{NOTES}/{id}"), Some(patch("retry")))
        .await;
    assert_eq!(status, 200);
    let overlaps = double.overlapping_patches();
    assert_eq!(overlaps.len(), 1, "{overlaps:?}");
    assert!(
        overlaps[0].starts_with(&format!("notes_update to note {id} ")),
        "{overlaps:?}"
    );
    wait_for_late_writes(&double).await;
    assert_eq!(
        body_of(&id).as_deref(),
        Some("late"),
        "the late write landed last"
    );

    // A late create lands too: the client saw a 502, yet the note is there.
    double.clear_calls();
    double.set_late_writes(1.0, Duration::from_millis(50));
    let (status, _, _) = client
        .send(
            "POST",
            NOTES,
            Some(note(&ada, "ghost", "2026-11-24T12:00:00Z")),
        )
        .await;
    assert_eq!(status, 502);
    assert_eq!(double.late_writes(), 1);
    wait_for_late_writes(&double).await;
    assert_eq!(double.notes_of_contact(&ada).len(), 3);
    assert_eq!(double.overlapping_patches(), Vec::<String>::new());
}

#[tokio::test]
async fn a_merge_keeps_both_timelines_and_a_deletion_keeps_the_notes() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    let ada = double.seed_contact("ada@example.com", &[]).id;
    let augusta = double.seed_contact("augusta@example.com", &[]).id;
    let client = Client::new(&double);
    let inputs = json!({"inputs": [
        note(&ada, "ada's chat", "2026-11-24T12:00:00Z"),
        note(&augusta, "augusta's chat", "2026-11-24T11:00:00Z"),
    ]});
    let (status, _, created) = client.send("POST", NOTES_BATCH_CREATE, Some(inputs)).await;
    assert_eq!(status, 201, "{created}");
    let ada_note = created["results"][0]["id"].as_str().expect("id").to_owned();
    let augusta_note = created["results"][1]["id"].as_str().expect("id").to_owned();

    let merged = double.merge_contacts(&ada, &augusta).expect("merged");
    assert_eq!(
        ids_of(&double.notes_of_contact(&merged)),
        [augusta_note.as_str(), ada_note.as_str()],
        "both timelines, by hs_timestamp"
    );
    assert!(double.notes_of_contact(&ada).is_empty());
    let (status, listing) = read_note_associations(&client, &merged, None).await;
    assert_eq!(status, 200, "{listing}");
    let numeric = |id: &str| id.parse::<u64>().expect("numeric");
    assert_eq!(
        listed_note_ids(&listing, &merged),
        [numeric(&ada_note), numeric(&augusta_note)]
    );
    let (status, gone) = read_note_associations(&client, &ada, None).await;
    assert_eq!(status, 200);
    assert_no_associations(&gone, &ada);
    assert_eq!(
        double.note(&ada_note).expect("note").contacts,
        [merged.as_str()]
    );

    assert!(double.delete_contact(&merged));
    let kept = double.note(&ada_note).expect("the note stays");
    assert!(kept.contacts.is_empty(), "{kept:?}");
    assert_eq!(double.notes().len(), 2);
    let (status, _, _) = client
        .send("GET", &format!("{NOTES}/{ada_note}"), None)
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_contacts_notes_are_read_a_page_at_a_time_per_input() {
    use sandbox::hubspot::ASSOCIATIONS_PER_PAGE;
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    let ada = double.seed_contact("ada@example.com", &[]).id;
    let grace = double.seed_contact("grace@example.com", &[]).id;
    let lonely = double.seed_contact("lonely@example.com", &[]).id;
    let client = Client::new(&double);
    // Two pages' worth for Ada, one note for Grace, none for the third contact.
    let mut ada_notes = Vec::new();
    let mut left = ASSOCIATIONS_PER_PAGE + 2;
    while left > 0 {
        let count = left.min(100);
        let inputs: Vec<Value> = (0..count)
            .map(|i| note(&ada, &format!("chat {i}"), "2026-11-24T10:00:00Z"))
            .collect();
        let (status, _, created) = client
            .send(
                "POST",
                NOTES_BATCH_CREATE,
                Some(json!({ "inputs": inputs })),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        ada_notes.extend(
            created["results"]
                .as_array()
                .expect("results")
                .iter()
                .map(|r| {
                    r["id"]
                        .as_str()
                        .expect("id")
                        .parse::<u64>()
                        .expect("numeric")
                }),
        );
        left -= count;
    }
    ada_notes.sort_unstable();
    let (_, _, created) = client
        .send(
            "POST",
            NOTES_BATCH_CREATE,
            Some(json!({"inputs": [note(&grace, "hers", "2026-11-24T10:00:00Z")]})),
        )
        .await;
    let grace_note: u64 = created["results"][0]["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("id");

    // One request, three inputs: a full page and a cursor for Ada, Grace's one note, an error entry for the third.
    let body = json!({"inputs": [{"id": ada}, {"id": grace}, {"id": lonely}]});
    let (status, _, answer) = client.send("POST", NOTE_ASSOCIATIONS, Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), 2, "{answer}");
    let of = |contact: &str| {
        results
            .iter()
            .find(|r| r["from"]["id"] == contact)
            .unwrap_or_else(|| panic!("a result for {contact}"))
    };
    let ids = |result: &Value| -> Vec<u64> {
        result["to"]
            .as_array()
            .expect("to")
            .iter()
            .filter_map(|to| to["toObjectId"].as_str()?.parse().ok())
            .collect()
    };
    assert_eq!(ids(of(&ada)), ada_notes[..ASSOCIATIONS_PER_PAGE]);
    let after = of(&ada)["paging"]["next"]["after"]
        .as_str()
        .expect("a next page")
        .to_owned();
    assert_eq!(ids(of(&grace)), [grace_note]);
    assert!(of(&grace).get("paging").is_none());
    assert_eq!(answer["numErrors"], 1);
    assert_eq!(
        answer["errors"][0]["context"]["fromObjectId"],
        json!([lonely])
    );

    // The cursor goes back with Ada's id: the rest, and no further page.
    let (status, rest) = read_note_associations(&client, &ada, Some(&after)).await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(
        listed_note_ids(&rest, &ada),
        ada_notes[ASSOCIATIONS_PER_PAGE..]
    );
    assert!(rest["results"][0].get("paging").is_none(), "{rest}");

    for refused in [json!({"inputs": []}), json!({"inputs": [{"after": "1"}]})] {
        let (status, _, answer) = client.send("POST", NOTE_ASSOCIATIONS, Some(refused)).await;
        assert_eq!(
            (status, answer["category"].as_str()),
            (400, Some("VALIDATION_ERROR")),
            "{answer}"
        );
    }
    assert_eq!(double.call_count("contact_notes"), 4);
}
