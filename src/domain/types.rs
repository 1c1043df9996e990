//! Small value types shared by the folds and decisions: payment methods, money, events tagged
//! with their target stream, and timestamp conversion.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::domain::DomainEvent;
use crate::proto::events as ev;

/// A payment method, with its legacy three-letter code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PaymentMethod {
    /// `BEZ`, direct debit (Lastschrift).
    DirectDebit,
    /// `UEB`, bank transfer (Überweisung).
    BankTransfer,
    /// `MCP`, credit card.
    CreditCard,
    /// `PPL`, PayPal.
    PayPal,
    /// `SUB`, Sofort.
    Sofort,
}

impl PaymentMethod {
    /// Every method.
    pub const ALL: [PaymentMethod; 5] = [
        Self::DirectDebit,
        Self::BankTransfer,
        Self::CreditCard,
        Self::PayPal,
        Self::Sofort,
    ];

    /// The protobuf enum value; `None` for unspecified or unknown values.
    pub fn from_proto(value: i32) -> Option<Self> {
        match ev::PaymentMethod::try_from(value).ok()? {
            ev::PaymentMethod::Unspecified => None,
            ev::PaymentMethod::DirectDebit => Some(Self::DirectDebit),
            ev::PaymentMethod::BankTransfer => Some(Self::BankTransfer),
            ev::PaymentMethod::CreditCard => Some(Self::CreditCard),
            ev::PaymentMethod::Paypal => Some(Self::PayPal),
            ev::PaymentMethod::Sofort => Some(Self::Sofort),
        }
    }

    /// The protobuf enum value as stored in events.
    pub fn to_proto(self) -> i32 {
        let m = match self {
            Self::DirectDebit => ev::PaymentMethod::DirectDebit,
            Self::BankTransfer => ev::PaymentMethod::BankTransfer,
            Self::CreditCard => ev::PaymentMethod::CreditCard,
            Self::PayPal => ev::PaymentMethod::Paypal,
            Self::Sofort => ev::PaymentMethod::Sofort,
        };
        m as i32
    }

    /// The legacy code (`BEZ`, `UEB`, `MCP`, `PPL`, `SUB`); the same as `as_str`.
    pub fn code(self) -> &'static str {
        self.as_str()
    }

    /// Parses a legacy code; `MBK` was the old credit-card code (`FromStr` takes only the
    /// current codes).
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "MBK" => Some(Self::CreditCard),
            code => code.parse().ok(),
        }
    }

    /// External methods (credit card, PayPal, Sofort) stay pending until a provider books them.
    pub fn is_external(self) -> bool {
        matches!(self, Self::CreditCard | Self::PayPal | Self::Sofort)
    }

    /// Only direct debit and bank transfer payments can be cancelled (and restored).
    pub fn is_cancellable(self) -> bool {
        matches!(self, Self::DirectDebit | Self::BankTransfer)
    }

    /// PayPal, credit card and Sofort donations skip moderation entirely.
    pub fn skips_moderation(self) -> bool {
        self.is_external()
    }
}

codes!(PaymentMethod, "payment method", {
    DirectDebit => "BEZ",
    BankTransfer => "UEB",
    CreditCard => "MCP",
    PayPal => "PPL",
    Sofort => "SUB",
});

/// A code that names no value of an enum (a read-model column or request holding a code the
/// domain does not know).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{code}`")]
pub struct UnknownCode {
    /// What the code should name, e.g. `payment status`.
    pub what: &'static str,
    /// The code.
    pub code: String,
}

impl UnknownCode {
    /// `code` names no `what`.
    pub fn new(what: &'static str, code: &str) -> Self {
        Self {
            what,
            code: code.to_owned(),
        }
    }
}

impl fmt::Display for PaymentMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DirectDebit => "direct debit",
            Self::BankTransfer => "bank transfer",
            Self::CreditCard => "credit card",
            Self::PayPal => "PayPal",
            Self::Sofort => "Sofort",
        })
    }
}

/// An amount of money in cents of an ISO 4217 currency. Never a float.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Money {
    /// Minor units.
    pub cents: i64,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
}

impl Money {
    /// Euro cents.
    pub fn eur(cents: i64) -> Self {
        Self {
            cents,
            currency: "EUR".into(),
        }
    }

    /// From the protobuf message.
    pub fn from_proto(m: &ev::Money) -> Self {
        Self {
            cents: m.cents,
            currency: m.currency.clone(),
        }
    }

    /// To the protobuf message.
    pub fn to_proto(&self) -> ev::Money {
        ev::Money {
            cents: self.cents,
            currency: self.currency.clone(),
        }
    }
}

/// An event together with the stream it must be appended to. Decisions that touch several
/// concerns (cancelling touches deletion and payment) return one entry per target stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    /// Target stream, e.g. `deletion-42`.
    pub stream: String,
    /// The event.
    pub event: DomainEvent,
}

impl StreamEvent {
    /// Tags `event` with `stream`.
    pub fn new(stream: String, event: impl Into<DomainEvent>) -> Self {
        Self {
            stream,
            event: event.into(),
        }
    }
}

/// A protobuf timestamp as UTC time; `None` when out of range. Never panics.
pub fn to_datetime(ts: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(ts.nanos).unwrap_or(0);
    DateTime::from_timestamp(ts.seconds, nanos)
}

/// Optional protobuf timestamp as UTC time.
pub fn opt_datetime(ts: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    ts.and_then(to_datetime)
}

/// UTC time as a protobuf timestamp.
pub fn to_timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// Donor kind from its protobuf value; unknown values read as unspecified.
pub fn donor_kind(value: i32) -> ev::DonorKind {
    ev::DonorKind::try_from(value).unwrap_or(ev::DonorKind::Unspecified)
}
