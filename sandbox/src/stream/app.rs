//! App settings: `GET /app` and `PATCH /app`, which merges (settings not given keep their values).

use super::channel_types::{check_new_type_name, grants_json, merge_app_grants, ChannelType};
use super::errors::StreamError;
use super::StreamState;
use crate::support::{lock, now_rfc3339, uuid};
use serde_json::{json, Map, Value};

/// A new app's settings, as `GET /app` shows them: every field Stream's document requires of an app
/// (`AppResponseFields`), with a new app's values; `grants` and `channel_configs` are added from the state.
pub(crate) fn default_settings() -> Map<String, Value> {
    // Two halves: one `json!` of them all is past the macro's recursion limit.
    let integrations = json!({
        "id": 1,
        "name": "sandbox",
        "organization": "sandbox",
        "placement": "us-east",
        "webhook_url": "",
        "moderation_webhook_url": "",
        "webhook_events": [],
        "event_hooks": [],
        "use_hook_v2": false,
        "sqs_url": "",
        "sqs_key": "",
        "sqs_secret": "",
        "sns_topic_arn": "",
        "sns_key": "",
        "sns_secret": "",
        "push_notifications": {
            "version": "v3",
            "offline_only": false,
            "apn": {"enabled": false, "development": false},
            "firebase": {"enabled": false},
            "huawei": {"enabled": false},
            "xiaomi": {"enabled": false},
        },
    });
    let features = json!({
        "call_types": {},
        "policies": {},
        "suspended": false,
        "suspended_explanation": "",
        "disable_auth_checks": false,
        "disable_permissions_checks": false,
        "multi_tenant_enabled": false,
        "permission_version": "v2",
        "user_search_disallowed_roles": [],
        "allow_multi_user_devices": true,
        "image_moderation_enabled": false,
        "async_url_enrich_enabled": false,
        "auto_translation_enabled": false,
        "enforce_unique_usernames": "no",
        "custom_action_handler_url": "",
        "before_message_send_hook_url": "",
        "file_upload_config": {"size_limit": 0},
        "image_upload_config": {"size_limit": 0},
        "campaign_enabled": false,
        "reminders_interval": 60,
        "cdn_expiration_seconds": 1_209_600,
        "moderation_enabled": false,
        "moderation_multitenant_blocklist_enabled": false,
        "moderation_llm_configurability_enabled": false,
        "moderation_video_call_moderation_enabled": false,
        "moderation_audio_call_moderation_enabled": false,
        "guest_user_creation_disabled": false,
        "user_response_time_enabled": false,
        "max_aggregated_activities_length": 0,
        "feed_audit_logs_enabled": false,
        "member_custom_on_messages_enabled": false,
    });
    let mut app = Map::new();
    for half in [integrations, features] {
        if let Value::Object(fields) = half {
            app.extend(fields);
        }
    }
    app
}

impl StreamState {
    pub(crate) fn update_app(&self, body: &Value) -> Result<Value, StreamError> {
        const EP: &str = "UpdateApp";
        let Some(fields) = body.as_object() else {
            return Err(StreamError::input(
                EP,
                "the request body must be a JSON object",
            ));
        };
        let mut fields = fields.clone();
        if let Some(url) = fields.get("webhook_url") {
            let Some(url) = url.as_str() else {
                return Err(StreamError::input(EP, "webhook_url must be a string"));
            };
            if !url.is_empty() && !valid_url(url) {
                return Err(StreamError::input(
                    EP,
                    format!("webhook_url {url:?} is not a valid http(s) URL"),
                ));
            }
        }
        if let Some(hooks) = fields.get_mut("event_hooks") {
            let Some(hooks) = hooks.as_array_mut() else {
                return Err(StreamError::input(EP, "event_hooks must be an array"));
            };
            let now = now_rfc3339();
            for hook in hooks.iter_mut() {
                let Some(hook) = hook.as_object_mut() else {
                    return Err(StreamError::input(EP, "each event hook must be an object"));
                };
                let kind = hook
                    .get("hook_type")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !["webhook", "sqs", "sns", "pending_message"].contains(&kind) {
                    return Err(StreamError::input(
                        EP,
                        format!("hook_type {kind:?} is not valid"),
                    ));
                }
                if kind == "webhook" {
                    let url = hook
                        .get("webhook_url")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if !valid_url(url) {
                        return Err(StreamError::input(
                            EP,
                            format!("webhook_url {url:?} is not a valid http(s) URL"),
                        ));
                    }
                }
                // Stream assigns ids and timestamps to hooks it has not seen.
                hook.entry("id").or_insert_with(|| Value::String(uuid()));
                hook.entry("created_at")
                    .or_insert_with(|| Value::String(now.clone()));
                hook.insert("updated_at".to_owned(), Value::String(now.clone()));
            }
        }
        let mut data = lock(&self.data);
        if let Some(grants) = fields.remove("grants") {
            let mut merged = data.app_grants.clone();
            let custom = data.custom_role_names();
            merge_app_grants(EP, &mut merged, &grants, &custom)?;
            data.app_grants = merged;
        }
        data.app.extend(fields);
        Ok(json!({}))
    }

    /// `GET /app`: the settings, the `.app` scope's grants and each channel type's configuration.
    pub(crate) fn app(&self) -> Value {
        let data = lock(&self.data);
        let mut app = data.app.clone();
        app.insert("grants".to_owned(), grants_json(&data.app_grants));
        let configs: Map<String, Value> = data
            .channel_types
            .iter()
            .map(|(name, kind)| (name.clone(), kind.config()))
            .collect();
        app.insert("channel_configs".to_owned(), Value::Object(configs));
        Value::Object(app)
    }

    /// `GET /channeltypes`: every channel type, by name, as `GET /channeltypes/{name}` shows it.
    pub(crate) fn channel_types(&self) -> Value {
        let data = lock(&self.data);
        let types: Map<String, Value> = data
            .channel_types
            .iter()
            .map(|(name, kind)| (name.clone(), kind.to_json()))
            .collect();
        json!({ "channel_types": types })
    }

    pub(crate) fn channel_type(&self, name: &str) -> Result<Value, StreamError> {
        let data = lock(&self.data);
        match data.channel_types.get(name) {
            Some(kind) => Ok(kind.to_json()),
            None => Err(StreamError::not_found(
                "GetChannelType",
                format!("Channel type '{name}' does not exist"),
            )),
        }
    }

    /// `PUT /channeltypes/{name}`: the grants of each named role replaced, settings changed, the rest kept.
    pub(crate) fn update_channel_type(
        &self,
        name: &str,
        body: &Value,
    ) -> Result<Value, StreamError> {
        const EP: &str = "UpdateChannelType";
        let Some(body) = body.as_object() else {
            return Err(StreamError::input(
                EP,
                "the request body must be a JSON object",
            ));
        };
        let mut data = lock(&self.data);
        let custom = data.custom_role_names();
        let Some(kind) = data.channel_types.get_mut(name) else {
            return Err(StreamError::not_found(
                EP,
                format!("Channel type '{name}' does not exist"),
            ));
        };
        kind.apply(EP, body, &custom)?;
        Ok(kind.to_json())
    }

    /// `POST /channeltypes` `{"name", ...settings, "grants"?}`: a new type with Stream's default grants unless given.
    pub(crate) fn create_channel_type(&self, body: &Value) -> Result<Value, StreamError> {
        const EP: &str = "CreateChannelType";
        let Some(body) = body.as_object() else {
            return Err(StreamError::input(
                EP,
                "the request body must be a JSON object",
            ));
        };
        let Some(name) = body.get("name").and_then(Value::as_str) else {
            return Err(StreamError::input(EP, "name is a required field"));
        };
        let mut data = lock(&self.data);
        check_new_type_name(EP, &data.channel_types, name)?;
        let mut kind = ChannelType::built_in(name);
        kind.apply(EP, body, &data.custom_role_names())?;
        let answer = kind.to_json();
        data.channel_types.insert(name.to_owned(), kind);
        Ok(answer)
    }
}

fn valid_url(url: &str) -> bool {
    url.parse::<http::Uri>().is_ok_and(|u| {
        matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(|h| !h.is_empty())
    })
}
