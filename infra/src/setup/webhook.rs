//! Stream's webhook: points it at the deployed webhook function, keeping every other hook of the app.

use super::outcome::{stream_error, HookMode, Outcome, SetupError};
use super::{Setup, StreamStep, STEP_BUDGET, WEBHOOK_EVENT_TYPES};
use serde_json::{json, Map, Value};
use std::time::Instant;
/// The change Stream's app settings need, worked out from `GET /app`.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookPlan {
    AlreadyConfigured,
    /// `patch` is the whole `PATCH /app` body: only the one field that changes.
    Patch {
        mode: HookMode,
        patch: Value,
    },
}

/// Works out how to point the app's webhook at `url` without touching anything else.
///
/// With `event_hooks`, an enabled `webhook` hook for `url` that receives the message events is enough. Otherwise the
/// hook for `url` is updated in place (keeping its id and other fields) or a new one is added; every other hook is
/// sent back as it came, because `PATCH /app` replaces the whole list. Without `event_hooks`, `webhook_url` is set.
pub fn plan_webhook(settings: &Value, url: &str) -> Result<(WebhookPlan, Vec<String>), SetupError> {
    // `GET /app` answers `{"app": {...}}`; accept the bare settings object too.
    let app = settings.get("app").unwrap_or(settings);
    if !app.is_object() {
        return Err(SetupError::UnexpectedSettings("no app object".into()));
    }
    let mut notes = Vec::new();
    // Apps that have `event_hooks` still deliver to a legacy `webhook_url`: when it already points here, adding a hook
    // for the same URL would have Stream deliver every event twice.
    let legacy_here = app.get("webhook_url").and_then(Value::as_str) == Some(url);
    match app.get("event_hooks") {
        Some(Value::Array(hooks)) if legacy_here => {
            if hooks
                .iter()
                .any(|hook| is_webhook_for(hook, url) && is_enabled(hook))
            {
                notes.push(format!(
                    "both the app's webhook_url and an event hook point at {url}, so Stream delivers each event \
                     twice (harmless, but twice the invocations): remove one in Stream's dashboard"
                ));
            }
            notes.extend(legacy_event_notes(app));
            Ok((WebhookPlan::AlreadyConfigured, notes))
        }
        Some(Value::Array(hooks)) => {
            let mut hooks = hooks.clone();
            let is_webhook =
                |hook: &Value| hook.get("hook_type").and_then(Value::as_str) == Some("webhook");
            let others = hooks
                .iter()
                .filter(|hook| is_webhook(hook) && !is_webhook_for(hook, url))
                .count();
            if others > 0 {
                notes.push(format!(
                    "{others} other webhook hook(s) with other URLs are left as they are; remove stale ones in \
                     Stream's dashboard, or they receive the same events"
                ));
            }
            if hooks
                .iter()
                .any(|hook| is_webhook_for(hook, url) && delivers_message_events(hook))
            {
                return Ok((WebhookPlan::AlreadyConfigured, notes));
            }
            match hooks.iter().position(|hook| is_webhook_for(hook, url)) {
                Some(index) => {
                    let hook = &mut hooks[index];
                    let mut event_types: Vec<Value> = hook
                        .get("event_types")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    // An empty list means every event: enabling the hook is enough, narrowing it would not be.
                    if !event_types.is_empty() {
                        for event in WEBHOOK_EVENT_TYPES {
                            if !event_types.iter().any(|e| e.as_str() == Some(event)) {
                                event_types.push(json!(event));
                            }
                        }
                    }
                    let Some(fields) = hook.as_object_mut() else {
                        return Err(SetupError::UnexpectedSettings(
                            "a hook is not an object".into(),
                        ));
                    };
                    fields.insert("enabled".into(), json!(true));
                    fields.insert("event_types".into(), Value::Array(event_types));
                    Ok((event_hooks_patch(hooks), notes))
                }
                None => {
                    hooks.push(json!({
                        "hook_type": "webhook",
                        "enabled": true,
                        "webhook_url": url,
                        "event_types": WEBHOOK_EVENT_TYPES,
                    }));
                    Ok((event_hooks_patch(hooks), notes))
                }
            }
        }
        Some(Value::Null) | None => {
            notes.extend(legacy_event_notes(app));
            if legacy_here {
                return Ok((WebhookPlan::AlreadyConfigured, notes));
            }
            Ok((
                WebhookPlan::Patch {
                    mode: HookMode::Legacy,
                    patch: json!({ "webhook_url": url }),
                },
                notes,
            ))
        }
        Some(_) => Err(SetupError::UnexpectedSettings(
            "event_hooks is not a list".into(),
        )),
    }
}

/// The message events a legacy `webhook_url` does not receive (`webhook_events`: empty means every event).
fn legacy_event_notes(app: &Value) -> Option<String> {
    let events = app.get("webhook_events").and_then(Value::as_array)?;
    let missing: Vec<&str> = WEBHOOK_EVENT_TYPES
        .into_iter()
        .filter(|event| !events.is_empty() && !events.iter().any(|e| e.as_str() == Some(event)))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "the app's webhook_events leave out {}; enable them in Stream's dashboard",
            missing.join(", ")
        )
    })
}

fn event_hooks_patch(hooks: Vec<Value>) -> WebhookPlan {
    WebhookPlan::Patch {
        mode: HookMode::EventHooks,
        patch: Value::Object(Map::from_iter([(
            "event_hooks".to_owned(),
            Value::Array(hooks),
        )])),
    }
}

fn is_webhook_for(hook: &Value, url: &str) -> bool {
    hook.get("hook_type").and_then(Value::as_str) == Some("webhook")
        && hook.get("webhook_url").and_then(Value::as_str) == Some(url)
}

/// Enabled, and subscribed to all events (an empty list) or at least to the message events.
fn is_enabled(hook: &Value) -> bool {
    hook.get("enabled")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn delivers_message_events(hook: &Value) -> bool {
    let enabled = is_enabled(hook);
    let covered = match hook.get("event_types").and_then(Value::as_array) {
        Some(types) if !types.is_empty() => WEBHOOK_EVENT_TYPES
            .iter()
            .all(|event| types.iter().any(|t| t.as_str() == Some(event))),
        _ => true,
    };
    enabled && covered
}

impl Setup {
    pub(super) async fn stream_webhook(
        &self,
        stream: &StreamStep,
    ) -> Result<Vec<Outcome>, SetupError> {
        const STEP: &str = "setting Stream's webhook";
        let deadline = Instant::now() + STEP_BUDGET;
        let failed = |e| stream_error(STEP, &stream.base_url, e);
        let settings = stream.client.app_settings(deadline).await.map_err(failed)?;
        let (plan, notes) = plan_webhook(&settings, &stream.webhook_url)?;
        let mut outcomes: Vec<Outcome> = notes.into_iter().map(Outcome::Note).collect();
        let url = stream.webhook_url.clone();
        outcomes.push(match plan {
            WebhookPlan::AlreadyConfigured => Outcome::WebhookAlreadyConfigured { url },
            WebhookPlan::Patch { mode, .. } if self.dry_run => {
                Outcome::WebhookWouldBeSet { url, mode }
            }
            WebhookPlan::Patch { mode, patch } => {
                stream
                    .client
                    .update_app_settings(&patch, deadline)
                    .await
                    .map_err(failed)?;
                Outcome::WebhookSet { url, mode }
            }
        });
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://abc.lambda-url.eu-west-1.on.aws/";

    fn patch(plan: WebhookPlan) -> (HookMode, Value) {
        match plan {
            WebhookPlan::Patch { mode, patch } => (mode, patch),
            WebhookPlan::AlreadyConfigured => panic!("expected a patch"),
        }
    }

    #[test]
    fn legacy_apps_get_webhook_url_only() {
        let (plan, notes) = plan_webhook(
            &json!({"app": {"webhook_url": "https://old.example/", "name": "x"}}),
            URL,
        )
        .expect("plan");
        assert_eq!(
            patch(plan),
            (HookMode::Legacy, json!({ "webhook_url": URL }))
        );
        assert!(notes.is_empty());
        let (plan, _) = plan_webhook(
            &json!({"app": {"webhook_url": URL, "event_hooks": null}}),
            URL,
        )
        .expect("plan");
        assert_eq!(plan, WebhookPlan::AlreadyConfigured);
        let (_, notes) =
            plan_webhook(&json!({"app": {"webhook_events": ["message.new"]}}), URL).expect("plan");
        assert!(
            notes[0].contains("message.updated, message.deleted"),
            "{notes:?}"
        );
    }

    #[test]
    fn event_hooks_keep_every_other_hook() {
        let sqs = json!({"id": "h-1", "hook_type": "sqs", "enabled": true, "sqs_queue_url": "q"});
        let other = json!({"id": "h-2", "hook_type": "webhook", "enabled": true, "webhook_url": "https://else/"});
        let settings = json!({"app": {"event_hooks": [sqs, other], "webhook_url": ""}});
        let (plan, notes) = plan_webhook(&settings, URL).expect("plan");
        let (mode, body) = patch(plan);
        assert_eq!(mode, HookMode::EventHooks);
        assert_eq!(
            body.as_object().map(|o| o.len()),
            Some(1),
            "only event_hooks changes"
        );
        let hooks = body["event_hooks"].as_array().expect("list");
        assert_eq!(hooks.len(), 3);
        assert_eq!(hooks[0], sqs);
        assert_eq!(hooks[1], other);
        assert_eq!(
            hooks[2],
            json!({"hook_type": "webhook", "enabled": true, "webhook_url": URL,
                   "event_types": WEBHOOK_EVENT_TYPES})
        );
        assert_eq!(notes.len(), 1, "the other webhook is pointed out");
    }

    #[test]
    fn event_hooks_fix_our_hook_in_place_or_leave_it() {
        let ours = json!({"id": "h-9", "hook_type": "webhook", "enabled": false, "webhook_url": URL,
                          "event_types": ["channel.created"]});
        let (plan, _) = plan_webhook(&json!({"app": {"event_hooks": [ours]}}), URL).expect("plan");
        let (_, body) = patch(plan);
        assert_eq!(
            body["event_hooks"],
            json!([{"id": "h-9", "hook_type": "webhook", "enabled": true, "webhook_url": URL,
                    "event_types": ["channel.created", "message.new", "message.updated", "message.deleted",
                                    "message.undeleted", "channel.truncated", "channel.deleted", "user.deleted",
                                    "user.messages.deleted"]}])
        );
        // Disabled, subscribed to everything: enabled as it is, not narrowed to the message events.
        let all = json!({"hook_type": "webhook", "enabled": false, "webhook_url": URL, "event_types": []});
        let (plan, _) = plan_webhook(&json!({"app": {"event_hooks": [all]}}), URL).expect("plan");
        let (_, body) = patch(plan);
        assert_eq!(body["event_hooks"][0]["enabled"], true);
        assert_eq!(body["event_hooks"][0]["event_types"], json!([]));
        for configured in [
            json!({"hook_type": "webhook", "enabled": true, "webhook_url": URL, "event_types": []}),
            json!({"hook_type": "webhook", "enabled": true, "webhook_url": URL,
                   "event_types": ["message.deleted", "message.new", "message.updated", "reaction.new",
                                   "message.undeleted", "channel.truncated", "channel.deleted", "user.deleted",
                                   "user.messages.deleted"]}),
        ] {
            let (plan, _) = plan_webhook(&json!({"event_hooks": [configured]}), URL).expect("plan");
            assert_eq!(plan, WebhookPlan::AlreadyConfigured);
        }
    }
}
