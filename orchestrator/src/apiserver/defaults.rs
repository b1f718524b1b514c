//! Upstream defaulting for the built-in kinds, so an object read back from berth
//! looks like one read back from kube-apiserver (`kubectl get -o yaml`, apply diffs).

use serde_json::{json, Map, Value};

fn obj_mut<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    let map = v.as_object_mut().expect("defaulting an object");
    let entry = map.entry(key.to_owned()).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("just made an object")
}

fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_owned(), value);
    }
}

/// Removes `null` fields: in Kubernetes JSON a null is an unset field, and dropping
/// them makes a JSON body and the same object sent as protobuf store identically.
pub fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// Applies defaults to a new or updated object of `kind` (after dropping nulls).
pub fn apply(kind: &str, obj: &mut Value) {
    if !obj.is_object() {
        return;
    }
    drop_nulls(obj);
    match kind {
        "Pod" => {
            default_pod_spec(obj_mut(obj, "spec"));
            let status = obj_mut(obj, "status");
            set_default(status, "phase", json!("Pending"));
            let qos = qos_class(obj.get("spec").unwrap_or(&Value::Null));
            set_default(obj_mut(obj, "status"), "qosClass", json!(qos));
        }
        "Deployment" => {
            let spec = obj_mut(obj, "spec");
            set_default(spec, "replicas", json!(1));
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "progressDeadlineSeconds", json!(600));
            let strategy = spec
                .entry("strategy")
                .or_insert_with(|| json!({}))
                .as_object_mut();
            if let Some(strategy) = strategy {
                set_default(strategy, "type", json!("RollingUpdate"));
                if strategy.get("type") == Some(&json!("RollingUpdate")) {
                    let rolling = strategy.entry("rollingUpdate").or_insert_with(|| json!({}));
                    if let Some(rolling) = rolling.as_object_mut() {
                        set_default(rolling, "maxUnavailable", json!("25%"));
                        set_default(rolling, "maxSurge", json!("25%"));
                    }
                }
            }
            default_template(spec);
        }
        "ReplicaSet" => {
            let spec = obj_mut(obj, "spec");
            set_default(spec, "replicas", json!(1));
            default_template(spec);
        }
        "Service" => default_service(obj_mut(obj, "spec")),
        "Secret" => {
            if let Some(map) = obj.as_object_mut() {
                set_default(map, "type", json!("Opaque"));
                fold_string_data(map);
            }
        }
        "Namespace" => {
            let name = obj
                .pointer("/metadata/name")
                .cloned()
                .unwrap_or(Value::Null);
            if let Value::String(name) = name {
                let labels = obj_mut(obj_mut_value(obj, "metadata"), "labels");
                labels.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
            set_default(obj_mut(obj, "spec"), "finalizers", json!(["kubernetes"]));
            set_default(obj_mut(obj, "status"), "phase", json!("Active"));
        }
        _ => {}
    }
}

/// Upstream folds the write-only `stringData` into base64 `data` (it wins on clashes).
fn fold_string_data(secret: &mut Map<String, Value>) {
    use base64::Engine;
    let Some(Value::Object(string_data)) = secret.remove("stringData") else {
        return;
    };
    let data = secret.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    let data = data.as_object_mut().expect("just made an object");
    for (key, value) in string_data {
        let text = value.as_str().unwrap_or_default();
        data.insert(
            key,
            json!(base64::engine::general_purpose::STANDARD.encode(text)),
        );
    }
}

fn obj_mut_value<'a>(v: &'a mut Value, key: &str) -> &'a mut Value {
    obj_mut(v, key);
    v.get_mut(key).expect("just inserted")
}

fn default_template(spec: &mut Map<String, Value>) {
    let template = spec.entry("template").or_insert_with(|| json!({}));
    if template.is_object() {
        default_pod_spec(obj_mut(template, "spec"));
        obj_mut(template, "metadata");
    }
}

/// Defaults of `core/v1.PodSpec` and its containers.
pub fn default_pod_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for container in containers.iter_mut().filter_map(Value::as_object_mut) {
                default_container(container);
            }
        }
    }
}

fn default_container(c: &mut Map<String, Value>) {
    let image = c.get("image").and_then(Value::as_str).unwrap_or("");
    let policy = if image_tag_is_latest(image) {
        "Always"
    } else {
        "IfNotPresent"
    };
    set_default(c, "imagePullPolicy", json!(policy));
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    set_default(c, "resources", json!({}));
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(port, "protocol", json!("TCP"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(probe) = c.get_mut(probe).and_then(Value::as_object_mut) {
            set_default(probe, "timeoutSeconds", json!(1));
            set_default(probe, "periodSeconds", json!(10));
            set_default(probe, "successThreshold", json!(1));
            set_default(probe, "failureThreshold", json!(3));
            if let Some(http) = probe.get_mut("httpGet").and_then(Value::as_object_mut) {
                set_default(http, "path", json!("/"));
                set_default(http, "scheme", json!("HTTP"));
            }
        }
    }
}

/// Upstream pulls `:latest` (or untagged, undigested) images every time.
fn image_tag_is_latest(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => tag == "latest",
        None => true,
    }
}

fn default_service(spec: &mut Map<String, Value>) {
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    let service_type = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_owned();
    if service_type != "ExternalName" {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
        set_default(spec, "ipFamilies", json!(["IPv4"]));
        set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
    }
    if matches!(service_type.as_str(), "NodePort" | "LoadBalancer") {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if service_type == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(port, "protocol", json!("TCP"));
            if let Some(p) = port.get("port").cloned() {
                set_default(port, "targetPort", p);
            }
        }
    }
}

/// Upstream's QoS class: Guaranteed, Burstable or BestEffort.
pub fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.get(k).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any_set = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        if requests.is_some_and(|r| !r.is_empty()) || limits.is_some_and(|l| !l.is_empty()) {
            any_set = true;
        }
        for resource in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(resource));
            let request = requests.and_then(|r| r.get(resource)).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    if !any_set {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_gets_upstream_defaults() {
        let mut d = json!({"spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}});
        apply("Deployment", &mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
    }

    #[test]
    fn secret_string_data_becomes_base64_data() {
        let mut s = json!({"data": {"a": "eA=="}, "stringData": {"password": "s3cret", "a": "y"}});
        apply("Secret", &mut s);
        assert_eq!(
            s,
            json!({"data": {"a": "eQ==", "password": "czNjcmV0"}, "type": "Opaque"})
        );
    }

    #[test]
    fn nulls_are_unset_fields() {
        let mut d = json!({"spec": {"template": {"metadata": {"creationTimestamp": null, "labels": {"a": "b"}}}}, "x": [{"y": null}]});
        drop_nulls(&mut d);
        assert_eq!(
            d,
            json!({"spec": {"template": {"metadata": {"labels": {"a": "b"}}}}, "x": [{}]})
        );
    }

    #[test]
    fn image_pull_policy_depends_on_tag() {
        for (image, latest) in [
            ("nginx", true),
            ("nginx:latest", true),
            ("nginx:1.25", false),
            ("127.0.0.1:5000/web", true),
            ("127.0.0.1:5000/web:v1", false),
            ("a@sha256:abc", false),
        ] {
            assert_eq!(image_tag_is_latest(image), latest, "{image}");
        }
    }

    #[test]
    fn qos_classes() {
        let best = json!({"containers": [{"name": "a"}]});
        let burst =
            json!({"containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}]});
        let guaranteed = json!({"containers": [{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
        assert_eq!(qos_class(&best), "BestEffort");
        assert_eq!(qos_class(&burst), "Burstable");
        assert_eq!(qos_class(&guaranteed), "Guaranteed");
    }

    #[test]
    fn service_ports_default_target_port_and_protocol() {
        let mut s = json!({"spec": {"ports": [{"port": 80}]}});
        apply("Service", &mut s);
        assert_eq!(s["spec"]["type"], "ClusterIP");
        assert_eq!(s["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(s["spec"]["ports"][0]["protocol"], "TCP");
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
}
