//! Contacts: linking a registration to its contact by e-mail (creating it if need be), and finding one.

use super::batch::{batch_errors, refused_input};
use super::{objects, HubSpotClient, SERVICE};
use crate::domain::{ContactId, Email, Identity};
use crate::ports::{Caller, ContactDetails, LinkedContact, UpstreamError};
use serde_json::{json, Value};
use std::time::Instant;

impl HubSpotClient {
    pub(super) async fn link(
        &self,
        details: &ContactDetails,
        identity: Identity,
        deadline: Instant,
    ) -> Result<LinkedContact, UpstreamError> {
        let properties = json!({
            "email": details.email.as_str(),
            "firstname": details.first_name.as_str(),
            "lastname": details.last_name.as_str(),
        });
        match identity {
            // The site vouched for the e-mail: its owner may update the names (upsert, race-free at HubSpot).
            Identity::Verified => {
                let body = json!({
                    "inputs": [{
                        "id": details.email.as_str(),
                        "idProperty": "email",
                        "properties": properties,
                    }]
                });
                let url = self.url(&format!("{}/batch/upsert", objects("contacts")));
                let attempt = |_| {
                    self.send(
                        self.http.post(&url).json(&body),
                        Caller::Registration,
                        deadline,
                    )
                };
                let response = self.backoff.retry(deadline, attempt).await?;
                // The one input refused (a validation rule of the portal on a name, say): answered, not applied.
                if let (None, Some(error)) = (
                    response.pointer("/results/0"),
                    batch_errors(&response).next(),
                ) {
                    return Err(refused_input(error));
                }
                Ok(LinkedContact {
                    id: contact_id(response.pointer("/results/0/id"))?,
                    existed: response.pointer("/results/0/new").and_then(Value::as_bool)
                        == Some(false),
                })
            }
            // Anyone could have typed the e-mail: create the contact, or link to the one that has it without writing
            // to it. HubSpot keeps e-mails unique, so concurrent creates of one e-mail end with one contact and 409s
            // naming it.
            Identity::Unverified => {
                // `associations` is required on a create, even with nothing to associate.
                let body = json!({ "properties": properties, "associations": [] });
                let url = self.url(&objects("contacts"));
                let attempt = |_| {
                    self.send(
                        self.http.post(&url).json(&body),
                        Caller::Registration,
                        deadline,
                    )
                };
                match self.backoff.retry(deadline, attempt).await {
                    Ok(created) => Ok(LinkedContact {
                        id: contact_id(created.get("id"))?,
                        existed: false,
                    }),
                    Err(UpstreamError::Rejected {
                        status: 409,
                        detail,
                        ..
                    }) => Ok(LinkedContact {
                        id: existing_contact(&detail)?,
                        existed: true,
                    }),
                    Err(error) => Err(error),
                }
            }
        }
    }

    pub(super) async fn find_by_email(
        &self,
        email: &Email,
        deadline: Instant,
    ) -> Result<Option<ContactId>, UpstreamError> {
        // The e-mail goes in a JSON body, never into the URL: a stored e-mail is what someone typed, and in a path
        // `%2e%2e/` or `?` would reach another route.
        let body = json!({
            "idProperty": "email",
            "inputs": [{ "id": email.as_str() }],
            "properties": ["email"],
            "propertiesWithHistory": [],
        });
        let request = self
            .http
            .post(self.url(&format!("{}/batch/read", objects("contacts"))))
            .json(&body);
        let found = match self.send(request, Caller::Background, deadline).await {
            Ok(found) => found,
            Err(UpstreamError::Rejected { status: 404, .. }) => return Ok(None),
            Err(error) => return Err(error),
        };
        // No contact has it: no result (HubSpot lists it under `errors` as not found).
        let Some(id) = found.pointer("/results/0/id") else {
            return Ok(None);
        };
        contact_id(Some(id)).map(Some)
    }
}

/// A contact id as HubSpot sends it (a string of digits).
fn contact_id(id: Option<&Value>) -> Result<ContactId, UpstreamError> {
    let id = id.and_then(Value::as_str).unwrap_or_default();
    ContactId::parse(id).map_err(|e| UpstreamError::Protocol {
        service: SERVICE,
        detail: format!("the answer names no contact id: {e}"),
    })
}

/// The contact a 409 names: HubSpot answers a create for a taken e-mail with `category` `CONFLICT` and the message
/// `Contact already exists. Existing ID: 123` (the id is in no other field).
fn existing_contact(message: &str) -> Result<ContactId, UpstreamError> {
    let id = message
        .split_once("Existing ID:")
        .map(|(_, rest)| {
            rest.trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .unwrap_or_default();
    ContactId::parse(&id).map_err(|_| UpstreamError::Protocol {
        service: SERVICE,
        detail: "a 409 for the contact's e-mail that names no existing contact id".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_409_names_the_existing_contact() {
        let id =
            existing_contact("Contact already exists. Existing ID: 37765128953").expect("named");
        assert_eq!(id.as_str(), "37765128953");
        for unnamed in [
            "Contact already exists.",
            "Existing ID: ",
            "Existing ID: abc",
            "",
        ] {
            assert!(
                matches!(
                    existing_contact(unnamed),
                    Err(UpstreamError::Protocol { .. })
                ),
                "{unnamed:?}"
            );
        }
    }
}
