//! What HubSpot shows of messages no longer stored here.
//!
//! A contact's message items expire once it has been in sync and idle for `MESSAGE_RETENTION_DAYS` (see
//! `retention`): from then on HubSpot holds the only copy of their lines, and it must keep showing them. So when
//! such a contact changes again, the flusher reads the `chat_transcript` property back and keeps every line of it
//! that no stored message accounts for, in its place by time; the stored messages are rendered around them as
//! always. A stored message accounts for the line it renders to; one changed since (edited, deleted, shown again
//! after a deletion, hard-deleted) for the line that begins as its own, `[time] Author (role): `, and the change
//! replaces (or drops) it. How a line reads is the codec's (`line`): this module only decides which lines stay. Two messages of one author in the same second look alike there: when one of them
//! changes after the other expired, either line may be the one replaced. And HubSpot's copy is grouped by
//! conversation, so the order of lines of different conversations within one second is not known: when the length
//! limit cuts between two such lines, either may be the one left out.
//!
//! Erasures still reach these lines: a truncation or deletion of the conversation drops them by time, and the
//! erasure of the conversation's visitor drops every visitor line of it. Lines of conversations the contact does
//! not have (someone pasted them in HubSpot, or HubSpot merged another record's text in) are not kept.
//!
//! Notes work differently: a conversation's notes at the time its messages expire are *frozen*, never rendered
//! again; later messages go to the parts after them (see `note::render_notes`), and an erasure that may reach
//! their lines empties them (`note::erased_note`).

use super::line::{may_be_visitors, parse_line, read_row, render_line, Row};
use super::{Conversation, StoredMessage, Timestamp};
use std::collections::HashMap;

/// A line HubSpot shows whose message is no longer stored here: kept as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedLine {
    pub cid: String,
    /// When its message was created, to the second (what the line says).
    pub at: Timestamp,
    /// The whole line, continuation lines included.
    pub text: String,
}

/// The lines of `shown` (the property as HubSpot holds it) to keep: those of the contact's `conversations` that no
/// stored message (of `stored`, hard-deleted ones included) accounts for and that no erasure since has reached.
/// `visitor_erased` names the conversations (cids) whose visitor was erased.
pub fn archived_lines(
    shown: &str,
    conversations: &[Conversation],
    visitor_erased: &[String],
    stored: &[StoredMessage],
) -> Vec<ArchivedLine> {
    // As written, but a store that normalised line breaks to CRLF must not make every line look changed.
    let shown = shown.replace("\r\n", "\n");
    let mut lines: Vec<ArchivedLine> = Vec::new();
    let mut block: Option<&Conversation> = None;
    // Whether the last line read belongs to a line being kept (so its continuation lines do too).
    let mut open = false;
    for raw in shown.split('\n') {
        match (read_row(raw), block) {
            (Row::Header { channel_id }, _) => {
                block = channel_id.and_then(|id| conversations.iter().find(|c| c.channel_id == id));
                open = false;
            }
            (Row::Continuation, Some(_)) => {
                if let (true, Some(line)) = (open, lines.last_mut()) {
                    line.text.push('\n');
                    line.text.push_str(raw);
                }
            }
            (Row::Message { at }, Some(conversation)) => {
                open = true;
                lines.push(ArchivedLine {
                    cid: conversation.cid.clone(),
                    at,
                    text: raw.to_owned(),
                });
            }
            (Row::Other, Some(_)) => open = false,
            // A blank line between conversations, the "not shown" notice, or text that is not ours.
            _ => {
                block = None;
                open = false;
            }
        }
    }
    let mut keep: Vec<bool> = lines
        .iter()
        .map(|line| {
            let conversation = conversations.iter().find(|c| c.cid == line.cid);
            let cleared = conversation
                .and_then(|c| c.cleared)
                .is_some_and(|cleared| !cleared.keeps(line.at));
            let erased = visitor_erased.contains(&line.cid) && may_be_visitors(&line.text);
            !(cleared || erased)
        })
        .collect();
    // A stored message accounts for its own line: the same line exactly (written by an earlier flush), else, for
    // a message changed since (edited, deleted, shown again), the first kept line of its conversation and second that begins
    // the same. Exact matches go first, so that a new message never takes the place of another one's line.
    let mut by_second: HashMap<(&str, Timestamp), Vec<usize>> = HashMap::new();
    for (i, line) in lines.iter().enumerate() {
        by_second.entry((&line.cid, line.at)).or_default().push(i);
    }
    let candidates = |message: &StoredMessage| -> Vec<usize> {
        Timestamp::parse_human(&message.created_at.human())
            .and_then(|second| by_second.get(&(message.cid.as_str(), second)))
            .cloned()
            .unwrap_or_default()
    };
    let mut changed = Vec::new();
    for message in stored {
        let line = render_line(message);
        let candidates = candidates(message);
        match candidates
            .iter()
            .find(|&&i| keep[i] && !message.removed && lines[i].text == line)
        {
            Some(&i) => keep[i] = false,
            None if message.edited || message.deleted || message.restored => changed.push(message),
            None => {}
        }
    }
    for message in changed {
        let same_prefix = |i: usize| parse_line(&lines[i].text).is_some_and(|l| l.is_by(message));
        if let Some(&i) = candidates(message)
            .iter()
            .find(|&&i| keep[i] && same_prefix(i))
        {
            keep[i] = false;
        }
    }
    lines
        .into_iter()
        .zip(keep)
        .filter_map(|(line, keep)| keep.then_some(line))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::transcript::tests::{at, conversation, message};
    use crate::domain::transcript::{render, render_with_archive, HUBSPOT_PROPERTY_LIMIT};
    use crate::domain::Cleared;
    use crate::domain::Role;

    fn history() -> (Vec<Conversation>, Vec<StoredMessage>) {
        let conversations = vec![
            conversation("old", "2026-09-01T10:00:00Z"),
            conversation("new", "2026-11-20T09:00:00Z"),
        ];
        let messages = vec![
            message(
                "a1",
                "messaging:old",
                "2026-09-01T10:00:01Z",
                Role::Visitor,
                "hello\nsecond line",
            ),
            message(
                "a2",
                "messaging:old",
                "2026-09-01T10:00:02Z",
                Role::Agent,
                "hi, how can I help?",
            ),
            message(
                "a3",
                "messaging:old",
                "2026-09-01T10:00:03Z",
                Role::Visitor,
                "thanks",
            ),
        ];
        (conversations, messages)
    }

    #[test]
    fn expired_lines_stay_where_they_were_as_new_messages_arrive() {
        let (conversations, old) = history();
        let shown = render(&conversations, &old, HUBSPOT_PROPERTY_LIMIT, 3);
        let new = vec![
            message(
                "b1",
                "messaging:new",
                "2026-11-20T09:00:01Z",
                Role::Visitor,
                "back again",
            ),
            message(
                "b2",
                "messaging:old",
                "2026-11-20T09:00:02Z",
                Role::Agent,
                "late reply in the old chat",
            ),
        ];
        let archived = archived_lines(&shown, &conversations, &[], &new);
        assert_eq!(archived.len(), 3);
        assert_eq!(
            archived_lines(&shown.replace('\n', "\r\n"), &conversations, &[], &new),
            archived
        );
        assert_eq!(
            archived[0].text,
            "[2026-09-01 10:00:01 UTC] Ada Lovelace (visitor): hello\n    second line"
        );
        let merged =
            render_with_archive(&conversations, &archived, &new, HUBSPOT_PROPERTY_LIMIT, 5);
        let mut all = old.clone();
        all.extend(new);
        assert_eq!(
            merged,
            render(&conversations, &all, HUBSPOT_PROPERTY_LIMIT, 5)
        );
    }

    #[test]
    fn a_stored_change_replaces_the_archived_line_and_a_hard_delete_drops_it() {
        let (conversations, old) = history();
        let shown = render(&conversations, &old, HUBSPOT_PROPERTY_LIMIT, 3);
        let mut edited = old[1].clone();
        edited.text = "edited reply".into();
        edited.edited = true;
        let mut removed = old[2].clone();
        removed.deleted = true;
        removed.removed = true;
        removed.text.clear();
        let stored = vec![edited, removed];
        let archived = archived_lines(&shown, &conversations, &[], &stored);
        assert_eq!(archived.len(), 1);
        let merged = render_with_archive(
            &conversations,
            &archived,
            &stored,
            HUBSPOT_PROPERTY_LIMIT,
            2,
        );
        assert!(merged.contains("Support (agent): edited reply (edited)"));
        assert!(!merged.contains("how can I help") && !merged.contains("thanks"));
        assert!(merged.contains("hello\n    second line"));
    }

    #[test]
    fn erasures_reach_archived_lines() {
        let (mut conversations, old) = history();
        let shown = render(&conversations, &old, HUBSPOT_PROPERTY_LIMIT, 3);
        let erased = archived_lines(&shown, &conversations, &["messaging:old".to_owned()], &[]);
        assert_eq!(erased.len(), 1);
        assert!(erased[0].text.contains("(agent)"));
        conversations[0].cleared = Some(Cleared::Truncated(at("2026-09-01T10:00:02.500Z")));
        let truncated = archived_lines(&shown, &conversations, &[], &[]);
        assert_eq!(truncated.len(), 1);
        assert!(truncated[0].text.contains("thanks"));
        conversations[0].cleared = Some(Cleared::Deleted);
        assert!(archived_lines(&shown, &conversations, &[], &[]).is_empty());
    }

    #[test]
    fn only_lines_of_the_contacts_conversations_in_our_form_are_kept() {
        let (conversations, _) = history();
        let shown = "[12 earlier messages not shown]\n\
             === Conversation elsewhere started 2026-09-01 10:00:00 UTC ===\n\
             [2026-09-01 10:00:01 UTC] Mallory (visitor): not this contact's\n\
             \n\
             === Conversation old started 2026-09-01 10:00:00 UTC · e-mail as typed, not verified ===\n\
             [2026-09-01 10:00:01 UTC] Ada Lovelace (visitor): kept\n    with its continuation\n\
             typed in HubSpot by hand\n\
             [2026-13-01 10:00:01 UTC] not a time\n\
             [2026-09-01 10:00:02 UTC] Support (agent): kept too\n\
             \n\
             free text at the end";
        let archived = archived_lines(shown, &conversations, &[], &[]);
        let texts: Vec<&str> = archived.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "[2026-09-01 10:00:01 UTC] Ada Lovelace (visitor): kept\n    with its continuation",
                "[2026-09-01 10:00:02 UTC] Support (agent): kept too"
            ]
        );
        assert!(archived_lines("", &conversations, &[], &[]).is_empty());
    }

    #[test]
    fn the_limit_still_keeps_the_newest_lines_and_counts_the_rest() {
        let (conversations, old) = history();
        let shown = render(&conversations, &old, HUBSPOT_PROPERTY_LIMIT, 3);
        let new = vec![message(
            "b1",
            "messaging:new",
            "2026-11-20T09:00:01Z",
            Role::Visitor,
            &"x".repeat(200),
        )];
        let archived = archived_lines(&shown, &conversations, &[], &new);
        let limit = 320;
        let merged = render_with_archive(&conversations, &archived, &new, limit, 4);
        let mut all = old.clone();
        all.extend(new);
        assert_eq!(merged, render(&conversations, &all, limit, 4));
        assert!(merged.starts_with("[") && merged.contains("earlier messages not shown"));
    }
}
