//! StatefulSets: upstream's defaults (OrderedReady pods, RollingUpdate with
//! partition 0, Retain/Retain claim retention, replicas and history, claim
//! templates as apps/v1 writes them), validation (names are DNS labels; the
//! template is checked against the selector but its pod spec is not, as
//! upstream), the short list of spec fields an update may change, generation
//! tracking, and the `kubectl get statefulsets` columns.

use serde_json::{json, Value};

use super::daemonset::collision_count_decremented;
use super::workload::{
    go_string_map, invalid_shown, non_negative_fields, selector_is_empty, selector_matches,
    validate_int_or_percent, validate_label_selector, validate_template_metadata, with_fields_from,
    zero_status_fields,
};
use crate::field::FieldCause;
use crate::kinds::core::pod::spec::default_template;
use crate::kinds::{obj_mut, set_default, KindRules, NameRule};
use crate::table::print::{containers_and_images, int_at};
use crate::table::{col, Column, AGE, NAME};

/// The rules of `apps/v1` StatefulSet.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatefulSet;

/// The spec fields an update may change; any other change is forbidden.
const MUTABLE_SPEC_FIELDS: &[&str] = &[
    "replicas",
    "template",
    "updateStrategy",
    "minReadySeconds",
    "ordinals",
    "persistentVolumeClaimRetentionPolicy",
];

impl KindRules for StatefulSet {
    fn name_rule(&self) -> NameRule {
        NameRule::Label
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let spec = obj_mut(obj, "spec");
        set_default(spec, "podManagementPolicy", json!("OrderedReady"));
        let strategy = spec.entry("updateStrategy").or_insert_with(|| json!({}));
        if !strategy.is_object() {
            *strategy = json!({});
        }
        let strategy = strategy.as_object_mut().expect("an object");
        if strategy
            .get("type")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            strategy.insert("type".into(), json!("RollingUpdate"));
            set_default(strategy, "rollingUpdate", json!({}));
        }
        if strategy.get("type") == Some(&json!("RollingUpdate")) {
            if let Some(rolling) = strategy
                .get_mut("rollingUpdate")
                .and_then(Value::as_object_mut)
            {
                set_default(rolling, "partition", json!(0));
                // MaxUnavailableStatefulSet is alpha (off) in 1.33: the field is dropped.
                rolling.remove("maxUnavailable");
            }
        }
        let retention = spec
            .entry("persistentVolumeClaimRetentionPolicy")
            .or_insert_with(|| json!({}));
        if let Some(retention) = retention.as_object_mut() {
            for key in ["whenDeleted", "whenScaled"] {
                if retention
                    .get(key)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    retention.insert(key.into(), json!("Retain"));
                }
            }
        }
        set_default(spec, "replicas", json!(1));
        set_default(spec, "revisionHistoryLimit", json!(10));
        default_template(spec);
        if let Some(claims) = spec
            .get_mut("volumeClaimTemplates")
            .and_then(Value::as_array_mut)
        {
            for claim in claims.iter_mut().filter(|c| c.is_object()) {
                default_claim_template(claim);
            }
        }
        zero_status_fields(obj, &["replicas", "availableReplicas"]);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        match obj
            .pointer("/spec/podManagementPolicy")
            .and_then(Value::as_str)
        {
            None | Some("") => causes.push(FieldCause::required("spec.podManagementPolicy", "")),
            Some("OrderedReady" | "Parallel") => {}
            Some(other) => causes.push(FieldCause::invalid(
                "spec.podManagementPolicy",
                &json!(other),
                "must be 'OrderedReady' or 'Parallel'",
            )),
        }
        let strategy = obj.pointer("/spec/updateStrategy");
        let rolling = strategy.and_then(|s| s.get("rollingUpdate"));
        match strategy
            .and_then(|s| s.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("")
        {
            "" => causes.push(FieldCause::required("spec.updateStrategy", "")),
            "OnDelete" => {
                if let Some(rolling) = rolling {
                    causes.push(FieldCause::invalid(
                        "spec.updateStrategy.rollingUpdate",
                        rolling,
                        "only allowed for updateStrategy 'RollingUpdate'",
                    ));
                }
            }
            "RollingUpdate" => {
                if rolling.is_some() {
                    causes.extend(non_negative_fields(
                        obj,
                        &["spec.updateStrategy.rollingUpdate.partition"],
                    ));
                    if let Some(max) = rolling.and_then(|r| r.get("maxUnavailable")) {
                        let at = "spec.updateStrategy.rollingUpdate.maxUnavailable";
                        causes.extend(validate_int_or_percent(max, at));
                        if super::workload::int_or_percent_value(max) == 0 {
                            causes.push(invalid_shown(
                                at,
                                &super::workload::go_int_or_string(max),
                                "cannot be 0",
                            ));
                        }
                    }
                }
            }
            _ => causes.push(FieldCause::invalid(
                "spec.updateStrategy",
                strategy.unwrap_or(&Value::Null),
                "must be 'RollingUpdate' or 'OnDelete'",
            )),
        }
        if let Some(policy) = obj.pointer("/spec/persistentVolumeClaimRetentionPolicy") {
            for key in ["whenDeleted", "whenScaled"] {
                let value = policy.get(key).and_then(Value::as_str).unwrap_or("");
                if !matches!(value, "Retain" | "Delete") {
                    causes.push(FieldCause::not_supported(
                        format!("spec.persistentVolumeClaimRetentionPolicy.{key}"),
                        &json!(value),
                        &["Retain", "Delete"],
                    ));
                }
            }
        }
        causes.extend(non_negative_fields(
            obj,
            &[
                "spec.replicas",
                "spec.minReadySeconds",
                "spec.ordinals.start",
            ],
        ));
        let selector = obj.pointer("/spec/selector").filter(|s| !s.is_null());
        match selector {
            None => causes.push(FieldCause::required("spec.selector", "")),
            Some(selector) => {
                causes.extend(validate_label_selector(Some(selector), "spec.selector"));
                if selector_is_empty(selector) {
                    causes.push(FieldCause::invalid(
                        "spec.selector",
                        selector,
                        "empty selector is invalid for statefulset",
                    ));
                }
            }
        }
        let labels = obj.pointer("/spec/template/metadata/labels");
        match selector_matches(selector, labels) {
            None => causes.push(invalid_shown(
                "spec.selector",
                &selector.map(Value::to_string).unwrap_or_default(),
                "",
            )),
            Some(matches) => {
                let empty = selector.is_none_or(selector_is_empty);
                if !empty && !matches {
                    causes.push(invalid_shown(
                        "spec.template.metadata.labels",
                        &go_string_map(labels),
                        "`selector` does not match template `labels`",
                    ));
                }
                causes.extend(validate_template_metadata(
                    obj.pointer("/spec/template"),
                    "spec.template",
                ));
            }
        }
        let pod_spec = obj.pointer("/spec/template/spec");
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
                "activeDeadlineSeconds in StatefulSet is not Supported",
            ));
        }
        causes.extend(validate_status(obj));
        causes
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        let rest_of_new = with_fields_from(new.get("spec"), old.get("spec"), MUTABLE_SPEC_FIELDS);
        if Some(&rest_of_new) != old.get("spec") {
            causes.push(FieldCause::forbidden(
                "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ));
        }
        causes.extend(collision_count_decremented(old, new));
        causes
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Ready", "string", 0, "Number of the pod with ready state"),
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
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let (containers, images) =
            containers_and_images(obj.pointer("/spec/template/spec").unwrap_or(&Value::Null));
        vec![
            crate::table::name_cell(obj),
            json!(format!(
                "{}/{}",
                int_at(obj, &["status", "readyReplicas"]),
                int_at(obj, &["spec", "replicas"])
            )),
            crate::table::age_cell(obj, now),
            json!(containers),
            json!(images),
        ]
    }

    /// apps/v1 accepts `status.successful` as a field label for StatefulSets,
    /// though no StatefulSet has such a field (so it only matches empty).
    fn field_labels(&self) -> &'static [&'static str] {
        &["status.successful"]
    }
}

/// A claim template as apps/v1 serves it: typed as a v1 PersistentVolumeClaim,
/// with the claim defaults (`volumeMode: Filesystem`, `status.phase: Pending`).
fn default_claim_template(claim: &mut Value) {
    let map = claim.as_object_mut().expect("checked by the caller");
    map.insert("apiVersion".into(), json!("v1"));
    map.insert("kind".into(), json!("PersistentVolumeClaim"));
    obj_mut(claim, "metadata");
    set_default(obj_mut(claim, "spec"), "volumeMode", json!("Filesystem"));
    let status = obj_mut(claim, "status");
    if status
        .get("phase")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        status.insert("phase".into(), json!("Pending"));
    }
}

/// `ValidateStatefulSetStatus`.
fn validate_status(obj: &Value) -> Vec<FieldCause> {
    let mut causes = non_negative_fields(
        obj,
        &[
            "status.replicas",
            "status.readyReplicas",
            "status.currentReplicas",
            "status.updatedReplicas",
            "status.availableReplicas",
            "status.observedGeneration",
            "status.collisionCount",
        ],
    );
    let at = |field: &str| int_at(obj, &["status", field]);
    let replicas = at("replicas");
    for field in [
        "readyReplicas",
        "currentReplicas",
        "updatedReplicas",
        "availableReplicas",
    ] {
        if at(field) > replicas {
            causes.push(FieldCause::invalid(
                format!("status.{field}"),
                &json!(at(field)),
                "cannot be greater than status.replicas",
            ));
        }
    }
    if at("availableReplicas") > at("readyReplicas") {
        causes.push(FieldCause::invalid(
            "status.availableReplicas",
            &json!(at("availableReplicas")),
            "cannot be greater than status.readyReplicas",
        ));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statefulset() -> Value {
        json!({"metadata": {"name": "web", "creationTimestamp": "2026-01-01T11:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "serviceName": "web",
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}})
    }

    #[test]
    fn defaults_follow_apps_v1() {
        let mut sts = statefulset();
        StatefulSet.default(&mut sts);
        assert_eq!(sts["spec"]["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            sts["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(
            sts["spec"]["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(sts["spec"]["revisionHistoryLimit"], 10);
        let claim = &sts["spec"]["volumeClaimTemplates"][0];
        assert_eq!(claim["kind"], "PersistentVolumeClaim");
        assert_eq!(claim["spec"]["volumeMode"], "Filesystem");
        assert_eq!(claim["status"]["phase"], "Pending");
        assert_eq!(
            sts["status"],
            json!({"replicas": 0, "availableReplicas": 0})
        );
        assert!(
            StatefulSet.validate(&sts).is_empty(),
            "{:?}",
            StatefulSet.validate(&sts)
        );
    }

    #[test]
    fn only_some_spec_fields_may_change() {
        let mut old = statefulset();
        StatefulSet.default(&mut old);
        let mut scaled = old.clone();
        scaled["spec"]["replicas"] = json!(5);
        scaled["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        assert!(StatefulSet.validate_update(&old, &scaled).is_empty());
        let mut renamed = old.clone();
        renamed["spec"]["serviceName"] = json!("other");
        let causes = StatefulSet.validate_update(&old, &renamed);
        assert_eq!(causes[0].field, "spec");
        assert!(causes[0]
            .message
            .starts_with("Forbidden: updates to statefulset spec"));
    }

    #[test]
    fn restart_policy_and_names() {
        let mut sts = statefulset();
        sts["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure");
        StatefulSet.default(&mut sts);
        let causes = StatefulSet.validate(&sts);
        assert_eq!(causes[0].field, "spec.template.spec.restartPolicy");
        assert_eq!(
            causes[0].message,
            "Unsupported value: \"OnFailure\": supported values: \"Always\""
        );
        assert!(!NameRule::Label.check("web.example").is_empty());
        let row = StatefulSet.cells(&sts, "2026-01-01T12:00:00Z".parse().unwrap());
        assert_eq!(row[1], "0/3");
    }
}
