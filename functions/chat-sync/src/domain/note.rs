//! A conversation as HubSpot timeline Notes: one note per conversation, continued in "part 2", "part 3" … when it
//! outgrows a note. Pure: the same messages always give the same notes, so rewriting them is idempotent.
//!
//! `hs_note_body` is HTML, and every character of a message is the visitor's: everything is escaped, line breaks
//! become `<br>`, and only `http(s)` attachment URLs become links. Each note ends with a marker naming the
//! conversation and part, so a note whose creation timed out can be found and adopted instead of created twice.

use super::line::{line_parts, text_len, LineBody};
use super::{Cleared, Conversation};
use super::{StoredMessage, Timestamp};

/// HubSpot's limit for `hs_note_body`, in UTF-16 code units.
pub const NOTE_BODY_LIMIT: usize = 65_536;

/// One note of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotePart {
    /// 1 for the first note of the conversation.
    pub number: usize,
    pub body: String,
    /// Where the note sits on the timeline: the conversation's start (part 1), the part's first message (later).
    pub timestamp: Timestamp,
}

/// The marker a note of `cid`'s part `number` carries, in its footer.
pub fn marker(cid: &str, number: usize) -> String {
    format!("chat-sync conversation {} part {number}", escape(cid))
}

/// Whether a note's body is part `number` of `cid`'s notes: it carries that part's whole footer, tags included.
/// Message text is escaped, so no visitor can write the footer's tags, and a note that merely quotes the marker's
/// words (a visitor typing them) is not taken for ours.
pub fn is_part(body: &str, cid: &str, number: usize) -> bool {
    body.contains(&footer(cid, number))
}

/// Renders the conversation's shown messages (in `created_at` order, message id as tiebreak) into notes that each
/// fit `limit`, numbered from `frozen + 1`: the first `frozen` notes hold messages no longer stored here (see
/// `archive`) and are not rendered again. A conversation without messages has no note.
pub fn render_notes(
    conversation: &Conversation,
    messages: &[StoredMessage],
    limit: usize,
    frozen: usize,
) -> Vec<NotePart> {
    let mut ordered: Vec<&StoredMessage> = messages
        .iter()
        .filter(|m| m.cid == conversation.cid && !m.removed && conversation.shows(m))
        .collect();
    ordered.sort_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then_with(|| a.message_id.cmp(&b.message_id))
    });
    let mut parts: Vec<NotePart> = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    // Part 1 sits at the conversation's start; a part after frozen ones, at its first message.
    let mut first_at = match (frozen, ordered.first()) {
        (1.., Some(first)) => first.created_at,
        _ => conversation.started_at,
    };
    let close = |number: usize, lines: &[String], at: Timestamp| NotePart {
        number,
        body: format!(
            "{}{}{}",
            header(conversation, number),
            lines.concat(),
            footer(&conversation.cid, number)
        ),
        timestamp: at,
    };
    for message in ordered {
        let line = html_line(message);
        let number = frozen + parts.len() + 1;
        let frame =
            text_len(&header(conversation, number)) + text_len(&footer(&conversation.cid, number));
        let used: usize = lines.iter().map(|l| text_len(l)).sum();
        if !lines.is_empty() && frame + used + text_len(&line) > limit {
            parts.push(close(number, &lines, first_at));
            lines.clear();
            first_at = message.created_at;
        }
        lines.push(line);
    }
    if !lines.is_empty() {
        parts.push(close(frozen + parts.len() + 1, &lines, first_at));
    }
    parts
}

/// The body a note of part `number` gets once the conversation no longer reaches it: Stream deleted the
/// conversation, or removed messages.
pub fn emptied_note(conversation: &Conversation, number: usize) -> String {
    let why = match conversation.cleared {
        Some(Cleared::Deleted) => "(conversation deleted in chat)",
        _ => "(no messages left in this part)",
    };
    format!(
        "{}<p><em>{why}</em></p>{}",
        header(conversation, number),
        footer(&conversation.cid, number)
    )
}

/// The body a frozen note (see `archive`) gets when Stream erases messages it may hold: its lines are no longer
/// stored here to render it again without them, so none of them is kept.
pub fn erased_note(conversation: &Conversation, number: usize) -> String {
    format!(
        "{}<p><em>(messages erased in chat)</em></p>{}",
        header(conversation, number),
        footer(&conversation.cid, number)
    )
}

fn header(conversation: &Conversation, number: usize) -> String {
    let part = if number > 1 {
        format!(" (part {number})")
    } else {
        String::new()
    };
    format!(
        "<p><strong>Website chat</strong> · conversation {} · started {} · {}{}{part}</p>",
        escape(&conversation.channel_id),
        conversation.started_at.human(),
        conversation.identity.describe(),
        escape(&conversation.truncation_note())
    )
}

fn footer(cid: &str, number: usize) -> String {
    format!("<p><small>{}</small></p>", marker(cid, number))
}

/// `<p>[time] <strong>Ada</strong> (visitor): Hello<br>there (edited)</p>`.
pub fn html_line(message: &StoredMessage) -> String {
    let parts = line_parts(message);
    let body = match parts.body {
        LineBody::Deleted => "<em>(message deleted)</em>".to_owned(),
        LineBody::Said {
            text,
            attachments,
            edited,
        } => {
            let mut body = escape(&text).replace('\n', "<br>");
            for url in attachments {
                if !body.is_empty() {
                    body.push(' ');
                }
                body.push_str(&link(&url));
            }
            if edited {
                body.push_str(" <em>(edited)</em>");
            }
            body
        }
    };
    format!(
        "<p>[{}] <strong>{}</strong> ({}): {body}</p>",
        message.created_at.human(),
        escape(&parts.author),
        escape(parts.role)
    )
}

/// An attachment: a link only for `http(s)` URLs (never `javascript:` or `data:`), its text escaped either way.
fn link(url: &str) -> String {
    let lower = url.trim().to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        format!("<a href=\"{}\">attachment</a>", escape(url.trim()))
    } else {
        format!("[attachment: {}]", escape(url))
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Identity, MessageId, Role};

    #[test]
    fn a_note_is_known_by_its_whole_footer_not_by_quoted_words() {
        let ours = format!("<p>hello</p>{}", footer("messaging:chat-a", 1));
        assert!(is_part(&ours, "messaging:chat-a", 1));
        assert!(!is_part(&ours, "messaging:chat-a", 2));
        assert!(!is_part(&ours, "messaging:chat-b", 1));
        // A visitor typing the marker's words, even its tags, gets them escaped.
        let typed = format!("<p>{}</p>", escape(&footer("messaging:chat-b", 1)));
        assert!(!is_part(&typed, "messaging:chat-b", 1));
        let words = format!("<p>{}</p>", marker("messaging:chat-b", 1));
        assert!(!is_part(&words, "messaging:chat-b", 1));
    }

    fn at(raw: &str) -> Timestamp {
        Timestamp::parse("t", raw).expect("valid time")
    }

    fn conversation() -> Conversation {
        Conversation {
            cid: "messaging:chat-a".into(),
            channel_id: "chat-a".into(),
            started_at: at("2026-11-24T10:00:00Z"),
            identity: Identity::Unverified,
            cleared: None,
        }
    }

    fn message(id: &str, second: u32, text: &str) -> StoredMessage {
        StoredMessage {
            message_id: MessageId::parse(id).expect("id"),
            cid: "messaging:chat-a".into(),
            author_name: "Ada <Lovelace>".into(),
            role: Role::Visitor,
            text: text.into(),
            attachments: vec![],
            created_at: at(&format!(
                "2026-11-24T10:{:02}:{:02}Z",
                second / 60,
                second % 60
            )),
            edited: false,
            deleted: false,
            restored: false,
            removed: false,
        }
    }

    #[test]
    fn one_note_with_escaped_lines_and_the_marker() {
        let mut edited = message("m2", 2, "<img src=x onerror=alert(1)>");
        edited.edited = true;
        let mut file = message("m3", 3, "");
        file.attachments = vec![
            "https://cdn.example.com/a.pdf?x=1&y=\"2\"".into(),
            "javascript:alert(1)".into(),
        ];
        let mut gone = message("m4", 4, "secret");
        gone.deleted = true;
        let notes = render_notes(
            &conversation(),
            &[gone, file, edited, message("m1", 1, "Hi\nthere")],
            NOTE_BODY_LIMIT,
            0,
        );
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].timestamp, at("2026-11-24T10:00:00Z"));
        assert_eq!(
            notes[0].body,
            "<p><strong>Website chat</strong> · conversation chat-a · started 2026-11-24 10:00:00 UTC · e-mail as typed, not verified</p>\
             <p>[2026-11-24 10:00:01 UTC] <strong>Ada &lt;Lovelace&gt;</strong> (visitor): Hi<br>    there</p>\
             <p>[2026-11-24 10:00:02 UTC] <strong>Ada &lt;Lovelace&gt;</strong> (visitor): &lt;img src=x onerror=alert(1)&gt; <em>(edited)</em></p>\
             <p>[2026-11-24 10:00:03 UTC] <strong>Ada &lt;Lovelace&gt;</strong> (visitor): <a href=\"https://cdn.example.com/a.pdf?x=1&amp;y=&quot;2&quot;\">attachment</a> [attachment: javascript:alert(1)]</p>\
             <p>[2026-11-24 10:00:04 UTC] <strong>Ada &lt;Lovelace&gt;</strong> (visitor): <em>(message deleted)</em></p>\
             <p><small>chat-sync conversation messaging:chat-a part 1</small></p>"
        );
    }

    #[test]
    fn a_long_conversation_continues_in_further_parts_without_losing_a_line() {
        let messages: Vec<StoredMessage> = (0..600)
            .map(|i| {
                message(
                    &format!("m{i:04}"),
                    i,
                    &format!("line {i:04} {}", "x".repeat(200)),
                )
            })
            .collect();
        let notes = render_notes(&conversation(), &messages, NOTE_BODY_LIMIT, 0);
        assert!(notes.len() >= 2, "{} parts", notes.len());
        for (i, note) in notes.iter().enumerate() {
            assert_eq!(note.number, i + 1);
            assert!(text_len(&note.body) <= NOTE_BODY_LIMIT);
            assert!(note.body.contains(&marker("messaging:chat-a", i + 1)));
        }
        assert!(notes[1].body.contains("(part 2)"));
        assert_eq!(
            notes[1].timestamp,
            messages[notes[0].body.matches("<p>[").count()].created_at
        );
        let all: String = notes.iter().map(|n| n.body.as_str()).collect();
        for i in 0..600 {
            assert_eq!(all.matches(&format!("line {i:04} ")).count(), 1, "line {i}");
        }
    }

    #[test]
    fn after_frozen_notes_the_parts_continue_from_the_next_number() {
        let mut gone = message("m0", 0, "hard-deleted");
        gone.removed = true;
        let notes = render_notes(
            &conversation(),
            &[
                gone,
                message("m2", 2, "back again"),
                message("m1", 1, "hello"),
            ],
            NOTE_BODY_LIMIT,
            2,
        );
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].number, 3);
        assert!(notes[0].body.contains("(part 3)"));
        assert!(notes[0].body.contains(&marker("messaging:chat-a", 3)));
        assert!(!notes[0].body.contains("hard-deleted"));
        assert!(notes[0].body.find("hello") < notes[0].body.find("back again"));
        assert_eq!(notes[0].timestamp, at("2026-11-24T10:00:01Z"));
        let erased = erased_note(&conversation(), 1);
        assert!(
            erased.contains("(messages erased in chat)")
                && erased.contains(&marker("messaging:chat-a", 1))
        );
    }

    #[test]
    fn notes_as_hubspot_holds_them_are_still_written_and_known_as_ours() {
        // A note is adopted by its footer and rewritten in place: the same messages must give the same body.
        let held: Vec<&str> = include_str!("fixtures/hubspot_notes.txt")
            .trim_end_matches('\n')
            .split('\n')
            .collect();
        let (conversations, messages) = crate::domain::line::tests::fixture_history();
        let (a, b) = (&conversations[0], &conversations[1]);
        let mut written: Vec<String> = conversations
            .iter()
            .flat_map(|c| render_notes(c, &messages, NOTE_BODY_LIMIT, 0))
            .chain(render_notes(b, &messages, NOTE_BODY_LIMIT, 2))
            .map(|note| note.body)
            .collect();
        let deleted = Conversation {
            cleared: Some(Cleared::Deleted),
            ..b.clone()
        };
        written.push(emptied_note(&deleted, 1));
        written.push(emptied_note(b, 2));
        written.push(erased_note(a, 1));
        assert_eq!(written, held);
        for (body, cid, number) in [
            (held[0], &a.cid, 1),
            (held[1], &b.cid, 1),
            (held[2], &b.cid, 3),
            (held[3], &b.cid, 1),
            (held[4], &b.cid, 2),
            (held[5], &a.cid, 1),
        ] {
            assert!(is_part(body, cid, number), "{body}");
        }
    }
}
