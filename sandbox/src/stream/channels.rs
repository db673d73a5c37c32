//! Channels: get-or-create (`POST /channels/{type}/{id}/query`) and the state a query returns.

use super::auth::Actor;
use super::channel_types::ChannelType;
use super::errors::StreamError;
use super::filter::{self, Page};
use super::permissions::{channel_role, Action, Resource};
use super::state::{validate_channel, Channel, Data};
use super::StreamState;
use crate::support::{lock, now_rfc3339};
use serde_json::{json, Map, Value};

/// Messages a channel query returns by default (Stream's default page).
const MESSAGES_PAGE: usize = 25;

/// What a channel query asks for beyond the state: to watch (with the caller's websocket connection).
pub(crate) struct Watch<'a> {
    pub(crate) watch: bool,
    pub(crate) connection_id: Option<&'a str>,
}

impl Watch<'_> {
    pub(crate) fn from_body<'a>(body: &Value, connection_id: Option<&'a str>) -> Watch<'a> {
        Watch {
            watch: body.get("watch").and_then(Value::as_bool) == Some(true),
            connection_id,
        }
    }
}

impl StreamState {
    /// Get-or-create: `(created, state)`. With `watch`, a user's connection starts receiving the channel's events.
    pub(crate) fn query_channel(
        &self,
        kind: &str,
        id: &str,
        actor: &Actor,
        body: &Value,
        watch: &Watch<'_>,
    ) -> Result<(bool, Value), StreamError> {
        const EP: &str = "GetOrCreateChannel";
        validate_channel(EP, kind, id)?;
        let cid = format!("{kind}:{id}");
        let empty = Map::new();
        let spec = match body.get("data") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(spec)) => spec,
            Some(_) => return Err(StreamError::input(EP, "data must be an object")),
        };
        let mut data = lock(&self.data);
        data.check_type(EP, kind)?;
        if let (true, Actor::User(user)) = (watch.watch, actor) {
            // A watch that cannot happen creates nothing.
            self.hub.check_connection(EP, watch.connection_id, user)?;
        }
        let created = match data.channels.get(&cid) {
            Some(channel) => {
                if let Actor::User(user) = actor {
                    data.permit(
                        EP,
                        user,
                        kind,
                        Action::ReadChannel,
                        Resource::Channel(channel),
                    )?;
                }
                // Get-or-create: an existing channel is returned as is; `data` is only used on creation.
                false
            }
            None => {
                if let Actor::User(user) = actor {
                    data.permit(EP, user, kind, Action::CreateChannel, Resource::NewChannel)?;
                }
                let channel = new_channel(EP, &data, kind, id, actor, spec)?;
                data.channels.insert(cid.clone(), channel);
                true
            }
        };
        if let (true, Actor::User(user)) = (watch.watch, actor) {
            self.hub.watch(EP, watch.connection_id, user, &cid)?;
        }
        let channel = data.channels.get(&cid).cloned();
        let state = channel
            .map(|c| self.channel_state(&data, &c, actor))
            .unwrap_or_default();
        Ok((created, state))
    }

    /// `POST /channels` (the SDK's `queryChannels`): the channels matching `filter_conditions` that the caller may
    /// read, newest message first, paged by `limit` (default 10, at most 30) and `offset`; `watch` watches them all.
    pub(crate) fn query_channels(
        &self,
        actor: &Actor,
        body: &Value,
        connection_id: Option<&str>,
    ) -> Result<Value, StreamError> {
        const EP: &str = "QueryChannels";
        let filter = match body.get("filter_conditions") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(filter @ Value::Object(_)) => filter.clone(),
            Some(_) => {
                return Err(StreamError::input(
                    EP,
                    "filter_conditions must be an object",
                ))
            }
        };
        let page = Page::parse(EP, body, 10, 30)?;
        let data = lock(&self.data);
        let mut matching = Vec::new();
        for channel in data.channels.values() {
            if !filter::matches(EP, &filter, channel)? {
                continue;
            }
            let readable = match actor {
                Actor::Server => true,
                Actor::User(user) => data
                    .permit(
                        EP,
                        user,
                        &channel.channel_type,
                        Action::ReadChannel,
                        Resource::Channel(channel),
                    )
                    .is_ok(),
            };
            if readable {
                matching.push(channel.clone());
            }
        }
        // Newest activity first, as the SDK's default `last_message_at: -1` asks.
        matching.sort_by_key(|c| std::cmp::Reverse(last_activity(&data, c)));
        let page: Vec<Channel> = page.of(matching);
        let watch = Watch::from_body(body, connection_id);
        if let (true, Actor::User(user)) = (watch.watch, actor) {
            for channel in &page {
                self.hub
                    .watch(EP, watch.connection_id, user, &channel.cid())?;
            }
        }
        let channels: Vec<Value> = page
            .iter()
            .map(|c| self.channel_state(&data, c, actor))
            .collect();
        Ok(json!({ "channels": channels }))
    }

    /// `POST /channels/{type}/{id}` with `add_members` / `remove_members` (the SDK's `addMembers`,
    /// `removeMembers`). Other channel updates are refused (the double does not store channel data), after the
    /// permission check so a visitor still gets Stream's 403.
    pub(crate) fn update_channel(
        &self,
        kind: &str,
        id: &str,
        actor: &Actor,
        body: &Value,
    ) -> Result<Value, StreamError> {
        const EP: &str = "UpdateChannel";
        let cid = format!("{kind}:{id}");
        let mut data = lock(&self.data);
        let channel = data.existing_channel(EP, kind, id)?;
        let add = parse_members(EP, body.get("add_members"))?;
        let remove = parse_members(EP, body.get("remove_members"))?;
        let other: Vec<&String> = body
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
            .filter(|k| !["add_members", "remove_members", "hide_history"].contains(&k.as_str()))
            .collect();
        if let Actor::User(user) = actor {
            if !add.is_empty() || !remove.is_empty() {
                data.permit(
                    EP,
                    user,
                    kind,
                    Action::UpdateChannelMembers,
                    Resource::Channel(channel),
                )?;
            }
            if !other.is_empty() {
                data.permit(
                    EP,
                    user,
                    kind,
                    Action::UpdateChannel,
                    Resource::Channel(channel),
                )?;
            }
        }
        if let Some(field) = other.first() {
            return Err(StreamError::input(
                EP,
                format!(
                    "{field} is not supported by the sandbox: only add_members and remove_members"
                ),
            ));
        }
        if add.is_empty() && remove.is_empty() {
            return Err(StreamError::input(
                EP,
                "add_members or remove_members is required",
            ));
        }
        if let Some(missing) = add.iter().find(|u| !data.users.contains_key(*u)) {
            return Err(StreamError::input(
                EP,
                format!("user {missing:?} does not exist"),
            ));
        }
        let mut channel = channel.clone();
        let mut events = Vec::new();
        for user in add {
            if !channel.members.contains(&user) {
                channel.members.push(user.clone());
                events.push(("member.added", user));
            }
        }
        for user in remove {
            if channel.members.contains(&user) {
                channel.members.retain(|m| *m != user);
                events.push(("member.removed", user));
            }
        }
        data.channels.insert(cid.clone(), channel.clone());
        for (kind_of_event, user) in events {
            let event = json!({
                "type": kind_of_event,
                "cid": cid,
                "channel_type": kind,
                "channel_id": id,
                "user": data.user_json(&user),
                "member": {"user_id": user, "user": data.user_json(&user), "channel_role": channel_role(&channel, &user)},
                "created_at": now_rfc3339(),
            });
            self.publish(&data, &event);
        }
        Ok(self.channel_state(&data, &channel, actor))
    }

    /// `PATCH /channels/{type}/{id}` `{"set": {...}, "unset": [...]}` (the SDK's `updatePartial`): the channel's
    /// custom data changed field by field, everything else kept; `channel.updated` to its watchers and webhook.
    /// A user needs `update-channel` on it; Stream's own fields cannot be set this way.
    pub(crate) fn update_channel_partial(
        &self,
        kind: &str,
        id: &str,
        actor: &Actor,
        body: &Value,
    ) -> Result<Value, StreamError> {
        const EP: &str = "UpdateChannelPartial";
        const RESERVED: [&str; 12] = [
            "id",
            "cid",
            "type",
            "members",
            "created_by",
            "created_by_id",
            "created_at",
            "updated_at",
            "member_count",
            "own_capabilities",
            "config",
            "frozen",
        ];
        let set = match body.get("set") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(set)) => set.clone(),
            Some(_) => return Err(StreamError::input(EP, "set must be an object")),
        };
        let unset: Vec<String> = match body.get("unset") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(keys)) => keys
                .iter()
                .map(|k| k.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| StreamError::input(EP, "unset must be an array of field names"))?,
            Some(_) => return Err(StreamError::input(EP, "unset must be an array")),
        };
        if set.is_empty() && unset.is_empty() {
            return Err(StreamError::input(EP, "set or unset is required"));
        }
        if let Some(field) = set
            .keys()
            .chain(unset.iter())
            .find(|k| RESERVED.contains(&k.as_str()))
        {
            return Err(StreamError::input(
                EP,
                format!("{field} cannot be changed this way"),
            ));
        }
        let cid = format!("{kind}:{id}");
        let mut data = lock(&self.data);
        let channel = data.existing_channel(EP, kind, id)?;
        if let Actor::User(user) = actor {
            data.permit(
                EP,
                user,
                kind,
                Action::UpdateChannel,
                Resource::Channel(channel),
            )?;
        }
        let mut channel = channel.clone();
        for key in &unset {
            channel.custom.remove(key);
        }
        channel.custom.extend(set);
        data.channels.insert(cid.clone(), channel.clone());
        let state = self.channel_state(&data, &channel, actor);
        let user = match actor {
            Actor::User(user) => data.user_json(user),
            Actor::Server => Value::Null,
        };
        let event = json!({
            "type": "channel.updated",
            "cid": cid,
            "channel_type": kind,
            "channel_id": id,
            "channel": state["channel"],
            "user": user,
            "created_at": now_rfc3339(),
        });
        self.publish(&data, &event);
        Ok(json!({ "channel": state["channel"], "members": state["members"] }))
    }

    /// `POST /channels/{type}/{id}/event` (the SDK's `keystroke`, `stopTyping`, `sendEvent`): `typing.start` /
    /// `typing.stop` (when the type's `typing_events` is on) go to the channel's watchers only, as on Stream; other
    /// event types are refused (the double has no custom events).
    pub(crate) fn send_event(
        &self,
        kind: &str,
        id: &str,
        actor: &Actor,
        body: &Value,
    ) -> Result<Value, StreamError> {
        const EP: &str = "SendEvent";
        let data = lock(&self.data);
        let channel = data.existing_channel(EP, kind, id)?;
        let given = body
            .get("event")
            .and_then(|e| e.get("user_id"))
            .and_then(Value::as_str);
        let user = actor.acting_user(EP, given, "event.user_id")?;
        if let Actor::User(caller) = actor {
            data.permit(
                EP,
                caller,
                kind,
                Action::ReadChannel,
                Resource::Channel(channel),
            )?;
        }
        let event_type = body
            .get("event")
            .and_then(|e| e.get("type"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !["typing.start", "typing.stop"].contains(&event_type) {
            return Err(StreamError::input(
                EP,
                format!("event type {event_type:?} is not supported by the sandbox: only typing.start and typing.stop"),
            ));
        }
        let typing_on = data
            .channel_types
            .get(kind)
            .and_then(|t| t.settings.get("typing_events"))
            .and_then(Value::as_bool)
            == Some(true);
        if !typing_on {
            return Err(StreamError::input(
                EP,
                format!("typing events are disabled for channel type {kind:?}"),
            ));
        }
        let event = json!({
            "type": event_type,
            "cid": channel.cid(),
            "channel_type": kind,
            "channel_id": id,
            "user": data.user_json(&user),
            "created_at": now_rfc3339(),
        });
        // Typing is ephemeral: watchers only, never a webhook.
        self.hub.broadcast(&event);
        Ok(json!({ "event": event }))
    }

    pub(crate) fn stop_watching(
        &self,
        kind: &str,
        id: &str,
        connection_id: Option<&str>,
    ) -> Result<Value, StreamError> {
        validate_channel("StopWatchingChannel", kind, id)?;
        self.hub
            .stop_watching(connection_id, &format!("{kind}:{id}"));
        Ok(json!({}))
    }

    /// `POST /channels/{type}/{id}/read`: the member has read up to `message_id` (default: the newest message).
    pub(crate) fn mark_read(
        &self,
        kind: &str,
        id: &str,
        actor: &Actor,
        body: &Value,
    ) -> Result<Value, StreamError> {
        const EP: &str = "MarkRead";
        let cid = format!("{kind}:{id}");
        let mut data = lock(&self.data);
        let channel = data.existing_channel(EP, kind, id)?;
        let user = actor.acting_user(EP, body.get("user_id").and_then(Value::as_str), "user_id")?;
        if !channel.members.contains(&user) {
            return Err(StreamError::input(
                EP,
                format!("user {user:?} is not a member of {cid}"),
            ));
        }
        if let Actor::User(caller) = actor {
            data.permit(
                EP,
                caller,
                kind,
                Action::ReadChannel,
                Resource::Channel(channel),
            )?;
        }
        let last = match body.get("message_id").and_then(Value::as_str) {
            Some(message) => Some(message.to_owned()),
            None => data.order.get(&cid).and_then(|ids| ids.last().cloned()),
        };
        let now = now_rfc3339();
        let read = json!({
            "user": data.user_json(&user),
            "last_read": now,
            "unread_messages": 0,
            "last_read_message_id": last,
        });
        data.reads
            .entry(cid.clone())
            .or_default()
            .insert(user.clone(), read);
        let event = json!({
            "type": "message.read",
            "cid": cid,
            "channel_type": kind,
            "channel_id": id,
            "user": data.user_json(&user),
            "last_read_message_id": last,
            "created_at": now,
        });
        self.publish(&data, &event);
        Ok(json!({ "event": event }))
    }

    /// What a channel query returns: `channel`, `members`, `messages` (the newest page), `read`, `watcher_count`.
    /// `own_capabilities` are the caller's, from the channel type's grants (none for the server, as Stream).
    pub(crate) fn channel_state(&self, data: &Data, channel: &Channel, viewer: &Actor) -> Value {
        let cid = channel.cid();
        let members: Vec<Value> = channel
            .members
            .iter()
            .map(|m| {
                json!({
                    "user_id": m,
                    "user": data.user_json(m),
                    "channel_role": channel_role(channel, m),
                    // The legacy membership role: the creator owns the channel.
                    "role": if *m == channel.created_by_id { "owner" } else { "member" },
                    "custom": {},
                    "banned": false,
                    "shadow_banned": false,
                    "notifications_muted": false,
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
        let read: Vec<Value> = data
            .reads
            .get(&cid)
            .map(|reads| reads.values().cloned().collect())
            .unwrap_or_default();
        let last_message_at = ids
            .last()
            .and_then(|id| data.messages.get(id))
            .and_then(|m| m.get("created_at").cloned());
        let mut state = json!({
            "channel": {
                "id": channel.id,
                "type": channel.channel_type,
                "cid": cid,
                "created_by": data.user_json(&channel.created_by_id),
                "created_at": channel.created_at,
                "updated_at": channel.created_at,
                "custom": channel.custom,
                "member_count": channel.members.len(),
                "own_capabilities": match viewer {
                    Actor::User(user) => data.own_capabilities(user, channel),
                    Actor::Server => Vec::new(),
                },
                "frozen": false,
                "disabled": false,
                "config": data
                    .channel_types
                    .get(&channel.channel_type)
                    .map(ChannelType::config)
                    .unwrap_or_default(),
            },
            "members": members,
            "messages": messages,
            "pinned_messages": [],
            "threads": [],
            "read": read,
            "watcher_count": self.hub.watcher_count(&cid),
        });
        // A channel without messages has no `last_message_at` (the document's is a non-null time when present).
        if let Some(at) = last_message_at {
            state["channel"]["last_message_at"] = at;
        }
        state
    }
}

impl Data {
    /// A channel type must exist (Stream answers 404 for an unknown one).
    pub(crate) fn check_type(&self, endpoint: &str, kind: &str) -> Result<(), StreamError> {
        if self.channel_types.contains_key(kind) {
            Ok(())
        } else {
            Err(StreamError::not_found(
                endpoint,
                format!("Channel type '{kind}' does not exist"),
            ))
        }
    }

    /// The channel `{kind}:{id}`: valid ids, a known type, and the channel itself, or Stream's 400/404.
    pub(crate) fn existing_channel(
        &self,
        endpoint: &str,
        kind: &str,
        id: &str,
    ) -> Result<&Channel, StreamError> {
        validate_channel(endpoint, kind, id)?;
        self.check_type(endpoint, kind)?;
        let cid = format!("{kind}:{id}");
        self.channels.get(&cid).ok_or_else(|| {
            StreamError::not_found(endpoint, format!("channel \"{cid}\" does not exist"))
        })
    }
}

fn new_channel(
    endpoint: &str,
    data: &Data,
    kind: &str,
    id: &str,
    actor: &Actor,
    spec: &Map<String, Value>,
) -> Result<Channel, StreamError> {
    let creator = creator(endpoint, actor, spec)?;
    let members = parse_members(endpoint, spec.get("members"))?;
    let mut missing: Vec<&str> = std::iter::once(creator.as_str())
        .chain(members.iter().map(String::as_str))
        .filter(|u| !data.users.contains_key(*u))
        .collect();
    missing.dedup();
    if !missing.is_empty() {
        return Err(StreamError::input(
            endpoint,
            format!(
                "The following users are involved in channel create operation, but don't exist: [{}]. Please create \
                 the user objects before setting up the channel.",
                missing.join(", ")
            ),
        ));
    }
    let custom = match spec.get("custom") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(custom)) => custom.clone(),
        Some(_) => {
            return Err(StreamError::input(
                endpoint,
                "data.custom must be an object",
            ))
        }
    };
    Ok(Channel {
        channel_type: kind.to_owned(),
        id: id.to_owned(),
        created_by_id: creator,
        members,
        created_at: now_rfc3339(),
        custom,
    })
}

/// The newest message's time, else the channel's creation.
fn last_activity(data: &Data, channel: &Channel) -> String {
    data.order
        .get(&channel.cid())
        .and_then(|ids| ids.last())
        .and_then(|id| data.messages.get(id))
        .and_then(|m| m.get("created_at"))
        .and_then(Value::as_str)
        .unwrap_or(&channel.created_at)
        .to_owned()
}

/// The creator: the calling user, or for the server `data.created_by_id` / `data.created_by.id` (required).
fn creator(
    endpoint: &str,
    actor: &Actor,
    spec: &Map<String, Value>,
) -> Result<String, StreamError> {
    let by_id = spec.get("created_by_id").and_then(Value::as_str);
    let by_obj = spec
        .get("created_by")
        .and_then(|c| c.get("id"))
        .and_then(Value::as_str);
    actor.acting_user(
        endpoint,
        by_id.or(by_obj),
        "data.created_by or data.created_by_id",
    )
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
