//! Between the protocol's messages and the log's types: event ids in both UUID forms, stream
//! names, revision expectations, and recorded events with the metadata keys clients read
//! (`type`, `content-type`, and `created` as .NET ticks — 100 ns units — since the Unix epoch).
//!
//! Positions are the log's: `$all` commit and prepare positions are both the event's position.

use std::collections::HashMap;

use uuid::Uuid;

use super::errors::Refusal;
use crate::proto::kurrentdb::event_store::client as shared;
use crate::proto::kurrentdb::event_store::client::streams::read_resp;
use crate::store::{ContentType, CurrentRevision, ExpectedRevision, RecordedEvent};

/// An event id from either UUID form (`structured` is RFC byte order, most significant first).
pub fn parse_uuid(id: Option<&shared::Uuid>) -> Result<Uuid, Refusal> {
    use shared::uuid::Value;
    match id.and_then(|u| u.value.as_ref()) {
        Some(Value::Structured(s)) => Ok(Uuid::from_u64_pair(
            s.most_significant_bits as u64,
            s.least_significant_bits as u64,
        )),
        Some(Value::String(text)) => Uuid::parse_str(text)
            .map_err(|e| Refusal::BadRequest(format!("invalid id: {text:?} is not a UUID ({e})"))),
        None => Err(Refusal::BadRequest(
            "missing id: every event needs a UUID".into(),
        )),
    }
}

/// An id in the form the reader asked for.
pub fn uuid_message(id: Uuid, structured: bool) -> shared::Uuid {
    use shared::uuid::{Structured, Value};
    let value = if structured {
        let (msb, lsb) = id.as_u64_pair();
        Value::Structured(Structured {
            most_significant_bits: msb as i64,
            least_significant_bits: lsb as i64,
        })
    } else {
        Value::String(id.hyphenated().to_string())
    };
    shared::Uuid { value: Some(value) }
}

/// A stream name from its identifier: UTF-8, and valid as the log requires.
pub fn stream_name(id: Option<&shared::StreamIdentifier>) -> Result<String, Refusal> {
    let Some(id) = id else {
        return Err(Refusal::BadRequest("missing stream_identifier".into()));
    };
    let name = String::from_utf8(id.stream_name.clone()).map_err(|_| {
        Refusal::BadRequest("invalid stream_identifier: the name is not UTF-8".into())
    })?;
    // A system projection stream (`$ce-orders`, `$et-OrderPlaced`) names an ordinary one.
    let ordinary = super::system_streams::Projection::linked_name(&name).unwrap_or(&name);
    crate::store::validate_stream_name(ordinary).map_err(|e| Refusal::BadRequest(e.to_string()))?;
    Ok(name)
}

/// A stream identifier message.
pub fn stream_identifier(name: &str) -> shared::StreamIdentifier {
    shared::StreamIdentifier {
        stream_name: name.as_bytes().to_vec(),
    }
}

/// The four expectation forms every write request carries (`revision`, `no_stream`, `any`,
/// `stream_exists`); a request with none of them is malformed.
pub fn expected(
    revision: Option<u64>,
    no_stream: bool,
    any: bool,
    stream_exists: bool,
) -> ExpectedRevision {
    match (revision, no_stream, any, stream_exists) {
        (Some(r), ..) => ExpectedRevision::Exact(r),
        (None, true, ..) => ExpectedRevision::NoStream,
        (None, false, _, true) => ExpectedRevision::StreamExists,
        _ => ExpectedRevision::Any,
    }
}

/// Microseconds since the epoch → .NET ticks since the epoch.
pub fn ticks(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp_micros().saturating_mul(10)
}

/// The required `type` and the `content-type` of a proposed event.
pub fn proposed_type(metadata: &HashMap<String, String>) -> Result<(String, ContentType), Refusal> {
    let event_type = metadata
        .get("type")
        .ok_or(Refusal::MissingMetadata("type"))?;
    let content_type = metadata
        .get("content-type")
        .ok_or(Refusal::MissingMetadata("content-type"))?;
    let content_type = if content_type == "application/json" {
        ContentType::Json
    } else {
        ContentType::Binary
    };
    Ok((event_type.clone(), content_type))
}

/// A recorded event as the protocol sends it.
pub fn recorded(
    event: &RecordedEvent,
    structured_ids: bool,
) -> read_resp::read_event::RecordedEvent {
    let metadata = HashMap::from([
        ("type".to_owned(), event.event_type.clone()),
        (
            "content-type".to_owned(),
            event.metadata.content_type().as_mime().to_owned(),
        ),
        ("created".to_owned(), ticks(event.recorded_at).to_string()),
    ]);
    read_resp::read_event::RecordedEvent {
        id: Some(uuid_message(event.id, structured_ids)),
        stream_identifier: Some(stream_identifier(&event.stream)),
        stream_revision: event.revision,
        prepare_position: event.position,
        commit_position: event.position,
        metadata,
        custom_metadata: event.metadata.to_bytes(),
        data: event.payload.clone(),
    }
}

/// KurrentDB's signed number for a current revision (-1 for no stream).
pub fn revision_number(r: CurrentRevision) -> i64 {
    super::errors::actual_number(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_uuid_forms_read_the_same_id_and_malformed_ones_are_refused() {
        let id = Uuid::parse_str("6ba7b810-9dad-11d1-80b4-00c04fd430c8").unwrap();
        for structured in [true, false] {
            let message = uuid_message(id, structured);
            assert_eq!(parse_uuid(Some(&message)).unwrap(), id);
        }
        let bad = shared::Uuid {
            value: Some(shared::uuid::Value::String("not-a-uuid".into())),
        };
        assert!(
            matches!(parse_uuid(Some(&bad)), Err(Refusal::BadRequest(m)) if m.contains("not-a-uuid"))
        );
        assert!(parse_uuid(None).is_err());
    }

    #[test]
    fn created_is_in_ticks_of_one_hundred_nanoseconds() {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap();
        assert_eq!(ticks(at), 17_000_000_001_234_560);
    }

    #[test]
    fn a_proposed_event_needs_type_and_content_type() {
        let mut m = HashMap::from([("content-type".to_owned(), "application/json".to_owned())]);
        assert_eq!(
            proposed_type(&m).unwrap_err(),
            Refusal::MissingMetadata("type")
        );
        m.insert("type".into(), "OrderCreated".into());
        assert_eq!(
            proposed_type(&m).unwrap(),
            ("OrderCreated".to_owned(), ContentType::Json)
        );
        m.remove("content-type");
        assert_eq!(
            proposed_type(&m).unwrap_err(),
            Refusal::MissingMetadata("content-type")
        );
    }
}
