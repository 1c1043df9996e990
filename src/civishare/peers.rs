//! Peerings: a remote node (name, message endpoint), the shared secret and the change types
//! sent to and accepted from it. The secret is generated here with the operating system's
//! CSPRNG, shown once by the caller, and stored sealed with a key of the key store
//! ([`crate::privacy::peering_key_id`]); removing a peering destroys that key, so the secret
//! is unreadable even in old pages of the file.
use std::collections::BTreeSet;

use rand::Rng;
use sqlx::Row;

use super::store::check_name;
use super::{CivishareError, CivishareStore};
use crate::privacy::{open_bytes, peering_key_id, seal_bytes, KeyStore, PrivacyError};

/// Label bound into the sealed secret.
const SECRET_LABEL: &str = "civishare_secret";

/// Characters of a generated secret.
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Length of a generated secret: 43 characters of 62, about 256 bits.
pub const SECRET_CHARS: usize = 43;

/// Every change type the ledger knows, in the order `peer add` lists them.
pub const CHANGE_TYPES: &[&str] = &[
    super::changes::DONATION_CREATED,
    super::changes::DONATION_SCRUBBED,
    super::changes::DONATION_CANCELLED,
    super::changes::DONATION_DELETED,
    super::changes::DONATION_RESTORED,
    super::changes::DONOR_UPDATED,
    super::changes::PAYMENT_BOOKED,
    super::changes::PAYMENT_FAILED,
    super::changes::PAYMENT_REFUNDED,
    super::changes::PAYMENT_CHARGEBACK,
    super::changes::CONTACT_BASE,
];

/// A new random secret: 43 characters of `[A-Za-z0-9]` from the OS CSPRNG.
pub fn generate_secret() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..SECRET_CHARS)
        .map(|_| SECRET_ALPHABET[rng.gen_range(0..SECRET_ALPHABET.len())] as char)
        .collect()
}

/// A peering to create.
#[derive(Debug, Clone)]
pub struct NewPeering {
    /// The remote node's name.
    pub node_name: String,
    /// Its message endpoint URL.
    pub endpoint: String,
    /// The shared secret (generated, or the one the other side generated).
    pub secret: secrecy::SecretString,
    /// Change types sent to it.
    pub outgoing: BTreeSet<String>,
    /// Change types accepted from it.
    pub incoming: BTreeSet<String>,
    /// Whether it also gets the changes already in the log (from the log's start), not only
    /// those appended after it was added.
    pub history: bool,
}

/// A stored peering, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peering {
    /// Its id (and so its secret's key id).
    pub id: i64,
    /// The remote node's name.
    pub node_name: String,
    /// Its message endpoint URL.
    pub endpoint: String,
    /// Change types sent to it.
    pub outgoing: BTreeSet<String>,
    /// Change types accepted from it.
    pub incoming: BTreeSet<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

/// Checks and parses a comma-separated list of change types (`all` for every type, empty for
/// none).
pub fn parse_types(field: &'static str, list: &str) -> Result<BTreeSet<String>, CivishareError> {
    let mut types = BTreeSet::new();
    for t in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if t == "all" {
            types.extend(CHANGE_TYPES.iter().map(|s| (*s).to_owned()));
        } else if CHANGE_TYPES.contains(&t) {
            types.insert(t.to_owned());
        } else {
            return Err(CivishareError::Invalid {
                field,
                rule: format!(
                    "names {t:?}, which is not a change type; known: {}, or `all`",
                    CHANGE_TYPES.join(", ")
                ),
            });
        }
    }
    Ok(types)
}

fn join(types: &BTreeSet<String>) -> String {
    types.iter().cloned().collect::<Vec<_>>().join(",")
}

fn split(text: &str) -> BTreeSet<String> {
    text.split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn peering(r: &sqlx::sqlite::SqliteRow) -> Peering {
    Peering {
        id: r.get("id"),
        node_name: r.get("node_name"),
        endpoint: r.get("endpoint"),
        outgoing: split(r.get("outgoing")),
        incoming: split(r.get("incoming")),
        created_at: r.get("created_at"),
    }
}

impl CivishareStore {
    /// Creates a peering and seals its secret; refused when one with the node exists.
    pub async fn add_peering(
        &self,
        keys: &KeyStore,
        new: &NewPeering,
    ) -> Result<Peering, CivishareError> {
        use secrecy::ExposeSecret;
        check_name("--node", &new.node_name)?;
        if !(new.endpoint.starts_with("http://") || new.endpoint.starts_with("https://")) {
            return Err(CivishareError::Invalid {
                field: "--url",
                rule: "must be an http:// or https:// URL of the peer's message endpoint".into(),
            });
        }
        let secret = new.secret.expose_secret();
        if secret.len() < 32 || !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CivishareError::Invalid {
                field: "secret",
                rule: "must be at least 32 printable ASCII characters (as `peer add` generates)"
                    .into(),
            });
        }
        let mut tx = self.pool.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM civishare_peering WHERE node_name = ?1")
            .bind(&new.node_name)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(CivishareError::PeeringExists(new.node_name.clone()));
        }
        let created_at = super::message::format_time(chrono::Utc::now());
        // Inserted first for its id, which names the key; sealed before the commit.
        let id: i64 = sqlx::query(
            "INSERT INTO civishare_peering \
             (node_name, endpoint, secret_nonce, secret_sealed, outgoing, incoming, created_at) \
             VALUES (?1, ?2, x'', x'', ?3, ?4, ?5) RETURNING id",
        )
        .bind(&new.node_name)
        .bind(&new.endpoint)
        .bind(join(&new.outgoing))
        .bind(join(&new.incoming))
        .bind(&created_at)
        .fetch_one(&mut *tx)
        .await?
        .get("id");
        let key_id = peering_key_id(id as u64);
        let key = keys.get_or_create(key_id).await?;
        let (nonce, sealed) = seal_bytes(secret.as_bytes(), SECRET_LABEL, key_id, &key);
        sqlx::query(
            "UPDATE civishare_peering SET secret_nonce = ?1, secret_sealed = ?2 WHERE id = ?3",
        )
        .bind(nonce)
        .bind(sealed)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if new.history {
            sqlx::query(
                "INSERT INTO civishare_backfill (peering_id, next_position, started_at) \
                 VALUES (?1, 0, ?2)",
            )
            .bind(id)
            .bind(&created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Peering {
            id,
            node_name: new.node_name.clone(),
            endpoint: new.endpoint.clone(),
            outgoing: new.outgoing.clone(),
            incoming: new.incoming.clone(),
            created_at,
        })
    }

    /// Every peering, by node name.
    pub async fn peerings(&self) -> Result<Vec<Peering>, CivishareError> {
        let rows = sqlx::query(
            "SELECT id, node_name, endpoint, outgoing, incoming, created_at \
             FROM civishare_peering ORDER BY node_name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(peering).collect())
    }

    /// The peering with `node_name`, if any.
    pub async fn peering(&self, node_name: &str) -> Result<Option<Peering>, CivishareError> {
        let row = sqlx::query(
            "SELECT id, node_name, endpoint, outgoing, incoming, created_at \
             FROM civishare_peering WHERE node_name = ?1",
        )
        .bind(node_name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(peering))
    }

    /// The clear secret of a peering, opened with its key.
    pub async fn secret(
        &self,
        keys: &KeyStore,
        peering: &Peering,
    ) -> Result<secrecy::SecretString, CivishareError> {
        let row =
            sqlx::query("SELECT secret_nonce, secret_sealed FROM civishare_peering WHERE id = ?1")
                .bind(peering.id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| CivishareError::NoPeering(peering.node_name.clone()))?;
        let key_id = peering_key_id(peering.id as u64);
        let key = keys
            .get_many(&[key_id])
            .await?
            .remove(&key_id)
            .ok_or(PrivacyError::KeyDestroyed(key_id))?;
        let nonce: Vec<u8> = row.get("secret_nonce");
        let sealed: Vec<u8> = row.get("secret_sealed");
        let clear = open_bytes(&nonce, &sealed, SECRET_LABEL, key_id, &key)?;
        let text =
            String::from_utf8(clear.to_vec()).map_err(|_| PrivacyError::Malformed(SECRET_LABEL))?;
        Ok(secrecy::SecretString::from(text))
    }

    /// Removes a peering, its queued changes, and destroys its secret's key.
    pub async fn remove_peering(
        &self,
        keys: &KeyStore,
        node_name: &str,
    ) -> Result<(), CivishareError> {
        let peering = self
            .peering(node_name)
            .await?
            .ok_or_else(|| CivishareError::NoPeering(node_name.to_owned()))?;
        // The key first: a crash after it leaves a peering whose secret no longer opens, which
        // a second `remove` deletes.
        keys.destroy(&[peering_key_id(peering.id as u64)]).await?;
        let mut tx = self.pool.begin().await?;
        for table in ["civishare_outbox", "civishare_backfill"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE peering_id = ?1"))
                .bind(peering.id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM civishare_peering WHERE id = ?1")
            .bind(peering.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// What `ledger peer status` and `GetPeerStatus` show of one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReport {
    /// The peering.
    pub peering: Peering,
    /// Its outgoing queue.
    pub queue: super::outbox::QueueStatus,
    /// Changes received from it, per status.
    pub incoming: Vec<(String, i64)>,
}

impl CivishareStore {
    /// Every peering with its queue and what became of the changes received from it.
    pub async fn peer_reports(&self) -> Result<Vec<PeerReport>, CivishareError> {
        let received = self.inbox_counts().await?;
        let mut reports = Vec::new();
        for peering in self.peerings().await? {
            let queue = self.queue_status(peering.id).await?;
            let incoming = received
                .iter()
                .filter(|(sender, _, _)| *sender == peering.node_name)
                .map(|(_, status, n)| (status.clone(), *n))
                .collect();
            reports.push(PeerReport {
                peering,
                queue,
                incoming,
            });
        }
        Ok(reports)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_43_alphanumeric_characters_and_differ() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_eq!(a.len(), SECRET_CHARS);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn type_lists_take_all_or_known_names_and_refuse_others() {
        assert_eq!(
            parse_types("--outgoing", "all").unwrap().len(),
            CHANGE_TYPES.len()
        );
        assert!(parse_types("--incoming", "").unwrap().is_empty());
        assert!(parse_types("--incoming", "ledger.change.donation.nope").is_err());
    }
}
