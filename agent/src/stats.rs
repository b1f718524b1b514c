//! Resource usage of the node and its containers, as kubelet serves it on
//! `/stats/summary` and `/metrics/resource` (what metrics-server and
//! `kubectl top` read). Containers' numbers come from the runtime
//! ([`crate::runtime::Runtime::usage`], cgroups for real containers); the
//! node's from /proc. The collector keeps the previous sample of each
//! container to turn cumulative CPU time into a rate (usageNanoCores); it
//! never changes pods.

pub mod cgroup;
pub mod node;
pub mod resource_metrics;
pub mod summary;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

use crate::runtime::Runtime;
use node::NodeUsage;

/// CPU and memory counters of a cgroup (or the node) at one moment, in
/// cAdvisor's terms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Cumulative CPU time, in nanoseconds (all cores).
    pub cpu_usage_nanos: u64,
    /// Memory in use, page cache included.
    pub memory_usage_bytes: u64,
    /// Memory in use less inactive file pages: what the OOM killer weighs
    /// and what `kubectl top` shows.
    pub memory_working_set_bytes: u64,
    /// Anonymous and swap-cache memory.
    pub memory_rss_bytes: u64,
}

/// One running container's usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerUsage {
    /// The container's name in the pod spec.
    pub name: String,
    /// When this run of it started.
    pub started_at: Timestamp,
    /// Its counters.
    pub usage: Usage,
}

/// The usage of one pod's running containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodUsage {
    /// The Pod's UID.
    pub uid: String,
    /// The Pod's namespace.
    pub namespace: String,
    /// The Pod's name.
    pub name: String,
    /// When its sandbox started.
    pub started_at: Timestamp,
    /// Its running containers.
    pub containers: Vec<ContainerUsage>,
}

impl PodUsage {
    /// The pod's counters: its containers' summed.
    pub fn total(&self) -> Usage {
        self.containers
            .iter()
            .fold(Usage::default(), |sum, c| Usage {
                cpu_usage_nanos: sum.cpu_usage_nanos + c.usage.cpu_usage_nanos,
                memory_usage_bytes: sum.memory_usage_bytes + c.usage.memory_usage_bytes,
                memory_working_set_bytes: sum.memory_working_set_bytes
                    + c.usage.memory_working_set_bytes,
                memory_rss_bytes: sum.memory_rss_bytes + c.usage.memory_rss_bytes,
            })
    }
}

/// What a rate is kept per: the node (`None`) or a pod's container.
pub type RateKey = Option<(String, String)>;

/// Everything measured at one moment, with CPU rates where an earlier
/// sample of the same container run exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The node's name.
    pub node_name: String,
    /// When it was measured.
    pub time: Timestamp,
    /// The node's usage.
    pub node: NodeUsage,
    /// Pods with running containers.
    pub pods: Vec<PodUsage>,
    /// CPU in nanocores per [`RateKey`], where known.
    pub nano_cores: HashMap<RateKey, u64>,
}

impl Snapshot {
    /// The CPU rate of `key`, if known.
    pub fn rate(&self, key: &RateKey) -> Option<u64> {
        self.nano_cores.get(key).copied()
    }

    /// The pod's CPU rate: its containers' summed, once every one has one.
    pub fn pod_rate(&self, pod: &PodUsage) -> Option<u64> {
        pod.containers
            .iter()
            .map(|c| self.rate(&Some((pod.uid.clone(), c.name.clone()))))
            .sum()
    }
}

/// A cumulative CPU sample remembered for the next rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When the container run started (a restart resets its counter).
    pub started_at: Option<Timestamp>,
    /// Cumulative CPU nanoseconds.
    pub cpu_nanos: u64,
    /// When it was taken.
    pub time: Timestamp,
}

/// Samples closer than this are not kept as the base of the next rate, so
/// two scrapes in quick succession still measure over a useful interval.
const MIN_RATE_WINDOW: SignedDuration = SignedDuration::from_secs(1);

/// CPU nanocores between `previous` and `current`, or `None` when they are
/// of different runs, too close, or the counter went back.
pub fn nano_cores(previous: Option<&Sample>, current: &Sample) -> Option<u64> {
    let previous = previous?;
    if previous.started_at != current.started_at {
        return None;
    }
    let elapsed = current.time.duration_since(previous.time);
    let nanos = u64::try_from(elapsed.as_nanos()).ok().filter(|n| *n > 0)?;
    if elapsed < SignedDuration::from_millis(100) {
        return None;
    }
    let used = current.cpu_nanos.checked_sub(previous.cpu_nanos)?;
    u64::try_from(u128::from(used) * 1_000_000_000 / u128::from(nanos)).ok()
}

/// Measures the node and its containers on request, remembering each one's
/// previous CPU sample for rates.
pub struct Collector {
    node_name: String,
    runtime: Arc<dyn Runtime>,
    previous: Mutex<HashMap<RateKey, Sample>>,
}

impl Collector {
    /// A collector for node `node_name` on `runtime`.
    pub fn new(node_name: String, runtime: Arc<dyn Runtime>) -> Self {
        Self {
            node_name,
            runtime,
            previous: Mutex::default(),
        }
    }

    /// A snapshot with nothing measured, for reporting a failed scrape.
    pub fn empty(&self) -> Snapshot {
        Snapshot {
            node_name: self.node_name.clone(),
            time: Timestamp::now(),
            node: NodeUsage::default(),
            pods: Vec::new(),
            nano_cores: HashMap::new(),
        }
    }

    /// Measures now. A runtime that runs no processes (simulated nodes)
    /// reports zero node usage rather than the host's.
    pub async fn collect(&self) -> Result<Snapshot, crate::runtime::RuntimeError> {
        let pods = self.runtime.usage().await?;
        let node = if self.runtime.runs_processes() {
            node::read().map_err(|e| {
                crate::runtime::RuntimeError::Backend(format!("reading node usage: {e}"))
            })?
        } else {
            NodeUsage::default()
        };
        let time = Timestamp::now();
        let mut current: Vec<(RateKey, Sample)> = vec![(
            None,
            Sample {
                started_at: None,
                cpu_nanos: node.usage.cpu_usage_nanos,
                time,
            },
        )];
        for pod in &pods {
            for container in &pod.containers {
                current.push((
                    Some((pod.uid.clone(), container.name.clone())),
                    Sample {
                        started_at: Some(container.started_at),
                        cpu_nanos: container.usage.cpu_usage_nanos,
                        time,
                    },
                ));
            }
        }
        let nano_cores = remember(&mut crate::lock(&self.previous), current);
        Ok(Snapshot {
            node_name: self.node_name.clone(),
            time,
            node,
            pods,
            nano_cores,
        })
    }
}

/// Rates of `current` against `previous`, which then keeps `current`'s
/// samples (those far enough from the old ones) and forgets what is gone.
fn remember(
    previous: &mut HashMap<RateKey, Sample>,
    current: Vec<(RateKey, Sample)>,
) -> HashMap<RateKey, u64> {
    let mut rates = HashMap::new();
    let mut next = HashMap::with_capacity(current.len());
    for (key, sample) in current {
        let old = previous.get(&key);
        if let Some(rate) = nano_cores(old, &sample) {
            rates.insert(key.clone(), rate);
        }
        let keep = match old {
            Some(old) if old.started_at == sample.started_at => {
                if sample.time.duration_since(old.time) >= MIN_RATE_WINDOW {
                    sample
                } else {
                    *old
                }
            }
            _ => sample,
        };
        next.insert(key, keep);
    }
    *previous = next;
    rates
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    fn sample(started: i64, cpu_nanos: u64, time: i64) -> Sample {
        Sample {
            started_at: Some(at(started)),
            cpu_nanos,
            time: at(time),
        }
    }

    #[test]
    fn rates_need_two_samples_of_one_run() {
        let cases = [
            (None, sample(0, 5, 10), None),
            // Half a core over ten seconds.
            (
                Some(sample(0, 1_000_000_000, 10)),
                sample(0, 6_000_000_000, 20),
                Some(500_000_000),
            ),
            // A restarted container counts from zero again.
            (Some(sample(0, 9_000, 10)), sample(15, 100, 20), None),
            // No time passed.
            (Some(sample(0, 1, 10)), sample(0, 2, 10), None),
            // The counter went back.
            (Some(sample(0, 10, 10)), sample(0, 2, 20), None),
        ];
        for (previous, current, want) in cases {
            assert_eq!(nano_cores(previous.as_ref(), &current), want);
        }
    }

    #[test]
    fn remembered_samples_follow_the_containers_that_still_run() {
        let key = |c: &str| Some(("uid".to_owned(), c.to_owned()));
        let mut previous = HashMap::new();
        let rates = remember(
            &mut previous,
            vec![(key("a"), sample(0, 0, 10)), (key("b"), sample(0, 0, 10))],
        );
        assert!(rates.is_empty());
        let rates = remember(
            &mut previous,
            vec![(key("a"), sample(0, 2_000_000_000, 12))],
        );
        assert_eq!(rates[&key("a")], 1_000_000_000);
        assert!(!previous.contains_key(&key("b")));
        // A scrape right after keeps the older base sample.
        let rates = remember(
            &mut previous,
            vec![(key("a"), sample(0, 2_000_000_000, 12))],
        );
        assert!(rates.is_empty());
        assert_eq!(previous[&key("a")].time, at(12));
    }

    #[test]
    fn a_pods_rate_needs_every_containers_rate() {
        let container = |name: &str| ContainerUsage {
            name: name.into(),
            started_at: at(0),
            usage: Usage {
                cpu_usage_nanos: 10,
                memory_working_set_bytes: 100,
                ..Usage::default()
            },
        };
        let pod = PodUsage {
            uid: "u".into(),
            namespace: "ns".into(),
            name: "p".into(),
            started_at: at(0),
            containers: vec![container("a"), container("b")],
        };
        assert_eq!(pod.total().memory_working_set_bytes, 200);
        let mut snapshot = Snapshot {
            node_name: "n".into(),
            time: at(1),
            node: NodeUsage::default(),
            pods: vec![pod.clone()],
            nano_cores: HashMap::from([(Some(("u".into(), "a".into())), 7)]),
        };
        assert_eq!(snapshot.pod_rate(&pod), None);
        snapshot
            .nano_cores
            .insert(Some(("u".into(), "b".into())), 5);
        assert_eq!(snapshot.pod_rate(&pod), Some(12));
    }
}
