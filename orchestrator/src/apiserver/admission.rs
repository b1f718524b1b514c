//! Admission steps that need the server's configuration or the store rather
//! than the kind's pure rules: upstream's DefaultTolerationSeconds for new pods,
//! the ServiceAccount default, NamespaceLifecycle's immortal namespaces, the
//! Priority plugin (pods' priority from their PriorityClass, one global default
//! class), DefaultIngressClass, DefaultStorageClass and
//! StorageObjectInUseProtection (the protection finalizers of new claims and
//! volumes).

use berth_api::kinds::obj_mut;
use serde_json::{json, Value};

use super::catalog::{self, ResourceInfo};
use super::errors::ApiError;
use super::objects::{decode, target};
use crate::store::Store;

/// Namespaces every cluster needs; upstream refuses to delete them.
pub const IMMORTAL_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Refuses deleting an immortal namespace, with upstream's NamespaceLifecycle message.
pub fn check_delete(r: &ResourceInfo, name: &str) -> Result<(), ApiError> {
    if r.group.is_empty() && r.kind == "Namespace" && IMMORTAL_NAMESPACES.contains(&name) {
        return Err(ApiError::forbidden(
            &target(r, name),
            "this namespace may not be deleted",
        ));
    }
    Ok(())
}

/// Upstream's ServiceAccount admission default: a pod names the service
/// account it runs as, `default` unless it says otherwise.
pub fn default_service_account(pod: &mut Value) {
    if !pod.is_object() {
        return;
    }
    let spec = obj_mut(pod, "spec");
    let name = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .or_else(|| {
            spec.get("serviceAccount")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
        })
        .unwrap_or("default")
        .to_owned();
    spec.insert("serviceAccountName".into(), json!(name));
    spec.insert("serviceAccount".into(), json!(name));
}

/// Seconds the DefaultTolerationSeconds admission gives new pods (upstream's
/// `--default-not-ready-toleration-seconds` / `--default-unreachable-toleration-seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultTolerationSeconds {
    /// `tolerationSeconds` of the `node.kubernetes.io/not-ready:NoExecute` toleration.
    pub not_ready: i64,
    /// `tolerationSeconds` of the `node.kubernetes.io/unreachable:NoExecute` toleration.
    pub unreachable: i64,
}

impl Default for DefaultTolerationSeconds {
    /// 30 s each (upstream: 300): with the 20 s node grace period a lost
    /// node's pods are evicted, and so replaced, within about a minute.
    fn default() -> Self {
        Self {
            not_ready: 30,
            unreachable: 30,
        }
    }
}

/// Upstream's DefaultTolerationSeconds admission plugin, applied to Pods on
/// create: a pod that does not already tolerate `not-ready` / `unreachable`
/// with effect NoExecute (a toleration with an empty key or effect counts)
/// gets an `Exists` toleration for each, bounded by `seconds`. This is what
/// makes pods leave a lost node instead of staying bound to it for ever.
pub fn default_tolerations(pod: &mut Value, seconds: DefaultTolerationSeconds) {
    if !pod.is_object() {
        return;
    }
    let spec = obj_mut(pod, "spec");
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    if !tolerations.is_array() {
        *tolerations = json!([]);
    }
    let list = tolerations.as_array_mut().expect("just made an array");
    let tolerates = |list: &[Value], key: &str| {
        list.iter().any(|t| {
            let field = |name: &str| t.get(name).and_then(Value::as_str).unwrap_or("");
            (field("key") == key || field("key").is_empty())
                && (field("effect") == "NoExecute" || field("effect").is_empty())
        })
    };
    for (key, seconds) in [
        ("node.kubernetes.io/not-ready", seconds.not_ready),
        ("node.kubernetes.io/unreachable", seconds.unreachable),
    ] {
        if !tolerates(list, key) {
            list.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": seconds,
            }));
        }
    }
}

/// The admission steps of a create that read the store, by resource: pods get
/// their priority, a new PriorityClass may not be a second global default,
/// claims get the default class and claims and volumes their protection finalizer.
pub async fn admit_create(
    store: &dyn Store,
    r: &ResourceInfo,
    obj: &mut Value,
) -> Result<(), ApiError> {
    match (r.group.as_str(), r.plural.as_str()) {
        ("", "pods") => pod_priority(obj, &priority_classes(store).await?),
        ("scheduling.k8s.io", "priorityclasses") => {
            single_global_default(obj, &priority_classes(store).await?)
        }
        ("networking.k8s.io", "ingresses") => {
            let classes = stored(store, "networking.k8s.io", "ingressclasses").await?;
            default_ingress_class(obj, &classes);
            Ok(())
        }
        ("", "persistentvolumeclaims") => {
            let classes = stored(store, "storage.k8s.io", "storageclasses").await?;
            default_storage_class(obj, &classes);
            add_finalizer(obj, PVC_PROTECTION);
            Ok(())
        }
        ("", "persistentvolumes") => {
            add_finalizer(obj, PV_PROTECTION);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The finalizer that keeps a claim while a pod uses it (upstream's
/// StorageObjectInUseProtection; the pvc-protection controller removes it).
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
/// The finalizer that keeps a volume while it is Bound (the pv-protection
/// controller removes it).
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";

/// Upstream's StorageObjectInUseProtection admission: a new claim or volume
/// carries its protection `finalizer`, once.
pub fn add_finalizer(obj: &mut Value, finalizer: &str) {
    if !obj.is_object() {
        return;
    }
    let meta = obj_mut(obj, "metadata");
    let list = meta.entry("finalizers").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    let list = list.as_array_mut().expect("just made an array");
    if !list.iter().any(|f| f == finalizer) {
        list.push(json!(finalizer));
    }
}

/// Every stored object of a built-in cluster-scoped resource.
async fn stored(store: &dyn Store, group: &str, plural: &str) -> Result<Vec<Value>, ApiError> {
    let r = catalog::builtin(group, "v1", plural).expect("admission reads served resources");
    let page = store.list(&r.key_prefix(), None, 0).await?;
    page.items.iter().map(decode).collect()
}

/// Every stored PriorityClass.
async fn priority_classes(store: &dyn Store) -> Result<Vec<Value>, ApiError> {
    stored(store, "scheduling.k8s.io", "priorityclasses").await
}

/// Upstream's DefaultIngressClass admission: an Ingress that names no class
/// (neither `spec.ingressClassName` nor the legacy annotation) gets the class
/// marked default; with several, the newest (then the first by name).
pub fn default_ingress_class(ingress: &mut Value, classes: &[Value]) {
    let named = ingress.pointer("/spec/ingressClassName").is_some()
        || ingress
            .pointer("/metadata/annotations/kubernetes.io~1ingress.class")
            .is_some();
    if named || !ingress.is_object() {
        return;
    }
    let chosen = newest_default(classes, &["ingressclass.kubernetes.io~1is-default-class"]);
    if let Some(class) = chosen {
        let name = name_of(class).to_owned();
        obj_mut(ingress, "spec").insert("ingressClassName".into(), json!(name));
    }
}

/// Upstream's DefaultStorageClass admission: a claim that names no class
/// (no `spec.storageClassName`, not even "", and no beta annotation) gets
/// the class marked default; with several, the newest (then the first by name).
pub fn default_storage_class(claim: &mut Value, classes: &[Value]) {
    let named = claim
        .pointer("/spec/storageClassName")
        .is_some_and(|v| !v.is_null())
        || claim
            .pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
            .is_some();
    if named || !claim.is_object() {
        return;
    }
    if let Some(name) = default_storage_class_name(classes) {
        obj_mut(claim, "spec").insert("storageClassName".into(), json!(name));
    }
}

/// The StorageClass upstream treats as the default (`GetDefaultClass`): of
/// those annotated default, the newest, then the first by name. The PV
/// controller gives it retroactively to claims created before it existed.
pub fn default_storage_class_name(classes: &[Value]) -> Option<String> {
    let chosen = newest_default(
        classes,
        &[
            "storageclass.kubernetes.io~1is-default-class",
            "storageclass.beta.kubernetes.io~1is-default-class",
        ],
    );
    chosen.map(|class| name_of(class).to_owned())
}

/// The class marked default by one of `annotations` (JSON-pointer escaped)
/// that upstream's admission picks: the newest, then the first by name.
fn newest_default<'c>(classes: &'c [Value], annotations: &[&str]) -> Option<&'c Value> {
    let created = |c: &Value| {
        c.pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    };
    let is_default = |c: &&Value| {
        annotations.iter().any(|a| {
            c.pointer(&format!("/metadata/annotations/{a}"))
                .and_then(Value::as_str)
                == Some("true")
        })
    };
    classes.iter().filter(is_default).max_by(|a, b| {
        created(a)
            .cmp(&created(b))
            .then_with(|| name_of(b).cmp(name_of(a)))
    })
}

fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The global default class upstream picks: among those marked default, the lowest value.
fn default_class(classes: &[Value]) -> Option<&Value> {
    classes
        .iter()
        .filter(|c| c.get("globalDefault").and_then(Value::as_bool) == Some(true))
        .min_by_key(|c| c.get("value").and_then(Value::as_i64).unwrap_or(0))
}

/// Upstream's Priority admission for a new pod: `spec.priorityClassName` (or
/// the global default class) resolved into `spec.priority` and
/// `spec.preemptionPolicy`; an unknown class or a contradicting value is refused.
pub fn pod_priority(pod: &mut Value, classes: &[Value]) -> Result<(), ApiError> {
    let forbidden = |pod: &Value, why: String| {
        ApiError::Forbidden(format!("pods \"{}\" is forbidden: {why}", name_of(pod)))
    };
    let wanted = pod
        .pointer("/spec/priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let (class_name, priority, policy) = if wanted.is_empty() {
        match default_class(classes) {
            Some(c) => (
                Some(name_of(c).to_owned()),
                c.get("value").and_then(Value::as_i64).unwrap_or(0),
                c.get("preemptionPolicy").cloned(),
            ),
            None => (None, 0, None),
        }
    } else {
        let class = classes
            .iter()
            .find(|c| name_of(c) == wanted)
            .ok_or_else(|| {
                forbidden(
                    pod,
                    format!("no PriorityClass with name {wanted} was found"),
                )
            })?;
        (
            None,
            class.get("value").and_then(Value::as_i64).unwrap_or(0),
            class.get("preemptionPolicy").cloned(),
        )
    };
    if let Some(given) = pod.pointer("/spec/priority").and_then(Value::as_i64) {
        if given != priority {
            return Err(forbidden(pod, format!("the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name")));
        }
    }
    if let (Some(given), Some(computed)) = (
        pod.pointer("/spec/preemptionPolicy")
            .and_then(Value::as_str),
        policy.as_ref().and_then(Value::as_str),
    ) {
        if given != computed {
            return Err(forbidden(pod, format!("the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {computed} from the given PriorityClass name")));
        }
    }
    if !pod.is_object() {
        return Ok(());
    }
    let spec = obj_mut(pod, "spec");
    if let Some(name) = class_name {
        spec.insert("priorityClassName".into(), json!(name));
    }
    spec.insert("priority".into(), json!(priority));
    if let Some(policy) = policy {
        spec.insert("preemptionPolicy".into(), policy);
    }
    Ok(())
}

/// Upstream's Priority admission for a new PriorityClass: only one may be the global default.
pub fn single_global_default(class: &Value, classes: &[Value]) -> Result<(), ApiError> {
    if class.get("globalDefault").and_then(Value::as_bool) != Some(true) {
        return Ok(());
    }
    match default_class(classes) {
        Some(existing) => Err(ApiError::Forbidden(format!(
            "priorityclasses.scheduling.k8s.io \"{}\" is forbidden: PriorityClass {} is already marked as default. Only one default can exist",
            name_of(class),
            name_of(existing)
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_without_a_class_get_the_newest_default_class() {
        let class = |name: &str, default: bool, created: &str| {
            json!({"metadata": {"name": name, "creationTimestamp": created,
                "annotations": {"storageclass.kubernetes.io/is-default-class": if default { "true" } else { "false" }}}})
        };
        let classes = vec![
            class("old", true, "2024-01-01T00:00:00Z"),
            class("new", true, "2025-01-01T00:00:00Z"),
            class("newest-not-default", false, "2026-01-01T00:00:00Z"),
        ];
        // (claim spec, class afterwards)
        let cases = [
            (json!({}), json!("new")),
            (json!({"storageClassName": null}), json!("new")),
            (json!({"storageClassName": ""}), json!("")),
            (json!({"storageClassName": "fast"}), json!("fast")),
        ];
        for (spec, want) in cases {
            let mut claim = json!({"metadata": {"name": "c"}, "spec": spec.clone()});
            default_storage_class(&mut claim, &classes);
            assert_eq!(claim["spec"]["storageClassName"], want, "{spec}");
        }
        let mut annotated = json!({"metadata": {"name": "c", "annotations": {"volume.beta.kubernetes.io/storage-class": "x"}}, "spec": {}});
        default_storage_class(&mut annotated, &classes);
        assert!(annotated["spec"].get("storageClassName").is_none());
        let mut claim = json!({"metadata": {"name": "c"}, "spec": {}});
        default_storage_class(&mut claim, &classes[2..]);
        assert!(claim["spec"].get("storageClassName").is_none());
    }

    #[test]
    fn new_claims_and_volumes_get_their_protection_finalizer_once() {
        // (metadata before, finalizers after)
        let cases = [
            (json!({"name": "c"}), json!([PVC_PROTECTION])),
            (
                json!({"name": "c", "finalizers": null}),
                json!([PVC_PROTECTION]),
            ),
            (
                json!({"name": "c", "finalizers": ["example.com/keep"]}),
                json!(["example.com/keep", PVC_PROTECTION]),
            ),
            (
                json!({"name": "c", "finalizers": [PVC_PROTECTION]}),
                json!([PVC_PROTECTION]),
            ),
        ];
        for (meta, want) in cases {
            let mut claim = json!({"metadata": meta.clone(), "spec": {}});
            add_finalizer(&mut claim, PVC_PROTECTION);
            assert_eq!(claim["metadata"]["finalizers"], want, "{meta}");
        }
        let mut volume = json!({"metadata": {"name": "v"}});
        add_finalizer(&mut volume, PV_PROTECTION);
        assert_eq!(volume["metadata"]["finalizers"], json!([PV_PROTECTION]));
    }

    #[test]
    fn new_pods_get_default_not_ready_and_unreachable_tolerations() {
        let seconds = DefaultTolerationSeconds {
            not_ready: 30,
            unreachable: 7,
        };
        // (tolerations before, keys expected to be added)
        let cases = [
            (
                json!(null),
                vec![
                    "node.kubernetes.io/not-ready",
                    "node.kubernetes.io/unreachable",
                ],
            ),
            (
                json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}]),
                vec!["node.kubernetes.io/not-ready"],
            ),
            (json!([{"operator": "Exists"}]), vec![]),
            (
                json!([{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"}]),
                vec![
                    "node.kubernetes.io/not-ready",
                    "node.kubernetes.io/unreachable",
                ],
            ),
        ];
        for (before, added) in cases {
            let mut pod = json!({"spec": {"containers": []}});
            if !before.is_null() {
                pod["spec"]["tolerations"] = before.clone();
            }
            default_tolerations(&mut pod, seconds);
            let after = pod["spec"]["tolerations"].as_array().unwrap().clone();
            let old = before.as_array().cloned().unwrap_or_default();
            assert_eq!(after[..old.len()], old[..], "{before}");
            let new: Vec<&str> = after[old.len()..]
                .iter()
                .map(|t| t["key"].as_str().unwrap())
                .collect();
            assert_eq!(new, added, "{before}");
            for t in &after[old.len()..] {
                let expected = if t["key"] == "node.kubernetes.io/unreachable" {
                    7
                } else {
                    30
                };
                assert_eq!(t["tolerationSeconds"], json!(expected));
                assert_eq!(t["effect"], json!("NoExecute"));
            }
        }
    }

    #[test]
    fn pods_get_their_class_priority_or_the_default_one() {
        let classes = vec![
            json!({"metadata": {"name": "system-node-critical"}, "value": 2_000_001_000, "preemptionPolicy": "PreemptLowerPriority"}),
            json!({"metadata": {"name": "low"}, "value": 10, "globalDefault": true, "preemptionPolicy": "Never"}),
        ];
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"priorityClassName": "system-node-critical"}});
        pod_priority(&mut pod, &classes).unwrap();
        assert_eq!(pod["spec"]["priority"], 2_000_001_000i64);
        assert_eq!(pod["spec"]["preemptionPolicy"], "PreemptLowerPriority");
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {}});
        pod_priority(&mut pod, &classes).unwrap();
        assert_eq!(
            (
                pod["spec"]["priorityClassName"].clone(),
                pod["spec"]["priority"].clone()
            ),
            (json!("low"), json!(10))
        );
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {}});
        pod_priority(&mut pod, &classes[..1]).unwrap();
        assert_eq!(pod["spec"]["priority"], 0);
        let cases = [
            (json!({"priorityClassName": "foo"}), "pods \"x\" is forbidden: no PriorityClass with name foo was found"),
            (json!({"priorityClassName": "low", "priority": 3}), "pods \"x\" is forbidden: the integer value of priority (3) must not be provided in pod spec; priority admission controller computed 10 from the given PriorityClass name"),
        ];
        for (spec, message) in cases {
            let mut pod = json!({"metadata": {"name": "x"}, "spec": spec});
            match pod_priority(&mut pod, &classes) {
                Err(ApiError::Forbidden(got)) => assert_eq!(got, message),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn only_one_class_is_the_global_default() {
        let existing = vec![json!({"metadata": {"name": "a"}, "value": 1, "globalDefault": true})];
        let new = json!({"metadata": {"name": "b"}, "value": 2, "globalDefault": true});
        match single_global_default(&new, &existing) {
            Err(ApiError::Forbidden(m)) => assert_eq!(m, "priorityclasses.scheduling.k8s.io \"b\" is forbidden: PriorityClass a is already marked as default. Only one default can exist"),
            other => panic!("{other:?}"),
        }
        assert!(single_global_default(&new, &[]).is_ok());
    }

    #[test]
    fn ingresses_without_a_class_get_the_newest_default_one() {
        let class = |name: &str, created: &str, default: bool| {
            json!({"metadata": {"name": name, "creationTimestamp": created,
                "annotations": {"ingressclass.kubernetes.io/is-default-class": if default { "true" } else { "false" }}}})
        };
        let classes = vec![
            class("old", "2025-01-01T00:00:00Z", true),
            class("new", "2025-02-01T00:00:00Z", true),
            class("newest-not-default", "2025-03-01T00:00:00Z", false),
        ];
        let mut ingress = json!({"metadata": {"name": "i"}, "spec": {}});
        default_ingress_class(&mut ingress, &classes);
        assert_eq!(ingress["spec"]["ingressClassName"], "new");
        let mut named = json!({"metadata": {"name": "i"}, "spec": {"ingressClassName": "mine"}});
        default_ingress_class(&mut named, &classes);
        assert_eq!(named["spec"]["ingressClassName"], "mine");
        let mut legacy = json!({"metadata": {"name": "i", "annotations": {"kubernetes.io/ingress.class": "nginx"}}, "spec": {}});
        default_ingress_class(&mut legacy, &classes);
        assert!(legacy["spec"].get("ingressClassName").is_none());
        let mut none = json!({"metadata": {"name": "i"}, "spec": {}});
        default_ingress_class(&mut none, &classes[2..]);
        assert!(none["spec"].get("ingressClassName").is_none());
    }
}
