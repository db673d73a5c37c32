//! The webhook's warm copies of channel mappings. Every delivery needs its channel's mapping (which contact, which
//! visitor, which life of the contact's sync record), and a warm Lambda meets the same few hundred conversations
//! again and again: a copy kept from an earlier delivery saves the read, a request and half a read unit a message.
//!
//! **Invariant: a copy only ever feeds a change that the store gates when it commits.** A mapping never changes
//! once written, except by what the sync record mirrors (see `adapters::dynamo::sync_record::bump_version`):
//!
//! - its clearing (a truncation, a deletion), written on the record in the clearing's own transaction;
//! - the contact's erasure, which marks the record `erasing` and then deletes it; a registration afterwards makes a
//!   new record, with another epoch;
//! - its deletion in HubSpot (`purge_at`), which marks the record `dirty = purging` until a restore.
//!
//! So a copy is kept only when the mapping carries its record's epoch (the record then holds all of the gate; a
//! mapping from before epochs is gated beside itself and read every time) and is not deleted in HubSpot (a copy
//! that says "deleted" would outlive a restore, and drop changes the store would take). A change the gate refuses
//! on a copy is tried once more on the mapping read again, and the copy goes: the copy may be of a mapping erased
//! and registered again since, which the new record refuses. A clearing's copy goes when the webhook records the
//! clearing. Copies also go after their time to live, and there are at most [`CAPACITY`]: what a copy holds (the
//! visitor's id and registered name, which the visitor's lines show) stays in the Lambda's memory no longer than
//! that, and nothing of it is written unless the gate lets the change through. It holds no e-mail: the store reads
//! a mapping without the e-mail stored beside it (`ChannelMapping`).

use crate::domain::ChannelRef;
use crate::ports::ChannelMapping;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Copies kept at most: far more conversations than a desk has live within a copy's life, and a few MB at most.
pub const CAPACITY: usize = 4_096;

/// Channel mappings kept by one warm handler, by the channel's cid.
pub struct MappingCache {
    /// How long a copy is used; zero keeps none.
    ttl: Duration,
    copies: Mutex<HashMap<String, Copy>>,
}

struct Copy {
    mapping: ChannelMapping,
    kept_at: Instant,
}

impl MappingCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            copies: Mutex::new(HashMap::new()),
        }
    }

    /// The copy of `channel`'s mapping, if one is kept and still young enough.
    pub fn get(&self, channel: &ChannelRef) -> Option<ChannelMapping> {
        let copies = self.copies.lock().unwrap_or_else(PoisonError::into_inner);
        copies
            .get(&channel.cid())
            .filter(|copy| copy.kept_at.elapsed() < self.ttl)
            .map(|copy| copy.mapping.clone())
    }

    /// Keeps a copy of `mapping`, as just read from the store, if the store's gate covers it (see the module's
    /// invariant).
    pub fn keep(&self, mapping: &ChannelMapping) {
        if self.ttl.is_zero() || mapping.epoch.is_none() || mapping.purge_at.is_some() {
            return;
        }
        let mut copies = self.copies.lock().unwrap_or_else(PoisonError::into_inner);
        if copies.len() >= CAPACITY {
            copies.retain(|_, copy| copy.kept_at.elapsed() < self.ttl);
        }
        if copies.len() >= CAPACITY {
            // Still full of live copies: the oldest goes (a scan of a few thousand, only when full).
            let oldest = copies
                .iter()
                .min_by_key(|(_, copy)| copy.kept_at)
                .map(|(cid, _)| cid.clone());
            if let Some(cid) = oldest {
                copies.remove(&cid);
            }
        }
        copies.insert(
            mapping.channel.cid(),
            Copy {
                mapping: mapping.clone(),
                kept_at: Instant::now(),
            },
        );
    }

    /// Drops the copy of `channel`'s mapping: the store refused a change made on it, or the mapping changed.
    pub fn forget(&self, channel: &ChannelRef) {
        self.copies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&channel.cid());
    }
}

#[cfg(test)]
mod tests {
    use super::{MappingCache, CAPACITY};
    use crate::domain::{ChannelRef, ContactId, Identity, Timestamp, UserId};
    use crate::ports::{ChannelMapping, RecordEpoch};
    use std::time::Duration;

    fn mapping(channel: &str) -> ChannelMapping {
        let mapping = ChannelMapping::registered(
            ChannelRef::parse_cid(&format!("messaging:{channel}")).expect("cid"),
            ContactId::parse("1001").expect("contact"),
            UserId::parse("visitor_id", "visitor-1").expect("visitor"),
            "Ada".to_owned(),
            Identity::Unverified,
            Timestamp::now(),
        );
        ChannelMapping {
            epoch: Some(RecordEpoch::random()),
            ..mapping
        }
    }

    #[test]
    fn a_copy_is_kept_only_where_the_stores_gate_covers_it() {
        let cache = MappingCache::new(Duration::from_secs(60));
        let gated = mapping("chat-1");
        cache.keep(&gated);
        assert_eq!(cache.get(&gated.channel), Some(gated.clone()));
        cache.forget(&gated.channel);
        assert_eq!(cache.get(&gated.channel), None);

        // From before epochs: gated beside the mapping itself, so read every time.
        let legacy = ChannelMapping {
            epoch: None,
            ..mapping("chat-2")
        };
        cache.keep(&legacy);
        assert_eq!(cache.get(&legacy.channel), None);
        // Deleted in HubSpot: a copy would outlive a restore.
        let deleted = ChannelMapping {
            purge_at: Some(Timestamp::now()),
            ..mapping("chat-3")
        };
        cache.keep(&deleted);
        assert_eq!(cache.get(&deleted.channel), None);
    }

    #[test]
    fn copies_end_with_their_time_to_live_and_none_are_kept_at_zero() {
        let off = MappingCache::new(Duration::ZERO);
        let one = mapping("chat-1");
        off.keep(&one);
        assert_eq!(off.get(&one.channel), None);

        let short = MappingCache::new(Duration::from_millis(30));
        short.keep(&one);
        assert!(short.get(&one.channel).is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(short.get(&one.channel), None);
    }

    #[test]
    fn a_full_cache_makes_room_by_dropping_its_oldest_copy() {
        let cache = MappingCache::new(Duration::from_secs(60));
        let first = mapping("chat-0");
        cache.keep(&first);
        for i in 1..CAPACITY {
            cache.keep(&mapping(&format!("chat-{i}")));
        }
        assert!(cache.get(&first.channel).is_some());
        let newest = mapping("chat-new");
        cache.keep(&newest);
        assert_eq!(cache.get(&first.channel), None, "the oldest copy goes");
        assert!(cache.get(&newest.channel).is_some());
        assert!(cache.get(&mapping("chat-1").channel).is_some());
    }
}
