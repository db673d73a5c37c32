//! The CRM (HubSpot): contacts, their transcript property, their timeline notes.

use super::{Permit, UpstreamError};
use crate::domain::{ContactId, Email, Identity, NoteId, PersonName, Timestamp};
use async_trait::async_trait;
use std::time::Instant;

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
