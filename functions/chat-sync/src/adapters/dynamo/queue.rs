//! The sync queue (`SyncQueue`): the sparse index `dirty-contacts`, sharded, with the parked contacts in a
//! partition of their own; and the notes' queue, the sparse index `notes-due`, in one partition.

use super::codec::{get_s, s};
use super::keys::shard;
use super::lease::LEASE_ATTRIBUTES;
use super::{corrupt, schema, DynamoStore};
use crate::domain::{ContactId, Timestamp};
use crate::ports::{BacklogEntry, BacklogHealth, LeaseOwner, StoreError, SyncQueue, SyncRecords};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Select};

impl DynamoStore {
    /// A query of one partition of the queue index: a shard of the contacts behind, or the parked ones.
    fn queue_query(&self, partition: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(schema::DIRTY_INDEX)
            .key_condition_expression("#queue = :queue")
            .expression_attribute_names("#queue", schema::DIRTY_INDEX_PARTITION_KEY)
            .expression_attribute_values(":queue", s(partition))
    }

    /// The first `limit` entries of one of the sparse contact indexes (the queue, the notes' queue, the idle
    /// index), in order: each one's sort key as stored, and its contact.
    pub(super) async fn index_entries(
        &self,
        query: QueryFluentBuilder,
        sort_key: &str,
        limit: usize,
    ) -> Result<Vec<(String, ContactId)>, StoreError> {
        let output = self
            .query_page(query.limit(limit.clamp(1, 1000) as i32))
            .await?;
        output
            .items()
            .iter()
            .map(|item| {
                let since = get_s(item, sort_key)?.to_owned();
                let contact = ContactId::parse(get_s(item, "contact_id")?).map_err(corrupt)?;
                Ok((since, contact))
            })
            .collect()
    }

    async fn query_shard(
        &self,
        partition: &str,
        limit: usize,
    ) -> Result<Vec<(String, ContactId)>, StoreError> {
        self.index_entries(
            self.queue_query(partition),
            schema::DIRTY_INDEX_SORT_KEY,
            limit,
        )
        .await
    }

    /// The notes' queue: its one partition.
    fn notes_query(&self) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(schema::NOTES_INDEX)
            .key_condition_expression("#notes = :waiting")
            .expression_attribute_names("#notes", schema::NOTES_INDEX_PARTITION_KEY)
            .expression_attribute_values(":waiting", s(schema::NOTES_WAITING))
    }

    /// How many entries a query of one partition of an index finds (a partition of the queue, the notes' queue):
    /// a `COUNT` query (reads the index entries, returns no items), followed page by page so a long backlog is
    /// counted whole.
    async fn count_entries(&self, query: QueryFluentBuilder) -> Result<usize, StoreError> {
        let mut count = 0;
        let mut start = None;
        loop {
            let output = self
                .query_page(
                    query
                        .clone()
                        .select(Select::Count)
                        .set_exclusive_start_key(start),
                )
                .await?;
            count += usize::try_from(output.count()).unwrap_or_default();
            match output.last_evaluated_key() {
                Some(last) => start = Some(last.clone()),
                None => return Ok(count),
            }
        }
    }

    /// Every shard's oldest entries, merged oldest first.
    async fn queued(&self, limit: usize) -> Result<Vec<(String, ContactId)>, StoreError> {
        let shards = (0..schema::DIRTY_SHARDS).map(|shard| shard.to_string());
        let pages = futures::future::try_join_all(
            shards.map(|p| async move { self.query_shard(&p, limit).await }),
        )
        .await?;
        let mut all: Vec<(String, ContactId)> = pages.into_iter().flatten().collect();
        all.sort();
        all.truncate(limit);
        Ok(all)
    }
}

#[async_trait]
impl SyncQueue for DynamoStore {
    async fn notes_due(
        &self,
        since: Timestamp,
        limit: usize,
    ) -> Result<Vec<(Timestamp, ContactId)>, StoreError> {
        let query = self
            .notes_query()
            .key_condition_expression("#notes = :waiting AND #since <= :since")
            .expression_attribute_names("#since", schema::NOTES_INDEX_SORT_KEY)
            .expression_attribute_values(":since", s(since.key()));
        self.index_entries(query, schema::NOTES_INDEX_SORT_KEY, limit)
            .await?
            .into_iter()
            .map(|(since, contact)| {
                let since = Timestamp::parse("notes_since", &since).map_err(corrupt)?;
                Ok((since, contact))
            })
            .collect()
    }

    async fn postpone_notes(
        &self,
        contact: &ContactId,
        since: Timestamp,
        quiet_since: Timestamp,
        oldest_since: Timestamp,
    ) -> Result<bool, StoreError> {
        // One conditional write, no read: the wait's new start is the record's own `changed_at`, copied in the
        // update. The index entry moves (its sort key changes), and the contact is not found due again before
        // that change has waited. The oldest change is kept once, the first time the wait moves.
        let update = self
            .sync_update(contact)
            .update_expression("SET #since = changed_at, #oldest = if_not_exists(#oldest, :since)")
            .condition_expression(
                "#notes = :waiting AND #since = :since AND changed_at > :quiet \
                 AND NOT notes_now = :true \
                 AND ((attribute_not_exists(#oldest) AND #since > :oldest) OR #oldest > :oldest)",
            )
            .expression_attribute_names("#notes", schema::NOTES_INDEX_PARTITION_KEY)
            .expression_attribute_names("#since", schema::NOTES_INDEX_SORT_KEY)
            .expression_attribute_names("#oldest", schema::NOTES_OLDEST)
            .expression_attribute_values(":waiting", s(schema::NOTES_WAITING))
            .expression_attribute_values(":since", s(since.key()))
            .expression_attribute_values(":quiet", s(quiet_since.key()))
            .expression_attribute_values(":oldest", s(oldest_since.key()))
            .expression_attribute_values(":true", AttributeValue::Bool(true));
        Ok(self.send_update(update).await?.written())
    }

    async fn dirty_contacts(&self, limit: usize) -> Result<Vec<ContactId>, StoreError> {
        Ok(self
            .queued(limit)
            .await?
            .into_iter()
            .map(|(_, contact)| contact)
            .collect())
    }

    async fn park_contact(
        &self,
        contact: &ContactId,
        owner: &LeaseOwner,
        reason: &str,
    ) -> Result<(), StoreError> {
        // Parked in the same write as the lease goes: nobody writes the contact again until an operator re-queues
        // it, so it leaves the notes' queue too (its notes stay pending, for the first notes round after it is
        // re-queued). Refused: our lease expired (whoever holds it now decides; the contact is still queued), or
        // the contact was erased meanwhile (nothing to park).
        let update = self
            .lease_update(contact, owner)
            .update_expression(format!(
                "SET dirty = :parked, dirty_since = :now, parked_reason = :why REMOVE {}, {LEASE_ATTRIBUTES}",
                schema::NOTES_INDEX_PARTITION_KEY
            ))
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":parked", s(schema::PARKED))
            .expression_attribute_values(":now", s(Timestamp::now().key()))
            .expression_attribute_values(":why", s(reason.chars().take(500).collect::<String>()));
        self.send_update(update).await.map(|_| ())
    }

    async fn requeue(&self, contact: &ContactId) -> Result<bool, StoreError> {
        self.update_sync(
            contact,
            "SET dirty = :shard, dirty_since = :now REMOVE parked_reason",
            &[
                (":shard", s(shard(contact))),
                (":now", s(Timestamp::now().key())),
            ],
        )
        .await
    }

    async fn backlog(&self, limit: usize) -> Result<Vec<BacklogEntry>, StoreError> {
        let since = |raw: &str| Timestamp::parse("dirty_since", raw).map_err(corrupt);
        let mut entries = Vec::new();
        for (at, contact) in self.queued(limit).await? {
            entries.push(BacklogEntry {
                contact,
                since: since(&at)?,
                parked: None,
            });
        }
        // The index projects only the contact id: the reason comes from each parked contact's sync record.
        for (at, contact) in self.query_shard(schema::PARKED, limit).await? {
            let reason = self
                .sync_state(&contact)
                .await?
                .parked
                .unwrap_or_else(|| "unknown".to_owned());
            entries.push(BacklogEntry {
                contact,
                since: since(&at)?,
                parked: Some(reason),
            });
        }
        Ok(entries)
    }

    async fn backlog_health(&self) -> Result<BacklogHealth, StoreError> {
        let queries = (0..schema::DIRTY_SHARDS)
            .map(|shard| self.queue_query(&shard.to_string()))
            .chain([self.queue_query(schema::PARKED), self.notes_query()]);
        let mut counts =
            futures::future::try_join_all(queries.map(|query| self.count_entries(query))).await?;
        let notes_waiting = counts.pop().unwrap_or_default();
        let parked = counts.pop().unwrap_or_default();
        let oldest_behind_since = match self.queued(1).await?.first() {
            Some((at, _)) => Some(Timestamp::parse("dirty_since", at).map_err(corrupt)?),
            None => None,
        };
        Ok(BacklogHealth {
            behind: counts.iter().sum(),
            parked,
            notes_waiting,
            oldest_behind_since,
        })
    }
}
