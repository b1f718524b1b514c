//! Periodic history compaction, as kube-apiserver asks etcd every five minutes:
//! each tick forgets the history older than the previous tick, so watches can
//! always resume from anything newer than one interval ago.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Store;

/// Compacts `store` every `interval` until `cancel` fires.
pub async fn run(store: Arc<dyn Store>, interval: Duration, cancel: CancellationToken) {
    let mut keep_from = match store.current_revision().await {
        Ok(revision) => revision,
        Err(e) => {
            tracing::warn!(error = %e, "compactor cannot read the current revision");
            0
        }
    };
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let current = match store.current_revision().await {
            Ok(revision) => revision,
            Err(e) => {
                tracing::warn!(error = %e, "compactor cannot read the current revision");
                continue;
            }
        };
        if keep_from > 0 {
            match store.compact(keep_from).await {
                Ok(()) => tracing::debug!(revision = keep_from, "compacted store history"),
                Err(e) => tracing::warn!(error = %e, revision = keep_from, "compaction failed"),
            }
        }
        keep_from = current;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::StoreError;

    #[tokio::test]
    async fn history_older_than_one_interval_is_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("db")).unwrap());
        let first = store.create("/a", b"1".to_vec()).await.unwrap();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(
            Arc::clone(&store),
            Duration::from_millis(50),
            cancel.clone(),
        ));
        store.create("/b", b"2".to_vec()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
        task.await.unwrap();
        assert!(matches!(
            store.watch("/", first.mod_revision - 1).await,
            Err(StoreError::Compacted { .. })
        ));
    }
}
