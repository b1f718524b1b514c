//! ReplicationControllers: the older ReplicaSet with an equality selector (a
//! plain map). Upstream's defaults (selector and labels from the template,
//! one replica), validation, generation tracking, the `kubectl get rc`
//! columns and the `status.replicas` field selector.

use serde_json::{json, Map, Value};

use crate::field::FieldCause;
use crate::kinds::core::pod::spec::{default_template, validate_pod_spec};
use crate::kinds::{non_negative, obj_mut, set_default, KindRules};
use crate::table::print::{containers_and_images, int_at};
use crate::table::{col, Column, AGE, NAME};

/// The rules of `core/v1` ReplicationController.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplicationController;

impl KindRules for ReplicationController {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let template_labels = obj
            .pointer("/spec/template/metadata/labels")
            .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
            .cloned();
        if let Some(labels) = template_labels {
            let spec = obj_mut(obj, "spec");
            if spec
                .get("selector")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty)
            {
                spec.insert("selector".into(), labels.clone());
            }
            let meta = obj_mut(obj, "metadata");
            if meta
                .get("labels")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty)
            {
                meta.insert("labels".into(), labels);
            }
        }
        let spec = obj_mut(obj, "spec");
        set_default(spec, "replicas", json!(1));
        if spec.get("template").is_some_and(Value::is_object) {
            default_template(spec);
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        validate_rc(obj)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Desired", "integer", 0, "Number of desired pods."),
            col("Current", "integer", 0, "Number of actual replicas."),
            col("Ready", "integer", 0, "Number of ready replicas."),
            AGE,
            col(
                "Containers",
                "string",
                1,
                "Names of each container in the template.",
            ),
            col(
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
            col("Selector", "string", 1, "Label selector of the controller."),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let (containers, images) =
            containers_and_images(obj.pointer("/spec/template/spec").unwrap_or(&Value::Null));
        vec![
            crate::table::name_cell(obj),
            json!(obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1)),
            json!(int_at(obj, &["status", "replicas"])),
            json!(int_at(obj, &["status", "readyReplicas"])),
            crate::table::age_cell(obj, now),
            json!(containers),
            json!(images),
            json!(map_selector_string(obj.pointer("/spec/selector"))),
        ]
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["status.replicas"]
    }
}

/// An equality selector (`{"app": "web"}`) as `app=web`, keys sorted, as
/// upstream's `labels.FormatLabels` prints it (`<none>` when empty).
pub fn map_selector_string(selector: Option<&Value>) -> String {
    let mut parts: Vec<String> = selector
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    parts.sort();
    crate::table::print::or_none(parts.join(","))
}

/// Upstream's `ValidateReplicationControllerSpec`.
fn validate_rc(obj: &Value) -> Vec<FieldCause> {
    let mut causes: Vec<FieldCause> = non_negative(obj, "/spec/replicas").into_iter().collect();
    if let Some(min_ready) = obj.pointer("/spec/minReadySeconds").and_then(Value::as_i64) {
        if min_ready < 0 {
            causes.push(FieldCause::invalid(
                "spec.minReadySeconds",
                &json!(min_ready),
                "must be greater than or equal to 0",
            ));
        }
    }
    let selector = obj.pointer("/spec/selector").and_then(Value::as_object);
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        causes.push(FieldCause::required("spec.selector", ""));
        if obj.pointer("/spec/template").is_none_or(Value::is_null) {
            causes.push(FieldCause::required("spec.template", ""));
        }
        return causes;
    };
    let Some(template) = obj.pointer("/spec/template").filter(|t| t.is_object()) else {
        causes.push(FieldCause::required("spec.template", ""));
        return causes;
    };
    let labels = template
        .pointer("/metadata/labels")
        .and_then(Value::as_object);
    let matches = selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
    if !matches {
        causes.push(FieldCause::invalid(
            "spec.template.metadata.labels",
            &Value::String(map_selector_string(template.pointer("/metadata/labels"))),
            "`selector` does not match template `labels`",
        ));
    }
    causes.extend(validate_pod_spec(
        "spec.template.spec",
        template.get("spec"),
    ));
    if let Some(policy) = template
        .pointer("/spec/restartPolicy")
        .and_then(Value::as_str)
    {
        if policy != "Always" {
            causes.push(FieldCause::not_supported(
                "spec.template.spec.restartPolicy",
                &json!(policy),
                &["Always"],
            ));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rc(spec: Value) -> Value {
        json!({"metadata": {"name": "nginx"}, "spec": spec})
    }

    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "nginx"}},
               "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}})
    }

    #[test]
    fn selector_and_labels_default_from_the_template() {
        let mut obj = rc(json!({"template": template()}));
        ReplicationController.default(&mut obj);
        assert_eq!(obj["spec"]["selector"], json!({"app": "nginx"}));
        assert_eq!(obj["metadata"]["labels"], json!({"app": "nginx"}));
        assert_eq!(obj["spec"]["replicas"], 1);
        assert_eq!(obj["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert!(ReplicationController.validate(&obj).is_empty());
    }

    #[test]
    fn invalid_controllers_are_refused_with_upstream_words() {
        let cases = [
            (
                rc(json!({"replicas": -1, "selector": {"app": "nginx"}, "template": template()})),
                "spec.replicas",
                "Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                rc(json!({"selector": {"app": "other"}, "template": template()})),
                "spec.template.metadata.labels",
                "Invalid value: \"app=nginx\": `selector` does not match template `labels`",
            ),
            (
                rc(json!({"template": {"spec": {"containers": [{"name": "a", "image": "b"}]}}})),
                "spec.selector",
                "Required value",
            ),
            (
                rc(json!({"selector": {"app": "nginx"}})),
                "spec.template",
                "Required value",
            ),
        ];
        for (obj, field, message) in cases {
            let causes = ReplicationController.validate(&obj);
            assert!(
                causes
                    .iter()
                    .any(|c| c.field == field && c.message == message),
                "{field}: {causes:?}"
            );
        }
        let mut never = rc(json!({"selector": {"app": "nginx"}, "template": template()}));
        never["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        let causes = ReplicationController.validate(&never);
        assert_eq!(
            causes[0].message,
            "Unsupported value: \"Never\": supported values: \"Always\""
        );
    }

    #[test]
    fn row_shows_counts_and_the_map_selector() {
        let obj = json!({
            "metadata": {"name": "nginx", "creationTimestamp": "2026-01-01T11:00:00Z"},
            "spec": {"replicas": 3, "selector": {"app": "nginx", "tier": "web"}, "template": template()},
            "status": {"replicas": 2, "readyReplicas": 1}
        });
        let row = ReplicationController.cells(&obj, "2026-01-01T12:00:00Z".parse().unwrap());
        assert_eq!(row.len(), ReplicationController.columns().len());
        assert_eq!(row[1..4], [json!(3), json!(2), json!(1)]);
        assert_eq!(row[4], "60m");
        assert_eq!(row[7], "app=nginx,tier=web");
    }
}
