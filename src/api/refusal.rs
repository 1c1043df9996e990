//! How a refused or failed call is logged, by its status code.

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
}
