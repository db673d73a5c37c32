//! The ports: what the handlers need from the CRM, the chat service and storage. Adapters implement them.

use crate::domain::{
    transcript::{Cleared, Conversation},
    ChannelRef, ContactId, Email, Identity, MessageChange, NoteId, PersonName, Role, StoredMessage,
    Timestamp, UserId,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Why a call to HubSpot or Stream failed, classified by what the caller can do about it.
///
/// `detail` holds the service's own words, and those can quote what was sent (HubSpot's messages quote the e-mail
/// of a contact, or the start of a refused value: names and message text). So the error's `Display`, which is what
/// logs show, names the service, the kind and the status only; `detail` goes where it is needed and kept private
/// (a parked contact's reason, read with `backlog`), never into a log line.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// Rate limited (429), or our shared rate budget had no permit in time (then nothing was sent): `retry_after`
    /// is the wait, if known. `daily` means the daily quota is gone and retrying today is pointless.
    #[error("{service} rate limited the request")]
    RateLimited {
        service: &'static str,
        retry_after: Option<Duration>,
        daily: bool,
    },
    /// 408, 423, no connection, or no time left to send: the request was not applied. Worth retrying.
    #[error("{service} is unavailable")]
    Unavailable {
        service: &'static str,
        detail: String,
    },
    /// The request was sent but no answer came in time: it may or may not have been applied.
    #[error("{service} did not answer in time")]
    Timeout { service: &'static str },
    /// A 5xx, or the connection broke after the request was sent: it may or may not have been applied, now or
    /// later (a gateway error can hide a write still in flight).
    #[error("{service} failed (the request may have been applied)")]
    Indeterminate {
        service: &'static str,
        detail: String,
    },
    /// A 4xx that retrying will not fix (bad token, invalid data, ...).
    #[error("{service} rejected the request with {status}")]
    Rejected {
        service: &'static str,
        status: u16,
        detail: String,
    },
    /// 2xx with a body we could not understand.
    #[error("{service} sent an unexpected response")]
    Protocol {
        service: &'static str,
        detail: String,
    },
}

impl UpstreamError {
    /// The service's own words about the failure, if it said any (see the type's docs: never for a log line).
    pub fn detail(&self) -> Option<&str> {
        match self {
            UpstreamError::Unavailable { detail, .. }
            | UpstreamError::Indeterminate { detail, .. }
            | UpstreamError::Rejected { detail, .. }
            | UpstreamError::Protocol { detail, .. } => Some(detail),
            UpstreamError::RateLimited { .. } | UpstreamError::Timeout { .. } => None,
        }
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            UpstreamError::RateLimited { daily, .. } => !daily,
            UpstreamError::Unavailable { .. }
            | UpstreamError::Timeout { .. }
            | UpstreamError::Indeterminate { .. } => true,
            UpstreamError::Rejected { .. } | UpstreamError::Protocol { .. } => false,
        }
    }

    /// Whether the request may have been applied although it did not succeed: a write with this outcome can
    /// still land later, so nothing written after it may be trusted until it no longer can (see `sync`).
    pub fn may_have_landed(&self) -> bool {
        match self {
            UpstreamError::Timeout { .. }
            | UpstreamError::Indeterminate { .. }
            | UpstreamError::Protocol { .. } => true,
            UpstreamError::RateLimited { .. }
            | UpstreamError::Unavailable { .. }
            | UpstreamError::Rejected { .. } => false,
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

/// The contact fields a registration gives: set on a new contact; on an existing one only when the visitor's
/// identity is verified.
#[derive(Debug, Clone)]
pub struct ContactDetails {
    pub email: Email,
    pub first_name: PersonName,
    pub last_name: PersonName,
}

/// One contact's transcript, to be written in a batch.
#[derive(Debug, Clone)]
pub struct TranscriptWrite {
    /// The HubSpot record to write (after a merge, not necessarily the id the contact was registered with).
    pub contact: ContactId,
    pub transcript: String,
}

/// What HubSpot did with one input of a batch write that was answered (any 2xx: `results` and `errors` say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteResult {
    Written,
    /// No such record: deleted, or merged into another (which has a new id).
    NotFound,
    /// Refused for this input, with HubSpot's reason (`VALIDATION_ERROR` for a value one of the portal's validation
    /// rules refuses, say): retrying the same write will not help.
    Rejected(String),
    /// The answer names this input neither as written nor as refused: it may have been applied.
    Unconfirmed,
}

/// The contact a registration was linked to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedContact {
    pub id: ContactId,
    /// It existed before this registration (as far as HubSpot says: an unverified registration learns it from the
    /// create's 409; a verified one's upsert may not say, and it does not matter there).
    pub existed: bool,
}

#[async_trait]
pub trait Crm: Send + Sync {
    /// The contact with this e-mail, in one request: created with the names if there is none. An existing contact
    /// is left untouched unless `identity` is verified, when the names are written to it too.
    async fn link_contact(
        &self,
        details: &ContactDetails,
        identity: Identity,
        deadline: Instant,
    ) -> Result<LinkedContact, UpstreamError>;
    /// Replaces the transcripts of up to [`MAX_BATCH`] distinct contacts in one request, sent under `permit` (the
    /// caller waits for it before preparing the batch) and answered or abandoned by `deadline`. `Ok` holds one
    /// result per input, in input order.
    async fn write_transcripts(
        &self,
        writes: &[TranscriptWrite],
        permit: Permit,
        deadline: Instant,
    ) -> Result<Vec<WriteResult>, UpstreamError>;
    /// The transcript property of up to [`MAX_BATCH`] contacts as HubSpot holds it now, in one request sent under
    /// `permit`: one answer per input, in input order; `None` for a record HubSpot does not have under that id
    /// (deleted, or merged into another). An unset property reads as empty.
    async fn read_transcripts(
        &self,
        contacts: &[ContactId],
        permit: Permit,
        deadline: Instant,
    ) -> Result<Vec<Option<String>>, UpstreamError>;
    /// The contact's current id, looked up by e-mail (after a merge it has a new one); `None` if there is none.
    async fn find_contact(
        &self,
        email: &Email,
        deadline: Instant,
    ) -> Result<Option<ContactId>, UpstreamError>;
    /// Creates up to [`MAX_BATCH`] notes in one request; their ids in input order.
    async fn create_notes(
        &self,
        notes: &[NewNote],
        permit: Permit,
        deadline: Instant,
    ) -> Result<Vec<NoteId>, UpstreamError>;
    /// Rewrites up to [`MAX_BATCH`] distinct notes in one request; one result per input, in input order.
    async fn update_notes(
        &self,
        notes: &[NoteUpdate],
        permit: Permit,
        deadline: Instant,
    ) -> Result<Vec<WriteResult>, UpstreamError>;
    /// The notes on a contact's timeline, with their bodies (to adopt a note whose creation went unanswered).
    async fn contact_notes(
        &self,
        contact: &ContactId,
        deadline: Instant,
    ) -> Result<Vec<(NoteId, String)>, UpstreamError>;
}

/// HubSpot's limit on inputs per batch call.
pub const MAX_BATCH: usize = 100;

/// A note to create on a contact's timeline (associated with it, type 202).
#[derive(Debug, Clone)]
pub struct NewNote {
    pub contact: ContactId,
    pub body: String,
    pub timestamp: Timestamp,
}

/// A note to rewrite in place.
#[derive(Debug, Clone)]
pub struct NoteUpdate {
    pub note: NoteId,
    pub body: String,
}

/// Who is asking for a HubSpot request: the shared rate budget keeps room for visitors waiting on a registration,
/// and caps registrations so that a flood of them cannot starve transcript writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Registration,
    /// Transcript writes and everything else done in the background (sweeper, operator commands).
    Background,
}

/// What a HubSpot answer said about the app's rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateSignal {
    /// `X-HubSpot-RateLimit-Remaining` / `-Max` / `-Interval-Milliseconds` on an answer.
    Remaining {
        remaining: u32,
        max: u32,
        interval: Duration,
    },
    /// A 429 for the rolling window (`TEN_SECONDLY_ROLLING`): nothing more until the window has passed.
    WindowExhausted { interval: Duration },
    /// A 429 for the daily quota (`DAILY`): nothing more until the quota resets.
    DailyExhausted,
}

#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// No permit before the caller's deadline: the next one is due after `wait`.
    #[error("no HubSpot request permit before the deadline (next in {wait:?})")]
    Exhausted { wait: Duration, daily: bool },
    #[error(transparent)]
    Storage(#[from] StoreError),
}

/// The budget's leave to send one HubSpot request. Only a budget makes one; a request consumes it.
#[derive(Debug)]
pub struct Permit(());

impl Permit {
    pub(crate) fn granted() -> Self {
        Self(())
    }
}

/// One rate budget for the HubSpot app, shared by every running Lambda (see `budget`).
#[async_trait]
pub trait RateBudget: Send + Sync + std::fmt::Debug {
    /// Waits for a permit to send one request, until `deadline` at most.
    async fn acquire(&self, caller: Caller, deadline: Instant) -> Result<Permit, BudgetError>;
    /// Tightens the budget with what HubSpot said.
    async fn observe(&self, signal: RateSignal);
}

/// The registration throttles' store (see `crate::throttle`).
#[async_trait]
pub trait Throttle: Send + Sync {
    /// Takes one registration from `subject`'s allowance under `limit`: `None` if granted, else the wait until the
    /// next one is.
    async fn take(
        &self,
        subject: &crate::throttle::Subject,
        limit: crate::budget::RateLimit,
    ) -> Result<Option<Duration>, StoreError>;
}

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
}

/// Where a channel's messages belong: stored at registration, read by every webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelMapping {
    pub channel: ChannelRef,
    pub contact_id: ContactId,
    pub email: Email,
    pub visitor_id: UserId,
    pub visitor_name: String,
    /// How the visitor was identified at registration.
    pub identity: Identity,
    pub created_at: Timestamp,
    /// What Stream erased of the conversation: later deliveries of erased messages store nothing.
    pub cleared: Option<Cleared>,
    /// Set while the contact is deleted in HubSpot (restorable): when its items expire. Nothing is recorded for it
    /// meanwhile.
    pub purge_at: Option<Timestamp>,
    /// The conversation's lines go to the contact's timeline notes only, never into its `chat_transcript`
    /// property: an unverified visitor who typed the e-mail of a contact that existed before could be anyone, and
    /// the property is what the customer's record shows (a stranger's 200 messages would push the customer's own
    /// lines out of it). The notes say the e-mail was not verified.
    pub notes_only: bool,
}

impl ChannelMapping {
    /// The mapping a registration stores: nothing of the conversation erased yet, the contact not deleted. The
    /// later states (`cleared`, `purge_at`) are set only by what happens to the conversation afterwards.
    pub fn registered(
        channel: ChannelRef,
        contact_id: ContactId,
        email: Email,
        visitor_id: UserId,
        visitor_name: String,
        identity: Identity,
        created_at: Timestamp,
    ) -> Self {
        Self {
            channel,
            contact_id,
            email,
            visitor_id,
            visitor_name,
            identity,
            created_at,
            cleared: None,
            purge_at: None,
            notes_only: false,
        }
    }

    /// The same mapping, its lines for the timeline notes only (see [`ChannelMapping::notes_only`]).
    pub fn notes_only(self, notes_only: bool) -> Self {
        Self { notes_only, ..self }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The change was new and is now stored; the contact's version was bumped.
    Applied,
    /// Already known (duplicate delivery, or older than what is stored): nothing changed.
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncState {
    /// Bumped by every accepted change.
    pub version: u64,
    /// The version last written to the CRM and confirmed.
    pub synced_version: u64,
    /// Messages stored for the contact (what the transcript's "earlier messages not shown" line counts).
    pub messages: u64,
    /// Where the contact lives in HubSpot now, if not under the id it was registered with (a merge gave it a new id).
    pub crm_contact: Option<ContactId>,
    /// Why the contact was taken out of the queue for good (HubSpot deleted it, or refuses its writes).
    pub parked: Option<String>,
    /// Conversations (cids) changed since the contact was last synced: their notes need rewriting.
    pub pending_notes: Vec<String>,
    /// When its messages last expired (see `retention`): since then HubSpot holds the only copy of some of its
    /// lines, so the property is rendered around what HubSpot shows (see `domain::archive`).
    pub archived_at: Option<Timestamp>,
    /// When its last change was recorded: what retention measures idleness from.
    pub changed_at: Option<Timestamp>,
    /// Per conversation (cid): its notes as they were when its messages expired.
    pub frozen: HashMap<String, Frozen>,
    /// Per conversation (cid): erasures recorded (truncation, deletion, the visitor's erasure), to tell whether one
    /// came after its notes froze.
    pub erasures: HashMap<String, u64>,
    /// Conversations (cids) whose visitor was erased: no visitor line of them is kept from HubSpot's copy.
    pub visitor_erased: Vec<String>,
}

/// A conversation's notes when its messages expired: never rendered again, only emptied by a later erasure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Frozen {
    /// The first this many notes (parts) of the conversation.
    pub notes: usize,
    /// The conversation's erasure count then.
    pub erasures: u64,
}

impl SyncState {
    /// The notes of the conversation that are frozen, and whether an erasure since may have reached their lines.
    pub fn frozen_notes(&self, cid: &str) -> (usize, bool) {
        let frozen = self.frozen.get(cid).copied().unwrap_or_default();
        let erasures = self.erasures.get(cid).copied().unwrap_or(0);
        (frozen.notes, frozen.notes > 0 && erasures > frozen.erasures)
    }

    /// The HubSpot record the transcript goes to.
    pub fn crm_target(&self, contact: &ContactId) -> ContactId {
        self.crm_contact.clone().unwrap_or_else(|| contact.clone())
    }
}

/// A contact whose transcript is not in HubSpot: behind (waiting in the queue) or parked (taken out of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BacklogEntry {
    pub contact: ContactId,
    /// Since when it has been waiting, or since when it has been parked.
    pub since: Timestamp,
    /// `None` while waiting; why, once parked.
    pub parked: Option<String>,
}

/// What one expiry of a contact's messages did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Archived {
    /// Message items given their TTL now.
    pub messages: usize,
    /// Every message item has its TTL: the contact is off the idle index. Otherwise time ran out and the next pass
    /// goes on where this one stopped.
    pub complete: bool,
}

/// An entry of the idle index: the contact joined it (at its first sync) or was last found active at `since`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleContact {
    pub contact: ContactId,
    pub since: Timestamp,
}

/// How far the transcripts are behind the CRM, counted over the whole queue: the sweeper's metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BacklogHealth {
    /// Contacts with changes not yet written (queued, parked ones not included).
    pub behind: usize,
    /// Contacts taken out of the queue for good until an operator re-queues them.
    pub parked: usize,
    /// Since when the longest-waiting queued contact has been waiting; `None` when nothing is behind.
    pub oldest_behind_since: Option<Timestamp>,
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

/// What is stored about a contact: counted before an erasure (`--dry-run` shows it), and what it erased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Items in the table: messages, conversations, the sync record, channel mappings, the visitors' channel lists.
    pub items: usize,
    /// The Stream users registered as the contact's visitors.
    pub visitors: Vec<UserId>,
    /// Channels (cids) of the contact's conversations.
    pub channels: Vec<String>,
    /// Contacts HubSpot merged into this one: their conversations are written to it, and go with it.
    pub merged: Vec<ContactId>,
}

/// A conversation and the notes on the contact's timeline that hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationNotes {
    pub conversation: Conversation,
    /// Part 1 first; empty before the first flush.
    pub notes: Vec<NoteId>,
    /// A note was being created when the last writer lost track of it (see [`Store::creating_note`]).
    pub creating: bool,
}

/// What a transcript is rendered from: the newest messages (oldest first) and their conversations.
#[derive(Debug, Clone, Default)]
pub struct TranscriptSource {
    pub conversations: Vec<Conversation>,
    pub messages: Vec<StoredMessage>,
}

/// A contact read whole for a flush (see [`Store::read_small_contact`]).
#[derive(Debug, Clone)]
pub struct ContactReading {
    /// What [`Store::recent_transcript`] returns.
    pub transcript: TranscriptSource,
    /// For each conversation asked for that exists (by cid): what [`Store::conversation_notes`] and
    /// [`Store::conversation_messages`] return for it.
    pub notes: Vec<(ConversationNotes, Vec<StoredMessage>)>,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Stores the channel mapping and the contact's conversation header; never overwrites an existing channel.
    async fn save_channel(&self, mapping: &ChannelMapping) -> Result<(), StoreError>;
    async fn channel(&self, channel: &ChannelRef) -> Result<Option<ChannelMapping>, StoreError>;
    /// Records a message change idempotently and, atomically with it, bumps the contact's version and queues it.
    /// `notes_only`: the conversation's lines go to its timeline notes only, never into the contact's property
    /// (see [`ChannelMapping::notes_only`]).
    async fn record_change(
        &self,
        contact: &ContactId,
        change: &MessageChange,
        role: Role,
        notes_only: bool,
    ) -> Result<Recorded, StoreError>;
    /// The contact's sync record. Serialized after whole changes: messages read next include every change up to
    /// its version.
    async fn sync_state(&self, contact: &ContactId) -> Result<SyncState, StoreError>;
    /// The newest messages whose lines fill at least `limit` characters (or all of them), and the conversations
    /// they belong to. Reads only that much, however long the contact's history.
    async fn recent_transcript(
        &self,
        contact: &ContactId,
        limit: usize,
    ) -> Result<TranscriptSource, StoreError>;
    /// Every conversation of the contact (to read HubSpot's copy of the conversations whose messages expired).
    async fn all_conversations(&self, contact: &ContactId)
        -> Result<Vec<Conversation>, StoreError>;
    /// The e-mail the contact registered with (to find it again after a merge).
    async fn contact_email(&self, contact: &ContactId) -> Result<Option<Email>, StoreError>;
    /// These conversations of the contact, with the notes that hold them.
    async fn conversation_notes(
        &self,
        contact: &ContactId,
        cids: &[String],
    ) -> Result<Vec<ConversationNotes>, StoreError>;
    /// [`Store::sync_state`] of each contact, in order, read as it reads one (transactionally) but many per
    /// request.
    async fn sync_states(&self, contacts: &[ContactId]) -> Result<Vec<SyncState>, StoreError>;
    /// The flusher's reads of a contact with few items (the newest messages and their conversations, and the
    /// note ids and messages of the conversations `cids`) in one request; `None` if the contact has too many
    /// items for that: then they are read piece by piece. Like the pieces, it reads every change up to the
    /// version `sync_state` returned before it.
    async fn read_small_contact(
        &self,
        contact: &ContactId,
        cids: &[String],
    ) -> Result<Option<ContactReading>, StoreError>;
    /// Every message of one conversation to show (oldest first).
    async fn conversation_messages(
        &self,
        contact: &ContactId,
        conversation: &Conversation,
    ) -> Result<Vec<StoredMessage>, StoreError>;
    /// Records that Stream erased (part of) a conversation and erases the same messages here: their text and the
    /// lines. Idempotent; `Unchanged` if it was already erased at least this far.
    async fn clear_conversation(
        &self,
        mapping: &ChannelMapping,
        cleared: Cleared,
    ) -> Result<Recorded, StoreError>;
    /// The channels a visitor was registered with.
    async fn visitor_channels(&self, visitor: &UserId) -> Result<Vec<ChannelRef>, StoreError>;
    /// Erases one author's messages in a conversation (soft: "message deleted"; `remove`: no line).
    async fn erase_author(
        &self,
        mapping: &ChannelMapping,
        author: &UserId,
        remove: bool,
    ) -> Result<Recorded, StoreError>;
    /// Marks that a note of the conversation is being created: if the answer never comes, the next writer looks
    /// for it on the contact's timeline before creating another.
    async fn creating_note(&self, contact: &ContactId, cid: &str) -> Result<(), StoreError>;
    /// The notes that hold the conversation now (part 1 first); clears the mark of a note being created.
    async fn save_notes(
        &self,
        contact: &ContactId,
        cid: &str,
        notes: &[NoteId],
    ) -> Result<(), StoreError>;

    /// What is stored about the contact (read only).
    async fn footprint(&self, contact: &ContactId) -> Result<Footprint, StoreError>;
    /// Deletes every item of the contact (privacy erasure): its channel mappings first, so that no webhook records
    /// anything for it from then on, then everything else. A lease still held by a flusher is left to its holder
    /// (it names no person and is gone at release or by TTL). Idempotent.
    async fn erase_contact(&self, contact: &ContactId) -> Result<Footprint, StoreError>;
    /// Contact deleted in HubSpot at `at` (restorable): takes it out of the queue at once and lists it for the purge
    /// at `purge_at` ([`Store::due_purges`]); every item of it also expires by TTL a while after, as a backstop.
    /// False if nothing is stored for it, or a later deletion or restore is recorded.
    async fn mark_deleted(
        &self,
        contact: &ContactId,
        at: Timestamp,
        purge_at: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Up to `limit` contacts deleted in HubSpot whose purge time is past, oldest first: to be erased, in Stream too.
    async fn due_purges(&self, now: Timestamp, limit: usize) -> Result<Vec<ContactId>, StoreError>;
    /// Contact restored in HubSpot at `at`: clears what `mark_deleted` set and queues it. False if nothing is
    /// stored, or a later deletion or restore is recorded.
    async fn restore_contact(&self, contact: &ContactId, at: Timestamp)
        -> Result<bool, StoreError>;
    /// The contacts registered with this e-mail (operators' erasure requests arrive by e-mail).
    async fn contacts_with_email(&self, email: &Email) -> Result<Vec<ContactId>, StoreError>;

    /// The idle index's contacts whose entry is older than `before`, oldest first, across every shard: the
    /// candidates for expiring their messages, each to be checked (see `retention`).
    async fn idle_contacts(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> Result<Vec<IdleContact>, StoreError>;
    /// Moves the contact's idle-index entry to `since` (it changed, or is not in sync): looked at again once the
    /// period has passed from then.
    async fn defer_idle(&self, contact: &ContactId, since: Timestamp) -> Result<(), StoreError>;
    /// Expires the contact's messages, under our lease, if it is still in sync, not parked and unchanged since
    /// `state` (its sync record, read under that lease): records it (freezing each conversation's notes as they
    /// are), then gives every message item the TTL `expires_at` (until `until` at most), and once all have it takes
    /// the contact off the idle index. `None` if the contact changed (or our lease is gone) and nothing was done.
    async fn archive_contact(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        state: &SyncState,
        expires_at: Timestamp,
        until: Instant,
    ) -> Result<Option<Archived>, StoreError>;

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
    /// Releases our lease whatever the version (the contact stays queued).
    async fn release_lease(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
    ) -> Result<(), StoreError>;
    /// Records that HubSpot merged the contact into `crm_contact`: the survivor names it (an alias item, so erasing,
    /// deleting or restoring the survivor reaches it) and its writes go there. False if nothing of the contact is
    /// stored here (nothing is recorded then: a merge of someone who never chatted is none of ours).
    async fn redirect_contact(
        &self,
        contact: &ContactId,
        crm_contact: &ContactId,
    ) -> Result<bool, StoreError>;
    /// Takes the contact out of the queue for good, recording why, and releases our lease.
    async fn park_contact(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        reason: &str,
    ) -> Result<(), StoreError>;
    /// Puts a parked or waiting contact (back) at the front of the queue; false if it has no sync record.
    async fn requeue(&self, contact: &ContactId) -> Result<bool, StoreError>;
    /// Contacts with changes not yet written to the CRM, longest waiting first, across every shard of the queue.
    async fn dirty_contacts(&self, limit: usize) -> Result<Vec<ContactId>, StoreError>;
    /// Waiting and parked contacts, for operators.
    async fn backlog(&self, limit: usize) -> Result<Vec<BacklogEntry>, StoreError>;
    /// How many contacts are behind or parked, and the oldest waiting one's age: for monitoring.
    async fn backlog_health(&self) -> Result<BacklogHealth, StoreError>;

    /// Takes the flusher's lease (one flusher writes batches at a time) if it is free or expired.
    async fn acquire_flusher(&self, owner: &LeaseOwner, ttl: Duration) -> Result<bool, StoreError>;
    /// Asks the flusher that holds the lease now to take this contact; false if no flusher holds it.
    async fn wake_flusher(&self, contact: &ContactId) -> Result<bool, StoreError>;
    /// Extends our flusher lease and returns the contacts woken for it; `None` if the lease is no longer ours.
    async fn renew_flusher(
        &self,
        owner: &LeaseOwner,
        ttl: Duration,
    ) -> Result<Option<Vec<ContactId>>, StoreError>;
    /// Forgets these wake-ups (the flusher has taken them).
    async fn clear_wakes(&self, contacts: &[ContactId]) -> Result<(), StoreError>;
    /// Releases our flusher lease. With `if_idle`, only if no contact was woken meanwhile (false: keep flushing);
    /// without, pending wake-ups stay for the next flusher.
    async fn release_flusher(&self, owner: &LeaseOwner, if_idle: bool) -> Result<bool, StoreError>;
}
