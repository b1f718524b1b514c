//! The Job spec's own rules, shared by Jobs and the job template of CronJobs:
//! upstream's `validateJobSpec` (counts, completion modes, the pod failure and
//! success policies, the pod replacement policy, the pod template and its
//! restart policy) and the defaults the job template gets.

use serde_json::{json, Map, Value};

use crate::field::FieldCause;
use crate::kinds::apps::workload::{
    non_negative_fields, too_long, too_many, validate_template_metadata,
};
use crate::kinds::core::pod::spec::{default_template, validate_pod_spec};

/// An Indexed Job's largest parallelism.
const MAX_PARALLELISM_FOR_INDEXED_JOB: i64 = 100_000;
/// An Indexed Job's largest `maxFailedIndexes`.
const MAX_FAILED_INDEXES_FOR_INDEXED_JOB: i64 = 100_000;
const COMPLETIONS_SOFT_LIMIT: i64 = 100_000;
const PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS: i64 = 10_000;
const MAX_FAILED_INDEXES_LIMIT_FOR_HIGH_COMPLETIONS: i64 = 10_000;
const MAX_POD_FAILURE_POLICY_RULES: usize = 20;
const MAX_ON_EXIT_CODES_VALUES: usize = 255;
const MAX_ON_POD_CONDITIONS_PATTERNS: usize = 20;
const MAX_MANAGED_BY_LENGTH: usize = 63;
const MAX_SUCCEEDED_INDEXES_LENGTH: usize = 64 * 1024;
const MAX_SUCCESS_POLICY_RULES: usize = 20;

/// The defaults inside a Job spec that apply wherever one appears: the pod
/// template's, and `status: True` on pod failure policy condition patterns.
pub fn default_job_spec(spec: &mut Map<String, Value>) {
    default_template(spec);
    for rule in spec
        .get_mut("podFailurePolicy")
        .and_then(|p| p.get_mut("rules"))
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        for pattern in rule
            .get_mut("onPodConditions")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object_mut)
        {
            if pattern
                .get("status")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                pattern.insert("status".into(), json!("True"));
            }
        }
    }
}

/// A field error whose value upstream omits (`field.OmitValueType`).
pub fn invalid_omitted(field: impl Into<String>, detail: &str) -> FieldCause {
    FieldCause {
        reason: "FieldValueInvalid",
        field: field.into(),
        message: format!("Invalid value: {detail}"),
    }
}

/// Go's `%q` of a sorted string list: `["a" "b"]`.
fn quoted_list(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
    format!("[{}]", quoted.join(" "))
}

fn int(spec: &Value, key: &str) -> Option<i64> {
    spec.get(key).and_then(Value::as_i64)
}

/// Upstream's `validateJobSpec` of the spec at `path` (`spec` of a Job,
/// `spec.jobTemplate.spec` of a CronJob).
pub fn validate_job_spec(spec: Option<&Value>, path: &str) -> Vec<FieldCause> {
    let empty = json!({});
    let spec = spec.unwrap_or(&empty);
    let wrapped = json!({ "s": spec });
    let fields: Vec<String> = [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ]
    .iter()
    .map(|f| format!("s.{f}"))
    .collect();
    let field_refs: Vec<&str> = fields.iter().map(String::as_str).collect();
    let mut causes: Vec<FieldCause> = non_negative_fields(&wrapped, &field_refs)
        .into_iter()
        .map(|mut c| {
            c.field = format!("{path}{}", &c.field[1..]);
            c
        })
        .collect();
    let completions = int(spec, "completions");
    let parallelism = int(spec, "parallelism");
    let per_index = int(spec, "backoffLimitPerIndex");
    let max_failed = int(spec, "maxFailedIndexes");
    if max_failed.is_some() && per_index.is_none() {
        causes.push(FieldCause::required(
            format!("{path}.backoffLimitPerIndex"),
            "when maxFailedIndexes is specified",
        ));
    }
    if let Some(managed_by) = spec.get("managedBy").and_then(Value::as_str) {
        causes.extend(validate_domain_prefixed_path(
            &format!("{path}.managedBy"),
            managed_by,
        ));
        if managed_by.len() > MAX_MANAGED_BY_LENGTH {
            causes.push(too_long(format!("{path}.managedBy"), MAX_MANAGED_BY_LENGTH));
        }
    }
    let mode = spec.get("completionMode").and_then(Value::as_str);
    if let Some(mode) = mode {
        if !matches!(mode, "NonIndexed" | "Indexed") {
            causes.push(FieldCause::not_supported(
                format!("{path}.completionMode"),
                &json!(mode),
                &["NonIndexed", "Indexed"],
            ));
        }
        if mode == "Indexed" {
            if completions.is_none() {
                causes.push(FieldCause::required(
                    format!("{path}.completions"),
                    "when completion mode is Indexed",
                ));
            }
            if let Some(p) = parallelism.filter(|p| *p > MAX_PARALLELISM_FOR_INDEXED_JOB) {
                causes.push(FieldCause::invalid(
                    format!("{path}.parallelism"),
                    &json!(p),
                    format!("must be less than or equal to {MAX_PARALLELISM_FOR_INDEXED_JOB} when completion mode is Indexed"),
                ));
            }
            if let (Some(c), Some(m)) = (completions, max_failed) {
                if m > c {
                    causes.push(FieldCause::invalid(
                        format!("{path}.maxFailedIndexes"),
                        &json!(m),
                        "must be less than or equal to completions",
                    ));
                }
            }
            if let Some(m) = max_failed.filter(|m| *m > MAX_FAILED_INDEXES_FOR_INDEXED_JOB) {
                causes.push(FieldCause::invalid(
                    format!("{path}.maxFailedIndexes"),
                    &json!(m),
                    format!("must be less than or equal to {MAX_FAILED_INDEXES_FOR_INDEXED_JOB}"),
                ));
            }
            if completions.is_some_and(|c| c > COMPLETIONS_SOFT_LIMIT) && per_index.is_some() {
                if max_failed.is_none() {
                    causes.push(FieldCause::required(
                        format!("{path}.maxFailedIndexes"),
                        format!(
                            "must be specified when completions is above {COMPLETIONS_SOFT_LIMIT}"
                        ),
                    ));
                }
                if let Some(p) = parallelism.filter(|p| *p > PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS)
                {
                    causes.push(FieldCause::invalid(
                        format!("{path}.parallelism"),
                        &json!(p),
                        format!("must be less than or equal to {PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS} when completions are above {COMPLETIONS_SOFT_LIMIT} and used with backoff limit per index"),
                    ));
                }
                if let Some(m) =
                    max_failed.filter(|m| *m > MAX_FAILED_INDEXES_LIMIT_FOR_HIGH_COMPLETIONS)
                {
                    causes.push(FieldCause::invalid(
                        format!("{path}.maxFailedIndexes"),
                        &json!(m),
                        format!("must be less than or equal to {MAX_FAILED_INDEXES_LIMIT_FOR_HIGH_COMPLETIONS} when completions are above {COMPLETIONS_SOFT_LIMIT} and used with backoff limit per index"),
                    ));
                }
            }
        }
    }
    let indexed = mode == Some("Indexed");
    if mode.is_none() || mode == Some("NonIndexed") {
        if let Some(n) = per_index {
            causes.push(FieldCause::invalid(
                format!("{path}.backoffLimitPerIndex"),
                &json!(n),
                "requires indexed completion mode",
            ));
        }
        if let Some(n) = max_failed {
            causes.push(FieldCause::invalid(
                format!("{path}.maxFailedIndexes"),
                &json!(n),
                "requires indexed completion mode",
            ));
        }
    }
    let failure_policy = spec.get("podFailurePolicy").filter(|p| !p.is_null());
    if let Some(policy) = failure_policy {
        causes.extend(validate_pod_failure_policy(
            spec,
            policy,
            &format!("{path}.podFailurePolicy"),
        ));
    }
    if let Some(policy) = spec.get("successPolicy").filter(|p| !p.is_null()) {
        if !indexed {
            causes.push(FieldCause::invalid(
                format!("{path}.successPolicy"),
                policy,
                "requires indexed completion mode",
            ));
        } else {
            causes.extend(validate_success_policy(
                completions.unwrap_or(0),
                policy,
                &format!("{path}.successPolicy"),
            ));
        }
    }
    if let Some(replacement) = spec.get("podReplacementPolicy").and_then(Value::as_str) {
        let at = format!("{path}.podReplacementPolicy");
        if failure_policy.is_some() {
            if replacement != "Failed" {
                causes.push(FieldCause::not_supported(
                    at,
                    &json!(replacement),
                    &["Failed"],
                ));
            }
        } else if !matches!(replacement, "Failed" | "TerminatingOrFailed") {
            causes.push(FieldCause::not_supported(
                at,
                &json!(replacement),
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    let template = spec.get("template");
    causes.extend(validate_template_metadata(
        template,
        &format!("{path}.template"),
    ));
    let pod_spec = template.and_then(|t| t.get("spec"));
    causes.extend(validate_pod_spec(
        &format!("{path}.template.spec"),
        pod_spec,
    ));
    let restart = pod_spec
        .and_then(|s| s.get("restartPolicy"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let at = format!("{path}.template.spec.restartPolicy");
    match restart {
        "Always" | "" => causes.push(FieldCause::required(
            at,
            "valid values: \"OnFailure\", \"Never\"",
        )),
        "OnFailure" | "Never" => {
            if failure_policy.is_some() && restart != "Never" {
                causes.push(FieldCause::invalid(
                    at,
                    &json!(restart),
                    "only \"Never\" is supported when podFailurePolicy is specified",
                ));
            }
        }
        other => causes.push(FieldCause::not_supported(
            at,
            &json!(other),
            &["OnFailure", "Never"],
        )),
    }
    causes
}

/// apimachinery's `IsDomainPrefixedPath` (`acme.io/foo`).
fn validate_domain_prefixed_path(field: &str, value: &str) -> Vec<FieldCause> {
    if value.is_empty() {
        return vec![FieldCause::required(field, "")];
    }
    let Some((host, path)) = value
        .split_once('/')
        .filter(|(h, p)| !h.is_empty() && !p.is_empty())
    else {
        return vec![FieldCause::invalid(
            field,
            &json!(value),
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        )];
    };
    let mut causes: Vec<FieldCause> = crate::validation::is_dns1123_subdomain(host)
        .into_iter()
        .map(|problem| FieldCause::invalid(field, &json!(host), problem))
        .collect();
    let valid_path = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/-._~%!$&'()*+,;=:".contains(c));
    if !valid_path {
        causes.push(FieldCause::invalid(
            field,
            &json!(path),
            crate::validation::regex_error("Invalid path", "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+", &[]),
        ));
    }
    causes
}

const FAILURE_ACTIONS: &[&str] = &["Count", "FailIndex", "FailJob", "Ignore"];
const EXIT_CODE_OPERATORS: &[&str] = &["In", "NotIn"];
const CONDITION_STATUSES: &[&str] = &["False", "True", "Unknown"];

fn validate_pod_failure_policy(spec: &Value, policy: &Value, path: &str) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let rules = policy
        .get("rules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let rules_path = format!("{path}.rules");
    if rules.len() > MAX_POD_FAILURE_POLICY_RULES {
        causes.push(too_many(
            &rules_path,
            rules.len(),
            MAX_POD_FAILURE_POLICY_RULES,
        ));
    }
    let template_spec = spec.pointer("/template/spec");
    let container_names: Vec<&str> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| {
            template_spec
                .and_then(|s| s.get(*k))
                .and_then(Value::as_array)
        })
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect();
    for (i, rule) in rules.iter().enumerate() {
        let rule_path = format!("{rules_path}[{i}]");
        let action_path = format!("{rule_path}.action");
        match rule.get("action").and_then(Value::as_str).unwrap_or("") {
            "" => causes.push(FieldCause::required(
                action_path,
                format!("valid values: {}", quoted_list(FAILURE_ACTIONS)),
            )),
            "FailIndex" if spec.get("backoffLimitPerIndex").is_none() => {
                causes.push(FieldCause::invalid(
                    action_path,
                    &json!("FailIndex"),
                    "requires the backoffLimitPerIndex to be set",
                ))
            }
            action if !FAILURE_ACTIONS.contains(&action) => causes.push(FieldCause::not_supported(
                action_path,
                &json!(action),
                FAILURE_ACTIONS,
            )),
            _ => {}
        }
        let on_exit_codes = rule.get("onExitCodes").filter(|v| !v.is_null());
        let on_conditions = rule
            .get("onPodConditions")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if let Some(requirement) = on_exit_codes {
            causes.extend(validate_on_exit_codes(
                requirement,
                &format!("{rule_path}.onExitCodes"),
                &container_names,
            ));
        }
        if !on_conditions.is_empty() {
            let conditions_path = format!("{rule_path}.onPodConditions");
            if on_conditions.len() > MAX_ON_POD_CONDITIONS_PATTERNS {
                causes.push(too_many(
                    &conditions_path,
                    on_conditions.len(),
                    MAX_ON_POD_CONDITIONS_PATTERNS,
                ));
            }
            for (j, pattern) in on_conditions.iter().enumerate() {
                let pattern_path = format!("{conditions_path}[{j}]");
                let kind = pattern.get("type").and_then(Value::as_str).unwrap_or("");
                for problem in crate::validation::is_qualified_name(kind) {
                    causes.push(FieldCause::invalid(
                        format!("{pattern_path}.type"),
                        &json!(kind),
                        problem,
                    ));
                }
                let status_path = format!("{pattern_path}.status");
                match pattern.get("status").and_then(Value::as_str).unwrap_or("") {
                    "" => causes.push(FieldCause::required(
                        status_path,
                        format!("valid values: {}", quoted_list(CONDITION_STATUSES)),
                    )),
                    status if !CONDITION_STATUSES.contains(&status) => causes.push(
                        FieldCause::not_supported(status_path, &json!(status), CONDITION_STATUSES),
                    ),
                    _ => {}
                }
            }
        }
        if on_exit_codes.is_some() && !on_conditions.is_empty() {
            causes.push(invalid_omitted(
                &rule_path,
                "specifying both OnExitCodes and OnPodConditions is not supported",
            ));
        }
        if on_exit_codes.is_none() && on_conditions.is_empty() {
            causes.push(invalid_omitted(
                &rule_path,
                "specifying one of OnExitCodes and OnPodConditions is required",
            ));
        }
    }
    causes
}

fn validate_on_exit_codes(requirement: &Value, path: &str, containers: &[&str]) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let operator = requirement
        .get("operator")
        .and_then(Value::as_str)
        .unwrap_or("");
    let operator_path = format!("{path}.operator");
    if operator.is_empty() {
        causes.push(FieldCause::required(
            operator_path,
            format!("valid values: {}", quoted_list(EXIT_CODE_OPERATORS)),
        ));
    } else if !EXIT_CODE_OPERATORS.contains(&operator) {
        causes.push(FieldCause::not_supported(
            operator_path,
            &json!(operator),
            EXIT_CODE_OPERATORS,
        ));
    }
    if let Some(name) = requirement.get("containerName").and_then(Value::as_str) {
        if !containers.contains(&name) {
            causes.push(FieldCause::invalid(
                format!("{path}.containerName"),
                &json!(name),
                "must be one of the container or initContainer names in the pod template",
            ));
        }
    }
    let values_path = format!("{path}.values");
    let empty = Vec::new();
    let values = requirement
        .get("values")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    if values.is_empty() {
        causes.push(FieldCause::invalid(
            &values_path,
            &json!(values),
            "at least one value is required",
        ));
    } else if values.len() > MAX_ON_EXIT_CODES_VALUES {
        causes.push(too_many(
            &values_path,
            values.len(),
            MAX_ON_EXIT_CODES_VALUES,
        ));
    }
    let mut ordered = true;
    let mut seen = std::collections::HashSet::new();
    let mut previous: Option<i64> = None;
    for (j, value) in values.iter().enumerate() {
        let code = value.as_i64().unwrap_or(0);
        let value_path = format!("{values_path}[{j}]");
        if operator == "In" && code == 0 {
            causes.push(FieldCause::invalid(
                &value_path,
                &json!(code),
                "must not be 0 for the In operator",
            ));
        }
        if !seen.insert(code) {
            causes.push(FieldCause::duplicate(&value_path, &json!(code)));
        }
        if previous.is_some_and(|p| p > code) {
            ordered = false;
        }
        previous = Some(code);
    }
    if !ordered {
        causes.push(FieldCause::invalid(
            values_path,
            &json!(values),
            "must be ordered",
        ));
    }
    causes
}

fn validate_success_policy(completions: i64, policy: &Value, path: &str) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let rules = policy
        .get("rules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let rules_path = format!("{path}.rules");
    if rules.is_empty() {
        causes.push(FieldCause::required(
            &rules_path,
            "at least one rules must be specified when the successPolicy is specified",
        ));
    }
    if rules.len() > MAX_SUCCESS_POLICY_RULES {
        causes.push(too_many(&rules_path, rules.len(), MAX_SUCCESS_POLICY_RULES));
    }
    for (i, rule) in rules.iter().enumerate() {
        let rule_path = format!("{rules_path}[{i}]");
        let count = rule.get("succeededCount").and_then(Value::as_i64);
        let indexes = rule.get("succeededIndexes").and_then(Value::as_str);
        if count.is_none() && indexes.is_none() {
            causes.push(FieldCause::required(
                &rule_path,
                "at least one of succeededCount or succeededIndexes must be specified",
            ));
        }
        let mut total = 0;
        if let Some(indexes) = indexes {
            let at = format!("{rule_path}.succeededIndexes");
            if indexes.len() > MAX_SUCCEEDED_INDEXES_LENGTH {
                causes.push(too_long(&at, MAX_SUCCEEDED_INDEXES_LENGTH));
            }
            match indexes_total(indexes, completions) {
                Ok(n) => total = n,
                Err(e) => causes.push(FieldCause::invalid(
                    at,
                    &json!(indexes),
                    format!("error parsing succeededIndexes: {e}"),
                )),
            }
        }
        if let Some(count) = count {
            let at = format!("{rule_path}.succeededCount");
            if count < 0 {
                causes.push(FieldCause::invalid(
                    &at,
                    &json!(count),
                    "must be greater than or equal to 0",
                ));
            }
            if count > completions {
                causes.push(FieldCause::invalid(
                    &at,
                    &json!(count),
                    format!("must be less than or equal to {completions} (the number of specified completions)"),
                ));
            }
            if indexes.is_some() && count > total {
                causes.push(FieldCause::invalid(
                    &at,
                    &json!(count),
                    format!("must be less than or equal to {total} (the number of indexes in the specified succeededIndexes field)"),
                ));
            }
        }
    }
    causes
}

/// Upstream's `validateIndexesFormat`: the number of indexes in `1,3-5`, each
/// below `completions`, in increasing order.
pub fn indexes_total(indexes: &str, completions: i64) -> Result<i64, String> {
    if indexes.is_empty() {
        return Ok(0);
    }
    let mut last: Option<i64> = None;
    let mut total = 0;
    for interval in indexes.split(',') {
        let (x, y) = parse_index_interval(interval, completions)?;
        if let Some(last) = last.filter(|l| *l >= x) {
            return Err(format!(
                "non-increasing order, previous: {last}, current: {x}"
            ));
        }
        total += y - x + 1;
        last = Some(y);
    }
    Ok(total)
}

fn parse_index_interval(interval: &str, completions: i64) -> Result<(i64, i64), String> {
    let limits: Vec<&str> = interval.split('-').collect();
    if limits.len() > 2 {
        return Err(format!("the fragment \"{interval}\" violates the requirement that an index interval can have at most two parts separated by '-'"));
    }
    let parse = |s: &str| -> Result<i64, String> {
        let n: i64 = s
            .parse()
            .map_err(|_| format!("cannot convert string to integer for index: \"{s}\""))?;
        if n >= completions {
            return Err(format!("too large index: \"{s}\""));
        }
        Ok(n)
    };
    let x = parse(limits[0])?;
    if let Some(upper) = limits.get(1) {
        let y = parse(upper)?;
        if x >= y {
            return Err(format!("non-increasing order, previous: {x}, current: {y}"));
        }
        return Ok((x, y));
    }
    Ok((x, x))
}

/// The object at `key` of `map`, created (or replaced, when not an object) if needed.
pub fn ensure_object<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = map.entry(key.to_owned()).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("just made an object")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Value {
        json!({"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}], "restartPolicy": "Never"}}})
    }

    #[test]
    fn indexed_jobs_need_completions() {
        let mut s = spec();
        s["completionMode"] = json!("Indexed");
        s["backoffLimitPerIndex"] = json!(1);
        let causes = validate_job_spec(Some(&s), "spec");
        assert_eq!(causes[0].field, "spec.completions");
        assert_eq!(
            causes[0].message,
            "Required value: when completion mode is Indexed"
        );
        let mut non_indexed = spec();
        non_indexed["maxFailedIndexes"] = json!(1);
        let fields: Vec<String> = validate_job_spec(Some(&non_indexed), "spec")
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(
            fields,
            ["spec.backoffLimitPerIndex", "spec.maxFailedIndexes"]
        );
    }

    #[test]
    fn pod_failure_policy_rules() {
        let mut s = spec();
        s["podFailurePolicy"] = json!({"rules": [
            {"action": "Explode", "onExitCodes": {"operator": "In", "values": [3, 1, 0]}},
            {"action": "Ignore"},
        ]});
        let messages: Vec<String> = validate_job_spec(Some(&s), "spec")
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(
            messages,
            [
                "spec.podFailurePolicy.rules[0].action: Unsupported value: \"Explode\": supported values: \"Count\", \"FailIndex\", \"FailJob\", \"Ignore\"",
                "spec.podFailurePolicy.rules[0].onExitCodes.values[2]: Invalid value: 0: must not be 0 for the In operator",
                "spec.podFailurePolicy.rules[0].onExitCodes.values: Invalid value: [3,1,0]: must be ordered",
                "spec.podFailurePolicy.rules[1]: Invalid value: specifying one of OnExitCodes and OnPodConditions is required",
            ]
        );
    }

    #[test]
    fn index_intervals() {
        assert_eq!(indexes_total("0,2-4", 5), Ok(4));
        assert_eq!(indexes_total("", 5), Ok(0));
        assert_eq!(indexes_total("5", 5), Err("too large index: \"5\"".into()));
        assert_eq!(
            indexes_total("3,1", 5),
            Err("non-increasing order, previous: 3, current: 1".into())
        );
        assert_eq!(
            indexes_total("a", 5),
            Err("cannot convert string to integer for index: \"a\"".into())
        );
    }
}
