//! A message (`CONTACT#<contact>` / `MSG#<created_at>#<message id>`): its newest version, written whole by every
//! change (see `MessageVersion`), erased in place.
//!
//! The item stores nothing twice and nothing empty: its creation time and id are read from its sort key, a flag
//! is written only when true (an absent one reads false, here and in DynamoDB's conditions) and an empty
//! attachment list not at all. The flusher reads every message of a contact at each flush, and a query is billed
//! by the bytes it reads, so every byte of the item is paid again at every flush. (Items written before this
//! still carry `message_id`, `created_at` and false flags: they read the same.)

use super::super::corrupt;
use super::super::keys::{contact_pk, key, message_sk, parse_message_sk};
use super::super::schema;
use super::{get_bool, get_s, s, Item};
use crate::domain::{
    ContactId, MessageChange, MessageKind, MessageVersion, Role, StoredMessage, Timestamp,
};
use crate::ports::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;

/// Every attribute the item can hold: what `encode` writes, then an erasure (`erased`) and retention or a deletion
/// in HubSpot (the TTL).
#[cfg(test)]
pub(in super::super) const ATTRIBUTES: &[&str] = &[
    "cid",
    "author_id",
    "author_name",
    "role",
    "body",
    "attachments",
    "updated_at",
    "edited",
    "deleted",
    "restored",
    "removed",
    "notes_only",
    "erased",
    super::super::schema::TTL_ATTRIBUTE,
];

/// The item a change writes. `notes_only`: its conversation's lines go to the timeline notes only, so the
/// property's reader (`recent_transcript`) reads past it and its count of lines leaves it out.
pub(in super::super) fn encode(
    contact: &ContactId,
    change: &MessageChange,
    role: &Role,
    notes_only: bool,
) -> Item {
    let removed = change.kind == MessageKind::Removed;
    let deleted = change.kind.deleted();
    let mut item = key(
        contact_pk(contact),
        &message_sk(&change.created_at, &change.message_id),
    );
    item.extend([
        ("cid".to_owned(), s(change.channel.cid())),
        ("author_id".to_owned(), s(&change.author.id)),
        ("author_name".to_owned(), s(&change.author.name)),
        ("role".to_owned(), s(role.as_str())),
        // Deleting erases the text (privacy) but keeps the line's place.
        (
            "body".to_owned(),
            s(if deleted { "" } else { change.text.as_str() }),
        ),
        ("updated_at".to_owned(), s(change.updated_at.key())),
    ]);
    if !deleted && !change.attachments.is_empty() {
        let attachments = change.attachments.iter().map(s).collect();
        item.insert("attachments".to_owned(), AttributeValue::L(attachments));
    }
    let flags = [
        ("edited", change.edited),
        ("deleted", deleted),
        ("restored", change.kind == MessageKind::Undeleted),
        ("removed", removed),
    ];
    for (flag, set) in flags {
        if set {
            item.insert(flag.to_owned(), AttributeValue::Bool(true));
        }
    }
    if notes_only {
        item.insert("notes_only".to_owned(), AttributeValue::Bool(true));
    }
    item
}

pub(in super::super) fn decode(item: &Item) -> Result<StoredMessage, StoreError> {
    let attachments = item
        .get("attachments")
        .and_then(|v| v.as_l().ok())
        .map(|list| list.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
        .unwrap_or_default();
    let sk = get_s(item, schema::SORT_KEY)?;
    let (created_at, message_id) = parse_message_sk(sk)
        .ok_or_else(|| corrupt(format!("{sk:?} is not a message's sort key")))?;
    Ok(StoredMessage {
        message_id,
        cid: get_s(item, "cid")?.to_owned(),
        author_name: get_s(item, "author_name")?.to_owned(),
        role: Role::parse(get_s(item, "role")?),
        text: get_s(item, "body")?.to_owned(),
        attachments,
        created_at,
        edited: get_bool(item, "edited"),
        deleted: get_bool(item, "deleted"),
        restored: get_bool(item, "restored"),
        removed: get_bool(item, "removed"),
    })
}

/// The version a stored message item holds (see `MessageVersion`).
pub(in super::super) fn stored_version(item: &Item) -> MessageVersion {
    MessageVersion {
        updated_at: item
            .get("updated_at")
            .and_then(|v| v.as_s().ok())
            .and_then(|raw| Timestamp::parse("updated_at", raw).ok()),
        deleted: get_bool(item, "deleted"),
        erased: get_bool(item, "erased"),
        removed: get_bool(item, "removed"),
    }
}

/// A change of every kind of attribute: shown, with an attachment, edited.
#[cfg(test)]
pub(in super::super) fn sample_change() -> MessageChange {
    use super::sample;
    MessageChange {
        kind: MessageKind::Updated,
        channel: sample::channel(),
        message_id: crate::domain::MessageId::parse("msg-1").expect("message id"),
        author: crate::domain::Author {
            id: sample::visitor().as_str().to_owned(),
            name: "Ada Lovelace".to_owned(),
            role: "user".to_owned(),
        },
        text: "Hello!".to_owned(),
        attachments: vec!["https://cdn.example.com/invoice.pdf".to_owned()],
        created_at: sample::at(),
        updated_at: sample::at(),
        edited: true,
    }
}

#[cfg(test)]
pub(in super::super) fn documented() -> super::Documented {
    use super::sample;
    let change = sample_change();
    let mut placeholders = sample::contact_placeholders();
    placeholders.push(("<created_at>", change.created_at.key()));
    placeholders.push(("<message id>", change.message_id.as_str().to_owned()));
    super::Documented {
        item: "message",
        keys: vec![(
            contact_pk(&sample::contact()),
            message_sk(&change.created_at, &change.message_id),
        )],
        placeholders,
        attributes: ATTRIBUTES,
        written: Some(encode(&sample::contact(), &change, &Role::Visitor, true)),
    }
}
