//! `NextId`: blocks of ids from the named sequence generators.

use std::collections::HashMap;

use super::{Intake, IntakeError, Method, Plan, RequestMeta};
use crate::proto::api;
use crate::sequence::{new_token, SequenceName, MAX_BLOCK};

impl Intake {
    /// A block of ids from a named sequence, with a fresh allocation token. Idempotent per
    /// request id: the ids are taken durably first, then the answer is recorded in
    /// `request-{id}`; a repeat answers from the record and takes nothing. A crash in between
    /// only leaves a gap (the caller never saw those ids).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn next_id(
        &self,
        meta: &RequestMeta,
        sequence: &str,
        count: u32,
    ) -> Result<api::NextIdResponse, IntakeError> {
        let name = SequenceName::parse(sequence)
            .map_err(|e| IntakeError::field("sequence", e.to_string()))?;
        let count = u64::from(count.max(1));
        if count > MAX_BLOCK {
            return Err(IntakeError::field(
                "count",
                format!("must be at most {MAX_BLOCK}"),
            ));
        }
        self.run(meta, Method::NextId, async {
            let block = self.sequences.next_block(name, count).await?;
            Ok(Plan {
                events: Vec::new(),
                read: HashMap::new(),
                response: api::NextIdResponse {
                    first_id: *block.start(),
                    last_id: *block.end(),
                    allocation_token: new_token(),
                    position: 0,
                },
                stored: None,
            })
        })
        .await
    }
}
