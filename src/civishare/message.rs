//! CiviShare messages as JSON: the envelope (`id`, `payload_signature`, `payload`) in the fixed
//! layout of `docs/civishare.md`, whose exact payload bytes are what is signed, and the
//! payload's changes.
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::CivishareError;

/// Longest message id.
pub const MAX_ID_CHARS: usize = 128;

/// What the body starts with.
const HEAD: &[u8] = b"{\"id\":";
/// What precedes the payload's bytes.
const PAYLOAD_KEY: &[u8] = b",\"payload\":";

/// One attribute's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeChange {
    /// The attribute.
    pub name: String,
    /// Its value before (`""` for a new entity).
    #[serde(default)]
    pub from: String,
    /// Its value after.
    #[serde(default)]
    pub to: String,
}

/// One change of one entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The change type, e.g. `ledger.change.donation.created`.
    #[serde(rename = "type")]
    pub change_type: String,
    /// When it happened where it originated.
    pub timestamp: String,
    /// `Donation`, `Contact`.
    pub entity: String,
    /// The entity's id on the sending node.
    pub entity_reference: String,
    /// What changed.
    #[serde(default)]
    pub attribute_changes: Vec<AttributeChange>,
    /// The origin signature, then one stamp per node that has the change.
    #[serde(default)]
    pub loop_detection: Vec<String>,
}

impl Change {
    /// The origin signature: the first entry of `loop_detection`.
    pub fn origin(&self) -> Option<&str> {
        self.loop_detection.first().map(String::as_str)
    }

    /// The value after of attribute `name`, if the change names it.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attribute_changes
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.to.as_str())
    }
}

/// What is signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// The sending node's name.
    pub sender: String,
    /// When the message was built.
    pub sent: String,
    /// The changes, oldest first.
    pub changes: Vec<Change>,
}

/// A message as received: its parts and the exact payload bytes the signature covers.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The message id.
    pub id: String,
    /// base64 HMAC-SHA512 tag.
    pub payload_signature: String,
    /// The payload, parsed.
    pub payload: Payload,
    /// The payload's bytes as sent.
    pub payload_bytes: Vec<u8>,
}

/// The envelope's members, for a first parse of the whole body.
#[derive(Deserialize)]
struct Members {
    id: Option<String>,
    payload_signature: Option<String>,
    payload: Option<serde_json::Value>,
}

impl Envelope {
    /// Parses a body: valid JSON, a signature, a well-formed id, and the fixed layout that
    /// makes the payload's bytes findable.
    pub fn parse(body: &[u8]) -> Result<Self, CivishareError> {
        let malformed = |why: &str| CivishareError::Malformed(why.to_owned());
        let members: Members = serde_json::from_slice(body).map_err(|e| {
            CivishareError::Malformed(format!("the body is not the JSON envelope: {e}"))
        })?;
        let id = members.id.ok_or_else(|| malformed("`id` is missing"))?;
        if members.payload.is_none() {
            return Err(malformed("`payload` is missing"));
        }
        let signature = members.payload_signature.unwrap_or_default();
        if signature.trim().is_empty() {
            return Err(CivishareError::Unsigned);
        }
        check_id(&id)?;
        if !body.starts_with(HEAD) || body.last() != Some(&b'}') {
            return Err(malformed(
                "the body must be {\"id\":…,\"payload_signature\":…,\"payload\":…} in this order, \
                 without whitespace outside the payload and nothing after the last brace",
            ));
        }
        let start = find(body, PAYLOAD_KEY)
            .ok_or_else(|| malformed("`payload` must be the last member"))?
            + PAYLOAD_KEY.len();
        let payload_bytes = body[start..body.len() - 1].to_vec();
        let payload: Payload = serde_json::from_slice(&payload_bytes)
            .map_err(|e| CivishareError::Malformed(format!("the payload: {e}")))?;
        Ok(Self {
            id,
            payload_signature: signature,
            payload,
            payload_bytes,
        })
    }

    /// The body for `id`, `signature` and the payload's exact bytes.
    pub fn assemble(id: &str, signature: &str, payload: &[u8]) -> Vec<u8> {
        let mut body = Vec::with_capacity(payload.len() + id.len() + 128);
        body.extend_from_slice(HEAD);
        body.extend_from_slice(
            serde_json::to_string(id)
                .expect("a string serialises")
                .as_bytes(),
        );
        body.extend_from_slice(b",\"payload_signature\":");
        body.extend_from_slice(
            serde_json::to_string(signature)
                .expect("a string serialises")
                .as_bytes(),
        );
        body.extend_from_slice(PAYLOAD_KEY);
        body.extend_from_slice(payload);
        body.push(b'}');
        body
    }

    /// Serialises `payload` once, signs those bytes under `secret` and assembles the body.
    pub fn build(id: &str, secret: &str, payload: &Payload) -> Vec<u8> {
        let bytes = serde_json::to_vec(payload).expect("a payload serialises");
        let signature = super::signing::sign(secret, id, &bytes);
        Self::assemble(id, &signature, &bytes)
    }
}

/// 1 to 128 characters of `[A-Za-z0-9._:-]`.
fn check_id(id: &str) -> Result<(), CivishareError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(CivishareError::Malformed(
            "`id` must be 1 to 128 characters of A-Z, a-z, 0-9, `.`, `_`, `:` and `-`".into(),
        ))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A time as messages carry it: RFC 3339, or `YYYY-MM-DD HH:MM:SS` and one of the zones
/// `UTC`, `GMT`, `CET`, `CEST` (CiviCRM's habit, as in the seed's example).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text.trim()) {
        return Some(t.with_timezone(&Utc));
    }
    let (local, zone) = text.trim().rsplit_once(' ')?;
    let offset_hours = match zone {
        "UTC" | "GMT" | "Z" => 0,
        "CET" => 1,
        "CEST" => 2,
        _ => return None,
    };
    let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S").ok()?;
    let offset = chrono::FixedOffset::east_opt(offset_hours * 3600)?;
    Some(
        offset
            .from_local_datetime(&naive)
            .single()?
            .with_timezone(&Utc),
    )
}

/// A time as messages carry it: RFC 3339 in UTC, whole seconds.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Payload {
        Payload {
            sender: "https://a.example".into(),
            sent: "2026-12-06T22:10:00Z".into(),
            changes: vec![],
        }
    }

    #[test]
    fn a_built_body_parses_back_to_its_payload_and_verifies() {
        let body = Envelope::build("m-1", "s3cret", &payload());
        let e = Envelope::parse(&body).unwrap();
        assert_eq!(e.payload, payload());
        assert!(super::super::signing::verify(
            "s3cret",
            "m-1",
            &e.payload_bytes,
            &e.payload_signature
        ));
    }

    #[test]
    fn a_body_without_signature_is_unsigned_and_other_layouts_are_malformed() {
        let unsigned = br#"{"id":"m","payload":{"sender":"a","sent":"x","changes":[]}}"#;
        assert!(matches!(
            Envelope::parse(unsigned),
            Err(CivishareError::Unsigned)
        ));
        let reordered =
            br#"{"payload":{"sender":"a","sent":"x","changes":[]},"id":"m","payload_signature":"AA=="}"#;
        assert!(matches!(
            Envelope::parse(reordered),
            Err(CivishareError::Malformed(_))
        ));
        assert!(matches!(
            Envelope::parse(b"not json"),
            Err(CivishareError::Malformed(_))
        ));
        let bad_id =
            Envelope::assemble("a b", "AA==", br#"{"sender":"a","sent":"x","changes":[]}"#);
        assert!(matches!(
            Envelope::parse(&bad_id),
            Err(CivishareError::Malformed(_))
        ));
    }

    #[test]
    fn times_are_read_in_rfc_3339_and_in_the_seeds_zone_abbreviations() {
        let t = parse_time("2024-10-23 20:10:00 CEST").unwrap();
        assert_eq!(format_time(t), "2024-10-23T18:10:00Z");
        assert_eq!(
            parse_time("2024-10-23T18:10:00Z"),
            parse_time("2024-10-23 19:10:00 CET")
        );
        assert_eq!(parse_time("2024-10-23 20:10:00 PST"), None);
    }
}
