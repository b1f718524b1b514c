use super::*;
use crate::kinds::autoscaling::conversion::{BEHAVIOR, METRIC_SPECS};

fn hpa_v2() -> Value {
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "creationTimestamp": "2026-01-01T11:00:00Z"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5}})
}

#[test]
fn v2_defaults() {
    let mut hpa = hpa_v2();
    hpa["metadata"]["annotations"] = json!({METRIC_SPECS: "[]"});
    hpa["spec"]["behavior"] = json!({"scaleDown": {"stabilizationWindowSeconds": 60}});
    HorizontalPodAutoscaler.default(&mut hpa);
    assert!(hpa["metadata"].get("annotations").is_none());
    assert_eq!(hpa["spec"]["minReplicas"], 1);
    assert_eq!(hpa["spec"]["metrics"], json!([default_cpu_metric()]));
    assert_eq!(hpa["spec"]["behavior"]["scaleUp"], default_scale_up());
    assert_eq!(
        hpa["spec"]["behavior"]["scaleDown"],
        json!({"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}], "stabilizationWindowSeconds": 60})
    );
    assert_eq!(hpa["status"], json!({"desiredReplicas": 0}));
    assert!(HorizontalPodAutoscaler.validate(&hpa).is_empty());
    let mut memory = hpa_v2();
    memory["spec"]["metrics"] = json!([{"type": "Resource", "resource": {"name": "memory",
        "target": {"type": "AverageValue", "averageValue": "1024Mi"}}}]);
    HorizontalPodAutoscaler.default(&mut memory);
    assert_eq!(
        memory["spec"]["metrics"][0]["resource"]["target"]["averageValue"],
        "1Gi"
    );
}

#[test]
fn v2_validation() {
    let mut hpa = hpa_v2();
    hpa["spec"]["minReplicas"] = json!(3);
    hpa["spec"]["maxReplicas"] = json!(2);
    hpa["spec"]["metrics"] = json!([
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 0}}},
        {"type": "Pods", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
    ]);
    // Only a second source is forbidden, as upstream counts the sources present.
    let messages: Vec<String> = HorizontalPodAutoscaler
        .validate(&hpa)
        .into_iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    assert_eq!(
        messages,
        [
            "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
            "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
            "spec.metrics[1].pods: Required value: must populate information for the given metric source",
        ]
    );
}

#[test]
fn v1_is_served_from_v2() {
    let mut v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 4}});
    HorizontalPodAutoscalerV1.default(&mut v1);
    assert_eq!(v1["spec"]["minReplicas"], 1);
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 80);
    assert_eq!(
        v1["status"],
        json!({"currentReplicas": 0, "desiredReplicas": 0})
    );
    assert!(v1["metadata"].get("annotations").is_none());
    let stored = HorizontalPodAutoscalerV1.convert_to_storage(&v1).unwrap();
    assert_eq!(stored["apiVersion"], "autoscaling/v2");
    let mut read = stored.clone();
    HorizontalPodAutoscalerV1.convert_from_storage(&mut read);
    assert_eq!(read, v1);
    let mut v2 = stored;
    HorizontalPodAutoscaler.convert_from_storage(&mut v2);
    assert_eq!(v2["apiVersion"], "autoscaling/v2");

    let mut bad = v1.clone();
    bad["spec"]["targetCPUUtilizationPercentage"] = json!(0);
    assert_eq!(
        HorizontalPodAutoscalerV1.validate(&bad)[0].field,
        "spec.metrics[0].resource.target.averageUtilization"
    );

    let mut with_behavior = v1.clone();
    with_behavior["metadata"]["annotations"] =
        json!({BEHAVIOR: "{\"ScaleUp\":{\"SelectPolicy\":\"Min\"}}"});
    HorizontalPodAutoscalerV1.default(&mut with_behavior);
    let behavior = with_behavior["metadata"]["annotations"][BEHAVIOR]
        .as_str()
        .unwrap();
    assert!(behavior.starts_with("{\"ScaleUp\":{\"StabilizationWindowSeconds\":0,\"SelectPolicy\":\"Min\",\"Policies\":[{\"Type\":\"Pods\""));
    assert!(behavior
        .contains("\"ScaleDown\":{\"StabilizationWindowSeconds\":null,\"SelectPolicy\":\"Max\""));
}

#[test]
fn v1_updates_keep_status_annotations() {
    let old = json!({"metadata": {"name": "web", "annotations": {CONDITIONS: "[1]"}}});
    let mut new = json!({"metadata": {"name": "web", "annotations": {CONDITIONS: "[2]", METRIC_STATUSES: "[]", "x": "y"}}});
    HorizontalPodAutoscalerV1.prepare_for_update(&old, &mut new);
    assert_eq!(
        new["metadata"]["annotations"],
        json!({CONDITIONS: "[1]", "x": "y"})
    );
}

#[test]
fn targets_column() {
    let mut hpa = hpa_v2();
    HorizontalPodAutoscaler.default(&mut hpa);
    let now = "2026-01-01T12:00:00Z".parse().unwrap();
    let row = HorizontalPodAutoscaler.cells(&hpa, now);
    assert_eq!(row.len(), HorizontalPodAutoscaler.columns().len());
    assert_eq!(row[1], "Deployment/web");
    assert_eq!(row[2], "cpu: <unknown>/80%");
    assert_eq!(row[3], "1");
    assert_eq!(row[4], 5);
    hpa["spec"]["metrics"] = json!([
        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1024Mi"}}},
        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}},
        {"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "10"}}},
    ]);
    hpa["status"]["currentMetrics"] = json!([
        {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "512Mi"}}},
    ]);
    assert_eq!(
        HorizontalPodAutoscaler.cells(&hpa, now)[2],
        "memory: 512Mi/1Gi, <unknown>/1k + 1 more..."
    );
}
