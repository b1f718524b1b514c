//! DaemonSets: upstream's defaults (RollingUpdate with `maxUnavailable: 1`,
//! history), the template generation apps/v1 keeps in the
//! `deprecated.daemonset.template.generation` annotation (1 on create, +1 with
//! each template change), validation of the selector, template and update
//! strategy, an immutable selector, generation tracking, and the
//! `kubectl get daemonsets` columns.

use serde_json::{json, Value};

use super::workload::{
    go_int_or_string, int_or_percent_value, invalid_shown, non_negative_fields, selector_is_empty,
    selector_matches, validate_int_or_percent, validate_label_selector, validate_template_metadata,
    zero_status_fields,
};
use crate::field::FieldCause;
use crate::kinds::core::pod::spec::{default_template, validate_pod_spec};
use crate::kinds::{immutable_fields, obj_mut, set_default, KindRules};
use crate::table::print::{containers_and_images, int_at, or_none, selector_string};
use crate::table::{col, Column, AGE, NAME};

/// The annotation apps/v1 carries a DaemonSet's template generation in.
pub const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

/// The rules of `apps/v1` DaemonSet.
#[derive(Debug, Clone, Copy, Default)]
pub struct DaemonSet;

fn template_generation(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(TEMPLATE_GENERATION))
        .and_then(Value::as_str)
}

fn set_template_generation(obj: &mut Value, generation: i64) {
    let meta = obj_mut(obj, "metadata");
    let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
    if !annotations.is_object() {
        *annotations = json!({});
    }
    annotations[TEMPLATE_GENERATION] = json!(generation.to_string());
}

impl KindRules for DaemonSet {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let spec = obj_mut(obj, "spec");
        let strategy = obj_mut_in(spec, "updateStrategy");
        set_default(strategy, "type", json!("RollingUpdate"));
        if strategy.get("type") == Some(&json!("RollingUpdate")) {
            let rolling = obj_mut_in(strategy, "rollingUpdate");
            set_default(rolling, "maxUnavailable", json!(1));
            set_default(rolling, "maxSurge", json!(0));
        }
        set_default(spec, "revisionHistoryLimit", json!(10));
        default_template(spec);
        // PrepareForCreate starts the template generation at 1; updates carry
        // the stored one forward (see prepare_for_update).
        match template_generation(obj).map(str::parse::<i64>) {
            None => set_template_generation(obj, 1),
            Some(Ok(n)) if n < 1 => set_template_generation(obj, 1),
            _ => {}
        }
        zero_status_fields(
            obj,
            &[
                "currentNumberScheduled",
                "numberMisscheduled",
                "desiredNumberScheduled",
                "numberReady",
            ],
        );
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        if let Some(Err(e)) = template_generation(obj).map(str::parse::<i64>) {
            causes.push(FieldCause::invalid(
                format!("metadata.annotations[{TEMPLATE_GENERATION}]"),
                &json!(template_generation(obj)),
                e.to_string(),
            ));
        }
        let selector = obj.pointer("/spec/selector");
        causes.extend(validate_label_selector(selector, "spec.selector"));
        let labels = obj.pointer("/spec/template/metadata/labels");
        if selector_matches(selector, labels) == Some(false) {
            causes.push(invalid_shown(
                "spec.template.metadata.labels",
                &super::workload::go_string_map(labels),
                "`selector` does not match template `labels`",
            ));
        }
        if let Some(selector) = selector.filter(|s| !s.is_null()) {
            if selector_is_empty(selector) {
                causes.push(FieldCause::invalid(
                    "spec.selector",
                    selector,
                    "empty selector is invalid for daemonset",
                ));
            }
        }
        causes.extend(validate_template_metadata(
            obj.pointer("/spec/template"),
            "spec.template",
        ));
        let pod_spec = obj.pointer("/spec/template/spec");
        causes.extend(validate_pod_spec("spec.template.spec", pod_spec));
        let restart = pod_spec
            .and_then(|s| s.get("restartPolicy"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if restart != "Always" {
            causes.push(FieldCause::not_supported(
                "spec.template.spec.restartPolicy",
                &json!(restart),
                &["Always"],
            ));
        }
        if pod_spec
            .and_then(|s| s.get("activeDeadlineSeconds"))
            .is_some()
        {
            causes.push(FieldCause::forbidden(
                "spec.template.spec.activeDeadlineSeconds",
                "activeDeadlineSeconds in DaemonSet is not Supported",
            ));
        }
        causes.extend(non_negative_fields(
            obj,
            &["spec.minReadySeconds", "spec.revisionHistoryLimit"],
        ));
        causes.extend(validate_update_strategy(
            obj.pointer("/spec/updateStrategy"),
        ));
        causes.extend(non_negative_fields(
            obj,
            &[
                "status.currentNumberScheduled",
                "status.numberMisscheduled",
                "status.desiredNumberScheduled",
                "status.numberReady",
                "status.observedGeneration",
                "status.updatedNumberScheduled",
                "status.numberAvailable",
                "status.numberUnavailable",
                "status.collisionCount",
            ],
        ));
        causes
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        let mut causes = immutable_fields(old, new, &["/spec/selector"]);
        causes.extend(collision_count_decremented(old, new));
        causes
    }

    /// The template generation is the server's: the stored one, one more when
    /// the (defaulted) template changes.
    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        let stored = template_generation(old)
            .and_then(|g| g.parse::<i64>().ok())
            .unwrap_or(1);
        let mut defaulted = new.clone();
        crate::kinds::drop_nulls(&mut defaulted);
        self.default(&mut defaulted);
        let changed = old.pointer("/spec/template") != defaulted.pointer("/spec/template");
        set_template_generation(new, if changed { stored + 1 } else { stored });
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Desired", "integer", 0, "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod)."),
            col("Current", "integer", 0, "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod."),
            col("Ready", "integer", 0, "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready."),
            col("Up-to-date", "integer", 0, "The total number of nodes that are running updated daemon pod"),
            col("Available", "integer", 0, "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
            col("Node Selector", "string", 0, "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node."),
            AGE,
            col("Containers", "string", 1, "Names of each container in the template."),
            col("Images", "string", 1, "Images referenced by each container in the template."),
            col("Selector", "string", 1, "A label query over pods that are managed by the daemon set."),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let template_spec = obj.pointer("/spec/template/spec").unwrap_or(&Value::Null);
        let (containers, images) = containers_and_images(template_spec);
        vec![
            crate::table::name_cell(obj),
            json!(int_at(obj, &["status", "desiredNumberScheduled"])),
            json!(int_at(obj, &["status", "currentNumberScheduled"])),
            json!(int_at(obj, &["status", "numberReady"])),
            json!(int_at(obj, &["status", "updatedNumberScheduled"])),
            json!(int_at(obj, &["status", "numberAvailable"])),
            json!(format_labels(template_spec.get("nodeSelector"))),
            crate::table::age_cell(obj, now),
            json!(containers),
            json!(images),
            json!(selector_string(obj.pointer("/spec/selector"))),
        ]
    }
}

/// The object at `key` of `map`, created (or replaced, when not an object) if needed.
fn obj_mut_in<'a>(
    map: &'a mut serde_json::Map<String, Value>,
    key: &str,
) -> &'a mut serde_json::Map<String, Value> {
    let entry = map.entry(key.to_owned()).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("just made an object")
}

/// `labels.FormatLabels`: `k=v` pairs sorted by key, `<none>` when empty.
pub fn format_labels(labels: Option<&Value>) -> String {
    let mut pairs: Vec<String> = labels
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    or_none(pairs.join(","))
}

/// `ValidateDaemonSetUpdateStrategy` and `ValidateRollingUpdateDaemonSet`.
fn validate_update_strategy(strategy: Option<&Value>) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let kind = strategy
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    match kind {
        "OnDelete" => {}
        "RollingUpdate" => {
            let Some(rolling) = strategy.and_then(|s| s.get("rollingUpdate")) else {
                causes.push(FieldCause::required(
                    "spec.updateStrategy.rollingUpdate",
                    "",
                ));
                return causes;
            };
            let zero = json!(0);
            let unavailable = rolling.get("maxUnavailable").unwrap_or(&zero);
            let surge = rolling.get("maxSurge").unwrap_or(&zero);
            causes.extend(validate_int_or_percent(
                unavailable,
                "spec.updateStrategy.rollingUpdate.maxUnavailable",
            ));
            causes.extend(validate_int_or_percent(
                surge,
                "spec.updateStrategy.rollingUpdate.maxSurge",
            ));
            let has_unavailable = int_or_percent_value(unavailable) != 0;
            let has_surge = int_or_percent_value(surge) != 0;
            if has_unavailable && has_surge {
                causes.push(invalid_shown(
                    "spec.updateStrategy.rollingUpdate.maxSurge",
                    &go_int_or_string(surge),
                    "may not be set when maxUnavailable is non-zero",
                ));
            } else if !has_unavailable && !has_surge {
                causes.push(FieldCause::required(
                    "spec.updateStrategy.rollingUpdate.maxUnavailable",
                    "cannot be 0 when maxSurge is 0",
                ));
            }
        }
        other => causes.push(FieldCause::not_supported(
            "spec.updateStrategy",
            &json!(other),
            &["RollingUpdate", "OnDelete"],
        )),
    }
    causes
}

/// `status.collisionCount` may not go down (upstream's `IsDecremented`).
pub fn collision_count_decremented(old: &Value, new: &Value) -> Option<FieldCause> {
    let before = old
        .pointer("/status/collisionCount")
        .and_then(Value::as_i64)?;
    let after = new
        .pointer("/status/collisionCount")
        .and_then(Value::as_i64);
    (after.is_none_or(|a| a < before)).then(|| {
        FieldCause::invalid(
            "status.collisionCount",
            &json!(after.unwrap_or(0)),
            "cannot be decremented",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daemonset() -> Value {
        json!({"metadata": {"name": "agent", "creationTimestamp": "2026-01-01T11:00:00Z"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "agent", "image": "agent:1"}], "nodeSelector": {"b": "2", "a": "1"}}}}})
    }

    #[test]
    fn defaults_and_template_generation() {
        let mut ds = daemonset();
        DaemonSet.default(&mut ds);
        assert_eq!(ds["spec"]["updateStrategy"]["type"], "RollingUpdate");
        assert_eq!(
            ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
            1
        );
        assert_eq!(ds["spec"]["updateStrategy"]["rollingUpdate"]["maxSurge"], 0);
        assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(ds["metadata"]["annotations"][TEMPLATE_GENERATION], "1");
        assert_eq!(ds["status"]["numberReady"], 0);
        assert!(
            DaemonSet.validate(&ds).is_empty(),
            "{:?}",
            DaemonSet.validate(&ds)
        );

        let mut same = ds.clone();
        DaemonSet.prepare_for_update(&ds, &mut same);
        assert_eq!(same["metadata"]["annotations"][TEMPLATE_GENERATION], "1");
        let mut changed = ds.clone();
        changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("agent:2");
        changed["metadata"]["annotations"][TEMPLATE_GENERATION] = json!("7");
        DaemonSet.prepare_for_update(&ds, &mut changed);
        assert_eq!(changed["metadata"]["annotations"][TEMPLATE_GENERATION], "2");
    }

    #[test]
    fn validation_follows_upstream() {
        let mut ds = daemonset();
        ds["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        ds["spec"]["updateStrategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}});
        DaemonSet.default(&mut ds);
        let causes = DaemonSet.validate(&ds);
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.template.spec.restartPolicy",
                "spec.updateStrategy.rollingUpdate.maxSurge"
            ]
        );
        let mut mismatch = daemonset();
        mismatch["spec"]["selector"] = json!({"matchLabels": {"app": "other"}});
        DaemonSet.default(&mut mismatch);
        let causes = DaemonSet.validate(&mismatch);
        assert_eq!(causes[0].field, "spec.template.metadata.labels");
        assert_eq!(
            causes[0].message,
            "Invalid value: map[string]string{\"app\":\"agent\"}: `selector` does not match template `labels`"
        );
    }

    #[test]
    fn row_has_upstream_cells() {
        let mut ds = daemonset();
        DaemonSet.default(&mut ds);
        ds["status"]["desiredNumberScheduled"] = json!(3);
        let row = DaemonSet.cells(&ds, "2026-01-01T12:00:00Z".parse().unwrap());
        assert_eq!(row.len(), DaemonSet.columns().len());
        assert_eq!(row[1], 3);
        assert_eq!(row[6], "a=1,b=2");
        assert_eq!(row[7], "60m");
        assert_eq!(row[10], "app=agent");
    }
}
