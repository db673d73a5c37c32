//! The [`Crm`] port, answered by the client's contacts, transcripts and notes.

use super::HubSpotClient;
use crate::domain::{ContactId, Email, Identity, NoteId};
use crate::ports::{
    ContactDetails, Crm, LinkedContact, NewNote, NoteUpdate, Permit, TranscriptWrite,
    UpstreamError, WriteResult,
};
use async_trait::async_trait;
use std::time::Instant;

#[async_trait]
impl Crm for HubSpotClient {
    async fn link_contact(
        &self,
        details: &ContactDetails,
        identity: Identity,
        deadline: Instant,
    ) -> Result<LinkedContact, UpstreamError> {
        self.link(details, identity, deadline).await
    }

    async fn write_transcripts(
        &self,
        writes: &[TranscriptWrite],
        permit: Permit,
        deadline: Instant,
    ) -> Result<Vec<WriteResult>, UpstreamError> {
        self.write_transcript_batch(writes, permit, deadline).await
    }

    async fn read_transcripts(
        &self,
        contacts: &[ContactId],
        permit: Permit,
        deadline: Instant,
    ) -> Result<Vec<Option<String>>, UpstreamError> {
        self.read_transcript_batch(contacts, permit, deadline).await
    }

    async fn find_contact(
        &self,
        email: &Email,
        deadline: Instant,
    ) -> Result<Option<ContactId>, UpstreamError> {
        self.find_by_email(email, deadline).await
    }

    async fn create_notes(
        &self,
        notes: &[NewNote],
        permit: Permit,
        deadline: Instant,
    ) -> Result<Vec<NoteId>, UpstreamError> {
        self.create_note_batch(notes, permit, deadline).await
    }

    async fn update_notes(
        &self,
        notes: &[NoteUpdate],
        permit: Permit,
        deadline: Instant,
    ) -> Result<Vec<WriteResult>, UpstreamError> {
        self.update_note_batch(notes, permit, deadline).await
    }

    async fn contact_notes(
        &self,
        contact: &ContactId,
        deadline: Instant,
    ) -> Result<Vec<(NoteId, String)>, UpstreamError> {
        self.notes_of(contact, deadline).await
    }
}
