//! The webhook's warm copies of channel mappings (`handlers::mapping_cache`) meeting what changes a mapping: a
//! deletion in HubSpot, an erasure and the channel registered again. A copy is only ever an aid: the store's gate
//! decides every change made on one, and a refused change is decided again on the mapping as it is.

use super::privacy::mapping_of;
use super::*;
use crate::support::{new_message, signed_webhook, Lambda};
use chat_sync::domain::Email;
use chat_sync::ports::ChannelMapping;
use std::time::Instant;

/// Deliveries racing a deletion: tasks at once, each delivering until it has delivered this many after the deletion
/// was answered (at most `MOST` in all, so a deletion that never answers fails the test instead of hanging it).
const TASKS: usize = 4;
const AFTER: usize = 3;
const MOST: usize = 1_000;

#[tokio::test]
async fn deliveries_racing_a_deletion_in_hubspot_keep_nothing_once_it_is_answered() {
    let app = std::sync::Arc::new(TestApp::start().await);
    // The webhook has read the mapping (its two messages): every delivery below uses its copy.
    let (contact, visitor, channel) = chatting_visitor(&app, "racing.deletion@example.com").await;
    let deleted_at = std::sync::Arc::new(std::sync::OnceLock::<Instant>::new());
    let deliveries: Vec<_> = (0..TASKS)
        .map(|task| {
            let (app, visitor, channel, deleted_at) = (
                app.clone(),
                visitor.clone(),
                channel.clone(),
                deleted_at.clone(),
            );
            tokio::spawn(async move {
                let mut answers = Vec::new();
                let mut after_deletion = 0;
                for i in 0..MOST {
                    let text = format!("racing line {task}-{i}");
                    let event =
                        new_message(&channel, &visitor, &format!("m-race-{task}-{i}"), &text, 1);
                    // Started after the deletion was answered: nothing of it may be kept.
                    let after = deleted_at.get().is_some();
                    let (response, _flush) = app.webhook.receive(signed_webhook(&event)).await;
                    answers.push((after, response.status(), json_body(&response), text));
                    after_deletion += usize::from(after);
                    if after_deletion == AFTER {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(8)).await;
                }
                answers
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let (status, body) = from_hubspot(&app, &[("contact.deletion", &contact)]).await;
    assert_eq!(
        (status, &body["deleted"]),
        (StatusCode::OK, &json!(1)),
        "{body}"
    );
    deleted_at.set(Instant::now()).expect("set once");

    let mut after_deletion = 0;
    let mut recorded_before = 0;
    for task in deliveries {
        for (after, status, body, text) in task.await.expect("deliveries") {
            if after {
                after_deletion += 1;
                assert_eq!(status, StatusCode::OK, "{text}: {body}");
                assert_eq!(body["status"], "ignored", "{text}: {body}");
                let kept = items_mentioning(&app, &[text.as_str()]).await;
                assert!(kept.is_empty(), "{text} kept after the deletion: {kept:#?}");
            } else {
                // Racing the deletion's writes on the sync record, a delivery may find the store busy and be
                // answered 503 (Stream delivers it again).
                assert!(
                    [StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE].contains(&status),
                    "{text}: {status} {body}"
                );
                recorded_before += usize::from(body["status"] == "recorded");
            }
        }
    }
    assert_eq!(
        after_deletion,
        TASKS * AFTER,
        "every task ran past the deletion"
    );
    assert!(recorded_before > 0, "the race began before it");

    // Restored: the same warm webhook records again.
    let (_, body) = from_hubspot(&app, &[("contact.restore", &contact)]).await;
    assert_eq!(body["restored"], 1, "{body}");
    let event = new_message(&channel, &visitor, "m-restored", "back after the race", 2);
    let (_, body, _, _) = deliver(&app, &event).await;
    assert_eq!(body["status"], "recorded", "{body}");
}

#[tokio::test]
async fn a_copy_from_before_an_erasure_gives_way_to_the_channel_registered_again() {
    let app = TestApp::start().await;
    let (contact, visitor, channel) = chatting_visitor(&app, "registered.again@example.com").await;
    let before = mapping_of(&app, &channel).await;
    let (status, body) = from_hubspot(&app, &[("contact.privacyDeletion", &contact)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(items_mentioning(&app, &[contact.as_str()]).await.is_empty());

    // The same channel registered again (a visitor whose widget kept its channel), to another contact: the webhook
    // still has its copy of the erased mapping, which names the erased contact.
    let (other, _, _) = register_visitor(&app, "Bo", "another.contact@example.com").await;
    let other = ContactId::parse(&other).expect("valid");
    let again = app
        .store_as(Lambda::Registration)
        .save_channel(
            &ChannelMapping {
                contact_id: other.clone(),
                epoch: None,
                ..before.clone()
            },
            &Email::parse("another.contact@example.com").expect("valid"),
        )
        .await
        .expect("saved");
    assert_ne!(again.epoch, before.epoch);
    // Refused on the copy (the erased contact's record is gone: its life is over), then recorded on the mapping as
    // it is, for the contact the channel now maps to.
    let event = new_message(&channel, &visitor, "m-again", "registered again", 2);
    let (_, body, _, _) = deliver(&app, &event).await;
    assert_eq!(body["status"], "recorded", "{body}");
    let erased = items_mentioning(&app, &[contact.as_str()]).await;
    assert!(
        erased.is_empty(),
        "written for the erased contact: {erased:#?}"
    );
    let kept = items_mentioning(&app, &["registered again"]).await;
    assert_eq!(kept.len(), 1, "{kept:#?}");
    assert!(mentions(&format!("{kept:?}"), other.as_str()), "{kept:#?}");
}
