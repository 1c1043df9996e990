//! How a refused or failed call is logged, by its status code, and the recent refusals kept
//! for the status console.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tonic::Status;
use tracing::Level;

/// How a refused or failed call is logged, by its code. Handlers are instrumented without
/// `err` (which logs every `Err` at ERROR, a refused donation as loudly as a broken disk);
/// [`super::service::LedgerService`] logs here instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalLog {
    /// Logged at this level with the method, code and message.
    At(Level),
    /// Already logged where it was decided: `PermissionDenied` and `Unauthenticated` by the
    /// authorisation (WARN, with the client and scope), `Internal` by
    /// [`crate::api::error::to_status`] (ERROR, with the cause chain).
    Elsewhere,
}

/// The log of a call answered with `code`: the client's mistakes (a broken rule, a missing
/// donation, a lost race) at INFO, resource limits at WARN, the server's failures at ERROR.
/// Exhaustive, so a new code is decided here.
pub fn refusal_log(code: tonic::Code) -> RefusalLog {
    use tonic::Code;
    match code {
        Code::InvalidArgument
        | Code::NotFound
        | Code::FailedPrecondition
        | Code::AlreadyExists
        | Code::Aborted
        | Code::OutOfRange
        | Code::Cancelled
        | Code::Ok => RefusalLog::At(Level::INFO),
        Code::ResourceExhausted | Code::DeadlineExceeded | Code::Unimplemented => {
            RefusalLog::At(Level::WARN)
        }
        Code::PermissionDenied | Code::Unauthenticated | Code::Internal => RefusalLog::Elsewhere,
        Code::Unavailable | Code::Unknown | Code::DataLoss => RefusalLog::At(Level::ERROR),
    }
}

pub(super) fn log_refusal(method: &'static str, status: &Status) {
    let code = status.code();
    let reason = status.message();
    match refusal_log(code) {
        RefusalLog::At(Level::ERROR) => tracing::error!(method, ?code, reason, "call failed"),
        RefusalLog::At(Level::WARN) => tracing::warn!(method, ?code, reason, "call refused"),
        RefusalLog::At(_) => tracing::info!(method, ?code, reason, "call refused"),
        RefusalLog::Elsewhere => {}
    }
}

/// One refused or failed call, as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// When it was answered.
    pub at: DateTime<Utc>,
    /// The gRPC method.
    pub method: &'static str,
    /// The status code's name (`InvalidArgument`).
    pub code: String,
    /// The status message (already cut to [`crate::api::error::MAX_MESSAGE_BYTES`]; client
    /// values in it are excerpts, and no message carries personal data in clear).
    pub reason: String,
}

/// The last [`RecentRefusals::KEPT`] refusals and a count per method and code since start.
/// Cheap to clone; clones share.
#[derive(Debug, Clone, Default)]
pub struct RecentRefusals {
    inner: Arc<Mutex<RefusalBook>>,
}

#[derive(Debug, Default)]
struct RefusalBook {
    recent: VecDeque<Refusal>,
    by_reason: BTreeMap<(&'static str, String), u64>,
}

impl RecentRefusals {
    /// How many refusals are kept.
    pub const KEPT: usize = 50;

    /// Records a refused call.
    pub fn record(&self, method: &'static str, status: &Status) {
        let code = format!("{:?}", status.code());
        let mut book = self.inner.lock().expect("refusals lock");
        *book.by_reason.entry((method, code.clone())).or_default() += 1;
        if book.recent.len() == Self::KEPT {
            book.recent.pop_front();
        }
        book.recent.push_back(Refusal {
            at: Utc::now(),
            method,
            code,
            reason: status.message().to_owned(),
        });
    }

    /// The kept refusals, newest first.
    pub fn recent(&self) -> Vec<Refusal> {
        let book = self.inner.lock().expect("refusals lock");
        book.recent.iter().rev().cloned().collect()
    }

    /// Refusals since start by method and code, most frequent first.
    pub fn by_reason(&self) -> Vec<(&'static str, String, u64)> {
        let book = self.inner.lock().expect("refusals lock");
        let mut out: Vec<_> = book
            .by_reason
            .iter()
            .map(|((method, code), n)| (*method, code.clone(), *n))
            .collect();
        out.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (a.0, &a.1).cmp(&(b.0, &b.1))));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn client_mistakes_log_at_info_server_faults_at_error_and_nothing_twice() {
        for code in [
            Code::InvalidArgument,
            Code::NotFound,
            Code::FailedPrecondition,
            Code::AlreadyExists,
            Code::Aborted,
        ] {
            assert_eq!(refusal_log(code), RefusalLog::At(Level::INFO), "{code:?}");
        }
        assert_eq!(
            refusal_log(Code::ResourceExhausted),
            RefusalLog::At(Level::WARN)
        );
        for code in [Code::Unavailable, Code::Unknown, Code::DataLoss] {
            assert_eq!(refusal_log(code), RefusalLog::At(Level::ERROR), "{code:?}");
        }
        // Logged where decided: the authorisation (WARN), `to_status` (ERROR with the cause).
        for code in [
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::Internal,
        ] {
            assert_eq!(refusal_log(code), RefusalLog::Elsewhere, "{code:?}");
        }
    }

    #[test]
    fn recent_refusals_keep_the_newest_and_count_every_one_by_method_and_code() {
        let refusals = RecentRefusals::default();
        for i in 0..RecentRefusals::KEPT + 5 {
            refusals.record("AddDonation", &Status::invalid_argument(format!("bad {i}")));
        }
        refusals.record(
            "CancelDonation",
            &Status::not_found("donation 9 does not exist"),
        );
        let recent = refusals.recent();
        assert_eq!(recent.len(), RecentRefusals::KEPT);
        assert_eq!(recent[0].method, "CancelDonation");
        assert_eq!(
            recent[1].reason,
            format!("bad {}", RecentRefusals::KEPT + 4)
        );
        assert_eq!(
            refusals.by_reason(),
            [
                (
                    "AddDonation",
                    "InvalidArgument".to_owned(),
                    RecentRefusals::KEPT as u64 + 5
                ),
                ("CancelDonation", "NotFound".to_owned(), 1),
            ]
        );
    }
}
