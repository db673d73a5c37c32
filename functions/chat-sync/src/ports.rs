//! The ports: what the handlers need from the CRM, the chat service and storage. Adapters implement them.

use crate::domain::{
    transcript::Conversation, ChannelRef, ContactId, Email, MessageChange, PersonName, Role,
    StoredMessage, Timestamp, UserId,
};
use async_trait::async_trait;
use std::time::{Duration, Instant};

/// Why a call to HubSpot or Stream failed, classified by what the caller can do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// Rate limited (429): `retry_after` is the wait the service asked for, if it said. `daily` means the daily quota is
    /// gone and retrying today is pointless.
    #[error("{service} rate limited the request")]
    RateLimited {
        service: &'static str,
        retry_after: Option<Duration>,
        daily: bool,
    },
    /// 408, 423, 5xx or a connection failure: worth retrying.
    #[error("{service} is unavailable: {detail}")]
    Unavailable {
        service: &'static str,
        detail: String,
    },
    /// The request was sent but no answer came in time: it may or may not have been applied.
    #[error("{service} did not answer in time")]
    Timeout { service: &'static str },
    /// A 4xx that retrying will not fix (bad token, invalid data, ...).
    #[error("{service} rejected the request with {status}: {detail}")]
    Rejected {
        service: &'static str,
        status: u16,
        detail: String,
    },
    /// 2xx with a body we could not understand.
    #[error("{service} sent an unexpected response: {detail}")]
    Protocol {
        service: &'static str,
        detail: String,
    },
}

impl UpstreamError {
    pub fn is_retryable(&self) -> bool {
        match self {
            UpstreamError::RateLimited { daily, .. } => !daily,
            UpstreamError::Unavailable { .. } | UpstreamError::Timeout { .. } => true,
            UpstreamError::Rejected { .. } | UpstreamError::Protocol { .. } => false,
        }
    }

    /// The wait the service asked for before the next attempt, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            UpstreamError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The contact fields a registration sets.
#[derive(Debug, Clone)]
pub struct ContactDetails {
    pub email: Email,
    pub first_name: PersonName,
    pub last_name: PersonName,
}

#[async_trait]
pub trait Crm: Send + Sync {
    /// Creates or updates the contact keyed by e-mail, in one call; returns its id.
    async fn upsert_contact(
        &self,
        details: &ContactDetails,
        deadline: Instant,
    ) -> Result<ContactId, UpstreamError>;
    /// Replaces the contact's transcript property. One attempt, answered or abandoned by `deadline`.
    async fn write_transcript(
        &self,
        contact: &ContactId,
        transcript: &str,
        deadline: Instant,
    ) -> Result<(), UpstreamError>;
}

#[derive(Debug, Clone)]
pub struct ChatUser {
    pub id: UserId,
    pub name: String,
    pub role: &'static str,
}

#[async_trait]
pub trait ChatService: Send + Sync {
    /// Creates or updates users in one call.
    async fn upsert_users(
        &self,
        users: &[ChatUser],
        deadline: Instant,
    ) -> Result<(), UpstreamError>;
    /// Gets or creates a channel server-side.
    async fn create_channel(
        &self,
        channel: &ChannelRef,
        created_by: &UserId,
        members: &[UserId],
        deadline: Instant,
    ) -> Result<(), UpstreamError>;
}

/// Where a channel's messages belong: stored at registration, read by every webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelMapping {
    pub channel: ChannelRef,
    pub contact_id: ContactId,
    pub email: Email,
    pub visitor_id: UserId,
    pub visitor_name: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The change was new and is now stored; the contact's version was bumped.
    Applied,
    /// Already known (duplicate delivery, or older than what is stored): nothing changed.
    Unchanged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncState {
    /// Bumped by every accepted change.
    pub version: u64,
    /// The version last written to the CRM and confirmed.
    pub synced_version: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Released, and the written version is the newest: the contact is clean.
    Released,
    /// Not released: changes arrived since the version that was written. The caller still holds the lease.
    Changed,
    /// Someone else holds the lease now (ours expired).
    Lost,
}

/// A random lease owner: one per flush attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseOwner(String);

impl LeaseOwner {
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the item already exists")]
    AlreadyExists,
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Everything needed to render a contact's transcript.
#[derive(Debug, Clone, Default)]
pub struct TranscriptSource {
    pub conversations: Vec<Conversation>,
    pub messages: Vec<StoredMessage>,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Stores the channel mapping and the contact's conversation header; never overwrites an existing channel.
    async fn save_channel(&self, mapping: &ChannelMapping) -> Result<(), StoreError>;
    async fn channel(&self, channel: &ChannelRef) -> Result<Option<ChannelMapping>, StoreError>;
    /// Records a message change idempotently and, atomically with it, bumps the contact's version.
    async fn record_change(
        &self,
        contact: &ContactId,
        change: &MessageChange,
        role: Role,
    ) -> Result<Recorded, StoreError>;
    async fn sync_state(&self, contact: &ContactId) -> Result<SyncState, StoreError>;
    async fn transcript_source(&self, contact: &ContactId) -> Result<TranscriptSource, StoreError>;
    /// Takes the contact's lease if it is free or expired.
    async fn acquire_lease(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        ttl: Duration,
    ) -> Result<bool, StoreError>;
    /// Extends our lease; false if it is no longer ours.
    async fn renew_lease(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        ttl: Duration,
    ) -> Result<bool, StoreError>;
    /// Releases our lease and marks `version` synced, only if no change arrived since `version`.
    async fn release_if_current(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        version: u64,
    ) -> Result<Release, StoreError>;
    /// Releases our lease whatever the version (the contact stays dirty for the sweeper).
    async fn release_lease(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
    ) -> Result<(), StoreError>;
    /// Moves a dirty contact to the back of the sweeper's queue (after a failed write), so contacts the CRM keeps
    /// rejecting cannot starve the others.
    async fn requeue_dirty(&self, contact: &ContactId) -> Result<(), StoreError>;
    /// Contacts with changes not yet written to the CRM, longest waiting first.
    async fn dirty_contacts(&self, limit: usize) -> Result<Vec<ContactId>, StoreError>;
}
