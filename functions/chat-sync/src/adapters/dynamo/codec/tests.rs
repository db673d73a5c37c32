//! The item table in `docs/storage.md` against the code: every row's keys are what `keys` builds, its attributes
//! are what the item's codec lists (and, for an item written whole, what `encode` writes), and every item type of
//! the code has its row. Then each codec's `decode` reads back what its `encode` wrote.

use super::super::schema;
use super::{alias, channel, conversation, documented, message, sample, visitor_channel};
use crate::domain::Role;
use std::collections::{BTreeMap, BTreeSet};

const STORAGE_MD: &str = include_str!("../../../../../../docs/storage.md");

/// One row of the table: the `pk` and `sk` patterns (a cell may hold several, comma-separated) and the attributes.
struct Row {
    pks: Vec<String>,
    sks: Vec<String>,
    attributes: BTreeSet<String>,
}

/// The backticked words of a cell, leaving out what parentheses explain.
fn words(cell: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut depth = 0;
    for c in cell.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    plain
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn table() -> BTreeMap<String, Row> {
    let section = STORAGE_MD
        .split("## Items")
        .nth(1)
        .expect("docs/storage.md has an `## Items` section");
    section
        .lines()
        .skip_while(|line| !line.starts_with("| item |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
            assert_eq!(cells.len(), 4, "a row of four cells: {line}");
            let attributes = words(cells[3])
                .into_iter()
                // `first_at:<cid>`: one attribute per conversation, named by the codec by its prefix.
                .map(|name| name.replace("<cid>", ""))
                .collect();
            let row = Row {
                pks: words(cells[1]),
                sks: words(cells[2]),
                attributes,
            };
            (cells[0].trim().to_owned(), row)
        })
        .collect()
}

fn fill(pattern: &str, placeholders: &[(&str, String)]) -> String {
    placeholders
        .iter()
        .fold(pattern.to_owned(), |filled, (placeholder, value)| {
            filled.replace(placeholder, value)
        })
}

#[test]
fn the_documented_item_table_is_what_the_keys_and_codecs_write() {
    let mut table = table();
    for item in documented() {
        let row = table
            .remove(item.item)
            .unwrap_or_else(|| panic!("docs/storage.md has no row `{}`", item.item));
        let filled = |patterns: &[String]| -> BTreeSet<String> {
            patterns
                .iter()
                .map(|pattern| fill(pattern, &item.placeholders))
                .collect()
        };
        let built = |pick: fn(&(String, String)) -> &String| -> BTreeSet<String> {
            item.keys.iter().map(|key| pick(key).clone()).collect()
        };
        assert_eq!(filled(&row.pks), built(|k| &k.0), "{}: pk", item.item);
        assert_eq!(filled(&row.sks), built(|k| &k.1), "{}: sk", item.item);
        let listed: BTreeSet<String> = item.attributes.iter().map(|a| (*a).to_owned()).collect();
        assert_eq!(row.attributes, listed, "{}: attributes", item.item);
        if let Some(written) = &item.written {
            let key = (
                written[schema::PARTITION_KEY]
                    .as_s()
                    .expect("pk")
                    .to_owned(),
                written[schema::SORT_KEY].as_s().expect("sk").to_owned(),
            );
            assert!(item.keys.contains(&key), "{}: encoded key", item.item);
            let unlisted: Vec<&String> = written
                .keys()
                .filter(|name| *name != schema::PARTITION_KEY && *name != schema::SORT_KEY)
                .filter(|name| !listed.contains(*name))
                .collect();
            assert!(
                unlisted.is_empty(),
                "{}: encode writes attributes the table does not list: {unlisted:?}",
                item.item
            );
        }
    }
    assert!(
        table.is_empty(),
        "docs/storage.md documents item types no codec has: {:?}",
        table.keys().collect::<Vec<_>>()
    );
}

#[test]
fn every_documented_item_is_named_by_its_keys() {
    for item in documented() {
        for (pk, sk) in &item.keys {
            assert_eq!(
                super::super::keys::item_kind(pk, sk),
                item.item,
                "{pk} / {sk}"
            );
        }
    }
    assert_eq!(super::super::keys::item_kind("ELSEWHERE", "X"), "other");
}

#[test]
fn every_codec_reads_back_what_it_writes() {
    let mapping = sample::mapping();
    assert_eq!(
        channel::decode(&channel::encode(&mapping, &sample::email())).expect("mapping"),
        mapping
    );
    let conversation = conversation::decode(&conversation::encode(&mapping)).expect("conversation");
    assert_eq!(
        (
            conversation.cid.as_str(),
            conversation.channel_id.as_str(),
            conversation.started_at,
            conversation.identity,
            conversation.cleared,
        ),
        (
            sample::CID,
            mapping.channel.channel_id.as_str(),
            mapping.created_at,
            mapping.identity,
            None
        )
    );
    assert_eq!(
        visitor_channel::decode(&visitor_channel::encode(
            &sample::visitor(),
            &sample::contact(),
            sample::CID
        ))
        .expect("visitor's channel"),
        sample::channel()
    );
    let survivor = crate::domain::ContactId::parse("202").expect("contact id");
    assert_eq!(
        alias::decode(&alias::encode(&survivor, &sample::contact())).expect("alias"),
        sample::contact()
    );
    let change = message::sample_change();
    let stored = message::decode(&message::encode(
        &sample::contact(),
        &change,
        &Role::Visitor,
        false,
    ))
    .expect("message");
    assert_eq!(
        (
            &stored.message_id,
            stored.cid.as_str(),
            stored.author_name.as_str(),
            &stored.role,
            stored.text.as_str(),
            &stored.attachments,
            stored.created_at,
            (
                stored.edited,
                stored.deleted,
                stored.restored,
                stored.removed
            ),
        ),
        (
            &change.message_id,
            sample::CID,
            change.author.name.as_str(),
            &Role::Visitor,
            change.text.as_str(),
            &change.attachments,
            change.created_at,
            (true, false, false, false),
        )
    );
}

#[test]
fn a_message_item_stores_nothing_twice_and_reads_as_items_written_before() {
    use super::super::keys::{message_sk, parse_message_sk};
    use super::s;
    use aws_sdk_dynamodb::types::AttributeValue;
    // The time and id come back from the key, an id with a `#` in it too; anything else is not a message's key.
    let mut change = message::sample_change();
    change.message_id = crate::domain::MessageId::parse("a#b#c").expect("message id");
    let sk = message_sk(&change.created_at, &change.message_id);
    assert_eq!(
        parse_message_sk(&sk),
        Some((change.created_at, change.message_id.clone()))
    );
    for other in ["SYNC", "MSG#", "MSG#not-a-time#m-1", "CONV#messaging:x"] {
        assert_eq!(parse_message_sk(other), None, "{other}");
    }
    // A plain new message: no copy of the key, no false flag, no empty list.
    change.edited = false;
    change.attachments.clear();
    change.kind = crate::domain::MessageKind::New;
    let written = message::encode(&sample::contact(), &change, &Role::Visitor, false);
    for absent in [
        "message_id",
        "created_at",
        "attachments",
        "edited",
        "deleted",
        "restored",
        "removed",
    ] {
        assert!(!written.contains_key(absent), "{absent} written");
    }
    // An item written before carries them all, and reads the same.
    let mut before = written.clone();
    before.insert("message_id".into(), s(change.message_id.as_str()));
    before.insert("created_at".into(), s(change.created_at.key()));
    before.insert("attachments".into(), AttributeValue::L(vec![]));
    for flag in ["edited", "deleted", "restored", "removed"] {
        before.insert(flag.into(), AttributeValue::Bool(false));
    }
    let now = message::decode(&written).expect("message");
    assert_eq!(
        message::decode(&before).expect("message as written before"),
        now
    );
    assert_eq!(
        message::stored_version(&before),
        message::stored_version(&written)
    );
    assert_eq!(
        (&now.message_id, now.created_at),
        (&change.message_id, change.created_at)
    );
}
