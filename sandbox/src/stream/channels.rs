//! Channels: get-or-create (`POST /channels/{type}/{id}/query`) and the state a query returns.

use super::auth::Actor;
use super::errors::StreamError;
use super::state::{validate_channel, Channel, Data, MAX_MESSAGE_LENGTH};
use super::StreamState;
use crate::support::{lock, now_rfc3339};
use serde_json::{json, Map, Value};

/// Stream's built-in channel types.
const CHANNEL_TYPES: [&str; 5] = ["messaging", "livestream", "team", "gaming", "commerce"];
/// Messages a channel query returns by default (Stream's default page).
const MESSAGES_PAGE: usize = 25;

impl StreamState {
    /// Get-or-create: `(created, state)`.
    pub(crate) fn query_channel(
        &self,
        kind: &str,
        id: &str,
        actor: &Actor,
        body: &Value,
    ) -> Result<(bool, Value), StreamError> {
        const EP: &str = "GetOrCreateChannel";
        validate_channel(EP, kind, id)?;
        if !CHANNEL_TYPES.contains(&kind) {
            return Err(StreamError::not_found(
                EP,
                format!("Channel type '{kind}' does not exist"),
            ));
        }
        let cid = format!("{kind}:{id}");
        let empty = Map::new();
        let spec = match body.get("data") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(spec)) => spec,
            Some(_) => return Err(StreamError::input(EP, "data must be an object")),
        };
        let mut data = lock(&self.data);
        if let Some(channel) = data.channels.get(&cid) {
            if let Actor::User(user) = actor {
                if !channel.members.contains(user) {
                    return Err(StreamError::not_allowed(
                        EP,
                        format!("User '{user}' with role 'user' is not allowed to perform action ReadChannel in scope '{kind}'"),
                    ));
                }
            }
            // Get-or-create: an existing channel is returned as is; `data` is only used on creation.
            let channel = channel.clone();
            return Ok((false, channel_state(&data, &channel)));
        }
        let creator = creator(EP, actor, spec)?;
        let members = parse_members(EP, spec.get("members"))?;
        let mut missing: Vec<&str> = std::iter::once(creator.as_str())
            .chain(members.iter().map(String::as_str))
            .filter(|u| !data.users.contains_key(*u))
            .collect();
        missing.dedup();
        if !missing.is_empty() {
            return Err(StreamError::input(
                EP,
                format!(
                    "The following users are involved in channel create operation, but don't exist: [{}]. Please create \
                     the user objects before setting up the channel.",
                    missing.join(", ")
                ),
            ));
        }
        let channel = Channel {
            channel_type: kind.to_owned(),
            id: id.to_owned(),
            created_by_id: creator,
            members,
            created_at: now_rfc3339(),
        };
        data.channels.insert(cid, channel.clone());
        Ok((true, channel_state(&data, &channel)))
    }
}

/// The creator: the calling user, or for the server `data.created_by_id` / `data.created_by.id` (required).
fn creator(
    endpoint: &str,
    actor: &Actor,
    spec: &Map<String, Value>,
) -> Result<String, StreamError> {
    match actor {
        Actor::User(user) => Ok(user.clone()),
        Actor::Server => {
            let by_id = spec.get("created_by_id").and_then(Value::as_str);
            let by_obj = spec
                .get("created_by")
                .and_then(|c| c.get("id"))
                .and_then(Value::as_str);
            match by_id.or(by_obj) {
                Some(creator) if !creator.is_empty() => Ok(creator.to_owned()),
                _ => Err(StreamError::input(
                    endpoint,
                    "When using server side auth, data.created_by or data.created_by_id is a required field",
                )),
            }
        }
    }
}

/// Members as user ids or `{"user_id"}` objects, deduplicated in order.
pub(crate) fn parse_members(
    endpoint: &str,
    members: Option<&Value>,
) -> Result<Vec<String>, StreamError> {
    let mut parsed: Vec<String> = Vec::new();
    for member in members.and_then(Value::as_array).into_iter().flatten() {
        let member = match member {
            Value::String(id) => Some(id.as_str()),
            Value::Object(m) => m.get("user_id").and_then(Value::as_str),
            _ => None,
        };
        let Some(member) = member else {
            return Err(StreamError::input(
                endpoint,
                "members must be user ids or {\"user_id\"} objects",
            ));
        };
        if !parsed.iter().any(|m| m == member) {
            parsed.push(member.to_owned());
        }
    }
    Ok(parsed)
}

/// What a channel query returns: `channel`, `members`, `messages` (the newest page), `read`, `watcher_count`.
pub(crate) fn channel_state(data: &Data, channel: &Channel) -> Value {
    let cid = channel.cid();
    let members: Vec<Value> = channel
        .members
        .iter()
        .map(|m| {
            json!({
                "user_id": m,
                "user": data.user_json(m),
                "channel_role": if *m == channel.created_by_id { "channel_moderator" } else { "channel_member" },
                "created_at": channel.created_at,
                "updated_at": channel.created_at,
            })
        })
        .collect();
    let ids = data.order.get(&cid).map(Vec::as_slice).unwrap_or_default();
    let messages: Vec<Value> = ids
        .iter()
        .rev()
        .take(MESSAGES_PAGE)
        .rev()
        .filter_map(|id| data.messages.get(id).cloned())
        .collect();
    json!({
        "channel": {
            "id": channel.id,
            "type": channel.channel_type,
            "cid": cid,
            "created_by": data.user_json(&channel.created_by_id),
            "created_at": channel.created_at,
            "updated_at": channel.created_at,
            "member_count": channel.members.len(),
            "frozen": false,
            "disabled": false,
            "config": { "name": channel.channel_type, "max_message_length": MAX_MESSAGE_LENGTH },
        },
        "members": members,
        "messages": messages,
        "pinned_messages": [],
        "read": [],
        "watcher_count": 0,
    })
}
