//! Upstream validation of built-in kinds: object metadata, the fields every
//! workload needs, and immutability on update. Returns field causes so the
//! caller can answer 422 Invalid with upstream's wording.

use berth_api::validation as names;
use serde_json::Value;

use super::errors::FieldCause;

/// How a kind's names are checked.
fn name_rule(kind: &str) -> fn(&str) -> Vec<String> {
    match kind {
        "Namespace" | "Service" => names::is_dns1123_label,
        _ => names::is_dns1123_subdomain,
    }
}

/// Validates metadata and kind-specific rules of a new object.
pub fn on_create(kind: &str, obj: &Value) -> Vec<FieldCause> {
    let mut causes = metadata(kind, obj);
    causes.extend(spec(kind, obj));
    causes
}

/// Validates an updated object against the stored one.
pub fn on_update(kind: &str, old: &Value, new: &Value) -> Vec<FieldCause> {
    let mut causes = metadata(kind, new);
    causes.extend(spec(kind, new));
    let immutable: &[&str] = match kind {
        "Deployment" | "ReplicaSet" => &["/spec/selector"],
        "Service" => &["/spec/clusterIP"],
        _ => &[],
    };
    for pointer in immutable {
        let (before, after) = (old.pointer(pointer), new.pointer(pointer));
        if before.is_some() && before != after {
            let field = pointer.trim_start_matches('/').replace('/', ".");
            causes.push(FieldCause::immutable(field, after.unwrap_or(&Value::Null)));
        }
    }
    if kind == "Pod"
        && mutable_pod_fields_only(old.get("spec")) != mutable_pod_fields_only(new.get("spec"))
    {
        causes.push(FieldCause::forbidden("spec", POD_UPDATE_FORBIDDEN));
    }
    if matches!(kind, "Secret" | "ConfigMap") && old.get("immutable") == Some(&Value::Bool(true)) {
        for field in ["data", "binaryData", "stringData"] {
            if old.get(field) != new.get(field) {
                causes.push(FieldCause::forbidden(
                    field,
                    "field is immutable when `immutable` is set",
                ));
            }
        }
    }
    causes
}

/// Upstream's wording for a pod update that touches an immutable field.
const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// A pod spec with the fields an update may change blanked out, for comparison.
fn mutable_pod_fields_only(spec: Option<&Value>) -> Value {
    let mut spec = spec.cloned().unwrap_or(Value::Null);
    if let Some(map) = spec.as_object_mut() {
        for field in [
            "activeDeadlineSeconds",
            "tolerations",
            "terminationGracePeriodSeconds",
            "schedulingGates",
        ] {
            map.remove(field);
        }
        for list in ["containers", "initContainers"] {
            for container in map
                .get_mut(list)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(c) = container.as_object_mut() {
                    c.remove("image");
                }
            }
        }
    }
    spec
}

fn metadata(kind: &str, obj: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() {
        causes.push(FieldCause::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for problem in name_rule(kind)(name)
            .into_iter()
            .chain(names::is_valid_path_segment_name(name))
        {
            causes.push(FieldCause::invalid(
                "metadata.name",
                &Value::String(name.to_owned()),
                problem,
            ));
        }
    }
    if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        for (key, value) in labels {
            for problem in names::is_qualified_name(key) {
                causes.push(FieldCause::invalid(
                    "metadata.labels",
                    &Value::String(key.clone()),
                    problem,
                ));
            }
            let value = value.as_str().unwrap_or_default();
            for problem in names::is_valid_label_value(value) {
                causes.push(FieldCause::invalid(
                    "metadata.labels",
                    &Value::String(value.to_owned()),
                    problem,
                ));
            }
        }
    }
    if let Some(annotations) = obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    {
        let total: usize = annotations
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        for key in annotations.keys() {
            for problem in names::is_qualified_name(&key.to_lowercase()) {
                causes.push(FieldCause::invalid(
                    "metadata.annotations",
                    &Value::String(key.clone()),
                    problem,
                ));
            }
        }
        if total > 256 * 1024 {
            causes.push(FieldCause {
                reason: "FieldValueTooLong",
                field: "metadata.annotations".into(),
                message: "Too long: must have at most 262144 bytes".into(),
            });
        }
    }
    causes
}

fn spec(kind: &str, obj: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    match kind {
        "Deployment" | "ReplicaSet" => {
            if let Some(replicas) = obj.pointer("/spec/replicas").and_then(Value::as_i64) {
                if replicas < 0 {
                    causes.push(FieldCause::invalid(
                        "spec.replicas",
                        &Value::from(replicas),
                        "must be greater than or equal to 0",
                    ));
                }
            }
            match obj.pointer("/spec/selector") {
                None | Some(Value::Null) => causes.push(FieldCause::required("spec.selector", "")),
                Some(selector) => causes.extend(selector_matches_template(selector, obj)),
            }
            causes.extend(pod_spec(
                "spec.template.spec",
                obj.pointer("/spec/template/spec"),
            ));
        }
        "Pod" => causes.extend(pod_spec("spec", obj.get("spec"))),
        "Service" => causes.extend(service(obj)),
        _ => {}
    }
    causes
}

fn selector_matches_template(selector: &Value, obj: &Value) -> Vec<FieldCause> {
    let parsed = match berth_api::selector::LabelSelector::from_value(selector) {
        Ok(parsed) => parsed,
        Err(e) => {
            return vec![FieldCause::invalid(
                "spec.selector",
                selector,
                e.to_string(),
            )]
        }
    };
    if parsed.is_empty() {
        return vec![FieldCause::invalid(
            "spec.selector",
            selector,
            "empty selector is invalid for deployment",
        )];
    }
    let labels = obj.pointer("/spec/template/metadata/labels");
    if !parsed.matches_value(labels) {
        let shown = labels.cloned().unwrap_or(Value::Object(Default::default()));
        return vec![FieldCause::invalid(
            "spec.template.metadata.labels",
            &Value::String(labels_string(&shown)),
            "`selector` does not match template `labels`",
        )];
    }
    Vec::new()
}

fn labels_string(labels: &Value) -> String {
    labels
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn pod_spec(path: &str, spec: Option<&Value>) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    match containers {
        None => causes.push(FieldCause::required(format!("{path}.containers"), "")),
        Some(list) if list.is_empty() => {
            causes.push(FieldCause::required(format!("{path}.containers"), ""))
        }
        Some(list) => {
            let mut seen = std::collections::HashSet::new();
            for (i, c) in list.iter().enumerate() {
                let at = format!("{path}.containers[{i}]");
                match c.get("name").and_then(Value::as_str) {
                    None | Some("") => causes.push(FieldCause::required(format!("{at}.name"), "")),
                    Some(name) => {
                        for problem in names::is_dns1123_label(name) {
                            causes.push(FieldCause::invalid(
                                format!("{at}.name"),
                                &Value::String(name.to_owned()),
                                problem,
                            ));
                        }
                        if !seen.insert(name.to_owned()) {
                            causes.push(FieldCause::duplicate(
                                format!("{at}.name"),
                                &Value::String(name.to_owned()),
                            ));
                        }
                    }
                }
                if c.get("image")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    causes.push(FieldCause::required(format!("{at}.image"), ""));
                }
                for (j, port) in c
                    .get("ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let number = port
                        .get("containerPort")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    if !(1..=65535).contains(&number) {
                        causes.push(FieldCause::invalid(
                            format!("{at}.ports[{j}].containerPort"),
                            &Value::from(number),
                            "must be between 1 and 65535, inclusive",
                        ));
                    }
                }
                for (res_kind, map) in ["requests", "limits"].iter().filter_map(|k| {
                    c.pointer(&format!("/resources/{k}"))
                        .and_then(Value::as_object)
                        .map(|m| (k, m))
                }) {
                    for (resource, quantity) in map {
                        let text = quantity
                            .as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| quantity.to_string());
                        if let Err(e) = berth_api::quantity::Quantity::parse(&text) {
                            causes.push(FieldCause::invalid(
                                format!("{at}.resources.{res_kind}[{resource}]"),
                                &Value::String(text.clone()),
                                e.to_string(),
                            ));
                        }
                    }
                }
            }
        }
    }
    if let Some(policy) = spec
        .and_then(|s| s.get("restartPolicy"))
        .and_then(Value::as_str)
    {
        if !matches!(policy, "Always" | "OnFailure" | "Never") {
            causes.push(FieldCause::not_supported(
                format!("{path}.restartPolicy"),
                &Value::String(policy.to_owned()),
                &["Always", "OnFailure", "Never"],
            ));
        }
    }
    causes
}

fn service(obj: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let service_type = obj
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    if !matches!(
        service_type,
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
    ) {
        causes.push(FieldCause::not_supported(
            "spec.type",
            &Value::String(service_type.to_owned()),
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ));
    }
    let ports = obj.pointer("/spec/ports").and_then(Value::as_array);
    let headless = obj.pointer("/spec/clusterIP").and_then(Value::as_str) == Some("None");
    if service_type != "ExternalName" && !headless && ports.is_none_or(Vec::is_empty) {
        causes.push(FieldCause::required("spec.ports", ""));
    }
    let many = ports.is_some_and(|p| p.len() > 1);
    for (i, port) in ports.into_iter().flatten().enumerate() {
        let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
        if !(1..=65535).contains(&number) {
            causes.push(FieldCause::invalid(
                format!("spec.ports[{i}].port"),
                &Value::from(number),
                "must be between 1 and 65535, inclusive",
            ));
        }
        if many
            && port
                .get("name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            causes.push(FieldCause::required(format!("spec.ports[{i}].name"), ""));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(replicas: i64, selector: Value) -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"replicas": replicas, "selector": selector,
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
    }

    #[test]
    fn deployment_rules() {
        assert!(on_create(
            "Deployment",
            &deployment(1, json!({"matchLabels": {"app": "web"}}))
        )
        .is_empty());
        let negative = on_create(
            "Deployment",
            &deployment(-1, json!({"matchLabels": {"app": "web"}})),
        );
        assert_eq!(negative[0].field, "spec.replicas");
        assert_eq!(
            negative[0].message,
            "Invalid value: -1: must be greater than or equal to 0"
        );
        let mismatch = on_create(
            "Deployment",
            &deployment(1, json!({"matchLabels": {"app": "db"}})),
        );
        assert_eq!(mismatch[0].field, "spec.template.metadata.labels");
    }

    #[test]
    fn names_are_checked_per_kind() {
        let bad = json!({"metadata": {"name": "Web_1"}, "data": {}});
        let causes = on_create("ConfigMap", &bad);
        assert_eq!(causes[0].field, "metadata.name");
        assert!(
            causes[0].message.contains("RFC 1123 subdomain"),
            "{}",
            causes[0].message
        );
        let dotted = json!({"metadata": {"name": "a.b"}, "spec": {"ports": [{"port": 80}]}});
        assert!(!on_create("Service", &dotted).is_empty());
        assert!(on_create("ConfigMap", &json!({"metadata": {"name": "a.b"}})).is_empty());
    }

    #[test]
    fn pod_updates_may_change_only_images_and_a_few_fields() {
        let old = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "x:1"}]}});
        let mut image = old.clone();
        image["spec"]["containers"][0]["image"] = json!("x:2");
        assert!(on_update("Pod", &old, &image).is_empty());
        let mut command = old.clone();
        command["spec"]["containers"][0]["command"] = json!(["sh"]);
        let causes = on_update("Pod", &old, &command);
        assert_eq!(causes[0].field, "spec");
        assert!(causes[0]
            .message
            .starts_with("Forbidden: pod updates may not change fields other than"));
    }

    #[test]
    fn selector_is_immutable() {
        let old = deployment(1, json!({"matchLabels": {"app": "web"}}));
        let mut new = old.clone();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "tier": "x"}});
        new["spec"]["template"]["metadata"]["labels"]["tier"] = json!("x");
        let causes = on_update("Deployment", &old, &new);
        assert!(causes
            .iter()
            .any(|c| c.field == "spec.selector" && c.message.contains("field is immutable")));
    }
}
