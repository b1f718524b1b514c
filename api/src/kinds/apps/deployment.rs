//! Deployments: upstream's defaults (replicas, history, progress deadline, the
//! RollingUpdate strategy), workload validation, generation tracking and the
//! `kubectl get deployments` columns.

use serde_json::{json, Value};

use super::validate_workload;
use crate::field::FieldCause;
use crate::kinds::core::pod::spec::default_template;
use crate::kinds::{immutable_fields, obj_mut, set_default, KindRules};
use crate::table::print::{containers_and_images, int_at, selector_string};
use crate::table::{col, Column, AGE, NAME};

/// The rules of `apps/v1` Deployment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Deployment;

impl KindRules for Deployment {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
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

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        validate_workload(obj)
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        immutable_fields(old, new, &["/spec/selector"])
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col(
                "Ready",
                "string",
                0,
                "Number of the pods ready out of the desired number.",
            ),
            col(
                "Up-to-date",
                "integer",
                0,
                "Total number of non-terminated pods with the latest template.",
            ),
            col("Available", "integer", 0, "Total number of available pods."),
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
            col("Selector", "string", 1, "Label query over pods."),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let (containers, images) =
            containers_and_images(obj.pointer("/spec/template/spec").unwrap_or(&Value::Null));
        let desired = obj
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        vec![
            crate::table::name_cell(obj),
            json!(format!(
                "{}/{desired}",
                int_at(obj, &["status", "readyReplicas"])
            )),
            json!(int_at(obj, &["status", "updatedReplicas"])),
            json!(int_at(obj, &["status", "availableReplicas"])),
            crate::table::age_cell(obj, now),
            json!(containers),
            json!(images),
            json!(selector_string(obj.pointer("/spec/selector"))),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(replicas: i64, selector: Value) -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"replicas": replicas, "selector": selector,
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
    }

    #[test]
    fn deployment_rules() {
        assert!(Deployment
            .validate(&deployment(1, json!({"matchLabels": {"app": "web"}})))
            .is_empty());
        let negative = Deployment.validate(&deployment(-1, json!({"matchLabels": {"app": "web"}})));
        assert_eq!(negative[0].field, "spec.replicas");
        assert_eq!(
            negative[0].message,
            "Invalid value: -1: must be greater than or equal to 0"
        );
        let mismatch = Deployment.validate(&deployment(1, json!({"matchLabels": {"app": "db"}})));
        assert_eq!(mismatch[0].field, "spec.template.metadata.labels");
    }

    #[test]
    fn selector_is_immutable() {
        let old = deployment(1, json!({"matchLabels": {"app": "web"}}));
        let mut new = old.clone();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "tier": "x"}});
        new["spec"]["template"]["metadata"]["labels"]["tier"] = json!("x");
        let causes = Deployment.validate_update(&old, &new);
        assert!(causes
            .iter()
            .any(|c| c.field == "spec.selector" && c.message.contains("field is immutable")));
    }

    #[test]
    fn deployment_gets_upstream_defaults() {
        let mut d = json!({"spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}});
        Deployment.default(&mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
    }

    #[test]
    fn deployment_row_counts_replicas() {
        let deploy = json!({
            "metadata": {"name": "web", "creationTimestamp": "2026-01-01T11:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        let row = Deployment.cells(&deploy, "2026-01-01T12:00:00Z".parse().unwrap());
        assert_eq!(row.len(), Deployment.columns().len());
        assert_eq!(row[1], "2/3");
        assert_eq!(row[2], 3);
        assert_eq!(row[5], "web");
        assert_eq!(row[6], "nginx:1");
        assert_eq!(row[7], "app=web");
    }
}
