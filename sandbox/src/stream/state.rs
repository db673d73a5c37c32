//! What the double stores: users, channels, messages, app settings and the deletions it applied, and the rules for
//! their ids.

use super::channel_types::{
    default_app_grants, validate_channel_type_name, ChannelType, Grants, BUILT_IN_TYPES,
};
use super::errors::StreamError;
use crate::support::format_millis;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use time::OffsetDateTime;

pub(crate) const ROLES: [&str; 5] = ["user", "admin", "moderator", "guest", "anonymous"];

/// A user as stored by the double.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub role: String,
}

/// A channel as stored by the double.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Channel {
    pub channel_type: String,
    pub id: String,
    pub created_by_id: String,
    pub members: Vec<String>,
    pub created_at: String,
    /// The channel's custom data (`data.custom` at creation), as Stream keeps it for anyone who reads the channel.
    pub custom: serde_json::Map<String, serde_json::Value>,
}

impl Channel {
    pub fn cid(&self) -> String {
        format!("{}:{}", self.channel_type, self.id)
    }
}

pub(crate) struct UserRecord {
    pub(crate) user: User,
    /// Custom fields (`image`, anything else): kept by partial updates, replaced by `POST /users`.
    pub(crate) extra: Map<String, Value>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// Soft (marked deleted), pruning (a user only: marked deleted, its information nullified) or hard (gone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Erasure {
    Soft,
    Pruning,
    Hard,
}

/// One user deletion the double applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserDeletion {
    pub user_id: String,
    pub user: Erasure,
    /// `None`: the user's messages were kept.
    pub messages: Option<Erasure>,
    /// The conversation channels deleted with the user (cids).
    pub conversations: Vec<String>,
}

/// One channel deletion the double applied (directly, or as a deleted user's conversation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelDeletion {
    pub cid: String,
    pub hard: bool,
}

pub(crate) struct Data {
    pub(crate) users: BTreeMap<String, UserRecord>,
    pub(crate) channels: BTreeMap<String, Channel>,
    /// Message id → message JSON (with `cid`).
    pub(crate) messages: HashMap<String, Value>,
    /// cid → message ids in creation order.
    pub(crate) order: HashMap<String, Vec<String>>,
    pub(crate) app: Map<String, Value>,
    /// User id → unix milliseconds: tokens issued before are refused (`revoke_tokens_issued_before`, or deletion).
    pub(crate) revocations: HashMap<String, i64>,
    /// cid → user id → the member's read state (`user`, `last_read`, `unread_messages`, `last_read_message_id`).
    pub(crate) reads: HashMap<String, BTreeMap<String, Value>>,
    /// Channel types by name, with their grants (`channel_types.rs`).
    pub(crate) channel_types: BTreeMap<String, ChannelType>,
    /// The `.app` scope's grants.
    pub(crate) app_grants: Grants,
    /// Custom roles (`POST /roles`), name → created at: a user may have one, and grants may name it.
    pub(crate) custom_roles: BTreeMap<String, String>,
    /// Deletions, in order, so tests can assert what was erased.
    pub(crate) user_deletions: Vec<UserDeletion>,
    pub(crate) channel_deletions: Vec<ChannelDeletion>,
    /// Async tasks (`POST /users/delete`) by id, as `GET /tasks/{id}` shows them.
    pub(crate) tasks: HashMap<String, Value>,
    /// How many of the next `POST /users/delete` tasks fail (`StreamDouble::fail_next_tasks`).
    pub(crate) failing_tasks: usize,
    /// Last message timestamp handed out: message times are strictly increasing, as Stream's microsecond
    /// timestamps effectively are, so `created_at` orders messages and `updated_at` always moves forward.
    pub(crate) clock: OffsetDateTime,
}

impl Data {
    /// Whether a boolean app setting (`disable_auth_checks`, `disable_permissions_checks`) is on.
    pub(crate) fn setting_on(&self, name: &str) -> bool {
        self.app.get(name).and_then(Value::as_bool) == Some(true)
    }

    pub(crate) fn new(app: Map<String, Value>) -> Self {
        Self {
            users: BTreeMap::new(),
            channels: BTreeMap::new(),
            messages: HashMap::new(),
            order: HashMap::new(),
            app,
            revocations: HashMap::new(),
            reads: HashMap::new(),
            channel_types: BUILT_IN_TYPES
                .iter()
                .map(|name| ((*name).to_owned(), ChannelType::built_in(name)))
                .collect(),
            app_grants: default_app_grants(),
            custom_roles: BTreeMap::new(),
            user_deletions: Vec::new(),
            channel_deletions: Vec::new(),
            tasks: HashMap::new(),
            failing_tasks: 0,
            clock: OffsetDateTime::UNIX_EPOCH,
        }
    }

    /// Whether `role` is a user role here: built in, or created with `POST /roles`.
    pub(crate) fn role_exists(&self, role: &str) -> bool {
        ROLES.contains(&role) || self.custom_roles.contains_key(role)
    }

    /// The custom roles' names (grants may name them besides the built-in roles).
    pub(crate) fn custom_role_names(&self) -> BTreeSet<String> {
        self.custom_roles.keys().cloned().collect()
    }

    pub(crate) fn tick(&mut self) -> String {
        let now = OffsetDateTime::now_utc();
        // Millisecond precision, as the reference documents.
        let now = now
            .replace_nanosecond(u32::from(now.millisecond()) * 1_000_000)
            .unwrap_or(now);
        let min = self.clock + time::Duration::milliseconds(1);
        self.clock = if now < min { min } else { now };
        format_millis(self.clock)
    }

    pub(crate) fn user_json(&self, id: &str) -> Value {
        match self.users.get(id) {
            Some(record) => user_json(record),
            None => json!({ "id": id }),
        }
    }

    /// A channel's messages in creation order.
    pub(crate) fn channel_messages(&self, cid: &str) -> Vec<Value> {
        self.order
            .get(cid)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| self.messages.get(id).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Fields of a user that Stream owns: a client may set some of them (`language`, `teams`...), but they are never
/// custom fields. `deleted_at` is the double's mark of a soft-deleted user.
const BUILT_IN_FIELDS: [&str; 10] = [
    "language",
    "teams",
    "invisible",
    "banned",
    "online",
    "shadow_banned",
    "blocked_user_ids",
    "deleted_at",
    "deactivated_at",
    "last_active",
];

/// A user as Stream answers it inside other objects (a channel's creator, a member): Stream's document's
/// `UserResponse`. Custom fields appear twice: under `custom`, where the document puts them, and at the top level,
/// where Stream's JS SDK (the widget's) reads them, as the v1 API it speaks always had them.
pub(crate) fn user_json(record: &UserRecord) -> Value {
    let mut user = record.extra.clone();
    let custom: Map<String, Value> = record
        .extra
        .iter()
        .filter(|(key, _)| !BUILT_IN_FIELDS.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    user.insert("id".to_owned(), Value::String(record.user.id.clone()));
    user.insert("name".to_owned(), Value::String(record.user.name.clone()));
    user.insert("role".to_owned(), Value::String(record.user.role.clone()));
    user.insert("custom".to_owned(), Value::Object(custom));
    user.insert(
        "created_at".to_owned(),
        Value::String(record.created_at.clone()),
    );
    user.insert(
        "updated_at".to_owned(),
        Value::String(record.updated_at.clone()),
    );
    user.insert("banned".to_owned(), Value::Bool(false));
    user.insert("online".to_owned(), Value::Bool(false));
    user.insert("shadow_banned".to_owned(), Value::Bool(false));
    user.insert("blocked_user_ids".to_owned(), json!([]));
    // Settable by the client: its value if it set one, else a new user's.
    user.entry("language").or_insert_with(|| json!(""));
    user.entry("teams").or_insert_with(|| json!([]));
    user.entry("invisible").or_insert_with(|| json!(false));
    Value::Object(user)
}

/// A user as `POST /users`, `PATCH /users` and `GET /users` answer it: Stream's document's `FullUserResponse`, the
/// [`user_json`] fields and the user's devices, mutes and unread counts (the double keeps none: all empty).
pub(crate) fn full_user_json(record: &UserRecord) -> Value {
    let mut user = user_json(record);
    if let Some(fields) = user.as_object_mut() {
        for (key, value) in [
            ("devices", json!([])),
            ("mutes", json!([])),
            ("channel_mutes", json!([])),
            ("unread_count", json!(0)),
            ("total_unread_count", json!(0)),
            ("unread_channels", json!(0)),
            ("unread_threads", json!(0)),
        ] {
            fields.insert(key.to_owned(), value);
        }
    }
    user
}

/// `^[a-z0-9@_-]{1,255}$`, the charset the reference documents.
pub(crate) fn valid_user_id(id: &str) -> bool {
    (1..=255).contains(&id.len())
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'@' | b'_' | b'-')
        })
}

/// Type `^[a-z0-9_-]{1,64}$`, id `^[\w-]{1,64}$`.
pub(crate) fn validate_channel(endpoint: &str, kind: &str, id: &str) -> Result<(), StreamError> {
    validate_channel_type_name(endpoint, kind)?;
    let id_ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
    if !id_ok {
        return Err(StreamError::input(
            endpoint,
            format!(
                "channel id {id:?} is not valid: use 1-64 characters from a-z, A-Z, 0-9, _ and -"
            ),
        ));
    }
    Ok(())
}

/// `(type, id)` of a stored message's `cid`.
pub(crate) fn split_cid(message: &Value) -> (String, String) {
    let cid = message
        .get("cid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (kind, id) = cid.split_once(':').unwrap_or(("", cid));
    (kind.to_owned(), id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_follow_the_documented_charset() {
        assert!(valid_user_id("visitor-1"));
        assert!(valid_user_id("a@b_c-d"));
        assert!(!valid_user_id(""));
        assert!(!valid_user_id("Upper"));
        assert!(!valid_user_id("has space"));
        assert!(!valid_user_id(&"a".repeat(256)));
    }

    #[test]
    fn channel_ids_and_types_are_validated() {
        assert!(validate_channel("X", "messaging", "Abc_1-2").is_ok());
        assert_eq!(
            validate_channel("X", "messaging", "a:b").map_err(|e| e.code),
            Err(4)
        );
        assert_eq!(
            validate_channel("X", "messaging", &"a".repeat(65)).map_err(|e| e.code),
            Err(4)
        );
        assert_eq!(
            validate_channel("X", "Messaging", "a").map_err(|e| e.code),
            Err(4)
        );
    }

    #[test]
    fn message_clock_is_strictly_increasing_with_millis() {
        let mut data = Data::new(Map::new());
        let stamps: Vec<String> = (0..50).map(|_| data.tick()).collect();
        assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
        assert!(
            stamps
                .iter()
                .all(|s| s.len() == "2026-11-24T10:00:00.123Z".len()),
            "{stamps:?}"
        );
    }
}
