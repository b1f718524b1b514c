//! NodePools (the type is `crate::nodepool::NodePool`): Karpenter's defaults
//! (provider, expiry, disruption), validation with field paths, generation
//! tracking, `/scale` through `status.selector`, and the `kubectl get
//! nodepools` columns.

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::batch::cron::parse_duration;
use crate::kinds::{obj_mut, set_default, KindRules, ScaleMapping};
use crate::table::print::{int_at, optional_int, str_or_none};
use crate::table::{col, Column, AGE, NAME};

/// The rules of `berth.dev/v1` NodePool.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodePool;

/// Providers a pool may name.
pub const PROVIDERS: &[&str] = &["sim", "ssh", "aws"];
/// Karpenter's consolidation policies.
pub const CONSOLIDATION_POLICIES: &[&str] = &["WhenEmpty", "WhenEmptyOrUnderutilized"];
/// Karpenter's disruption reasons a budget may name.
pub const DISRUPTION_REASONS: &[&str] = &["Empty", "Underutilized", "Drifted", "Expired"];
/// Taint effects (core/v1).
const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

impl KindRules for NodePool {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let spec = obj_mut(obj, "spec");
        set_default(spec, "provider", json!(crate::nodepool::DEFAULT_PROVIDER));
        set_default(spec, "expireAfter", json!("720h"));
        let disruption = spec.entry("disruption").or_insert_with(|| json!({}));
        if let Some(disruption) = disruption.as_object_mut() {
            set_default(
                disruption,
                "consolidationPolicy",
                json!("WhenEmptyOrUnderutilized"),
            );
            set_default(disruption, "consolidateAfter", json!("0s"));
            set_default(disruption, "budgets", json!([{"nodes": "10%"}]));
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        validate_spec(obj.get("spec").unwrap_or(&Value::Null))
    }

    fn scale_mapping(&self) -> ScaleMapping {
        ScaleMapping {
            label_selector: Some("/status/selector".into()),
            ..ScaleMapping::default()
        }
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Provider", "string", 0, "Machine provider of the pool."),
            col("Replicas", "integer", 0, "Nodes the pool should have."),
            col("Ready", "integer", 0, "Nodes of the pool that are Ready."),
            col("Min", "string", 0, "Autoscaling lower bound."),
            col("Max", "string", 0, "Autoscaling upper bound."),
            AGE,
            col("Class", "string", 1, "Machine class of the pool."),
            col("Weight", "string", 1, "Preference among fitting pools."),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            crate::table::name_cell(obj),
            json!(str_or_none(obj, &["spec", "provider"])),
            json!(obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0)),
            json!(int_at(obj, &["status", "readyReplicas"])),
            json!(optional_int(obj, &["spec", "minReplicas"])),
            json!(optional_int(obj, &["spec", "maxReplicas"])),
            crate::table::age_cell(obj, now),
            json!(str_or_none(obj, &["spec", "machineClass"])),
            json!(optional_int(obj, &["spec", "weight"])),
        ]
    }
}

/// Every problem of a pool's spec, with its field path.
fn validate_spec(spec: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    for field in ["replicas", "minReplicas", "maxReplicas"] {
        if let Some(n) = spec.get(field).and_then(Value::as_i64) {
            if n < 0 {
                causes.push(FieldCause::invalid(
                    format!("spec.{field}"),
                    &json!(n),
                    "must be greater than or equal to 0",
                ));
            }
        }
    }
    let min = spec.get("minReplicas").and_then(Value::as_i64);
    let max = spec.get("maxReplicas").and_then(Value::as_i64);
    if let (Some(min), Some(max)) = (min, max) {
        if max < min {
            causes.push(FieldCause::invalid(
                "spec.maxReplicas",
                &json!(max),
                "must be greater than or equal to minReplicas",
            ));
        }
    }
    if let Some(replicas) = spec.get("replicas").and_then(Value::as_i64) {
        if max.is_some_and(|max| replicas > max) {
            causes.push(FieldCause::invalid(
                "spec.replicas",
                &json!(replicas),
                "must be less than or equal to maxReplicas",
            ));
        }
        if min.is_some_and(|min| replicas < min) {
            causes.push(FieldCause::invalid(
                "spec.replicas",
                &json!(replicas),
                "must be greater than or equal to minReplicas",
            ));
        }
    }
    if let Some(provider) = spec.get("provider") {
        if !provider.as_str().is_some_and(|p| PROVIDERS.contains(&p)) {
            causes.push(FieldCause::not_supported(
                "spec.provider",
                provider,
                PROVIDERS,
            ));
        }
    }
    if let Some(weight) = spec.get("weight").and_then(Value::as_i64) {
        if !(1..=100).contains(&weight) {
            causes.push(FieldCause::invalid(
                "spec.weight",
                &json!(weight),
                "must be between 1 and 100, inclusive",
            ));
        }
    }
    causes.extend(validate_labels(spec.get("labels")));
    for field in ["taints", "startupTaints"] {
        causes.extend(validate_taints(field, spec.get(field)));
    }
    causes.extend(validate_duration(
        "spec.expireAfter",
        spec.get("expireAfter"),
    ));
    if let Some(disruption) = spec.get("disruption") {
        causes.extend(validate_disruption(disruption));
    }
    let ssh = spec.pointer("/template/ssh");
    if spec.get("provider").and_then(Value::as_str) == Some("ssh") || ssh.is_some() {
        causes.extend(validate_ssh(ssh.unwrap_or(&Value::Null)));
    }
    let aws = spec.pointer("/template/aws");
    if spec.get("provider").and_then(Value::as_str) == Some("aws") && aws.is_none() {
        causes.push(FieldCause::required("spec.template.aws", ""));
    }
    if let Some(aws) = aws {
        causes.extend(validate_aws(aws));
    }
    causes
}

/// `template.ssh`: at least one host, each a parseable and distinct entry.
fn validate_ssh(ssh: &Value) -> Vec<FieldCause> {
    let field = "spec.template.ssh.hosts";
    let hosts = ssh.get("hosts").and_then(Value::as_array);
    let Some(hosts) = hosts.filter(|h| !h.is_empty()) else {
        return vec![FieldCause::required(field, "")];
    };
    let mut causes = Vec::new();
    let mut seen = Vec::new();
    for (index, host) in hosts.iter().enumerate() {
        let entry = host.as_str().unwrap_or_default();
        match crate::nodepool::parse_ssh_host(entry) {
            Err(reason) => causes.push(FieldCause::invalid(
                format!("{field}[{index}]"),
                host,
                &reason,
            )),
            Ok(parsed) if seen.contains(&parsed) => {
                causes.push(FieldCause::duplicate(format!("{field}[{index}]"), host))
            }
            Ok(parsed) => seen.push(parsed),
        }
    }
    causes
}

/// The EC2 launch settings of `template.aws`.
fn validate_aws(aws: &Value) -> Vec<FieldCause> {
    use crate::nodepool::{CAPACITY_TYPES, VOLUME_TYPES};
    let path = "spec.template.aws";
    let mut causes = Vec::new();
    let types = aws.get("instanceTypes").and_then(Value::as_array);
    if types.is_none_or(Vec::is_empty) {
        causes.push(FieldCause::required(format!("{path}.instanceTypes"), ""));
    }
    if aws
        .get("ami")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        causes.push(FieldCause::required(format!("{path}.ami"), ""));
    }
    if let Some(capacity) = aws.get("capacityType") {
        if !capacity
            .as_str()
            .is_some_and(|c| CAPACITY_TYPES.contains(&c))
        {
            causes.push(FieldCause::not_supported(
                format!("{path}.capacityType"),
                capacity,
                CAPACITY_TYPES,
            ));
        }
    }
    if let Some(volume) = aws.get("rootVolume") {
        let size = volume.get("sizeGiB");
        if size.and_then(Value::as_i64).is_none_or(|s| s <= 0) {
            causes.push(FieldCause::invalid(
                format!("{path}.rootVolume.sizeGiB"),
                size.unwrap_or(&Value::Null),
                "must be greater than 0",
            ));
        }
        if let Some(kind) = volume.get("type") {
            if !kind.as_str().is_some_and(|k| VOLUME_TYPES.contains(&k)) {
                causes.push(FieldCause::not_supported(
                    format!("{path}.rootVolume.type"),
                    kind,
                    VOLUME_TYPES,
                ));
            }
        }
    }
    causes
}

fn validate_labels(labels: Option<&Value>) -> Vec<FieldCause> {
    let Some(labels) = labels.and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut causes = Vec::new();
    for (key, value) in labels {
        for problem in crate::validation::is_qualified_name(key) {
            causes.push(FieldCause::invalid("spec.labels", &json!(key), problem));
        }
        for problem in crate::validation::is_valid_label_value(value.as_str().unwrap_or("")) {
            causes.push(FieldCause::invalid(
                format!("spec.labels[{key}]"),
                value,
                problem,
            ));
        }
    }
    causes
}

fn validate_taints(field: &str, taints: Option<&Value>) -> Vec<FieldCause> {
    let Some(taints) = taints.and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut causes = Vec::new();
    for (i, taint) in taints.iter().enumerate() {
        let path = format!("spec.{field}[{i}]");
        match taint.get("key").and_then(Value::as_str) {
            None | Some("") => causes.push(FieldCause::required(format!("{path}.key"), "")),
            Some(key) => {
                for problem in crate::validation::is_qualified_name(key) {
                    causes.push(FieldCause::invalid(
                        format!("{path}.key"),
                        &json!(key),
                        problem,
                    ));
                }
            }
        }
        match taint.get("effect") {
            None => causes.push(FieldCause::required(format!("{path}.effect"), "")),
            Some(effect) if !effect.as_str().is_some_and(|e| TAINT_EFFECTS.contains(&e)) => causes
                .push(FieldCause::not_supported(
                    format!("{path}.effect"),
                    effect,
                    TAINT_EFFECTS,
                )),
            Some(_) => {}
        }
    }
    causes
}

/// A Go duration (`30s`, `1h30m`) or `Never`.
fn validate_duration(field: &str, value: Option<&Value>) -> Option<FieldCause> {
    let value = value?;
    let ok = match value.as_str() {
        Some("Never") => true,
        Some(text) => parse_duration(text).is_ok_and(|nanos| nanos >= 0.0),
        None => false,
    };
    (!ok).then(|| {
        FieldCause::invalid(
            field,
            value,
            "must be a duration such as 30s or 720h, or Never",
        )
    })
}

fn validate_disruption(disruption: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    if let Some(policy) = disruption.get("consolidationPolicy") {
        if !policy
            .as_str()
            .is_some_and(|p| CONSOLIDATION_POLICIES.contains(&p))
        {
            causes.push(FieldCause::not_supported(
                "spec.disruption.consolidationPolicy",
                policy,
                CONSOLIDATION_POLICIES,
            ));
        }
    }
    causes.extend(validate_duration(
        "spec.disruption.consolidateAfter",
        disruption.get("consolidateAfter"),
    ));
    let budgets = disruption.get("budgets").and_then(Value::as_array);
    for (i, budget) in budgets.into_iter().flatten().enumerate() {
        let path = format!("spec.disruption.budgets[{i}]");
        match budget.get("nodes") {
            None => causes.push(FieldCause::required(format!("{path}.nodes"), "")),
            Some(nodes)
                if crate::nodepool::budget_nodes(nodes.as_str().unwrap_or(""), 0).is_none() =>
            {
                causes.push(FieldCause::invalid(
                    format!("{path}.nodes"),
                    nodes,
                    "must be a non-negative count (2) or a percentage from 0% to 100% (10%)",
                ))
            }
            Some(_) => {}
        }
        let reasons = budget.get("reasons").and_then(Value::as_array);
        for (j, reason) in reasons.into_iter().flatten().enumerate() {
            if !reason
                .as_str()
                .is_some_and(|r| DISRUPTION_REASONS.contains(&r))
            {
                causes.push(FieldCause::not_supported(
                    format!("{path}.reasons[{j}]"),
                    reason,
                    DISRUPTION_REASONS,
                ));
            }
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(spec: Value) -> Vec<String> {
        validate_spec(&spec)
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn valid_pools_have_no_causes() {
        let cases = [
            json!({}),
            json!({"replicas": 3, "provider": "sim", "labels": {"gpu": "yes"}}),
            json!({"provider": "ssh", "template": {"ssh": {"hosts": ["10.0.0.1", "b:2222"], "user": "ops"}}}),
            json!({"provider": "aws", "template": {"aws": {"instanceTypes": ["g5.xlarge", "g5.2xlarge"],
                   "ami": "ami-12345678", "subnetIds": ["subnet-1"], "capacityType": "spot",
                   "rootVolume": {"sizeGiB": 100, "type": "gp3"}}}}),
            json!({"minReplicas": 0, "maxReplicas": 4, "replicas": 2, "weight": 10,
                   "expireAfter": "Never",
                   "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
                   "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "30s",
                                  "budgets": [{"nodes": "10%"}, {"nodes": "2", "reasons": ["Drifted"]}]}}),
        ];
        for spec in cases {
            assert_eq!(fields(spec.clone()), Vec::<String>::new(), "{spec}");
        }
    }

    #[test]
    fn invalid_pools_name_the_field() {
        let cases = [
            (json!({"replicas": -1}), "spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
            (json!({"minReplicas": 3, "maxReplicas": 1}), "spec.maxReplicas: Invalid value: 1: must be greater than or equal to minReplicas"),
            (json!({"maxReplicas": 1, "replicas": 2}), "spec.replicas: Invalid value: 2: must be less than or equal to maxReplicas"),
            (json!({"provider": "gce"}), "spec.provider: Unsupported value: \"gce\": supported values: \"sim\", \"ssh\", \"aws\""),
            (json!({"provider": "ssh"}), "spec.template.ssh.hosts: Required value"),
            (json!({"provider": "ssh", "template": {"ssh": {"hosts": ["a:0"]}}}), "spec.template.ssh.hosts[0]: Invalid value: \"a:0\": not a port from 1 to 65535; want ADDRESS, HOST:PORT or [IPV6]:PORT"),
            (json!({"provider": "ssh", "template": {"ssh": {"hosts": ["a", "a:22"]}}}), "spec.template.ssh.hosts[1]: Duplicate value: \"a:22\""),
            (json!({"provider": "aws"}), "spec.template.aws: Required value"),
            (json!({"template": {"aws": {"ami": "ami-1"}}}), "spec.template.aws.instanceTypes: Required value"),
            (json!({"template": {"aws": {"instanceTypes": ["m5.large"], "ami": "ami-1", "capacityType": "reserved"}}}), "spec.template.aws.capacityType: Unsupported value: \"reserved\": supported values: \"on-demand\", \"spot\""),
            (json!({"template": {"aws": {"instanceTypes": ["m5.large"], "ami": "ami-1", "rootVolume": {"sizeGiB": 0}}}}), "spec.template.aws.rootVolume.sizeGiB: Invalid value: 0: must be greater than 0"),
            (json!({"template": {"aws": {"instanceTypes": ["m5.large"], "ami": "ami-1", "rootVolume": {"sizeGiB": 20, "type": "ssd"}}}}), "spec.template.aws.rootVolume.type: Unsupported value: \"ssd\": supported values: \"gp2\", \"gp3\", \"io1\", \"io2\", \"st1\", \"sc1\", \"standard\""),
            (json!({"weight": 0}), "spec.weight: Invalid value: 0: must be between 1 and 100, inclusive"),
            (json!({"expireAfter": "soon"}), "spec.expireAfter: Invalid value: \"soon\": must be a duration such as 30s or 720h, or Never"),
            (json!({"expireAfter": "-5s"}), "spec.expireAfter: Invalid value: \"-5s\": must be a duration such as 30s or 720h, or Never"),
            (json!({"taints": [{"key": "a", "effect": "Sometimes"}]}), "spec.taints[0].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""),
            (json!({"startupTaints": [{"effect": "NoSchedule"}]}), "spec.startupTaints[0].key: Required value"),
            (json!({"disruption": {"consolidationPolicy": "Always"}}), "spec.disruption.consolidationPolicy: Unsupported value: \"Always\": supported values: \"WhenEmpty\", \"WhenEmptyOrUnderutilized\""),
            (json!({"disruption": {"budgets": [{"nodes": "150%"}]}}), "spec.disruption.budgets[0].nodes: Invalid value: \"150%\": must be a non-negative count (2) or a percentage from 0% to 100% (10%)"),
            (json!({"disruption": {"budgets": [{"nodes": "1", "reasons": ["Bored"]}]}}), "spec.disruption.budgets[0].reasons[0]: Unsupported value: \"Bored\": supported values: \"Empty\", \"Underutilized\", \"Drifted\", \"Expired\""),
        ];
        for (spec, want) in cases {
            assert_eq!(fields(spec.clone()), vec![want.to_owned()], "{spec}");
        }
    }

    #[test]
    fn defaults_follow_karpenter() {
        let mut obj = json!({"spec": {"replicas": 1}});
        NodePool.default(&mut obj);
        assert_eq!(obj["spec"]["provider"], "sim");
        assert_eq!(obj["spec"]["expireAfter"], "720h");
        assert_eq!(
            obj["spec"]["disruption"],
            json!({"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "0s", "budgets": [{"nodes": "10%"}]})
        );
    }
}
