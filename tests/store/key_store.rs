//! The key store on SQLite and PostgreSQL: keys are created once, destroyed keys are never
//! recreated, and a destroyed key leaves no copy in the SQLite file or its WAL.
use crate::support;

use ledger::privacy::{KeyStore, PrivacyError};

async fn destroyed_keys_are_gone_and_never_recreated(store: KeyStore) {
    let mut keys = Vec::new();
    for id in 1..=20u64 {
        keys.push(store.get_or_create(id).await.unwrap());
    }
    let again = store.get_or_create(3).await.unwrap();
    assert_eq!(
        format!("{:?}", again.clone()),
        "DataKey(..)",
        "keys never print"
    );
    store.destroy(&[1, 2, 3]).await.unwrap();
    let left = store.get_many(&(1..=20).collect::<Vec<_>>()).await.unwrap();
    assert_eq!(left.len(), 17);
    assert!(!left.contains_key(&2));
    assert!(store.is_destroyed(2).await.unwrap());
    assert!(!store.is_destroyed(4).await.unwrap());
    let err = store.get_or_create(2).await.unwrap_err();
    assert!(matches!(err, PrivacyError::KeyDestroyed(2)), "{err}");
}

#[tokio::test]
async fn sqlite_key_store_destroys_keys_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open_sqlite(&dir.path().join("keys.sqlite"))
        .await
        .unwrap();
    destroyed_keys_are_gone_and_never_recreated(store).await;
}

#[tokio::test]
async fn sqlite_key_store_leaves_no_copy_of_a_destroyed_key_in_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open_sqlite(&dir.path().join("keys.sqlite"))
        .await
        .unwrap();
    let mut raw = Vec::new();
    for id in 1..=200u64 {
        let k = store.get_or_create(id).await.unwrap();
        raw.push((id, support::key_bytes(&k)));
    }
    let doomed: Vec<u64> = (1..=200).filter(|i| i % 3 == 0).collect();
    store.destroy(&doomed).await.unwrap();
    let files = support::read_dir_bytes(dir.path());
    for (id, bytes) in &raw {
        let found = files
            .iter()
            .any(|(_, content)| support::contains(content, bytes));
        assert_eq!(found, id % 3 != 0, "key {id} present on disk = {found}");
    }
}

#[tokio::test]
async fn postgres_key_store_destroys_keys_for_good() {
    let Some(db) = support::postgres::fresh_database("keys").await else {
        return;
    };
    let store = KeyStore::connect(&db.url).await.unwrap();
    destroyed_keys_are_gone_and_never_recreated(store).await;
    drop(db);
}
