//! Messages: send, update, delete (soft or hard), undelete, get. Every change is published as Stream publishes it.

use super::auth::Actor;
use super::channel_types::MAX_MESSAGE_LENGTH;
use super::errors::StreamError;
use super::permissions::{Action, Resource};
use super::state::{split_cid, Data};
use super::webhooks::message_event;
use super::StreamState;
use crate::support::{lock, uuid};
use serde_json::{json, Value};

impl StreamState {
    pub(crate) fn create_message(
        &self,
        kind: &str,
        id: &str,
        actor: &Actor,
        message: &Value,
    ) -> Result<Value, StreamError> {
        const EP: &str = "SendMessage";
        let Some(message) = message.as_object() else {
            return Err(StreamError::input(EP, "message is a required field"));
        };
        let cid = format!("{kind}:{id}");
        let mut data = lock(&self.data);
        let channel = data.existing_channel(EP, kind, id)?;
        let by_id = message.get("user_id").and_then(Value::as_str);
        let by_obj = message
            .get("user")
            .and_then(|u| u.get("id"))
            .and_then(Value::as_str);
        let user_id = actor.acting_user(EP, by_id.or(by_obj), "message.user or message.user_id")?;
        if !data.users.contains_key(&user_id) {
            return Err(StreamError::input(
                EP,
                format!("user \"{user_id}\" does not exist"),
            ));
        }
        if let Actor::User(user) = actor {
            data.permit(
                EP,
                user,
                kind,
                Action::CreateMessage,
                Resource::Channel(channel),
            )?;
        }
        // Even the server sends only as a member.
        if !channel.members.contains(&user_id) {
            return Err(StreamError::not_allowed(
                EP,
                format!("User '{user_id}' is not allowed to perform action CreateMessage in scope '{kind}' (not a member of {cid})"),
            ));
        }
        let text = match message.get("text") {
            None | Some(Value::Null) => "",
            Some(Value::String(text)) => text.as_str(),
            Some(_) => return Err(StreamError::input(EP, "message.text must be a string")),
        };
        let attachments = message
            .get("attachments")
            .cloned()
            .unwrap_or_else(|| json!([]));
        let has_attachments = attachments.as_array().is_some_and(|a| !a.is_empty());
        if text.trim().is_empty() && !has_attachments {
            return Err(StreamError::input(
                EP,
                "message.text or message.attachments is required",
            ));
        }
        check_length(EP, text)?;
        let message_id = match message.get("id") {
            None | Some(Value::Null) => uuid(),
            Some(Value::String(given)) if !given.is_empty() && given.len() <= 255 => given.clone(),
            Some(_) => {
                return Err(StreamError::input(
                    EP,
                    "message.id must be a string of 1-255 characters",
                ))
            }
        };
        if data.messages.contains_key(&message_id) {
            return Err(StreamError::input(
                EP,
                format!("a message with ID {message_id} already exists"),
            ));
        }
        let now = data.tick();
        let stored = json!({
            "id": message_id,
            "text": text,
            "type": "regular",
            "cid": cid,
            "user": data.user_json(&user_id),
            "attachments": attachments,
            "mentioned_users": [],
            "latest_reactions": [],
            "reaction_counts": {},
            "reply_count": 0,
            "silent": false,
            "pinned": false,
            "shadowed": false,
            "created_at": now,
            "updated_at": now,
        });
        data.messages.insert(message_id.clone(), stored.clone());
        data.order.entry(cid).or_default().push(message_id);
        let event = message_event("message.new", kind, id, &stored);
        self.publish(&data, &event);
        Ok(stored)
    }

    pub(crate) fn update_message(
        &self,
        message_id: &str,
        actor: &Actor,
        update: &Value,
    ) -> Result<Value, StreamError> {
        const EP: &str = "UpdateMessage";
        let Some(update) = update.as_object() else {
            return Err(StreamError::input(EP, "message is a required field"));
        };
        let text = match update.get("text") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => return Err(StreamError::input(EP, "message.text must be a string")),
        };
        if let Some(text) = &text {
            check_length(EP, text)?;
        }
        let mut data = lock(&self.data);
        data.permit_on_message(EP, message_id, actor, Action::UpdateMessage)?;
        let now = data.tick();
        let Some(stored) = data.messages.get_mut(message_id) else {
            return Err(StreamError::not_found(
                EP,
                format!("message with id {message_id} doesn't exist"),
            ));
        };
        if stored.get("type").and_then(Value::as_str) == Some("deleted") {
            return Err(StreamError::input(EP, "cannot update a deleted message"));
        }
        if let Some(text) = text {
            stored["text"] = Value::String(text);
        }
        if let Some(attachments) = update.get("attachments") {
            stored["attachments"] = attachments.clone();
        }
        stored["updated_at"] = Value::String(now);
        let stored = stored.clone();
        let (kind, id) = split_cid(&stored);
        let event = message_event("message.updated", &kind, &id, &stored);
        self.publish(&data, &event);
        Ok(stored)
    }

    pub(crate) fn delete_message(
        &self,
        message_id: &str,
        hard: bool,
        actor: &Actor,
    ) -> Result<Value, StreamError> {
        const EP: &str = "DeleteMessage";
        let mut data = lock(&self.data);
        data.permit_on_message(EP, message_id, actor, Action::DeleteMessage)?;
        let now = data.tick();
        let Some(stored) = data.messages.get_mut(message_id) else {
            return Err(StreamError::not_found(
                EP,
                format!("message with id {message_id} doesn't exist"),
            ));
        };
        let already_deleted = stored.get("type").and_then(Value::as_str) == Some("deleted");
        if already_deleted && !hard {
            // Soft-deleting twice changes nothing and sends no second event.
            return Ok(stored.clone());
        }
        if !already_deleted {
            stored["type"] = Value::String("deleted".to_owned());
            stored["deleted_at"] = Value::String(now.clone());
            stored["updated_at"] = Value::String(now);
        }
        let stored = stored.clone();
        let (kind, id) = split_cid(&stored);
        if hard {
            data.messages.remove(message_id);
            if let Some(order) = data.order.get_mut(&format!("{kind}:{id}")) {
                order.retain(|m| m != message_id);
            }
        }
        let mut event = message_event("message.deleted", &kind, &id, &stored);
        event["hard_delete"] = Value::Bool(hard);
        self.publish(&data, &event);
        Ok(stored)
    }

    /// `POST /messages/{id}/undelete` (server-side only): a soft-deleted message is shown again, text and all (a
    /// soft deletion keeps them), with a new `updated_at`, and `message.undeleted` is sent. A message that is not
    /// deleted is refused, as is one hard-deleted (it is gone: 404).
    pub(crate) fn undelete_message(
        &self,
        message_id: &str,
        undeleted_by: &str,
    ) -> Result<Value, StreamError> {
        const EP: &str = "UndeleteMessage";
        let mut data = lock(&self.data);
        if !data.users.contains_key(undeleted_by) {
            return Err(StreamError::input(
                EP,
                format!("user \"{undeleted_by}\" does not exist"),
            ));
        }
        let now = data.tick();
        let Some(stored) = data.messages.get_mut(message_id) else {
            return Err(StreamError::not_found(
                EP,
                format!("message with id {message_id} doesn't exist"),
            ));
        };
        if stored.get("type").and_then(Value::as_str) != Some("deleted") {
            return Err(StreamError::input(EP, "message is not deleted"));
        }
        stored["type"] = Value::String("regular".to_owned());
        if let Some(fields) = stored.as_object_mut() {
            fields.remove("deleted_at");
        }
        stored["updated_at"] = Value::String(now);
        let stored = stored.clone();
        let (kind, id) = split_cid(&stored);
        let event = message_event("message.undeleted", &kind, &id, &stored);
        self.publish(&data, &event);
        Ok(stored)
    }

    pub(crate) fn get_message(&self, message_id: &str) -> Result<Value, StreamError> {
        lock(&self.data)
            .messages
            .get(message_id)
            .cloned()
            .ok_or_else(|| {
                StreamError::not_found(
                    "GetMessage",
                    format!("message with id {message_id} doesn't exist"),
                )
            })
    }
}

fn check_length(endpoint: &str, text: &str) -> Result<(), StreamError> {
    if text.chars().count() > MAX_MESSAGE_LENGTH {
        return Err(StreamError::input(
            endpoint,
            format!("message is too long: the maximum length is {MAX_MESSAGE_LENGTH} characters"),
        ));
    }
    Ok(())
}

impl Data {
    /// A user may change a message if the channel type's grants allow it (by default: their own messages only);
    /// the server may change any. An unknown message is the caller's 404, found later.
    fn permit_on_message(
        &self,
        endpoint: &str,
        message_id: &str,
        actor: &Actor,
        action: Action,
    ) -> Result<(), StreamError> {
        let Actor::User(user) = actor else {
            return Ok(());
        };
        let Some(message) = self.messages.get(message_id) else {
            return Ok(());
        };
        let (kind, id) = split_cid(message);
        let author = message
            .get("user")
            .and_then(|u| u.get("id"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        match self.channels.get(&format!("{kind}:{id}")) {
            Some(channel) => self.permit(
                endpoint,
                user,
                &kind,
                action,
                Resource::Message { channel, author },
            ),
            None => Ok(()),
        }
    }
}
