//! Who may do what in Stream, as `setup` configures it once: the support agent, and the grants that confine a
//! visitor's token to its own channel. Registration only adds the agent to each channel and never writes it.
//!
//! Why the agent is not written by registration: `POST /users` replaces the whole user, so upserting the agent
//! with every registration demoted an admin or moderator agent to `user` and wiped its image and custom fields.
//! Setup creates the agent if it is missing and afterwards only sets its name, with a partial update
//! (`PATCH /users` `set`): its role, image and custom fields stay whatever they are.
//!
//! Why the grants: a visitor's token is a Stream user token handed to a browser. With Stream's default `messaging`
//! grants a `user` may create channels and, on channels it created, add members and change the channel's data,
//! and may search every user of the app. The product needs none of that: registration creates each channel
//! server-side (a server token bypasses permissions) with the agent as its creator. So setup replaces the grants
//! of the roles a visitor has — `user`, and `channel_member` in its own channel — with what the widget uses
//! (`PUT /channeltypes/{type}`, only these roles; admins' and moderators' grants are kept), and takes the app-wide
//! rights to search, flag and mute users from `user` (`PATCH /app` `grants`). Each grant, and why, is in the
//! constants below. Stream's *other* channel types keep their defaults, under which a `user` may create channels
//! of its own; on an app that serves only chat-sync, setup takes that right too (`--confine-other-types`).

use super::stream::StreamClient;
use crate::domain::{ChannelType, UserId};
use crate::ports::UpstreamError;
use reqwest::Method;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::time::Instant;

/// The role the agent is created with. Setup never changes it afterwards: an operator may promote the agent
/// (`moderator`, `admin`: to send attachments, or to see every channel in Stream's dashboard).
pub const AGENT_ROLE_ON_CREATION: &str = "user";

/// The custom Stream role every agent signed in through the identity provider has (`handlers::agent_sessions`):
/// setup creates it (`POST /roles`) and grants it the product's channel type only. The webhook shows its
/// messages as `(agent)`; only a server token can give a user this role.
pub const AGENT_ROLE: &str = "chat_agent";

/// Grants of the product's channel type, per role. Permission ids are Stream's (permissions v2).
pub const CHANNEL_GRANTS: &[(&str, &[&str])] = &[
    // Any user, member or not, on any channel of the type: only to edit or delete the messages it wrote (a visitor
    // corrects a typo; the transcript shows "(edited)"). No `create-channel`, and none of the `-owner` rights on
    // channels (read, update, add members, delete, truncate): a visitor owns no channel, the agent creates them.
    ("user", &["update-message-owner", "delete-message-owner"]),
    // A member of a channel — the visitor in its own, the agent in each: read it and who is in it, and write
    // messages, links included (a visitor pastes an order's URL). No attachments or uploads (the widget sends text;
    // uploads would make Stream's CDN a free file host), no reactions, mentions or custom events, no
    // `update-channel-members`.
    (
        "channel_member",
        &[
            "read-channel",
            "read-channel-members",
            "create-message",
            "add-links",
        ],
    ),
    // An agent, on every conversation of the type: read it (the console lists them all), join it to answer
    // (`update-channel-members`: Stream takes messages from members only; "Assign to me" joins), write in it, set
    // its assignment and status (`update-channel`: the channel's custom data), and correct its own messages.
    // Nothing on other channel types, nothing app-wide (see `APP_GRANTS`), no channel creation or deletion.
    (
        AGENT_ROLE,
        &[
            "read-channel",
            "read-channel-members",
            "update-channel-members",
            "create-message",
            "add-links",
            "update-channel",
            "update-message-owner",
            "delete-message-owner",
        ],
    ),
    // Nobody comes as a guest or anonymously: nothing.
    ("guest", &[]),
    ("anonymous", &[]),
];

/// The app-wide (`.app`) grants of the roles a visitor could have.
pub const APP_GRANTS: &[(&str, &[&str])] = &[
    // Nothing app-wide: no `update-user-owner` (a visitor renaming themselves in the agent's view; the name the
    // transcript shows is the registered one, and the widget's `connectUser` sends only the id), no `search-user`
    // (listing the other visitors and their names), no `flag-user` or `mute-user`.
    ("user", &[]),
    ("guest", &[]),
    ("anonymous", &[]),
    // Agents neither: no user search (the console reads members through channels), no renaming themselves (their
    // name comes from the identity provider at each sign-in).
    (AGENT_ROLE, &[]),
];

/// What a visitor's roles lose on the app's *other* channel types with `setup --stream-access
/// --confine-other-types`: creating a channel (Stream's defaults give it to `user` on every built-in type), and with
/// it owning one, and the `-owner` rights that come with that (adding members, changing its data).
pub const CONFINED_ON_OTHER_TYPES: &str = "create-channel";

/// The roles a visitor's token has outside its own channel.
const VISITOR_ROLES: [&str; 3] = ["user", "guest", "anonymous"];

/// What setup did to the agent (or would do, in a dry run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentChange {
    /// It did not exist: created with [`AGENT_ROLE_ON_CREATION`].
    Created,
    /// Its name differed: set, nothing else touched.
    Renamed,
    Unchanged,
}

/// The app settings that switch Stream's checks off: with `disable_auth_checks` Stream accepts a user token that
/// is not signed with the app secret (anyone holding the public API key connects as any user, the support agent
/// included, and reads every channel); with `disable_permissions_checks` it ignores every grant. Either one undoes
/// all the confinement below. (The tutorial this product replaces told people to switch both on.)
pub const CHECK_SWITCHES: [&str; 2] = ["disable_auth_checks", "disable_permissions_checks"];

/// What setup found of [`CHECK_SWITCHES`], and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksOff {
    /// The switches that were on, in [`CHECK_SWITCHES`] order.
    pub on: Vec<&'static str>,
    /// Whether setup switched them off (`--enable-auth-checks`, not in a dry run).
    pub switched_off: bool,
}

/// What setup did to the grants (or would do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantsChange {
    pub channel_type: bool,
    pub app: bool,
}

fn grants_json(table: &[(&str, &[&str])]) -> Value {
    Value::Object(
        table
            .iter()
            .map(|(role, ids)| ((*role).to_owned(), json!(ids)))
            .collect::<Map<_, _>>(),
    )
}

/// Settings Stream's document requires in every `PUT /channeltypes/{name}` (`UpdateChannelTypeRequest`).
const REQUIRED_IN_TYPE_UPDATES: [&str; 3] = ["automod", "automod_behavior", "max_message_length"];

/// The body of a `PUT /channeltypes/{name}` that changes only `grants`: the settings every update must carry are
/// sent back as `current` (the type's `GET`) has them, so nothing else changes. A type answered without one of
/// them is an answer we do not understand.
fn grants_update(current: &Value, grants: Value) -> Result<Value, UpstreamError> {
    let mut body = Map::new();
    for name in REQUIRED_IN_TYPE_UPDATES {
        let value = current.get(name).ok_or_else(|| UpstreamError::Protocol {
            service: "Stream",
            detail: format!("the channel type's settings have no {name}"),
        })?;
        body.insert(name.to_owned(), value.clone());
    }
    body.insert("grants".to_owned(), grants);
    Ok(Value::Object(body))
}

/// Whether `current` (`{role: [ids]}`, as Stream shows grants) already gives each role of `wanted` exactly its ids.
fn grants_match(current: Option<&Value>, wanted: &[(&str, &[&str])]) -> bool {
    wanted.iter().all(|(role, ids)| {
        let have: Option<BTreeSet<&str>> = current
            .and_then(|c| c.get(*role))
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_str).collect());
        have == Some(ids.iter().copied().collect())
    })
}

impl StreamClient {
    /// Which of [`CHECK_SWITCHES`] are on; with `switch_off` and `apply`, turns them off (`PATCH /app`).
    pub async fn checks_off(
        &self,
        switch_off: bool,
        apply: bool,
        deadline: Instant,
    ) -> Result<ChecksOff, UpstreamError> {
        let app = self.app_settings(deadline).await?;
        let on: Vec<&'static str> = CHECK_SWITCHES
            .into_iter()
            .filter(|switch| {
                app.pointer(&format!("/app/{switch}"))
                    .and_then(Value::as_bool)
                    == Some(true)
            })
            .collect();
        let switched_off = switch_off && apply && !on.is_empty();
        if switched_off {
            let body: Map<String, Value> =
                on.iter().map(|s| ((*s).to_owned(), json!(false))).collect();
            self.update_app_settings(&Value::Object(body), deadline)
                .await?;
        }
        Ok(ChecksOff { on, switched_off })
    }

    /// Creates the support agent if it is missing, or sets its name if it differs (with `apply`; otherwise only
    /// reads and says what it would do).
    pub async fn ensure_agent(
        &self,
        id: &UserId,
        name: &str,
        apply: bool,
        deadline: Instant,
    ) -> Result<AgentChange, UpstreamError> {
        let existing = self.find_user(id, deadline).await?;
        let change = match existing.as_ref() {
            None => AgentChange::Created,
            Some(user) if user.get("name").and_then(Value::as_str) != Some(name) => {
                AgentChange::Renamed
            }
            Some(_) => AgentChange::Unchanged,
        };
        if !apply {
            return Ok(change);
        }
        match change {
            AgentChange::Created => {
                let body = json!({ "users": { id.as_str(): {
                    "id": id.as_str(),
                    "name": name,
                    "role": AGENT_ROLE_ON_CREATION,
                } } });
                self.call(Method::POST, "/users", Some(&body), deadline)
                    .await?;
            }
            AgentChange::Renamed => {
                let body = json!({ "users": [{ "id": id.as_str(), "set": { "name": name } }] });
                self.call(Method::PATCH, "/users", Some(&body), deadline)
                    .await?;
            }
            AgentChange::Unchanged => {}
        }
        Ok(change)
    }

    /// Creates [`AGENT_ROLE`] if the app lacks it (with `apply`); returns whether it was missing. Grants may name
    /// it only once it exists, so `setup` runs this before [`Self::restrict_visitors`].
    pub async fn ensure_agent_role(
        &self,
        apply: bool,
        deadline: Instant,
    ) -> Result<bool, UpstreamError> {
        let roles = self.call(Method::GET, "/roles", None, deadline).await?;
        let exists = roles
            .get("roles")
            .and_then(Value::as_array)
            .is_some_and(|roles| {
                roles
                    .iter()
                    .any(|r| r.get("name").and_then(Value::as_str) == Some(AGENT_ROLE))
            });
        if !exists && apply {
            self.call(
                Method::POST,
                "/roles",
                Some(&json!({ "name": AGENT_ROLE })),
                deadline,
            )
            .await?;
        }
        Ok(!exists)
    }

    /// Gives the visitor's roles the grants above on `channel_type` and app-wide, if they differ (with `apply`;
    /// otherwise only reads and says what it would change).
    pub async fn restrict_visitors(
        &self,
        channel_type: &ChannelType,
        apply: bool,
        deadline: Instant,
    ) -> Result<GrantsChange, UpstreamError> {
        let path = format!("/channeltypes/{}", channel_type.as_str());
        let current = self.call(Method::GET, &path, None, deadline).await?;
        let app = self.app_settings(deadline).await?;
        let change = GrantsChange {
            channel_type: !grants_match(current.get("grants"), CHANNEL_GRANTS),
            app: !grants_match(app.pointer("/app/grants"), APP_GRANTS),
        };
        if apply && change.channel_type {
            let body = grants_update(&current, grants_json(CHANNEL_GRANTS))?;
            self.call(Method::PUT, &path, Some(&body), deadline).await?;
        }
        if apply && change.app {
            self.update_app_settings(&json!({ "grants": grants_json(APP_GRANTS) }), deadline)
                .await?;
        }
        Ok(change)
    }

    /// The app's channel types other than `product` on which a visitor's roles may create channels (sorted); with
    /// `confine` and `apply`, takes that one right from them there, keeping each role's other grants.
    pub async fn channel_creation_elsewhere(
        &self,
        product: &ChannelType,
        confine: bool,
        apply: bool,
        deadline: Instant,
    ) -> Result<Vec<String>, UpstreamError> {
        let listed = self
            .call(Method::GET, "/channeltypes", None, deadline)
            .await?;
        let mut names: Vec<String> = listed
            .get("channel_types")
            .and_then(Value::as_object)
            .map(|types| types.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        let mut open = Vec::new();
        for name in names.into_iter().filter(|n| n != product.as_str()) {
            // Each type on its own: the list may leave its grants out.
            let path = format!("/channeltypes/{name}");
            let current = self.call(Method::GET, &path, None, deadline).await?;
            let mut confined = Map::new();
            for role in VISITOR_ROLES {
                let ids: Vec<&str> = current
                    .pointer(&format!("/grants/{role}"))
                    .and_then(Value::as_array)
                    .map(|ids| ids.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if ids.contains(&CONFINED_ON_OTHER_TYPES) {
                    let kept: Vec<&str> = ids
                        .into_iter()
                        .filter(|id| *id != CONFINED_ON_OTHER_TYPES)
                        .collect();
                    confined.insert(role.to_owned(), json!(kept));
                }
            }
            if confined.is_empty() {
                continue;
            }
            if confine && apply {
                let body = grants_update(&current, Value::Object(confined))?;
                self.call(Method::PUT, &path, Some(&body), deadline).await?;
            }
            open.push(name);
        }
        Ok(open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grants_update_carries_the_settings_every_update_must_keep() {
        let current = json!({
            "name": "messaging",
            "automod": "simple",
            "automod_behavior": "block",
            "max_message_length": 2000,
            "reactions": false,
        });
        let body = grants_update(&current, json!({"user": []})).expect("body");
        assert_eq!(
            body,
            json!({
                "automod": "simple",
                "automod_behavior": "block",
                "max_message_length": 2000,
                "grants": {"user": []},
            })
        );
        let partial = json!({"automod": "disabled", "automod_behavior": "flag"});
        assert!(matches!(
            grants_update(&partial, json!({})),
            Err(UpstreamError::Protocol { .. })
        ));
    }

    #[test]
    fn grants_match_only_when_each_role_has_exactly_its_ids() {
        let wanted: &[(&str, &[&str])] = &[("user", &["a", "b"]), ("guest", &[])];
        assert!(grants_match(
            Some(&json!({"user": ["b", "a"], "guest": [], "admin": ["x"]})),
            wanted
        ));
        assert!(!grants_match(
            Some(&json!({"user": ["a", "b", "c"], "guest": []})),
            wanted
        ));
        assert!(!grants_match(Some(&json!({"user": ["a", "b"]})), wanted));
        assert!(!grants_match(None, wanted));
    }

    #[test]
    fn a_visitor_gets_no_channel_creation_membership_or_user_search() {
        let has = |table: &[(&str, &[&str])], role: &str, id: &str| {
            table.iter().any(|(r, ids)| *r == role && ids.contains(&id))
        };
        for role in ["user", "channel_member", "guest", "anonymous"] {
            for id in [
                "create-channel",
                "update-channel-members",
                "update-channel-members-owner",
                "update-channel",
                "update-channel-owner",
                "read-channel-owner",
            ] {
                assert!(!has(CHANNEL_GRANTS, role, id), "{role} has {id}");
            }
            assert!(!has(APP_GRANTS, role, "search-user"), "{role} searches");
        }
        assert!(has(CHANNEL_GRANTS, "channel_member", "read-channel"));
        assert!(has(CHANNEL_GRANTS, "channel_member", "create-message"));
    }
}
