//! `make bench`'s sections that only measure (no timing claims): each runs to the end against DynamoDB Local and the
//! doubles, as the README's command runs it. The retention section stopped with an error from the day notes began
//! to wait (a contact whose notes wait keeps its messages, and the section expired one without writing them) and
//! nothing noticed: the bench is not in CI, so this checks that it still runs.

use infra::bench::world::World;

#[tokio::test]
async fn the_retention_and_conversations_sections_run_to_the_end() {
    let endpoint = sandbox::DynamoDbLocal::shared().endpoint();
    let world = World::start(&endpoint).await.expect("the bench's world");
    // Each checks what it measured: the pass expired the contact's messages, the property still shows its lines.
    let expired = infra::bench::retention::run(&world, &endpoint)
        .await
        .expect("the retention section");
    assert_eq!(expired.len(), infra::bench::retention::SIZES.len());
    // The conversations table's last columns: the record after an expiry does not grow with the conversations.
    let conversations = infra::bench::flush_cost::by_conversations(&world, &endpoint)
        .await
        .expect("the conversations section");
    let after_expiry: Vec<usize> = conversations.iter().map(|c| c.expired.0).collect();
    let (fewest, most) = (
        after_expiry.iter().min().copied().unwrap_or_default(),
        after_expiry.iter().max().copied().unwrap_or_default(),
    );
    assert!(
        fewest > 0 && most < fewest + 100,
        "the sync record after an expiry, by conversations: {after_expiry:?}"
    );
}
