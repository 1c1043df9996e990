//! Contribution-tracking commands: tracking data recorded against an id, a contribution
//! linked to it.

use std::collections::HashMap;

use super::error::invalid_if_any;
use super::{Intake, IntakeError, Method, Plan, RequestMeta};
use crate::domain::commands;
use crate::domain::contribution_tracking::{ContributionTrackingFields, ContributionTrackingState};
use crate::domain::streams;
use crate::domain::validation::{validate_id, validate_tracking_record};
use crate::domain::DomainError;
use crate::proto::api;
use crate::sequence::SequenceName;

impl Intake {
    /// Tracking data for a contribution-tracking id. Tracking data from a second allocation of
    /// the id (another allocation token: the sequence generator handed it out twice) is
    /// recorded as evidence, answered with `allocation_collision`, counted and logged; the fold
    /// and the projector keep it out of the row and the projector reports the conflict.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn record_contribution_tracking(
        &self,
        meta: &RequestMeta,
        contribution_tracking_id: u64,
        allocation_token: &str,
        fields: ContributionTrackingFields,
    ) -> Result<api::ContributionTrackingResponse, IntakeError> {
        invalid_if_any(validate_id(
            "contribution_tracking_id",
            contribution_tracking_id,
        ))?;
        invalid_if_any(validate_tracking_record(allocation_token, &fields))?;
        self.check_handed_out(contribution_tracking_id).await?;
        let plan = async {
            let stream = streams::contribution_tracking(contribution_tracking_id);
            let loaded = self.load(&stream).await?;
            let state = ContributionTrackingState::fold(&loaded.events);
            let decided = commands::record_contribution_tracking(
                &state,
                contribution_tracking_id,
                allocation_token,
                fields,
            );
            // The row's contribution belongs to the first allocation, not to this caller.
            let contribution_id = if decided.collision {
                0
            } else {
                state.contribution_id.unwrap_or_default()
            };
            Ok(Plan {
                events: decided.events,
                read: HashMap::from([(stream, loaded.revision)]),
                response: api::ContributionTrackingResponse {
                    contribution_tracking_id,
                    contribution_id,
                    position: 0,
                    allocation_collision: decided.collision,
                },
                stored: None,
            })
        };
        let (response, replayed) = self
            .run_flagged(meta, Method::RecordContributionTracking, plan, true)
            .await?;
        // Reported once, by the call that appended the evidence.
        if response.allocation_collision && !replayed {
            self.metrics.count(
                "ledger_sequence_collisions_total",
                &[("sequence", SequenceName::ContributionTracking.as_str())],
                1,
            );
            tracing::warn!(
                contribution_tracking_id,
                position = response.position,
                "contribution-tracking id allocated twice: the sequence generator handed it out \
                 again; the tracking data was recorded as a collision, not merged"
            );
        }
        Ok(response)
    }

    /// Refuses a contribution-tracking id the sequence has not handed out yet: the log would
    /// otherwise hold ids ahead of the sequence (`ledger sequence check` fails on that).
    async fn check_handed_out(&self, contribution_tracking_id: u64) -> Result<(), IntakeError> {
        let current = self
            .sequences
            .current(SequenceName::ContributionTracking)
            .await?;
        if current.is_none_or(|c| contribution_tracking_id > c) {
            return Err(IntakeError::field(
                "contribution_tracking_id",
                "was not handed out by NextId(contribution-tracking)",
            ));
        }
        Ok(())
    }

    /// Links a contribution to a tracking id; the first contribution id wins.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn link_contribution(
        &self,
        meta: &RequestMeta,
        contribution_tracking_id: u64,
        contribution_id: u64,
    ) -> Result<api::ContributionTrackingResponse, IntakeError> {
        invalid_if_any(validate_id(
            "contribution_tracking_id",
            contribution_tracking_id,
        ))?;
        invalid_if_any(validate_id("contribution_id", contribution_id))?;
        self.check_handed_out(contribution_tracking_id).await?;
        self.run(meta, Method::LinkContribution, async {
            let stream = streams::contribution_tracking(contribution_tracking_id);
            let loaded = self.load(&stream).await?;
            let state = ContributionTrackingState::fold(&loaded.events);
            let events = match commands::link_contribution(
                &state,
                contribution_tracking_id,
                contribution_id,
            ) {
                Err(e @ DomainError::ContributionAlreadyLinked { .. }) => {
                    self.metrics
                        .count("ledger_contribution_link_refusals_total", &[], 1);
                    tracing::warn!(
                        contribution_tracking_id,
                        contribution_id,
                        "refused to change the linked contribution id"
                    );
                    return Err(e.into());
                }
                other => other?,
            };
            Ok(Plan {
                events,
                read: HashMap::from([(stream, loaded.revision)]),
                response: api::ContributionTrackingResponse {
                    contribution_tracking_id,
                    contribution_id,
                    position: 0,
                    allocation_collision: false,
                },
                stored: None,
            })
        })
        .await
    }
}
