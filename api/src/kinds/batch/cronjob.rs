//! CronJobs: upstream's defaults (Allow concurrency, not suspended, history
//! limits 3 and 1, the job template's pod defaults), validation (names of at
//! most 52 characters, the schedule as robfig/cron parses it and no `TZ=` in
//! it, the time zone, the job template without a selector), generation
//! tracking and the `kubectl get cronjobs` columns.

use serde_json::{json, Value};

use super::cron::{load_location, parse_standard};
use super::spec::{default_job_spec, ensure_object, validate_job_spec};
use crate::field::FieldCause;
use crate::kinds::apps::workload::non_negative_fields;
use crate::kinds::{obj_mut, set_default, KindRules};
use crate::table::print::{age, array_at, containers_and_images, selector_string};
use crate::table::{col, Column, AGE, NAME};

/// The rules of `batch/v1` CronJob.
#[derive(Debug, Clone, Copy, Default)]
pub struct CronJob;

/// Longest CronJob name: its Jobs add an 11-character suffix to a 63-character limit.
const MAX_NAME_LENGTH: usize = 52;

impl KindRules for CronJob {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let spec = obj_mut(obj, "spec");
        if spec
            .get("concurrencyPolicy")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            spec.insert("concurrencyPolicy".into(), json!("Allow"));
        }
        set_default(spec, "suspend", json!(false));
        set_default(spec, "successfulJobsHistoryLimit", json!(3));
        set_default(spec, "failedJobsHistoryLimit", json!(1));
        let template = ensure_object(spec, "jobTemplate");
        ensure_object(template, "metadata");
        default_job_spec(ensure_object(template, "spec"));
        obj_mut(obj, "status");
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        let schedule = obj
            .pointer("/spec/schedule")
            .and_then(Value::as_str)
            .unwrap_or("");
        if schedule.is_empty() {
            causes.push(FieldCause::required("spec.schedule", ""));
        } else {
            if let Err(e) = parse_standard(schedule) {
                causes.push(FieldCause::invalid("spec.schedule", &json!(schedule), e));
            }
            if schedule.contains("TZ") {
                causes.push(FieldCause::invalid(
                    "spec.schedule",
                    &json!(schedule),
                    "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
                ));
            }
        }
        causes.extend(non_negative_fields(obj, &["spec.startingDeadlineSeconds"]));
        if let Some(zone) = obj.pointer("/spec/timeZone").and_then(Value::as_str) {
            causes.extend(validate_time_zone(zone));
        }
        match obj
            .pointer("/spec/concurrencyPolicy")
            .and_then(Value::as_str)
            .unwrap_or("")
        {
            "Allow" | "Forbid" | "Replace" => {}
            "" => causes.push(FieldCause::required("spec.concurrencyPolicy", "")),
            other => causes.push(FieldCause::not_supported(
                "spec.concurrencyPolicy",
                &json!(other),
                &["Allow", "Forbid", "Replace"],
            )),
        }
        let job_spec = obj.pointer("/spec/jobTemplate/spec");
        causes.extend(validate_job_spec(job_spec, "spec.jobTemplate.spec"));
        if let Some(selector) = job_spec
            .and_then(|s| s.get("selector"))
            .filter(|s| !s.is_null())
        {
            causes.push(FieldCause::invalid(
                "spec.jobTemplate.spec.selector",
                selector,
                "`selector` will be auto-generated",
            ));
        }
        if job_spec
            .and_then(|s| s.get("manualSelector"))
            .and_then(Value::as_bool)
            == Some(true)
        {
            causes.push(FieldCause::not_supported(
                "spec.jobTemplate.spec.manualSelector",
                &json!(true),
                &["nil", "false"],
            ));
        }
        causes.extend(non_negative_fields(
            obj,
            &[
                "spec.successfulJobsHistoryLimit",
                "spec.failedJobsHistoryLimit",
            ],
        ));
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if name.len() > MAX_NAME_LENGTH {
            causes.push(FieldCause::invalid(
                "metadata.name",
                &json!(name),
                "must be no more than 52 characters",
            ));
        }
        causes
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Schedule", "string", 0, "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
            col("Timezone", "string", 0, "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones"),
            col("Suspend", "boolean", 0, "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions. Defaults to false."),
            col("Active", "integer", 0, "A list of pointers to currently running jobs."),
            col("Last Schedule", "string", 0, "Information when was the last time the job was successfully scheduled."),
            AGE,
            col("Containers", "string", 1, "Names of each container in the template."),
            col("Images", "string", 1, "Images referenced by each container in the template."),
            col("Selector", "string", 1, "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let last_schedule = if obj.pointer("/status/lastScheduleTime").is_some() {
            age(obj, &["status", "lastScheduleTime"], now)
        } else {
            "<none>".to_owned()
        };
        let time_zone = obj
            .pointer("/spec/timeZone")
            .and_then(Value::as_str)
            .unwrap_or("<none>");
        let suspend = match obj.pointer("/spec/suspend").and_then(Value::as_bool) {
            Some(true) => "True",
            Some(false) => "False",
            None => "<unset>",
        };
        let job_spec = obj.pointer("/spec/jobTemplate/spec");
        let (containers, images) = containers_and_images(
            job_spec
                .and_then(|s| s.pointer("/template/spec"))
                .unwrap_or(&Value::Null),
        );
        vec![
            crate::table::name_cell(obj),
            json!(obj
                .pointer("/spec/schedule")
                .and_then(Value::as_str)
                .unwrap_or("")),
            json!(time_zone),
            json!(suspend),
            json!(array_at(obj, &["status", "active"]).len()),
            json!(last_schedule),
            crate::table::age_cell(obj, now),
            json!(containers),
            json!(images),
            json!(selector_string(job_spec.and_then(|s| s.get("selector")))),
        ]
    }
}

/// Upstream's `validateTimeZone`.
fn validate_time_zone(zone: &str) -> Vec<FieldCause> {
    let field = "spec.timeZone";
    if zone.is_empty() {
        return vec![FieldCause::invalid(
            field,
            &json!(zone),
            "timeZone must be nil or non-empty string",
        )];
    }
    let valid_part = |part: &str| {
        part != "."
            && part != ".."
            && !part.starts_with('-')
            && (1..=14).contains(&part.len())
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c))
    };
    if !zone.split('/').all(valid_part) {
        return vec![FieldCause::invalid(
            field,
            &json!(zone),
            format!("unknown time zone {zone}"),
        )];
    }
    let mut causes = Vec::new();
    if zone.eq_ignore_ascii_case("Local") {
        causes.push(FieldCause::invalid(
            field,
            &json!(zone),
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    if let Err(e) = load_location(zone) {
        causes.push(FieldCause::invalid(field, &json!(zone), e));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cronjob() -> Value {
        json!({"metadata": {"name": "tick", "creationTimestamp": "2026-01-01T11:00:00Z"},
            "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"name": "tick", "image": "busybox"}], "restartPolicy": "OnFailure"}}}}}})
    }

    #[test]
    fn defaults_and_validation() {
        let mut cj = cronjob();
        CronJob.default(&mut cj);
        assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
        assert_eq!(cj["spec"]["suspend"], false);
        assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
        assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
        assert_eq!(cj["spec"]["jobTemplate"]["metadata"], json!({}));
        assert!(cj["spec"]["jobTemplate"]["spec"]
            .get("backoffLimit")
            .is_none());
        assert_eq!(
            cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
            "ClusterFirst"
        );
        assert!(
            CronJob.validate(&cj).is_empty(),
            "{:?}",
            CronJob.validate(&cj)
        );

        let mut bad = cj.clone();
        bad["spec"]["schedule"] = json!("TZ=UTC 0 * * * *");
        bad["spec"]["timeZone"] = json!("Mars/Olympus");
        bad["spec"]["jobTemplate"]["spec"]["selector"] = json!({"matchLabels": {"a": "b"}});
        let messages: Vec<String> = CronJob
            .validate(&bad)
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(
            messages,
            [
                "spec.schedule: Invalid value: \"TZ=UTC 0 * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
                "spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus",
                "spec.jobTemplate.spec.selector: Invalid value: {\"matchLabels\":{\"a\":\"b\"}}: `selector` will be auto-generated",
            ]
        );
        let mut long = cj.clone();
        long["metadata"]["name"] = json!("x".repeat(53));
        assert_eq!(CronJob.validate(&long)[0].field, "metadata.name");
    }

    #[test]
    fn row_cells() {
        let mut cj = cronjob();
        CronJob.default(&mut cj);
        cj["status"] =
            json!({"active": [{"name": "tick-1"}], "lastScheduleTime": "2026-01-01T11:59:00Z"});
        let row = CronJob.cells(&cj, "2026-01-01T12:00:00Z".parse().unwrap());
        assert_eq!(row.len(), CronJob.columns().len());
        assert_eq!(row[1], "*/1 * * * *");
        assert_eq!(row[2], "<none>");
        assert_eq!(row[3], "False");
        assert_eq!(row[4], 1);
        assert_eq!(row[5], "60s");
        assert_eq!(row[9], "<none>");
    }
}
