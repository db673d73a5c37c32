//! `erase`: an erasure request that arrives by e-mail (or names a HubSpot contact id), done as HubSpot's privacy
//! deletion does it: the contact's visitors hard-deleted in Stream, every item of the contact deleted here. Or an
//! agent who has left: their Stream user pruned (name and data nullified, tokens revoked), their answers kept in
//! the visitors' conversations.
//!
//! ```text
//! erase --email <address> | --contact-id <id> | --agent-subject <sub> [--dry-run]
//! ```
//! Reads `TABLE_NAME`, the Stream app (`STREAM_API_KEY`, `STREAM_API_SECRET` or `STREAM_API_SECRET_SECRET_ARN`,
//! `STREAM_BASE_URL`), for an agent `AGENT_OIDC_ISSUER` (an agent's Stream id is derived from the issuer and the
//! subject: `agent_sessions::agent_user_id_for`), and the usual AWS configuration (`AWS_PROFILE`, `AWS_REGION`;
//! `AWS_ENDPOINT_URL_DYNAMODB` for DynamoDB Local).

use chat_sync::domain::{ContactId, Email};
use chat_sync::erasure::{Erasure, ErasureError};
use chat_sync::handlers::agent_sessions::agent_user_id_for;
use chat_sync::ports::{ContactErasure, Footprint, StoreError};
use std::time::{Duration, Instant};

pub const USAGE: &str = "\
usage: erase --email <address> | --contact-id <id> | --agent-subject <sub> [--dry-run]

  Erases everything chat-sync keeps about a person: their visitors in Stream (hard-deleted with their messages
  and conversation channels) and every item of their contact in the table. Idempotent: run it again after a
  failure. The CRM's copy (the contact's chat_transcript property and timeline notes) is HubSpot's: delete the
  contact there with \"Permanently delete\" (GDPR), which also sends the same erasure here.

  An agent who has left (remove them at the identity provider first, or their next sign-in recreates the user):
  their Stream user is marked deleted and their name and data there nullified, and their Stream tokens stop
  working. Their answers stay in the visitors' conversations, whose record they are.

  --email          every contact registered here with this e-mail
  --contact-id     one HubSpot contact id
  --agent-subject  an agent's subject (`sub`) at the identity provider (Cognito: `admin-get-user`)
  --dry-run        show what would be erased; change nothing

environment: TABLE_NAME, STREAM_API_KEY, STREAM_API_SECRET (or STREAM_API_SECRET_SECRET_ARN), STREAM_BASE_URL,
             AGENT_OIDC_ISSUER (for --agent-subject, as deployed), and AWS_PROFILE / AWS_REGION
             (AWS_ENDPOINT_URL_DYNAMODB for DynamoDB Local)
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
    /// An agent's subject at the identity provider.
    Agent(String),
}

/// The longest subject taken: providers' are UUIDs or opaque ids well under it.
const MAX_SUBJECT: usize = 255;

pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let args: Vec<String> = args.into_iter().collect();
    if args.is_empty() || args.iter().any(|a| matches!(a.as_str(), "-h" | "--help")) {
        return Ok(Command::Help);
    }
    let (mut email, mut contact, mut agent, mut dry_run) = (None, None, None, false);
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
            "--agent-subject" => {
                let subject = value()?;
                if subject.trim().is_empty()
                    || subject.len() > MAX_SUBJECT
                    || subject.chars().any(char::is_control)
                {
                    return Err(format!(
                        "--agent-subject: an identity provider's subject: 1 to {MAX_SUBJECT} characters, none of \
                         them control characters"
                    ));
                }
                // A subject has no surrounding spaces; one pasted with them must find the same agent.
                agent = Some(subject.trim().to_owned())
            }
            "--dry-run" => dry_run = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let who = match (email, contact, agent) {
        (Some(email), None, None) => Who::Email(email),
        (None, Some(contact), None) => Who::Contact(contact),
        (None, None, Some(subject)) => Who::Agent(subject),
        _ => return Err("give exactly one of --email, --contact-id or --agent-subject".into()),
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
    #[error("agent: {0}")]
    Agent(ErasureError),
    /// The command cannot run as configured (exit 2, as for wrong arguments).
    #[error("{0}")]
    Config(String),
}

fn describe(contact: &ContactId, footprint: &Footprint) -> String {
    format!(
        "contact {contact}: {} item(s) in the table, {} conversation(s), {} Stream visitor(s)",
        footprint.items,
        footprint.channels.len(),
        footprint.visitors.len()
    )
}

/// Erases the agent `subject` names at the identity provider `agent_issuer` (`Erasure::erase_agent`).
async fn erase_agent(
    subject: &str,
    dry_run: bool,
    erasure: &Erasure,
    agent_issuer: Option<&str>,
) -> Result<String, EraseError> {
    let issuer = agent_issuer
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .ok_or_else(|| {
            EraseError::Config(
                "AGENT_OIDC_ISSUER is needed to find an agent's Stream user: the issuer the agent console signs \
                 in with, exactly as deployed"
                    .into(),
            )
        })?;
    let agent = agent_user_id_for(issuer, subject);
    let found = erasure
        .erase_agent(&agent, dry_run, Instant::now() + STREAM_BUDGET)
        .await
        .map_err(EraseError::Agent)?;
    Ok(match (found, dry_run) {
        // Stream may not list a user it has pruned already: a rerun lands here too.
        (false, _) => format!(
            "Stream has no user {agent} for this agent (erased already, or check --agent-subject and \
             AGENT_OIDC_ISSUER): nothing erased\n"
        ),
        (true, true) => {
            format!("would erase agent {agent} in Stream: their name and data there; their answers stay\n")
        }
        (true, false) => {
            format!("erased agent {agent} in Stream: their name and data there; their answers stay\n")
        }
    })
}

/// Runs the command; returns what to print. Nothing is printed of the data itself (no e-mail, name or text).
/// `agent_issuer` is `AGENT_OIDC_ISSUER`, needed only to erase an agent.
pub async fn run(
    command: &Command,
    store: &dyn ContactErasure,
    erasure: &Erasure,
    agent_issuer: Option<&str>,
) -> Result<String, EraseError> {
    let Command::Erase { who, dry_run } = command else {
        return Ok(USAGE.to_owned());
    };
    let contacts = match who {
        Who::Contact(contact) => vec![contact.clone()],
        Who::Email(email) => store.contacts_with_email(email).await?,
        Who::Agent(subject) => return erase_agent(subject, *dry_run, erasure, agent_issuer).await,
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
