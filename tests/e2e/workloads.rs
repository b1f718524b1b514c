//! Workload controllers end to end with the real kubectl: Deployments roll out
//! through ReplicaSets within maxSurge/maxUnavailable, scale (to 0 too), keep
//! revisions for `rollout history|undo`, and the garbage collector removes or
//! orphans dependents. No node agent runs here: a test "kubelet" binds pods
//! and marks them Running and Ready, and finishes pods being deleted.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use support::{eventually, Server, KUBECTL_1_31};

/// Plays kubelet for every pod: bind, then Running+Ready; deleted pods go at once.
async fn fake_kubelet(client: kube::Client) {
    let all: Api<Pod> = Api::all(client.clone());
    loop {
        if let Ok(pods) = all.list(&ListParams::default()).await {
            for pod in pods.items {
                let ns = pod.metadata.namespace.clone().unwrap_or_default();
                let name = pod.metadata.name.clone().unwrap_or_default();
                let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
                let bound = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_ref())
                    .is_some();
                let ready = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                if pod.metadata.deletion_timestamp.is_some() {
                    let _ = api
                        .delete(
                            &name,
                            &DeleteParams {
                                grace_period_seconds: Some(0),
                                ..Default::default()
                            },
                        )
                        .await;
                } else if !bound {
                    let binding = serde_json::json!({
                        "apiVersion": "v1", "kind": "Binding",
                        "metadata": {"name": name},
                        "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"},
                    });
                    let _: Result<serde_json::Value, _> = api
                        .create_subresource("binding", &name, &PostParams::default(), &binding)
                        .await;
                } else if !ready {
                    let now = k8s_openapi::jiff::Timestamp::now()
                        .strftime("%Y-%m-%dT%H:%M:%SZ")
                        .to_string();
                    let status = serde_json::json!({"status": {
                        "phase": "Running",
                        "conditions": [
                            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                            {"type": "Ready", "status": "True", "lastTransitionTime": now},
                            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                        ],
                    }});
                    let _ = api
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                        .await;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// The extremes a watch saw during a rollout.
#[derive(Debug, Default, Clone)]
struct Observed {
    /// Most pods (not terminating) at once.
    max_pods: usize,
    /// Fewest Ready pods (not terminating) at once.
    min_ready: usize,
    /// Largest sum of ReplicaSet spec.replicas at once.
    max_rs_replicas: i32,
    /// Images seen on pods.
    images: std::collections::BTreeSet<String>,
    events: usize,
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Watches pods and ReplicaSets labelled app=`app`, folding each moment into `observed`.
async fn observe(client: kube::Client, app: &'static str, observed: Arc<Mutex<Observed>>) {
    let config = watcher::Config::default().labels(&format!("app={app}"));
    let pods = watcher(
        Api::<Pod>::default_namespaced(client.clone()),
        config.clone(),
    )
    .map(|e| e.map(|e| (Some(e), None)).ok())
    .boxed();
    let sets = watcher(Api::<ReplicaSet>::default_namespaced(client), config)
        .map(|e| e.map(|e| (None, Some(e))).ok())
        .boxed();
    let mut events = futures::stream::select(pods, sets);
    let mut pod_map: BTreeMap<String, Pod> = BTreeMap::new();
    let mut rs_map: BTreeMap<String, i32> = BTreeMap::new();
    let (mut pods_ready, mut sets_ready) = (false, false);
    while let Some(event) = events.next().await {
        let Some((pod_event, rs_event)) = event else {
            continue;
        };
        match pod_event {
            Some(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => {
                pod_map.insert(p.metadata.name.clone().unwrap_or_default(), p);
            }
            Some(watcher::Event::Delete(p)) => {
                pod_map.remove(p.metadata.name.as_deref().unwrap_or_default());
            }
            Some(watcher::Event::InitDone) => pods_ready = true,
            _ => {}
        }
        match rs_event {
            Some(watcher::Event::Apply(r) | watcher::Event::InitApply(r)) => {
                let replicas = r.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
                rs_map.insert(r.metadata.name.clone().unwrap_or_default(), replicas);
            }
            Some(watcher::Event::Delete(r)) => {
                rs_map.remove(r.metadata.name.as_deref().unwrap_or_default());
            }
            Some(watcher::Event::InitDone) => sets_ready = true,
            _ => {}
        }
        if !(pods_ready && sets_ready) {
            continue;
        }
        let live: Vec<&Pod> = pod_map
            .values()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let mut o = observed.lock().unwrap();
        if o.events == 0 {
            o.min_ready = usize::MAX;
        }
        o.events += 1;
        o.max_pods = o.max_pods.max(live.len());
        o.min_ready = o.min_ready.min(live.iter().filter(|p| is_ready(p)).count());
        o.max_rs_replicas = o.max_rs_replicas.max(rs_map.values().sum());
        for p in &live {
            for c in &p.spec.as_ref().unwrap().containers {
                o.images.insert(c.image.clone().unwrap_or_default());
            }
        }
    }
}

fn count_lines(text: &str) -> usize {
    text.lines().filter(|l| !l.trim().is_empty()).count()
}

#[test]
fn deployments_roll_scale_undo_and_garbage_collect() {
    let server = Server::start();
    let k = server.kubectl(KUBECTL_1_31);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let yaml = std::fs::read_to_string(server.kubeconfig()).unwrap();
    let client = runtime
        .block_on(berth_orchestrator::controllers::client::from_kubeconfig_yaml(&yaml))
        .unwrap();
    let kubelet = runtime.spawn(fake_kubelet(client.clone()));
    let pods_of = |app: &str| {
        k.jsonpath(
            &["get", "pods", "-l", &format!("app={app}")],
            "{range .items[?(@.status.phase==\"Running\")]}{.metadata.name}{\"\\n\"}{end}",
        )
    };
    let available = || k.jsonpath(&["get", "deployment", "web"], "{.status.availableReplicas}");

    // Create: three pods, owned by a ReplicaSet named after the template hash.
    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=registry.local/web:1",
        "--replicas=3",
    ]);
    eventually(Duration::from_secs(20), || {
        (count_lines(&pods_of("web")) == 3).then_some(())
    });
    let rs_name = k.jsonpath(&["get", "rs", "-l", "app=web"], "{.items[0].metadata.name}");
    let hash = k.jsonpath(
        &["get", "rs", &rs_name],
        "{.metadata.labels.pod-template-hash}",
    );
    assert_eq!(rs_name, format!("web-{hash}"));
    let owner = k.jsonpath(
        &["get", "pods", "-l", "app=web"],
        "{.items[0].metadata.ownerReferences[0].name}",
    );
    assert_eq!(owner, rs_name);
    assert_eq!(
        k.jsonpath(
            &["get", "rs", &rs_name],
            "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}"
        ),
        "1"
    );

    // Scale to 10, to 0, back to 3.
    k.ok(&["scale", "deployment/web", "--replicas=10"]);
    eventually(Duration::from_secs(20), || {
        (available() == "10").then_some(())
    });
    assert_eq!(count_lines(&pods_of("web")), 10);
    k.ok(&["scale", "deployment/web", "--replicas=0"]);
    eventually(Duration::from_secs(20), || {
        (k.ok(&["get", "pods", "-l", "app=web", "-o", "name"])
            .trim()
            .is_empty())
        .then_some(())
    });
    k.ok(&["scale", "deployment/web", "--replicas=3"]);
    eventually(Duration::from_secs(20), || {
        (available() == "3").then_some(())
    });
    let describe = k.ok(&["describe", "deployment", "web"]);
    assert!(
        describe.contains(&format!("Scaled up replica set {rs_name} from 0 to 3")),
        "{describe}"
    );
    assert!(
        describe.contains(&format!("Scaled down replica set {rs_name} from 10 to 0")),
        "{describe}"
    );
    let rs_describe = k.ok(&["describe", "rs", &rs_name]);
    assert!(rs_describe.contains("SuccessfulCreate"), "{rs_describe}");
    assert!(rs_describe.contains("SuccessfulDelete"), "{rs_describe}");

    // A new image rolls out within maxSurge 1 / maxUnavailable 0 (25% of 3).
    let observed = Arc::new(Mutex::new(Observed::default()));
    let watch = runtime.spawn(observe(client.clone(), "web", observed.clone()));
    eventually(Duration::from_secs(10), || {
        (observed.lock().unwrap().events > 0).then_some(())
    });
    k.ok(&["set", "image", "deployment/web", "web=registry.local/web:2"]);
    let status = k.ok(&["rollout", "status", "deployment/web", "--timeout=40s"]);
    assert!(status.contains("successfully rolled out"), "{status}");
    std::thread::sleep(Duration::from_millis(500));
    watch.abort();
    let seen = observed.lock().unwrap().clone();
    assert!(seen.images.contains("registry.local/web:2"), "{seen:?}");
    assert!(
        seen.max_pods <= 4,
        "more than replicas+maxSurge pods: {seen:?}"
    );
    assert!(
        seen.min_ready >= 3,
        "fewer than replicas-maxUnavailable ready: {seen:?}"
    );
    assert!(
        seen.max_rs_replicas <= 4,
        "ReplicaSets asked for more than 4: {seen:?}"
    );
    let images = k.jsonpath(
        &["get", "pods", "-l", "app=web"],
        "{.items[*].spec.containers[0].image}",
    );
    assert_eq!(
        images.split_whitespace().collect::<Vec<_>>(),
        ["registry.local/web:2"; 3]
    );
    let conditions = k.jsonpath(
        &["get", "deployment", "web"],
        "{.status.conditions[?(@.type==\"Progressing\")].reason} {.status.conditions[?(@.type==\"Available\")].status}",
    );
    assert_eq!(conditions, "NewReplicaSetAvailable True");

    // History lists both revisions; undo brings the first image back.
    let history = k.ok(&["rollout", "history", "deployment/web"]);
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");
    k.ok(&["rollout", "undo", "deployment/web"]);
    let status = k.ok(&["rollout", "status", "deployment/web", "--timeout=40s"]);
    assert!(status.contains("successfully rolled out"), "{status}");
    assert_eq!(
        k.jsonpath(
            &["get", "deployment", "web"],
            "{.spec.template.spec.containers[0].image}"
        ),
        "registry.local/web:1"
    );
    eventually(Duration::from_secs(20), || {
        let images = k.jsonpath(
            &["get", "pods", "-l", "app=web"],
            "{.items[*].spec.containers[0].image}",
        );
        (images.split_whitespace().collect::<Vec<_>>() == ["registry.local/web:1"; 3]).then_some(())
    });
    assert_eq!(
        k.jsonpath(
            &["get", "rs", &rs_name],
            "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}"
        ),
        "3"
    );

    // Deleting the Deployment removes its ReplicaSets and pods (background).
    k.ok(&["delete", "deployment", "web"]);
    eventually(Duration::from_secs(20), || {
        let left = k.ok(&["get", "rs,pods", "-l", "app=web", "-o", "name"]);
        left.trim().is_empty().then_some(())
    });

    // Foreground: the Deployment goes only after its dependents.
    k.ok(&[
        "create",
        "deployment",
        "fg",
        "--image=registry.local/web:1",
        "--replicas=2",
    ]);
    eventually(Duration::from_secs(20), || {
        (count_lines(&pods_of("fg")) == 2).then_some(())
    });
    k.ok(&[
        "delete",
        "deployment",
        "fg",
        "--cascade=foreground",
        "--timeout=20s",
    ]);
    assert!(k
        .ok(&["get", "rs,pods", "-l", "app=fg", "-o", "name"])
        .trim()
        .is_empty());

    // Orphan: the ReplicaSet goes, its pods stay without ownerReferences.
    let manifest = r#"
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: lonely
spec:
  replicas: 2
  selector:
    matchLabels: {app: lonely}
  template:
    metadata:
      labels: {app: lonely}
    spec:
      containers:
      - name: c
        image: registry.local/web:1
"#;
    k.ok_stdin(&["apply", "-f", "-"], manifest);
    eventually(Duration::from_secs(20), || {
        (count_lines(&pods_of("lonely")) == 2).then_some(())
    });
    k.ok(&["delete", "rs", "lonely", "--cascade=orphan"]);
    eventually(Duration::from_secs(20), || {
        k.ok(&["get", "rs", "-o", "name"])
            .trim()
            .is_empty()
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    let owners = k.jsonpath(
        &["get", "pods", "-l", "app=lonely"],
        "{range .items[*]}{.metadata.name}={.metadata.ownerReferences}{\"\\n\"}{end}",
    );
    assert_eq!(count_lines(&owners), 2, "{owners}");
    assert!(
        owners.lines().all(|l| l.ends_with('=')),
        "pods still owned: {owners}"
    );

    kubelet.abort();
}
