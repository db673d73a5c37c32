//! The chat service (Stream).

use super::UpstreamError;
use crate::domain::{ChannelRef, ContactId, Email, Identity, UserId};
use async_trait::async_trait;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct ChatUser {
    pub id: UserId,
    pub name: String,
    pub role: &'static str,
}

#[async_trait]
pub trait ChatService: Send + Sync {
    /// Creates users in one call, replacing any user with the same id whole (`POST /users`): only for visitors,
    /// whose fresh random ids nobody else writes — never for the agent (see `adapters::stream_access`).
    async fn upsert_users(
        &self,
        users: &[ChatUser],
        deadline: Instant,
    ) -> Result<(), UpstreamError>;
    /// Gets or creates a channel server-side. Its custom data says how the visitor was identified
    /// (`visitor_identity`: `verified` / `unverified`), for the agents' tools.
    async fn create_channel(
        &self,
        channel: &ChannelRef,
        created_by: &UserId,
        members: &[UserId],
        identity: Identity,
        deadline: Instant,
    ) -> Result<(), UpstreamError>;
    /// Tells the agents' console whose conversation this is: the HubSpot contact's id and the e-mail as
    /// registered, in the channel's custom data (`contact_id`, `visitor_email`), which the conversation's members
    /// and the agents read. Erased with the channel.
    async fn describe_contact(
        &self,
        channel: &ChannelRef,
        contact_id: &ContactId,
        email: &Email,
        deadline: Instant,
    ) -> Result<(), UpstreamError>;
    /// Hard-deletes channels (erasure): a conversation with more than the visitor and one agent in it is no
    /// "conversation channel" that deleting the visitor takes along. A channel Stream no longer has counts as
    /// deleted.
    async fn delete_channels(
        &self,
        channels: &[ChannelRef],
        deadline: Instant,
    ) -> Result<(), UpstreamError>;
    /// Hard-deletes users with their messages and their conversation channels (erasure), returning only once they
    /// are gone (Stream deletes in a task: it is followed to its end within `deadline`). A user Stream no longer
    /// has counts as deleted, so a repeated erasure succeeds.
    async fn delete_users(&self, users: &[UserId], deadline: Instant) -> Result<(), UpstreamError>;
    /// Marks users deleted and nullifies what Stream holds about them (name, image, custom data), keeping their
    /// messages: an agent's erasure, whose answers are part of the visitors' conversations. Their tokens stop
    /// working. Returns once done (a task, followed to its end within `deadline`); a user Stream no longer has
    /// counts as done.
    async fn prune_users(&self, users: &[UserId], deadline: Instant) -> Result<(), UpstreamError>;
    /// Whether Stream has a user with this id.
    async fn user_exists(&self, user: &UserId, deadline: Instant) -> Result<bool, UpstreamError>;
}
