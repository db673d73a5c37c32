//! Users: `POST /users` replaces whole users, as Stream's UpdateUsers does.

use super::errors::StreamError;
use super::state::{user_json, valid_user_id, User, UserRecord, ROLES};
use super::StreamState;
use crate::support::{lock, now_rfc3339};
use serde_json::{json, Map, Value};

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
            let role = parse_role(EP, user.get("role"))?.unwrap_or("user");
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
            out.insert(id.clone(), user_json(&record));
            data.users.insert(id, record);
        }
        Ok(json!({ "users": out }))
    }
}

/// `None` when absent or null; an unknown role is refused.
fn parse_role<'a>(endpoint: &str, role: Option<&'a Value>) -> Result<Option<&'a str>, StreamError> {
    match role {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(role)) if ROLES.contains(&role.as_str()) => Ok(Some(role.as_str())),
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
