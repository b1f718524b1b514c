//! Keeps the default `kubernetes` ServiceCIDR: the server's `--service-cidr`
//! range as a Ready ServiceCIDR, written at start-up and put back when deleted,
//! as upstream's default-ServiceCIDR controller does. It never changes the
//! CIDRs of an existing one (they are immutable; upstream only reports a
//! mismatch).

use std::time::Duration;

use berth_api::kinds::networking::servicecidr::{default_service_cidr, DEFAULT_NAME};
use tokio_util::sync::CancellationToken;

use super::catalog;
use super::errors::ApiError;
use super::objects::{Objects, WriteOptions};

/// How often the default ServiceCIDR is checked (upstream's resync period).
const INTERVAL: Duration = Duration::from_secs(10);

/// Re-creates the default ServiceCIDR when it is gone, until `cancel` fires.
pub async fn run(objects: Objects, cidr: String, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(INTERVAL);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = ensure(&objects, &cidr).await {
            tracing::warn!(error = %e, "keeping the default ServiceCIDR");
        }
    }
}

/// Creates the default ServiceCIDR for `cidr` if it is missing, and makes it
/// Ready if it is not yet (idempotent; any server of a cluster may run it).
pub async fn ensure(objects: &Objects, cidr: &str) -> Result<(), ApiError> {
    let r =
        catalog::builtin("networking.k8s.io", "v1", "servicecidrs").expect("service CIDRs served");
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let wanted = default_service_cidr(&[cidr.to_owned()], &now);
    let opts = WriteOptions::default();
    let existing = match objects.get(r, None, DEFAULT_NAME).await {
        Ok(existing) => existing,
        Err(ApiError::NotFound(_)) => match objects.create(r, None, wanted.clone(), &opts).await {
            Ok(created) => created,
            Err(ApiError::AlreadyExists(_)) => objects.get(r, None, DEFAULT_NAME).await?,
            Err(e) => return Err(e),
        },
        Err(e) => return Err(e),
    };
    if existing.pointer("/status/conditions").is_some()
        || existing.pointer("/metadata/deletionTimestamp").is_some()
    {
        return Ok(());
    }
    let mut ready = existing;
    ready["status"] = wanted["status"].clone();
    match objects
        .update(r, None, DEFAULT_NAME, ready, Some("status"), &opts)
        .await
    {
        Ok(_) | Err(ApiError::Conflict(..)) | Err(ApiError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
