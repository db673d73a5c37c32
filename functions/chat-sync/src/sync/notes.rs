//! The flusher's timeline notes: which conversations' notes a round writes, finding a note whose creation went
//! unanswered before creating it again, and the batch updates and creations. A conversation's notes are its
//! parts in order (part 1 first); the frozen ones (messages no longer stored here) are never rendered again.

use super::batch::Sent;
use super::round::Claim;
use super::{FlushReport, TranscriptSync, CLAIM_CONCURRENCY};
use crate::domain::note::is_part;
use crate::domain::{ContactId, NoteId, Timestamp};
use crate::ports::{NewNote, NoteUpdate, Permit, StoreError};
use futures::stream::{self, StreamExt, TryStreamExt};
use std::time::Instant;

impl TranscriptSync {
    /// Of the contacts whose notes' wait is over (`due`, from the notes' queue, longest-waiting first), those whose
    /// conversation still talks wait again, from their last change (`postpone_notes`), until their longest wait
    /// (`note_max_wait`); the rest are what a notes round takes. So a note goes out once its conversation pauses,
    /// in one write, not once a wait while it goes on. A contact's notes are moved in one conditional write, no
    /// lease, no read: cheaper than the claim and write a note would take, and no HubSpot call.
    pub(super) async fn quiet_notes(
        &self,
        due: Vec<(Timestamp, ContactId)>,
        now: Timestamp,
        report: &mut FlushReport,
    ) -> Result<Vec<(Timestamp, ContactId)>, StoreError> {
        let (wait, longest) = (self.settings.note_wait, self.settings.note_max_wait);
        if due.is_empty() || longest <= wait {
            return Ok(due);
        }
        let quiet_since = now.earlier_by(wait);
        let oldest_since = now.earlier_by(longest);
        let store = &self.store;
        let checked: Vec<((Timestamp, ContactId), bool)> = stream::iter(due)
            .map(|(since, contact)| async move {
                let postponed = store
                    .postpone_notes(&contact, since, quiet_since, oldest_since)
                    .await?;
                Ok::<_, StoreError>(((since, contact), postponed))
            })
            .buffered(CLAIM_CONCURRENCY)
            .try_collect()
            .await?;
        let (postponed, quiet): (Vec<_>, Vec<_>) =
            checked.into_iter().partition(|(_, postponed)| *postponed);
        report.notes_postponed += postponed.len() as u32;
        Ok(quiet.into_iter().map(|(entry, _)| entry).collect())
    }

    /// Conversations whose note creation went unanswered: the note may exist. Find it on the contact's timeline by
    /// its marker and adopt it, rather than create a second one.
    pub(super) async fn adopt_notes(&self, claims: &mut [Claim]) {
        for claim in claims.iter_mut() {
            if !claim.conversations.iter().any(|c| c.creating) {
                continue;
            }
            let deadline = Instant::now() + self.settings.write_timeout;
            let timeline = match self.crm.contact_notes(&claim.target, deadline).await {
                Ok(timeline) => timeline,
                Err(error) => {
                    tracing::warn!(%error, contact_id = %claim.contact, "could not read the contact's notes; trying again later");
                    claim.outcome.refused = true;
                    continue;
                }
            };
            for conversation in claim.conversations.iter_mut().filter(|c| c.creating) {
                for number in conversation.notes.len() + 1..=conversation.needed() {
                    match timeline
                        .iter()
                        .find(|(_, body)| is_part(body, &conversation.cid, number))
                    {
                        Some((id, _)) => {
                            tracing::info!(contact_id = %claim.contact, note_id = %id, part = number, "adopted a note whose creation went unanswered");
                            conversation.notes.push(id.clone());
                            conversation.changed = true;
                        }
                        None => break,
                    }
                }
            }
        }
    }

    /// Rewrites the notes that exist: the parts rendered now, and an "emptied" body for parts that no longer exist.
    pub(super) async fn update_notes(
        &self,
        claims: &mut [Claim],
        permit: &mut Option<Permit>,
        start_by: Instant,
        report: &mut FlushReport,
    ) -> Result<(), StoreError> {
        self.keep_leases(
            claims,
            |c| {
                c.conversations
                    .iter()
                    .any(|v| (0..v.notes.len()).any(|i| v.body(i).is_some()))
            },
            report,
        )
        .await?;
        let mut updates = Vec::new();
        let mut owners = Vec::new(); // (claim, conversation, note index)
        for (c, claim) in claims.iter().enumerate().filter(|(_, c)| c.outcome.clear()) {
            for (v, conversation) in claim.conversations.iter().enumerate() {
                for (i, note) in conversation.notes.iter().enumerate() {
                    let Some(body) = conversation.body(i) else {
                        continue;
                    };
                    updates.push(NoteUpdate {
                        note: note.clone(),
                        body: body.to_owned(),
                    });
                    owners.push((c, v, i));
                }
            }
        }
        if updates.is_empty() {
            return Ok(());
        }
        let crm = &self.crm;
        let results = self
            .send_batches(
                updates,
                permit,
                start_by,
                report,
                |batch, permit, deadline| async move {
                    crm.update_notes(&batch, permit, deadline).await
                },
            )
            .await;
        let mut missing: Vec<(usize, usize, usize)> = Vec::new();
        for ((c, v, i), result) in owners.into_iter().zip(results) {
            // Not found: deleted in HubSpot by someone; created again from that part on, next round.
            if claims[c].outcome.note(result, "a note") {
                missing.push((c, v, i));
            }
        }
        for (c, v, i) in missing {
            let claim = &mut claims[c];
            if i < claim.conversations[v].frozen {
                // Its lines are no longer stored here to write it again: left deleted, as someone chose.
                tracing::warn!(contact_id = %claim.contact, part = i + 1, "a frozen note was deleted in HubSpot; it stays deleted");
                continue;
            }
            tracing::warn!(contact_id = %claim.contact, part = i + 1, "a note was deleted in HubSpot; it is written again");
            let conversation = &mut claim.conversations[v];
            conversation.notes.truncate(i.min(conversation.notes.len()));
            conversation.surplus.clear();
            conversation.changed = true;
            claim.outcome.incomplete = true;
        }
        Ok(())
    }

    /// Creates the notes of parts that have none yet, marking each conversation first so that an unanswered
    /// creation is looked for, not repeated.
    pub(super) async fn create_notes(
        &self,
        claims: &mut [Claim],
        permit: &mut Option<Permit>,
        start_by: Instant,
        report: &mut FlushReport,
    ) -> Result<(), StoreError> {
        self.keep_leases(
            claims,
            |c| c.conversations.iter().any(|v| v.needed() > v.notes.len()),
            report,
        )
        .await?;
        let creating = |claim: &Claim| {
            let contact = claim.contact.clone();
            claim
                .conversations
                .iter()
                .filter(|v| v.needed() > v.notes.len())
                .map(move |v| (contact.clone(), v.cid.clone()))
                .collect::<Vec<_>>()
        };
        // Every marker is written before any creation is sent; they are independent of each other, so they go
        // out together rather than one round trip after another.
        let marks: Vec<(ContactId, String)> = claims
            .iter()
            .filter(|c| c.outcome.clear())
            .flat_map(creating)
            .collect();
        let marking = Instant::now();
        let store = &self.store;
        stream::iter(marks)
            .map(|(contact, cid)| async move { store.creating_note(&contact, &cid).await })
            .buffer_unordered(CLAIM_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        report.times.marks_us += marking.elapsed().as_micros() as u64;
        let mut notes = Vec::new();
        let mut owners = Vec::new(); // (claim, conversation, part index)
        for (c, claim) in claims.iter().enumerate().filter(|(_, c)| c.outcome.clear()) {
            for (v, conversation) in claim.conversations.iter().enumerate() {
                if conversation.needed() <= conversation.notes.len() {
                    continue;
                }
                let first = conversation.notes.len().saturating_sub(conversation.frozen);
                for part in &conversation.parts[first..] {
                    notes.push(NewNote {
                        contact: claim.target.clone(),
                        body: part.body.clone(),
                        timestamp: part.timestamp,
                    });
                    owners.push((c, v, part.number - 1));
                }
            }
        }
        if notes.is_empty() {
            return Ok(());
        }
        let crm = &self.crm;
        let results = self
            .send_batches(
                notes,
                permit,
                start_by,
                report,
                |batch, permit, deadline| async move {
                    crm.create_notes(&batch, permit, deadline).await
                },
            )
            .await;
        let mut created: Vec<(usize, usize, usize, NoteId)> = Vec::new();
        for ((c, v, i), result) in owners.into_iter().zip(results) {
            let outcome = &mut claims[c].outcome;
            match result {
                Sent::Done(id) => created.push((c, v, i, id)),
                Sent::Rejected(reason) => {
                    outcome.rejected = Some(format!("HubSpot refused a note: {reason}"))
                }
                Sent::Ambiguous => outcome.ambiguous = true,
                Sent::Refused => outcome.refused = true,
            }
        }
        // Parts in order: a part's note is kept only if every earlier part has one.
        created.sort_by_key(|(c, v, i, _)| (*c, *v, *i));
        for (c, v, i, id) in created {
            let conversation = &mut claims[c].conversations[v];
            if conversation.notes.len() == i {
                conversation.notes.push(id);
                conversation.changed = true;
            } else {
                claims[c].outcome.incomplete = true;
            }
        }
        Ok(())
    }
}
