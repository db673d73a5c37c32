//! Permissions as Stream's permission system v2 applies them to client-side (user-token) calls; a server token
//! bypasses every check, as Stream's does. The grants they read are the channel types' (`channel_types.rs`).
//!
//! * A caller's **roles** on a channel are its user role (`user`, `admin`, `moderator`, `guest`, `anonymous`) and,
//!   if it is a member, its channel role (`channel_member`; the double makes no `channel_moderator`). An action is
//!   allowed when one of those roles holds its permission id (`read-channel`), or holds the `-owner` variant
//!   (`read-channel-owner`) and the caller owns the resource: the channel's creator for channel actions, the
//!   author for message actions, the user itself for user actions.
//! * A refusal is Stream's: 403, code 17, `User '<id>' with role '<role>' is not allowed to perform action
//!   <Action> in scope '<channel type>'`.

use super::channel_types::Grants;
use super::errors::StreamError;
use super::state::{Channel, Data};
use serde_json::Value;

/// What a user-token call tries to do; each maps to Stream's action name and permission id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    CreateChannel,
    ReadChannel,
    UpdateChannel,
    UpdateChannelMembers,
    DeleteChannel,
    CreateMessage,
    UpdateMessage,
    DeleteMessage,
    SearchUser,
    UpdateUser,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::CreateChannel => "CreateChannel",
            Self::ReadChannel => "ReadChannel",
            Self::UpdateChannel => "UpdateChannel",
            Self::UpdateChannelMembers => "UpdateChannelMembers",
            Self::DeleteChannel => "DeleteChannel",
            Self::CreateMessage => "CreateMessage",
            Self::UpdateMessage => "UpdateMessage",
            Self::DeleteMessage => "DeleteMessage",
            Self::SearchUser => "SearchUser",
            Self::UpdateUser => "UpdateUser",
        }
    }

    fn permission(self) -> &'static str {
        match self {
            Self::CreateChannel => "create-channel",
            Self::ReadChannel => "read-channel",
            Self::UpdateChannel => "update-channel",
            Self::UpdateChannelMembers => "update-channel-members",
            Self::DeleteChannel => "delete-channel",
            Self::CreateMessage => "create-message",
            Self::UpdateMessage => "update-message",
            Self::DeleteMessage => "delete-message",
            Self::SearchUser => "search-user",
            Self::UpdateUser => "update-user",
        }
    }
}

/// The caller's relation to what it acts on.
pub(crate) enum Resource<'a> {
    /// A channel that does not exist yet (creation).
    NewChannel,
    Channel(&'a Channel),
    /// A message in a channel, by its author.
    Message {
        channel: &'a Channel,
        author: &'a str,
    },
    /// The app scope (searching users).
    App,
    /// The caller's own user, in the app scope (`update-user-owner`).
    OwnUser,
}

impl Data {
    /// Allows `action` for `user_id` on `resource` in channel type `kind` (ignored for the app scope), or answers
    /// Stream's 403.
    pub(crate) fn permit(
        &self,
        endpoint: &str,
        user_id: &str,
        kind: &str,
        action: Action,
        resource: Resource<'_>,
    ) -> Result<(), StreamError> {
        let role = self
            .users
            .get(user_id)
            .map_or("user", |u| u.user.role.as_str());
        let (grants, owner, channel_role, scope) = match resource {
            Resource::App => (Some(&self.app_grants), false, None, ".app"),
            Resource::OwnUser => (Some(&self.app_grants), true, None, ".app"),
            Resource::NewChannel => (self.grants_of(kind), false, None, kind),
            Resource::Channel(channel) => (
                self.grants_of(kind),
                channel.created_by_id == user_id,
                channel_role(channel, user_id),
                kind,
            ),
            Resource::Message { channel, author } => (
                self.grants_of(kind),
                author == user_id,
                channel_role(channel, user_id),
                kind,
            ),
        };
        if self.setting_on("disable_permissions_checks") {
            // As on Stream: every user may do everything.
            return Ok(());
        }
        let permission = action.permission();
        let owner_permission = format!("{permission}-owner");
        let allowed = std::iter::once(role)
            .chain(channel_role)
            .filter_map(|r| grants.and_then(|g| g.get(r)))
            .any(|ids| ids.contains(permission) || (owner && ids.contains(&owner_permission)));
        if allowed {
            Ok(())
        } else {
            Err(StreamError::not_allowed(
                endpoint,
                format!(
                    "User '{user_id}' with role '{role}' is not allowed to perform action {} in scope '{scope}'",
                    action.name()
                ),
            ))
        }
    }

    /// What the SDK's `channel.data.own_capabilities` lists for `user_id`: Stream's capability names for the
    /// actions the grants allow it on `channel` (own and others' messages told apart), and the events the
    /// channel type's settings turn on for a reader.
    pub(crate) fn own_capabilities(&self, user_id: &str, channel: &Channel) -> Vec<&'static str> {
        let kind = channel.channel_type.as_str();
        let may = |action: Action, resource: Resource<'_>| {
            self.permit("", user_id, kind, action, resource).is_ok()
        };
        let own = || Resource::Message {
            channel,
            author: user_id,
        };
        let others = || Resource::Message {
            channel,
            author: "",
        };
        let on_channel = || Resource::Channel(channel);
        let reader = may(Action::ReadChannel, on_channel());
        let setting = |name: &str| {
            self.channel_types
                .get(kind)
                .and_then(|t| t.settings.get(name))
                .and_then(Value::as_bool)
                == Some(true)
        };
        [
            ("send-message", may(Action::CreateMessage, on_channel())),
            ("update-own-message", may(Action::UpdateMessage, own())),
            ("update-any-message", may(Action::UpdateMessage, others())),
            ("delete-own-message", may(Action::DeleteMessage, own())),
            ("delete-any-message", may(Action::DeleteMessage, others())),
            ("update-channel", may(Action::UpdateChannel, on_channel())),
            (
                "update-channel-members",
                may(Action::UpdateChannelMembers, on_channel()),
            ),
            ("delete-channel", may(Action::DeleteChannel, on_channel())),
            ("read-events", reader && setting("read_events")),
            ("connect-events", reader && setting("connect_events")),
            ("typing-events", reader && setting("typing_events")),
        ]
        .into_iter()
        .filter_map(|(capability, allowed)| allowed.then_some(capability))
        .collect()
    }

    fn grants_of(&self, kind: &str) -> Option<&Grants> {
        self.channel_types.get(kind).map(|t| &t.grants)
    }
}

/// A member's channel role (`channel_member`: the double makes no channel moderators; the creator is a member
/// who owns the channel); `None` for a non-member.
pub(crate) fn channel_role(channel: &Channel, user_id: &str) -> Option<&'static str> {
    channel
        .members
        .iter()
        .any(|m| m == user_id)
        .then_some("channel_member")
}
