//! A container's environment as kubelet builds it: `envFrom` sources, then
//! `env` entries, values from ConfigMaps, Secrets, the downward API and
//! resource fields, and `$(VAR)` expansion — with kubelet's errors for
//! what is missing.

use std::collections::BTreeMap;

use berth_api::quantity::Quantity;
use k8s_openapi::api::core::v1::{Container, EnvVar, EnvVarSource, Pod, ResourceFieldSelector};

use super::spec::{all_containers, config_map_data, secret_data, Lookups, SpecError};

/// The container's environment in kubelet's order: `envFrom` sources, then
/// `env` entries (which override), each value with `$(VAR)` references to
/// earlier variables expanded.
pub(super) fn environment(
    pod: &Pod,
    container: &Container,
    lookups: &Lookups,
    host_ip: &str,
) -> Result<Vec<(String, String)>, SpecError> {
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, name: String, value: String| match env
        .iter_mut()
        .find(|(n, _)| *n == name)
    {
        Some(slot) => slot.1 = value,
        None => env.push((name, value)),
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let data = if let Some(r) = &from.config_map_ref {
            match lookups.config_maps.get(&r.name) {
                Some(map) => config_map_data(map),
                None if r.optional.unwrap_or(false) => BTreeMap::new(),
                None => return Err(SpecError(format!("configmap {:?} not found", r.name))),
            }
        } else if let Some(r) = &from.secret_ref {
            match lookups.secrets.get(&r.name) {
                Some(secret) => secret_data(secret),
                None if r.optional.unwrap_or(false) => BTreeMap::new(),
                None => return Err(SpecError(format!("secret {:?} not found", r.name))),
            }
        } else {
            BTreeMap::new()
        };
        for (key, value) in data {
            set(
                &mut env,
                format!("{prefix}{key}"),
                String::from_utf8_lossy(&value).into_owned(),
            );
        }
    }
    for var in container.env.iter().flatten() {
        let value = match &var.value_from {
            Some(source) => match env_source(pod, container, var, source, lookups, host_ip)? {
                Some(value) => value,
                None => continue,
            },
            None => expand(var.value.as_deref().unwrap_or_default(), &env),
        };
        set(&mut env, var.name.clone(), value);
    }
    Ok(env)
}

/// The value of an `env[].valueFrom`, or `None` for an optional key that is missing.
fn env_source(
    pod: &Pod,
    container: &Container,
    var: &EnvVar,
    source: &EnvVarSource,
    lookups: &Lookups,
    host_ip: &str,
) -> Result<Option<String>, SpecError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    if let Some(r) = &source.config_map_key_ref {
        let data = lookups.config_maps.get(&r.name).map(config_map_data);
        return key_value(data, "ConfigMap", namespace, &r.name, &r.key, r.optional);
    }
    if let Some(r) = &source.secret_key_ref {
        let data = lookups.secrets.get(&r.name).map(secret_data);
        return key_value(data, "Secret", namespace, &r.name, &r.key, r.optional);
    }
    if let Some(field) = &source.field_ref {
        return field_value(pod, &field.field_path, host_ip)
            .map(Some)
            .ok_or_else(|| {
                SpecError(format!(
                    "env {:?}: unsupported fieldRef {:?}",
                    var.name, field.field_path
                ))
            });
    }
    if let Some(field) = &source.resource_field_ref {
        return Ok(Some(
            resource_value(pod, field, Some(&container.name)).to_string(),
        ));
    }
    Ok(Some(String::new()))
}

/// One key of a ConfigMap's or Secret's `data` (`None` when the object is
/// missing) for an env var: `Ok(None)` when it is optional and absent,
/// kubelet's error otherwise.
fn key_value(
    data: Option<BTreeMap<String, Vec<u8>>>,
    kind: &str,
    namespace: &str,
    name: &str,
    key: &str,
    optional: Option<bool>,
) -> Result<Option<String>, SpecError> {
    let optional = optional.unwrap_or(false);
    match data {
        Some(mut data) => match data.remove(key) {
            Some(v) => Ok(Some(String::from_utf8_lossy(&v).into_owned())),
            None if optional => Ok(None),
            None => Err(SpecError(format!(
                "couldn't find key {key} in {kind} {namespace}/{name}"
            ))),
        },
        None if optional => Ok(None),
        None => Err(SpecError(format!(
            "{} {name:?} not found",
            kind.to_lowercase()
        ))),
    }
}

/// A `resourceFieldRef`'s value: the named container's (or `default_container`'s)
/// request or limit in units of the divisor, rounded up as upstream does.
pub(super) fn resource_value(
    pod: &Pod,
    field: &ResourceFieldSelector,
    default_container: Option<&str>,
) -> i128 {
    let name = field
        .container_name
        .as_deref()
        .or(default_container)
        .unwrap_or_default();
    let resources = pod
        .spec
        .iter()
        .flat_map(all_containers)
        .find(|c| c.name == name)
        .and_then(|c| c.resources.clone())
        .unwrap_or_default();
    let (list, resource) = match field.resource.split_once('.') {
        Some(("limits", r)) => (resources.limits, r),
        Some(("requests", r)) => (resources.requests, r),
        _ => (None, field.resource.as_str()),
    };
    let value = list
        .and_then(|l| l.get(resource).cloned())
        .and_then(|q| Quantity::parse(&q.0).ok());
    let divisor = field
        .divisor
        .as_ref()
        .and_then(|d| Quantity::parse(&d.0).ok());
    match (value, resource) {
        (Some(v), "cpu") => {
            let per = divisor.map_or(1000, |d| d.milli_value().max(1));
            (v.milli_value() + per - 1) / per
        }
        (Some(v), _) => {
            let per = divisor.map_or(1, |d| d.value().max(1));
            (v.value() + per - 1) / per
        }
        (None, _) => 0,
    }
}

/// A downward-API field of the pod (`metadata.name`, `status.podIP`, …);
/// `None` for a path the agent does not know.
pub(super) fn field_value(pod: &Pod, path: &str, host_ip: &str) -> Option<String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    Some(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => host_ip.to_owned(),
        "status.podIP" | "status.podIPs" => pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default(),
        other => {
            let (map, key) = if let Some(rest) = other.strip_prefix("metadata.labels") {
                (meta.labels.as_ref(), rest)
            } else if let Some(rest) = other.strip_prefix("metadata.annotations") {
                (meta.annotations.as_ref(), rest)
            } else {
                return None;
            };
            let key = key.strip_prefix("['")?.strip_suffix("']")?;
            map.and_then(|m| m.get(key).cloned()).unwrap_or_default()
        }
    })
}

/// Kubelet's `$(VAR)` expansion: references to variables defined earlier are
/// replaced, `$$` escapes a `$`, and unknown references stay as written.
pub fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match env.iter().rev().find(|(n, _)| n == name) {
                        Some((_, value)) => out.push_str(value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = inner;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_kubelet() {
        let env = vec![("A".to_owned(), "1".to_owned())];
        assert_eq!(expand("$(A)$(B)$$(A)$x$(", &env), "1$(B)$(A)$x$(");
    }
}
