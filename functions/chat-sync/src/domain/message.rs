//! Chat messages as the transcript sees them.

use super::{ChannelRef, Invalid, MessageId};
use std::fmt;
use time::{
    format_description::well_known::Rfc3339, macros::format_description, OffsetDateTime, UtcOffset,
};

/// A UTC instant with microsecond precision. Its `key()` form has a fixed width, so it sorts as text
/// (DynamoDB sort keys) in time order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    pub fn from_datetime(value: OffsetDateTime) -> Self {
        let utc = value.to_offset(UtcOffset::UTC);
        let micros = utc.microsecond();
        Self(utc.replace_nanosecond(micros * 1_000).unwrap_or(utc))
    }

    pub fn from_unix_seconds(seconds: i64) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp(seconds)
            .ok()
            .map(Self::from_datetime)
    }

    pub fn parse(field: &'static str, raw: &str) -> Result<Self, Invalid> {
        OffsetDateTime::parse(raw, &Rfc3339)
            .map(Self::from_datetime)
            .map_err(|_| Invalid::new(field, "must be an RFC 3339 timestamp"))
    }

    /// `2026-11-24T10:00:05.123000Z`: fixed width, sorts lexicographically.
    pub fn key(&self) -> String {
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        );
        self.0.format(&format).unwrap_or_default()
    }

    /// `2026-11-24 10:00:05 UTC`, the transcript's form.
    pub fn human(&self) -> String {
        let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
        self.0.format(&format).unwrap_or_default()
    }

    /// Reads back the transcript's form ([`Timestamp::human`]): whole seconds.
    pub fn parse_human(raw: &str) -> Option<Self> {
        let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
        time::PrimitiveDateTime::parse(raw, &format)
            .ok()
            .map(|at| Self::from_datetime(at.assume_utc()))
    }

    /// RFC 3339 with seconds precision, for API responses.
    pub fn rfc3339(&self) -> String {
        let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
        self.0.format(&format).unwrap_or_default()
    }

    pub fn unix_seconds(&self) -> i64 {
        self.0.unix_timestamp()
    }

    /// This instant, `by` earlier (saturating at the earliest representable time).
    pub fn earlier_by(&self, by: std::time::Duration) -> Self {
        Self(
            self.0
                .checked_sub(time::Duration::try_from(by).unwrap_or(time::Duration::ZERO))
                .unwrap_or(self.0),
        )
    }

    /// This instant, `by` later (saturating at the latest representable time).
    pub fn later_by(&self, by: std::time::Duration) -> Self {
        Self(
            self.0
                .checked_add(time::Duration::try_from(by).unwrap_or(time::Duration::ZERO))
                .unwrap_or(self.0),
        )
    }

    pub fn unix_millis(&self) -> i64 {
        (self.0.unix_timestamp_nanos() / 1_000_000) as i64
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// Who wrote a line, as the transcript says it: the channel's registered visitor, one of the configured support
/// agents, or anyone else under their Stream role (never silently passed off as an agent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Visitor,
    Agent,
    /// A Stream role such as `moderator` or `user` (letters, digits, `_` and `-`; anything else reads `member`).
    Other(String),
}

impl Role {
    pub fn as_str(&self) -> &str {
        match self {
            Role::Visitor => "visitor",
            Role::Agent => "agent",
            Role::Other(role) => role,
        }
    }

    pub fn parse(raw: &str) -> Self {
        match raw {
            "visitor" => Role::Visitor,
            "agent" => Role::Agent,
            other => Role::other(other),
        }
    }

    /// Someone who is neither the visitor nor a configured agent, by the role Stream gave them.
    pub fn other(stream_role: &str) -> Self {
        let valid = !stream_role.is_empty()
            && stream_role.len() <= 32
            && stream_role
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        Role::Other(
            if valid && stream_role != "visitor" && stream_role != "agent" {
                stream_role.to_ascii_lowercase()
            } else {
                "member".to_owned()
            },
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// Stream user id as sent (not trusted for anything but comparing with the channel's visitor and the agents).
    pub id: String,
    pub name: String,
    /// The role Stream reports for the user (`user` if it says none).
    pub role: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    New,
    Updated,
    /// Soft-deleted: Stream shows "message deleted" in its place.
    Deleted,
    /// Shown again after a soft deletion (`POST /messages/{id}/undelete`, `message.undeleted`).
    Undeleted,
    /// Hard-deleted: gone from Stream, so its line goes too.
    Removed,
}

impl MessageKind {
    /// Whether a message in this state shows "message deleted" (or nothing) instead of its text.
    pub fn deleted(self) -> bool {
        matches!(self, MessageKind::Deleted | MessageKind::Removed)
    }
}

/// Where one state of a message stands in its history, so that any delivery order of its changes ends in the
/// newest state. The rule, in order:
/// 1. a hard delete (`removed`) is final: nothing replaces it, and it replaces anything else;
/// 2. an erasure of the author's messages (`erased`: Stream's user deletion) is final for the text: only a hard
///    delete replaces it;
/// 3. otherwise the newer `updated_at` wins, and at the same `updated_at` a deleted state beats a shown one (a
///    deletion and an edit stamped in the same instant must not bring the text back).
///
/// Shown → edited → soft-deleted → shown again (undeleted) → … is therefore ordered by `updated_at` alone, and a
/// duplicate (same state, same `updated_at`) never supersedes itself. The store's conditional write encodes the same
/// rule (`adapters::dynamo`); this is its one statement in code, used there to decide a write that lost a race.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageVersion {
    /// `None` for an item written before versions were kept: older than any change.
    pub updated_at: Option<Timestamp>,
    pub deleted: bool,
    pub erased: bool,
    pub removed: bool,
}

impl MessageVersion {
    /// The version a change would store.
    pub fn of(change: &MessageChange) -> Self {
        Self {
            updated_at: Some(change.updated_at),
            deleted: change.kind.deleted(),
            erased: false,
            removed: change.kind == MessageKind::Removed,
        }
    }

    /// Whether a message in this state replaces one stored in `stored`.
    pub fn supersedes(&self, stored: &MessageVersion) -> bool {
        if stored.removed {
            return false;
        }
        if self.removed {
            return true;
        }
        if stored.erased {
            return false;
        }
        (self.updated_at, self.deleted) > (stored.updated_at, stored.deleted)
    }
}

/// One accepted webhook's worth of change to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageChange {
    pub kind: MessageKind,
    pub channel: ChannelRef,
    pub message_id: MessageId,
    pub author: Author,
    pub text: String,
    pub attachments: Vec<String>,
    pub created_at: Timestamp,
    /// Version of this state of the message: `updated_at` (or `deleted_at`). Newer wins.
    pub updated_at: Timestamp,
    pub edited: bool,
}

/// A message as stored and rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub message_id: MessageId,
    pub cid: String,
    pub author_name: String,
    pub role: Role,
    pub text: String,
    pub attachments: Vec<String>,
    pub created_at: Timestamp,
    pub edited: bool,
    pub deleted: bool,
    /// Shown again after a soft deletion: like an edit, its line may differ from one HubSpot holds (see `archive`).
    pub restored: bool,
    /// Hard-deleted: it has no line. Kept so that no late delivery brings it back, and so that an archived copy of
    /// its line (see `archive`) is dropped too.
    pub removed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(second: i64, deleted: bool, erased: bool, removed: bool) -> MessageVersion {
        MessageVersion {
            updated_at: Timestamp::from_unix_seconds(1_795_687_200 + second),
            deleted,
            erased,
            removed,
        }
    }

    #[test]
    fn the_newest_state_wins_deletion_first_at_a_tie_hard_deletion_for_good() {
        let shown = |s| version(s, false, false, false);
        let deleted = |s| version(s, true, false, false);
        let removed = |s| version(s, true, false, true);
        // Newer wins, in either direction: an edit over an older one, a deletion, an undeletion after it.
        assert!(shown(2).supersedes(&shown(1)));
        assert!(deleted(3).supersedes(&shown(2)));
        assert!(shown(4).supersedes(&deleted(3)));
        assert!(!shown(1).supersedes(&shown(2)));
        assert!(
            !shown(2).supersedes(&deleted(3)),
            "an older edit stays lost"
        );
        // A tie: the deletion wins, and a duplicate supersedes nothing.
        assert!(deleted(2).supersedes(&shown(2)));
        assert!(!shown(2).supersedes(&deleted(2)));
        assert!(!shown(2).supersedes(&shown(2)));
        assert!(!deleted(2).supersedes(&deleted(2)));
        // A hard delete replaces anything, whatever its time, and nothing replaces it.
        assert!(removed(1).supersedes(&shown(9)));
        assert!(!shown(9).supersedes(&removed(1)));
        assert!(!removed(9).supersedes(&removed(1)));
        // An erasure is final for the text: only a hard delete changes it.
        let erased = version(1, true, true, false);
        assert!(!shown(9).supersedes(&erased));
        assert!(!deleted(9).supersedes(&erased));
        assert!(removed(0).supersedes(&erased));
        // An item from before versions were kept is older than any change.
        let unversioned = MessageVersion {
            updated_at: None,
            ..shown(0)
        };
        assert!(shown(0).supersedes(&unversioned));
    }

    #[test]
    fn timestamps_normalise_to_sortable_keys() {
        let a = Timestamp::parse("t", "2026-11-24T10:00:00.123Z").expect("valid");
        let b = Timestamp::parse("t", "2026-11-24T11:00:00.000000001+01:00").expect("valid");
        assert_eq!(a.key(), "2026-11-24T10:00:00.123000Z");
        assert_eq!(b.key(), "2026-11-24T10:00:00.000000Z");
        assert!(b.key() < a.key());
        assert_eq!(a.human(), "2026-11-24 10:00:00 UTC");
        assert_eq!(
            Timestamp::parse_human(&a.human()).map(|t| t.key()),
            Some("2026-11-24T10:00:00.000000Z".to_owned())
        );
        assert_eq!(Timestamp::parse_human("2026-11-24 10:00:00"), None);
        assert!(Timestamp::parse("t", "yesterday").is_err());
    }
}
