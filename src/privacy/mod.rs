//! Personal data in the log: sealing (XChaCha20-Poly1305 with a per-donation key) before an
//! event is appended, unsealing when it is read, and crypto-shredding by destroying the key.
//!
//! Each personal unit is encrypted on its own with a fresh random 192-bit nonce; the unit's
//! label and key id are bound in as associated data, so a ciphertext cannot be moved to another
//! donation or another field. Once a donation's key is destroyed, unsealing leaves the clear
//! field empty: every read path then sees the scrubbed donor.

pub mod keys;

use std::collections::{BTreeSet, HashMap};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use prost::Message;
use rand::RngCore;

use crate::domain::personal::UnitMut;
use crate::domain::DomainEvent;
use crate::proto::events as ev;

pub use keys::{DataKey, KeyStore};

/// Key ids of membership applications start here: application `n` is sealed with key
/// `MEMBERSHIP_KEY_BASE + n`, so its key never is a donation's (donation `n` has key `n`). The
/// key store holds ids up to `i64::MAX`, which leaves room for 2^62 applications.
pub const MEMBERSHIP_KEY_BASE: u64 = 1 << 62;

/// The key id of membership application `membership_id`.
pub fn membership_key_id(membership_id: u64) -> u64 {
    MEMBERSHIP_KEY_BASE | membership_id
}

/// Key ids of address changes start here: address change `n` is sealed with key
/// `ADDRESS_CHANGE_KEY_BASE + n`, above the memberships' range (application ids never come
/// near 2^61) and below `i64::MAX`, the key store's limit.
pub const ADDRESS_CHANGE_KEY_BASE: u64 = (1 << 62) | (1 << 61);

/// The key id of address change `address_change_id`.
pub fn address_change_key_id(address_change_id: u64) -> u64 {
    ADDRESS_CHANGE_KEY_BASE | address_change_id
}

/// Key ids of subscriptions start here: subscription `n` is sealed with key
/// `SUBSCRIPTION_KEY_BASE + n`, inside the top of the address changes' range (address-change
/// ids never come near 2^60) and below `i64::MAX`, the key store's limit.
pub const SUBSCRIPTION_KEY_BASE: u64 = (1 << 62) | (1 << 61) | (1 << 60);

/// The key id of subscription `subscription_id`.
pub fn subscription_key_id(subscription_id: u64) -> u64 {
    SUBSCRIPTION_KEY_BASE | subscription_id
}

/// Key ids of the subscriptions' duplicate-index windows start here: the HMAC key of 30-minute
/// window `w` (`domain::subscription::window_of`) is `SUBSCRIPTION_WINDOW_KEY_BASE + w`, at the
/// top of the subscriptions' range (subscription ids never come near 2^59; windows number
/// 48 a day).
pub const SUBSCRIPTION_WINDOW_KEY_BASE: u64 = SUBSCRIPTION_KEY_BASE | (1 << 59);

/// The key id of duplicate-index window `window`.
pub fn subscription_window_key_id(window: u64) -> u64 {
    SUBSCRIPTION_WINDOW_KEY_BASE | (window & ((1 << 59) - 1))
}

/// The keyed hash (HMAC-SHA256, lower-case hex) of a normalised e-mail address under a
/// duplicate-index window's key: the id of its `subscription_email-…` stream.
pub fn email_hmac(key: &DataKey, normalised_email: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key.0[..])
        .expect("HMAC takes a key of any length");
    mac.update(b"ledger:subscription_email:v1:");
    mac.update(normalised_email.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Key ids of CiviShare peering secrets: peering `n` is sealed with key
/// `PEERING_KEY_BASE + n`. The range sits at the top of the donations' range (donation ids
/// never come near 2^62 - 2^32) and below the memberships'.
pub const PEERING_KEY_BASE: u64 = (1 << 62) - (1 << 32);

/// The key id of CiviShare peering `peering_id`.
pub fn peering_key_id(peering_id: u64) -> u64 {
    PEERING_KEY_BASE + (peering_id & 0xffff_ffff)
}

/// Version of the sealing scheme, stored in every `Sealed`.
const KEY_VERSION: u32 = 1;

/// Errors of the privacy layer.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    /// The donation was scrubbed: its key is gone and no new personal data may be sealed.
    #[error("the key of donation {0} was destroyed (the donation is scrubbed)")]
    KeyDestroyed(u64),
    /// A key id does not fit the key store.
    #[error("key id {0} is out of range")]
    KeyIdOutOfRange(u64),
    /// A stored key is not 32 bytes.
    #[error("a stored key is corrupt")]
    CorruptKey,
    /// A ciphertext did not authenticate with its key: the log was altered.
    #[error("sealed {label} of key {key_id} does not authenticate")]
    Tampered {
        /// The unit.
        label: &'static str,
        /// The key id.
        key_id: u64,
    },
    /// A decrypted unit does not decode.
    #[error("sealed {0} does not decode after decryption")]
    Malformed(&'static str),
    /// The key store's writer failed to create a batch of keys.
    #[error("key creation failed: {0}")]
    WriteFailed(String),
    /// The key store's database failed.
    #[error("key store database error")]
    Database(#[from] sqlx::Error),
    /// The key store's schema could not be migrated.
    #[error("key store migration error")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

fn aad(label: &str, key_id: u64) -> Vec<u8> {
    format!("ledger:{label}:{key_id}:v{KEY_VERSION}").into_bytes()
}

fn seal_unit<M: Message>(
    clear: &mut Option<M>,
    sealed: &mut Option<ev::Sealed>,
    label: &'static str,
    key_id: u64,
    key: &DataKey,
) {
    let Some(unit) = clear.take() else { return };
    let cipher = XChaCha20Poly1305::new(key.0.as_ref().into());
    let mut nonce = [0u8; 24];
    // A CSPRNG seeded from the OS, per thread: a random 192-bit nonce needs unpredictability,
    // not a system call per unit.
    rand::thread_rng().fill_bytes(&mut nonce);
    let plain = zeroize::Zeroizing::new(unit.encode_to_vec());
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: &aad(label, key_id),
            },
        )
        .expect("XChaCha20-Poly1305 encryption does not fail for in-memory buffers");
    *sealed = Some(ev::Sealed {
        key_id,
        key_version: KEY_VERSION,
        nonce: nonce.to_vec(),
        ciphertext,
    });
}

fn unseal_unit<M: Message + Default>(
    clear: &mut Option<M>,
    sealed: &Option<ev::Sealed>,
    label: &'static str,
    keys: &HashMap<u64, DataKey>,
) -> Result<(), PrivacyError> {
    let Some(s) = sealed else { return Ok(()) };
    let Some(key) = keys.get(&s.key_id) else {
        // Key destroyed: the unit stays unreadable, which is what a scrub means.
        *clear = None;
        return Ok(());
    };
    if s.nonce.len() != 24 {
        return Err(PrivacyError::Tampered {
            label,
            key_id: s.key_id,
        });
    }
    let cipher = XChaCha20Poly1305::new(key.0.as_ref().into());
    let plain = cipher
        .decrypt(
            XNonce::from_slice(&s.nonce),
            Payload {
                msg: &s.ciphertext,
                aad: &aad(label, s.key_id),
            },
        )
        .map_err(|_| PrivacyError::Tampered {
            label,
            key_id: s.key_id,
        })?;
    let plain = zeroize::Zeroizing::new(plain);
    *clear = Some(M::decode(plain.as_slice()).map_err(|_| PrivacyError::Malformed(label))?);
    Ok(())
}

/// Encrypts every clear personal unit of `events` with `key`, the key of donation `key_id`.
/// Afterwards no event holds personal data in clear.
pub fn seal_with(events: &mut [DomainEvent], key_id: u64, key: &DataKey) {
    for event in events {
        for unit in event.personal_units_mut() {
            let label = unit.label();
            match unit {
                UnitMut::Personal(c, s) => seal_unit(c, s, label, key_id, key),
                UnitMut::Bank(c, s) => seal_unit(c, s, label, key_id, key),
                UnitMut::Provider(c, s) => seal_unit(c, s, label, key_id, key),
                UnitMut::Comment(c, s) => seal_unit(c, s, label, key_id, key),
                UnitMut::Applicant(c, s) => seal_unit(c, s, label, key_id, key),
                UnitMut::Address(c, s) => seal_unit(c, s, label, key_id, key),
                UnitMut::Subscriber(c, s) => seal_unit(c, s, label, key_id, key),
            }
        }
    }
}

/// The key ids that the sealed units of `events` need.
pub fn key_ids<'e>(events: impl IntoIterator<Item = &'e mut DomainEvent>) -> BTreeSet<u64> {
    let mut ids = BTreeSet::new();
    for event in events {
        for unit in event.personal_units_mut() {
            let sealed = match unit {
                UnitMut::Personal(_, s)
                | UnitMut::Bank(_, s)
                | UnitMut::Provider(_, s)
                | UnitMut::Comment(_, s)
                | UnitMut::Applicant(_, s)
                | UnitMut::Address(_, s)
                | UnitMut::Subscriber(_, s) => s,
            };
            if let Some(s) = sealed {
                ids.insert(s.key_id);
            }
        }
    }
    ids
}

/// Decrypts every sealed unit of `events` whose key is in `keys`; units whose key is missing
/// (destroyed) are left without clear data.
pub fn unseal_with<'e>(
    events: impl IntoIterator<Item = &'e mut DomainEvent>,
    keys: &HashMap<u64, DataKey>,
) -> Result<(), PrivacyError> {
    for event in events {
        for unit in event.personal_units_mut() {
            let label = unit.label();
            match unit {
                UnitMut::Personal(c, s) => unseal_unit(c, s, label, keys)?,
                UnitMut::Bank(c, s) => unseal_unit(c, s, label, keys)?,
                UnitMut::Provider(c, s) => unseal_unit(c, s, label, keys)?,
                UnitMut::Comment(c, s) => unseal_unit(c, s, label, keys)?,
                UnitMut::Applicant(c, s) => unseal_unit(c, s, label, keys)?,
                UnitMut::Address(c, s) => unseal_unit(c, s, label, keys)?,
                UnitMut::Subscriber(c, s) => unseal_unit(c, s, label, keys)?,
            }
        }
    }
    Ok(())
}

/// Seals `plain` (a secret that is not part of an event, such as a CiviShare peering secret)
/// with key `key_id` under `label`: a fresh random nonce and the ciphertext.
pub fn seal_bytes(plain: &[u8], label: &str, key_id: u64, key: &DataKey) -> (Vec<u8>, Vec<u8>) {
    let cipher = XChaCha20Poly1305::new(key.0.as_ref().into());
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: &aad(label, key_id),
            },
        )
        .expect("XChaCha20-Poly1305 encryption does not fail for in-memory buffers");
    (nonce.to_vec(), ciphertext)
}

/// Opens what [`seal_bytes`] sealed; `Tampered` when it does not authenticate.
pub fn open_bytes(
    nonce: &[u8],
    ciphertext: &[u8],
    label: &'static str,
    key_id: u64,
    key: &DataKey,
) -> Result<zeroize::Zeroizing<Vec<u8>>, PrivacyError> {
    if nonce.len() != 24 {
        return Err(PrivacyError::Tampered { label, key_id });
    }
    let cipher = XChaCha20Poly1305::new(key.0.as_ref().into());
    cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: &aad(label, key_id),
            },
        )
        .map(zeroize::Zeroizing::new)
        .map_err(|_| PrivacyError::Tampered { label, key_id })
}

/// Seals events before they are appended and unseals them after they are read, with keys from
/// a key store.
#[derive(Clone, Debug)]
pub struct Vault {
    keys: KeyStore,
}

impl Vault {
    /// A vault over `keys`.
    pub fn new(keys: KeyStore) -> Self {
        Self { keys }
    }

    /// The key store.
    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    /// Seals the personal units of events that belong to donation `donation_id`.
    pub async fn seal(
        &self,
        donation_id: u64,
        events: &mut [DomainEvent],
    ) -> Result<(), PrivacyError> {
        let needs_key = events.iter_mut().any(|e| e.has_clear_personal_data());
        if !needs_key {
            return Ok(());
        }
        let key = self.keys.get_or_create(donation_id).await?;
        seal_with(events, donation_id, &key);
        Ok(())
    }

    /// Unseals every event of a batch with one key lookup, in place (a slice, a `Vec`, or
    /// the events inside larger records: nothing is moved out and back).
    pub async fn unseal<'e>(
        &self,
        events: impl IntoIterator<Item = &'e mut DomainEvent>,
    ) -> Result<(), PrivacyError> {
        let mut events: Vec<&mut DomainEvent> = events.into_iter().collect();
        let ids: Vec<u64> = key_ids(events.iter_mut().map(|e| &mut **e))
            .into_iter()
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let keys = self.keys.get_many(&ids).await?;
        unseal_with(events, &keys)
    }

    /// Crypto-shreds the personal data of these donations.
    pub async fn destroy(&self, donation_ids: &[u64]) -> Result<(), PrivacyError> {
        self.keys.destroy(donation_ids).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created_with_personal_data() -> DomainEvent {
        ev::DonationCreated {
            donation_id: 7,
            personal: Some(ev::PersonalData {
                first_name: "Ada".into(),
                last_name: "Lovelace".into(),
                email: "ada@example.org".into(),
                ..Default::default()
            }),
            comment: Some(ev::Comment {
                is_public: false,
                private_text: Some(ev::CommentText {
                    text: "for the servers".into(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
        .into()
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn sealing_leaves_no_personal_data_in_the_encoded_event() {
        let key = DataKey::random();
        let mut events = vec![created_with_personal_data()];
        seal_with(&mut events, 7, &key);
        let bytes = events[0].encode();
        for needle in ["Lovelace", "ada@example.org", "for the servers"] {
            assert!(!contains(&bytes, needle.as_bytes()), "{needle} in clear");
        }
        assert!(!events[0].has_clear_personal_data());
    }

    #[test]
    fn unsealing_with_the_key_restores_the_units() {
        let key = DataKey::random();
        let original = created_with_personal_data();
        let mut events = vec![original.clone()];
        seal_with(&mut events, 7, &key);
        let mut read =
            vec![DomainEvent::decode(events[0].event_type(), &events[0].encode()).unwrap()];
        unseal_with(&mut read, &HashMap::from([(7, key)])).unwrap();
        let DomainEvent::DonationCreated(e) = &read[0] else {
            panic!()
        };
        assert_eq!(e.personal.as_ref().unwrap().last_name, "Lovelace");
        assert_eq!(
            e.comment
                .as_ref()
                .unwrap()
                .private_text
                .as_ref()
                .unwrap()
                .text,
            "for the servers"
        );
    }

    #[test]
    fn without_the_key_the_units_stay_empty() {
        let key = DataKey::random();
        let mut events = vec![created_with_personal_data()];
        seal_with(&mut events, 7, &key);
        unseal_with(&mut events, &HashMap::new()).unwrap();
        let DomainEvent::DonationCreated(e) = &events[0] else {
            panic!()
        };
        assert!(e.personal.is_none());
    }

    #[test]
    fn a_ciphertext_moved_to_another_donation_does_not_authenticate() {
        let key = DataKey::random();
        let mut events = vec![created_with_personal_data()];
        seal_with(&mut events, 7, &key);
        let DomainEvent::DonationCreated(e) = &mut events[0] else {
            panic!()
        };
        e.personal_sealed.as_mut().unwrap().key_id = 8;
        let err = unseal_with(&mut events, &HashMap::from([(8, key)])).unwrap_err();
        assert!(
            matches!(err, PrivacyError::Tampered { key_id: 8, .. }),
            "{err}"
        );
    }
}
