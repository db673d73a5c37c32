//! Renders a contact's transcript from its stored messages. Pure: the same messages always give the same text,
//! which is what makes rewriting the whole property idempotent.

use super::archive::ArchivedLine;
use super::conversation::Conversation;
use super::line::{self, notice, render_line, text_len};
use super::{MessageId, StoredMessage, Timestamp};

/// HubSpot's limit for a string property, counted in UTF-16 code units (what HubSpot's Java backend counts).
pub const HUBSPOT_PROPERTY_LIMIT: usize = 65_536;

/// Renders the newest messages that fit in `limit`, grouped by conversation (oldest conversation first, messages in
/// `created_at` order, message id as tiebreak). `total` is how many messages the contact has in all (at least
/// `messages.len()`): if some are not shown, a first line says how many.
///
/// The lines kept are the newest by `created_at`, so a caller may pass only the newest messages as long as their
/// lines (see [`Filling`]) exceed `limit`: the result is the same as for the whole history.
pub fn render(
    conversations: &[Conversation],
    messages: &[StoredMessage],
    limit: usize,
    total: u64,
) -> String {
    render_with_archive(conversations, &[], messages, limit, total)
}

/// Renders like [`render`], with the lines HubSpot shows of messages no longer stored here (see `archive`) taking
/// their places among the stored ones by time (before a stored message of the same second).
pub fn render_with_archive(
    conversations: &[Conversation],
    archived: &[ArchivedLine],
    messages: &[StoredMessage],
    limit: usize,
    total: u64,
) -> String {
    let conversation = |cid: &str| conversations.iter().find(|c| c.cid == cid);
    // What Stream erased is not shown.
    let stored = messages
        .iter()
        .filter(|m| !m.removed && conversation(&m.cid).is_none_or(|c| c.shows(m)))
        .map(|m| Line {
            cid: &m.cid,
            at: m.created_at,
            order: Order::Stored(&m.message_id),
            text: render_line(m),
        });
    let kept_archive = archived.iter().enumerate().map(|(i, line)| Line {
        cid: &line.cid,
        at: line.at,
        order: Order::Archived(i),
        text: line.text.clone(),
    });
    let mut by_time: Vec<Line> = stored.chain(kept_archive).collect();
    by_time.sort_by(|a, b| (a.at, &a.order).cmp(&(b.at, &b.order)));
    let total = total.max(by_time.len() as u64);
    // A conversation's header; without a stored conversation, the earliest of its lines stands in (and nothing is
    // claimed about the visitor's identity).
    let header = |cid: &str, first: &Line| match conversation(cid) {
        Some(c) => line::header(
            &c.channel_id,
            c.started_at,
            Some(&format!("{}{}", c.identity.describe(), c.truncation_note())),
        ),
        None => line::header(cid, first.at, None),
    };

    // Keep the longest suffix (in time) that fits. Exact length of the output for a kept suffix: every line and
    // every kept conversation's header plus a newline each, a blank line between conversations, the notice line if
    // anything was cut, less the final newline.
    let n = by_time.len();
    let mut start = n;
    let mut used = 0usize;
    let mut groups: Vec<&str> = Vec::new();
    for i in (0..n).rev() {
        let cid = by_time[i].cid;
        let mut add = text_len(&by_time[i].text) + 1;
        let new_group = !groups.contains(&cid);
        if new_group {
            // Any line of the conversation gives the same header length (the time has a fixed width).
            add += text_len(&header(cid, &by_time[i])) + 1 + usize::from(!groups.is_empty());
        }
        let omitted = total - (n - i) as u64;
        let notice = if omitted > 0 { notice_len(omitted) } else { 0 };
        // The newest line is always kept: `line::MAX_LINE` guarantees it fits any realistic limit.
        if start < n && used + add + notice > limit + 1 {
            break;
        }
        used += add;
        start = i;
        if new_group {
            groups.push(cid);
        }
    }

    // Group the kept lines by conversation: conversations by start (then cid), lines by time within each.
    let kept: Vec<usize> = (start..n).collect();
    let started = |cid: &str, first: &Line| conversation(cid).map_or(first.at, |c| c.started_at);
    let mut order: Vec<(&str, usize)> = Vec::new(); // (cid, first kept index)
    for &i in &kept {
        let cid = by_time[i].cid;
        if !order.iter().any(|(c, _)| *c == cid) {
            order.push((cid, i));
        }
    }
    order.sort_by(|(a, ai), (b, bi)| {
        (started(a, &by_time[*ai]), *a).cmp(&(started(b, &by_time[*bi]), *b))
    });

    let mut out = String::new();
    let omitted = total - kept.len() as u64;
    if omitted > 0 {
        out.push_str(&notice(omitted));
        out.push('\n');
    }
    for (g, (cid, first)) in order.iter().enumerate() {
        if g > 0 {
            out.push('\n');
        }
        out.push_str(&header(cid, &by_time[*first]));
        out.push('\n');
        for &i in kept.iter().filter(|&&i| by_time[i].cid == *cid) {
            out.push_str(&by_time[i].text);
            out.push('\n');
        }
    }
    out.pop();
    out
}

/// One line of a transcript, where it sorts.
struct Line<'a> {
    cid: &'a str,
    at: Timestamp,
    order: Order<'a>,
    text: String,
}

/// Within one instant: archived lines first, in the order HubSpot shows them, then stored messages by id.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Order<'a> {
    Archived(usize),
    Stored(&'a MessageId),
}

/// What the newest messages take, counted newest first, so a reader knows when it has read enough: once
/// [`Filling::is_full`], every line [`render`] would keep is among the messages counted.
#[derive(Debug, Clone)]
pub struct Filling {
    limit: usize,
    used: usize,
}

impl Filling {
    pub fn new(limit: usize) -> Self {
        Self { limit, used: 0 }
    }

    pub fn add(&mut self, message: &StoredMessage) {
        if message.removed {
            return;
        }
        self.used += text_len(&render_line(message)) + 1;
    }

    /// The lines counted alone overflow the limit: older messages cannot be shown.
    pub fn is_full(&self) -> bool {
        self.used > self.limit + 1
    }
}

fn notice_len(omitted: u64) -> usize {
    text_len(&notice(omitted)) + 1
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::{Identity, MessageId, Role};

    pub(crate) fn at(raw: &str) -> Timestamp {
        Timestamp::parse("t", raw).expect("valid time")
    }

    pub(crate) fn message(
        id: &str,
        cid: &str,
        time: &str,
        role: Role,
        text: &str,
    ) -> StoredMessage {
        StoredMessage {
            message_id: MessageId::parse(id).expect("valid id"),
            cid: cid.into(),
            author_name: if role == Role::Visitor {
                "Ada Lovelace"
            } else {
                "Support"
            }
            .into(),
            role,
            text: text.into(),
            attachments: vec![],
            created_at: at(time),
            edited: false,
            deleted: false,
            restored: false,
            removed: false,
        }
    }

    pub(crate) fn conversation(id: &str, time: &str) -> Conversation {
        Conversation {
            cid: format!("messaging:{id}"),
            channel_id: id.into(),
            started_at: at(time),
            identity: Identity::Unverified,
            cleared: None,
        }
    }

    #[test]
    fn renders_conversations_in_order_with_markers() {
        let conversations = [
            Conversation {
                identity: Identity::Verified,
                ..conversation("chat-b", "2026-11-25T09:00:00Z")
            },
            conversation("chat-a", "2026-11-24T10:00:00Z"),
        ];
        let mut edited = message(
            "m3",
            "messaging:chat-a",
            "2026-11-24T10:00:09Z",
            Role::Visitor,
            "thanks!",
        );
        edited.edited = true;
        let mut deleted = message(
            "m4",
            "messaging:chat-b",
            "2026-11-25T09:00:01Z",
            Role::Visitor,
            "secret",
        );
        deleted.deleted = true;
        let mut with_file = message(
            "m2",
            "messaging:chat-a",
            "2026-11-24T10:00:07Z",
            Role::Agent,
            "see",
        );
        with_file.attachments = vec!["https://cdn.example.com/a.png".into()];
        let messages = [
            deleted,
            edited,
            message(
                "m1",
                "messaging:chat-a",
                "2026-11-24T10:00:05Z",
                Role::Visitor,
                "hello\nthere",
            ),
            with_file,
        ];
        let text = render(&conversations, &messages, HUBSPOT_PROPERTY_LIMIT, 0);
        assert_eq!(
            text,
            "=== Conversation chat-a started 2026-11-24 10:00:00 UTC · e-mail as typed, not verified ===\n\
             [2026-11-24 10:00:05 UTC] Ada Lovelace (visitor): hello\n    there\n\
             [2026-11-24 10:00:07 UTC] Support (agent): see [attachment: https://cdn.example.com/a.png]\n\
             [2026-11-24 10:00:09 UTC] Ada Lovelace (visitor): thanks! (edited)\n\
             \n\
             === Conversation chat-b started 2026-11-25 09:00:00 UTC · e-mail verified by the site ===\n\
             [2026-11-25 09:00:01 UTC] Ada Lovelace (visitor): (message deleted)"
        );
    }

    #[test]
    fn same_instant_orders_by_message_id() {
        let conversations = [conversation("c", "2026-11-24T10:00:00Z")];
        let messages = [
            message(
                "b",
                "messaging:c",
                "2026-11-24T10:00:05Z",
                Role::Visitor,
                "second",
            ),
            message(
                "a",
                "messaging:c",
                "2026-11-24T10:00:05Z",
                Role::Visitor,
                "first",
            ),
        ];
        let text = render(&conversations, &messages, HUBSPOT_PROPERTY_LIMIT, 0);
        let first = text.find("first").expect("present");
        let second = text.find("second").expect("present");
        assert!(first < second);
    }

    #[test]
    fn empty_transcript_is_empty() {
        assert_eq!(
            render(&[conversation("c", "2026-11-24T10:00:00Z")], &[], 100, 0),
            ""
        );
    }

    #[test]
    fn too_long_keeps_newest_lines_and_says_how_many_were_left_out() {
        let conversations = [conversation("c", "2026-11-24T10:00:00Z")];
        let messages: Vec<StoredMessage> = (0..2_000)
            .map(|i| {
                message(
                    &format!("m{i:05}"),
                    "messaging:c",
                    &format!("2026-11-24T10:{:02}:{:02}Z", i / 60 % 60, i % 60),
                    Role::Visitor,
                    &format!("message number {i:05} {}", "x".repeat(40)),
                )
            })
            .collect();
        let text = render(&conversations, &messages, HUBSPOT_PROPERTY_LIMIT, 0);
        assert!(text_len(&text) <= HUBSPOT_PROPERTY_LIMIT);
        assert!(text.ends_with(&format!("message number 01999 {}", "x".repeat(40))));
        let first_line = text.lines().next().expect("not empty");
        let omitted: usize = first_line
            .trim_start_matches('[')
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("notice line first");
        let kept = text
            .lines()
            .filter(|l| l.contains("message number"))
            .count();
        assert_eq!(omitted + kept, 2_000);
        assert!(text
            .lines()
            .nth(1)
            .expect("header")
            .starts_with("=== Conversation c"));
    }

    #[test]
    fn a_huge_message_is_capped_so_the_newest_line_always_fits() {
        let conversations = [conversation("c", "2026-11-24T10:00:00Z")];
        let messages = [
            message(
                "a",
                "messaging:c",
                "2026-11-24T10:00:01Z",
                Role::Visitor,
                "old",
            ),
            message(
                "b",
                "messaging:c",
                "2026-11-24T10:00:02Z",
                Role::Visitor,
                &"😀".repeat(70_000),
            ),
        ];
        let text = render(&conversations, &messages, HUBSPOT_PROPERTY_LIMIT, 0);
        assert!(text_len(&text) <= HUBSPOT_PROPERTY_LIMIT);
        assert!(text.lines().last().expect("line").ends_with('…'));
        assert!(text.contains("old"));
    }
}
