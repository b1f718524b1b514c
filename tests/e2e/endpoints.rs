//! Endpoints and EndpointSlices end to end with the real kubectl: `berth
//! server` (controllers in-process) and one simulated node run the basics
//! Deployment; its Service gets Endpoints and a slice listing the pods' IPs on
//! the target port, following scale-ups, readiness and the Service's deletion,
//! and nothing is rewritten while nothing changes.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{manifest, BerthProcess, Kubectl, Server, KUBECTL_1_31};

/// Polls `check` until it returns Some; on timeout, fails with the logs.
fn wait_for<T>(
    what: &str,
    server: &Server,
    agent: &mut BerthProcess,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = check() {
            return value;
        }
        agent.assert_running();
        if Instant::now() > deadline {
            panic!(
                "{what}: not within 20s\nagent log:\n{}\nserver log:\n{}",
                agent.log(),
                server.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn json(kubectl: &Kubectl, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&kubectl.ok(&all)).unwrap()
}

fn items(value: &Value) -> Vec<Value> {
    value["items"].as_array().cloned().unwrap_or_default()
}

/// The IPs of the Running pods labelled app=web.
fn pod_ips(kubectl: &Kubectl) -> BTreeSet<String> {
    items(&json(
        kubectl,
        &["-n", "basics", "get", "pods", "-l", "app=web"],
    ))
    .iter()
    .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
    .filter_map(|p| p["status"]["podIP"].as_str().map(str::to_owned))
    .collect()
}

/// (ready IPs, not-ready IPs, ports) of an Endpoints object, if it exists.
type EndpointsView = (BTreeSet<String>, BTreeSet<String>, BTreeSet<i64>);

fn endpoints(kubectl: &Kubectl, name: &str) -> Option<EndpointsView> {
    let out = kubectl.run(&["-n", "basics", "get", "endpoints", name, "-o", "json"]);
    if !out.status.success() {
        return None;
    }
    let ep: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut view = EndpointsView::default();
    for subset in ep["subsets"].as_array().into_iter().flatten() {
        for (field, into) in [
            ("addresses", &mut view.0),
            ("notReadyAddresses", &mut view.1),
        ] {
            for address in subset[field].as_array().into_iter().flatten() {
                into.insert(address["ip"].as_str().unwrap().to_owned());
            }
        }
        for port in subset["ports"].as_array().into_iter().flatten() {
            view.2.insert(port["port"].as_i64().unwrap());
        }
    }
    Some(view)
}

/// The managed slices of Service `name`, and (ready IPs, not-ready IPs) over them.
fn slices(kubectl: &Kubectl, name: &str) -> (Vec<Value>, BTreeSet<String>, BTreeSet<String>) {
    let selector = format!("kubernetes.io/service-name={name}");
    let all = items(&json(
        kubectl,
        &["-n", "basics", "get", "endpointslices", "-l", &selector],
    ));
    let (mut ready, mut not_ready) = (BTreeSet::new(), BTreeSet::new());
    for endpoint in all
        .iter()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
    {
        let ip = endpoint["addresses"][0].as_str().unwrap().to_owned();
        if endpoint["conditions"]["ready"] == Value::Bool(true) {
            ready.insert(ip);
        } else {
            not_ready.insert(ip);
        }
    }
    (all, ready, not_ready)
}

/// A pod on a node no agent runs, so its status is whatever the test sets.
const PROBE: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: probe
  namespace: basics
  labels:
    role: probe
spec:
  nodeName: no-agent-here
  containers:
  - name: app
    image: nginx:1.27
    ports:
    - name: http
      containerPort: 8081
---
apiVersion: v1
kind: Service
metadata:
  name: probe
  namespace: basics
spec:
  selector:
    role: probe
  ports:
  - name: web
    port: 80
    targetPort: http
"#;

fn probe_status(ready: bool) -> String {
    let status = if ready { "True" } else { "False" };
    format!(
        r#"{{"status":{{"phase":"Running","podIP":"10.99.0.7","podIPs":[{{"ip":"10.99.0.7"}}],"conditions":[{{"type":"Ready","status":"{status}"}}]}}}}"#
    )
}

#[test]
fn services_get_endpoints_and_slices_that_follow_their_pods() {
    let server = Server::start();
    let kubectl = server.kubectl(KUBECTL_1_31);
    let mut agent = server.start_agent("node-1", &[]);
    kubectl.ok(&["apply", "-f", &manifest("basics.yaml")]);

    // Two ready pods: their IPs on the target port, in Endpoints and in one slice.
    let ips = wait_for("two pods with IPs listed", &server, &mut agent, || {
        let ips = pod_ips(&kubectl);
        let ep = endpoints(&kubectl, "web")?;
        (ips.len() == 2 && ep.0 == ips && ep.2 == BTreeSet::from([8080])).then_some(ips)
    });
    let table = kubectl.ok(&["-n", "basics", "get", "ep", "web"]);
    for ip in &ips {
        assert!(table.contains(&format!("{ip}:8080")), "{table}");
    }
    let slice = wait_for(
        "a slice with 2 ready endpoints",
        &server,
        &mut agent,
        || {
            let (all, ready, _) = slices(&kubectl, "web");
            (all.len() == 1 && ready == ips).then(|| all[0].clone())
        },
    );
    assert!(slice["metadata"]["name"]
        .as_str()
        .unwrap()
        .starts_with("web-"));
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Service");
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(slice["ports"][0]["port"], 8080);
    assert_eq!(slice["endpoints"][0]["nodeName"], "node-1");
    assert_eq!(slice["endpoints"][0]["targetRef"]["kind"], "Pod");

    // Scaling to 3 adds the third pod to both, updating the slice in place.
    kubectl.ok(&["-n", "basics", "scale", "deployment", "web", "--replicas=3"]);
    let ips = wait_for("three pods listed", &server, &mut agent, || {
        let ips = pod_ips(&kubectl);
        let ep = endpoints(&kubectl, "web")?;
        let (all, ready, _) = slices(&kubectl, "web");
        (ips.len() == 3 && ep.0 == ips && ready == ips && all.len() == 1).then_some(ips)
    });
    let (all, _, _) = slices(&kubectl, "web");
    assert_eq!(all[0]["metadata"]["name"], slice["metadata"]["name"]);
    assert_eq!(ips.len(), 3);

    // Nothing changes, nothing is written.
    let versions = || {
        let ep = json(&kubectl, &["-n", "basics", "get", "endpoints", "web"]);
        let (all, _, _) = slices(&kubectl, "web");
        (
            ep["metadata"]["resourceVersion"].clone(),
            all[0]["metadata"]["resourceVersion"].clone(),
        )
    };
    let before = versions();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        versions(),
        before,
        "endpoints or slice rewritten without a change"
    );

    // A pod whose Ready condition turns False moves to notReadyAddresses / ready=false,
    // its named targetPort resolved from the container.
    kubectl.ok_stdin(&["apply", "-f", "-"], PROBE);
    let patch = |ready: bool| {
        kubectl.ok(&[
            "-n",
            "basics",
            "patch",
            "pod",
            "probe",
            "--subresource=status",
            "--type=merge",
            "-p",
            &probe_status(ready),
        ]);
    };
    patch(true);
    let probe_ip = BTreeSet::from(["10.99.0.7".to_owned()]);
    wait_for("the probe pod ready", &server, &mut agent, || {
        let ep = endpoints(&kubectl, "probe")?;
        let (_, ready, _) = slices(&kubectl, "probe");
        (ep.0 == probe_ip && ep.2 == BTreeSet::from([8081]) && ready == probe_ip).then_some(())
    });
    patch(false);
    wait_for("the probe pod not ready", &server, &mut agent, || {
        let ep = endpoints(&kubectl, "probe")?;
        let (_, ready, not_ready) = slices(&kubectl, "probe");
        (ep.0.is_empty() && ep.1 == probe_ip && ready.is_empty() && not_ready == probe_ip)
            .then_some(())
    });

    // Deleting the Service deletes its Endpoints and slices.
    kubectl.ok(&["-n", "basics", "delete", "service", "web"]);
    wait_for("endpoints and slices gone", &server, &mut agent, || {
        let (all, _, _) = slices(&kubectl, "web");
        (endpoints(&kubectl, "web").is_none() && all.is_empty()).then_some(())
    });
}
