//! HubSpot CRM client: private-app Bearer token, contacts linked by e-mail, batched transcript writes. Every
//! request first takes a permit from the app's shared rate budget and reports what HubSpot said about the limit.
//!
//! Every path is date-versioned ([`API_VERSION`], built by [`objects`], [`properties`] and [`associations`]: the
//! version is spelled nowhere else), and every request body carries what that version's published documents mark
//! required (`associations` on a create, `propertiesWithHistory` on a batch read), even where it is empty.
//!
//! A batch write or read is answered as a whole (2xx) with one outcome per input: the inputs in `results` were
//! applied, and each input named in an `errors` entry's `context.ids` was not, for that entry's reason
//! (`OBJECT_NOT_FOUND`, or a `VALIDATION_ERROR` from one of the portal's validation rules). The 2026-09 documents
//! list that answer as a 200 where earlier versions listed a 207: the status is not what is read, the body is.
//!
//! By concept: `client` sends (the token, the rate budget, the time left) and reads HubSpot's rate-limit answers;
//! `batch` reads batch answers; `contacts`, `transcripts` and `notes` hold what the [`Crm`](crate::ports::Crm) port
//! asks of each, and `crm` wires the port to them; `access` checks the app's scopes.

mod access;
mod batch;
mod client;
mod contacts;
mod crm;
mod notes;
mod transcripts;

pub use client::{budget_error, HubSpotClient};

/// How errors name the service.
const SERVICE: &str = "HubSpot";

/// The one place the API version lives. HubSpot replaced its v3 and v4 CRM paths with date-based versions (v4, which
/// lists a contact's notes, loses support on 2027-03-30, v3 in Sept 2027); from `2026-09` on, writes are also checked
/// against the portal's validation rules.
pub const API_VERSION: &str = "2026-09";

/// `/crm/objects/{version}/{object}`: an object type's records (`contacts`, `notes`); append `/{id}` or `/batch/...`.
pub fn objects(object: &str) -> String {
    format!("/crm/objects/{API_VERSION}/{object}")
}

/// `/crm/properties/{version}/{object}`: an object type's property definitions; append `/{name}` for one.
pub fn properties(object: &str) -> String {
    format!("/crm/properties/{API_VERSION}/{object}")
}

/// `/crm/associations/{version}/{from}/{to}`: associations from one object type to another; append `/batch/read`.
pub fn associations(from: &str, to: &str) -> String {
    format!("/crm/associations/{API_VERSION}/{from}/{to}")
}

/// HubSpot's association type "note to contact".
pub const NOTE_TO_CONTACT: u32 = 202;

/// The contact property that holds the transcript (created by `infra setup`).
pub const TRANSCRIPT_PROPERTY: &str = "chat_transcript";

/// Every OAuth scope chat-sync uses, the one list: the HubSpot app's `requiredScopes` in
/// `hubspot/src/app/app-hsmeta.json` must be exactly these (a test in `infra/tests/infra/template/` holds them equal).
/// Contacts read and write: contacts, the notes on their timeline and the notes' associations (HubSpot gates notes
/// with the contact scopes). The contact schemas' read and write: only `setup --hubspot`, which reads
/// [`TRANSCRIPT_PROPERTY`]'s definition and creates it if it is missing.
pub const REQUIRED_SCOPES: &[&str] = &[
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.schemas.contacts.read",
    "crm.schemas.contacts.write",
];

pub const DEFAULT_BASE_URL: &str = "https://api.hubapi.com";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_carries_the_one_version() {
        assert_eq!(objects("contacts"), "/crm/objects/2026-09/contacts");
        assert_eq!(properties("contacts"), "/crm/properties/2026-09/contacts");
        assert_eq!(
            associations("contacts", "notes"),
            "/crm/associations/2026-09/contacts/notes"
        );
    }
}
