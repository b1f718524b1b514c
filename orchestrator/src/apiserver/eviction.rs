//! `POST pods/NAME/eviction` (policy/v1 and v1beta1 Eviction bodies), as
//! upstream's eviction REST: a pod covered by a PodDisruptionBudget is only
//! deleted once the budget's `disruptionsAllowed` has been spent under
//! optimistic concurrency (the spend and the check are one guarded write), and
//! a refusal is upstream's 429. The decisions live in [`budget`]; this file
//! reads, writes and retries.

mod budget;

use std::time::Duration;

use http::StatusCode;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::{json, Value};

use self::budget::{
    can_ignore_budgets, check_and_decrement, covering, pod_is_ready,
    should_enforce_resource_version, still_processing, unready_verdict, Unready,
    MORE_THAN_ONE_BUDGET,
};
use super::catalog::{self, ResourceInfo};
use super::errors::ApiError;
use super::handlers::delete_options_from;
use super::objects::{decode_as, target, DeleteOptions, Objects, WriteOptions};
use super::request::Query;

/// Attempts at a conflicting write before giving up (upstream's `EvictionsRetry` steps).
const RETRIES: usize = 20;
/// Pause between attempts after a conflict.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// The `Status` upstream answers an eviction with: success, or the 500 of a
/// pod covered by several budgets.
fn status(code: StatusCode, message: Option<&str>) -> (StatusCode, Value) {
    let mut body =
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "code": code.as_u16()});
    match message {
        None => body["status"] = json!("Success"),
        Some(message) => {
            body["status"] = json!("Failure");
            body["message"] = json!(message);
        }
    }
    (code, body)
}

fn budgets_resource() -> &'static ResourceInfo {
    catalog::builtin("policy", "v1", "poddisruptionbudgets").expect("budgets are served")
}

fn is_conflict(e: &ApiError) -> bool {
    matches!(e, ApiError::Conflict(..))
}

/// Evicts pod `name`: the code and `Status` to answer, or the refusal.
/// `dry_run` is the request's own `?dryRun=All`, which applies to the
/// eviction's DeleteOptions as upstream's `propagateDryRun` does.
pub async fn evict(
    objects: &Objects,
    pods: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    body: &Value,
    dry_run: bool,
) -> Result<(StatusCode, Value), ApiError> {
    if body.pointer("/metadata/name").and_then(Value::as_str) != Some(name) {
        return Err(ApiError::BadRequest(
            "name in URL does not match name in Eviction object".into(),
        ));
    }
    let raw_options = body
        .get("deleteOptions")
        .filter(|o| !o.is_null())
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut options = delete_options_from(&raw_options, &Query::default())?;
    options.dry_run |= dry_run;
    let pinned_by_client = options.precondition_resource_version.is_some();

    // A pod the budgets do not guard is deleted at once, retried on conflicts
    // unless the client pinned a resourceVersion itself.
    let mut attempts = 0;
    let pod = loop {
        attempts += 1;
        let pod = objects.get(pods, ns, name).await?;
        if !can_ignore_budgets(&pod) {
            break pod;
        }
        let mut opts = options.clone();
        if should_enforce_resource_version(&pod) && !pinned_by_client {
            opts.precondition_resource_version = resource_version(&pod);
        }
        match mark_and_delete(objects, pods, ns, name, opts).await {
            Err(e) if is_conflict(&e) && !pinned_by_client && attempts < RETRIES => {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Err(e) => return Err(e),
            Ok(()) => return Ok(status(StatusCode::CREATED, None)),
        }
    };

    let namespace = ns.unwrap_or_default();
    let budgets = covering(&pod, list_budgets(objects, namespace).await?);
    let mut unguarded = false;
    let mut budget_name = String::new();
    match budgets.as_slice() {
        [] => {}
        [_, _, ..] => {
            return Ok(status(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(MORE_THAN_ONE_BUDGET),
            ))
        }
        [pdb] => {
            budget_name = pdb.metadata.name.clone().unwrap_or_default();
            if !pod_is_ready(&pod) && unready_verdict(pdb) == Unready::DeleteUnguarded {
                unguarded = true;
            } else {
                spend_budget(objects, namespace, pdb.clone(), name, options.dry_run).await?;
            }
        }
    }

    let mut opts = options.clone();
    if unguarded {
        // The pod must not have turned ready since it was judged unready.
        opts.precondition_resource_version = resource_version(&pod);
    }
    match mark_and_delete(objects, pods, ns, name, opts).await {
        Err(e) if is_conflict(&e) && unguarded && !pinned_by_client => {
            Err(still_processing(&budget_name))
        }
        Err(e) => Err(e),
        Ok(()) => Ok(status(StatusCode::CREATED, None)),
    }
}

fn resource_version(obj: &Value) -> Option<String> {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The namespace's budgets, decoded (one that does not decode covers nothing).
async fn list_budgets(
    objects: &Objects,
    namespace: &str,
) -> Result<Vec<PodDisruptionBudget>, ApiError> {
    let r = budgets_resource();
    let prefix = format!("{}{namespace}/", r.key_prefix());
    let page = objects.store().list(&prefix, None, 0).await?;
    let mut budgets = Vec::new();
    for kv in &page.items {
        if let Ok(pdb) = serde_json::from_value(decode_as(r, kv)?) {
            budgets.push(pdb);
        }
    }
    Ok(budgets)
}

/// Checks and spends one disruption of `pdb` through its status, guarded by
/// its resourceVersion; on a conflict the budget is read again and checked
/// again (a refusal is final).
async fn spend_budget(
    objects: &Objects,
    namespace: &str,
    mut pdb: PodDisruptionBudget,
    pod_name: &str,
    dry_run: bool,
) -> Result<(), ApiError> {
    let r = budgets_resource();
    let name = pdb.metadata.name.clone().unwrap_or_default();
    for attempt in 0..RETRIES {
        if attempt > 0 {
            tokio::time::sleep(RETRY_PAUSE).await;
            let fresh = objects.get(r, Some(namespace), &name).await?;
            pdb = serde_json::from_value(fresh).map_err(|e| ApiError::Internal(e.to_string()))?;
        }
        let Some(spent) =
            check_and_decrement(pdb.clone(), pod_name, dry_run, jiff::Timestamp::now())?
        else {
            return Ok(());
        };
        let spent = serde_json::to_value(&spent).map_err(|e| ApiError::Internal(e.to_string()))?;
        let opts = WriteOptions {
            subresource: Some("status".into()),
            ..Default::default()
        };
        match objects
            .update(r, Some(namespace), &name, spent, Some("status"), &opts)
            .await
        {
            Err(e) if is_conflict(&e) => continue,
            Err(e) => return Err(e),
            Ok(_) => return Ok(()),
        }
    }
    Err(ApiError::Timeout(
        format!("couldn't update PodDisruptionBudget \"{name}\" due to conflicts"),
        10,
    ))
}

/// Upstream's `addConditionAndDeletePod`: outside a dry run the pod first
/// gets `DisruptionTarget=True` (reason EvictionByEvictionAPI), honouring the
/// preconditions, then is deleted with `opts` (its pinned resourceVersion
/// moved to the one that write produced).
async fn mark_and_delete(
    objects: &Objects,
    pods: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    mut opts: DeleteOptions,
) -> Result<(), ApiError> {
    if !opts.dry_run {
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let preconditions = (
            opts.precondition_uid.clone(),
            opts.precondition_resource_version.clone(),
        );
        let revision = objects
            .update_bypassing_validation(pods, ns, name, |pod| {
                check_preconditions(pods, name, pod, &preconditions)?;
                let mut marked = pod.clone();
                mark_disruption_target(&mut marked, &now);
                Ok(marked)
            })
            .await?;
        if opts.precondition_resource_version.is_some() {
            opts.precondition_resource_version = Some(revision.to_string());
        }
    }
    objects.delete(pods, ns, name, &opts).await.map(|_| ())
}

fn check_preconditions(
    pods: &ResourceInfo,
    name: &str,
    pod: &Value,
    (uid, rv): &(Option<String>, Option<String>),
) -> Result<(), ApiError> {
    let current_uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    if let Some(uid) = uid
        .as_deref()
        .filter(|u| !u.is_empty() && *u != current_uid)
    {
        return Err(ApiError::Conflict(
            target(pods, name),
            format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {current_uid}"),
        ));
    }
    let current_rv = resource_version(pod).unwrap_or_default();
    if let Some(rv) = rv.as_deref().filter(|r| !r.is_empty() && *r != current_rv) {
        return Err(ApiError::Conflict(
            target(pods, name),
            format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {current_rv}"),
        ));
    }
    Ok(())
}

/// Sets the pod's `DisruptionTarget` condition, keeping its transition time
/// when it already said True.
fn mark_disruption_target(pod: &mut Value, now: &str) {
    if !pod.get("status").is_some_and(Value::is_object) {
        pod["status"] = json!({});
    }
    let conditions = pod["status"]
        .as_object_mut()
        .expect("status is an object")
        .entry("conditions")
        .or_insert_with(|| json!([]));
    let Some(list) = conditions.as_array_mut() else {
        return;
    };
    let since = list
        .iter()
        .find(|c| c["type"] == "DisruptionTarget" && c["status"] == "True")
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(now));
    list.retain(|c| c["type"] != "DisruptionTarget");
    list.push(json!({
        "type": "DisruptionTarget",
        "status": "True",
        "lastProbeTime": null,
        "lastTransitionTime": since,
        "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting",
    }));
}
