//! Users: `POST /users` replaces whole users, as Stream's UpdateUsers does; `PATCH /users` sets and unsets the
//! fields it names and keeps every other (role and custom fields included), as Stream's UpdateUsersPartial does.

use super::auth::Actor;
use super::errors::StreamError;
use super::filter::{self, Page};
use super::permissions::{Action, Resource};
use super::state::{full_user_json, valid_user_id, User, UserRecord, ROLES};
use super::StreamState;
use crate::support::{lock, now_rfc3339};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// Stream's per-call limit for `POST /users`.
pub const MAX_USERS_PER_CALL: usize = 100;

/// Fields Stream owns; anything else a client sends is a custom field.
const RESERVED: [&str; 5] = ["id", "name", "role", "created_at", "updated_at"];

impl StreamState {
    pub(crate) fn upsert_users(&self, body: &Value) -> Result<Value, StreamError> {
        const EP: &str = "UpdateUsers";
        let Some(users) = body.get("users").and_then(Value::as_object) else {
            return Err(StreamError::input(EP, "users is a required field"));
        };
        if users.is_empty() || users.len() > MAX_USERS_PER_CALL {
            return Err(StreamError::input(
                EP,
                format!("users must contain between 1 and {MAX_USERS_PER_CALL} users"),
            ));
        }
        let custom = lock(&self.data).custom_role_names();
        let mut parsed = Vec::with_capacity(users.len());
        for (key, user) in users {
            let Some(user) = user.as_object() else {
                return Err(StreamError::input(
                    EP,
                    format!("users[{key}] must be an object"),
                ));
            };
            let id = user.get("id").and_then(Value::as_str).unwrap_or(key);
            if id != key {
                return Err(StreamError::input(
                    EP,
                    format!("users[{key}].id must match its key, got {id}"),
                ));
            }
            if !valid_user_id(id) {
                return Err(StreamError::input(
                    EP,
                    format!("user_id {id:?} is not valid: use 1-255 characters from a-z, 0-9, @, _ and -"),
                ));
            }
            let role = parse_role(EP, user.get("role"), &custom)?.unwrap_or("user");
            let name = parse_name(EP, key, user.get("name"))?.unwrap_or("");
            let extra: Map<String, Value> = user
                .iter()
                .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            parsed.push((id.to_owned(), name.to_owned(), role.to_owned(), extra));
        }
        let mut data = lock(&self.data);
        let now = now_rfc3339();
        let mut out = Map::new();
        for (id, name, role, extra) in parsed {
            let created_at = data
                .users
                .get(&id)
                .map_or_else(|| now.clone(), |u| u.created_at.clone());
            // An upsert replaces the user (fields not given are gone), as Stream's UpdateUsers does.
            let record = UserRecord {
                user: User {
                    id: id.clone(),
                    name,
                    role,
                },
                extra,
                created_at,
                updated_at: now.clone(),
            };
            out.insert(id.clone(), full_user_json(&record));
            data.users.insert(id, record);
        }
        Ok(updated(out))
    }
}

/// The answer of `POST /users` and `PATCH /users` (the document's `UpdateUsersResponse`): the users as they are
/// now, and the id of the task that removes memberships a change of teams ended — none here, the double has no
/// teams, so it is empty.
fn updated(users: Map<String, Value>) -> Value {
    json!({ "users": users, "membership_deletion_task_id": "" })
}

/// Users a query returns by default and at most.
const QUERY_LIMIT: (usize, usize) = (30, 100);

impl filter::Fields for UserRecord {
    fn field(&self, name: &str) -> Option<Vec<Value>> {
        match name {
            "id" => Some(vec![Value::String(self.user.id.clone())]),
            "name" => Some(vec![Value::String(self.user.name.clone())]),
            "role" => Some(vec![Value::String(self.user.role.clone())]),
            // Custom fields can be filtered on; a user without the field matches no value.
            custom => Some(self.extra.get(custom).cloned().into_iter().collect()),
        }
    }
}

impl StreamState {
    /// `GET /users?payload={"filter_conditions", "sort", "limit", "offset"}`: users by id. A user token needs the
    /// `.app` permission `search-user`.
    pub(crate) fn query_users(
        &self,
        actor: &Actor,
        payload: Option<&str>,
    ) -> Result<Value, StreamError> {
        const EP: &str = "QueryUsers";
        let Some(payload) = payload else {
            return Err(StreamError::input(EP, "payload is a required parameter"));
        };
        let payload: Value = serde_json::from_str(payload)
            .map_err(|e| StreamError::input(EP, format!("payload is not valid JSON: {e}")))?;
        let Some(filter) = payload.get("filter_conditions").filter(|f| f.is_object()) else {
            return Err(StreamError::input(
                EP,
                "filter_conditions is a required object",
            ));
        };
        let page = Page::parse(EP, &payload, QUERY_LIMIT.0, QUERY_LIMIT.1)?;
        let data = lock(&self.data);
        if let Actor::User(user) = actor {
            data.permit(EP, user, "", Action::SearchUser, Resource::App)?;
        }
        let mut users = Vec::new();
        for record in data.users.values() {
            if filter::matches(EP, filter, record)? {
                users.push(full_user_json(record));
            }
        }
        let users = page.of(users);
        Ok(json!({ "users": users }))
    }

    /// `PATCH /users` `{"users": [{"id", "set": {...}, "unset": [...]}]}`. A user token may update only its own
    /// user, and never its role or token revocation.
    pub(crate) fn partial_update_users(
        &self,
        actor: &Actor,
        body: &Value,
    ) -> Result<Value, StreamError> {
        const EP: &str = "UpdateUsersPartial";
        let Some(updates) = body.get("users").and_then(Value::as_array) else {
            return Err(StreamError::input(EP, "users is a required field"));
        };
        if updates.is_empty() || updates.len() > MAX_USERS_PER_CALL {
            return Err(StreamError::input(
                EP,
                format!("users must contain between 1 and {MAX_USERS_PER_CALL} updates"),
            ));
        }
        let custom = lock(&self.data).custom_role_names();
        let parsed = updates
            .iter()
            .map(|update| PartialUpdate::parse(EP, actor, update, &custom))
            .collect::<Result<Vec<_>, _>>()?;
        let mut data = lock(&self.data);
        if let Actor::User(caller) = actor {
            // Its own user only (checked in `PartialUpdate::parse`), and only with `update-user-owner`.
            data.permit(EP, caller, "", Action::UpdateUser, Resource::OwnUser)?;
        }
        if let Some(missing) = parsed.iter().find(|u| !data.users.contains_key(&u.id)) {
            return Err(StreamError::input(
                EP,
                format!("user with id {:?} does not exist", missing.id),
            ));
        }
        let now = now_rfc3339();
        let mut out = Map::new();
        for update in parsed {
            if let Some(before) = &update.revoke_before {
                match before {
                    Some(millis) => data.revocations.insert(update.id.clone(), *millis),
                    None => data.revocations.remove(&update.id),
                };
            }
            let Some(record) = data.users.get_mut(&update.id) else {
                continue;
            };
            for (key, value) in update.set {
                match key.as_str() {
                    "name" => record.user.name = value.as_str().unwrap_or_default().to_owned(),
                    "role" => record.user.role = value.as_str().unwrap_or("user").to_owned(),
                    _ => {
                        record.extra.insert(key, value);
                    }
                }
            }
            for key in update.unset {
                if key == "name" {
                    record.user.name.clear();
                } else {
                    record.extra.remove(&key);
                }
            }
            record.updated_at = now.clone();
            out.insert(update.id.clone(), full_user_json(record));
        }
        Ok(updated(out))
    }
}

/// One entry of a partial update, checked before anything is applied (a bad entry changes no user).
struct PartialUpdate {
    id: String,
    set: Map<String, Value>,
    unset: Vec<String>,
    /// `Some(Some(ms))` revokes tokens issued before that instant, `Some(None)` lifts a revocation.
    revoke_before: Option<Option<i64>>,
}

impl PartialUpdate {
    fn parse(
        endpoint: &str,
        actor: &Actor,
        update: &Value,
        custom: &BTreeSet<String>,
    ) -> Result<Self, StreamError> {
        let Some(id) = update.get("id").and_then(Value::as_str) else {
            return Err(StreamError::input(
                endpoint,
                "users[].id is a required field",
            ));
        };
        let set = match update.get("set") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(set)) => set.clone(),
            Some(_) => return Err(StreamError::input(endpoint, "set must be an object")),
        };
        let unset = match update.get("unset") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(keys)) => keys
                .iter()
                .map(|k| k.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    StreamError::input(endpoint, "unset must be an array of field names")
                })?,
            Some(_) => return Err(StreamError::input(endpoint, "unset must be an array")),
        };
        if set.is_empty() && unset.is_empty() {
            return Err(StreamError::input(endpoint, "set or unset is required"));
        }
        for key in set.keys().chain(unset.iter()) {
            if ["id", "created_at", "updated_at"].contains(&key.as_str())
                || (key == "role" && unset.contains(key))
            {
                return Err(StreamError::input(
                    endpoint,
                    format!("{key} cannot be changed"),
                ));
            }
        }
        if set.contains_key("role") {
            parse_role(endpoint, set.get("role"), custom)?;
        }
        if let Some(name) = set.get("name") {
            if !name.is_string() {
                return Err(StreamError::input(endpoint, "name must be a string"));
            }
        }
        let revoke_before = match set.get("revoke_tokens_issued_before") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(at)) => Some(Some(parse_millis(endpoint, at)?)),
            Some(_) => {
                return Err(StreamError::input(
                    endpoint,
                    "revoke_tokens_issued_before must be an RFC 3339 time or null",
                ))
            }
        };
        if let Actor::User(caller) = actor {
            if caller != id || set.contains_key("role") || revoke_before.is_some() {
                return Err(StreamError::not_allowed(
                    endpoint,
                    format!("User '{caller}' is not allowed to perform action UpdateUser in scope '.app'"),
                ));
            }
        }
        Ok(Self {
            id: id.to_owned(),
            set,
            unset,
            revoke_before,
        })
    }
}

fn parse_millis(endpoint: &str, at: &str) -> Result<i64, StreamError> {
    let parsed = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            StreamError::input(endpoint, format!("{at:?} is not an RFC 3339 time: {e}"))
        })?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| StreamError::input(endpoint, format!("{at:?} is out of range")))
}

/// `None` when absent or null; an unknown role is refused.
fn parse_role<'a>(
    endpoint: &str,
    role: Option<&'a Value>,
    custom: &BTreeSet<String>,
) -> Result<Option<&'a str>, StreamError> {
    match role {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(role)) if ROLES.contains(&role.as_str()) || custom.contains(role) => {
            Ok(Some(role.as_str()))
        }
        Some(other) => Err(StreamError::input(
            endpoint,
            format!("role {other} does not exist"),
        )),
    }
}

fn parse_name<'a>(
    endpoint: &str,
    key: &str,
    name: Option<&'a Value>,
) -> Result<Option<&'a str>, StreamError> {
    match name {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(name)) => Ok(Some(name.as_str())),
        Some(_) => Err(StreamError::input(
            endpoint,
            format!("users[{key}].name must be a string"),
        )),
    }
}
