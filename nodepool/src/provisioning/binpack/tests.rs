use super::*;
use crate::provisioning::fit::machine_capacity;
use k8s_openapi::api::core::v1::Taint;
use serde_json::json;

fn shape(capacity: serde_json::Value, taint: Option<&str>) -> Shape {
    Shape {
        labels: BTreeMap::new(),
        taints: taint
            .map(|key| {
                vec![Taint {
                    key: key.into(),
                    effect: "NoSchedule".into(),
                    ..Taint::default()
                }]
            })
            .unwrap_or_default(),
        capacity: machine_capacity(&serde_json::from_value(capacity).unwrap()),
    }
}

fn pool(name: &str, weight: i32, room: usize, capacity: serde_json::Value) -> Candidate {
    Candidate {
        pool: name.into(),
        shape: shape(capacity, None),
        weight,
        room,
        limit: "maxReplicas=0".into(),
    }
}

fn gpu_pool(room: usize) -> Candidate {
    Candidate {
        shape: shape(json!({"cpu": "8", "nvidia.com/gpu": "2"}), Some("gpu")),
        limit: "nvidia.com/gpu=2".into(),
        ..pool("gpu", 0, room, json!({}))
    }
}

fn pods(prefix: &str, n: usize, spec: serde_json::Value) -> Vec<PendingPod> {
    (0..n)
        .map(|i| {
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": format!("{prefix}{i}"), "namespace": "ns", "labels": {"app": prefix}},
                "spec": spec,
            }))
            .unwrap();
            PendingPod::of(&pod)
        })
        .collect()
}

fn cpu(n: &str) -> serde_json::Value {
    json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": n}}}]})
}

fn gpu(n: &str) -> serde_json::Value {
    json!({"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": n}}}],
           "tolerations": [{"key": "gpu", "operator": "Exists"}]})
}

/// (pool, pods per machine) of each launch, sorted.
fn machines(d: &Decision) -> Vec<(String, usize)> {
    let mut out: Vec<_> = d
        .launches
        .iter()
        .map(|l| (l.pool.clone(), l.pods.len()))
        .collect();
    out.sort();
    out
}

fn named(list: &[(&str, usize)]) -> Vec<(String, usize)> {
    list.iter().map(|(p, n)| ((*p).to_owned(), *n)).collect()
}

#[test]
fn gpu_pods_grow_the_gpu_pool_by_the_fewest_machines() {
    let cpu_pool = pool("cpu", 0, 10, json!({"cpu": "8"}));
    let d = decide(&pods("g", 3, gpu("1")), &[], &[cpu_pool, gpu_pool(10)]);
    assert_eq!(machines(&d), named(&[("gpu", 1), ("gpu", 2)]));
    assert!(d.failed.is_empty() && d.nominated.is_empty());
}

#[test]
fn first_fit_decreasing_packs_large_pods_first() {
    // 2 of 3 cpu and 4 of 1 cpu into 4-cpu machines: 3+1, 3+1, 1+1.
    let mut all = pods("small", 4, cpu("1"));
    all.extend(pods("big", 2, cpu("3")));
    let d = decide(&all, &[], &[pool("cpu", 0, 10, json!({"cpu": "4"}))]);
    assert_eq!(machines(&d), named(&[("cpu", 2), ("cpu", 2), ("cpu", 2)]));
    let baseline = one_machine_per_pod(&all, &[pool("cpu", 0, 10, json!({"cpu": "4"}))]);
    assert_eq!(baseline.len(), 6);
}

#[test]
fn higher_weight_wins_then_the_smallest_machine() {
    let big = pool("big", 0, 10, json!({"cpu": "16"}));
    let small = pool("small", 0, 10, json!({"cpu": "2"}));
    let heavy = pool("heavy", 50, 10, json!({"cpu": "64"}));
    let two = pods("w", 2, cpu("1"));
    let d = decide(&two, &[], &[big.clone(), small.clone()]);
    assert_eq!(machines(&d), named(&[("small", 2)]));
    let d = decide(&two, &[], &[big, small, heavy]);
    assert_eq!(machines(&d), named(&[("heavy", 2)]));
    // Fewest machines beats the least waste: 6 pods need 3 small or 1 big.
    let d = decide(
        &pods("w", 6, cpu("1")),
        &[],
        &[
            pool("big", 0, 10, json!({"cpu": "16"})),
            pool("small", 0, 10, json!({"cpu": "2"})),
        ],
    );
    assert_eq!(machines(&d), named(&[("big", 6)]));
}

#[test]
fn a_pool_at_its_limit_overflows_to_the_next_then_fails_clearly() {
    let d = decide(&pods("g", 5, gpu("1")), &[], &[gpu_pool(1)]);
    assert_eq!(machines(&d), named(&[("gpu", 2)]));
    assert_eq!(d.failed.len(), 3);
    assert_eq!(
        d.failed[0].1,
        r#"nodepool "gpu" is at its limit nvidia.com/gpu=2"#
    );

    let spare = Candidate {
        pool: "spare".into(),
        weight: -1,
        ..gpu_pool(5)
    };
    let d = decide(&pods("g", 5, gpu("1")), &[], &[gpu_pool(1), spare]);
    assert_eq!(
        machines(&d),
        named(&[("gpu", 2), ("spare", 1), ("spare", 2)])
    );
    assert!(d.failed.is_empty());
}

#[test]
fn capacity_already_coming_is_used_first() {
    let gpu = gpu_pool(10);
    let coming = Existing {
        claim: "gpu-abc".into(),
        shape: gpu.shape.clone(),
        free: gpu.shape.capacity.clone(),
        pods: vec![],
    };
    let d = decide(
        &pods("g", 3, super::tests::gpu("1")),
        std::slice::from_ref(&coming),
        std::slice::from_ref(&gpu),
    );
    assert_eq!(
        d.nominated,
        [
            ("ns/g0".to_owned(), "gpu-abc".to_owned()),
            ("ns/g1".to_owned(), "gpu-abc".to_owned())
        ]
    );
    assert_eq!(machines(&d), named(&[("gpu", 1)]));
    // A claim whose shape the pod does not fit takes nothing.
    let plain = Existing {
        shape: shape(json!({"cpu": "8", "nvidia.com/gpu": "2"}), Some("other")),
        ..coming
    };
    let d = decide(&pods("g", 1, super::tests::gpu("1")), &[plain], &[gpu]);
    assert!(d.nominated.is_empty());
    assert_eq!(machines(&d), named(&[("gpu", 1)]));
}

#[test]
fn hostname_anti_affinity_takes_a_machine_each() {
    let spec = json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}],
        "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "a"}}}]}}});
    let d = decide(
        &pods("a", 3, spec),
        &[],
        &[pool("cpu", 0, 10, json!({"cpu": "16"}))],
    );
    assert_eq!(machines(&d), named(&[("cpu", 1), ("cpu", 1), ("cpu", 1)]));
}

#[test]
fn pods_no_pool_fits_are_reported_with_each_pools_objection() {
    let d = decide(
        &pods(
            "g",
            1,
            json!({"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}),
        ),
        &[],
        &[pool("cpu", 0, 10, json!({"cpu": "8"})), gpu_pool(10)],
    );
    assert!(d.launches.is_empty());
    assert_eq!(
        d.failed,
        [(
            "ns/g0".to_owned(),
            "no nodepool fits the pod (cpu: insufficient nvidia.com/gpu; gpu: taint gpu=:NoSchedule is not tolerated)".to_owned()
        )]
    );
    let d = decide(&pods("g", 1, cpu("1")), &[], &[]);
    assert_eq!(d.failed[0].1, "no autoscaled nodepool exists");
}
