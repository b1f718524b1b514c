//! The behaviour every [`Store`] backend must share, as one generic suite that
//! each backend's tests call with a factory for fresh, empty stores.

use std::time::Duration;

use futures::StreamExt;

use super::{EventKind, Store, StoreError};

/// Runs every conformance check, each against a fresh store from `make`.
pub async fn run<S: Store>(make: impl Fn() -> S) {
    create_get_update_delete_follow_revisions(&make()).await;
    create_refuses_existing_key(&make()).await;
    update_with_stale_revision_conflicts(&make()).await;
    list_pages_by_prefix(&make()).await;
    watch_replays_history_then_follows(&make()).await;
    watch_from_compacted_revision_fails(&make()).await;
}

async fn create_get_update_delete_follow_revisions<S: Store>(store: &S) {
    let created = store.create("/t/a", b"one".to_vec()).await.unwrap();
    assert_eq!(created.create_revision, created.mod_revision);
    let got = store.get("/t/a").await.unwrap().unwrap();
    assert_eq!(got.value, b"one");
    let updated = store
        .update("/t/a", b"two".to_vec(), created.mod_revision)
        .await
        .unwrap();
    assert!(updated.mod_revision > created.mod_revision);
    assert_eq!(updated.create_revision, created.create_revision);
    let deleted = store.delete("/t/a", None).await.unwrap();
    assert_eq!(deleted.value, b"two");
    assert!(deleted.mod_revision > updated.mod_revision);
    assert_eq!(store.get("/t/a").await.unwrap(), None);
    assert_eq!(
        store.current_revision().await.unwrap(),
        deleted.mod_revision
    );
    assert!(matches!(
        store.delete("/t/a", None).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn create_refuses_existing_key<S: Store>(store: &S) {
    store.create("/t/a", b"one".to_vec()).await.unwrap();
    assert!(matches!(
        store.create("/t/a", b"again".to_vec()).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(store.get("/t/a").await.unwrap().unwrap().value, b"one");
}

async fn update_with_stale_revision_conflicts<S: Store>(store: &S) {
    let created = store.create("/t/a", b"one".to_vec()).await.unwrap();
    store
        .update("/t/a", b"two".to_vec(), created.mod_revision)
        .await
        .unwrap();
    assert!(matches!(
        store
            .update("/t/a", b"three".to_vec(), created.mod_revision)
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store.delete("/t/a", Some(created.mod_revision)).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.get("/t/a").await.unwrap().unwrap().value, b"two");
}

async fn list_pages_by_prefix<S: Store>(store: &S) {
    for name in ["c", "a", "b", "d"] {
        store
            .create(&format!("/t/x/{name}"), name.as_bytes().to_vec())
            .await
            .unwrap();
    }
    store.create("/t/y/a", b"other".to_vec()).await.unwrap();
    store.create("/t/xx", b"sibling".to_vec()).await.unwrap();

    let all = store.list("/t/x/", None, 0).await.unwrap();
    let keys: Vec<_> = all.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/t/x/a", "/t/x/b", "/t/x/c", "/t/x/d"]);
    assert!(!all.more);
    assert_eq!(all.revision, store.current_revision().await.unwrap());

    let first = store.list("/t/x/", None, 3).await.unwrap();
    assert_eq!(first.items.len(), 3);
    assert!(first.more);
    let last = &first.items[2].key;
    let second = store.list("/t/x/", Some(last), 3).await.unwrap();
    let keys: Vec<_> = second.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/t/x/d"]);
    assert!(!second.more);
}

async fn watch_replays_history_then_follows<S: Store>(store: &S) {
    let start = store.current_revision().await.unwrap();
    let a = store.create("/w/a", b"1".to_vec()).await.unwrap();
    store.create("/elsewhere", b"x".to_vec()).await.unwrap();
    let mut events = store.watch("/w/", start).await.unwrap();
    let first = next(&mut events).await;
    assert_eq!(first.kind, EventKind::Put);
    assert!(first.is_create());
    assert_eq!(first.kv, a);

    let b = store
        .update("/w/a", b"2".to_vec(), a.mod_revision)
        .await
        .unwrap();
    let second = next(&mut events).await;
    assert!(!second.is_create());
    assert_eq!(second.kv, b);

    let gone = store.delete("/w/a", None).await.unwrap();
    let third = next(&mut events).await;
    assert_eq!(third.kind, EventKind::Delete);
    assert_eq!(third.kv.mod_revision, gone.mod_revision);
    assert_eq!(third.kv.value, b"2");
}

async fn watch_from_compacted_revision_fails<S: Store>(store: &S) {
    let a = store.create("/c/a", b"1".to_vec()).await.unwrap();
    let b = store
        .update("/c/a", b"2".to_vec(), a.mod_revision)
        .await
        .unwrap();
    store.compact(b.mod_revision).await.unwrap();
    match store.watch("/c/", a.mod_revision - 1).await {
        Err(StoreError::Compacted { .. }) => {}
        Err(other) => panic!("expected Compacted, got {other}"),
        Ok(mut stream) => {
            let item = tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .expect("watch neither failed nor ended");
            assert!(matches!(item, Some(Err(StoreError::Compacted { .. }))));
        }
    }
    // The compaction revision itself is kept, as in etcd: a watch just before it replays it.
    let mut from_boundary = store.watch("/c/", b.mod_revision - 1).await.unwrap();
    assert_eq!(next(&mut from_boundary).await.kv.value, b"2");
    // Watching from the compaction point onwards still works.
    let mut events = store.watch("/c/", b.mod_revision).await.unwrap();
    store
        .update("/c/a", b"3".to_vec(), b.mod_revision)
        .await
        .unwrap();
    assert_eq!(next(&mut events).await.kv.value, b"3");
}

async fn next(events: &mut super::WatchStream) -> super::StoreEvent {
    tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("no watch event within 5s")
        .expect("watch ended")
        .expect("watch failed")
}
