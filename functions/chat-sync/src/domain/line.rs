//! The transcript's line format, both ways: how a message becomes a line of the `chat_transcript` property, and how
//! the property as HubSpot holds it reads back (see `archive`). Nothing else knows the format.
//!
//! ```text
//! [12 earlier messages not shown]
//! === Conversation chat-a started 2026-11-24 10:00:00 UTC · e-mail as typed, not verified ===
//! [2026-11-24 10:00:05 UTC] Ada Lovelace (visitor): hello
//!     a second line of the same message
//! [2026-11-24 10:00:07 UTC] Support (agent): see [attachment: https://cdn.example.com/a.png] (edited)
//! [2026-11-24 10:00:09 UTC] Ada Lovelace (visitor): (message deleted)
//! ```
//!
//! A message line is `[time] Author (role): body`; the body's own line breaks continue it on rows indented by four
//! spaces, so a row never begins as a line, a header or a blank row does. The author is cleaned so that it cannot
//! forge a prefix (see `author`), and text and names lose control and invisible formatting characters.
//!
//! Invariant: **lines already stored in HubSpot must keep parsing, and a message must keep rendering to the very
//! line HubSpot holds for it.** Once a contact's messages expire, HubSpot's copy is the only one; `archive` reads it
//! back, and recognises a still-stored message's line by its exact text (a changed message's by its prefix). So the
//! format only grows compatibly: a new state of a message may get a new marker, but the rendering of what exists
//! today never changes and the parser keeps reading every form it ever wrote. `fixtures/hubspot_lines.txt` holds
//! lines as HubSpot holds them today, and a test holds this module to them.
//!
//! What the text cannot tell apart, by design of the format written since the first release: a body that is
//! exactly `(message deleted)` reads as a deleted message, a body that ends with ` (edited)` reads as edited, and
//! attachments read back as part of the text. A body cut at [`MAX_LINE`] (it ends with `…`) may have lost its
//! ` (edited)`.

use super::{StoredMessage, Timestamp};

/// One message line is capped so that the newest line always fits, whatever its size.
pub const MAX_LINE: usize = 8_000;

const HEADER: &str = "=== Conversation ";
const CONTINUATION: &str = "    ";
const DELETED: &str = "(message deleted)";
const EDITED: &str = " (edited)";
/// `[2026-11-24 10:00:05 UTC] `: where a message line's time sits.
const TIME: std::ops::Range<usize> = 1..24;
/// Where the text after the time begins.
const AFTER_TIME: usize = 26;

/// Length as HubSpot counts it (UTF-16 code units: what HubSpot's Java backend counts).
pub fn text_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// What a line says, cleaned, before it is formatted as text (the property) or HTML (notes).
pub(crate) struct LineParts<'a> {
    pub author: String,
    pub role: &'a str,
    pub body: LineBody,
}

pub(crate) enum LineBody {
    Deleted,
    Said {
        text: String,
        attachments: Vec<String>,
        edited: bool,
    },
}

/// The line's author, role and body, with control characters dropped and line breaks indented; the body capped so
/// that the whole line stays within [`MAX_LINE`].
pub(crate) fn line_parts(message: &StoredMessage) -> LineParts<'_> {
    let author = author(message);
    let body = if message.deleted {
        LineBody::Deleted
    } else {
        let room = MAX_LINE.saturating_sub(text_len(&author) + 64);
        let mut text = clean(&message.text);
        if text_len(&text) > room {
            text = truncate_utf16(&text, room.saturating_sub(1));
            text.push('…');
        }
        LineBody::Said {
            text,
            attachments: message.attachments.iter().map(|url| clean(url)).collect(),
            edited: message.edited,
        }
    };
    LineParts {
        author,
        role: message.role.as_str(),
        body,
    }
}

/// `[2026-11-24 10:00:05 UTC] Ada Lovelace (visitor): text (edited)`.
pub fn render_line(message: &StoredMessage) -> String {
    let parts = line_parts(message);
    let mut body = match parts.body {
        LineBody::Deleted => DELETED.to_owned(),
        LineBody::Said {
            text,
            attachments,
            edited,
        } => {
            let mut body = text;
            for url in attachments {
                if !body.is_empty() {
                    body.push(' ');
                }
                body.push_str("[attachment: ");
                body.push_str(&url);
                body.push(']');
            }
            if edited {
                body.push_str(EDITED);
            }
            body
        }
    };
    let prefix = prefix(message.created_at, &parts.author, parts.role);
    let room = MAX_LINE.saturating_sub(text_len(&prefix));
    if text_len(&body) > room {
        body = truncate_utf16(&body, room.saturating_sub(1));
        body.push('…');
    }
    prefix + &body
}

/// A conversation's header: `=== Conversation chat-a started 2026-11-24 10:00:00 UTC · about ===`, or without
/// `about` when nothing is known of the conversation but its lines.
pub(crate) fn header(channel_id: &str, started: Timestamp, about: Option<&str>) -> String {
    match about {
        Some(about) => format!(
            "{HEADER}{channel_id} started {} · {about} ===",
            started.human()
        ),
        None => format!("{HEADER}{channel_id} started {} ===", started.human()),
    }
}

/// The first line when older messages do not fit: `[12 earlier messages not shown]`.
pub(crate) fn notice(omitted: u64) -> String {
    let noun = if omitted == 1 { "message" } else { "messages" };
    format!("[{omitted} earlier {noun} not shown]")
}

/// One row of the property as HubSpot holds it (its text split at `\n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row<'a> {
    /// A conversation's header, with the channel id it names (`None` if it names none readably).
    Header { channel_id: Option<&'a str> },
    /// The empty row between conversations.
    Blank,
    /// The next row of the message line above it.
    Continuation,
    /// The first row of a message line, created at `at` (to the second).
    Message { at: Timestamp },
    /// Anything else: the "not shown" notice, or text someone typed in HubSpot.
    Other,
}

/// How a row of the property reads.
pub fn read_row(raw: &str) -> Row<'_> {
    if let Some(rest) = raw.strip_prefix(HEADER) {
        return Row::Header {
            channel_id: rest.split_once(" started ").map(|(id, _)| id),
        };
    }
    if raw.is_empty() {
        Row::Blank
    } else if raw.starts_with(CONTINUATION) {
        Row::Continuation
    } else {
        line_time(raw).map_or(Row::Other, |at| Row::Message { at })
    }
}

/// The time a message line begins with.
fn line_time(raw: &str) -> Option<Timestamp> {
    raw.strip_prefix('[')
        .and(raw.get(TIME))
        .filter(|_| raw.get(TIME.end..AFTER_TIME) == Some("] "))
        .and_then(Timestamp::parse_human)
}

/// A whole message line read back (its first row and its continuation rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLine<'a> {
    /// When its message was created, to the second.
    pub at: Timestamp,
    /// Who said what, if the line is in the form [`render_line`] writes; `None` for a line that has the time but
    /// not `Author (role): ` on its first row (someone edited it in HubSpot).
    pub said: Option<Said<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said<'a> {
    pub author: &'a str,
    pub role: &'a str,
    pub body: Body<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<'a> {
    Deleted,
    /// The text, attachments included, continuation rows joined by `\n` and still indented.
    Text {
        text: &'a str,
        edited: bool,
    },
}

/// Reads a whole message line; `None` if it does not begin with a time.
pub fn parse_line(line: &str) -> Option<ParsedLine<'_>> {
    let at = line_time(line)?;
    let rest = line.get(AFTER_TIME..)?;
    // A name keeps no `:`, so the first `): ` of the first row ends the prefix; the role is the last `(…)` before it.
    let first_row = rest.split('\n').next().unwrap_or_default();
    let said = first_row.find("): ").and_then(|end| {
        let (author, role) = first_row[..end].rsplit_once(" (")?;
        let body = &rest[end + 3..];
        let body = if body == DELETED {
            Body::Deleted
        } else {
            match body.strip_suffix(EDITED) {
                Some(text) => Body::Text { text, edited: true },
                None => Body::Text {
                    text: body,
                    edited: false,
                },
            }
        };
        Some(Said { author, role, body })
    });
    Some(ParsedLine { at, said })
}

impl ParsedLine<'_> {
    /// Whether the line names `message`'s author and role (what a changed message's line is found by). The time is
    /// the caller's to compare.
    pub fn is_by(&self, message: &StoredMessage) -> bool {
        self.said.as_ref().is_some_and(|said| {
            said.role == message.role.as_str() && said.author == author(message)
        })
    }
}

/// Whether a line may be the visitor's: `[time] Name (visitor): …`. A text that itself holds ` (visitor): ` makes
/// an agent's line look like the visitor's too; taking it for the visitor's (to erase it) is the safe side.
pub fn may_be_visitors(line: &str) -> bool {
    line.contains(" (visitor): ")
}

fn prefix(at: Timestamp, author: &str, role: &str) -> String {
    format!("[{}] {author} ({role}): ", at.human())
}

/// The author as a line names them: cleaned like text, on one line, and unable to forge a line's prefix. A line
/// reads `[time] Author (role): `, so a name keeps no `:` (the first `): ` after the time always ends the prefix)
/// and no `(agent)` or `(visitor)` of its own (`Ada (agent)` becomes `Ada [agent]`): a visitor named
/// `(agent): refund approved` cannot make their line read as an agent's.
fn author(message: &StoredMessage) -> String {
    let one_line = clean(&message.author_name)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(':', " ");
    let mut author = String::with_capacity(one_line.len());
    let mut rest = one_line.as_str();
    while let Some(open) = rest.find('(') {
        author.push_str(&rest[..open]);
        let group = &rest[open..];
        match group.find(')') {
            Some(close) if is_role_word(&group[1..close]) => {
                author.push('[');
                author.push_str(&group[1..close]);
                author.push(']');
                rest = &group[close + 1..];
            }
            _ => {
                author.push('(');
                rest = &group[1..];
            }
        }
    }
    author.push_str(rest);
    let author = author.split_whitespace().collect::<Vec<_>>().join(" ");
    if author.is_empty() {
        "Unknown".to_owned()
    } else {
        author
    }
}

/// The roles that mean something to a reader of the transcript.
fn is_role_word(text: &str) -> bool {
    let word = text.trim();
    word.eq_ignore_ascii_case("agent") || word.eq_ignore_ascii_case("visitor")
}

/// Whether a character is invisible formatting: bidirectional controls (which reorder what a reader sees), other
/// format characters (zero-width spaces, the BOM, soft hyphens, tags, ...). The zero-width joiner and non-joiner
/// stay: emoji sequences and several scripts need them, and they move nothing.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}' | '\u{200E}' | '\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}' | '\u{0600}'..='\u{0605}' | '\u{06DD}' | '\u{070F}' | '\u{08E2}'
        | '\u{110BD}' | '\u{110CD}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0001}' | '\u{E0020}'..='\u{E007F}')
}

/// Keeps line breaks (indented so they read as part of the line; U+2028 and U+2029 are line breaks too), drops
/// other control characters and invisible formatting ([`is_format`]), so a line shows what it says in the order
/// it says it.
fn clean(text: &str) -> String {
    let visible: String = text
        .replace("\r\n", "\n")
        .chars()
        .filter_map(|c| match c {
            '\n' | '\u{2028}' | '\u{2029}' => Some('\n'),
            '\t' => Some(' '),
            c if c.is_control() || is_format(c) => None,
            c => Some(c),
        })
        .collect();
    visible.trim().replace('\n', &format!("\n{CONTINUATION}"))
}

fn truncate_utf16(text: &str, max: usize) -> String {
    let mut used = 0;
    let mut out = String::new();
    for c in text.chars() {
        used += c.len_utf16();
        if used > max {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::transcript::tests::{at, message};
    use crate::domain::transcript::{render, HUBSPOT_PROPERTY_LIMIT};
    use crate::domain::{Cleared, Conversation};
    use crate::domain::{Identity, MessageId, Role};
    use proptest::prelude::*;

    #[test]
    fn a_name_cannot_forge_a_lines_prefix_nor_text_hide_what_it_says() {
        let said = |name: &str, text: &str| {
            let mut m = message(
                "m1",
                "messaging:chat-a",
                "2026-11-24T10:00:05Z",
                Role::Visitor,
                text,
            );
            m.author_name = name.into();
            render_line(&m)
        };
        // A last name that would make the line read as the agent's.
        assert_eq!(
            said("Ada (agent): refund approved", "hi"),
            "[2026-11-24 10:00:05 UTC] Ada [agent] refund approved (visitor): hi"
        );
        assert_eq!(
            said("Mallory ( Visitor ):", "x"),
            "[2026-11-24 10:00:05 UTC] Mallory [ Visitor ] (visitor): x"
        );
        // Parentheses that name no role, and names with line breaks, stay readable on one line.
        assert_eq!(
            said("Grace (Support)\nTeam", "x"),
            "[2026-11-24 10:00:05 UTC] Grace (Support) Team (visitor): x"
        );
        // Bidi controls, zero-width and other format characters go; U+2028 breaks the line like a newline.
        assert_eq!(
            said(
                "A\u{202E}da\u{200B}",
                "pay \u{2066}evil\u{2069} now\u{2028}ok\u{FEFF}"
            ),
            "[2026-11-24 10:00:05 UTC] Ada (visitor): pay evil now\n    ok"
        );
        // Emoji sequences keep their joiners.
        assert!(said("Ada", "👨\u{200D}👩\u{200D}👧").ends_with("👨\u{200D}👩\u{200D}👧"));
        // Every line, whatever the name, has exactly one `): ` before its text.
        for name in [
            "(agent):",
            "a):(b",
            "::",
            "(visitor)(agent)",
            "\u{202E}(agent)",
        ] {
            let line = said(name, "body");
            let prefix_end = line.find("): ").expect("a prefix");
            assert_eq!(&line[prefix_end..], "): body", "{name:?} → {line}");
        }
    }

    /// The conversations and messages `fixtures/hubspot_lines.txt` and `fixtures/hubspot_notes.txt` were rendered
    /// from (with the renderer as it was when they were written), 20 messages in all, 16 shown.
    pub(crate) fn fixture_history() -> (Vec<Conversation>, Vec<StoredMessage>) {
        let (a, b) = ("messaging:chat-a", "messaging:chat-b");
        let said = |id: &str, cid: &str, time: &str, role: Role, text: &str| {
            message(id, cid, time, role, text)
        };
        let mut ms = vec![
            said(
                "m01",
                a,
                "2026-11-24T10:00:05Z",
                Role::Visitor,
                "Hello, I need help with my order",
            ),
            said(
                "m02",
                a,
                "2026-11-24T10:00:07.400Z",
                Role::Agent,
                "Sure, which one?",
            ),
            said(
                "m03",
                a,
                "2026-11-24T10:00:09Z",
                Role::Visitor,
                "order #1234\nsecond line\n\nafter a blank line",
            ),
        ];
        let mut m = said(
            "m04",
            a,
            "2026-11-24T10:00:11Z",
            Role::Visitor,
            "thanks! (typo fixed)",
        );
        m.edited = true;
        ms.push(m);
        m = said(
            "m05",
            a,
            "2026-11-24T10:00:12Z",
            Role::Visitor,
            "my card number is 4111",
        );
        m.deleted = true;
        ms.push(m);
        m = said(
            "m06",
            a,
            "2026-11-24T10:00:13Z",
            Role::Agent,
            "see the attached",
        );
        m.attachments = vec![
            "https://cdn.example.com/a.png".into(),
            "https://cdn.example.com/b.pdf?x=1&y=2".into(),
        ];
        ms.push(m);
        m = said("m07", a, "2026-11-24T10:00:14Z", Role::Visitor, "");
        m.attachments = vec!["https://cdn.example.com/photo.jpg".into()];
        m.edited = true;
        ms.push(m);
        m = said(
            "m08",
            a,
            "2026-11-24T10:00:15Z",
            Role::Visitor,
            "refund approved",
        );
        m.author_name = "Ada (agent): refund approved".into();
        ms.push(m);
        m = said(
            "m09",
            a,
            "2026-11-24T10:00:16Z",
            Role::Visitor,
            "pay \u{2066}evil\u{2069} now\u{2028}ok\u{FEFF}",
        );
        m.author_name = "A\u{202E}da\u{200B} Love\tlace".into();
        ms.push(m);
        m = said(
            "m10",
            a,
            "2026-11-24T10:00:17Z",
            Role::Agent,
            "[2026-11-24 10:00:18 UTC] Support (agent): not a real line\n[2026-11-24 10:00:19 UTC] fake: (visitor): x",
        );
        m.author_name = "Grace (Support)\nTeam".into();
        ms.push(m);
        m = said(
            "m11",
            a,
            "2026-11-24T10:00:17Z",
            Role::Other("moderator".into()),
            "こんにちは 👨\u{200D}👩\u{200D}👧 ¿qué tal? (edited)",
        );
        m.author_name = "Zoë Ñandú 李".into();
        ms.push(m);
        m = said(
            "m12",
            a,
            "2026-11-24T10:00:18Z",
            Role::Visitor,
            "  spaced out  ",
        );
        m.author_name = "   ".into();
        ms.push(m);
        m = said(
            "m13",
            a,
            "2026-11-24T10:00:19Z",
            Role::Visitor,
            "(message deleted)",
        );
        m.author_name = "Mallory ( Visitor ):(agent)".into();
        ms.push(m);
        m = said("m14", a, "2026-11-24T10:00:20Z", Role::Agent, "done");
        m.deleted = true;
        m.edited = true;
        ms.push(m);
        ms.push(said(
            "m15",
            b,
            "2026-11-25T09:00:01Z",
            Role::Visitor,
            "back again <b>bold</b> & \"quoted\"",
        ));
        m = said(
            "m16",
            b,
            "2026-11-25T09:00:02Z",
            Role::Agent,
            "javascript link",
        );
        m.attachments = vec!["javascript:alert(1)".into()];
        ms.push(m);
        let conversations = vec![
            Conversation {
                cid: a.into(),
                channel_id: "chat-a".into(),
                started_at: at("2026-11-24T10:00:00Z"),
                identity: Identity::Unverified,
                cleared: Some(Cleared::Truncated(at("2026-11-24T10:00:01Z"))),
            },
            Conversation {
                cid: b.into(),
                channel_id: "chat-b".into(),
                started_at: at("2026-11-25T09:00:00Z"),
                identity: Identity::Verified,
                cleared: None,
            },
        ];
        (conversations, ms)
    }

    const FIXTURE: &str = include_str!("fixtures/hubspot_lines.txt");

    /// The fixture's message lines, whole (first row and continuation rows), as `archive` reads them.
    fn fixture_lines() -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        for raw in FIXTURE.trim_end_matches('\n').split('\n') {
            match read_row(raw) {
                Row::Message { .. } => lines.push(raw.to_owned()),
                Row::Continuation => {
                    let line = lines.last_mut().expect("a continuation follows a line");
                    line.push('\n');
                    line.push_str(raw);
                }
                _ => {}
            }
        }
        lines
    }

    #[test]
    fn lines_as_hubspot_holds_them_keep_parsing() {
        let rows: Vec<Row> = FIXTURE
            .trim_end_matches('\n')
            .split('\n')
            .map(read_row)
            .collect();
        assert_eq!(rows[0], Row::Other, "the notice");
        let headers: Vec<Option<&str>> = rows
            .iter()
            .filter_map(|row| match row {
                Row::Header { channel_id } => Some(*channel_id),
                _ => None,
            })
            .collect();
        assert_eq!(headers, [Some("chat-a"), Some("chat-b")]);
        assert_eq!(rows.iter().filter(|r| **r == Row::Blank).count(), 1);
        assert_eq!(rows.iter().filter(|r| **r == Row::Continuation).count(), 5);

        let text = |text: &'static str, edited: bool| Body::Text { text, edited };
        #[rustfmt::skip]
        let expected: [(&str, &str, &str, Body); 16] = [
            ("2026-11-24 10:00:05 UTC", "Ada Lovelace", "visitor", text("Hello, I need help with my order", false)),
            ("2026-11-24 10:00:07 UTC", "Support", "agent", text("Sure, which one?", false)),
            ("2026-11-24 10:00:09 UTC", "Ada Lovelace", "visitor", text("order #1234\n    second line\n    \n    after a blank line", false)),
            ("2026-11-24 10:00:11 UTC", "Ada Lovelace", "visitor", text("thanks! (typo fixed)", true)),
            ("2026-11-24 10:00:12 UTC", "Ada Lovelace", "visitor", Body::Deleted),
            ("2026-11-24 10:00:13 UTC", "Support", "agent", text("see the attached [attachment: https://cdn.example.com/a.png] [attachment: https://cdn.example.com/b.pdf?x=1&y=2]", false)),
            ("2026-11-24 10:00:14 UTC", "Ada Lovelace", "visitor", text("[attachment: https://cdn.example.com/photo.jpg]", true)),
            ("2026-11-24 10:00:15 UTC", "Ada [agent] refund approved", "visitor", text("refund approved", false)),
            ("2026-11-24 10:00:16 UTC", "Ada Love lace", "visitor", text("pay evil now\n    ok", false)),
            ("2026-11-24 10:00:17 UTC", "Grace (Support) Team", "agent", text("[2026-11-24 10:00:18 UTC] Support (agent): not a real line\n    [2026-11-24 10:00:19 UTC] fake: (visitor): x", false)),
            // A text that ends with the marker reads as edited (the format cannot tell).
            ("2026-11-24 10:00:17 UTC", "Zoë Ñandú 李", "moderator", text("こんにちは 👨\u{200D}👩\u{200D}👧 ¿qué tal?", true)),
            ("2026-11-24 10:00:18 UTC", "Unknown", "visitor", text("spaced out", false)),
            // Likewise a text that is the deleted marker.
            ("2026-11-24 10:00:19 UTC", "Mallory [ Visitor ] [agent]", "visitor", Body::Deleted),
            ("2026-11-24 10:00:20 UTC", "Support", "agent", Body::Deleted),
            ("2026-11-25 09:00:01 UTC", "Ada Lovelace", "visitor", text("back again <b>bold</b> & \"quoted\"", false)),
            ("2026-11-25 09:00:02 UTC", "Support", "agent", text("javascript link [attachment: javascript:alert(1)]", false)),
        ];
        let lines = fixture_lines();
        assert_eq!(lines.len(), expected.len());
        for (line, (time, author, role, body)) in lines.iter().zip(expected) {
            let parsed = parse_line(line).unwrap_or_else(|| panic!("{line:?} does not parse"));
            assert_eq!(
                parsed.at,
                Timestamp::parse_human(time).expect("a time"),
                "{line}"
            );
            assert_eq!(parsed.said, Some(Said { author, role, body }), "{line}");
        }
    }

    #[test]
    fn messages_still_render_to_the_lines_hubspot_holds() {
        // `archive` knows a still-stored message's line by its exact text: the same message must render the same.
        let (conversations, messages) = fixture_history();
        let rendered = render(&conversations, &messages, HUBSPOT_PROPERTY_LIMIT, 20);
        assert_eq!(format!("{rendered}\n"), FIXTURE);
        let lines = fixture_lines();
        for message in &messages {
            let line = render_line(message);
            assert!(lines.contains(&line), "{line:?} is not in the fixture");
            let parsed = parse_line(&line).expect("parses");
            assert!(parsed.is_by(message), "{line}");
        }
    }

    /// Pieces that make names and texts hard: markers, brackets, prefixes, line breaks, bidi and format characters.
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => any::<char>().prop_map(String::from),
            2 => "[a-zA-Z]{1,8}",
            1 => prop::sample::select(vec![
                " ", "  ", "(", ")", ":", "): ", "(agent)", "( Visitor )", "(visitor): ", "[", "]", "\n", "\r\n",
                "\t", "\u{2028}", "\u{2029}", "\u{202E}", "\u{2066}", "\u{200B}", "\u{FEFF}", "\u{200D}", "李", "😀",
                "=== Conversation x started 2026-11-24 10:00:00 UTC ===", "[2026-11-24 10:00:05 UTC] ", "    ",
                "(edited)", "(message deleted)", "[attachment: x]", "…",
            ])
            .prop_map(str::to_owned),
        ]
    }

    fn pieces(max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(piece(), 0..max).prop_map(|p| p.concat())
    }

    fn arbitrary_message() -> impl Strategy<Value = StoredMessage> {
        let role = prop_oneof![
            Just(Role::Visitor),
            Just(Role::Agent),
            "[a-zA-Z0-9_-]{0,12}".prop_map(|r| Role::other(&r)),
        ];
        (
            (
                pieces(12),
                pieces(40),
                prop::collection::vec(pieces(6), 0..3),
            ),
            (role, any::<bool>(), any::<bool>()),
            (0i64..4_000_000_000, 0u32..1000),
        )
            .prop_map(
                |((name, text, attachments), (role, edited, deleted), (seconds, millis))| {
                    let created_at = Timestamp::from_unix_seconds(seconds)
                        .expect("in range")
                        .later_by(std::time::Duration::from_millis(millis.into()));
                    StoredMessage {
                        message_id: MessageId::parse("m1").expect("id"),
                        cid: "messaging:c".into(),
                        author_name: name,
                        role,
                        text,
                        attachments,
                        created_at,
                        edited,
                        deleted,
                        restored: false,
                        removed: false,
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Whatever the name and text, a formatted line reads back as what it says: its time to the second, the
        /// cleaned author and the role, and its body, and each of its rows reads as a message line followed by its
        /// continuation rows (never a header, a blank row or another message's line).
        #[test]
        fn every_line_parses_back_to_what_it_says(message in arbitrary_message()) {
            let line = render_line(&message);
            let parts = line_parts(&message);
            let parsed = parse_line(&line).expect("a formatted line parses");
            let second = Timestamp::parse_human(&message.created_at.human()).expect("a time");
            prop_assert_eq!(parsed.at, second);
            let said = parsed.said.clone().expect("in the written form");
            prop_assert_eq!(said.author, parts.author.as_str());
            prop_assert_eq!(said.role, message.role.as_str());
            prop_assert!(parsed.is_by(&message));
            match parts.body {
                LineBody::Deleted => prop_assert_eq!(said.body, Body::Deleted),
                LineBody::Said { text, attachments, edited } => {
                    let mut shown = text;
                    for url in attachments {
                        if !shown.is_empty() {
                            shown.push(' ');
                        }
                        shown.push_str(&format!("[attachment: {url}]"));
                    }
                    // What the format cannot tell apart (see the module header).
                    let expected = if shown == DELETED && !edited {
                        Body::Deleted
                    } else if let Some(text) = shown.strip_suffix(EDITED).filter(|_| !edited) {
                        Body::Text { text, edited: true }
                    } else {
                        Body::Text { text: &shown, edited }
                    };
                    prop_assert_eq!(said.body, expected);
                }
            }
            let mut rows = line.split('\n').map(read_row);
            prop_assert_eq!(rows.next(), Some(Row::Message { at: second }));
            prop_assert!(rows.all(|row| row == Row::Continuation), "{:?}", line);
        }

        /// The documented cleaning: a name is one line, holds no `:`, no `(agent)` or `(visitor)`, no control or
        /// format character, and is never empty; a name or text that needs no cleaning is kept as it is.
        #[test]
        fn cleaning_removes_only_what_could_mislead(message in arbitrary_message(), plain in "[a-zA-Z0-9]{1,8}( [a-zA-Z0-9]{1,8}){0,3}") {
            let author = line_parts(&message).author;
            prop_assert!(!author.is_empty());
            prop_assert!(!author.contains(':'));
            let breaks = ['\u{2028}', '\u{2029}'];
            let hidden = author.chars().any(|c| c.is_control() || is_format(c) || breaks.contains(&c));
            prop_assert!(!hidden, "{:?}", author);
            let lower = author.to_ascii_lowercase();
            prop_assert!(!lower.contains("(agent)") && !lower.contains("(visitor)"), "{}", author);
            let mut same = message.clone();
            same.author_name = plain.clone();
            same.text = plain.clone();
            same.attachments.clear();
            same.deleted = false;
            same.edited = false;
            let line = render_line(&same);
            let parsed = parse_line(&line).expect("parses");
            let said = parsed.said.expect("in the written form");
            prop_assert_eq!(said.author, plain.as_str());
            prop_assert_eq!(said.body, Body::Text { text: &plain, edited: false });
        }
    }
}
