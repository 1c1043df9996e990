//! Export commands: the export batch marks donations exported.

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt};

use super::decide::ViewLoad;
use super::error::invalid_if_any;
use super::{Intake, IntakeError, Method, Plan, RequestMeta};
use crate::domain::commands;
use crate::domain::validation::validate_export;
use crate::domain::DomainError;
use crate::proto::api;

/// Views loaded concurrently by a batch.
const BATCH_CONCURRENCY: usize = 16;

impl Intake {
    /// The export batch exported these donations. Already exported ones are reported, not
    /// refused; any other refusal refuses the whole batch (nothing is appended).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn mark_exported(
        &self,
        meta: &RequestMeta,
        donation_ids: &[u64],
        batch_id: &str,
    ) -> Result<api::MarkExportedResponse, IntakeError> {
        invalid_if_any(validate_export(donation_ids, batch_id))?;
        let mut ids = donation_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        self.run(meta, Method::MarkExported, async {
            let now = self.clock.now();
            let loads: Vec<(u64, ViewLoad)> = futures::stream::iter(ids.iter().copied())
                .map(|id| async move {
                    self.load_view(id, false)
                        .await
                        .map(|l| (id, l))
                        .map_err(|e| IntakeError::InBatch {
                            donation_id: id,
                            source: Box::new(e),
                        })
                })
                .buffered(BATCH_CONCURRENCY)
                .try_collect()
                .await?;
            let mut events = Vec::new();
            let mut read = HashMap::new();
            let mut response = api::MarkExportedResponse::default();
            for (id, load) in loads {
                match commands::mark_exported(&load.view, batch_id, now) {
                    Ok(decided) => {
                        response.exported.push(id);
                        events.extend(decided);
                        read.extend(load.read);
                    }
                    Err(DomainError::AlreadyExported { .. }) => response.already_exported.push(id),
                    Err(e) => {
                        return Err(IntakeError::InBatch {
                            donation_id: id,
                            source: Box::new(e.into()),
                        })
                    }
                }
            }
            Ok(Plan {
                events,
                read,
                response,
                stored: None,
            })
        })
        .await
    }
}
