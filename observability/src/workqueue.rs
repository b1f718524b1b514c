//! client-go's `workqueue_*` metrics for kube-rs controllers, so the
//! dashboards and alerts written for kube-controller-manager's queues
//! (depth, adds, queue and work latency, retries, stuck workers) read
//! berth's controllers too.
//!
//! kube-rs's applier has no queue hooks, so a [`Workqueue`] wraps what it is
//! given instead: the trigger stream (an object triggered and not yet
//! reconciled is "queued"), the reconciler (its run is the "work") and the
//! error policy (its requeue is a "retry"). A controller changes one line:
//! `applier(` becomes `workqueue::named("job").applier(`, and
//! `.run(reconcile, error_policy, ctx)` becomes
//! `.run_with_workqueue("namespace", reconcile, error_policy, ctx)`.
//!
//! A `Controller` keeps its trigger streams to itself, so for those the
//! queue is observed from the reconciler alone: every run counts as an add
//! with no time queued, and the depth stays 0. Requeues that kube-rs's own
//! scheduler fires (`Action::requeue`, the error policy's back-off) are
//! counted the same way, as client-go counts a delayed add when it fires.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use futures::{Stream, StreamExt, TryStream, TryStreamExt};
use kube::runtime::controller::{self, applier, Action, Config, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;

use crate::metrics::{
    exponential_buckets, Counter, EncodeLabelSet, Family, Gauge, Histogram, MetricsRegistry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    name: String,
}

type HistogramFamily = Family<QueueLabel, Histogram, fn() -> Histogram>;

fn latency() -> Histogram {
    // client-go: 10 ns, times ten, ten buckets (to 10 s).
    Histogram::new(exponential_buckets(1e-8, 10.0, 10))
}

/// The `workqueue_*` families every queue of one registry shares.
#[derive(Clone, Debug)]
struct Families {
    adds: Family<QueueLabel, Counter>,
    depth: Family<QueueLabel, Gauge>,
    queue_duration: HistogramFamily,
    work_duration: HistogramFamily,
    retries: Family<QueueLabel, Counter>,
}

/// Every named queue of one registry; the registry's collector reads the
/// running workers' ages from here at each scrape.
#[derive(Clone, Debug)]
pub struct WorkqueueMetrics {
    families: Families,
    queues: Arc<Mutex<HashMap<String, Arc<QueueState>>>>,
}

impl WorkqueueMetrics {
    /// The queues of this process's controllers, registered in the control
    /// plane's registry (the API server's `/metrics` in `berth server`).
    pub fn global() -> &'static WorkqueueMetrics {
        static METRICS: OnceLock<WorkqueueMetrics> = OnceLock::new();
        METRICS.get_or_init(|| WorkqueueMetrics::register(MetricsRegistry::control_plane()))
    }

    /// Registers the `workqueue_*` families in `registry`.
    pub fn register(registry: &MetricsRegistry) -> Self {
        let families = Families {
            adds: registry.register(
                "workqueue_adds",
                "Items added to the workqueue, not counting those already waiting in it.",
                Family::default(),
            ),
            depth: registry.register(
                "workqueue_depth",
                "Items now waiting in the workqueue.",
                Family::default(),
            ),
            queue_duration: registry.register(
                "workqueue_queue_duration_seconds",
                "Seconds an item waited in the workqueue before a worker picked it up.",
                Family::new_with_constructor(latency as fn() -> Histogram),
            ),
            work_duration: registry.register(
                "workqueue_work_duration_seconds",
                "Seconds a worker spent processing an item of the workqueue.",
                Family::new_with_constructor(latency as fn() -> Histogram),
            ),
            retries: registry.register(
                "workqueue_retries",
                "Failed items put back in the workqueue with a back-off.",
                Family::default(),
            ),
        };
        let queues = Arc::<Mutex<HashMap<String, Arc<QueueState>>>>::default();
        registry.register_collector(RunningCollector {
            queues: queues.clone(),
        });
        WorkqueueMetrics { families, queues }
    }

    /// The queue called `name` (kube-controller-manager's name for it);
    /// asking twice, as a restarted controller does, gives the same one.
    pub fn queue(&self, name: &str) -> Workqueue {
        let state = lock(&self.queues)
            .entry(name.to_owned())
            .or_insert_with(|| {
                let label = QueueLabel {
                    name: name.to_owned(),
                };
                // Served from the start, as client-go's are, so a quiet
                // controller's queue reads 0 rather than missing.
                let _ = self.families.adds.get_or_create(&label);
                let _ = self.families.depth.get_or_create(&label);
                let _ = self.families.retries.get_or_create(&label);
                Arc::new(QueueState {
                    label,
                    inner: Mutex::default(),
                })
            })
            .clone();
        Workqueue {
            families: self.families.clone(),
            state,
        }
    }
}

/// The queue called `name` in the control plane's registry.
pub fn named(name: &str) -> Workqueue {
    WorkqueueMetrics::global().queue(name)
}

#[derive(Debug)]
struct QueueState {
    label: QueueLabel,
    inner: Mutex<Items>,
}

#[derive(Debug, Default)]
struct Items {
    /// Triggered and not yet picked up, with when each was first added.
    queued: HashMap<String, Instant>,
    /// The workers now running, with when each started.
    running: HashMap<u64, Instant>,
    next_worker: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What an applier yields for each reconcile: the object and the action
/// its reconciler chose, or why it failed.
pub type Reconciled<K, E, QueueError> =
    Result<(ObjectRef<K>, Action), controller::Error<E, QueueError>>;

/// One controller's queue metrics; cheap to clone into its closures.
#[derive(Clone, Debug)]
pub struct Workqueue {
    families: Families,
    state: Arc<QueueState>,
}

impl Workqueue {
    /// Notes `key` as triggered: counted as an add unless already waiting
    /// (as client-go ignores an add of a dirty item).
    pub fn add(&self, key: String) {
        let mut items = lock(&self.state.inner);
        if items.queued.contains_key(&key) {
            return;
        }
        items.queued.insert(key, Instant::now());
        self.families.adds.get_or_create(&self.state.label).inc();
        self.set_depth(&items);
    }

    /// Notes `key` as picked up by a worker, until the returned guard drops.
    pub fn start(&self, key: &str) -> Worker {
        let mut items = lock(&self.state.inner);
        let now = Instant::now();
        let queued = match items.queued.remove(key) {
            Some(added) => now.saturating_duration_since(added).as_secs_f64(),
            None => {
                // A requeue from kube-rs's own scheduler: added as it fired.
                self.families.adds.get_or_create(&self.state.label).inc();
                0.0
            }
        };
        self.families
            .queue_duration
            .get_or_create(&self.state.label)
            .observe(queued);
        self.set_depth(&items);
        let id = items.next_worker;
        items.next_worker += 1;
        items.running.insert(id, now);
        Worker {
            queue: self.clone(),
            id,
            started: now,
        }
    }

    /// Counts a failed item put back with a back-off.
    pub fn retry(&self) {
        self.families.retries.get_or_create(&self.state.label).inc();
    }

    fn set_depth(&self, items: &Items) {
        self.families
            .depth
            .get_or_create(&self.state.label)
            .set(i64::try_from(items.queued.len()).unwrap_or(i64::MAX));
    }

    /// `queue` with each trigger of an object in `store` noted as an add;
    /// a trigger for an object the store lacks is never reconciled, so it
    /// is not counted as waiting.
    pub fn triggers<K, S>(
        &self,
        queue: S,
        store: Store<K>,
    ) -> impl Stream<Item = Result<ObjectRef<K>, S::Error>>
    where
        K: Resource + Clone + 'static,
        K::DynamicType: Eq + Hash + Clone,
        S: TryStream<Ok = ObjectRef<K>>,
    {
        let this = self.clone();
        queue.into_stream().inspect(move |item| {
            if let Ok(object) = item {
                if store.get(object).is_some() {
                    this.add(ref_key(object));
                }
            }
        })
    }

    /// `reconciler` with each run timed as the queue's work.
    pub fn reconciler<K, Ctx, Fut>(
        &self,
        mut reconciler: impl FnMut(Arc<K>, Arc<Ctx>) -> Fut,
    ) -> impl FnMut(Arc<K>, Arc<Ctx>) -> Timed<Fut>
    where
        K: Resource,
    {
        let this = self.clone();
        move |object, ctx| {
            let worker = this.start(&object_key(&*object));
            Timed {
                inner: Box::pin(reconciler(object, ctx)),
                _worker: worker,
            }
        }
    }

    /// `error_policy` with each call counted as a retry.
    pub fn error_policy<K, E, Ctx>(
        &self,
        error_policy: impl Fn(Arc<K>, &E, Arc<Ctx>) -> Action,
    ) -> impl Fn(Arc<K>, &E, Arc<Ctx>) -> Action {
        let this = self.clone();
        move |object, error, ctx| {
            this.retry();
            error_policy(object, error, ctx)
        }
    }

    /// kube-rs's [`applier`] with this queue's metrics around its trigger
    /// stream, reconciler and error policy.
    pub fn applier<K, Q, Fut, Ctx>(
        &self,
        reconciler: impl FnMut(Arc<K>, Arc<Ctx>) -> Fut,
        error_policy: impl Fn(Arc<K>, &Fut::Error, Arc<Ctx>) -> Action,
        context: Arc<Ctx>,
        store: Store<K>,
        queue: Q,
        config: Config,
    ) -> impl Stream<Item = Reconciled<K, Fut::Error, Q::Error>>
    where
        K: Clone + Resource + 'static,
        K::DynamicType: std::fmt::Debug + Eq + Hash + Clone + Unpin,
        Fut: Future<Output = Result<Action, <Fut as futures::TryFuture>::Error>>
            + futures::TryFuture<Ok = Action>,
        <Fut as futures::TryFuture>::Error: std::error::Error + 'static,
        Q: TryStream<Ok = ObjectRef<K>>,
        Q::Error: std::error::Error + 'static,
    {
        let triggers = self.triggers(queue, store.clone());
        applier(
            self.reconciler(reconciler),
            self.error_policy(error_policy),
            context,
            store,
            triggers,
            config,
        )
    }
}

/// Records a worker's run when it ends, finished or cancelled.
#[derive(Debug)]
pub struct Worker {
    queue: Workqueue,
    id: u64,
    started: Instant,
}

impl Drop for Worker {
    fn drop(&mut self) {
        lock(&self.queue.state.inner).running.remove(&self.id);
        self.queue
            .families
            .work_duration
            .get_or_create(&self.queue.state.label)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// A reconcile future whose run is timed as the queue's work.
pub struct Timed<Fut> {
    inner: Pin<Box<Fut>>,
    _worker: Worker,
}

impl<Fut: Future> Future for Timed<Fut> {
    type Output = Fut::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

/// [`Controller::run`] with the workqueue metrics of queue `name`.
pub trait RunWithWorkqueue<K: Resource> {
    /// Runs the controller as [`Controller::run`] does, its reconciles
    /// and retries counted in queue `name`.
    fn run_with_workqueue<Fut, Ctx>(
        self,
        name: &str,
        reconciler: impl FnMut(Arc<K>, Arc<Ctx>) -> Fut,
        error_policy: impl Fn(Arc<K>, &<Fut as futures::TryFuture>::Error, Arc<Ctx>) -> Action,
        context: Arc<Ctx>,
    ) -> impl Stream<Item = Reconciled<K, <Fut as futures::TryFuture>::Error, watcher::Error>>
    where
        Fut: Future<Output = Result<Action, <Fut as futures::TryFuture>::Error>>
            + futures::TryFuture<Ok = Action>
            + Send
            + 'static,
        <Fut as futures::TryFuture>::Error: std::error::Error + Send + 'static;
}

impl<K> RunWithWorkqueue<K> for Controller<K>
where
    K: Clone + Resource + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: std::fmt::Debug + Eq + Hash + Clone + Unpin,
{
    fn run_with_workqueue<Fut, Ctx>(
        self,
        name: &str,
        reconciler: impl FnMut(Arc<K>, Arc<Ctx>) -> Fut,
        error_policy: impl Fn(Arc<K>, &<Fut as futures::TryFuture>::Error, Arc<Ctx>) -> Action,
        context: Arc<Ctx>,
    ) -> impl Stream<Item = Reconciled<K, <Fut as futures::TryFuture>::Error, watcher::Error>>
    where
        Fut: Future<Output = Result<Action, <Fut as futures::TryFuture>::Error>>
            + futures::TryFuture<Ok = Action>
            + Send
            + 'static,
        <Fut as futures::TryFuture>::Error: std::error::Error + Send + 'static,
    {
        let queue = named(name);
        self.run(
            queue.reconciler(reconciler),
            queue.error_policy(error_policy),
            context,
        )
    }
}

fn object_key<K: Resource>(object: &K) -> String {
    format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

fn ref_key<K: Resource>(object: &ObjectRef<K>) -> String {
    format!(
        "{}/{}",
        object.namespace.as_deref().unwrap_or_default(),
        object.name
    )
}

/// Serves each queue's running workers' total and longest age, read at
/// the scrape so a stuck worker shows while it is stuck.
#[derive(Debug)]
struct RunningCollector {
    queues: Arc<Mutex<HashMap<String, Arc<QueueState>>>>,
}

impl Collector for RunningCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = Instant::now();
        let ages: Vec<(QueueLabel, f64, f64)> = lock(&self.queues)
            .values()
            .map(|queue| {
                let items = lock(&queue.inner);
                let mut total: f64 = 0.0;
                let mut longest: f64 = 0.0;
                for started in items.running.values() {
                    let age = now.saturating_duration_since(*started).as_secs_f64();
                    total += age;
                    longest = longest.max(age);
                }
                (queue.label.clone(), total, longest)
            })
            .collect();
        for (name, help, pick) in [
            (
                "workqueue_unfinished_work_seconds",
                "Seconds the workqueue's running workers have spent so far, summed (work not yet in work_duration).",
                (|(_, total, _): &(QueueLabel, f64, f64)| *total) as fn(&(QueueLabel, f64, f64)) -> f64,
            ),
            (
                "workqueue_longest_running_processor_seconds",
                "Seconds the workqueue's longest running worker has been running.",
                |(_, _, longest)| *longest,
            ),
        ] {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for age in &ages {
                let gauge = ConstGauge::new(pick(age));
                gauge.encode(family.encode_family(&age.0)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use kube::runtime::reflector::store::Writer;

    #[derive(Debug)]
    struct Failed;

    impl std::fmt::Display for Failed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("failed")
        }
    }

    impl std::error::Error for Failed {}

    fn config_map(name: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    fn line<'t>(text: &'t str, prefix: &str) -> &'t str {
        text.lines()
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
    }

    #[test]
    fn an_add_waits_until_a_worker_picks_it_up() {
        let registry = MetricsRegistry::default();
        let queue = WorkqueueMetrics::register(&registry).queue("deployment");
        queue.add("default/web".into());
        queue.add("default/web".into());
        queue.add("default/api".into());
        let text = registry.encode();
        assert_eq!(
            line(&text, "workqueue_adds_total{name=\"deployment\"}"),
            "workqueue_adds_total{name=\"deployment\"} 2"
        );
        assert_eq!(
            line(&text, "workqueue_depth{name=\"deployment\"}"),
            "workqueue_depth{name=\"deployment\"} 2"
        );

        let web = queue.start("default/web");
        let api = queue.start("default/api");
        let text = registry.encode();
        assert!(
            text.contains("workqueue_depth{name=\"deployment\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("workqueue_queue_duration_seconds_count{name=\"deployment\"} 2"),
            "{text}"
        );
        line(
            &text,
            "workqueue_unfinished_work_seconds{name=\"deployment\"}",
        );
        line(
            &text,
            "workqueue_longest_running_processor_seconds{name=\"deployment\"}",
        );

        drop((web, api));
        let text = registry.encode();
        assert!(
            text.contains("workqueue_work_duration_seconds_count{name=\"deployment\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("workqueue_unfinished_work_seconds{name=\"deployment\"} 0.0"),
            "{text}"
        );
        assert!(
            text.contains("workqueue_retries_total{name=\"deployment\"} 0"),
            "{text}"
        );
    }

    #[test]
    fn a_requeue_fired_by_kube_rs_counts_as_an_add_and_an_error_as_a_retry() {
        let registry = MetricsRegistry::default();
        let metrics = WorkqueueMetrics::register(&registry);
        let queue = metrics.queue("job");
        let mut reconcile =
            queue.reconciler(|_: Arc<ConfigMap>, _: Arc<()>| async { Err::<Action, _>(Failed) });
        let error_policy =
            queue.error_policy(|_: Arc<ConfigMap>, _: &Failed, _: Arc<()>| Action::await_change());
        let object = Arc::new(config_map("pi"));
        let result = futures::executor::block_on(reconcile(object.clone(), Arc::new(())));
        let error = result.expect_err("the reconciler fails");
        error_policy(object, &error, Arc::new(()));
        // The same name again is the same queue, as after a restart.
        metrics.queue("job").retry();
        let text = registry.encode();
        for expected in [
            "workqueue_adds_total{name=\"job\"} 1",
            "workqueue_retries_total{name=\"job\"} 2",
            "workqueue_work_duration_seconds_count{name=\"job\"} 1",
            "workqueue_queue_duration_seconds_count{name=\"job\"} 1",
        ] {
            assert!(text.contains(expected), "no {expected} in\n{text}");
        }
    }

    #[tokio::test]
    async fn the_applier_counts_triggers_of_stored_objects_only() {
        let registry = MetricsRegistry::default();
        let queue = WorkqueueMetrics::register(&registry).queue("replicaset");
        let mut writer = Writer::<ConfigMap>::default();
        // The applier waits for a complete store, as a reflector's first list.
        for event in [
            watcher::Event::Init,
            watcher::Event::InitApply(config_map("web")),
            watcher::Event::InitDone,
        ] {
            writer.apply_watcher_event(&event);
        }
        let store = writer.as_reader();
        // Triggers that stay open, as a watch's do: the applier stops
        // early once its triggers end.
        let triggers = futures::stream::iter([
            Ok::<_, Failed>(ObjectRef::new("gone").within("default")),
            Ok(ObjectRef::new("web").within("default")),
        ])
        .chain(futures::stream::pending());
        let mut reconciled = std::pin::pin!(queue
            .applier(
                |_: Arc<ConfigMap>, _: Arc<()>| {
                    Box::pin(async { Ok::<_, Failed>(Action::await_change()) })
                },
                |_, _, _| Action::await_change(),
                Arc::new(()),
                store,
                triggers,
                Config::default(),
            )
            .filter(|result| std::future::ready(result.is_ok())));
        assert!(reconciled.next().await.is_some());
        let text = registry.encode();
        for expected in [
            "workqueue_adds_total{name=\"replicaset\"} 1",
            "workqueue_depth{name=\"replicaset\"} 0",
            "workqueue_work_duration_seconds_count{name=\"replicaset\"} 1",
        ] {
            assert!(text.contains(expected), "no {expected} in\n{text}");
        }
    }
}
