//! The sync record's epoch: every conversation registered while one life of a contact's record lasts carries it, so
//! the record gates their changes with one attribute, not one per conversation; a record made again after an
//! erasure is another life, and vouches for none of the erased contact's conversations.

use super::privacy::{
    assert_refused, erased_behind_a_webhook, record_for, sync_record, visitor_message,
};
use super::*;
use crate::support::Lambda;
use chat_sync::domain::{Email, Identity, UserId};
use chat_sync::ports::{ChannelMapping, RecordEpoch};

/// How many registrations of one contact race.
const AT_ONCE: usize = 8;

/// The e-mail `contact`'s visitors register with.
fn email(contact: &str) -> Email {
    Email::parse(&format!("returning.{contact}@example.com")).expect("valid")
}

/// A conversation of `contact` as a registration stores it: its own channel and visitor (`n`).
fn registered(contact: &str, n: usize) -> ChannelMapping {
    ChannelMapping::registered(
        ChannelRef::new(
            ChannelType::parse("messaging").expect("valid"),
            ChannelId::parse(&format!("epoch-{contact}-{n}")).expect("valid"),
        ),
        ContactId::parse(contact).expect("valid"),
        UserId::parse("visitor", &format!("visitor-{contact}-{n}")).expect("valid"),
        "Returning Visitor".into(),
        Identity::Unverified,
        Timestamp::now(),
    )
}

/// The epoch of the contact's sync record as it is (`None`: no record, or none on it).
async fn record_epoch(app: &TestApp, contact: &str) -> Option<RecordEpoch> {
    sync_record(app, contact)
        .await?
        .get("epoch")
        .and_then(|epoch| epoch.as_s().ok())
        .map(|epoch| RecordEpoch::stored(epoch))
}

#[tokio::test]
async fn registrations_of_one_contact_at_once_all_join_the_one_life_of_its_record() {
    let app = TestApp::start().await;
    let contact = "7001";
    // As registrations of a returning visitor in several tabs: each its own conversation, all at once, on a
    // contact with no sync record yet. Each reads the record's epoch (none) and makes one: one wins, and the
    // others must join the winner's, not leave a mapping with an epoch no record has.
    let store = app.store_as(Lambda::Registration);
    let racing: Vec<_> = (0..AT_ONCE)
        .map(|n| {
            let (store, mapping) = (store.clone(), registered(contact, n));
            tokio::spawn(async move {
                store
                    .save_channel(&mapping, &email(contact))
                    .await
                    .expect("saved")
            })
        })
        .collect();
    let mut stored = Vec::new();
    for task in racing {
        stored.push(task.await.expect("registration"));
    }
    let epoch = record_epoch(&app, contact)
        .await
        .expect("the record's epoch");
    for mapping in &stored {
        assert_eq!(
            mapping.epoch.as_ref(),
            Some(&epoch),
            "{:?}",
            mapping.channel
        );
        // As a webhook reads it.
        let read = app
            .store
            .channel(&mapping.channel)
            .await
            .expect("read")
            .expect("mapped");
        assert_eq!(read.epoch.as_ref(), Some(&epoch), "{:?}", mapping.channel);
    }
    // Each conversation's first change is gated on the record alone, which names none of them.
    for (n, mapping) in stored.iter().enumerate() {
        let change = visitor_message(
            mapping,
            mapping.visitor_id.as_str(),
            &format!("m-tab-{n}"),
            "hello from a tab",
        );
        assert_eq!(record_for(&app, mapping, &change).await, Recorded::Applied);
    }
    let record = sync_record(&app, contact).await.expect("the record");
    let per_conversation: Vec<&String> = record
        .keys()
        .filter(|name| *name == "gates" || name.contains(':'))
        .collect();
    assert!(per_conversation.is_empty(), "{per_conversation:?}");
}

#[tokio::test]
async fn a_record_made_again_after_an_erasure_admits_nothing_through_the_erased_conversations() {
    let app = TestApp::start().await;
    // A webhook that read the mapping before the erasure, and delivers after it.
    let (contact, visitor, channel, erased) =
        erased_behind_a_webhook(&app, "erased.then.again@example.com").await;
    // A conversation registered for the same contact id afterwards makes the record again: another life.
    let again = app
        .store_as(Lambda::Registration)
        .save_channel(&registered(&contact, 1), &email(&contact))
        .await
        .expect("saved");
    assert!(again.epoch.is_some());
    assert_ne!(again.epoch, erased.epoch);
    assert_eq!(record_epoch(&app, &contact).await, again.epoch);

    // The erased conversation's late change is refused: the record is not the life its mapping joined.
    let late = (
        "m-after-erasure",
        "kept after the erasure",
        Timestamp::now(),
    );
    assert_refused(&app, &erased, &visitor, late).await;
    let left = items_mentioning(&app, &[channel.as_str()]).await;
    assert!(left.is_empty(), "recorded after the erasure: {left:#?}");
    // The new conversation's changes are gated on the new life.
    let new = visitor_message(
        &again,
        again.visitor_id.as_str(),
        "m-new-life",
        "a new conversation",
    );
    assert_eq!(record_for(&app, &again, &new).await, Recorded::Applied);
}
