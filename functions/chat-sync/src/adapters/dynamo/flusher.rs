//! The flusher's lease (`FlusherLease`): one item, `FLUSHER`, whose holder writes batches while the others add the
//! contacts they would have flushed to its `wake` set. A flusher that gives the lease up before its last round
//! leaves `next_round_ms` (when its next round would have been due) for the one that takes the lease next, which
//! removes it: the attribute exists only between a handover and the next turn.

use super::codec::flusher::string_set;
use super::codec::{n, s, Item};
use super::keys::flusher_key;
use super::transact::Outcome;
use super::DynamoStore;
use crate::domain::{ContactId, Timestamp};
use crate::ports::{FlusherLease, FlusherTurn, LeaseOwner, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::ReturnValue;
use std::time::Duration;

impl DynamoStore {
    /// An update of the flusher's item: every write of this file is one.
    fn flusher_update(&self) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(flusher_key()))
    }
}

#[async_trait]
impl FlusherLease for DynamoStore {
    async fn acquire_flusher(
        &self,
        owner: &LeaseOwner,
        ttl: Duration,
    ) -> Result<Option<FlusherTurn>, StoreError> {
        let now = Timestamp::now().unix_millis();
        // Taking the lease consumes the handover's due time: it concerns this turn only.
        let update = self
            .flusher_update()
            .update_expression(
                "SET lease_owner = :owner, lease_until_ms = :until REMOVE next_round_ms",
            )
            .condition_expression("attribute_not_exists(lease_until_ms) OR lease_until_ms < :now")
            .expression_attribute_values(":owner", s(owner.as_str()))
            .expression_attribute_values(":until", n(now + ttl.as_millis() as i64))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::UpdatedOld);
        Ok(match self.send_update(update).await? {
            Outcome::Written(old) => Some(FlusherTurn {
                next_round_ms: old
                    .as_ref()
                    .and_then(|item| item.get("next_round_ms"))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok()),
            }),
            Outcome::Refused(_) => None,
        })
    }

    async fn wake_flusher(&self, contact: &ContactId) -> Result<bool, StoreError> {
        let update = self
            .flusher_update()
            .update_expression("ADD wake :contact")
            .condition_expression("lease_until_ms >= :now")
            .expression_attribute_values(":contact", string_set(std::slice::from_ref(contact)))
            .expression_attribute_values(":now", n(Timestamp::now().unix_millis()));
        Ok(self.send_update(update).await?.written())
    }

    async fn renew_flusher(
        &self,
        owner: &LeaseOwner,
        ttl: Duration,
    ) -> Result<Option<Vec<ContactId>>, StoreError> {
        // Renewing even an expired lease is safe: the condition is that nobody took it since.
        let until = Timestamp::now().unix_millis() + ttl.as_millis() as i64;
        let update = self
            .flusher_update()
            .update_expression("SET lease_until_ms = :until")
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":owner", s(owner.as_str()))
            .return_values(ReturnValue::AllNew);
        let item = match self.send_update(update).await? {
            Outcome::Written(item) => item,
            Outcome::Refused(_) => return Ok(None),
        };
        Ok(Some(woken(item.as_ref())))
    }

    async fn clear_wakes(&self, contacts: &[ContactId]) -> Result<(), StoreError> {
        if contacts.is_empty() {
            return Ok(());
        }
        let update = self
            .flusher_update()
            .update_expression("DELETE wake :taken")
            .expression_attribute_values(":taken", string_set(contacts));
        self.send_update(update).await.map(|_| ())
    }

    async fn release_flusher(&self, owner: &LeaseOwner, if_idle: bool) -> Result<bool, StoreError> {
        let condition = if if_idle {
            "lease_owner = :owner AND attribute_not_exists(wake)"
        } else {
            "lease_owner = :owner"
        };
        let update = self
            .flusher_update()
            .update_expression("REMOVE lease_owner, lease_until_ms")
            .condition_expression(condition)
            .expression_attribute_values(":owner", s(owner.as_str()));
        Ok(self.send_update(update).await?.written())
    }

    async fn hand_over_flusher(
        &self,
        owner: &LeaseOwner,
        next_round_ms: i64,
    ) -> Result<Option<Vec<ContactId>>, StoreError> {
        let update = self
            .flusher_update()
            .update_expression("REMOVE lease_owner, lease_until_ms SET next_round_ms = :due")
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":owner", s(owner.as_str()))
            .expression_attribute_values(":due", n(next_round_ms))
            .return_values(ReturnValue::AllOld);
        Ok(match self.send_update(update).await? {
            Outcome::Written(old) => Some(woken(old.as_ref())),
            Outcome::Refused(_) => None,
        })
    }
}

/// The contacts in an item's wake set.
fn woken(item: Option<&Item>) -> Vec<ContactId> {
    item.and_then(|item| item.get("wake"))
        .and_then(|v| v.as_ss().ok())
        .map(|ids| {
            ids.iter()
                .filter_map(|id| ContactId::parse(id).ok())
                .collect()
        })
        .unwrap_or_default()
}
