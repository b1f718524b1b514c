//! Taints written as kubectl writes them (`key=value:Effect`, `key:Effect`),
//! checked with kubectl's rules and messages. A node registers with its taints,
//! so the effect is required here, unlike `kubectl taint KEY-`.

use berth_api::validation::{is_qualified_name, is_valid_label_value};

use super::model::Taint;

/// The effects a taint may have.
pub const EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// Parses one taint, or says why it is not one (kubectl's wording).
pub fn parse_taint(spec: &str) -> Result<Taint, String> {
    let invalid = |why: &str| format!("invalid taint spec: {spec}, {why}");
    let Some((key_value, effect)) = spec.split_once(':') else {
        return Err(invalid(
            "a taint needs an effect: key=value:Effect with Effect one of NoSchedule, PreferNoSchedule, NoExecute",
        ));
    };
    if effect.contains(':') {
        return Err(format!("invalid taint spec: {spec}"));
    }
    if !EFFECTS.contains(&effect) {
        return Err(format!(
            "invalid taint effect: {effect}, unsupported taint effect (allowed: NoSchedule, PreferNoSchedule, NoExecute)"
        ));
    }
    let (key, value) = match key_value.split_once('=') {
        Some((_, value)) if value.contains('=') => {
            return Err(format!("invalid taint spec: {spec}"))
        }
        Some((key, value)) => (key, value),
        None => (key_value, ""),
    };
    let problems = is_valid_label_value(value);
    if !problems.is_empty() {
        return Err(invalid(&problems.join("; ")));
    }
    let problems = is_qualified_name(key);
    if !problems.is_empty() {
        return Err(invalid(&problems.join("; ")));
    }
    Ok(Taint {
        key: key.to_owned(),
        value: value.to_owned(),
        effect: effect.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taints_parse_as_kubectl_reads_them() {
        let good = [
            (
                "dedicated=batch:NoSchedule",
                "dedicated",
                "batch",
                "NoSchedule",
            ),
            (
                "example.com/spot:PreferNoSchedule",
                "example.com/spot",
                "",
                "PreferNoSchedule",
            ),
            ("k=:NoExecute", "k", "", "NoExecute"),
        ];
        for (spec, key, value, effect) in good {
            let taint = parse_taint(spec).unwrap();
            assert_eq!(
                (
                    taint.key.as_str(),
                    taint.value.as_str(),
                    taint.effect.as_str()
                ),
                (key, value, effect)
            );
        }
        let bad = [
            ("dedicated=batch", "invalid taint spec: dedicated=batch, a taint needs an effect: key=value:Effect with Effect one of NoSchedule, PreferNoSchedule, NoExecute"),
            ("a:b:NoSchedule", "invalid taint spec: a:b:NoSchedule"),
            ("a=b=c:NoSchedule", "invalid taint spec: a=b=c:NoSchedule"),
            ("a=b:Never", "invalid taint effect: Never, unsupported taint effect (allowed: NoSchedule, PreferNoSchedule, NoExecute)"),
            ("a=b c:NoSchedule", "invalid taint spec: a=b c:NoSchedule, a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
            ("=b:NoSchedule", "invalid taint spec: =b:NoSchedule, name part must be non-empty; name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
        ];
        for (spec, message) in bad {
            assert_eq!(parse_taint(spec).unwrap_err(), message, "{spec}");
        }
    }
}
