//! Export commands: the export batch marks donations exported, and the one shape every
//! context's export batch runs through ([`Intake::export_batch`]): check the ids and the batch
//! id, load the entities concurrently, let the context's domain decide per entity, report the
//! ones exported before, refuse the whole batch on any other refusal.

use std::collections::HashMap;
use std::future::Future;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use super::decide::ContextLoad;
use super::error::invalid_if_any;
use super::{Intake, IntakeError, Method, Plan, Positioned, RequestMeta};
use crate::domain::commands::{self, Decision};
use crate::domain::validation::{validate_export, FieldError};
use crate::domain::DomainError;
use crate::proto::api;

/// Entities loaded concurrently by a batch.
const BATCH_CONCURRENCY: usize = 16;

/// The answer of an export batch: the entities it exported and those exported before.
pub(super) trait ExportResponse: Positioned {
    /// Records an entity this batch exported.
    fn exported(&mut self, id: u64);
    /// Records an entity an earlier batch exported (reported, not refused).
    fn already_exported(&mut self, id: u64);
}

macro_rules! export_response {
    ($($t:ty),+) => {$(
        impl ExportResponse for $t {
            fn exported(&mut self, id: u64) {
                self.exported.push(id);
            }
            fn already_exported(&mut self, id: u64) {
                self.already_exported.push(id);
            }
        }
    )+};
}
export_response!(
    api::MarkExportedResponse,
    api::MarkMembershipsExportedResponse,
    api::MarkAddressChangesExportedResponse,
    api::MarkSubscriptionsExportedResponse
);

/// What one context gives the shared export batch: its request's names and its domain's rules.
pub(super) struct ExportBatch<'a, V> {
    /// The RPC.
    pub method: Method,
    /// The request's name of the id list (`donation_ids`, `membership_ids`, …): validation
    /// errors name it.
    pub ids_field: &'static str,
    /// The ids asked for (sorted and deduplicated here).
    pub ids: &'a [u64],
    /// The export batch.
    pub batch_id: &'a str,
    /// The domain's decision on one entity.
    pub decide: fn(&V, &str, DateTime<Utc>) -> Decision,
    /// Whether a refusal says an earlier batch exported the entity.
    pub already_exported: fn(&DomainError) -> bool,
    /// One entity's failure as the batch's error.
    pub in_batch: fn(u64, Box<IntakeError>) -> IntakeError,
}

impl Intake {
    /// Runs a context's export batch: `load` reads one entity's view. Already exported
    /// entities are reported, not refused; any other refusal refuses the whole batch (nothing
    /// is appended).
    pub(super) async fn export_batch<V, R, L, F>(
        &self,
        meta: &RequestMeta,
        batch: ExportBatch<'_, V>,
        load: L,
    ) -> Result<R, IntakeError>
    where
        R: ExportResponse,
        L: Fn(u64) -> F,
        F: Future<Output = Result<ContextLoad<V>, IntakeError>>,
    {
        // The donation batch's rules, with this request's field name.
        let errors: Vec<FieldError> = validate_export(batch.ids, batch.batch_id)
            .into_iter()
            .map(|e| match e.field.as_str() {
                "donation_ids" => FieldError::new(batch.ids_field, e.rule),
                _ => e,
            })
            .collect();
        invalid_if_any(errors)?;
        let mut ids = batch.ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        self.run(meta, batch.method, async {
            let now = self.clock.now();
            let load = &load;
            let loads: Vec<(u64, ContextLoad<V>)> = futures::stream::iter(ids.iter().copied())
                .map(|id| async move {
                    load(id)
                        .await
                        .map(|l| (id, l))
                        .map_err(|e| (batch.in_batch)(id, Box::new(e)))
                })
                .buffered(BATCH_CONCURRENCY)
                .try_collect()
                .await?;
            let mut events = Vec::new();
            let mut read = HashMap::new();
            let mut response = R::default();
            for (id, load) in loads {
                match (batch.decide)(&load.view, batch.batch_id, now) {
                    Ok(decided) => {
                        response.exported(id);
                        events.extend(decided);
                        read.extend(load.read);
                    }
                    Err(e) if (batch.already_exported)(&e) => response.already_exported(id),
                    Err(e) => return Err((batch.in_batch)(id, Box::new(e.into()))),
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

    /// The export batch exported these donations. Already exported ones are reported, not
    /// refused; any other refusal refuses the whole batch (nothing is appended).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn mark_exported(
        &self,
        meta: &RequestMeta,
        donation_ids: &[u64],
        batch_id: &str,
    ) -> Result<api::MarkExportedResponse, IntakeError> {
        let batch = ExportBatch {
            method: Method::MarkExported,
            ids_field: "donation_ids",
            ids: donation_ids,
            batch_id,
            decide: commands::mark_exported,
            already_exported: |e| matches!(e, DomainError::AlreadyExported { .. }),
            in_batch: |donation_id, source| IntakeError::InBatch {
                donation_id,
                source,
            },
        };
        self.export_batch(meta, batch, |id| self.load_view(id, false))
            .await
    }
}
