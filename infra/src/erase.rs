//! `erase`: an erasure request that arrives by e-mail (or names a HubSpot contact id), done as HubSpot's privacy
//! deletion does it: the contact's visitors hard-deleted in Stream, every item of the contact deleted here.
//!
//! ```text
//! erase --email <address> | --contact-id <id> [--dry-run]
//! ```
//! Reads `TABLE_NAME`, the Stream app (`STREAM_API_KEY`, `STREAM_API_SECRET` or `STREAM_API_SECRET_SECRET_ARN`,
//! `STREAM_BASE_URL`) and the usual AWS configuration (`AWS_PROFILE`, `AWS_REGION`; `AWS_ENDPOINT_URL_DYNAMODB` for
//! DynamoDB Local).

use chat_sync::domain::{ContactId, Email};
use chat_sync::erasure::{Erasure, ErasureError};
use chat_sync::ports::{ContactErasure, Footprint, StoreError};
use std::time::{Duration, Instant};

pub const USAGE: &str = "\
usage: erase --email <address> | --contact-id <id> [--dry-run]

  Erases everything chat-sync keeps about a person: their visitors in Stream (hard-deleted with their messages
  and conversation channels) and every item of their contact in the table. Idempotent: run it again after a
  failure. The CRM's copy (the contact's chat_transcript property and timeline notes) is HubSpot's: delete the
  contact there with \"Permanently delete\" (GDPR), which also sends the same erasure here.

  --email       every contact registered here with this e-mail
  --contact-id  one HubSpot contact id
  --dry-run     show what would be erased; change nothing

environment: TABLE_NAME, STREAM_API_KEY, STREAM_API_SECRET (or STREAM_API_SECRET_SECRET_ARN), STREAM_BASE_URL,
             and AWS_PROFILE / AWS_REGION (AWS_ENDPOINT_URL_DYNAMODB for DynamoDB Local)
";

/// Time for Stream to delete one contact's visitors.
const STREAM_BUDGET: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Erase { who: Who, dry_run: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Email(Email),
    Contact(ContactId),
}

pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let args: Vec<String> = args.into_iter().collect();
    if args.is_empty() || args.iter().any(|a| matches!(a.as_str(), "-h" | "--help")) {
        return Ok(Command::Help);
    }
    let (mut email, mut contact, mut dry_run) = (None, None, false);
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let mut value = || {
            rest.next()
                .map(String::as_str)
                .ok_or_else(|| format!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--email" => email = Some(Email::parse(value()?).map_err(|e| format!("--email: {e}"))?),
            "--contact-id" => {
                contact =
                    Some(ContactId::parse(value()?).map_err(|e| format!("--contact-id: {e}"))?)
            }
            "--dry-run" => dry_run = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let who = match (email, contact) {
        (Some(email), None) => Who::Email(email),
        (None, Some(contact)) => Who::Contact(contact),
        _ => return Err("give exactly one of --email or --contact-id".into()),
    };
    Ok(Command::Erase { who, dry_run })
}

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error(transparent)]
    Storage(#[from] StoreError),
    #[error("contact {contact}: {source}")]
    Erasure {
        contact: ContactId,
        source: ErasureError,
    },
}

fn describe(contact: &ContactId, footprint: &Footprint) -> String {
    format!(
        "contact {contact}: {} item(s) in the table, {} conversation(s), {} Stream visitor(s)",
        footprint.items,
        footprint.channels.len(),
        footprint.visitors.len()
    )
}

/// Runs the command; returns what to print. Nothing is printed of the data itself (no e-mail, name or text).
pub async fn run(
    command: &Command,
    store: &dyn ContactErasure,
    erasure: &Erasure,
) -> Result<String, EraseError> {
    let Command::Erase { who, dry_run } = command else {
        return Ok(USAGE.to_owned());
    };
    let contacts = match who {
        Who::Contact(contact) => vec![contact.clone()],
        Who::Email(email) => store.contacts_with_email(email).await?,
    };
    let mut out = String::new();
    for contact in &contacts {
        if *dry_run {
            let footprint = erasure.footprint(contact).await?;
            out.push_str(&format!("would erase {}\n", describe(contact, &footprint)));
            continue;
        }
        let footprint = erasure
            .erase(contact, Instant::now() + STREAM_BUDGET)
            .await
            .map_err(|source| EraseError::Erasure {
                contact: contact.clone(),
                source,
            })?;
        out.push_str(&format!("erased {}\n", describe(contact, &footprint)));
    }
    if contacts.is_empty() {
        out.push_str("nothing is stored here for it\n");
    }
    Ok(out)
}
