//! Pod Security admission on the server side: reads the namespace's
//! `pod-security.kubernetes.io/*` labels (and, when a namespace's enforce
//! level tightens, its pods) and applies `berth_api::pod_security` to pods
//! (enforce, audit, warn), workload pod templates (audit and warn only) and
//! namespaces (label validation, warnings for existing pods). The rules
//! themselves live in the api crate; this file only fetches what they need.

use berth_api::pod_security::{self as psa, Configuration, Policy};
use serde_json::Value;

use super::catalog::{self, ResourceInfo};
use super::errors::ApiError;
use super::objects::{decode, target};
use crate::store::Store;

/// Pod subresources upstream never evaluates.
const IGNORED_POD_SUBRESOURCES: [&str; 8] = [
    "exec",
    "attach",
    "binding",
    "eviction",
    "log",
    "portforward",
    "proxy",
    "status",
];

/// The warnings of an admitted create or update (`old` is None on create),
/// or the reason it is refused: a pod violating its namespace's enforced
/// level (403 Forbidden), a namespace with invalid labels (422 Invalid).
pub async fn admit(
    store: &dyn Store,
    config: &Configuration,
    r: &ResourceInfo,
    old: Option<&Value>,
    new: &Value,
    subresource: Option<&str>,
) -> Result<Vec<String>, ApiError> {
    if !r.builtin {
        return Ok(Vec::new());
    }
    let subresource = subresource.unwrap_or("");
    match (r.group.as_str(), r.plural.as_str()) {
        ("", "namespaces") if subresource.is_empty() => {
            admit_namespace(store, config, r, old, new).await
        }
        ("", "pods") if !IGNORED_POD_SUBRESOURCES.contains(&subresource) => {
            if exempt_namespace(config, new)
                || old.is_some_and(|old| !psa::significant_pod_update(old, new))
            {
                return Ok(Vec::new());
            }
            let policy = namespace_policy(store, config, new).await?;
            if policy.fully_privileged() || config.exempt_runtime_class(psa::view(new).spec) {
                return Ok(Vec::new());
            }
            let decision = psa::decide(&policy, &psa::view(new), true);
            record_audit(r, new, decision.audit.as_deref());
            match decision.forbidden {
                Some(why) => Err(ApiError::forbidden(&target(r, name_of(new)), why)),
                None => Ok(decision.warnings),
            }
        }
        (group, plural) if subresource.is_empty() => {
            let Some(template) = psa::pod_template(group, plural, new) else {
                return Ok(Vec::new());
            };
            if exempt_namespace(config, new) || config.exempt_runtime_class(template.spec) {
                return Ok(Vec::new());
            }
            let policy = namespace_policy(store, config, new).await?;
            let decision = psa::decide(&policy, &template, false);
            record_audit(r, new, decision.audit.as_deref());
            Ok(decision.warnings)
        }
        _ => Ok(Vec::new()),
    }
}

/// Label validation of a namespace, and on update the warnings for its
/// existing pods when its enforce level tightens.
async fn admit_namespace(
    store: &dyn Store,
    config: &Configuration,
    r: &ResourceInfo,
    old: Option<&Value>,
    new: &Value,
) -> Result<Vec<String>, ApiError> {
    let labels = psa::labels_of(new);
    let (policy, causes) = psa::policy_from_labels(&labels, config.defaults);
    let invalid = || ApiError::Invalid(target(r, name_of(new)), causes.clone());
    let name = name_of(new);
    let exempt = || {
        config
            .exempt_namespace(name)
            .then(|| psa::exempt_namespace_warning(name, &policy, &labels, &config.defaults))
            .flatten()
    };
    let Some(old) = old else {
        return if causes.is_empty() {
            Ok(exempt().into_iter().collect())
        } else {
            Err(invalid())
        };
    };
    let (old_policy, old_causes) = psa::policy_from_labels(&psa::labels_of(old), config.defaults);
    if !causes.is_empty() && causes != old_causes {
        return Err(invalid());
    }
    if !psa::enforce_tightened(&old_policy, &policy) {
        return Ok(Vec::new());
    }
    if config.exempt_namespace(name) {
        return Ok(exempt().into_iter().collect());
    }
    let pods = catalog::builtin("", "v1", "pods").expect("pods are served");
    let warnings = match store
        .list(&format!("{}{name}/", pods.key_prefix()), None, 0)
        .await
    {
        Ok(page) => {
            let pods: Vec<Value> = page.items.iter().filter_map(|kv| decode(kv).ok()).collect();
            psa::namespace_pod_warnings(name, policy.enforce, &pods)
        }
        Err(_) => vec!["failed to list pods while checking new PodSecurity enforce level".into()],
    };
    Ok(warnings)
}

/// The policy of the namespace `obj` lives in; the configured defaults when
/// the namespace is not there (NamespaceLifecycle answers that case).
async fn namespace_policy(
    store: &dyn Store,
    config: &Configuration,
    obj: &Value,
) -> Result<Policy, ApiError> {
    let Some(ns) = obj.pointer("/metadata/namespace").and_then(Value::as_str) else {
        return Ok(config.defaults);
    };
    let namespaces = catalog::builtin("", "v1", "namespaces").expect("namespaces are served");
    let Some(kv) = store.get(&namespaces.key(None, ns)).await? else {
        return Ok(config.defaults);
    };
    let namespace = decode(&kv)?;
    Ok(psa::policy_from_labels(&psa::labels_of(&namespace), config.defaults).0)
}

/// `obj` lives in a namespace the configuration exempts.
fn exempt_namespace(config: &Configuration, obj: &Value) -> bool {
    obj.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .is_some_and(|ns| config.exempt_namespace(ns))
}

/// Upstream writes the audit level's violations as the audit annotation
/// `pod-security.kubernetes.io/audit-violations`; berth has no audit log, so
/// they go to the server's log as an event of that name.
fn record_audit(r: &ResourceInfo, obj: &Value, violations: Option<&str>) {
    if let Some(violations) = violations {
        let namespace = obj
            .pointer("/metadata/namespace")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        tracing::info!(
            target: "audit",
            resource = %r.plural,
            namespace,
            name = name_of(obj),
            annotation = psa::AUDIT_VIOLATIONS_ANNOTATION,
            "{violations}"
        );
    }
}

fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::apiserver::allocator::Allocator;
    use crate::apiserver::objects::{Objects, WriteOptions};
    use crate::store::sqlite::SqliteStore;

    async fn objects(dir: &tempfile::TempDir) -> Objects {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("db")).unwrap());
        let objects = Objects::new(
            Arc::clone(&store),
            Allocator::new(Arc::clone(&store), "10.43.0.0/16".parse().unwrap()),
        );
        let namespaces = catalog::builtin("", "v1", "namespaces").unwrap();
        let namespace = json!({"metadata": {"name": "team",
            "labels": {"pod-security.kubernetes.io/enforce": "baseline"}}});
        objects
            .create(namespaces, None, namespace, &WriteOptions::default())
            .await
            .unwrap();
        objects
    }

    fn pod(name: &str, privileged: bool) -> Value {
        json!({"metadata": {"name": name}, "spec": {"containers": [
            {"name": "c", "image": "busybox", "securityContext": {"privileged": privileged}}]}})
    }

    #[tokio::test]
    async fn enforced_pods_are_refused_and_templates_only_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let objects = objects(&dir).await;
        let pods = catalog::builtin("", "v1", "pods").unwrap();
        let opts = WriteOptions::default();
        match objects.create(pods, Some("team"), pod("p", true), &opts).await {
            Err(ApiError::Forbidden(message)) => assert_eq!(
                message,
                "pods \"p\" is forbidden: violates PodSecurity \"baseline:latest\": privileged (container \"c\" must not set securityContext.privileged=true)"
            ),
            other => panic!("{other:?}"),
        }
        assert!(opts.warnings.take().is_empty());
        objects
            .create(pods, Some("team"), pod("ok", false), &opts)
            .await
            .unwrap();
        let jobs = catalog::builtin("batch", "v1", "jobs").unwrap();
        let job = json!({"metadata": {"name": "j"}, "spec": {"template": {
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": true}}]}}}});
        objects
            .create(jobs, Some("team"), job, &opts)
            .await
            .unwrap();
        assert_eq!(
            opts.warnings.take(),
            ["would violate PodSecurity \"baseline:latest\": privileged (container \"c\" must not set securityContext.privileged=true)"]
        );
    }

    #[tokio::test]
    async fn configured_defaults_apply_to_unlabelled_namespaces_except_exempt_ones() {
        let dir = tempfile::tempdir().unwrap();
        let config = Configuration::from_document(&json!({
            "apiVersion": "pod-security.admission.config.k8s.io/v1",
            "kind": "PodSecurityConfiguration",
            "defaults": {"enforce": "baseline"},
            "exemptions": {"namespaces": ["free"], "runtimeClasses": ["kata"]},
        }))
        .unwrap();
        let objects = objects(&dir).await.with_pod_security(config);
        let namespaces = catalog::builtin("", "v1", "namespaces").unwrap();
        let pods = catalog::builtin("", "v1", "pods").unwrap();
        let opts = WriteOptions::default();
        for name in ["plain", "free"] {
            let namespace = json!({"metadata": {"name": name}});
            objects
                .create(namespaces, None, namespace, &opts)
                .await
                .unwrap();
        }
        let refused = objects
            .create(pods, Some("plain"), pod("p", true), &opts)
            .await;
        assert!(
            matches!(refused, Err(ApiError::Forbidden(_))),
            "{refused:?}"
        );
        let mut kata = pod("k", true);
        kata["spec"]["runtimeClassName"] = json!("kata");
        objects
            .create(pods, Some("plain"), kata, &opts)
            .await
            .unwrap();
        objects
            .create(pods, Some("free"), pod("p", true), &opts)
            .await
            .unwrap();
        let labelled = json!({"metadata": {"name": "free", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}});
        objects
            .update(namespaces, None, "free", labelled, None, &opts)
            .await
            .unwrap();
        assert_eq!(
            opts.warnings.take(),
            ["namespace \"free\" is exempt from Pod Security, and the policy (enforce=restricted:latest) will be ignored"]
        );
    }

    #[tokio::test]
    async fn namespace_labels_are_validated_and_tightening_warns_about_pods() {
        let dir = tempfile::tempdir().unwrap();
        let objects = objects(&dir).await;
        let namespaces = catalog::builtin("", "v1", "namespaces").unwrap();
        let opts = WriteOptions::default();
        let relabel = |level: &str| json!({"metadata": {"name": "team", "labels": {"pod-security.kubernetes.io/enforce": level}}});
        match objects
            .update(namespaces, None, "team", relabel("strict"), None, &opts)
            .await
        {
            Err(ApiError::Invalid(_, causes)) => assert_eq!(
                causes[0].message,
                "Invalid value: \"strict\": must be one of privileged, baseline, restricted"
            ),
            other => panic!("{other:?}"),
        }
        let pods = catalog::builtin("", "v1", "pods").unwrap();
        objects
            .create(pods, Some("team"), pod("plain", false), &opts)
            .await
            .unwrap();
        objects
            .update(namespaces, None, "team", relabel("restricted"), None, &opts)
            .await
            .unwrap();
        assert_eq!(
            opts.warnings.take(),
            [
                "existing pods in namespace \"team\" violate the new PodSecurity enforce level \"restricted:latest\"",
                "plain: allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile",
            ]
        );
        // A label change of the now violating pod is not evaluated again.
        let mut labelled = objects.get(pods, Some("team"), "plain").await.unwrap();
        labelled["metadata"]["labels"] = json!({"touched": "yes"});
        objects
            .update(pods, Some("team"), "plain", labelled, None, &opts)
            .await
            .unwrap();
    }
}
