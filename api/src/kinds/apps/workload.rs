//! Checks the workload kinds of several groups share (DaemonSets,
//! StatefulSets, Jobs, CronJobs, PodDisruptionBudgets, autoscalers): upstream's
//! `ValidateLabelSelector`, `ValidatePositiveIntOrPercent`, the pod template's
//! own metadata, non-negative counters, and the Go renderings upstream's error
//! messages show for values that are not plain strings or numbers.

use serde_json::{Map, Value};

use crate::field::FieldCause;
use crate::validation as names;

/// A field error whose value is shown the way Go's `%#v` or a `String()`
/// method shows it (upstream's `field.Invalid` with a struct or map value).
pub fn invalid_shown(field: impl Into<String>, shown: &str, detail: &str) -> FieldCause {
    let message = if detail.is_empty() {
        format!("Invalid value: {shown}")
    } else {
        format!("Invalid value: {shown}: {detail}")
    };
    FieldCause {
        reason: "FieldValueInvalid",
        field: field.into(),
        message,
    }
}

/// Upstream's `field.TooLong` for a field of at most `max` bytes.
pub fn too_long(field: impl Into<String>, max: usize) -> FieldCause {
    let unit = if max == 1 { "byte" } else { "bytes" };
    FieldCause {
        reason: "FieldValueTooLong",
        field: field.into(),
        message: format!("Too long: may not be more than {max} {unit}"),
    }
}

/// Upstream's `field.TooMany` for a list of `actual` items where `max` are allowed.
pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> FieldCause {
    FieldCause {
        reason: "FieldValueTooMany",
        field: field.into(),
        message: format!("Too many: {actual}: must have at most {max} items"),
    }
}

/// A string as Go's `%q` writes it.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A `map[string]string` (labels) as Go's `%#v` shows it: keys sorted.
pub fn go_string_map(map: Option<&Value>) -> String {
    let Some(map) = map.and_then(Value::as_object) else {
        return "map[string]string(nil)".to_owned();
    };
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let body: Vec<String> = entries
        .iter()
        .map(|(k, v)| {
            format!(
                "{}:{}",
                go_quote(k),
                go_quote(v.as_str().unwrap_or_default())
            )
        })
        .collect();
    format!("map[string]string{{{}}}", body.join(", "))
}

/// An `intstr.IntOrString` as Go's `%#v` shows it.
pub fn go_int_or_string(value: &Value) -> String {
    match value {
        Value::String(s) => format!(
            "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
            go_quote(s)
        ),
        other => format!(
            "intstr.IntOrString{{Type:0, IntVal:{}, StrVal:\"\"}}",
            other.as_i64().unwrap_or_default()
        ),
    }
}

/// Upstream's `ValidateNonnegativeField` of the integer at `pointer`, if set.
pub fn non_negative(obj: &Value, pointer: &str, field: &str) -> Option<FieldCause> {
    let value = obj.pointer(pointer).and_then(Value::as_i64)?;
    (value < 0).then(|| {
        FieldCause::invalid(
            field,
            &Value::from(value),
            "must be greater than or equal to 0",
        )
    })
}

/// Upstream's `ValidateNonnegativeField` of several integers of `obj`, each
/// given as a dotted field path (`spec.replicas`).
pub fn non_negative_fields(obj: &Value, fields: &[&str]) -> Vec<FieldCause> {
    fields
        .iter()
        .filter_map(|field| non_negative(obj, &format!("/{}", field.replace('.', "/")), field))
        .collect()
}

/// The percentage of a valid percent string (`25%`), as upstream's `getPercentValue`.
fn percent_value(value: &Value) -> Option<i64> {
    let s = value.as_str()?;
    let digits = s.strip_suffix('%')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().unwrap_or(i64::MAX))
}

/// Upstream's `getIntOrPercentValue`: a percentage's number, an integer, or a
/// string parsed as an integer (0 when it is not one).
pub fn int_or_percent_value(value: &Value) -> i64 {
    if let Some(percent) = percent_value(value) {
        return percent;
    }
    match value {
        Value::String(s) => s.parse().unwrap_or(0),
        other => other.as_i64().unwrap_or(0),
    }
}

/// Upstream's `ValidatePositiveIntOrPercent` and `IsNotMoreThan100Percent` of
/// an int-or-string field.
pub fn validate_int_or_percent(value: &Value, field: &str) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    match value {
        Value::String(_) => {
            if percent_value(value).is_none() {
                causes.push(invalid_shown(
                    field,
                    &go_int_or_string(value),
                    &names::regex_error(
                        "a valid percent string must be a numeric string followed by an ending '%'",
                        "[0-9]+%",
                        &["1%", "93%"],
                    ),
                ));
            }
        }
        other => {
            let n = other.as_i64().unwrap_or(0);
            if n < 0 {
                causes.push(FieldCause::invalid(
                    field,
                    &Value::from(n),
                    "must be greater than or equal to 0",
                ));
            }
        }
    }
    if percent_value(value).is_some_and(|p| p > 100) {
        causes.push(invalid_shown(
            field,
            &go_int_or_string(value),
            "must not be greater than 100%",
        ));
    }
    causes
}

/// Upstream's `ValidateLabelSelector` (strict label values) of the selector at
/// `field`: label keys and values of `matchLabels`, and the key, operator and
/// values of each `matchExpressions` entry.
pub fn validate_label_selector(selector: Option<&Value>, field: &str) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let Some(selector) = selector.filter(|s| !s.is_null()) else {
        return causes;
    };
    for (i, expr) in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{field}.matchExpressions[{i}]");
        let operator = expr.get("operator").and_then(Value::as_str).unwrap_or("");
        let values = expr
            .get("values")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        match operator {
            "In" | "NotIn" => {
                if values == 0 {
                    causes.push(FieldCause::required(
                        format!("{at}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if values > 0 {
                    causes.push(FieldCause::forbidden(
                        format!("{at}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => causes.push(FieldCause::invalid(
                format!("{at}.operator"),
                &Value::String(other.to_owned()),
                "not a valid selector operator",
            )),
        }
        let key = expr.get("key").and_then(Value::as_str).unwrap_or("");
        for problem in names::is_qualified_name(key) {
            causes.push(FieldCause::invalid(
                format!("{at}.key"),
                &Value::String(key.to_owned()),
                problem,
            ));
        }
        for (j, value) in expr
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let value = value.as_str().unwrap_or_default();
            for problem in names::is_valid_label_value(value) {
                causes.push(FieldCause::invalid(
                    format!("{at}.values[{j}]"),
                    &Value::String(value.to_owned()),
                    problem,
                ));
            }
        }
    }
    causes.extend(validate_labels(
        selector.get("matchLabels"),
        &format!("{field}.matchLabels"),
    ));
    causes
}

/// Upstream's `ValidateLabels`: every key a qualified name, every value a label value.
pub fn validate_labels(labels: Option<&Value>, field: &str) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    for (key, value) in labels.and_then(Value::as_object).into_iter().flatten() {
        for problem in names::is_qualified_name(key) {
            causes.push(FieldCause::invalid(
                field,
                &Value::String(key.clone()),
                problem,
            ));
        }
        let value = value.as_str().unwrap_or_default();
        for problem in names::is_valid_label_value(value) {
            causes.push(FieldCause::invalid(
                field,
                &Value::String(value.to_owned()),
                problem,
            ));
        }
    }
    causes
}

/// The pod template's own metadata, as `ValidatePodTemplateSpec` checks it:
/// labels at `<field>.labels` and annotation keys at `<field>.annotations`
/// (upstream's paths, without `metadata`).
pub fn validate_template_metadata(template: Option<&Value>, field: &str) -> Vec<FieldCause> {
    let meta = template.and_then(|t| t.get("metadata"));
    let mut causes = validate_labels(
        meta.and_then(|m| m.get("labels")),
        &format!("{field}.labels"),
    );
    if let Some(annotations) = meta
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
    {
        for key in annotations.keys() {
            for problem in names::is_qualified_name(&key.to_lowercase()) {
                causes.push(FieldCause::invalid(
                    format!("{field}.annotations"),
                    &Value::String(key.clone()),
                    problem,
                ));
            }
        }
    }
    causes
}

/// Whether `selector` (a `metav1.LabelSelector`) selects objects with `labels`,
/// as `LabelSelectorAsSelector(selector).Matches(labels)`: a missing selector
/// selects nothing, an empty one everything; None when it does not parse.
pub fn selector_matches(selector: Option<&Value>, labels: Option<&Value>) -> Option<bool> {
    let parsed =
        crate::selector::LabelSelector::from_value(selector.unwrap_or(&Value::Null)).ok()?;
    Some(parsed.matches_value(labels))
}

/// Whether a selector has neither `matchLabels` nor `matchExpressions` entries.
pub fn selector_is_empty(selector: &Value) -> bool {
    let count = |key: &str| -> usize {
        match selector.get(key) {
            Some(Value::Object(m)) => m.len(),
            Some(Value::Array(a)) => a.len(),
            _ => 0,
        }
    };
    count("matchLabels") + count("matchExpressions") == 0
}

/// The status fields Go always writes (no `omitempty`), as zero when absent.
pub fn zero_status_fields(obj: &mut Value, fields: &[&str]) {
    let status = crate::kinds::obj_mut(obj, "status");
    for field in fields {
        crate::kinds::set_default(status, field, Value::from(0));
    }
}

/// `obj` with the given keys of its map at `key` replaced by `from`'s (removed
/// where `from` lacks them), to compare what else changed.
pub fn with_fields_from(obj: Option<&Value>, from: Option<&Value>, keys: &[&str]) -> Value {
    let mut out = obj.cloned().unwrap_or(Value::Object(Map::new()));
    if let Some(map) = out.as_object_mut() {
        for key in keys {
            match from.and_then(|f| f.get(*key)) {
                Some(v) => {
                    map.insert((*key).to_owned(), v.clone());
                }
                None => {
                    map.remove(*key);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn int_or_percent_follows_upstream() {
        assert!(validate_int_or_percent(&json!("25%"), "f").is_empty());
        assert!(validate_int_or_percent(&json!(3), "f").is_empty());
        let bad = validate_int_or_percent(&json!("50x"), "spec.minAvailable");
        assert_eq!(
            bad[0].message,
            "Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"50x\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
        );
        let over = validate_int_or_percent(&json!("150%"), "f");
        assert_eq!(over.len(), 1);
        assert!(over[0].message.ends_with("must not be greater than 100%"));
        assert_eq!(
            validate_int_or_percent(&json!(-1), "f")[0].message,
            "Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(int_or_percent_value(&json!("30%")), 30);
        assert_eq!(int_or_percent_value(&json!(2)), 2);
    }

    #[test]
    fn selectors_are_checked_like_upstream() {
        let selector = json!({"matchExpressions": [
            {"key": "a", "operator": "In"},
            {"key": "b", "operator": "Exists", "values": ["x"]},
            {"key": "c", "operator": "Near", "values": ["x"]},
        ], "matchLabels": {"ok": "bad value"}});
        let causes = validate_label_selector(Some(&selector), "spec.selector");
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.selector.matchExpressions[0].values",
                "spec.selector.matchExpressions[1].values",
                "spec.selector.matchExpressions[2].operator",
                "spec.selector.matchLabels"
            ]
        );
        assert_eq!(
            go_string_map(Some(&json!({"b": "2", "a": "1"}))),
            "map[string]string{\"a\":\"1\", \"b\":\"2\"}"
        );
    }
}
