//! Erasure as Stream does it, recorded so tests can assert what was erased:
//!
//! * `POST /users/delete` `{"user_ids", "user", "messages", "conversations"}` (Stream's `DeleteUsersRequest`): an
//!   async task, answered with its id (`{"task_id"}`) and applied shortly after; `GET /tasks/{id}` shows `pending`,
//!   then `completed` (or `failed`, with an `error`, when a test asks for it: [`super::StreamDouble::fail_next_tasks`])
//!   — a client that does not wait for it sees the users still there. Stream's published API has no other way to
//!   delete a user: `DELETE /users/{id}` is gone from it, and from the double (404, as for any unknown route);
//! * `DELETE /channels/{type}/{id}?hard_delete=true`.
//!
//! A deleted user's tokens stop working (a revocation at the deletion time). `user: "hard"`: the user is gone, and
//! it requires `messages` and `conversations` hard too (the document's rule, enforced: 400 otherwise). Its
//! messages: soft or pruning → `type: "deleted"`, hard → gone. `user: "pruning"` marks the user deleted and
//! nullifies its information (name, image, custom fields; the id and role stay), as the document says; with no
//! `messages` mode, its messages stay, shown without a name. Conversation channels (exactly two members, the user
//! one of them) are deleted with their messages. Each deletion sends what Stream sends: `user.deleted`
//! (`hard_delete`, `mark_messages_deleted`, `delete_conversation_channels`) and `channel.deleted`, to the webhook
//! and to the connections concerned. A task ignores ids Stream does not have: deleting a user twice succeeds.

use super::auth::Actor;
use super::errors::StreamError;
use super::permissions::{Action, Resource};
use super::state::{user_json, ChannelDeletion, Data, Erasure, UserDeletion};
use super::StreamState;
use crate::support::{lock, now_rfc3339, uuid};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// How `POST /users/delete` tasks wait before they run: long enough that a client must poll `GET /tasks/{id}`.
const TASK_DELAY: Duration = Duration::from_millis(100);
/// Stream's limit of users per `POST /users/delete`.
const MAX_USERS_PER_DELETE: usize = 100;

/// What to erase with a user.
#[derive(Clone, Copy)]
struct Plan {
    user: Erasure,
    messages: Option<Erasure>,
    conversations: bool,
}

impl StreamState {
    /// `POST /users/delete`: checks the request, answers a task id, erases after [`TASK_DELAY`] (or, when a test
    /// scripted it, fails the task and erases nothing).
    pub(crate) fn delete_users(self: &Arc<Self>, body: &Value) -> Result<Value, StreamError> {
        const EP: &str = "DeleteUsers";
        let Some(ids) = body.get("user_ids").and_then(Value::as_array) else {
            return Err(StreamError::input(EP, "user_ids is a required field"));
        };
        let ids = ids
            .iter()
            .map(|id| id.as_str().map(str::to_owned))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| StreamError::input(EP, "user_ids must be strings"))?;
        if ids.is_empty() || ids.len() > MAX_USERS_PER_DELETE {
            return Err(StreamError::input(
                EP,
                format!("user_ids must contain between 1 and {MAX_USERS_PER_DELETE} ids"),
            ));
        }
        // Each mode is one of the document's values; absent (or empty) deletes none of that kind.
        let mode =
            |name: &str, allowed: &[&'static str]| -> Result<Option<&'static str>, StreamError> {
                match body.get(name) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(v)) if v.is_empty() => Ok(None),
                    Some(Value::String(v)) => allowed
                        .iter()
                        .find(|a| **a == v.as_str())
                        .map(|a| Some(*a))
                        .ok_or_else(|| {
                            StreamError::input(
                                EP,
                                format!("{name} must be one of {}, got {v:?}", allowed.join(", ")),
                            )
                        }),
                    Some(other) => Err(StreamError::input(
                        EP,
                        format!("{name} must be a string, got {other}"),
                    )),
                }
            };
        // A message's pruning shows as its soft deletion does here (`type: "deleted"`, no text).
        let erasure = |mode: Option<&str>| match mode {
            None => None,
            Some("hard") => Some(Erasure::Hard),
            Some(_) => Some(Erasure::Soft),
        };
        let user = mode("user", &["soft", "pruning", "hard"])?;
        let messages = mode("messages", &["soft", "pruning", "hard"])?;
        let conversations = mode("conversations", &["soft", "hard"])?;
        let Some(user) = user else {
            return Err(StreamError::input(
                EP,
                "user is required by the sandbox (soft, pruning or hard)",
            ));
        };
        if user == "hard" && (messages != Some("hard") || conversations != Some("hard")) {
            return Err(StreamError::input(
                EP,
                "user: hard requires messages: hard and conversations: hard",
            ));
        }
        let plan = Plan {
            user: match user {
                "hard" => Erasure::Hard,
                "pruning" => Erasure::Pruning,
                _ => Erasure::Soft,
            },
            messages: erasure(messages),
            conversations: match conversations {
                None => false,
                Some("hard") => true,
                Some(_) => {
                    return Err(StreamError::input(
                        EP,
                        "the sandbox deletes conversations hard only",
                    ))
                }
            },
        };
        let task_id = uuid();
        let now = now_rfc3339();
        let fails = {
            let mut data = lock(&self.data);
            data.tasks.insert(
                task_id.clone(),
                json!({"task_id": task_id, "status": "pending", "created_at": now, "updated_at": now}),
            );
            let fails = data.failing_tasks > 0;
            data.failing_tasks = data.failing_tasks.saturating_sub(1);
            fails
        };
        let state = Arc::clone(self);
        let task = task_id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(TASK_DELAY).await;
            let mut data = lock(&state.data);
            let outcome = if fails {
                json!({
                    "status": "failed",
                    "error": {
                        "type": "internal",
                        "description": "injected fault: the task failed before deleting anything",
                    },
                })
            } else {
                let mut deleted = Vec::new();
                for id in &ids {
                    if data.users.contains_key(id) {
                        state.erase_user(&mut data, id, plan);
                        deleted.push(id.clone());
                    }
                }
                json!({"status": "completed", "result": { "deleted_user_ids": deleted }})
            };
            if let (Some(task), Value::Object(outcome)) = (data.tasks.get_mut(&task), outcome) {
                for (key, value) in outcome {
                    task[key] = value;
                }
                task["updated_at"] = json!(now_rfc3339());
            }
        });
        Ok(json!({ "task_id": task_id }))
    }

    pub(crate) fn task(&self, id: &str) -> Result<Value, StreamError> {
        lock(&self.data)
            .tasks
            .get(id)
            .cloned()
            .ok_or_else(|| StreamError::not_found("GetTask", format!("task {id:?} does not exist")))
    }

    /// `DELETE /channels/{type}/{id}`: the channel and its messages go (soft and hard alike here: a soft-deleted
    /// channel is invisible to queries as well); `channel.deleted` goes out.
    pub(crate) fn delete_channel(
        &self,
        kind: &str,
        id: &str,
        actor: &Actor,
        hard: bool,
    ) -> Result<Value, StreamError> {
        const EP: &str = "DeleteChannel";
        let cid = format!("{kind}:{id}");
        let mut data = lock(&self.data);
        let channel = data.existing_channel(EP, kind, id)?;
        if let Actor::User(user) = actor {
            data.permit(
                EP,
                user,
                kind,
                Action::DeleteChannel,
                Resource::Channel(channel),
            )?;
        }
        let mut state = self.channel_state(&data, channel, actor)["channel"].clone();
        state["deleted_at"] = json!(now_rfc3339());
        self.erase_channel(&mut data, &cid, hard);
        Ok(json!({ "channel": state }))
    }

    fn erase_channel(&self, data: &mut Data, cid: &str, hard: bool) {
        let Some(channel) = data.channels.remove(cid) else {
            return;
        };
        for message in data.order.remove(cid).unwrap_or_default() {
            data.messages.remove(&message);
        }
        data.reads.remove(cid);
        data.channel_deletions.push(ChannelDeletion {
            cid: cid.to_owned(),
            hard,
        });
        let event = json!({
            "type": "channel.deleted",
            "cid": cid,
            "channel_type": channel.channel_type,
            "channel_id": channel.id,
            "channel": {"id": channel.id, "type": channel.channel_type, "cid": cid, "deleted_at": now_rfc3339()},
            "hard_delete": hard,
            "created_at": now_rfc3339(),
        });
        self.publish(data, &event);
    }

    fn erase_user(&self, data: &mut Data, user_id: &str, plan: Plan) {
        let Some(record) = data.users.get(user_id) else {
            return;
        };
        let mut user = user_json(record);
        let now = OffsetDateTime::now_utc();
        // Tokens issued until now stop working; a token issued later may recreate the id, as on Stream.
        let now_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        data.revocations.insert(user_id.to_owned(), now_ms);
        let conversations: Vec<String> = if plan.conversations {
            data.channels
                .values()
                .filter(|c| c.members.len() == 2 && c.members.iter().any(|m| m == user_id))
                .map(|c| c.cid())
                .collect()
        } else {
            Vec::new()
        };
        for cid in &conversations {
            self.erase_channel(data, cid, true);
        }
        if let Some(erasure) = plan.messages {
            erase_messages(data, user_id, erasure);
        }
        match plan.user {
            Erasure::Hard => {
                data.users.remove(user_id);
                for channel in data.channels.values_mut() {
                    channel.members.retain(|m| m != user_id);
                }
                for reads in data.reads.values_mut() {
                    reads.remove(user_id);
                }
            }
            Erasure::Soft | Erasure::Pruning => {
                if let Some(record) = data.users.get_mut(user_id) {
                    if plan.user == Erasure::Pruning {
                        // Its information nullified, in the event too.
                        record.user.name.clear();
                        record.extra.clear();
                        user = user_json(record);
                    }
                    record
                        .extra
                        .insert("deleted_at".to_owned(), json!(now_rfc3339()));
                }
            }
        }
        user["deleted_at"] = json!(now_rfc3339());
        data.user_deletions.push(UserDeletion {
            user_id: user_id.to_owned(),
            user: plan.user,
            messages: plan.messages,
            conversations: conversations.clone(),
        });
        let event = json!({
            "type": "user.deleted",
            "user": user,
            "hard_delete": plan.user == Erasure::Hard,
            "mark_messages_deleted": plan.messages.is_some(),
            "delete_conversation_channels": plan.conversations,
            "created_at": now_rfc3339(),
        });
        self.hub.send_to_user(user_id, &event);
        self.webhooks.enqueue(data, &event);
    }
}

/// Soft: each message becomes `type: "deleted"` with its text kept for nobody; hard: gone.
fn erase_messages(data: &mut Data, user_id: &str, erasure: Erasure) {
    let by_user: Vec<String> = data
        .messages
        .iter()
        .filter(|(_, m)| {
            m.get("user")
                .and_then(|u| u.get("id"))
                .and_then(Value::as_str)
                == Some(user_id)
        })
        .map(|(id, _)| id.clone())
        .collect();
    let now = data.tick();
    for id in by_user {
        match erasure {
            Erasure::Hard => {
                data.messages.remove(&id);
                for order in data.order.values_mut() {
                    order.retain(|m| *m != id);
                }
            }
            Erasure::Soft | Erasure::Pruning => {
                if let Some(message) = data.messages.get_mut(&id) {
                    message["type"] = json!("deleted");
                    message["text"] = json!("");
                    message["deleted_at"] = json!(now);
                    message["updated_at"] = json!(now);
                }
            }
        }
    }
}
