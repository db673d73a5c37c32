//! Property tests: the renderer's limits and order, parsers that never panic, signatures that catch any change.

use chat_sync::adapters::dynamo::DynamoStore;
use chat_sync::adapters::stream::{sign_body, verify_signature};
use chat_sync::domain::archive::archived_lines;
use chat_sync::domain::line::{render_line, text_len};
use chat_sync::domain::transcript::{render, render_with_archive, Filling, HUBSPOT_PROPERTY_LIMIT};
use chat_sync::domain::{
    ChannelId, ChannelRef, ChannelType, ContactId, Conversation, Email, Identity, MessageId,
    PersonName, Role, StoredMessage, Timestamp, UserId,
};
use chat_sync::handlers::registration::RegistrationForm;
use chat_sync::handlers::webhook::{parse_event, Parsed};
use chat_sync::ports::{ChannelMapping, Channels, MessageLog, SyncRecords};
use proptest::prelude::*;

const SECRET: &str = "porewqKAFDSAKZssecretsercretfads";

fn arb_message(index: usize) -> impl Strategy<Value = StoredMessage> {
    (
        0usize..3,
        "\\PC{0,3000}",
        prop::bool::ANY,
        prop::bool::ANY,
        0i64..100_000,
        prop::bool::ANY,
    )
        .prop_map(
            move |(conversation, text, edited, deleted, offset, agent)| StoredMessage {
                message_id: MessageId::parse(&format!("m{index:05}")).expect("valid id"),
                cid: format!("messaging:c{conversation}"),
                author_name: if agent { "Grace" } else { "Ada 😀" }.into(),
                role: if agent { Role::Agent } else { Role::Visitor },
                text,
                attachments: vec![],
                created_at: Timestamp::from_unix_seconds(1_795_687_200 + offset).expect("in range"),
                edited,
                deleted,
                restored: false,
                removed: false,
            },
        )
}

/// A history in time order, with line breaks and both roles, over the three conversations: `per_second` messages
/// in each second, of one conversation (the transcript shows times to the second; across conversations, the order
/// of one second's lines is not kept by HubSpot's copy, see `domain::archive`).
fn arb_history(per_second: usize) -> impl Strategy<Value = Vec<StoredMessage>> {
    prop::collection::vec(
        (
            0usize..3,
            "\\PC{0,120}",
            prop::option::of("\\PC{0,40}"),
            prop::bool::ANY,
            prop::bool::ANY,
        ),
        1..80,
    )
    .prop_map(move |drafts| {
        let conversations: Vec<usize> = drafts.iter().map(|d| d.0).collect();
        drafts
            .into_iter()
            .enumerate()
            .map(|(i, (_, text, second_line, agent, edited))| StoredMessage {
                message_id: MessageId::parse(&format!("h{i:04}")).expect("valid id"),
                cid: format!("messaging:c{}", conversations[i - i % per_second]),
                author_name: if agent { "Grace" } else { "Ada 😀" }.into(),
                role: if agent { Role::Agent } else { Role::Visitor },
                text: match second_line {
                    Some(line) => format!("{text}\n{line}"),
                    None => text,
                },
                attachments: vec![],
                created_at: Timestamp::from_unix_seconds(
                    1_795_787_200 + 3 * (i / per_second) as i64,
                )
                .expect("in range"),
                edited,
                deleted: false,
                restored: false,
                removed: false,
            })
            .collect()
    })
}

fn arb_messages() -> impl Strategy<Value = Vec<StoredMessage>> {
    (1usize..120).prop_flat_map(|n| (0..n).map(arb_message).collect::<Vec<_>>())
}

fn conversations() -> Vec<Conversation> {
    (0..3)
        .map(|c| Conversation {
            cid: format!("messaging:c{c}"),
            channel_id: format!("c{c}"),
            started_at: Timestamp::from_unix_seconds(1_795_687_000 + c * 50_000).expect("in range"),
            identity: Identity::Unverified,
            cleared: None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn transcript_fits_and_keeps_the_newest_messages(messages in arb_messages()) {
        let conversations = conversations();
        let total = messages.len() as u64;
        let text = render(&conversations, &messages, HUBSPOT_PROPERTY_LIMIT, total);
        prop_assert!(text_len(&text) <= HUBSPOT_PROPERTY_LIMIT);
        // The lines shown are exactly those of the newest messages (by time, then id), however many fit...
        let shown: Vec<&str> = text.lines().filter(|l| l.starts_with('[') && !l.ends_with("not shown]")).collect();
        prop_assert!(!shown.is_empty(), "the newest line is always shown");
        let mut by_time: Vec<&StoredMessage> = messages.iter().collect();
        by_time.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.message_id.cmp(&b.message_id)));
        // A line's first row (text with a line break, U+2028 included, continues on indented rows).
        let first_row = |m: &StoredMessage| render_line(m).lines().next().unwrap_or_default().to_owned();
        let mut newest: Vec<String> = by_time[by_time.len() - shown.len()..].iter().map(|m| first_row(m)).collect();
        let mut shown_sorted: Vec<String> = shown.iter().map(|l| (*l).to_owned()).collect();
        newest.sort();
        shown_sorted.sort();
        prop_assert_eq!(newest, shown_sorted);
        // ...and the first line says how many are not.
        let omitted = messages.len() - shown.len();
        if omitted > 0 {
            prop_assert!(text.starts_with(&format!("[{omitted} earlier ")), "{}", text.lines().next().unwrap_or_default());
        }
    }

    /// The flusher reads only the newest messages, newest first, until their lines overflow the limit: what it
    /// renders from them is what the whole history renders.
    #[test]
    fn reading_only_the_newest_renders_the_same(messages in arb_messages(), limit in 200usize..20_000) {
        let conversations = conversations();
        let total = messages.len() as u64;
        let mut newest_first: Vec<StoredMessage> = messages.clone();
        newest_first.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.message_id.cmp(&a.message_id)));
        let mut filling = Filling::new(limit);
        let mut read = Vec::new();
        for message in newest_first {
            filling.add(&message);
            read.push(message);
            if filling.is_full() {
                break;
            }
        }
        prop_assert_eq!(
            render(&conversations, &read, limit, total),
            render(&conversations, &messages, limit, total)
        );
    }

    /// Retention never changes what HubSpot shows: once messages expire here, rendering around HubSpot's copy of
    /// the property gives what the whole history gives — as later messages arrive (some in the same second as an
    /// expired one, by the same author), whatever the limit cut.
    #[test]
    fn expired_messages_render_from_hubspots_copy_as_from_the_whole_history(
        mut history in arb_history(2),
        split in 0usize..=100,
        limit in 300usize..6_000,
    ) {
        let conversations = conversations();
        let cut = split * history.len() / 100;
        // Messages since the expiry are new: not edited before their first flush.
        for message in &mut history[cut..] {
            message.edited = false;
        }
        let (expired, later) = history.split_at(cut);
        let shown = render(&conversations, expired, limit, expired.len() as u64);
        let total = history.len() as u64;
        let archived = archived_lines(&shown, &conversations, &[], later);
        prop_assert_eq!(
            render_with_archive(&conversations, &archived, later, limit, total),
            render(&conversations, &history, limit, total)
        );
    }

    /// An edit, soft delete or hard delete of a message that expired here replaces (or drops) its line in HubSpot's
    /// copy exactly as it would have the stored message's.
    #[test]
    fn changes_to_expired_messages_apply_to_hubspots_copy(
        history in arb_history(1),
        changes in prop::collection::vec((0usize..1_000, 0u8..3, "\\PC{0,40}"), 0..8),
    ) {
        let conversations = conversations();
        let shown = render(&conversations, &history, HUBSPOT_PROPERTY_LIMIT, history.len() as u64);
        prop_assume!(!shown.contains(" not shown]"));
        let mut current = history.clone();
        let mut stored: Vec<StoredMessage> = Vec::new();
        for (index, kind, text) in changes {
            let message = &mut current[index % history.len()];
            match kind {
                0 if !message.deleted => {
                    message.text = text;
                    message.edited = true;
                }
                0 => continue,
                1 => {
                    message.deleted = true;
                    message.text.clear();
                }
                _ => {
                    message.deleted = true;
                    message.removed = true;
                    message.text.clear();
                }
            }
            stored.retain(|m| m.message_id != message.message_id);
            stored.push(message.clone());
        }
        let total = current.iter().filter(|m| !m.removed).count() as u64;
        let archived = archived_lines(&shown, &conversations, &[], &stored);
        prop_assert_eq!(
            render_with_archive(&conversations, &archived, &stored, HUBSPOT_PROPERTY_LIMIT, total),
            render(&conversations, &current, HUBSPOT_PROPERTY_LIMIT, total)
        );
    }

    /// A Stream event near a valid one (each of `events/webhook-message-*.json`, with fields dropped, nulled or of
    /// the wrong type, odd strings, the body cut short) parses or is refused with an `Invalid` (which the handler
    /// answers with a 400 `invalid_json` / `invalid_event`), never a panic; what no field of it makes invalid stays
    /// accepted.
    #[test]
    fn webhook_parsing_never_panics(
        event in prop::sample::select(WEBHOOK_EVENTS.to_vec()),
        mutations in prop::collection::vec((prop::sample::select(WEBHOOK_FIELDS.to_vec()), mutation()), 0..4),
        text in "\\PC{0,2000}",
        cut in any::<prop::sample::Index>(),
    ) {
        let valid: serde_json::Value = serde_json::from_str(&event_body(event)).expect("a valid event");
        let parsed = parse_event(valid.to_string().as_bytes());
        prop_assert!(matches!(&parsed, Ok(p) if !matches!(p, Parsed::Ignored(_))), "{event}: {parsed:?}");
        // Any text and any author name are a message's to have.
        let mut retexted = valid.clone();
        retexted["message"]["text"] = text.clone().into();
        retexted["message"]["user"]["name"] = text.into();
        prop_assert!(matches!(parse_event(retexted.to_string().as_bytes()), Ok(Parsed::Change(_))));
        let mut mutated = valid.clone();
        for (field, mutation) in &mutations {
            mutate(&mut mutated, field, mutation);
        }
        let body = mutated.to_string();
        if let Err(invalid) = parse_event(body.as_bytes()) {
            prop_assert!(!invalid.field.is_empty() && !invalid.reason.is_empty());
        }
        // Cut short, the body is not JSON: refused as such.
        let cut = cut.index(body.len());
        let short = &body.as_bytes()[..cut];
        if let Err(invalid) = parse_event(short) {
            prop_assert_eq!(invalid.field, "body");
        } else {
            prop_assert!(false, "a body cut at {} of {} parsed", cut, body.len());
        }
    }

    #[test]
    fn webhook_parsing_never_panics_on_near_valid_json(
        kind in prop::sample::select(vec!["message.new", "message.updated", "message.deleted", "x"]),
        cid in "\\PC{0,80}",
        id in "\\PC{0,300}",
        created in "\\PC{0,40}",
        user in "\\PC{0,40}",
    ) {
        let body = serde_json::json!({
            "type": kind, "cid": cid,
            "message": { "id": id, "created_at": created, "user": { "id": user }, "text": "t" }
        });
        let _ = parse_event(body.to_string().as_bytes());
    }

    /// A registration near a valid one (`events/registration.json`, with fields dropped, nulled or of the wrong
    /// type, odd or huge strings, or not an object at all) is accepted or refused with an `Invalid` naming the field
    /// at fault (which the handler answers with a 400 `{"error","code","field"}`), never a panic; a required field
    /// dropped or of the wrong type is the one named, and what was not touched is read as sent.
    #[test]
    fn registration_parsing_never_panics(
        mutations in prop::collection::vec((prop::sample::select(REGISTRATION_FIELDS.to_vec()), mutation()), 0..3),
        not_an_object in prop::option::weighted(0.1, prop_oneof![
            Just(serde_json::json!([])), Just(serde_json::json!("text")), Just(serde_json::json!(7)),
            Just(serde_json::Value::Null),
        ]),
    ) {
        let valid: serde_json::Value =
            serde_json::from_str(&event_body("registration.json")).expect("a valid registration");
        prop_assert!(RegistrationForm::parse(&valid).is_ok());
        let mut body = valid.clone();
        for (field, mutation) in &mutations {
            mutate(&mut body, field, mutation);
        }
        if let Some(other) = not_an_object {
            let invalid = RegistrationForm::parse(&other).err().expect("refused");
            prop_assert_eq!(invalid.field, "body");
        }
        let touched: Vec<&str> = mutations.iter().map(|(f, _)| f.trim_start_matches('/')).collect();
        match RegistrationForm::parse(&body) {
            Ok(form) => {
                for (field, value) in [("firstName", form.first_name.as_str()), ("lastName", form.last_name.as_str())] {
                    if !touched.contains(&field) {
                        prop_assert_eq!(value, valid[field].as_str().expect("a string"));
                    }
                }
                if !touched.contains(&"email") {
                    prop_assert_eq!(form.email.as_str(), "ada.lovelace@example.com");
                }
            }
            Err(invalid) => {
                prop_assert!(touched.contains(&invalid.field), "{} named, {:?} touched", invalid.field, touched);
                prop_assert!(!invalid.reason.is_empty());
            }
        }
        if let [(field, mutation)] = mutations.as_slice() {
            // Dropped, null, or not a string: the one field touched is the one named. (A string may be valid.)
            let required = ["/firstName", "/lastName", "/email"].contains(field);
            let is_string = matches!(mutation, Mutation::Replace(v) if v.is_string());
            if required && !is_string {
                let named = RegistrationForm::parse(&body).err().map(|e| e.field);
                prop_assert_eq!(named, Some(field.trim_start_matches('/')));
            }
        }
    }

    #[test]
    fn field_parsers_never_panic(raw in "\\PC{0,400}", ctl in "[\\x00-\\x1f]{0,3}") {
        let input = format!("{raw}{ctl}");
        let _ = Email::parse(&input);
        if let Ok(name) = PersonName::parse("firstName", &input) {
            prop_assert!(!name.as_str().chars().any(char::is_control));
            prop_assert!(name.as_str().chars().count() <= 100);
        }
    }

    #[test]
    fn every_mutation_of_a_signed_body_is_rejected(
        body in prop::collection::vec(any::<u8>(), 1..512),
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let signature = sign_body(SECRET, &body);
        prop_assert!(verify_signature(SECRET, &body, &signature));
        let mut mutated = body.clone();
        let i = position.index(mutated.len());
        mutated[i] ^= flip;
        prop_assert!(!verify_signature(SECRET, &mutated, &signature));
        let mut truncated = body.clone();
        truncated.pop();
        prop_assert!(!verify_signature(SECRET, &truncated, &signature));
        let mut extended = body;
        extended.push(b' ');
        prop_assert!(!verify_signature(SECRET, &extended, &signature));
    }
}

/// One message's life as Stream may report it: created, edited at increasing times (text and attachments), maybe
/// soft-deleted (and maybe undeleted after), maybe hard-deleted.
#[derive(Debug, Clone)]
struct Life {
    edits: Vec<(String, bool)>,
    soft_delete: bool,
    undelete: bool,
    hard_delete: bool,
}

fn arb_life() -> impl Strategy<Value = Life> {
    (
        prop::collection::vec(
            (
                prop::sample::select(vec!["Hi", "Hi!", "Hello"]),
                any::<bool>(),
            ),
            0..4,
        ),
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(edits, soft_delete, undelete, hard_delete)| Life {
            edits: edits.into_iter().map(|(t, a)| (t.to_owned(), a)).collect(),
            soft_delete,
            undelete: soft_delete && undelete,
            hard_delete,
        })
}

/// Every event of these lives, in causal order.
fn events(lives: &[Life]) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for (i, life) in lives.iter().enumerate() {
        let id = format!("m{i}");
        let created = format!("2026-11-24T10:00:0{i}.000Z");
        let body = |text: &str, updated: &str, attachment: bool| {
            let mut m = serde_json::json!({
                "id": id, "text": text, "type": "regular", "created_at": created, "updated_at": updated,
                "user": {"id": "visitor-1", "name": "Ada", "role": "user"},
            });
            if attachment {
                m["attachments"] = serde_json::json!([{"type": "file", "asset_url": format!("https://cdn.example.com/{id}")}]);
            }
            m
        };
        let event = |kind: &str, message: serde_json::Value, extra: serde_json::Value| {
            let mut e =
                serde_json::json!({"type": kind, "cid": "messaging:chat-1", "message": message});
            if let (Some(e), Some(extra)) = (e.as_object_mut(), extra.as_object()) {
                e.extend(extra.clone());
            }
            e
        };
        out.push(event(
            "message.new",
            body("Hi", &created, false),
            serde_json::json!({}),
        ));
        for (n, (text, attachment)) in life.edits.iter().enumerate() {
            let at = format!("2026-11-24T10:1{n}:00.000Z");
            out.push(event(
                "message.updated",
                body(text, &at, *attachment),
                serde_json::json!({}),
            ));
        }
        let mut deleted = body("", "2026-11-24T10:30:00.000Z", false);
        deleted["deleted_at"] = serde_json::json!("2026-11-24T10:30:00.000Z");
        if life.soft_delete {
            out.push(event(
                "message.deleted",
                deleted.clone(),
                serde_json::json!({}),
            ));
        }
        if life.undelete {
            // Shown again as it was last edited, newer than the deletion.
            let (text, attachment) = life
                .edits
                .last()
                .map_or(("Hi", false), |(t, a)| (t.as_str(), *a));
            let mut shown = body(text, "2026-11-24T10:35:00.000Z", attachment);
            if !life.edits.is_empty() {
                shown["message_text_updated_at"] = serde_json::json!("2026-11-24T10:35:00.000Z");
            }
            out.push(event("message.undeleted", shown, serde_json::json!({})));
        }
        if life.hard_delete {
            deleted["deleted_at"] = serde_json::json!("2026-11-24T10:40:00.000Z");
            out.push(event(
                "message.deleted",
                deleted,
                serde_json::json!({"hard_delete": true}),
            ));
        }
    }
    out
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// The mapping of the channel the generated events use, registered to `contact`.
fn registered(contact: &ContactId) -> ChannelMapping {
    ChannelMapping::registered(
        ChannelRef::new(
            ChannelType::parse("messaging").expect("valid"),
            ChannelId::parse("chat-1").expect("valid"),
        ),
        contact.clone(),
        UserId::parse("v", "visitor-1").expect("valid"),
        "Ada".into(),
        Identity::Unverified,
        Timestamp::parse("t", "2026-11-24T10:00:00Z").expect("valid"),
    )
}

fn store() -> &'static DynamoStore {
    static STORE: std::sync::OnceLock<DynamoStore> = std::sync::OnceLock::new();
    STORE.get_or_init(|| {
        runtime().block_on(async {
            let endpoint = sandbox::DynamoDbLocal::shared().endpoint();
            let table = format!("props-{}", uuid::Uuid::new_v4().simple());
            let store = DynamoStore::new(chat_sync::app::local_dynamodb(&endpoint).await, table);
            store.create_table().await.expect("table");
            // Changes are recorded only for a registered channel (an erased one records nothing): register the
            // one the generated events use, as registration would, to a contact the cases never draw (so that no
            // case's conversation carries the registration's header and the other's not).
            store
                .save_channel(
                    &registered(&ContactId::parse("999999999").expect("valid")),
                    &Email::parse("ada@example.com").expect("valid"),
                )
                .await
                .expect("channel");
            store
        })
    })
}

/// Records `events` for a fresh contact, in the given order, and renders what the flusher would write.
fn record_and_render(events: &[serde_json::Value]) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let contact = ContactId::parse(
        &NEXT
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .to_string(),
    )
    .expect("id");
    let store = store();
    // The stored mapping is another contact's: each case records as if its contact had registered the channel.
    let mapping = registered(&contact);
    runtime().block_on(async {
        for event in events {
            if let Ok(Parsed::Change(change)) = parse_event(event.to_string().as_bytes()) {
                store
                    .record_change(&mapping, &change, Role::Visitor)
                    .await
                    .expect("recorded");
            }
        }
        let state = store.sync_state(&contact).await.expect("state");
        // Every case delivers at least one new message: a store that recorded nothing would make every order
        // "converge" on an empty transcript.
        assert!(state.version > 0, "nothing was recorded");
        let source = store
            .recent_transcript(&contact, HUBSPOT_PROPERTY_LIMIT)
            .await
            .expect("read");
        render(
            &source.conversations,
            &source.messages,
            HUBSPOT_PROPERTY_LIMIT,
            state.messages,
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any order and duplication of a conversation's `new` / `updated` / `deleted` / `undeleted` events stores the
    /// same messages as the causal order: the newest state wins whatever its text (an undeletion shows the message
    /// again), a hard delete removes the line for good, and the count of lines shown (the notice's) agrees.
    #[test]
    fn any_delivery_order_converges_to_the_causal_one(
        lives in prop::collection::vec(arb_life(), 1..4),
        seed in any::<u64>(),
        duplicates in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        let in_order = events(&lives);
        let mut delivered = in_order.clone();
        for index in &duplicates {
            delivered.push(index.get(&in_order).clone());
        }
        delivered.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
        prop_assert_eq!(record_and_render(&delivered), record_and_render(&in_order));
    }
}

/// The events the webhook test starts from, as Stream sends them (`events/`).
const WEBHOOK_EVENTS: [&str; 4] = [
    "webhook-message-new.json",
    "webhook-message-updated.json",
    "webhook-message-deleted.json",
    "webhook-message-undeleted.json",
];

/// Where a Stream event is mutated (JSON pointers).
const WEBHOOK_FIELDS: [&str; 17] = [
    "/type",
    "/cid",
    "/channel_id",
    "/channel_type",
    "/message",
    "/message/id",
    "/message/text",
    "/message/type",
    "/message/created_at",
    "/message/updated_at",
    "/message/user",
    "/message/user/id",
    "/message/user/role",
    "/message/attachments",
    "/user",
    "/created_at",
    "/hard_delete",
];

/// Where a registration is mutated.
const REGISTRATION_FIELDS: [&str; 5] = [
    "/firstName",
    "/lastName",
    "/email",
    "/identityToken",
    "/extra",
];

/// The request body of one of `events/`' requests.
fn event_body(file: &str) -> String {
    let path = format!("{}/../../events/{file}", env!("CARGO_MANIFEST_DIR"));
    let request: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the event file"))
            .expect("JSON");
    request["body"].as_str().expect("a body").to_owned()
}

#[derive(Debug, Clone)]
enum Mutation {
    Drop,
    Replace(serde_json::Value),
}

/// A field dropped, or replaced by a value of another type or an odd string.
fn mutation() -> impl Strategy<Value = Mutation> {
    use serde_json::{json, Value};
    prop_oneof![
        Just(Mutation::Drop),
        prop_oneof![
            Just(Value::Null),
            Just(json!(true)),
            Just(json!(-1)),
            Just(json!(1e300)),
            Just(json!([])),
            Just(json!(["x"])),
            Just(json!({})),
            Just(json!({"id": "x"})),
            Just(json!("")),
            Just(json!("   ")),
            Just(json!("x".repeat(70_000))),
            Just(json!("a\u{0000}b\u{202E}c\n")),
            Just(json!("2026-11-24T10:00:05Z")),
            Just(json!("messaging:")),
            Just(json!(":chat")),
            "\\PC{0,64}".prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
        ]
        .prop_map(Mutation::Replace),
    ]
}

/// Applies `mutation` at `pointer` (creating the field if its parent is an object).
fn mutate(value: &mut serde_json::Value, pointer: &str, mutation: &Mutation) {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    let Some(serde_json::Value::Object(parent)) = value.pointer_mut(parent) else {
        return;
    };
    match mutation {
        Mutation::Drop => {
            parent.remove(key);
        }
        Mutation::Replace(with) => {
            parent.insert(key.to_owned(), with.clone());
        }
    }
}
