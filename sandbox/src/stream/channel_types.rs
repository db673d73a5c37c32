//! Channel types and their grants, as Stream's permission system v2 keeps them: the built-in types with Stream's
//! defaults, a type's other settings, and how `PUT /channeltypes/{name}` and `PATCH /app` change them. What a
//! grant allows a caller is `permissions.rs`.
//!
//! * A **channel type** (`messaging`, `team`, `livestream`, `gaming`, `commerce`, or one made with
//!   `POST /channeltypes`) carries **grants**: role → permission ids. `PUT /channeltypes/{name}` with
//!   `{"grants": {role: [ids]}}` replaces the grants of each role it names and keeps the others (and every other
//!   setting); `GET /channeltypes/{name}` shows them. App-wide actions (searching users, updating oneself) use the
//!   `.app` scope's grants, set by `PATCH /app` `{"grants": {role: [ids]}}` in the same per-role way.
//! * Stream's defaults for `messaging` (and `team`), from Stream's permissions reference: a `user` may create
//!   channels and, on channels it created, read them, add or remove members and change their data; members read
//!   the channel and send messages; users edit and delete their own messages; `channel_moderator`, `moderator` and
//!   `admin` may do more. `.app`: every role may search users and update itself. The other built-in types get the
//!   same defaults here (only `messaging` is used by this project; `livestream` really lets any user read).

use super::errors::StreamError;
use crate::support::now_rfc3339;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Stream's default maximum message length.
pub const MAX_MESSAGE_LENGTH: usize = 5_000;
/// Stream's built-in channel types.
pub(crate) const BUILT_IN_TYPES: [&str; 5] =
    ["messaging", "team", "livestream", "gaming", "commerce"];
/// Roles a grant may name: the user roles, then the channel roles.
const GRANT_ROLES: [&str; 7] = [
    "admin",
    "moderator",
    "user",
    "guest",
    "anonymous",
    "channel_member",
    "channel_moderator",
];

/// Stream's default `messaging` grants (permissions reference, scope `messaging`): each permission id and the
/// roles that hold it.
const MESSAGING_DEFAULTS: &[(&str, &[&str])] = &[
    (
        "add-links",
        &["admin", "moderator", "channel_member", "channel_moderator"],
    ),
    ("add-links-owner", &["user"]),
    (
        "ban-channel-member",
        &["admin", "moderator", "channel_moderator"],
    ),
    ("ban-user", &["admin", "moderator"]),
    (
        "create-call",
        &["admin", "moderator", "channel_member", "channel_moderator"],
    ),
    ("create-channel", &["admin", "moderator", "user"]),
    (
        "create-message",
        &["admin", "moderator", "channel_member", "channel_moderator"],
    ),
    ("create-message-owner", &["user"]),
    (
        "create-attachment",
        &["admin", "moderator", "channel_member", "channel_moderator"],
    ),
    ("create-attachment-owner", &["user"]),
    (
        "create-mention",
        &["admin", "moderator", "channel_member", "channel_moderator"],
    ),
    ("create-mention-owner", &["user"]),
    (
        "create-reaction",
        &["admin", "moderator", "channel_member", "channel_moderator"],
    ),
    ("create-reaction-owner", &["user"]),
    (
        "create-system-message",
        &["admin", "moderator", "channel_moderator"],
    ),
    (
        "delete-attachment",
        &["admin", "moderator", "channel_moderator"],
    ),
    ("delete-attachment-owner", &["user"]),
    ("delete-channel", &["admin"]),
    ("delete-channel-owner", &["moderator", "user"]),
    (
        "delete-message",
        &["admin", "moderator", "channel_moderator"],
    ),
    ("delete-message-owner", &["user"]),
    (
        "delete-reaction",
        &["admin", "moderator", "channel_moderator"],
    ),
    ("delete-reaction-owner", &["user"]),
    (
        "flag-message",
        &["admin", "moderator", "channel_member", "channel_moderator"],
    ),
    ("flag-message-owner", &["user"]),
    (
        "join-call",
        &["admin", "moderator", "channel_member", "channel_moderator"],
    ),
    (
        "mute-channel",
        &["admin", "moderator", "channel_member", "channel_moderator"],
    ),
    ("mute-channel-owner", &["user"]),
    (
        "pin-message",
        &["admin", "moderator", "channel_member", "channel_moderator"],
    ),
    ("pin-message-owner", &["user"]),
    (
        "read-channel",
        &["admin", "moderator", "channel_member", "channel_moderator"],
    ),
    (
        "read-channel-members",
        &["admin", "moderator", "channel_member", "channel_moderator"],
    ),
    ("read-channel-members-owner", &["user"]),
    ("read-channel-owner", &["user"]),
    (
        "read-message-flags",
        &["admin", "moderator", "channel_moderator"],
    ),
    ("recreate-channel", &["admin"]),
    ("recreate-channel-owner", &["moderator", "user"]),
    (
        "remove-own-channel-membership",
        &["admin", "moderator", "channel_member", "channel_moderator"],
    ),
    ("remove-own-channel-membership-owner", &["user"]),
    (
        "run-message-action",
        &["admin", "moderator", "channel_member", "channel_moderator"],
    ),
    ("run-message-action-owner", &["user"]),
    (
        "send-custom-event",
        &["admin", "moderator", "channel_member", "channel_moderator"],
    ),
    ("send-custom-event-owner", &["user"]),
    (
        "skip-channel-cooldown",
        &["admin", "moderator", "channel_moderator"],
    ),
    (
        "skip-message-moderation",
        &["admin", "moderator", "channel_moderator"],
    ),
    ("truncate-channel", &["admin"]),
    ("truncate-channel-owner", &["moderator", "user"]),
    (
        "unblock-message",
        &["admin", "moderator", "channel_moderator"],
    ),
    (
        "update-channel",
        &["admin", "moderator", "channel_moderator"],
    ),
    (
        "update-channel-cooldown",
        &["admin", "moderator", "channel_moderator"],
    ),
    (
        "update-channel-frozen",
        &["admin", "moderator", "channel_moderator"],
    ),
    (
        "update-channel-members",
        &["admin", "moderator", "channel_moderator"],
    ),
    ("update-channel-members-owner", &["user"]),
    ("update-channel-owner", &["user"]),
    (
        "update-message",
        &["admin", "moderator", "channel_moderator"],
    ),
    ("update-message-owner", &["user"]),
    (
        "upload-attachment",
        &["admin", "moderator", "channel_member", "channel_moderator"],
    ),
    ("upload-attachment-owner", &["user"]),
];

/// Stream's default `.app` grants.
const APP_DEFAULTS: &[(&str, &[&str])] = &[
    ("flag-user", &["admin", "moderator", "user", "guest"]),
    ("mute-user", &["admin", "moderator", "user", "guest"]),
    ("read-flag-reports", &["admin", "moderator"]),
    ("search-user", &["admin", "moderator", "user", "guest"]),
    ("update-flag-report", &["admin", "moderator"]),
    (
        "update-user-owner",
        &["admin", "moderator", "user", "guest"],
    ),
];

/// Role → permission ids.
pub(crate) type Grants = BTreeMap<String, BTreeSet<String>>;

fn grants_from(table: &[(&str, &[&str])]) -> Grants {
    let mut grants = Grants::new();
    for (permission, roles) in table {
        for role in *roles {
            grants
                .entry((*role).to_owned())
                .or_default()
                .insert((*permission).to_owned());
        }
    }
    grants
}

pub(crate) fn default_app_grants() -> Grants {
    grants_from(APP_DEFAULTS)
}

/// A channel type: its grants and its other settings (as `GET /channeltypes/{name}` shows them).
#[derive(Clone, Debug)]
pub(crate) struct ChannelType {
    pub(crate) grants: Grants,
    pub(crate) settings: Map<String, Value>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// Settings a channel type has besides its grants, with Stream's defaults; `PUT`/`POST` may change only these.
fn default_settings(name: &str) -> Map<String, Value> {
    let settings = json!({
        "name": name,
        "typing_events": true,
        "read_events": true,
        "connect_events": true,
        "delivery_events": false,
        "search": true,
        "reactions": true,
        "replies": true,
        "quotes": true,
        "uploads": true,
        "url_enrichment": true,
        "custom_events": true,
        "mutes": true,
        "push_notifications": true,
        "mark_messages_pending": false,
        "polls": false,
        "reminders": false,
        "user_message_reminders": false,
        "shared_locations": false,
        "count_messages": false,
        "skip_last_msg_update_for_system_msgs": false,
        "message_retention": "infinite",
        "max_message_length": MAX_MESSAGE_LENGTH,
        "automod": "disabled",
        "automod_behavior": "flag",
        "blocklist_behavior": "flag",
        "commands": [],
    });
    match settings {
        Value::Object(settings) => settings,
        _ => Map::new(),
    }
}

impl ChannelType {
    pub(crate) fn built_in(name: &str) -> Self {
        let now = now_rfc3339();
        Self {
            grants: grants_from(MESSAGING_DEFAULTS),
            settings: default_settings(name),
            created_at: now.clone(),
            updated_at: now,
        }
    }

    /// The channel's `config` in a channel query (and the type's entry in `GET /app`'s `channel_configs`): the
    /// settings, and when the type was created and last changed.
    pub(crate) fn config(&self) -> Value {
        let mut config = self.settings.clone();
        config.insert("created_at".to_owned(), json!(self.created_at));
        config.insert("updated_at".to_owned(), json!(self.updated_at));
        Value::Object(config)
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut out = self.settings.clone();
        out.insert("grants".to_owned(), grants_json(&self.grants));
        out.insert("permissions".to_owned(), json!([]));
        out.insert("created_at".to_owned(), json!(self.created_at));
        out.insert("updated_at".to_owned(), json!(self.updated_at));
        Value::Object(out)
    }

    /// `PUT /channeltypes/{name}` (and the body of `POST /channeltypes`): named roles' grants replaced, known
    /// settings changed, everything else kept. Checked whole before anything changes.
    pub(crate) fn apply(
        &mut self,
        endpoint: &str,
        body: &Map<String, Value>,
        custom_roles: &BTreeSet<String>,
    ) -> Result<(), StreamError> {
        let mut settings = self.settings.clone();
        let mut grants = self.grants.clone();
        for (key, value) in body {
            match key.as_str() {
                "name" | "created_at" | "updated_at" | "permissions" => {}
                "grants" => merge_grants(
                    endpoint,
                    &mut grants,
                    value,
                    &permission_ids(),
                    custom_roles,
                )?,
                setting if settings.contains_key(setting) => {
                    let same_kind = match (&settings[setting], value) {
                        (Value::Bool(_), Value::Bool(_))
                        | (Value::String(_), Value::String(_))
                        | (Value::Array(_), Value::Array(_)) => true,
                        (Value::Number(_), Value::Number(n)) => n.as_u64().is_some(),
                        _ => false,
                    };
                    if !same_kind {
                        return Err(StreamError::input(
                            endpoint,
                            format!("{setting} has the wrong type"),
                        ));
                    }
                    settings.insert(setting.to_owned(), value.clone());
                }
                other => {
                    return Err(StreamError::input(
                        endpoint,
                        format!("{other} is not a channel type setting"),
                    ))
                }
            }
        }
        self.settings = settings;
        self.grants = grants;
        self.updated_at = now_rfc3339();
        Ok(())
    }
}

/// Every permission id the double knows (channel and app scopes): a grant naming another is refused, as Stream
/// refuses a permission that does not exist.
fn permission_ids() -> BTreeSet<&'static str> {
    MESSAGING_DEFAULTS
        .iter()
        .chain(APP_DEFAULTS)
        .map(|(id, _)| *id)
        .collect()
}

pub(crate) fn grants_json(grants: &Grants) -> Value {
    Value::Object(
        grants
            .iter()
            .map(|(role, ids)| (role.clone(), json!(ids)))
            .collect(),
    )
}

/// `{role: [permission ids]}`: each named role's grants are replaced; an unknown role or permission is refused.
fn merge_grants(
    endpoint: &str,
    grants: &mut Grants,
    value: &Value,
    known: &BTreeSet<&str>,
    custom_roles: &BTreeSet<String>,
) -> Result<(), StreamError> {
    let Some(by_role) = value.as_object() else {
        return Err(StreamError::input(
            endpoint,
            "grants must be an object of role → permission ids",
        ));
    };
    for (role, ids) in by_role {
        if !GRANT_ROLES.contains(&role.as_str()) && !custom_roles.contains(role) {
            return Err(StreamError::input(
                endpoint,
                format!("role {role:?} does not exist"),
            ));
        }
        let Some(ids) = ids.as_array() else {
            return Err(StreamError::input(
                endpoint,
                format!("grants.{role} must be an array"),
            ));
        };
        let mut parsed = BTreeSet::new();
        for id in ids {
            match id.as_str() {
                Some(id) if known.contains(id) => {
                    parsed.insert(id.to_owned());
                }
                _ => {
                    return Err(StreamError::input(
                        endpoint,
                        format!("permission {id} does not exist"),
                    ))
                }
            }
        }
        grants.insert(role.clone(), parsed);
    }
    Ok(())
}

/// `PATCH /app` `grants`: the `.app` scope, per role.
pub(crate) fn merge_app_grants(
    endpoint: &str,
    grants: &mut Grants,
    value: &Value,
    custom_roles: &BTreeSet<String>,
) -> Result<(), StreamError> {
    merge_grants(endpoint, grants, value, &permission_ids(), custom_roles)
}

/// A channel type name for `POST /channeltypes`.
pub(crate) fn check_new_type_name(
    endpoint: &str,
    existing: &BTreeMap<String, ChannelType>,
    name: &str,
) -> Result<(), StreamError> {
    validate_channel_type_name(endpoint, name)?;
    if existing.contains_key(name) {
        return Err(StreamError::input(
            endpoint,
            format!("channel type {name:?} already exists"),
        ));
    }
    Ok(())
}

pub(crate) fn validate_channel_type_name(endpoint: &str, kind: &str) -> Result<(), StreamError> {
    let type_ok = (1..=64).contains(&kind.len())
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
    if type_ok {
        Ok(())
    } else {
        Err(StreamError::input(
            endpoint,
            format!("channel type {kind:?} is not valid"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_messaging_defaults_match_streams_reference() {
        let grants = grants_from(MESSAGING_DEFAULTS);
        let has = |role: &str, id: &str| grants.get(role).is_some_and(|ids| ids.contains(id));
        assert!(has("user", "create-channel"));
        assert!(has("user", "read-channel-owner") && !has("user", "read-channel"));
        assert!(
            has("user", "update-channel-members-owner") && !has("user", "update-channel-members")
        );
        assert!(has("channel_member", "read-channel") && has("channel_member", "create-message"));
        assert!(!has("channel_member", "update-channel-members"));
        assert!(has("user", "update-message-owner") && has("user", "delete-message-owner"));
        assert!(has("admin", "delete-channel"));
    }
}
