//! The tokencleaner controller: deletes bootstrap token Secrets
//! (`bootstrap.kubernetes.io/token` in `kube-system`) once their
//! `expiration` has passed, and looks again when the next one is due.

use std::sync::Arc;
use std::time::Duration;

use berth_api::bootstrap_token;
use berth_observability::workqueue::RunWithWorkqueue;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::ResourceExt;
use tokio_util::sync::CancellationToken;

use super::ControllerError;

/// What to do with a Secret at `now`: delete it, look again after a while,
/// or wait for it to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An expired token: delete it.
    Delete,
    /// A token that expires later: look again then.
    RequeueAfter(Duration),
    /// Not a token, or one without expiry.
    Nothing,
}

/// The step for `secret` (as JSON) at `now`.
pub fn step(secret: &serde_json::Value, now: jiff::Timestamp) -> Step {
    if secret.get("type").and_then(serde_json::Value::as_str) != Some(bootstrap_token::SECRET_TYPE)
    {
        return Step::Nothing;
    }
    match bootstrap_token::expiration(secret) {
        Some(at) if at <= now => Step::Delete,
        Some(at) => {
            let left = now.duration_until(at).unsigned_abs();
            Step::RequeueAfter(left + Duration::from_secs(1))
        }
        None if bootstrap_token::data_value(secret, "expiration").is_some() => Step::Delete,
        None => Step::Nothing,
    }
}

struct Context {
    client: kube::Client,
}

async fn reconcile(secret: Arc<Secret>, ctx: Arc<Context>) -> Result<Action, kube::Error> {
    let value = serde_json::to_value(secret.as_ref()).unwrap_or_default();
    match step(&value, jiff::Timestamp::now()) {
        Step::Nothing => Ok(Action::await_change()),
        Step::RequeueAfter(after) => Ok(Action::requeue(after)),
        Step::Delete => {
            let secrets: Api<Secret> =
                Api::namespaced(ctx.client.clone(), bootstrap_token::NAMESPACE);
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: secret.uid(),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match secrets.delete(&secret.name_any(), &params).await {
                Ok(_) => {
                    tracing::info!(secret = %secret.name_any(), "deleted expired bootstrap token")
                }
                Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
                Err(e) => return Err(e),
            }
            Ok(Action::await_change())
        }
    }
}

fn error_policy(_secret: Arc<Secret>, error: &kube::Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, "bootstrap token cleanup failed");
    Action::requeue(Duration::from_secs(5))
}

/// Runs the token cleaner until `cancel` fires.
pub async fn run(client: kube::Client, cancel: CancellationToken) -> Result<(), ControllerError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), bootstrap_token::NAMESPACE);
    let context = Arc::new(Context { client });
    Controller::new(secrets, watcher::Config::default())
        .graceful_shutdown_on(async move { cancel.cancelled().await })
        .run_with_workqueue("token_cleaner", reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "token cleaner event");
            }
        })
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expired_tokens_are_deleted_and_others_waited_for() {
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let token = |expiration: Option<&str>| {
            let mut data = json!({"token-id": "abcdef"});
            if let Some(at) = expiration {
                data["expiration"] = json!(at);
            }
            json!({"type": bootstrap_token::SECRET_TYPE, "stringData": data})
        };
        let cases = [
            ("expired", token(Some("2025-12-31T23:59:59Z")), Step::Delete),
            ("unparseable", token(Some("tomorrow")), Step::Delete),
            (
                "later",
                token(Some("2026-01-01T00:01:00Z")),
                Step::RequeueAfter(Duration::from_secs(61)),
            ),
            ("no expiry", token(None), Step::Nothing),
            ("other secret", json!({"type": "Opaque"}), Step::Nothing),
        ];
        for (name, secret, want) in cases {
            assert_eq!(step(&secret, now), want, "{name}");
        }
    }
}
