//! The signing rule of `docs/civishare.md`: HMAC-SHA512 under the peering's secret over the
//! message id, a line feed and the exact payload bytes, in standard padded base64; and the
//! SHA-512 digests of loop detection (origin signatures and node stamps).
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha512};

type HmacSha512 = Hmac<Sha512>;

/// The MAC over `id`, a line feed and `payload` (the exact bytes sent), keyed with the
/// secret's UTF-8 bytes.
fn mac(secret: &str, id: &str, payload: &[u8]) -> HmacSha512 {
    let mut mac =
        HmacSha512::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(id.as_bytes());
    mac.update(b"\n");
    mac.update(payload);
    mac
}

/// `payload_signature` of a message: base64 of the 64-byte tag.
pub fn sign(secret: &str, id: &str, payload: &[u8]) -> String {
    STANDARD.encode(mac(secret, id, payload).finalize().into_bytes())
}

/// Whether `signature` is the tag of `id` and `payload` under `secret`. The comparison is
/// constant-time (`Mac::verify_slice`); a signature that is not base64 never verifies.
pub fn verify(secret: &str, id: &str, payload: &[u8], signature: &str) -> bool {
    let Ok(tag) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    mac(secret, id, payload).verify_slice(&tag).is_ok()
}

/// base64 of SHA-512 over `a`, a line feed and `b`.
fn digest_pair(a: &str, b: &str) -> String {
    let mut h = Sha512::new();
    h.update(a.as_bytes());
    h.update(b"\n");
    h.update(b.as_bytes());
    STANDARD.encode(h.finalize())
}

/// The origin signature of a change that originates on `node` from ledger event `event_id`
/// (lower-case hyphenated UUID): the first entry of its `loop_detection`.
pub fn origin_signature(node: &str, event_id: &uuid::Uuid) -> String {
    digest_pair(node, &event_id.hyphenated().to_string())
}

/// The stamp `node` adds to the `loop_detection` of the change with origin signature `origin`.
pub fn node_stamp(node: &str, origin: &str) -> String {
    digest_pair(node, origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fenced blocks of the doc's "Worked example" section, in order.
    fn worked_example() -> Vec<String> {
        let doc = include_str!("../../docs/civishare.md");
        let section = doc
            .split("### Worked example")
            .nth(1)
            .expect("the doc has a worked example")
            .split("\n## ")
            .next()
            .unwrap();
        section
            .split("```")
            .skip(1)
            .step_by(2)
            .map(|b| b.trim_start_matches(|c: char| c.is_ascii_alphabetic()))
            .map(|b| b.trim().to_owned())
            .collect()
    }

    /// The first backticked value after `label` in the section.
    fn inline_after(label: &str) -> String {
        let doc = include_str!("../../docs/civishare.md");
        let section = doc.split("### Worked example").nth(1).unwrap();
        let after = section.split(label).nth(1).unwrap();
        after.split('`').nth(1).unwrap().to_owned()
    }

    #[test]
    fn the_worked_example_of_the_doc_signs_to_the_doc_signature() {
        let blocks = worked_example();
        let (payload, signature, body) = (&blocks[0], &blocks[1], &blocks[2]);
        let secret = inline_after("Secret");
        let id = inline_after(", id");
        assert_eq!(secret.len(), 43);
        assert_eq!(payload.len(), 1058);
        assert_eq!(
            hex::encode(sha2::Sha256::digest(payload.as_bytes())),
            "c79e0b01871ef270a12f1d8591c6c4882830d29fe36931053f456129c1e94d67"
        );
        assert_eq!(&sign(&secret, &id, payload.as_bytes()), signature);
        assert!(verify(&secret, &id, payload.as_bytes(), signature));
        // The body is the fixed layout around the same bytes, and parses back to them.
        let parsed = super::super::message::Envelope::parse(body.as_bytes()).unwrap();
        assert_eq!(parsed.id, id);
        assert_eq!(&parsed.payload_signature, signature);
        assert_eq!(parsed.payload_bytes, payload.as_bytes());
        assert_eq!(
            super::super::message::Envelope::assemble(&id, signature, payload.as_bytes()),
            body.as_bytes()
        );
        // Its loop detection list: the origin of event …5b46 on node A, then A's stamp.
        let change = &parsed.payload.changes[0];
        let origin = origin_signature(
            "https://ledger-a.example.org",
            &"0193a6f2-4b0d-7e21-8c3a-7f1e2d9c5b46".parse().unwrap(),
        );
        assert_eq!(change.loop_detection[0], origin);
        assert_eq!(
            change.loop_detection[1],
            node_stamp("https://ledger-a.example.org", &origin)
        );
    }

    #[test]
    fn a_changed_byte_an_other_id_or_an_other_secret_does_not_verify() {
        let sig = sign("secret", "m1", b"{\"a\":1}");
        assert_eq!(sig.len(), 88);
        assert!(verify("secret", "m1", b"{\"a\":1}", &sig));
        assert!(!verify("secret", "m1", b"{\"a\":2}", &sig));
        assert!(!verify("secret", "m2", b"{\"a\":1}", &sig));
        assert!(!verify("Secret", "m1", b"{\"a\":1}", &sig));
        assert!(!verify("secret", "m1", b"{\"a\":1}", "not base64!"));
        assert!(!verify("secret", "m1", b"{\"a\":1}", ""));
    }
}
