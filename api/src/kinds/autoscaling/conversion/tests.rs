use super::*;

fn v2() -> Value {
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default", "annotations": {"team": "a"}},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 5,
            "metrics": [
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1024Mi"}}},
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}},
            ],
            "behavior": {"scaleDown": {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}}},
        "status": {"currentReplicas": 2, "desiredReplicas": 3,
            "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 42, "averageValue": "120m"}}}],
            "conditions": [{"type": "AbleToScale", "status": "True", "lastTransitionTime": "2026-01-01T11:00:00Z", "reason": "ReadyForNewScale", "message": "a <b> & c"}]}})
}

#[test]
fn v2_to_v1_keeps_the_rest_in_annotations() {
    let v1 = v2_to_v1(&v2());
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
    assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 42);
    assert_eq!(v1["status"]["currentReplicas"], 2);
    let annotations = &v1["metadata"]["annotations"];
    assert_eq!(annotations["team"], "a");
    assert_eq!(
        annotations[METRIC_SPECS],
        "[{\"type\":\"Resource\",\"resource\":{\"name\":\"memory\",\"targetAverageValue\":\"1Gi\"}},{\"type\":\"Pods\",\"pods\":{\"metricName\":\"qps\",\"targetAverageValue\":\"1k\"}}]"
    );
    assert_eq!(
        annotations[METRIC_STATUSES],
        "[{\"type\":\"Resource\",\"resource\":{\"name\":\"cpu\",\"currentAverageUtilization\":42,\"currentAverageValue\":\"120m\"}}]"
    );
    assert_eq!(
        annotations[BEHAVIOR],
        "{\"ScaleUp\":null,\"ScaleDown\":{\"StabilizationWindowSeconds\":null,\"SelectPolicy\":\"Max\",\"Policies\":[{\"Type\":\"Percent\",\"Value\":100,\"PeriodSeconds\":15}],\"Tolerance\":null}}"
    );
    assert_eq!(
        annotations[CONDITIONS],
        "[{\"type\":\"AbleToScale\",\"status\":\"True\",\"lastTransitionTime\":\"2026-01-01T11:00:00Z\",\"reason\":\"ReadyForNewScale\",\"message\":\"a \\u003cb\\u003e \\u0026 c\"}]"
    );
}

#[test]
fn round_trip_through_v1() {
    let original = v2();
    let back = v1_to_v2(&v2_to_v1(&original));
    assert_eq!(back["metadata"], original["metadata"]);
    assert_eq!(back["spec"]["behavior"], original["spec"]["behavior"]);
    assert_eq!(
        back["status"]["conditions"],
        original["status"]["conditions"]
    );
    let metrics = back["spec"]["metrics"].as_array().unwrap();
    // The CPU utilization metric moves to the end, as upstream's conversion puts it.
    assert_eq!(metrics[0]["resource"]["target"]["averageValue"], "1Gi");
    assert_eq!(metrics[1]["pods"]["target"]["averageValue"], "1k");
    assert_eq!(metrics[2], original["spec"]["metrics"][1]);
    assert_eq!(
        back["status"]["currentMetrics"],
        original["status"]["currentMetrics"]
    );
}

#[test]
fn plain_v1_objects() {
    let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3}});
    let v2 = v1_to_v2(&v1);
    assert_eq!(v2["spec"]["metrics"], json!([default_cpu_metric()]));
    assert_eq!(v2["status"], json!({"desiredReplicas": 0}));
    assert!(v2["metadata"].get("annotations").is_none());
    let with_cpu = json!({"metadata": {"name": "web", "annotations": {METRIC_SPECS: "not json"}},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3, "targetCPUUtilizationPercentage": 50},
        "status": {"currentCPUUtilizationPercentage": 20}});
    let v2 = v1_to_v2(&with_cpu);
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        50
    );
    assert_eq!(
        v2["status"]["currentMetrics"][0]["resource"]["current"],
        json!({"averageUtilization": 20})
    );
    assert!(v2["metadata"].get("annotations").is_none());
    let behavior =
        behavior_from_annotation("{\"scaleUp\":{\"selectPolicy\":\"Min\",\"Policies\":null}}")
            .unwrap();
    assert_eq!(behavior, json!({"scaleUp": {"selectPolicy": "Min"}}));
    assert!(behavior_from_annotation("{}").is_none());
}
