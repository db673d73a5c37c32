//! Every route the double serves, by name, and the OAuth scopes each one needs: the one route → scope table.
//!
//! A route's name keys [`crate::faults::Faults`], `call_count` and the recorder. Its scopes are checked only when a
//! test has narrowed the app's grant ([`Grant::set`]); by default the app holds every scope. HubSpot gates notes
//! (engagements) with the contact scopes for private apps, so the notes routes need the same scopes as contacts.

use super::errors::{missing_scopes, HsError};
use crate::support::lock;
use std::collections::BTreeSet;
use std::sync::Mutex;

const CONTACTS_READ: &str = "crm.objects.contacts.read";
const CONTACTS_WRITE: &str = "crm.objects.contacts.write";
const CONTACT_SCHEMAS_READ: &str = "crm.schemas.contacts.read";
const CONTACT_SCHEMAS_WRITE: &str = "crm.schemas.contacts.write";

/// A route of the double (the unrouted answers, `not_found` and `method_not_allowed`, are not routes: they need
/// no token and no scope).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Route {
    Upsert,
    CreateContact,
    GetContact,
    ListContacts,
    PatchContact,
    BatchUpdate,
    BatchRead,
    CreateProperty,
    GetProperty,
    NotesCreate,
    NotesUpdate,
    NotesGet,
    NotesBatchCreate,
    NotesBatchUpdate,
    NotesBatchRead,
    ContactNotes,
}

impl Route {
    /// The name tests use for faults and call counts.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Upsert => "upsert",
            Self::CreateContact => "create_contact",
            Self::GetContact => "get_contact",
            Self::ListContacts => "list_contacts",
            Self::PatchContact => "patch_contact",
            Self::BatchUpdate => "batch_update",
            Self::BatchRead => "batch_read",
            Self::CreateProperty => "create_property",
            Self::GetProperty => "get_property",
            Self::NotesCreate => "notes_create",
            Self::NotesUpdate => "notes_update",
            Self::NotesGet => "notes_get",
            Self::NotesBatchCreate => "notes_batch_create",
            Self::NotesBatchUpdate => "notes_batch_update",
            Self::NotesBatchRead => "notes_batch_read",
            Self::ContactNotes => "contact_notes",
        }
    }

    /// The scopes a call to this route needs, all of them.
    fn required_scopes(self) -> &'static [&'static str] {
        match self {
            Self::GetContact | Self::ListContacts | Self::BatchRead => &[CONTACTS_READ],
            Self::NotesGet | Self::NotesBatchRead | Self::ContactNotes => &[CONTACTS_READ],
            Self::Upsert | Self::CreateContact | Self::PatchContact | Self::BatchUpdate => {
                &[CONTACTS_WRITE]
            }
            Self::NotesCreate
            | Self::NotesUpdate
            | Self::NotesBatchCreate
            | Self::NotesBatchUpdate => &[CONTACTS_WRITE],
            Self::CreateProperty => &[CONTACT_SCHEMAS_WRITE],
            Self::GetProperty => &[CONTACT_SCHEMAS_READ],
        }
    }
}

/// The scopes granted to the app; `None` grants every scope (the default).
#[derive(Default)]
pub(super) struct Grant(Mutex<Option<BTreeSet<String>>>);

impl Grant {
    pub(super) fn set(&self, scopes: Option<Vec<String>>) {
        *lock(&self.0) = scopes.map(|scopes| scopes.into_iter().collect());
    }

    /// HubSpot's 403 naming the scopes `route` needs that the app was not granted.
    pub(super) fn check(&self, route: Route) -> Result<(), HsError> {
        let grant = lock(&self.0);
        let Some(granted) = grant.as_ref() else {
            return Ok(());
        };
        let missing: Vec<&str> = route
            .required_scopes()
            .iter()
            .copied()
            .filter(|scope| !granted.contains(*scope))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing_scopes(&missing))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_is_granted_until_the_grant_is_narrowed() {
        let grant = Grant::default();
        assert!(grant.check(Route::NotesCreate).is_ok());
        grant.set(Some(vec![CONTACTS_READ.to_owned()]));
        assert!(grant.check(Route::NotesGet).is_ok());
        assert!(grant.check(Route::ContactNotes).is_ok());
        assert!(grant.check(Route::NotesCreate).is_err());
        assert!(grant.check(Route::GetProperty).is_err());
        grant.set(None);
        assert!(grant.check(Route::CreateProperty).is_ok());
    }
}
