//! The HubSpot double behaves like the real API where the app depends on it.

use sandbox::HubSpotDouble;
use serde_json::{json, Value};
use std::time::Duration;

const TOKEN: &str = "pat-na1-sandbox";

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(double: &HubSpotDouble) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: double.base_url(),
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    async fn upsert(&self, email: &str, properties: Value) -> (u16, Value) {
        let body =
            json!({"inputs": [{"id": email, "idProperty": "email", "properties": properties}]});
        let (status, _, body) = self
            .send(
                "POST",
                "/crm/objects/2026-09/contacts/batch/upsert",
                Some(body),
            )
            .await;
        (status, body)
    }
}

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
    let patch = |id: String, text: &'static str| {
        let client = client.clone();
        tokio::spawn(async move {
            let body = json!({"properties": {"chat_transcript": text}});
            client
                .send(
                    "PATCH",
                    &format!("/crm/objects/2026-09/contacts/{id}"),
                    Some(body),
                )
                .await
                .0
        })
    };
    let (a, b) = tokio::join!(patch(ada.clone(), "ada"), patch(grace.clone(), "grace"));
    assert_eq!((a.expect("task"), b.expect("task")), (200, 200));
    assert_eq!(double.overlapping_patches(), Vec::<String>::new());

    // Two at once to one contact: a lost-update race, reported.
    let first = patch(ada.clone(), "first");
    tokio::time::sleep(Duration::from_millis(30)).await;
    let second = patch(ada.clone(), "second");
    let (first, second) = tokio::join!(first, second);
    assert_eq!((first.expect("task"), second.expect("task")), (200, 200));
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

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Polls until the double's late writes have landed, so tests wait for the event rather than a guessed time.
async fn wait_for_late_writes(double: &HubSpotDouble) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while double.late_writes_pending() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "late writes never landed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const BATCH_UPDATE: &str = "/crm/objects/2026-09/contacts/batch/update";

#[tokio::test]
async fn refused_requests_count_against_the_rolling_limit() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    double.set_rate_limit(Some(5));
    let client = Client::new(&double);
    let mut statuses = Vec::new();
    let mut remaining = Vec::new();
    for _ in 0..8 {
        let (status, headers, body) = client
            .send("GET", "/crm/objects/2026-09/contacts", None)
            .await;
        statuses.push(status);
        remaining.push(header(&headers, "x-hubspot-ratelimit-remaining"));
        assert_eq!(
            header(&headers, "x-hubspot-ratelimit-max").as_deref(),
            Some("5")
        );
        assert_eq!(
            header(&headers, "x-hubspot-ratelimit-interval-milliseconds").as_deref(),
            Some("10000")
        );
        if status == 429 {
            assert_eq!(body["policyName"], "TEN_SECONDLY_ROLLING", "{body}");
            assert_eq!(body["errorType"], "RATE_LIMIT");
            assert_eq!(
                body["message"],
                "You have reached your ten_secondly_rolling limit."
            );
            assert!(body["correlationId"].is_string());
            assert!(
                body["groupName"]
                    .as_str()
                    .is_some_and(|g| g.starts_with("publicapi:private-app:")),
                "{body}"
            );
            assert!(headers.get("retry-after").is_none());
        }
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    let remaining: Vec<_> = remaining.iter().map(|r| r.as_deref()).collect();
    let expected = ["4", "3", "2", "1", "0", "0", "0", "0"].map(Some);
    assert_eq!(remaining, expected);
    assert_eq!(double.peak_requests_in_window(), 8);
    assert_eq!(double.rate_limited(), 3);

    // A request without the app's token is not the app's: it is neither counted nor stamped.
    let anonymous = reqwest::Client::new()
        .get(format!(
            "{}/crm/objects/2026-09/contacts",
            double.base_url()
        ))
        .send()
        .await
        .expect("sent");
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().get("x-hubspot-ratelimit-max").is_none());
    assert_eq!(double.peak_requests_in_window(), 8);

    double.clear_calls();
    assert_eq!(
        (double.peak_requests_in_window(), double.rate_limited()),
        (0, 0)
    );
    // Clearing the observations does not empty HubSpot's window: the client is still refused.
    let (status, _, _) = client
        .send("GET", "/crm/objects/2026-09/contacts", None)
        .await;
    assert_eq!(status, 429);
    assert_eq!(
        (double.peak_requests_in_window(), double.rate_limited()),
        (1, 1)
    );
}

#[tokio::test]
async fn every_answer_carries_the_rate_limit_headers_while_a_limit_is_set() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    let client = Client::new(&double);

    // No limit: an unlimited test account answers without rate-limit headers, but the peak is still measured.
    let (status, headers, _) = client
        .send("GET", "/crm/objects/2026-09/contacts", None)
        .await;
    assert_eq!(status, 200);
    assert!(
        headers
            .keys()
            .all(|name| !name.as_str().starts_with("x-hubspot-ratelimit")),
        "{headers:?}"
    );
    assert_eq!(double.peak_requests_in_window(), 1);

    double.set_rate_limit(Some(10));
    double.faults().fail_next("get_contact", 1, 502);
    double.faults().fail_next("list_contacts", 1, 429);
    let answers = [
        ("GET", "/crm/objects/2026-09/contacts/999"),
        ("GET", "/crm/objects/2026-09/contacts/999"),
        ("GET", "/crm/objects/2026-09/contacts"),
        ("GET", "/crm/objects/2026-09/nothing-here"),
        ("DELETE", "/crm/objects/2026-09/contacts"),
    ];
    let mut seen = Vec::new();
    for (method, path) in answers {
        let (status, headers, _) = client.send(method, path, None).await;
        seen.push((
            status,
            header(&headers, "x-hubspot-ratelimit-max"),
            header(&headers, "x-hubspot-ratelimit-remaining"),
        ));
    }
    let ten = || Some("10".to_owned());
    let left = |n: u32| Some(n.to_string());
    assert_eq!(
        seen,
        [
            (502, ten(), left(9)),
            (404, ten(), left(8)),
            // An injected 429 carries the real counts once a limit is set, and does not count as the limiter's.
            (429, ten(), left(7)),
            (404, ten(), left(6)),
            (405, ten(), left(5)),
        ]
    );
    assert_eq!(double.rate_limited(), 0);
    assert_eq!(double.peak_requests_in_window(), 6);

    double.set_rate_limit(None);
    let (_, headers, _) = client
        .send("GET", "/crm/objects/2026-09/contacts", None)
        .await;
    assert!(headers.get("x-hubspot-ratelimit-remaining").is_none());
}

#[tokio::test]
async fn the_daily_limit_refuses_with_policy_daily() {
    let double = HubSpotDouble::start(TOKEN).await.expect("starts");
    double.set_daily_limit(Some(2));
    let client = Client::new(&double);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (status, headers, body) = client
            .send("GET", "/crm/objects/2026-09/contacts", None)
            .await;
        assert_eq!(
            header(&headers, "x-hubspot-ratelimit-daily").as_deref(),
            Some("2")
        );
        assert!(
            headers.get("x-hubspot-ratelimit-max").is_none(),
            "no rolling limit set"
        );
        seen.push((
            status,
            header(&headers, "x-hubspot-ratelimit-daily-remaining"),
        ));
        if status == 429 {
            assert_eq!(body["policyName"], "DAILY", "{body}");
            assert_eq!(body["errorType"], "RATE_LIMIT");
            assert_eq!(body["message"], "You have reached your daily limit.");
        }
    }
    let left = |n: u32| Some(n.to_string());
    assert_eq!(seen, [(200, left(1)), (200, left(0)), (429, left(0))]);
    assert_eq!(double.rate_limited(), 1);

    // Waiting out the rolling window does not help: the daily cap is checked first.
    double.set_rate_limit(Some(100));
    let (status, _, body) = client
        .send("GET", "/crm/objects/2026-09/contacts", None)
        .await;
    assert_eq!((status, body["policyName"].as_str()), (429, Some("DAILY")));
    double.set_daily_limit(None);
    let (status, headers, _) = client
        .send("GET", "/crm/objects/2026-09/contacts", None)
        .await;
    assert_eq!(status, 200);
    assert!(headers.get("x-hubspot-ratelimit-daily").is_none());
}

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

const NOTES: &str = "/crm/objects/2026-09/notes";
const NOTES_BATCH_CREATE: &str = "/crm/objects/2026-09/notes/batch/create";
const NOTES_BATCH_UPDATE: &str = "/crm/objects/2026-09/notes/batch/update";
const NOTES_BATCH_READ: &str = "/crm/objects/2026-09/notes/batch/read";

/// A note input as the app sends it: body, timestamp and one association to a contact (note → contact, 202).
fn note(contact: &str, body: &str, timestamp: &str) -> Value {
    json!({
        "properties": {"hs_note_body": body, "hs_timestamp": timestamp},
        "associations": [{
            "to": {"id": contact},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}],
        }],
    })
}

const NOTE_ASSOCIATIONS: &str = "/crm/associations/2026-09/contacts/notes/batch/read";

/// One page of a contact's notes, as the associations batch read gives it for one input: (status, answer).
async fn read_note_associations(
    client: &Client,
    contact: &str,
    after: Option<&str>,
) -> (u16, Value) {
    let mut input = json!({"id": contact});
    if let Some(after) = after {
        input["after"] = json!(after);
    }
    let body = json!({"inputs": [input]});
    let (status, _, answer) = client.send("POST", NOTE_ASSOCIATIONS, Some(body)).await;
    (status, answer)
}

/// The note ids one page names for `contact` (its result's `to`), checking the answer's shape against the
/// documents: a batch answer, `from.id` the contact, `toObjectId` a string, contact → note association type 201.
fn listed_note_ids(answer: &Value, contact: &str) -> Vec<u64> {
    assert_eq!(answer["status"], "COMPLETE", "{answer}");
    assert!(answer["startedAt"].is_string() && answer["completedAt"].is_string());
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), 1, "{answer}");
    assert_eq!(results[0]["from"]["id"], contact, "{answer}");
    results[0]["to"]
        .as_array()
        .expect("to")
        .iter()
        .map(|row| {
            assert_eq!(
                row["associationTypes"],
                json!([{"category": "HUBSPOT_DEFINED", "typeId": 201}]),
                "{row}"
            );
            let id = row["toObjectId"].as_str().expect("a string toObjectId");
            id.parse().expect("a numeric note id")
        })
        .collect()
}

/// The answer for a contact without notes (or without a record): no result, an `OBJECT_NOT_FOUND` entry naming it.
fn assert_no_associations(answer: &Value, contact: &str) {
    assert_eq!(answer["results"], json!([]), "{answer}");
    assert_eq!(answer["numErrors"], 1, "{answer}");
    let error = &answer["errors"][0];
    assert_eq!(error["status"], "error");
    assert_eq!(error["category"], "OBJECT_NOT_FOUND");
    assert_eq!(
        error["message"],
        format!("No note is associated with contact {contact}.")
    );
    assert_eq!(error["context"]["fromObjectId"], json!([contact]));
    assert_eq!(
        (&error["errors"], &error["links"]),
        (&json!([]), &json!({}))
    );
}

fn ids_of(notes: &[sandbox::hubspot::Note]) -> Vec<&str> {
    notes.iter().map(|n| n.id.as_str()).collect()
}

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
    let message =
        "The value of property \"chat_transcript\" is longer than 10 characters, the most this \
                   portal's validation rule (MAX_LENGTH) allows.";
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
