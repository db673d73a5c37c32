//! Contact leases (`Leases`): one writer per contact, held on the contact's sync record itself (`lease_owner`,
//! `lease_until_ms` on `CONTACT#<contact>` / `SYNC`).
//!
//! Why on the sync record and not an item of its own: every lease operation is then one single-item conditional
//! write, and the two the flusher makes for each contact it claims do double duty.
//! - **Taking the lease reads the version.** The conditional update returns the record as it wrote it. DynamoDB
//!   isolates a standard write (`PutItem`, `UpdateItem`, `DeleteItem`) from every transaction serializably (the
//!   developer guide, "Isolation levels for DynamoDB transactions"), so the update is ordered after each change
//!   whose version bump it sees, and every message item of those changes is committed before the reads that
//!   follow it: what the transactional read it replaces promised.
//! - **Releasing marks the contact synced.** "Release only if no change arrived since the version written" is one
//!   condition on one item (`lease_owner` and `change_version`), not a transaction over two items: half the write
//!   units and one request.
//!
//! A lease exists only on a contact that has a sync record (one with changes): nothing else is ever written.
//! Erasure deletes the record, lease included, only once no writer holds it (see `erasure`), so fencing still holds.

use super::codec::{get_s, n, s, sync_record, Item};
use super::keys::shard;
use super::transact::Outcome;
use super::{schema, DynamoStore};
use crate::domain::{ContactId, Timestamp};
use crate::ports::{LeaseOwner, Leases, NotesAt, Release, StoreError, SyncState};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use std::time::Duration;

use super::schema::{IDLE_INDEX_PARTITION_KEY as IDLE, IDLE_INDEX_SORT_KEY as IDLE_SINCE};
use super::schema::{
    NOTES_INDEX_PARTITION_KEY as NOTES, NOTES_INDEX_SORT_KEY as NOTES_SINCE, NOTES_OLDEST,
};

/// The lease's attributes, removed together when it is given back.
pub(super) const LEASE_ATTRIBUTES: &str = "lease_owner, lease_until_ms";

impl DynamoStore {
    /// An update of the contact's sync record, with our lease owner bound to `:owner`, that returns the record as it
    /// was when refused: every single-item write that needs the lease (here, and parking in `queue`) is one of
    /// these, conditional on `lease_owner`, sent with `send_update`. (Archiving in `retention` writes a second item
    /// with it, in a transaction under the same condition.)
    pub(super) fn lease_update(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
    ) -> UpdateItemFluentBuilder {
        self.sync_update(contact)
            .expression_attribute_values(":owner", s(owner.as_str()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
    }
}

/// Whether a refused release found our lease still ours (so the version changed) or not.
fn still_ours(item: Option<&Item>, owner: &LeaseOwner) -> bool {
    item.and_then(|item| get_s(item, "lease_owner").ok())
        .is_some_and(|held| held == owner.as_str())
}

#[async_trait]
impl Leases for DynamoStore {
    async fn acquire_lease(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        ttl: Duration,
    ) -> Result<Option<SyncState>, StoreError> {
        let now = Timestamp::now().unix_millis();
        let until = now + ttl.as_millis() as i64;
        // Only a record that exists (a contact with changes) and that no erasure is taking: nothing is created.
        let update = self
            .lease_update(contact, owner)
            .update_expression("SET lease_owner = :owner, lease_until_ms = :until")
            .condition_expression(
                "attribute_exists(#pk) AND attribute_not_exists(erasing) \
                 AND (attribute_not_exists(lease_until_ms) OR lease_until_ms < :now)",
            )
            .expression_attribute_names("#pk", schema::PARTITION_KEY)
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllNew);
        match self.send_update(update).await? {
            Outcome::Written(Some(item)) => self
                .with_frozen(contact, sync_record::decode(&item)?)
                .await
                .map(Some),
            Outcome::Written(None) => Err(StoreError::Unavailable(
                "a lease was taken but the sync record did not come back".into(),
            )),
            Outcome::Refused(_) => Ok(None),
        }
    }

    async fn renew_lease(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let until = Timestamp::now().unix_millis() + ttl.as_millis() as i64;
        let update = self
            .lease_update(contact, owner)
            .update_expression("SET lease_until_ms = :until")
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":until", n(until));
        Ok(self.send_update(update).await?.written())
    }

    async fn release_if_current(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        version: u64,
        notes: NotesAt,
    ) -> Result<Release, StoreError> {
        // One conditional write: the lease goes only together with marking the version synced, and only if no change
        // arrived since it. A change that lands first makes the condition fail, so its writer (who could not get the
        // lease) is never stranded. In sync: on the idle index from its first sync on (see `retention`). Only joining
        // it writes the index; a contact already there keeps its entry, so a busy contact's syncs cost no index write.
        // Notes that wait keep what says which and since when, and the contact joins the notes' queue (setting its
        // partition key again is no index write); written, the contact leaves it.
        let (set_notes, remove_notes) = match notes {
            NotesAt::Written => (
                String::new(),
                format!("pending_notes, {NOTES}, {NOTES_SINCE}, {NOTES_OLDEST}, notes_now, "),
            ),
            NotesAt::Waiting => (
                format!(", {NOTES} = :waiting, {NOTES_SINCE} = if_not_exists({NOTES_SINCE}, :now)"),
                String::new(),
            ),
        };
        let mut update = self
            .lease_update(contact, owner)
            .update_expression(format!(
                "SET synced_version = :version, {IDLE} = if_not_exists({IDLE}, :shard), \
                 {IDLE_SINCE} = if_not_exists({IDLE_SINCE}, :now){set_notes} \
                 REMOVE {remove_notes}dirty, dirty_since, {LEASE_ATTRIBUTES}"
            ))
            .condition_expression("lease_owner = :owner AND change_version = :version")
            .expression_attribute_values(":version", n(version))
            .expression_attribute_values(":shard", s(shard(contact)))
            .expression_attribute_values(":now", s(Timestamp::now().key()));
        if notes == NotesAt::Waiting {
            update = update.expression_attribute_values(":waiting", s(schema::NOTES_WAITING));
        }
        Ok(match self.send_update(update).await? {
            Outcome::Written(_) => Release::Released,
            Outcome::Refused(item) if still_ours(item.as_ref(), owner) => Release::Changed,
            Outcome::Refused(_) => Release::Lost,
        })
    }

    async fn release_lease(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
    ) -> Result<(), StoreError> {
        let update = self
            .lease_update(contact, owner)
            .update_expression(format!("REMOVE {LEASE_ATTRIBUTES}"))
            .condition_expression("lease_owner = :owner");
        self.send_update(update).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_release_is_ours_only_with_our_owner_on_the_record() {
        let owner = LeaseOwner::random();
        let mut item = Item::new();
        assert!(!still_ours(None, &owner));
        assert!(!still_ours(Some(&item), &owner));
        item.insert("lease_owner".into(), s("someone-else"));
        assert!(!still_ours(Some(&item), &owner));
        item.insert("lease_owner".into(), s(owner.as_str()));
        assert!(still_ours(Some(&item), &owner));
    }
}
