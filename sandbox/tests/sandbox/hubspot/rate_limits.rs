//! HubSpot's rate limits: the rolling window (refused requests count too), its headers, the daily limit.

use super::*;

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
