//! Stream access: the support agent, and a visitor's token confined to its own channel.

use super::outcome::{stream_error, Outcome, SetupError};
use super::{AccessStep, Setup, STEP_BUDGET};
use std::time::Instant;
impl Setup {
    pub(super) async fn stream_access(
        &self,
        step: &AccessStep,
    ) -> Result<Vec<Outcome>, SetupError> {
        const STEP: &str = "setting up the agent and visitors' rights in Stream";
        let deadline = Instant::now() + STEP_BUDGET;
        let failed = |e| stream_error(STEP, &step.base_url, e);
        let apply = !self.dry_run;
        // First: with either check off, nothing below confines anybody.
        let checks = step
            .client
            .checks_off(step.enable_auth_checks, apply, deadline)
            .await
            .map_err(failed)?;
        if !checks.on.is_empty() && !step.enable_auth_checks {
            return Err(SetupError::AuthChecksOff(checks.on));
        }
        let agent = step
            .client
            .ensure_agent(&step.agent.id, &step.agent.name, apply, deadline)
            .await
            .map_err(failed)?;
        // Before the grants: they name the role.
        let agent_role = step
            .client
            .ensure_agent_role(apply, deadline)
            .await
            .map_err(failed)?;
        let grants = step
            .client
            .restrict_visitors(&step.channel_type, apply, deadline)
            .await
            .map_err(failed)?;
        let elsewhere = step
            .client
            .channel_creation_elsewhere(
                &step.channel_type,
                step.confine_other_types,
                apply,
                deadline,
            )
            .await
            .map_err(failed)?;
        let mut outcomes = Vec::new();
        if !checks.on.is_empty() {
            outcomes.push(Outcome::AuthChecks {
                switched_off: checks.on,
                dry_run: self.dry_run,
            });
        }
        outcomes.extend([
            Outcome::Agent {
                id: step.agent.id.as_str().to_owned(),
                change: agent,
                dry_run: self.dry_run,
            },
            Outcome::AgentRole {
                created: agent_role,
                dry_run: self.dry_run,
            },
            Outcome::VisitorGrants {
                channel_type: step.channel_type.as_str().to_owned(),
                change: grants,
                dry_run: self.dry_run,
            },
            Outcome::OtherChannelTypes {
                types: elsewhere,
                confined: step.confine_other_types,
                dry_run: self.dry_run,
            },
        ]);
        Ok(outcomes)
    }
}
