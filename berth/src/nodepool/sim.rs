//! The `sim` machine provider: each machine is a hollow node (as `berth
//! agent --runtime simulated`) run inside this process with its claim's
//! capacity, labels and taints. It lives in the binary because the
//! nodepool crate must not depend on the agent. Machines live as long as
//! the process: after a restart the controller finds their claims without
//! machines and replaces them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_agent::config::{parse_duration, NodeConfig};
use berth_agent::runtime::simulated::{SimulatedConfig, SimulatedRuntime};
use berth_agent::{AgentOptions, NodeHandle, Nodes};
use berth_api::nodeclaim::NodeClaim;
use berth_nodepool::capacity::claim_capacity;
use berth_nodepool::claim::node_labels;
use berth_nodepool::{Machine, MachineProvider, ProviderError};
use kube::ResourceExt;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The provider id scheme of simulated machines.
const SCHEME: &str = "sim://";
/// Simulated machines take slots from here up, so their addresses and
/// fallback pod ranges stay clear of `berth sim`'s low slots.
const FIRST_SLOT: u32 = 2000;

/// Simulated machines, each a hollow node with its own agent loops.
pub struct SimProvider {
    client: kube::Client,
    options: AgentOptions,
    cancel: CancellationToken,
    machines: Mutex<BTreeMap<String, SimMachine>>,
    tasks: Mutex<JoinSet<()>>,
    next_slot: AtomicU32,
}

struct SimMachine {
    machine: Machine,
    stop: CancellationToken,
}

impl std::fmt::Debug for SimProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let machines = self.machines.lock().map(|m| m.len()).unwrap_or_default();
        f.debug_struct("SimProvider")
            .field("machines", &machines)
            .finish()
    }
}

impl SimProvider {
    /// A provider whose nodes talk to the API through `client`; `cancel`
    /// stops them all.
    pub fn new(client: kube::Client, cancel: CancellationToken) -> Self {
        Self {
            client,
            options: AgentOptions {
                heartbeat_interval: Duration::from_secs(5),
                ..AgentOptions::default()
            },
            cancel,
            machines: Mutex::new(BTreeMap::new()),
            tasks: Mutex::new(JoinSet::new()),
            next_slot: AtomicU32::new(FIRST_SLOT),
        }
    }

    /// Stops every machine and waits for their loops to end.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        let mut tasks = std::mem::take(&mut *self.tasks.lock().expect("tasks lock"));
        while tasks.join_next().await.is_some() {}
    }

    fn node_config(&self, claim: &NodeClaim, slot: u32) -> Result<NodeConfig, ProviderError> {
        let mut node = NodeConfig::new(claim.name_any(), slot);
        node.labels = node_labels(claim);
        node.taints = claim.spec.taints.clone();
        node.taints
            .extend(claim.spec.startup_taints.iter().cloned());
        let delayed = self.advertise_delay(claim)?.is_some();
        for (resource, amount) in claim_capacity(claim) {
            if !(delayed && is_extended(&resource)) {
                node.capacity.insert(resource, amount);
            }
        }
        Ok(node)
    }

    /// `template.sim.gpuAdvertiseDelay`, parsed.
    fn advertise_delay(&self, claim: &NodeClaim) -> Result<Option<Duration>, ProviderError> {
        let sim = claim.spec.template.sim.as_ref();
        let Some(text) = sim.and_then(|s| s.gpu_advertise_delay.as_deref()) else {
            return Ok(None);
        };
        parse_duration("template.sim.gpuAdvertiseDelay", text)
            .map(Some)
            .map_err(|e| ProviderError::Invalid {
                claim: claim.name_any(),
                reason: e.to_string(),
            })
    }

    fn runtime(&self, claim: &NodeClaim, slot: u32) -> Result<SimulatedRuntime, ProviderError> {
        let invalid = |reason: String| ProviderError::Invalid {
            claim: claim.name_any(),
            reason,
        };
        let latency = claim
            .spec
            .template
            .sim
            .as_ref()
            .and_then(|s| s.start_latency.as_deref())
            .unwrap_or("0s");
        let start_latency = parse_duration("template.sim.startLatency", latency)
            .map_err(|e| invalid(e.to_string()))?;
        SimulatedRuntime::new(SimulatedConfig {
            start_latency,
            fallback_pod_cidr: berth_agent::config::fallback_pod_cidr(slot),
            record_calls: false,
        })
        .map_err(|e| invalid(e.to_string()))
    }
}

#[async_trait::async_trait]
impl MachineProvider for SimProvider {
    fn name(&self) -> &'static str {
        "sim"
    }

    async fn launch(&self, claim: &NodeClaim) -> Result<Machine, ProviderError> {
        let name = claim.name_any();
        let provider_id = format!("{SCHEME}/{name}");
        if let Some(existing) = self
            .machines
            .lock()
            .expect("machines lock")
            .get(&provider_id)
        {
            return Ok(existing.machine.clone());
        }
        let slot = self.next_slot.fetch_add(1, Ordering::Relaxed);
        let node = self.node_config(claim, slot)?;
        let runtime = self.runtime(claim, slot)?;
        let machine = Machine {
            provider_id: provider_id.clone(),
            pool: claim.spec.pool.clone(),
            claim: name.clone(),
            node_name: name.clone(),
            image_id: None,
            capacity: node.capacity.clone(),
        };
        let nodes = Nodes::new(vec![NodeHandle::new(node, Arc::new(runtime))]).map_err(|e| {
            ProviderError::Invalid {
                claim: name.clone(),
                reason: e.to_string(),
            }
        })?;
        let stop = self.cancel.child_token();
        let (client, options, token) = (self.client.clone(), self.options.clone(), stop.clone());
        {
            let mut tasks = self.tasks.lock().expect("tasks lock");
            while tasks.try_join_next().is_some() {}
            let startup = claim.spec.startup_taints.clone();
            let initialise = initialise(client.clone(), name.clone(), startup, token.clone());
            let extended: BTreeMap<_, _> = claim_capacity(claim)
                .into_iter()
                .filter(|(resource, _)| is_extended(resource))
                .collect();
            let advertise = advertise(
                client.clone(),
                name.clone(),
                self.advertise_delay(claim)?,
                extended,
                token.clone(),
            );
            tasks.spawn(async move {
                let agent = berth_agent::run(client, nodes, options, token);
                let (outcome, (), ()) = tokio::join!(agent, initialise, advertise);
                if let Err(e) = outcome {
                    tracing::warn!(node = %name, error = %e, "simulated machine stopped");
                }
            });
        }
        self.machines.lock().expect("machines lock").insert(
            provider_id,
            SimMachine {
                machine: machine.clone(),
                stop,
            },
        );
        Ok(machine)
    }

    async fn describe(&self, provider_id: &str) -> Result<Option<Machine>, ProviderError> {
        let machines = self.machines.lock().expect("machines lock");
        Ok(machines.get(provider_id).map(|m| m.machine.clone()))
    }

    async fn list(&self, pool: &str) -> Result<Vec<Machine>, ProviderError> {
        let machines = self.machines.lock().expect("machines lock");
        Ok(machines
            .values()
            .filter(|m| m.machine.pool == pool)
            .map(|m| m.machine.clone())
            .collect())
    }

    async fn terminate(&self, provider_id: &str) -> Result<(), ProviderError> {
        let removed = self
            .machines
            .lock()
            .expect("machines lock")
            .remove(provider_id);
        if let Some(machine) = removed {
            machine.stop.cancel();
            tracing::info!(provider_id, "terminated simulated machine");
        }
        Ok(())
    }
}

/// Whether `resource` is an extended resource (`vendor/name`), which a
/// device plugin advertises rather than the kubelet.
fn is_extended(resource: &str) -> bool {
    resource.contains('/')
}

/// What a device plugin does once it is up: after `delay`, add the
/// machine's `extended` resources to its Node's capacity and allocatable
/// (a merge patch of `nodes/status`, which the agent's own status posts
/// leave in place). Nothing to do without a delay: the node registered
/// with them. Gives up when `cancel` fires.
async fn advertise(
    client: kube::Client,
    node: String,
    delay: Option<Duration>,
    extended: BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    cancel: CancellationToken,
) {
    let Some(delay) = delay.filter(|_| !extended.is_empty()) else {
        return;
    };
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client);
    let patch = serde_json::json!({"status": {"capacity": extended, "allocatable": extended}});
    let mut wait = delay;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = Duration::from_millis(500);
        let params = kube::api::PatchParams::default();
        match nodes
            .patch_status(&node, &params, &kube::api::Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                tracing::info!(%node, "simulated machine advertised its extended resources");
                return;
            }
            Err(e) => {
                tracing::debug!(%node, error = %e, "advertising extended resources failed; retrying")
            }
        }
    }
}

/// What a real machine's own start-up does (a GPU driver, a CNI): once its
/// Node is Ready, remove the startup taints it registered with. Gives up
/// when `cancel` fires.
async fn initialise(
    client: kube::Client,
    node: String,
    startup: Vec<k8s_openapi::api::core::v1::Taint>,
    cancel: CancellationToken,
) {
    if startup.is_empty() {
        return;
    }
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let Ok(Some(current)) = nodes.get_opt(&node).await else {
            continue;
        };
        if !berth_nodepool::claim::node_ready(&current) {
            continue;
        }
        let taints: Vec<_> = current
            .spec
            .and_then(|s| s.taints)
            .unwrap_or_default()
            .into_iter()
            .filter(|t| {
                !startup
                    .iter()
                    .any(|s| s.key == t.key && s.effect == t.effect)
            })
            .collect();
        let patch = serde_json::json!({"spec": {"taints": taints}});
        let params = kube::api::PatchParams::default();
        if nodes
            .patch(&node, &params, &kube::api::Patch::Merge(patch))
            .await
            .is_ok()
        {
            tracing::info!(%node, "simulated machine initialised: startup taints removed");
            return;
        }
    }
}
