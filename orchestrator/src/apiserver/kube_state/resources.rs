//! Resource quantities as kube-state-metrics reports them: a `resource`
//! label with the name's non-alphanumerics as `_` (`nvidia_com_gpu`), a
//! `unit` label (`core`, `byte`, `integer`) and the value in that unit.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// `(resource, unit, value)` for every quantity kube-state-metrics reports;
/// names it does not know (neither built in nor extended) are left out.
pub fn rows(quantities: Option<&BTreeMap<String, Quantity>>) -> Vec<(String, &'static str, f64)> {
    let Some(quantities) = quantities else {
        return Vec::new();
    };
    quantities
        .iter()
        .filter_map(|(name, quantity)| {
            let parsed = berth_api::quantity::Quantity::parse(&quantity.0).ok()?;
            let (unit, value) = match name.as_str() {
                "cpu" => ("core", parsed.milli_value() as f64 / 1000.0),
                "memory" | "storage" | "ephemeral-storage" => ("byte", parsed.value() as f64),
                "pods" => ("integer", parsed.value() as f64),
                n if n.starts_with("hugepages-") || n.starts_with("attachable-volumes-") => {
                    ("byte", parsed.value() as f64)
                }
                n if is_extended(n) => ("integer", parsed.value() as f64),
                _ => return None,
            };
            Some((label_name(name), unit, value))
        })
        .collect()
}

/// A name outside `kubernetes.io/` with a domain prefix (`nvidia.com/gpu`).
fn is_extended(name: &str) -> bool {
    name.contains('/') && !name.starts_with("kubernetes.io/") && !name.contains(".kubernetes.io/")
}

/// The name with every character a label name may not hold as `_`.
pub fn label_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_follow_kube_state_metrics() {
        let quantities: BTreeMap<String, Quantity> = [
            ("cpu", "250m"),
            ("memory", "1Ki"),
            ("nvidia.com/gpu", "8"),
            ("ephemeral-storage", "1k"),
            ("pods", "110"),
            ("unknown", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Quantity(v.to_owned())))
        .collect();
        assert_eq!(
            rows(Some(&quantities)),
            vec![
                ("cpu".to_owned(), "core", 0.25),
                ("ephemeral_storage".to_owned(), "byte", 1000.0),
                ("memory".to_owned(), "byte", 1024.0),
                ("nvidia_com_gpu".to_owned(), "integer", 8.0),
                ("pods".to_owned(), "integer", 110.0),
            ]
        );
    }
}
