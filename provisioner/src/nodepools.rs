//! The `berth.dev/v1` NodePool objects of a cluster's `aws` pools: rendered
//! from the checked `cluster.toml` and server-side applied by `create`, so a
//! re-run updates them (and only the fields `cluster.toml` owns); `kubectl
//! scale` and the controller keep working on the rest.

use std::collections::BTreeMap;

use berth_api::nodepool::{Disruption, MachineTemplate, NodePool, NodePoolSpec, POOL_LABEL};
use k8s_openapi::api::core::v1::Taint;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, Patch, PatchParams};

use crate::config::{Cluster, Pool, PoolSize};

/// The field manager `create`'s applies are recorded under.
pub const FIELD_MANAGER: &str = "berth-cluster";

/// The NodePool of every `aws` pool of `cluster`, in file order.
pub fn render_all(cluster: &Cluster) -> Vec<NodePool> {
    cluster.pools.iter().filter_map(render).collect()
}

/// The NodePool of `pool`; None unless it is an `aws` pool.
pub fn render(pool: &Pool) -> Option<NodePool> {
    let aws = pool.aws.as_ref()?;
    let (replicas, min_replicas, max_replicas) = match aws.size {
        PoolSize::Fixed(n) => (Some(n), None, None),
        PoolSize::Autoscaled { min, max } => (None, min, max),
    };
    let quantities = |map: &BTreeMap<String, String>| {
        map.iter()
            .map(|(k, v)| (k.clone(), Quantity(v.clone())))
            .collect::<BTreeMap<_, _>>()
    };
    let mut labels = pool.labels.clone();
    labels.remove(POOL_LABEL);
    let spec = NodePoolSpec {
        replicas,
        min_replicas,
        max_replicas,
        provider: Some("aws".to_owned()),
        template: Some(MachineTemplate {
            capacity: quantities(&aws.capacity),
            aws: Some(aws.template.clone()),
            ..MachineTemplate::default()
        }),
        labels,
        taints: pool
            .taints
            .iter()
            .map(|t| Taint {
                key: t.key.clone(),
                value: (!t.value.is_empty()).then(|| t.value.clone()),
                effect: t.effect.clone(),
                time_added: None,
            })
            .collect(),
        limits: quantities(&aws.limits),
        expire_after: aws.expire_after.clone(),
        disruption: aws.consolidate_after.as_ref().map(|after| Disruption {
            consolidate_after: Some(after.clone()),
            ..Disruption::default()
        }),
        ..NodePoolSpec::default()
    };
    Some(NodePool {
        api_version: "berth.dev/v1".to_owned(),
        kind: "NodePool".to_owned(),
        metadata: ObjectMeta {
            name: Some(pool.name.clone()),
            labels: Some(BTreeMap::from([(POOL_LABEL.to_owned(), pool.name.clone())])),
            ..ObjectMeta::default()
        },
        spec,
        status: None,
    })
}

/// Server-side applies the NodePool of every `aws` pool of `cluster`
/// (forcing ownership of the fields `cluster.toml` sets); the names applied.
pub async fn apply(client: &kube::Client, cluster: &Cluster) -> Result<Vec<String>, String> {
    let api: Api<NodePool> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut names = Vec::new();
    for pool in render_all(cluster) {
        let name = pool.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &params, &Patch::Apply(&pool))
            .await
            .map_err(|e| format!("applying NodePool {name}: {e}"))?;
        names.push(name);
    }
    Ok(names)
}

/// One line per NodePool `create` made (those labelled `berth.dev/pool`):
/// name, provider, size and ready nodes, as `berth cluster status` prints them.
pub async fn status_lines(client: &kube::Client) -> Vec<String> {
    let api: Api<NodePool> = Api::all(client.clone());
    match api.list(&ListParams::default().labels(POOL_LABEL)).await {
        Ok(list) => list.items.iter().map(status_line).collect(),
        Err(e) => vec![format!("NodePools: {e}")],
    }
}

fn status_line(pool: &NodePool) -> String {
    let spec = &pool.spec;
    let size = match (spec.replicas, spec.min_replicas, spec.max_replicas) {
        (Some(n), _, _) => format!("replicas {n}"),
        (None, min, max) => format!(
            "autoscaled {}..{}",
            min.unwrap_or(0),
            max.map_or("limits".to_owned(), |m| m.to_string())
        ),
    };
    let status = pool.status.clone().unwrap_or_default();
    format!(
        "nodepool {:<12} {:<5} {size}, {} machine(s), {} ready",
        pool.metadata.name.clone().unwrap_or_default(),
        spec.provider_name(),
        status.replicas,
        status.ready_replicas
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aws_pool_renders_its_template_size_and_taints() {
        let text = "name = \"lab\"\n[masters]\nmachines = [{ host = \"10.0.0.1\" }]\n\
                    [aws]\nregion = \"eu-west-1\"\nbinary_url = \"https://example.com/berth\"\n\
                    [[pools]]\nname = \"gpu\"\nprovider = \"aws\"\ngpu = true\n\
                    instance_types = [\"g5.xlarge\"]\nami = \"ami-1\"\nspot = true\n\
                    root_volume_gib = 100\nmin_replicas = 1\nmax_replicas = 4\n\
                    labels = { \"example.com/tier\" = \"ml\" }\n\
                    capacity = { gpu = \"1\" }\nlimits = { gpu = \"4\" }\n\
                    expire_after = \"168h\"\nconsolidate_after = \"5m\"\n\
                    [[pools]]\nname = \"cpu\"\nmachines = [{ host = \"10.0.1.1\" }]\n";
        let cluster = crate::config::parse("cluster.toml", text).unwrap();
        let pools = render_all(&cluster);
        assert_eq!(pools.len(), 1, "the ssh pool has no NodePool");
        let pool = &pools[0];
        assert_eq!(pool.metadata.name.as_deref(), Some("gpu"));
        assert_eq!(
            pool.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(POOL_LABEL)),
            Some(&"gpu".to_owned())
        );
        let spec = &pool.spec;
        assert_eq!(
            (spec.replicas, spec.min_replicas, spec.max_replicas),
            (None, Some(1), Some(4))
        );
        let aws = spec.template.as_ref().and_then(|t| t.aws.as_ref()).unwrap();
        assert_eq!(aws.instance_types, ["g5.xlarge"]);
        assert!(aws.wants_spot());
        assert_eq!(aws.root_volume.as_ref().map(|v| v.size_gib), Some(100));
        assert_eq!(
            spec.labels.keys().collect::<Vec<_>>(),
            ["example.com/tier"],
            "berth.dev/pool is the controller's to add"
        );
        assert_eq!(spec.taints[0].key, "nvidia.com/gpu");
        assert_eq!(spec.taints[0].value.as_deref(), Some("present"));
        assert_eq!(spec.limits["nvidia.com/gpu"], Quantity("4".into()));
        let capacity = &spec.template.as_ref().unwrap().capacity;
        assert_eq!(capacity["nvidia.com/gpu"], Quantity("1".into()));
        assert_eq!(spec.expire_after.as_deref(), Some("168h"));
        let after = spec
            .disruption
            .as_ref()
            .and_then(|d| d.consolidate_after.as_deref());
        assert_eq!(after, Some("5m"));
        // What the API server checks accepts it.
        let json = serde_json::to_value(pool).unwrap();
        let causes = berth_api::kinds::KindRules::validate(
            &berth_api::kinds::berth::nodepool::NodePool,
            &json,
        );
        assert!(causes.is_empty(), "{causes:?}");
        assert!(status_line(pool).contains("autoscaled 1..4"));
    }
}
