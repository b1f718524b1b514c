//! Leader election through a `coordination.k8s.io/v1` Lease, as client-go's
//! `leaderelection` does it: of several copies of a component, the one that
//! holds the Lease acts; it renews the Lease every few seconds and stops
//! acting as soon as a renewal fails. Expiry is judged by how long this
//! process has seen the same record unchanged, so clocks need not agree.
//! Used by the scheduler and the controller-manager; it never acts itself.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use berth_observability::metrics::serve;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;

/// Why leader election could not go on.
#[derive(Debug, thiserror::Error)]
pub enum LeaderElectionError {
    /// The Lease could not be read or written.
    #[error("lease {namespace}/{name}: {source}")]
    Api {
        /// The Lease's namespace.
        namespace: String,
        /// The Lease's name.
        name: String,
        /// The client error.
        source: kube::Error,
    },
}

/// Where the Lease lives, who we are, and the timings (client-go's defaults
/// are 15 s / 10 s / 2 s; berth renews every 5 s).
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// The Lease's namespace (`kube-system`).
    pub namespace: String,
    /// The Lease's name (`berth-scheduler`).
    pub name: String,
    /// This process's holder identity; must be unique per process.
    pub identity: String,
    /// How long a Lease nobody renews stays held (`leaseDurationSeconds`).
    pub lease_duration: Duration,
    /// How often the leader renews.
    pub renew_period: Duration,
    /// How long the leader keeps retrying a failed renewal before it gives up leading.
    pub renew_deadline: Duration,
    /// How often a follower tries to acquire.
    pub retry_period: Duration,
    /// Annotations the holder keeps on the Lease: the address it serves
    /// `/metrics` on, so scrape-target discovery finds the leader.
    pub annotations: BTreeMap<String, String>,
}

impl LeaseConfig {
    /// A Lease with berth's timings: 15 s duration, renewed every 5 s, given
    /// up 10 s after the last successful renewal, acquisition tried every 2 s.
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        LeaseConfig {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            lease_duration: Duration::from_secs(15),
            renew_period: Duration::from_secs(5),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            annotations: metrics_annotation(),
        }
    }
}

/// The Lease annotation naming where this process serves its metrics, when
/// it does (`--metrics-bind-address`).
fn metrics_annotation() -> BTreeMap<String, String> {
    serve::advertised_address()
        .map(|address| {
            BTreeMap::from([(
                serve::METRICS_ADDRESS_ANNOTATION.to_owned(),
                address.to_owned(),
            )])
        })
        .unwrap_or_default()
}

/// Puts `ours` on a Lease this process takes or renews, and drops a metrics
/// address a previous holder left that this process does not serve, so the
/// Lease never points scrapers at a process that no longer leads.
fn stamp_annotations(metadata: &mut ObjectMeta, ours: &BTreeMap<String, String>) {
    let annotations = metadata.annotations.get_or_insert_with(Default::default);
    annotations.remove(serve::METRICS_ADDRESS_ANNOTATION);
    annotations.extend(ours.iter().map(|(k, v)| (k.clone(), v.clone())));
    if annotations.is_empty() {
        metadata.annotations = None;
    }
}

/// What to do with the Lease as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No Lease yet: create it, held by us.
    Create,
    /// Held by nobody, or by someone whose record expired: take it over.
    Acquire,
    /// We hold it: renew it.
    Renew,
    /// Someone else holds it and renews it.
    HeldByOther(String),
}

/// Decides from the Lease's spec and how long this process has seen that
/// exact record unchanged (`unchanged_for`).
pub fn decide(spec: Option<&LeaseSpec>, identity: &str, unchanged_for: Duration) -> Decision {
    let Some(spec) = spec else {
        return Decision::Create;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder == identity {
        return Decision::Renew;
    }
    if holder.is_empty() {
        return Decision::Acquire;
    }
    let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(15).max(1) as u64);
    if unchanged_for >= duration {
        Decision::Acquire
    } else {
        Decision::HeldByOther(holder.to_owned())
    }
}

/// One participant in the election.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    /// The record last seen (holder and renew time) and when it was first seen.
    observed: Option<(String, Instant)>,
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

impl LeaderElector {
    /// An elector for `config` over `client`.
    pub fn new(client: kube::Client, config: LeaseConfig) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
        }
    }

    fn error(&self, source: kube::Error) -> LeaderElectionError {
        LeaderElectionError::Api {
            namespace: self.config.namespace.clone(),
            name: self.config.name.clone(),
            source,
        }
    }

    /// Tries once to acquire or renew; true when we hold the Lease afterwards.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, LeaderElectionError> {
        let current = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| self.error(e))?;
        let spec = current.as_ref().and_then(|l| l.spec.as_ref());
        let record = spec
            .map(|s| {
                format!(
                    "{:?}/{:?}",
                    s.holder_identity,
                    s.renew_time.as_ref().map(|t| t.0)
                )
            })
            .unwrap_or_default();
        let unchanged_for = match &self.observed {
            Some((seen, since)) if *seen == record => since.elapsed(),
            _ => {
                self.observed = Some((record, Instant::now()));
                Duration::ZERO
            }
        };
        let decision = decide(spec, &self.config.identity, unchanged_for);
        let duration_seconds = self.config.lease_duration.as_secs().max(1) as i32;
        let result = match decision {
            Decision::HeldByOther(_) => return Ok(false),
            Decision::Create => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        annotations: (!self.config.annotations.is_empty())
                            .then(|| self.config.annotations.clone()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.config.identity.clone()),
                        lease_duration_seconds: Some(duration_seconds),
                        acquire_time: Some(now()),
                        renew_time: Some(now()),
                        lease_transitions: Some(0),
                        ..Default::default()
                    }),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Decision::Acquire | Decision::Renew => {
                let mut lease = current.expect("a lease to renew or acquire");
                let spec = lease.spec.get_or_insert_with(Default::default);
                if decision == Decision::Acquire {
                    spec.acquire_time = Some(now());
                    spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                }
                spec.holder_identity = Some(self.config.identity.clone());
                spec.lease_duration_seconds = Some(duration_seconds);
                spec.renew_time = Some(now());
                lease.metadata.managed_fields = None;
                stamp_annotations(&mut lease.metadata, &self.config.annotations);
                self.api
                    .replace(&self.config.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match result {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Gives the Lease up (holder cleared) so another copy takes over at once.
    pub async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now());
        lease.metadata.managed_fields = None;
        if let Err(e) = self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(error = %e, lease = %self.config.name, "could not release the lease");
        }
    }

    /// Runs `lead` whenever this process holds the Lease, until `cancel`
    /// fires or `lead` returns. `lead` gets a token that is cancelled when
    /// leadership is lost; it must stop acting then. After a loss the
    /// elector goes back to waiting for the Lease.
    pub async fn run<F, Fut, E>(mut self, cancel: CancellationToken, mut lead: F) -> Result<(), E>
    where
        F: FnMut(CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        loop {
            let mut waiting_logged = false;
            loop {
                match self.try_acquire_or_renew().await {
                    Ok(true) => break,
                    Ok(false) if !waiting_logged => {
                        tracing::info!(lease = %self.config.name, identity = %self.config.identity, "waiting to become leader");
                        waiting_logged = true;
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "leader election"),
                }
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(self.config.retry_period) => {}
                }
            }
            tracing::info!(lease = %self.config.name, identity = %self.config.identity, "became leader");
            let leading = cancel.child_token();
            let work = lead(leading.clone());
            tokio::pin!(work);
            let mut last_renewal = Instant::now();
            let mut next = self.config.renew_period;
            let finished = loop {
                tokio::select! {
                    result = &mut work => break Some(result),
                    _ = tokio::time::sleep(next) => {}
                }
                match self.try_acquire_or_renew().await {
                    Ok(true) => {
                        last_renewal = Instant::now();
                        next = self.config.renew_period;
                    }
                    Ok(false) => {
                        tracing::warn!(lease = %self.config.name, "lease taken by another holder; stopping");
                        break None;
                    }
                    Err(e) if last_renewal.elapsed() < self.config.renew_deadline => {
                        tracing::warn!(error = %e, "lease renewal failed; retrying");
                        next = self.config.retry_period;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "lease renewal failed past the deadline; stopping");
                        break None;
                    }
                }
            };
            match finished {
                Some(result) => {
                    self.release().await;
                    return result;
                }
                None => {
                    leading.cancel();
                    if let Err(_e) = work.await {
                        tracing::warn!("leader work ended with an error after losing the lease");
                    }
                    if cancel.is_cancelled() {
                        return Ok(());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: Some(15),
            ..Default::default()
        }
    }

    #[test]
    fn a_new_holder_replaces_or_drops_the_previous_holders_metrics_address() {
        let left_behind = || ObjectMeta {
            annotations: Some(BTreeMap::from([
                (
                    serve::METRICS_ADDRESS_ANNOTATION.to_owned(),
                    "10.0.0.1:10259".to_owned(),
                ),
                ("team".to_owned(), "infra".to_owned()),
            ])),
            ..Default::default()
        };
        let mut metadata = left_behind();
        stamp_annotations(&mut metadata, &BTreeMap::new());
        assert_eq!(
            metadata.annotations,
            Some(BTreeMap::from([("team".to_owned(), "infra".to_owned())]))
        );
        let mut metadata = left_behind();
        let ours = BTreeMap::from([(
            serve::METRICS_ADDRESS_ANNOTATION.to_owned(),
            "10.0.0.2:10259".to_owned(),
        )]);
        stamp_annotations(&mut metadata, &ours);
        assert_eq!(
            metadata.annotations.unwrap()[serve::METRICS_ADDRESS_ANNOTATION],
            "10.0.0.2:10259"
        );
        let mut bare = ObjectMeta::default();
        stamp_annotations(&mut bare, &BTreeMap::new());
        assert_eq!(bare.annotations, None);
    }

    #[test]
    fn decisions_follow_client_go() {
        let s = Duration::from_secs;
        let cases = [
            ("absent", None, s(0), Decision::Create),
            ("ours", Some(spec(Some("me"))), s(100), Decision::Renew),
            ("released", Some(spec(None)), s(0), Decision::Acquire),
            (
                "released as empty",
                Some(spec(Some(""))),
                s(0),
                Decision::Acquire,
            ),
            (
                "held and fresh",
                Some(spec(Some("other"))),
                s(14),
                Decision::HeldByOther("other".into()),
            ),
            (
                "held but expired",
                Some(spec(Some("other"))),
                s(15),
                Decision::Acquire,
            ),
        ];
        for (name, lease, unchanged, want) in cases {
            assert_eq!(decide(lease.as_ref(), "me", unchanged), want, "{name}");
        }
    }
}
