//! Custom roles, as Stream's `GET /roles` (ListRoles) and `POST /roles` (CreateRole) keep them: a name of
//! lowercase letters, digits and underscores, unique among the built-in roles and the app's custom ones. A user may
//! then have the role, and channel types' and the app's grants may name it.

use super::errors::StreamError;
use super::state::ROLES;
use super::StreamState;
use crate::support::{lock, now_rfc3339};
use serde_json::{json, Value};

/// Stream's longest role name (`CreateRoleRequest.name`).
const MAX_ROLE_NAME: usize = 64;

impl StreamState {
    /// `GET /roles`: the built-in roles, then the custom ones.
    pub(crate) fn list_roles(&self) -> Value {
        let data = lock(&self.data);
        // Built-in roles are as old as the app: the double's start stands in for its creation.
        let since = &self.started_at;
        let built_in = ROLES.iter().map(|name| {
            json!({ "name": name, "custom": false, "scopes": [], "created_at": since, "updated_at": since })
        });
        let custom = data.custom_roles.iter().map(|(name, created_at)| {
            json!({
                "name": name,
                "custom": true,
                "scopes": [],
                "created_at": created_at,
                "updated_at": created_at,
            })
        });
        json!({ "roles": built_in.chain(custom).collect::<Vec<_>>() })
    }

    /// `POST /roles` `{"name"}`: a new custom role; a name that is taken is refused.
    pub(crate) fn create_role(&self, body: &Value) -> Result<Value, StreamError> {
        const EP: &str = "CreateRole";
        let Some(name) = body.get("name").and_then(Value::as_str) else {
            return Err(StreamError::input(EP, "name is a required field"));
        };
        let valid = !name.is_empty()
            && name.len() <= MAX_ROLE_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(StreamError::input(
                EP,
                format!("role name {name:?} is not valid: 1-{MAX_ROLE_NAME} of a-z, 0-9 and _"),
            ));
        }
        let mut data = lock(&self.data);
        if data.role_exists(name) || name.starts_with("channel_") {
            return Err(StreamError::input(
                EP,
                format!("role {name:?} already exists"),
            ));
        }
        let now = now_rfc3339();
        data.custom_roles.insert(name.to_owned(), now.clone());
        Ok(json!({ "role": {
            "name": name,
            "custom": true,
            "scopes": [],
            "created_at": now,
            "updated_at": now,
        } }))
    }
}
