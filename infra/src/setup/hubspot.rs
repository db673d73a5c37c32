//! HubSpot: the transcript property, and the app's scopes.

use super::outcome::{hubspot_error, Outcome, SetupError};
use super::{HubSpotStep, Setup, STEP_BUDGET};
use std::time::Instant;
impl Setup {
    /// Checks the token's scopes with requests that change nothing (so also in a dry run).
    pub(super) async fn scopes(&self, hubspot: &HubSpotStep) -> Result<Outcome, SetupError> {
        const STEP: &str = "checking the HubSpot app's scopes";
        let missing = hubspot
            .client
            .missing_scopes(Instant::now() + STEP_BUDGET)
            .await
            .map_err(|e| hubspot_error(STEP, &hubspot.base_url, e))?;
        if missing.is_empty() {
            Ok(Outcome::ScopesPresent)
        } else {
            Err(SetupError::MissingScopes(missing))
        }
    }

    pub(super) async fn transcript_property(
        &self,
        hubspot: &HubSpotStep,
    ) -> Result<Outcome, SetupError> {
        const STEP: &str = "creating the HubSpot property";
        let deadline = Instant::now() + STEP_BUDGET;
        let failed = |e| hubspot_error(STEP, &hubspot.base_url, e);
        if self.dry_run {
            let exists = hubspot
                .client
                .transcript_property_exists(deadline)
                .await
                .map_err(failed)?;
            return Ok(if exists {
                Outcome::PropertyAlreadyThere
            } else {
                Outcome::PropertyWouldBeCreated
            });
        }
        let created = hubspot
            .client
            .ensure_transcript_property(deadline)
            .await
            .map_err(failed)?;
        Ok(if created {
            Outcome::PropertyCreated
        } else {
            Outcome::PropertyAlreadyThere
        })
    }
}
