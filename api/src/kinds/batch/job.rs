//! Jobs: upstream's defaults (completions and parallelism, backoff limit,
//! completion mode, suspend, pod replacement policy, `manualSelector: false`),
//! the selector upstream generates unless `manualSelector` is set (the
//! `controller-uid`/`batch.kubernetes.io/controller-uid` and
//! `job-name`/`batch.kubernetes.io/job-name` template labels and a selector on
//! the uid), the Job's labels copied from its template, validation of the spec
//! and of the generated selector, the fields an update may not change (the
//! template included), generation tracking, the `kubectl get jobs` columns and
//! the `status.successful` field selector.

use serde_json::{json, Map, Value};

use super::spec::{default_job_spec, validate_job_spec};
use crate::field::FieldCause;
use crate::kinds::apps::workload::{
    go_string_map, invalid_shown, non_negative_fields, selector_matches, validate_label_selector,
};
use crate::kinds::{immutable_fields, obj_mut, KindRules};
use crate::table::print::{age, array_at, containers_and_images, int_at, selector_string, str_at};
use crate::table::{col, human_duration, Column, AGE, NAME};

/// The legacy label with the Job's uid on its pods.
pub const LEGACY_CONTROLLER_UID: &str = "controller-uid";
/// The label with the Job's uid on its pods.
pub const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
/// The legacy label with the Job's name on its pods.
pub const LEGACY_JOB_NAME: &str = "job-name";
/// The label with the Job's name on its pods.
pub const JOB_NAME: &str = "batch.kubernetes.io/job-name";

/// The rules of `batch/v1` Job.
#[derive(Debug, Clone, Copy, Default)]
pub struct Job;

fn manual_selector(obj: &Value) -> bool {
    obj.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true)
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.pointer(&format!("/metadata/{field}"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn labels_empty(labels: Option<&Value>) -> bool {
    labels.and_then(Value::as_object).is_none_or(Map::is_empty)
}

/// Upstream's `SetDefaults_Job` copy of the template's labels onto a Job without labels.
fn copy_template_labels(obj: &mut Value) {
    let template_labels = obj.pointer("/spec/template/metadata/labels").cloned();
    if let Some(labels) = template_labels.filter(Value::is_object) {
        if labels_empty(obj.pointer("/metadata/labels")) {
            obj_mut(obj, "metadata").insert("labels".into(), labels);
        }
    }
}

/// Upstream's `generateSelector`: the name and uid labels on the template
/// (where not set already) and the uid in the selector's `matchLabels`.
fn generate_selector(obj: &mut Value) {
    let name = meta_str(obj, "name").to_owned();
    let uid = meta_str(obj, "uid").to_owned();
    let spec = obj_mut(obj, "spec");
    let template = spec.entry("template").or_insert_with(|| json!({}));
    if !template.is_object() {
        *template = json!({});
    }
    let template_meta = obj_mut(template, "metadata");
    let labels = template_meta.entry("labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    let labels = labels.as_object_mut().expect("an object");
    for key in [LEGACY_JOB_NAME, JOB_NAME] {
        labels.entry(key).or_insert_with(|| json!(name));
    }
    for key in [LEGACY_CONTROLLER_UID, CONTROLLER_UID] {
        labels.entry(key).or_insert_with(|| json!(uid));
    }
    let selector = spec.entry("selector").or_insert_with(|| json!({}));
    if !selector.is_object() {
        *selector = json!({});
    }
    let match_labels = selector
        .as_object_mut()
        .expect("an object")
        .entry("matchLabels")
        .or_insert_with(|| json!({}));
    if !match_labels.is_object() {
        *match_labels = json!({});
    }
    match_labels
        .as_object_mut()
        .expect("an object")
        .entry(CONTROLLER_UID)
        .or_insert_with(|| json!(uid));
}

impl KindRules for Job {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let spec = obj_mut(obj, "spec");
        if spec.get("completions").is_none() && spec.get("parallelism").is_none() {
            spec.insert("completions".into(), json!(1));
            spec.insert("parallelism".into(), json!(1));
        }
        crate::kinds::set_default(spec, "parallelism", json!(1));
        if spec.get("backoffLimit").is_none() {
            let limit = if spec.get("backoffLimitPerIndex").is_some() {
                i64::from(i32::MAX)
            } else {
                6
            };
            spec.insert("backoffLimit".into(), json!(limit));
        }
        crate::kinds::set_default(spec, "completionMode", json!("NonIndexed"));
        crate::kinds::set_default(spec, "suspend", json!(false));
        if spec.get("podReplacementPolicy").is_none() {
            let policy = if spec.get("podFailurePolicy").is_some() {
                "Failed"
            } else {
                "TerminatingOrFailed"
            };
            spec.insert("podReplacementPolicy".into(), json!(policy));
        }
        crate::kinds::set_default(spec, "manualSelector", json!(false));
        default_job_spec(spec);
        // Defaulting copies the user's template labels before the selector is
        // generated; the generated ones follow once read back, as upstream's
        // storage decoding defaults again.
        copy_template_labels(obj);
        if !manual_selector(obj) {
            generate_selector(obj);
        }
        copy_template_labels(obj);
        obj_mut(obj, "status");
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = validate_generated_selector(obj);
        causes.extend(validate_job_spec(obj.get("spec"), "spec"));
        let selector = obj.pointer("/spec/selector").filter(|s| !s.is_null());
        match selector {
            None => causes.push(FieldCause::required("spec.selector", "")),
            Some(selector) => {
                causes.extend(validate_label_selector(Some(selector), "spec.selector"))
            }
        }
        let labels = obj.pointer("/spec/template/metadata/labels");
        if selector.is_some() && selector_matches(selector, labels) == Some(false) {
            causes.push(invalid_shown(
                "spec.template.metadata.labels",
                &go_string_map(labels),
                "`selector` does not match template `labels`",
            ));
        }
        let indexed =
            obj.pointer("/spec/completionMode").and_then(Value::as_str) == Some("Indexed");
        if let Some(completions) = obj
            .pointer("/spec/completions")
            .and_then(Value::as_i64)
            .filter(|c| indexed && *c > 0)
        {
            let name = meta_str(obj, "name");
            let hostname = format!("{name}-{}", completions - 1);
            if !crate::validation::is_dns1123_label(&hostname).is_empty() {
                causes.push(FieldCause::invalid(
                    "metadata.name",
                    &json!(name),
                    format!("will not able to create pod with invalid DNS label: {hostname}"),
                ));
            }
        }
        causes.extend(non_negative_fields(
            obj,
            &[
                "status.active",
                "status.succeeded",
                "status.failed",
                "status.ready",
                "status.terminating",
            ],
        ));
        causes
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        let mut causes = validate_completions_update(old, new);
        causes.extend(immutable_fields(old, new, &["/spec/selector"]));
        causes.extend(validate_template_update(old, new));
        causes.extend(immutable_fields(
            old,
            new,
            &[
                "/spec/completionMode",
                "/spec/podFailurePolicy",
                "/spec/backoffLimitPerIndex",
                "/spec/managedBy",
                "/spec/successPolicy",
            ],
        ));
        causes
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Status", "string", 0, "Status of the job."),
            col("Completions", "string", 0, "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs."),
            col("Duration", "string", 0, "Time required to complete the job."),
            AGE,
            col("Containers", "string", 1, "Names of each container in the template."),
            col("Images", "string", 1, "Images referenced by each container in the template."),
            col("Selector", "string", 1, "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let succeeded = int_at(obj, &["status", "succeeded"]);
        let completions = match obj.pointer("/spec/completions").and_then(Value::as_i64) {
            Some(completions) => format!("{succeeded}/{completions}"),
            None => match int_at(obj, &["spec", "parallelism"]) {
                parallelism if parallelism > 1 => format!("{succeeded}/1 of {parallelism}"),
                _ => format!("{succeeded}/1"),
            },
        };
        let timestamp = |field: &str| {
            str_at(obj, &["status", field]).and_then(|t| t.parse::<jiff::Timestamp>().ok())
        };
        let duration = match (timestamp("startTime"), timestamp("completionTime")) {
            (None, _) => String::new(),
            (Some(_), None) => age(obj, &["status", "startTime"], now),
            (Some(start), Some(end)) => human_duration(end.as_second() - start.as_second()),
        };
        let (containers, images) =
            containers_and_images(obj.pointer("/spec/template/spec").unwrap_or(&Value::Null));
        vec![
            crate::table::name_cell(obj),
            json!(job_status(obj)),
            json!(completions),
            json!(duration),
            crate::table::age_cell(obj, now),
            json!(containers),
            json!(images),
            json!(selector_string(obj.pointer("/spec/selector"))),
        ]
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["status.successful"]
    }

    fn field_value(&self, obj: &Value, field: &str) -> String {
        match field {
            "status.successful" => int_at(obj, &["status", "succeeded"]).to_string(),
            other => crate::kinds::field_value_at(obj, other),
        }
    }
}

/// Whether the Job has a condition of `kind` with status True.
pub fn has_condition(obj: &Value, kind: &str) -> bool {
    array_at(obj, &["status", "conditions"]).iter().any(|c| {
        c.get("type").and_then(Value::as_str) == Some(kind)
            && c.get("status").and_then(Value::as_str) == Some("True")
    })
}

/// The STATUS cell of `kubectl get jobs`.
fn job_status(obj: &Value) -> &'static str {
    if has_condition(obj, "Complete") {
        "Complete"
    } else if has_condition(obj, "Failed") {
        "Failed"
    } else if obj.pointer("/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else if has_condition(obj, "Suspended") {
        "Suspended"
    } else if has_condition(obj, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(obj, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    }
}

/// Upstream's `ValidateHasLabel` on the pod template's labels.
fn has_label(labels: Option<&Value>, key: &str, expected: &str) -> Option<FieldCause> {
    let field = format!("spec.template.metadata.labels[{key}]");
    match labels.and_then(|l| l.get(key)).and_then(Value::as_str) {
        None => Some(FieldCause::required(field, format!("must be '{expected}'"))),
        Some(actual) if actual != expected => Some(invalid_shown(
            field,
            &go_string_map(labels),
            &format!("must be '{expected}'"),
        )),
        Some(_) => None,
    }
}

/// Upstream's `validateGeneratedSelector` (with the prefixed labels required).
fn validate_generated_selector(obj: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let Some(selector) = obj.pointer("/spec/selector").filter(|s| !s.is_null()) else {
        return causes;
    };
    if manual_selector(obj) {
        return causes;
    }
    let uid = meta_str(obj, "uid");
    let name = meta_str(obj, "name");
    if uid.is_empty() {
        causes.push(FieldCause::required("metadata.uid", ""));
    }
    let labels = obj.pointer("/spec/template/metadata/labels");
    causes.extend(has_label(labels, LEGACY_CONTROLLER_UID, uid));
    causes.extend(has_label(labels, LEGACY_JOB_NAME, name));
    causes.extend(has_label(labels, CONTROLLER_UID, uid));
    causes.extend(has_label(labels, JOB_NAME, name));
    let expected = json!({
        CONTROLLER_UID: uid, JOB_NAME: name, LEGACY_CONTROLLER_UID: uid, LEGACY_JOB_NAME: name,
    });
    if selector_matches(Some(selector), Some(&expected)) == Some(false) {
        causes.push(FieldCause::invalid(
            "spec.selector",
            selector,
            "`selector` not auto-generated",
        ));
    }
    causes
}

/// Upstream's `validateCompletions`: immutable, except that an Indexed Job may
/// change it together with parallelism (ElasticIndexedJob).
fn validate_completions_update(old: &Value, new: &Value) -> Vec<FieldCause> {
    let indexed = new.pointer("/spec/completionMode").and_then(Value::as_str) == Some("Indexed");
    if !indexed {
        return immutable_fields(old, new, &["/spec/completions"]);
    }
    let (before, after) = (
        old.pointer("/spec/completions"),
        new.pointer("/spec/completions"),
    );
    match after {
        Some(after) if Some(after) != before => {
            if new.pointer("/spec/parallelism") != Some(after) {
                vec![FieldCause::invalid(
                    "spec.completions",
                    after,
                    "can only be modified in tandem with spec.parallelism",
                )]
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    }
}

/// The pod template may not change, except that a suspended Job that never
/// started may change its scheduling directives, labels and annotations.
fn validate_template_update(old: &Value, new: &Value) -> Vec<FieldCause> {
    let new_template = new
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(Value::Null);
    let mut old_template = old
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(Value::Null);
    let suspended = old.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
    let not_started = old.pointer("/status/startTime").is_none();
    if suspended && not_started && old_template.is_object() {
        let new_affinity = new_template.pointer("/spec/affinity").cloned();
        let new_node_affinity = new_template.pointer("/spec/affinity/nodeAffinity").cloned();
        let spec = obj_mut(&mut old_template, "spec");
        match (
            new_affinity,
            spec.get_mut("affinity").and_then(Value::as_object_mut),
        ) {
            (None, Some(affinity)) => {
                affinity.remove("nodeAffinity");
                if affinity.is_empty() {
                    spec.remove("affinity");
                }
            }
            (Some(_), None) => {
                let mut affinity = Map::new();
                if let Some(node) = new_node_affinity {
                    affinity.insert("nodeAffinity".into(), node);
                }
                spec.insert("affinity".into(), Value::Object(affinity));
            }
            (Some(_), Some(affinity)) => match new_node_affinity {
                Some(node) => {
                    affinity.insert("nodeAffinity".into(), node);
                }
                None => {
                    affinity.remove("nodeAffinity");
                }
            },
            (None, None) => {}
        }
        for (section, field) in [
            ("spec", "nodeSelector"),
            ("spec", "tolerations"),
            ("spec", "schedulingGates"),
            ("metadata", "annotations"),
            ("metadata", "labels"),
        ] {
            let value = new_template
                .get(section)
                .and_then(|s| s.get(field))
                .cloned();
            let target = obj_mut(&mut old_template, section);
            match value {
                Some(v) => {
                    target.insert(field.into(), v);
                }
                None => {
                    target.remove(field);
                }
            }
        }
    }
    if old_template != new_template {
        vec![FieldCause::immutable("spec.template", &new_template)]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Value {
        json!({"metadata": {"name": "pi", "uid": "u-1", "creationTimestamp": "2026-01-01T11:00:00Z"},
            "spec": {"template": {"spec": {"containers": [{"name": "pi", "image": "perl:5"}], "restartPolicy": "Never"}}}})
    }

    #[test]
    fn defaults_generate_the_selector() {
        let mut j = job();
        Job.default(&mut j);
        assert_eq!(j["spec"]["completions"], 1);
        assert_eq!(j["spec"]["parallelism"], 1);
        assert_eq!(j["spec"]["backoffLimit"], 6);
        assert_eq!(j["spec"]["completionMode"], "NonIndexed");
        assert_eq!(j["spec"]["suspend"], false);
        assert_eq!(j["spec"]["manualSelector"], false);
        assert_eq!(j["spec"]["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(
            j["spec"]["selector"],
            json!({"matchLabels": {CONTROLLER_UID: "u-1"}})
        );
        let labels = json!({LEGACY_JOB_NAME: "pi", JOB_NAME: "pi", LEGACY_CONTROLLER_UID: "u-1", CONTROLLER_UID: "u-1"});
        assert_eq!(j["spec"]["template"]["metadata"]["labels"], labels);
        assert_eq!(j["metadata"]["labels"], labels);
        assert_eq!(j["status"], json!({}));
        assert!(Job.validate(&j).is_empty(), "{:?}", Job.validate(&j));
    }

    #[test]
    fn user_template_labels_become_the_job_labels() {
        let mut j = job();
        j["spec"]["template"]["metadata"] = json!({"labels": {"app": "pi"}});
        Job.default(&mut j);
        assert_eq!(j["metadata"]["labels"], json!({"app": "pi"}));
        assert_eq!(j["spec"]["template"]["metadata"]["labels"]["app"], "pi");
    }

    #[test]
    fn user_selectors_need_manual_selector() {
        let mut j = job();
        j["spec"]["selector"] = json!({"matchLabels": {"app": "pi"}});
        j["spec"]["template"]["metadata"] = json!({"labels": {"app": "pi"}});
        Job.default(&mut j);
        let causes = Job.validate(&j);
        assert!(causes
            .iter()
            .any(|c| c.field == "spec.selector"
                && c.message.ends_with("`selector` not auto-generated")));
        let mut manual = job();
        manual["spec"]["manualSelector"] = json!(true);
        manual["spec"]["selector"] = json!({"matchLabels": {"app": "pi"}});
        manual["spec"]["template"]["metadata"] = json!({"labels": {"app": "pi"}});
        Job.default(&mut manual);
        assert!(
            Job.validate(&manual).is_empty(),
            "{:?}",
            Job.validate(&manual)
        );
        assert!(manual["spec"]["template"]["metadata"]["labels"]
            .get(CONTROLLER_UID)
            .is_none());
    }

    #[test]
    fn restart_policy_must_not_be_always() {
        let mut j = job();
        j["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        Job.default(&mut j);
        let causes = Job.validate(&j);
        assert_eq!(causes[0].field, "spec.template.spec.restartPolicy");
        assert_eq!(
            causes[0].message,
            "Required value: valid values: \"OnFailure\", \"Never\""
        );
    }

    #[test]
    fn template_is_immutable_unless_suspended_and_unstarted() {
        let mut old = job();
        Job.default(&mut old);
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["nodeSelector"] = json!({"disk": "ssd"});
        let causes = Job.validate_update(&old, &new);
        assert_eq!(causes[0].field, "spec.template");
        assert!(causes[0].message.ends_with("field is immutable"));
        old["spec"]["suspend"] = json!(true);
        new["spec"]["suspend"] = json!(true);
        assert!(Job.validate_update(&old, &new).is_empty());
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:6");
        assert_eq!(Job.validate_update(&old, &new)[0].field, "spec.template");
        let mut fewer = old.clone();
        fewer["spec"]["completions"] = json!(3);
        assert_eq!(
            Job.validate_update(&old, &fewer)[0].field,
            "spec.completions"
        );
    }

    #[test]
    fn rows_and_field_selector() {
        let mut j = job();
        Job.default(&mut j);
        j["status"] = json!({"succeeded": 1, "startTime": "2026-01-01T11:00:00Z",
            "completionTime": "2026-01-01T11:00:42Z",
            "conditions": [{"type": "Complete", "status": "True"}]});
        let row = Job.cells(&j, "2026-01-01T12:00:00Z".parse().unwrap());
        assert_eq!(row.len(), Job.columns().len());
        assert_eq!(row[1], "Complete");
        assert_eq!(row[2], "1/1");
        assert_eq!(row[3], "42s");
        assert_eq!(row[7], "batch.kubernetes.io/controller-uid=u-1");
        assert_eq!(Job.field_value(&j, "status.successful"), "1");
        assert_eq!(Job.field_value(&job(), "status.successful"), "0");
    }
}
