//! Contacts: authentication, upserts and their validation, concurrent and overlapping writes, properties, routes.

use super::*;
use std::time::Instant;

#[tokio::test]
async fn auth_requires_the_bearer_token_and_refuses_api_keys() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    let http = reqwest::Client::new();
    let url = format!("{}/crm/objects/2026-09/contacts?limit=1", double.base_url());

    let missing = http.get(&url).send().await.expect("sent");
    assert_eq!(missing.status(), 401);
    let body: Value = missing.json().await.expect("json");
    assert_eq!(body["category"], "INVALID_AUTHENTICATION");
    assert_eq!(body["status"], "error");
    assert!(body["correlationId"].is_string());

    let wrong = http
        .get(&url)
        .bearer_auth("nope")
        .send()
        .await
        .expect("sent");
    assert_eq!(wrong.status(), 401);

    let hapikey = http
        .get(format!("{url}&hapikey={TOKEN}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(hapikey.status(), 401, "API keys were shut down");

    let ok = http
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(ok.status(), 200);
    assert_eq!(double.call_count("list_contacts"), 4);
    assert_eq!(
        double.calls().iter().map(|c| c.status).collect::<Vec<_>>(),
        [401, 401, 401, 200]
    );
}

#[tokio::test]
async fn upsert_creates_then_updates_by_case_insensitive_email() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    let client = Client::new(&double);

    let (status, created) = client
        .upsert("Ada@Example.com", json!({"firstname": "Ada"}))
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["status"], "COMPLETE");
    let result = &created["results"][0];
    assert_eq!(result["new"], true);
    assert_eq!(result["properties"]["email"], "ada@example.com");
    let id = result["id"].as_str().expect("id").to_owned();

    let (status, updated) = client
        .upsert("ADA@example.COM", json!({"lastname": "Lovelace"}))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["results"][0]["id"], id.as_str());
    assert_eq!(updated["results"][0]["new"], false);

    let contact = double.contact_by_email("ada@EXAMPLE.com").expect("stored");
    assert_eq!(contact.id, id);
    assert_eq!(contact.properties["firstname"], "Ada");
    assert_eq!(contact.properties["lastname"], "Lovelace");
    assert_eq!(double.contacts().len(), 1);

    // GET by email with selected properties: unset ones come back as null, like HubSpot.
    double.define_property("chat_transcript");
    let (status, _, got) = client
        .send(
            "GET",
            "/crm/objects/2026-09/contacts/ADA@example.com?idProperty=email&properties=chat_transcript,firstname",
            None,
        )
        .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["properties"]["chat_transcript"], Value::Null);
    assert_eq!(got["properties"]["firstname"], "Ada");
}

#[tokio::test]
async fn upsert_validates_its_input() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    let client = Client::new(&double);
    let path = "/crm/objects/2026-09/contacts/batch/upsert";

    let (status, _, body) = client.send("POST", path, Some(json!({"inputs": []}))).await;
    assert_eq!(
        (status, body["category"].as_str()),
        (400, Some("VALIDATION_ERROR"))
    );
    let too_many: Vec<Value> = (0..101)
        .map(
            |i| json!({"id": format!("u{i}@example.com"), "idProperty": "email", "properties": {}}),
        )
        .collect();
    let (status, _, _) = client
        .send("POST", path, Some(json!({ "inputs": too_many })))
        .await;
    assert_eq!(status, 400);
    let by_id = json!({"inputs": [{"id": "1", "idProperty": "hs_object_id", "properties": {}}]});
    assert_eq!(client.send("POST", path, Some(by_id)).await.0, 400);
    let (status, _) = client
        .upsert("ada@example.com", json!({"favourite_colour": "blue"}))
        .await;
    assert_eq!(status, 400, "unknown property");

    let raw = reqwest::Client::new()
        .post(format!("{}{path}", double.base_url()))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("sent");
    assert_eq!(raw.status(), 400);
    let body: Value = raw.json().await.expect("json");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Invalid input JSON")),
        "{body}"
    );
    assert!(double.contacts().is_empty());
}

#[tokio::test]
async fn concurrent_upserts_of_one_email_create_one_contact() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    double.faults().set_latency(Duration::from_millis(20));
    let client = std::sync::Arc::new(Client::new(&double));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let client = client.clone();
            let email = if i % 2 == 0 {
                "grace@example.com"
            } else {
                "GRACE@example.com"
            };
            tokio::spawn(async move {
                client
                    .upsert(email, json!({"firstname": format!("Grace {i}")}))
                    .await
            })
        })
        .collect();
    let mut ids = Vec::new();
    let mut new_count = 0;
    for task in tasks {
        let (status, body) = task.await.expect("task");
        assert_eq!(status, 200, "{body}");
        ids.push(body["results"][0]["id"].as_str().expect("id").to_owned());
        new_count += usize::from(body["results"][0]["new"] == true);
    }
    ids.dedup();
    assert_eq!(
        ids.len(),
        1,
        "every upsert returned the same contact: {ids:?}"
    );
    assert_eq!(new_count, 1, "exactly one upsert created it");
    assert_eq!(double.contacts().len(), 1);
}

#[tokio::test]
async fn injected_429_has_hubspots_shape_and_no_retry_after() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    let client = Client::new(&double);
    double.faults().fail_next("upsert", 1, 429);
    let body =
        json!({"inputs": [{"id": "a@example.com", "idProperty": "email", "properties": {}}]});
    let (status, headers, error) = client
        .send(
            "POST",
            "/crm/objects/2026-09/contacts/batch/upsert",
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 429);
    assert_eq!(error["errorType"], "RATE_LIMIT");
    assert_eq!(error["policyName"], "TEN_SECONDLY_ROLLING");
    assert_eq!(
        error["message"],
        "You have reached your ten_secondly_rolling limit."
    );
    assert!(error["correlationId"].is_string());
    assert_eq!(headers["x-hubspot-ratelimit-max"], "100");
    assert_eq!(headers["x-hubspot-ratelimit-remaining"], "0");
    assert_eq!(
        headers["x-hubspot-ratelimit-interval-milliseconds"],
        "10000"
    );
    assert!(
        headers.get("retry-after").is_none(),
        "HubSpot sends no Retry-After"
    );
    assert!(double.contacts().is_empty(), "a failed call writes nothing");

    double.faults().fail_next("upsert", 1, 502);
    let (status, _, error) = client
        .send(
            "POST",
            "/crm/objects/2026-09/contacts/batch/upsert",
            Some(body.clone()),
        )
        .await;
    assert_eq!(
        (status, error["category"].as_str()),
        (502, Some("INTERNAL_ERROR"))
    );

    let (status, _, _) = client
        .send(
            "POST",
            "/crm/objects/2026-09/contacts/batch/upsert",
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "faults were used up");
    assert_eq!(double.call_count("upsert"), 3);
}

#[tokio::test]
async fn overlapping_patches_to_one_contact_are_detected() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    double.define_property("chat_transcript");
    let ada = double.seed_contact("ada@example.com", &[]).id;
    let grace = double.seed_contact("grace@example.com", &[]).id;
    double.faults().set_latency(Duration::from_millis(150));
    let client = std::sync::Arc::new(Client::new(&double));

    // Sequential PATCHes to one contact and concurrent PATCHes to different contacts are fine.
    for text in ["one", "two"] {
        let body = json!({"properties": {"chat_transcript": text}});
        let (status, _, _) = client
            .send(
                "PATCH",
                &format!("/crm/objects/2026-09/contacts/{ada}"),
                Some(body),
            )
            .await;
        assert_eq!(status, 200);
    }
    assert_eq!(double.peak_writes_in_flight(), 1, "one write at a time");
    let patch = |id: &str, text: &'static str| spawn_patch(&client, id, text);
    let (a, b) = tokio::join!(patch(&ada, "ada"), patch(&grace, "grace"));
    assert_eq!((a.expect("task").0, b.expect("task").0), (200, 200));
    assert_eq!(double.overlapping_patches(), Vec::<String>::new());
    // Counted as two write calls in flight at once, whatever they update; forgotten with the calls.
    assert_eq!(double.peak_writes_in_flight(), 2);
    double.clear_calls();
    assert_eq!(double.peak_writes_in_flight(), 0);

    // Two at once to one contact: a lost-update race, reported.
    let first = patch(&ada, "first");
    tokio::time::sleep(Duration::from_millis(30)).await;
    let second = patch(&ada, "second");
    let (first, second) = tokio::join!(first, second);
    assert_eq!(
        (first.expect("task").0, second.expect("task").0),
        (200, 200)
    );
    let overlaps = double.overlapping_patches();
    assert_eq!(overlaps.len(), 1, "{overlaps:?}");
    assert!(overlaps[0].contains(&ada), "{overlaps:?}");
    // The write lands at the end of the request.
    assert_eq!(
        double.contact(&ada).expect("contact").properties["chat_transcript"],
        "second"
    );

    // A client that gives up mid-request stops counting as in flight.
    double.clear_calls();
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(30))
        .build()
        .expect("client");
    let abandoned = impatient
        .patch(format!(
            "{}/crm/objects/2026-09/contacts/{ada}",
            double.base_url()
        ))
        .bearer_auth(TOKEN)
        .json(&json!({"properties": {"chat_transcript": "lost"}}))
        .send()
        .await;
    assert!(abandoned.is_err(), "timed out");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (status, _, _) = client
        .send(
            "PATCH",
            &format!("/crm/objects/2026-09/contacts/{ada}"),
            Some(json!({"properties": {"chat_transcript": "after"}})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(double.overlapping_patches(), Vec::<String>::new());
    assert_eq!(
        double.contact(&ada).expect("contact").properties["chat_transcript"],
        "after"
    );
    assert_eq!(
        double.calls()[0].status,
        0,
        "the abandoned call got no response"
    );
}

/// Write calls held until two are in flight meet there whenever each arrives, and a lone one goes on at the
/// hold's end: a test of parallel writes does not depend on how the client's paths are timed.
#[tokio::test]
async fn held_writes_meet_whenever_each_arrives_and_a_lone_one_goes_on_in_time() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    double.define_property("chat_transcript");
    let ada = double.seed_contact("ada@example.com", &[]).id;
    let grace = double.seed_contact("grace@example.com", &[]).id;
    let client = std::sync::Arc::new(Client::new(&double));
    let patch = |id: &str, text: &'static str| spawn_patch(&client, id, text);

    // The first waits for the second, which comes 400 ms later; then both go on.
    double.hold_writes_until_in_flight(2, Duration::from_secs(10));
    let first = patch(&ada, "ada");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = patch(&grace, "grace");
    let (first, second) = tokio::join!(first, second);
    let (first, second) = (first.expect("task"), second.expect("task"));
    assert_eq!((first.0, second.0), (200, 200));
    assert!(first.1 >= Duration::from_millis(400), "held: {first:?}");
    assert!(
        second.1 < Duration::from_secs(5),
        "met, not held: {second:?}"
    );
    assert_eq!(double.peak_writes_in_flight(), 2);
    assert_eq!(double.overlapping_patches(), Vec::<String>::new());

    // A lone write goes on when the hold ends, and the hold is over for the next.
    double.clear_calls();
    let hold = Duration::from_millis(1_500);
    double.hold_writes_until_in_flight(2, hold);
    let lone = patch(&ada, "lone").await.expect("task");
    assert_eq!(lone.0, 200);
    assert!(lone.1 >= hold, "held: {lone:?}");
    assert!(lone.1 < hold * 4, "ended in time: {lone:?}");
    let next = patch(&ada, "next").await.expect("task");
    assert_eq!(next.0, 200);
    assert!(next.1 < hold, "not held: {next:?}");
    assert_eq!(double.peak_writes_in_flight(), 1);
    assert_eq!(
        double.contact(&ada).expect("contact").properties["chat_transcript"],
        "next"
    );
}

#[tokio::test]
async fn patch_enforces_the_property_limit_and_known_properties() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    double.define_property("chat_transcript");
    let id = double
        .seed_contact("ada@example.com", &[("firstname", "Ada")])
        .id;
    let client = Client::new(&double);
    let path = format!("/crm/objects/2026-09/contacts/{id}");

    let at_limit = "x".repeat(65_536);
    let (status, _, body) = client
        .send(
            "PATCH",
            &path,
            Some(json!({"properties": {"chat_transcript": at_limit}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["archived"], false);
    assert!(body["updatedAt"].is_string());

    // 65,536 UTF-16 units of emoji are 32,768 characters in Rust but too long for HubSpot.
    for too_long in ["x".repeat(65_537), "😀".repeat(32_769)] {
        let (status, _, body) = client
            .send(
                "PATCH",
                &path,
                Some(json!({"properties": {"chat_transcript": too_long}})),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["category"], "VALIDATION_ERROR");
    }
    let (status, _, body) = client
        .send("PATCH", &path, Some(json!({"properties": {"nope": "x"}})))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("PROPERTY_DOESNT_EXIST")),
        "{body}"
    );

    let (status, _, body) = client
        .send(
            "PATCH",
            "/crm/objects/2026-09/contacts/999999",
            Some(json!({"properties": {}})),
        )
        .await;
    assert_eq!(
        (status, body["category"].as_str()),
        (404, Some("OBJECT_NOT_FOUND"))
    );
    assert_eq!(
        double.contact(&id).expect("contact").properties["chat_transcript"].len(),
        65_536
    );
}

#[tokio::test]
async fn create_property_then_conflict() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    let client = Client::new(&double);
    let definition = json!({
        "name": "chat_transcript", "label": "Chat transcript", "type": "string",
        "fieldType": "textarea", "groupName": "contactinformation"
    });
    let (status, _, body) = client
        .send(
            "POST",
            "/crm/properties/2026-09/contacts",
            Some(definition.clone()),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["name"], "chat_transcript");
    let (status, _, body) = client
        .send("POST", "/crm/properties/2026-09/contacts", Some(definition))
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["category"], "OBJECT_ALREADY_EXISTS");
    assert_eq!(
        body["message"],
        "Property named 'chat_transcript' already exists."
    );
    assert_eq!(double.call_count("create_property"), 2);
}

#[tokio::test]
async fn list_and_unknown_routes() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    for i in 0..3 {
        double.seed_contact(&format!("u{i}@example.com"), &[]);
    }
    let client = Client::new(&double);
    let (status, _, page) = client
        .send("GET", "/crm/objects/2026-09/contacts?limit=2", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["results"].as_array().map(Vec::len), Some(2));
    let after = page["paging"]["next"]["after"].as_str().expect("next page");
    let (_, _, rest) = client
        .send(
            "GET",
            &format!("/crm/objects/2026-09/contacts?limit=2&after={after}"),
            None,
        )
        .await;
    assert_eq!(rest["results"].as_array().map(Vec::len), Some(1));

    let (status, _, body) = client
        .send("GET", "/crm/objects/2026-09/nothing-here", None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["status"], "error");
}

/// PATCHes a contact's transcript on a task of its own: the status, and how long the call took.
fn spawn_patch(
    client: &std::sync::Arc<Client>,
    id: &str,
    text: &'static str,
) -> tokio::task::JoinHandle<(u16, Duration)> {
    let client = client.clone();
    let path = format!("/crm/objects/2026-09/contacts/{id}");
    tokio::spawn(async move {
        let began = Instant::now();
        let body = json!({"properties": {"chat_transcript": text}});
        let (status, _, _) = client.send("PATCH", &path, Some(body)).await;
        (status, began.elapsed())
    })
}
