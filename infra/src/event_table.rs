//! The README's event table ("Invoke the functions locally"): which files in `events/` it lists, in its order, and
//! the answer it documents for each. Both ways of running the real binaries check against it: the Lambda Runtime API
//! (`infra/tests/invoke.rs`, as cargo-lambda runs them) and `sam local invoke` (`make sam-local`), so the table, the
//! events and the two runs cannot drift apart.

use serde_json::Value;

/// The README's section that holds the table and the local-invoke commands.
pub const SECTION: &str = "## Invoke the functions locally";

/// The text of the README's local-invoke section (up to the next `## ` heading).
pub fn section(readme: &str) -> Option<&str> {
    let start = readme.find(SECTION)? + SECTION.len();
    let rest = &readme[start..];
    Some(rest.split("\n## ").next().unwrap_or_default())
}

/// The event files the table lists, in its order (message events before the sweep that writes them to HubSpot).
pub fn files(readme: &str) -> Vec<String> {
    let mut files = Vec::new();
    for row in section(readme)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("| `") && l.contains(".json`"))
    {
        let first_cell = row.split('|').nth(1).unwrap_or_default();
        // `webhook-message-new.json`, `-updated.json`, `-deleted.json`: suffixes continue the first name.
        let mut stem = String::new();
        for name in first_cell.split('`').skip(1).step_by(2) {
            let name = match name.strip_prefix('-') {
                Some(suffix) => format!("{stem}-{suffix}"),
                None => {
                    stem = name
                        .rsplit_once('-')
                        .map(|(s, _)| s.to_owned())
                        .unwrap_or_default();
                    name.to_owned()
                }
            };
            files.push(name);
        }
    }
    files
}

/// The Lambda binary (cargo package) an event file is for: its name's prefix.
pub fn binary(file: &str) -> &'static str {
    match file.split(['-', '.']).next() {
        Some("agent") => "agent-sessions",
        Some("hubspot") => "hubspot-webhooks",
        Some("registration") => "registration",
        Some("webhook") => "webhook",
        Some("sweeper") => "sweeper",
        _ => "unknown",
    }
}

/// The answers the table documents as a status and one JSON field: (file, status, field, value).
const SIMPLE_ANSWERS: [(&str, u16, &str, &str); 13] = [
    (
        "registration-invalid-email.json",
        400,
        "code",
        "invalid_email",
    ),
    ("registration-bad-json.json", 400, "code", "invalid_json"),
    ("agent-sessions-no-token.json", 401, "code", "missing_token"),
    ("webhook-message-new.json", 200, "status", "recorded"),
    ("webhook-message-updated.json", 200, "status", "recorded"),
    ("webhook-message-deleted.json", 200, "status", "recorded"),
    ("webhook-message-undeleted.json", 200, "status", "recorded"),
    ("webhook-unknown-event.json", 200, "status", "ignored"),
    ("webhook-unknown-channel.json", 200, "status", "ignored"),
    (
        "webhook-bad-signature.json",
        401,
        "code",
        "invalid_signature",
    ),
    (
        "hubspot-webhook-deletion.json",
        401,
        "code",
        "stale_request",
    ),
    (
        "hubspot-webhook-privacy-deletion.json",
        401,
        "code",
        "stale_request",
    ),
    (
        "hubspot-webhook-bad-signature.json",
        401,
        "code",
        "stale_request",
    ),
];

/// One function's answer to one event: what it returned (an HTTP response for the HTTP functions, the sweep report
/// for the sweeper) and what it logged to stdout.
pub struct Answer<'a> {
    pub response: &'a Value,
    pub log: &'a str,
}

/// An HTTP function's response: status, headers, JSON body (null if none).
fn http(response: &Value) -> Result<(u64, &Value, Value), String> {
    let status = response["statusCode"]
        .as_u64()
        .ok_or_else(|| format!("not an HTTP response: {response}"))?;
    let body = match response["body"].as_str().filter(|b| !b.is_empty()) {
        Some(body) => {
            serde_json::from_str(body).map_err(|e| format!("the body is not JSON ({e}): {body}"))?
        }
        None => Value::Null,
    };
    Ok((status, &response["headers"], body))
}

/// Checks `answer` against what the table documents for `file`; on success, a one-line summary of the answer.
/// `origin` is the one the preflight event comes from, `table` the table the sweeper's metrics name.
pub fn check(file: &str, answer: &Answer, origin: &str, table: &str) -> Result<String, String> {
    match file {
        "registration.json" => {
            let (status, _, body) = http(answer.response)?;
            if status != 200 {
                return Err(format!("expected 200, got {status} {body}"));
            }
            for field in [
                "apiKey",
                "customerId",
                "customerToken",
                "channelId",
                "channelType",
                "expiresAt",
            ] {
                if body[field].is_null() {
                    return Err(format!("no {field} in {body}"));
                }
            }
            Ok("200 with the join data".into())
        }
        "registration-preflight.json" => {
            let (status, headers, _) = http(answer.response)?;
            let allowed = headers["access-control-allow-origin"].as_str();
            if (status, allowed) != (204, Some(origin)) {
                return Err(format!(
                    "expected 204 allowing {origin}, got {status} {headers}"
                ));
            }
            Ok(format!("204, access-control-allow-origin {origin}"))
        }
        "sweeper-schedule.json" => {
            let report = answer.response;
            if report["waiting"] != 0 {
                return Err(format!("expected \"waiting\": 0, got {report}"));
            }
            // Its metrics, as one EMF line among the JSON log lines.
            let emf: Vec<Value> = answer
                .log
                .lines()
                .filter_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
                .filter(|line| line.get("_aws").is_some())
                .collect();
            match emf.as_slice() {
                [line]
                    if line["Table"] == table
                        && line["BacklogContacts"] == report["waiting"]
                        && line["ParkedContacts"] == report["parked_total"] =>
                {
                    Ok(format!(
                        "the sweep report, \"waiting\": 0, and one metrics line (BacklogContacts {})",
                        line["BacklogContacts"]
                    ))
                }
                _ => Err(format!(
                    "expected one EMF line naming {table} and agreeing with the report {report}, got {emf:?}"
                )),
            }
        }
        other => {
            let (_, status, field, value) = SIMPLE_ANSWERS
                .iter()
                .find(|(name, ..)| *name == other)
                .ok_or_else(|| format!("{other}: the README documents an answer no check knows"))?;
            let (got, _, body) = http(answer.response)?;
            if (got, body[field].as_str()) != (u64::from(*status), Some(*value)) {
                return Err(format!(
                    "expected {status} {field} {value}, got {got} {body}"
                ));
            }
            Ok(format!("{status} {value}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const README: &str = "# x\n## Invoke the functions locally\n\n| event file | what | answer |\n|---|---|---|\n\
        | `webhook-message-new.json`, `-updated.json` | a | b |\n| `sweeper-schedule.json` | c | d |\n\n## Next\n\
        | `other.json` | e | f |\n";

    #[test]
    fn the_table_lists_files_in_order_with_suffixes_continuing_the_first_name() {
        assert_eq!(
            files(README),
            [
                "webhook-message-new.json",
                "webhook-message-updated.json",
                "sweeper-schedule.json"
            ]
        );
    }

    #[test]
    fn a_documented_answer_passes_and_any_other_fails() {
        let ok = json!({"statusCode": 400, "body": "{\"error\":\"x\",\"code\":\"invalid_json\"}"});
        let answer = Answer {
            response: &ok,
            log: "",
        };
        assert!(check("registration-bad-json.json", &answer, "o", "t").is_ok());
        assert!(check("registration-invalid-email.json", &answer, "o", "t").is_err());
        let server_error = json!({"statusCode": 500, "body": "{\"code\":\"invalid_json\"}"});
        let answer = Answer {
            response: &server_error,
            log: "",
        };
        assert!(check("registration-bad-json.json", &answer, "o", "t").is_err());
        assert!(check("unlisted.json", &answer, "o", "t").is_err());
    }
}
