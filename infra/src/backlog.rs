//! `backlog`: which contacts' transcripts are behind HubSpot or parked, since when and why; and re-queueing them.
//!
//! ```text
//! backlog list [--limit N]
//! backlog requeue --contact <id> | --all
//! ```
//! Reads `TABLE_NAME` and the usual AWS configuration (`AWS_PROFILE`, `AWS_REGION`; `AWS_ENDPOINT_URL_DYNAMODB`
//! for DynamoDB Local). Re-queued contacts are written by the next flusher (the next webhook or sweep).

use chat_sync::domain::ContactId;
use chat_sync::ports::{BacklogEntry, StoreError, SyncQueue};

pub const USAGE: &str = "\
usage: backlog list [--limit N]
       backlog requeue --contact <id> | --all

  list      contacts whose transcript is behind HubSpot (waiting in the queue) or parked (taken out of the
            queue for good: deleted in HubSpot, or HubSpot refuses the write), with since when and why
  requeue   puts one parked or waiting contact, or every parked one, at the back of the queue
  --limit   at most N entries of each kind (default 100)

environment: TABLE_NAME, and AWS_PROFILE / AWS_REGION (AWS_ENDPOINT_URL_DYNAMODB for DynamoDB Local)
";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    List { limit: usize },
    Requeue(Target),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Contact(ContactId),
    AllParked,
}

pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = args.into_iter();
    // The command first, named once: what follows is checked against it.
    #[derive(Clone, Copy)]
    enum Verb {
        List,
        Requeue,
        Help,
    }
    let (verb, name) = match args.next().as_deref() {
        None => return Ok(Command::Help),
        Some("list") => (Verb::List, "list"),
        Some("requeue") => (Verb::Requeue, "requeue"),
        Some("-h" | "--help" | "help") => (Verb::Help, "help"),
        Some(other) => return Err(format!("unknown command {other:?}")),
    };
    // Every argument after the command must be one of its own: an operator's typo (`--limt`, `--al`) is an
    // error naming it, never the command run without it.
    let (mut limit, mut contact, mut all) = (None, None, false);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match (verb, arg.as_str()) {
            (_, "-h" | "--help") => return Ok(Command::Help),
            (Verb::List, "--limit") => {
                let raw = value("--limit")?;
                limit = Some(
                    raw.parse()
                        .ok()
                        .filter(|n| (1..=10_000).contains(n))
                        .ok_or_else(|| format!("--limit must be 1 to 10000, got {raw:?}"))?,
                );
            }
            (Verb::Requeue, "--contact") => {
                let raw = value("--contact")?;
                contact = Some(ContactId::parse(&raw).map_err(|e| format!("--contact: {e}"))?);
            }
            (Verb::Requeue, "--all") => all = true,
            (_, other) => return Err(format!("unknown argument {other:?} for {name}")),
        }
    }
    match verb {
        Verb::List => Ok(Command::List {
            limit: limit.unwrap_or(100),
        }),
        Verb::Requeue => match (contact, all) {
            (Some(id), false) => Ok(Command::Requeue(Target::Contact(id))),
            (None, true) => Ok(Command::Requeue(Target::AllParked)),
            _ => Err("requeue takes --contact <id> or --all".into()),
        },
        Verb::Help => Ok(Command::Help),
    }
}

/// One line per entry: contact, state, since, why.
pub fn format_entries(entries: &[BacklogEntry]) -> String {
    if entries.is_empty() {
        return "nothing behind: every transcript is in HubSpot\n".into();
    }
    let mut out = format!("{:<14} {:<8} {:<22} why\n", "contact", "state", "since");
    for entry in entries {
        let (state, why) = match &entry.parked {
            Some(reason) => ("parked", reason.as_str()),
            None => ("behind", "waiting for the next flush"),
        };
        out.push_str(&format!(
            "{:<14} {:<8} {:<22} {why}\n",
            entry.contact.as_str(),
            state,
            entry.since.rfc3339()
        ));
    }
    out
}

/// Runs a command against the store; returns what to print.
pub async fn run(command: &Command, store: &dyn SyncQueue) -> Result<String, StoreError> {
    match command {
        Command::Help => Ok(USAGE.to_owned()),
        Command::List { limit } => Ok(format_entries(&store.backlog(*limit).await?)),
        Command::Requeue(Target::Contact(contact)) => Ok(if store.requeue(contact).await? {
            format!("re-queued contact {contact}\n")
        } else {
            format!("contact {contact} has no chat history here; nothing to re-queue\n")
        }),
        Command::Requeue(Target::AllParked) => {
            let mut count = 0;
            loop {
                let parked: Vec<ContactId> = store
                    .backlog(1_000)
                    .await?
                    .into_iter()
                    .filter(|entry| entry.parked.is_some())
                    .map(|entry| entry.contact)
                    .collect();
                if parked.is_empty() {
                    break;
                }
                for contact in &parked {
                    store.requeue(contact).await?;
                }
                count += parked.len();
            }
            Ok(format!("re-queued {count} parked contact(s)\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, String> {
        parse_args(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn the_commands_as_the_usage_writes_them() {
        assert_eq!(parse(""), Ok(Command::Help));
        assert_eq!(parse("help"), Ok(Command::Help));
        assert_eq!(parse("list --help"), Ok(Command::Help));
        assert_eq!(parse("list"), Ok(Command::List { limit: 100 }));
        assert_eq!(parse("list --limit 5"), Ok(Command::List { limit: 5 }));
        assert_eq!(
            parse("requeue --all"),
            Ok(Command::Requeue(Target::AllParked))
        );
        let contact = ContactId::parse("1001").expect("a contact id");
        assert_eq!(
            parse("requeue --contact 1001"),
            Ok(Command::Requeue(Target::Contact(contact)))
        );
    }

    #[test]
    fn an_argument_the_command_does_not_take_is_an_error_naming_it() {
        for (line, says) in [
            ("list --limt 5", "unknown argument \"--limt\" for list"),
            ("list --all", "unknown argument \"--all\" for list"),
            ("requeue --al", "unknown argument \"--al\" for requeue"),
            (
                "requeue --contact 1001 --limit 5",
                "unknown argument \"--limit\" for requeue",
            ),
            ("lst --limit 5", "unknown command \"lst\""),
            ("list --limit", "--limit needs a value"),
            ("list --limit 0", "--limit must be 1 to 10000"),
            ("requeue", "--contact <id> or --all"),
            ("requeue --contact 1001 --all", "--contact <id> or --all"),
        ] {
            let problem = parse(line).expect_err(line);
            assert!(problem.contains(says), "{line:?}: {problem}");
        }
    }
}
