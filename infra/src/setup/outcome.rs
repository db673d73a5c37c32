//! What a step reports: what it did or found (an [`Outcome`]), or why setup failed (a [`SetupError`], which says
//! what to check and holds no secret).

use chat_sync::adapters::hubspot::{REQUIRED_SCOPES, TRANSCRIPT_PROPERTY};
use chat_sync::adapters::stream_access::{
    AgentChange, GrantsChange, AGENT_ROLE, AGENT_ROLE_ON_CREATION,
};
use chat_sync::config::ConfigError;
use chat_sync::ports::UpstreamError;
use std::fmt;

/// Why setup failed; every message says what to check and none contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "HubSpot rejected the access token ({status}): check HUBSPOT_ACCESS_TOKEN and the app's scopes {}",
        REQUIRED_SCOPES.join(", ")
    )]
    HubSpotCredentials { status: u16 },
    #[error(
        "Stream rejected the credentials ({status}): check STREAM_API_KEY and STREAM_API_SECRET (the app's server-side \
         key and secret)"
    )]
    StreamCredentials { status: u16 },
    // An operator's terminal, not a log: the service's own words help here.
    #[error("{step} failed ({at}): {source}{}", source.detail().map(|d| format!(": {d}")).unwrap_or_default())]
    Upstream {
        step: &'static str,
        /// The base URL, so a wrong HUBSPOT_BASE_URL / STREAM_BASE_URL shows.
        at: String,
        source: UpstreamError,
    },
    #[error(
        "the HubSpot app lacks the scopes chat-sync needs: {}. It needs {}: the project's app gets them by \
         `make hubspot-upload hubspot-install` (hubspot/ lists them), a legacy private app in its settings (Scopes); \
         then run setup again. Notes are written with the contact scopes, and TRANSCRIPT_TARGETS=property writes none",
        .0.join(", "),
        REQUIRED_SCOPES.join(", ")
    )]
    MissingScopes(Vec<String>),
    #[error("Stream's app settings are not what setup expects: {0}")]
    UnexpectedSettings(String),
    #[error(
        "the Stream app has {} switched on: anyone holding the public API key can connect as any user (the support \
         agent included) or ignore every grant, so visitors are not confined. Run setup --stream-access \
         --enable-auth-checks to switch {} off (PATCH /app), or switch it off in Stream's dashboard",
        .0.join(" and "),
        if .0.len() == 1 { "it" } else { "them" }
    )]
    AuthChecksOff(Vec<&'static str>),
    #[error("DynamoDB at {endpoint} failed ({detail}): is DynamoDB Local running there?")]
    DynamoDb { endpoint: String, detail: String },
}

pub(super) fn hubspot_error(step: &'static str, at: &str, error: UpstreamError) -> SetupError {
    match error {
        UpstreamError::Rejected {
            status: status @ (401 | 403),
            ..
        } => SetupError::HubSpotCredentials { status },
        source => SetupError::Upstream {
            step,
            at: at.to_owned(),
            source,
        },
    }
}

pub(super) fn stream_error(step: &'static str, at: &str, error: UpstreamError) -> SetupError {
    match error {
        UpstreamError::Rejected {
            status: status @ (401 | 403),
            ..
        } => SetupError::StreamCredentials { status },
        source => SetupError::Upstream {
            step,
            at: at.to_owned(),
            source,
        },
    }
}

/// How Stream delivers webhooks to this app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookMode {
    /// `event_hooks`: a list of hooks (newer apps).
    EventHooks,
    /// The single `webhook_url` setting (older apps).
    Legacy,
}

impl fmt::Display for HookMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HookMode::EventHooks => "event_hooks",
            HookMode::Legacy => "webhook_url",
        })
    }
}

/// What one step found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The token has every scope the transcripts (property and notes) need.
    ScopesPresent,
    PropertyCreated,
    PropertyAlreadyThere,
    PropertyWouldBeCreated,
    WebhookSet {
        url: String,
        mode: HookMode,
    },
    WebhookWouldBeSet {
        url: String,
        mode: HookMode,
    },
    WebhookAlreadyConfigured {
        url: String,
    },
    TableCreated {
        table: String,
    },
    TableAlreadyThere {
        table: String,
    },
    TableWouldBeCreated {
        table: String,
    },
    /// The support agent: created, renamed or left as it was (or what a dry run would do).
    Agent {
        id: String,
        change: AgentChange,
        dry_run: bool,
    },
    /// The Stream role agents signed in through the identity provider get (`AGENT_ROLE`): created, or there.
    AgentRole {
        created: bool,
        dry_run: bool,
    },
    /// The visitor's grants on the channel type and app-wide.
    VisitorGrants {
        channel_type: String,
        change: GrantsChange,
        dry_run: bool,
    },
    /// The app's other channel types on which a visitor's token could create channels (Stream's defaults), and
    /// whether that was taken from it (`--confine-other-types`).
    OtherChannelTypes {
        types: Vec<String>,
        confined: bool,
        dry_run: bool,
    },
    /// Stream's `disable_auth_checks` / `disable_permissions_checks` were on and are switched off
    /// (`--enable-auth-checks`).
    AuthChecks {
        switched_off: Vec<&'static str>,
        dry_run: bool,
    },
    /// Something the operator should look at; nothing was changed because of it.
    Note(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::ScopesPresent => write!(
                f,
                "HubSpot: the app has the scopes contacts, notes and their associations need"
            ),
            Outcome::PropertyCreated => write!(
                f,
                "HubSpot: created the contact property {TRANSCRIPT_PROPERTY}"
            ),
            Outcome::PropertyAlreadyThere => {
                write!(
                    f,
                    "HubSpot: the contact property {TRANSCRIPT_PROPERTY} is already there"
                )
            }
            Outcome::PropertyWouldBeCreated => {
                write!(
                    f,
                    "HubSpot: would create the contact property {TRANSCRIPT_PROPERTY}"
                )
            }
            Outcome::WebhookSet { url, mode } => {
                write!(f, "Stream: webhook set to {url} (via {mode})")
            }
            Outcome::WebhookWouldBeSet { url, mode } => {
                write!(f, "Stream: would set the webhook to {url} (via {mode})")
            }
            Outcome::WebhookAlreadyConfigured { url } => {
                write!(f, "Stream: the webhook {url} is already configured")
            }
            Outcome::TableCreated { table } => write!(f, "DynamoDB Local: created table {table}"),
            Outcome::TableAlreadyThere { table } => {
                write!(
                    f,
                    "DynamoDB Local: table {table} is already there (left as it is)"
                )
            }
            Outcome::TableWouldBeCreated { table } => {
                write!(f, "DynamoDB Local: would create table {table}")
            }
            Outcome::Agent {
                id,
                change,
                dry_run,
            } => {
                let would = if *dry_run { "would be " } else { "" };
                match change {
                    AgentChange::Created => write!(
                        f,
                        "Stream: the support agent {id} {would}created (role {AGENT_ROLE_ON_CREATION}; promote it in                          Stream's dashboard if it needs more, setup never changes it)"
                    ),
                    AgentChange::Renamed => write!(
                        f,
                        "Stream: the support agent {id}'s name {would}updated (its role and profile are kept)"
                    ),
                    AgentChange::Unchanged => {
                        write!(f, "Stream: the support agent {id} is already there")
                    }
                }
            }
            Outcome::AgentRole { created, dry_run } => {
                let would = if *dry_run { "would be " } else { "" };
                if *created {
                    write!(
                        f,
                        "Stream: the agents' role {AGENT_ROLE} {would}created (it reads and writes the chat-sync \
                         channel type only)"
                    )
                } else {
                    write!(f, "Stream: the agents' role {AGENT_ROLE} is already there")
                }
            }
            Outcome::VisitorGrants {
                channel_type,
                change,
                dry_run,
            } => {
                let would = if *dry_run { "would be " } else { "" };
                let mut changed = Vec::new();
                if change.channel_type {
                    changed.push(format!("the {channel_type} channel type's grants"));
                }
                if change.app {
                    changed.push("the app-wide grants".to_owned());
                }
                if changed.is_empty() {
                    write!(
                        f,
                        "Stream: visitors are already confined to their own channels ({channel_type} and app grants)"
                    )
                } else {
                    write!(
                        f,
                        "Stream: {} {would}set so a visitor reads and writes only its own channel",
                        changed.join(" and ")
                    )
                }
            }
            Outcome::OtherChannelTypes { types, .. } if types.is_empty() => write!(
                f,
                "Stream: no other channel type lets a visitor's token create channels"
            ),
            Outcome::OtherChannelTypes {
                types,
                confined: true,
                dry_run,
            } => {
                let would = if *dry_run { "would be " } else { "" };
                write!(
                    f,
                    "Stream: channel creation {would}taken from visitors on the other channel types too: {}",
                    types.join(", ")
                )
            }
            Outcome::OtherChannelTypes { types, .. } => write!(
                f,
                "Stream: a visitor's token may still create channels of the other types {} (Stream's defaults); \
                 if this Stream app serves only chat-sync, run again with --confine-other-types",
                types.join(", ")
            ),
            Outcome::AuthChecks {
                switched_off,
                dry_run: false,
            } => write!(
                f,
                "Stream: switched {} off: tokens must be signed with the app secret and grants apply again",
                switched_off.join(" and ")
            ),
            Outcome::AuthChecks {
                switched_off,
                dry_run: true,
            } => write!(
                f,
                "Stream: would switch {} off (dry run)",
                switched_off.join(" and ")
            ),
            Outcome::Note(note) => write!(f, "note: {note}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_errors_name_what_to_check() {
        let rejected = |status| UpstreamError::Rejected {
            service: "HubSpot",
            status,
            detail: "Authentication credentials not found".into(),
        };
        let message = hubspot_error("x", "http://h", rejected(401)).to_string();
        assert!(
            message
                .starts_with("HubSpot rejected the access token (401): check HUBSPOT_ACCESS_TOKEN"),
            "{message}"
        );
        assert!(message.contains("crm.schemas.contacts.write"), "{message}");
        assert!(stream_error("x", "http://s", rejected(403))
            .to_string()
            .contains("STREAM_API_SECRET"));
        assert!(matches!(
            hubspot_error("x", "http://h", rejected(400)),
            SetupError::Upstream { .. }
        ));
    }
}
