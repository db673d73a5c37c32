//! What a call to HubSpot or Stream can fail with.

use std::time::Duration;

/// Why a call to HubSpot or Stream failed, classified by what the caller can do about it.
///
/// `detail` holds the service's own words, and those can quote what was sent (HubSpot's messages quote the e-mail
/// of a contact, or the start of a refused value: names and message text). So the error's `Display`, which is what
/// logs show, names the service, the kind and the status only; `detail` goes where it is needed and kept private
/// (a parked contact's reason, read with `backlog`), never into a log line.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// Rate limited (429), or our shared rate budget had no permit in time (then nothing was sent): `retry_after`
    /// is the wait, if known. `daily` means the daily quota is gone and retrying today is pointless.
    #[error("{service} rate limited the request")]
    RateLimited {
        service: &'static str,
        retry_after: Option<Duration>,
        daily: bool,
    },
    /// 408, 423, no connection, or no time left to send: the request was not applied. Worth retrying.
    #[error("{service} is unavailable")]
    Unavailable {
        service: &'static str,
        detail: String,
    },
    /// The request was sent but no answer came in time: it may or may not have been applied.
    #[error("{service} did not answer in time")]
    Timeout { service: &'static str },
    /// A 5xx, or the connection broke after the request was sent: it may or may not have been applied, now or
    /// later (a gateway error can hide a write still in flight).
    #[error("{service} failed (the request may have been applied)")]
    Indeterminate {
        service: &'static str,
        detail: String,
    },
    /// A 4xx that retrying will not fix (bad token, invalid data, ...).
    #[error("{service} rejected the request with {status}")]
    Rejected {
        service: &'static str,
        status: u16,
        detail: String,
    },
    /// 2xx with a body we could not understand.
    #[error("{service} sent an unexpected response")]
    Protocol {
        service: &'static str,
        detail: String,
    },
}

impl UpstreamError {
    /// The service's own words about the failure, if it said any (see the type's docs: never for a log line).
    pub fn detail(&self) -> Option<&str> {
        match self {
            UpstreamError::Unavailable { detail, .. }
            | UpstreamError::Indeterminate { detail, .. }
            | UpstreamError::Rejected { detail, .. }
            | UpstreamError::Protocol { detail, .. } => Some(detail),
            UpstreamError::RateLimited { .. } | UpstreamError::Timeout { .. } => None,
        }
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            UpstreamError::RateLimited { daily, .. } => !daily,
            UpstreamError::Unavailable { .. }
            | UpstreamError::Timeout { .. }
            | UpstreamError::Indeterminate { .. } => true,
            UpstreamError::Rejected { .. } | UpstreamError::Protocol { .. } => false,
        }
    }

    /// Whether the request may have been applied although it did not succeed: a write with this outcome can
    /// still land later, so nothing written after it may be trusted until it no longer can (see `sync`).
    pub fn may_have_landed(&self) -> bool {
        match self {
            UpstreamError::Timeout { .. }
            | UpstreamError::Indeterminate { .. }
            | UpstreamError::Protocol { .. } => true,
            UpstreamError::RateLimited { .. }
            | UpstreamError::Unavailable { .. }
            | UpstreamError::Rejected { .. } => false,
        }
    }

    /// The wait the service asked for before the next attempt, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            UpstreamError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
