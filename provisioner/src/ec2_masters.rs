//! Masters that are EC2 instances (`[aws.masters]`): launched (or found
//! again by their `Name` tag) before `create` provisions them over SSH as
//! listed machines are, found again by the commands that follow, and
//! terminated with the cluster's node instances by `delete`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::aws::{AwsError, Ec2, Instance, Master, Role, ROLE_TAG};
use crate::config::{Aws, Cluster};

/// How often a launch is looked at while waiting for the instances to run.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Why the master instances could not be had.
#[derive(Debug, thiserror::Error)]
pub enum Ec2MastersError {
    /// An EC2 call failed.
    #[error("EC2: {0}")]
    Aws(#[from] AwsError),
    /// An instance did not reach `running` with an address in time.
    #[error("master instance {name} ({id}) is {state} without a usable {address} address after {timeout:?}; it keeps its tags, so a re-run finds it")]
    NotRunning {
        /// Its `Name` tag.
        name: String,
        /// Its instance id.
        id: String,
        /// Its last state.
        state: String,
        /// `private` or `public`.
        address: &'static str,
        /// The limit.
        timeout: Duration,
    },
}

/// The `[aws.masters]` part of `cluster`, when its masters are instances.
fn launched(cluster: &Cluster) -> Option<&Aws> {
    cluster.aws.as_ref().filter(|aws| aws.masters().is_some())
}

/// Whether `cluster`'s masters are EC2 instances.
pub fn is_launched(cluster: &Cluster) -> bool {
    launched(cluster).is_some()
}

/// The cluster's EC2 client (credentials from the standard AWS chain).
pub async fn connect(aws: &Aws, cluster: &str) -> Ec2 {
    Ec2::connect(&aws.config.settings(cluster)).await
}

/// Launches the master instances that do not exist yet, waits up to
/// `timeout` until each runs with its address, and returns `cluster` with
/// them as its masters (unchanged when its masters are listed machines).
pub async fn launch(cluster: &Cluster, timeout: Duration) -> Result<Cluster, Ec2MastersError> {
    let Some(aws) = launched(cluster) else {
        return Ok(cluster.clone());
    };
    let Some(spec) = aws.masters() else {
        return Ok(cluster.clone());
    };
    let ec2 = connect(aws, &cluster.name).await;
    let names = spec.names(&cluster.name);
    ec2.launch_masters(&names, &spec.template(), "").await?;
    let started = Instant::now();
    loop {
        let masters = ec2.masters().await?;
        match waiting_for(&names, &masters, spec.public) {
            None => return Ok(with_masters(cluster, aws, &masters)),
            Some((name, instance)) if started.elapsed() >= timeout => {
                return Err(Ec2MastersError::NotRunning {
                    name: name.to_owned(),
                    id: instance
                        .map_or_else(|| "no instance".to_owned(), |m| m.instance.id.clone()),
                    state: instance.map_or_else(|| "gone".to_owned(), |m| m.instance.state.clone()),
                    address: if spec.public { "public" } else { "private" },
                    timeout,
                });
            }
            Some(_) => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }
}

/// The first of `names` that is not yet running with its address, with
/// its instance when there is one.
fn waiting_for<'a>(
    names: &'a [String],
    masters: &'a [Master],
    public: bool,
) -> Option<(&'a str, Option<&'a Master>)> {
    names.iter().find_map(|name| {
        let found = masters.iter().find(|m| &m.name == name);
        match found {
            Some(m) if m.instance.state == "running" && m.address(public).is_some() => None,
            _ => Some((name.as_str(), found)),
        }
    })
}

/// `cluster` with the running master instances as its masters, in name order.
fn with_masters(cluster: &Cluster, aws: &Aws, masters: &[Master]) -> Cluster {
    let public = aws.masters().is_some_and(|spec| spec.public);
    let mut cluster = cluster.clone();
    cluster.masters = masters
        .iter()
        .filter_map(|m| Some(aws.machine(&m.name, m.address(public)?)))
        .collect();
    cluster
}

/// `cluster` with the master instances that exist now (none launched), and
/// those instances; unchanged and none when its masters are listed machines.
pub async fn find(cluster: &Cluster) -> Result<(Cluster, Vec<Master>), Ec2MastersError> {
    let Some(aws) = launched(cluster) else {
        return Ok((cluster.clone(), Vec::new()));
    };
    let masters = connect(aws, &cluster.name).await.masters().await?;
    Ok((with_masters(cluster, aws, &masters), masters))
}

/// Terminates every live instance tagged with the cluster that berth
/// launched: NodePool nodes, and masters only when `[aws.masters]` launched
/// them (Terraform's masters carry the same tags but are Terraform's to
/// destroy); the ids terminated. Nothing when berth launches no instances
/// (no `[aws]`, or one without `binary_url`).
pub async fn terminate_all(cluster: &Cluster) -> Result<Vec<String>, Ec2MastersError> {
    let Some(aws) = cluster.aws.as_ref().filter(|aws| aws.launches_nodes()) else {
        return Ok(Vec::new());
    };
    let ec2 = connect(aws, &cluster.name).await;
    let mut terminated = Vec::new();
    let launched_masters = aws.masters().is_some();
    for instance in ec2.list_tagged(&[]).await? {
        if instance.live() && launched_by_berth(&instance, launched_masters) {
            ec2.terminate(&instance.id).await?;
            terminated.push(instance.id);
        }
    }
    Ok(terminated)
}

/// Whether `delete` ends `instance`: nodes always (the NodePool controller
/// launched them), masters only when `[aws.masters]` launched them.
fn launched_by_berth(instance: &Instance, launched_masters: bool) -> bool {
    launched_masters || instance.tag(ROLE_TAG) != Some(Role::Master.as_str())
}

/// One line per master instance for `cluster status`.
pub fn describe(masters: &[Master], public: bool) -> String {
    let mut out = String::from("master instances:\n");
    if masters.is_empty() {
        out.push_str("  (none)\n");
    }
    for master in masters {
        let _ = writeln!(
            out,
            "  {} {} {} {} {}",
            master.name,
            master.instance.id,
            master.instance.instance_type,
            master.instance.state,
            master.address(public).unwrap_or("-")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(name: &str, state: &str, private_ip: Option<&str>) -> Master {
        Master {
            name: name.into(),
            instance: Instance {
                id: format!("i-{name}"),
                state: state.into(),
                private_ip: private_ip.map(str::to_owned),
                ..Instance::default()
            },
        }
    }

    #[test]
    fn delete_ends_terraforms_masters_never_and_nodes_always() {
        let tagged = |role: &str| Instance {
            tags: [(ROLE_TAG.to_owned(), role.to_owned())].into(),
            ..Instance::default()
        };
        assert!(!launched_by_berth(&tagged("master"), false));
        assert!(launched_by_berth(&tagged("master"), true));
        assert!(launched_by_berth(&tagged("node"), false));
    }

    #[test]
    fn waits_for_every_master_to_run_with_an_address() {
        let names = ["c-master-1".to_owned(), "c-master-2".to_owned()];
        let pending = [
            master("c-master-1", "running", Some("10.0.0.4")),
            master("c-master-2", "pending", None),
        ];
        let (name, found) = waiting_for(&names, &pending, false).expect("waiting");
        assert_eq!(name, "c-master-2");
        assert_eq!(found.map(|m| m.instance.id.as_str()), Some("i-c-master-2"));
        let (name, found) = waiting_for(&names, &pending[..1], false).expect("waiting");
        assert_eq!((name, found), ("c-master-2", None));
        let running = [
            master("c-master-1", "running", Some("10.0.0.4")),
            master("c-master-2", "running", Some("10.0.0.5")),
        ];
        assert_eq!(waiting_for(&names, &running, false), None);
        assert!(
            waiting_for(&names, &running, true).is_some(),
            "no public address"
        );
        let text = describe(&running, false);
        assert!(text.contains("c-master-2 i-c-master-2"), "{text}");
        assert!(text.ends_with("running 10.0.0.5\n"), "{text}");
    }

    #[test]
    fn a_master_that_does_not_run_in_time_is_named() {
        let error = Ec2MastersError::NotRunning {
            name: "c-master-2".into(),
            id: "i-1".into(),
            state: "pending".into(),
            address: "private",
            timeout: Duration::from_secs(300),
        };
        assert_eq!(
            error.to_string(),
            "master instance c-master-2 (i-1) is pending without a usable private address after 300s; it keeps its tags, so a re-run finds it"
        );
    }
}
