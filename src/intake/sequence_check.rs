//! The sequence check: each sequence generator must be ahead of every id the log holds. A
//! sequence behind the log (for instance Redis after a failover that lost its last `INCR`s)
//! would hand out ids that are already in use.

use crate::domain::address_change::AddressChangeCategory;
use crate::domain::membership::MembershipCategory;
use crate::domain::streams::category;
use crate::domain::subscription::SubscriptionCategory;
use crate::sequence::{SequenceError, SequenceGenerator, SequenceName};
use crate::store::{EventLog, StoreError};

/// One sequence compared with the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceCheck {
    /// The sequence.
    pub name: SequenceName,
    /// The last id it handed out.
    pub current: Option<u64>,
    /// The highest id of its stream category in the log.
    pub highest_in_log: Option<u64>,
}

impl SequenceCheck {
    /// Whether the sequence is at or past every id in the log.
    pub fn is_ahead(&self) -> bool {
        match (self.current, self.highest_in_log) {
            (_, None) => true,
            (Some(c), Some(h)) => c >= h,
            (None, Some(_)) => false,
        }
    }
}

/// Errors of the check.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Reading the log failed.
    #[error("event log: {0}")]
    Store(#[from] StoreError),
    /// Reading the sequence failed.
    #[error("sequence generator: {0}")]
    Sequence(#[from] SequenceError),
}

/// The log category whose stream ids come from `name`.
pub fn category_of(name: SequenceName) -> &'static str {
    match name {
        SequenceName::ContributionTracking => category::CONTRIBUTION_TRACKING,
        SequenceName::Donation => category::DONATION,
        SequenceName::Payment => category::PAYMENT,
        SequenceName::Membership => MembershipCategory::Application.as_str(),
        SequenceName::AddressChange => AddressChangeCategory::AddressChange.as_str(),
        SequenceName::Subscription => SubscriptionCategory::Subscription.as_str(),
    }
}

/// Compares every sequence with the log; logs an ERROR for each one that is behind.
pub async fn check_sequences(
    log: &dyn EventLog,
    sequences: &dyn SequenceGenerator,
) -> Result<Vec<SequenceCheck>, CheckError> {
    let mut out = Vec::new();
    for name in SequenceName::ALL {
        let check = SequenceCheck {
            name,
            current: sequences.current(name).await?,
            highest_in_log: log.highest_stream_number(category_of(name)).await?,
        };
        if check.is_ahead() {
            tracing::info!(sequence = %name, current = ?check.current, highest_in_log = ?check.highest_in_log, "sequence is ahead of the log");
        } else {
            tracing::error!(
                sequence = %name,
                current = ?check.current,
                highest_in_log = ?check.highest_in_log,
                "SEQUENCE IS BEHIND THE LOG: it will hand out ids that are already used; \
                 move it forward with `ledger sequence init <name> <highest>`"
            );
        }
        out.push(check);
    }
    Ok(out)
}
