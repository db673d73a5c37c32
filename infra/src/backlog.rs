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
    let args: Vec<String> = args.into_iter().collect();
    let value = |name: &str| -> Result<Option<&str>, String> {
        match args.iter().position(|a| a == name) {
            Some(i) => args
                .get(i + 1)
                .map(|v| Some(v.as_str()))
                .ok_or_else(|| format!("{name} needs a value")),
            None => Ok(None),
        }
    };
    match args.first().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => Ok(Command::Help),
        Some("list") => {
            let limit = match value("--limit")? {
                Some(raw) => raw
                    .parse()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| format!("--limit must be 1 to 10000, got {raw:?}"))?,
                None => 100,
            };
            Ok(Command::List { limit })
        }
        Some("requeue") => match (value("--contact")?, args.iter().any(|a| a == "--all")) {
            (Some(id), false) => ContactId::parse(id)
                .map(|id| Command::Requeue(Target::Contact(id)))
                .map_err(|e| format!("--contact: {e}")),
            (None, true) => Ok(Command::Requeue(Target::AllParked)),
            _ => Err("requeue takes --contact <id> or --all".into()),
        },
        Some(other) => Err(format!("unknown command {other:?}")),
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
