//! Creating and deleting a controller's pods as upstream's `PodControl` does:
//! creations in slow-start batches (1, 2, 4, … stopping at the first
//! failure), every creation and deletion remembered as an expectation and
//! reported as a `SuccessfulCreate`/`FailedCreate`/`SuccessfulDelete`/
//! `FailedDelete` event on the owner. Shared by the ReplicaSet, DaemonSet and
//! Job controllers; it never decides which pods, only carries the decision out.

use std::future::Future;
use std::time::Instant;

use futures::stream::FuturesUnordered;
use futures::StreamExt;

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use kube::ResourceExt;

use super::replicaset::expectations::Expectations;
use berth_observability::events::{EventType, Recorder};

/// What the API said, as upstream shows `err.Error()`: a refusal's own message
/// (`pods "web-x" is forbidden: …`), else the client error.
pub fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

/// The pods API of one owner, with its events and expectations.
pub struct PodControl<'a> {
    /// The pods API of the owner's namespace.
    pub api: Api<Pod>,
    /// Where events go.
    pub recorder: &'a Recorder,
    /// The owner the events are about.
    pub owner: ObjectReference,
    /// The owner's expectations, keyed by its UID.
    pub expectations: &'a Expectations,
}

impl PodControl<'_> {
    fn owner_uid(&self) -> String {
        self.owner.uid.clone().unwrap_or_default()
    }

    async fn event(&self, event_type: EventType, reason: &str, message: &str) {
        self.recorder
            .record_reference(self.owner.clone(), event_type, reason, message)
            .await;
    }

    /// Creates `count` pods made by `make(i)` in slow-start batches; the
    /// first failed batch ends it with that batch's error. Each batch's
    /// `SuccessfulCreate` events are written while the next batch is
    /// created (upstream's recorder never holds a sync up either); all are
    /// written before this returns.
    pub async fn create(
        &self,
        count: usize,
        make: impl Fn(usize) -> Pod,
    ) -> Result<(), kube::Error> {
        let mut events = FuturesUnordered::new();
        let result = async {
            let mut done = 0;
            let mut batch = 1;
            while done < count {
                let size = batch.min(count - done);
                let pods: Vec<Pod> = (done..done + size)
                    .map(|i| {
                        let mut pod = make(i);
                        // The pod continues the owner's trace (scheduler, agent).
                        berth_observability::propagation::inject(&mut pod.metadata.annotations);
                        pod
                    })
                    .collect();
                let params = PostParams::default();
                let creations =
                    futures::future::join_all(pods.iter().map(|p| self.api.create(&params, p)));
                // Earlier batches' events go out meanwhile.
                let results = drive_beside(creations, &mut events).await;
                let mut failed = None;
                let mut names = Vec::new();
                for result in results {
                    match result {
                        Ok(pod) => names.push(pod.name_any()),
                        Err(e) => failed = Some(e),
                    }
                }
                self.expectations.expect_creations(
                    &self.owner_uid(),
                    names.clone(),
                    Instant::now(),
                );
                for name in names {
                    events.push(async move {
                        let message = format!("Created pod: {name}");
                        self.event(EventType::Normal, "SuccessfulCreate", &message)
                            .await;
                    });
                }
                if let Some(e) = failed {
                    return Err(e);
                }
                done += size;
                batch *= 2;
            }
            Ok(())
        }
        .await;
        while events.next().await.is_some() {}
        if let Err(e) = &result {
            self.event(
                EventType::Warning,
                "FailedCreate",
                &format!("Error creating: {}", api_message(e)),
            )
            .await;
        }
        result
    }

    /// Deletes `victims` at once (as upstream's parallel deletions); a pod
    /// already gone is fine, any other failure drops the owner's expectations
    /// and is returned.
    pub async fn delete(&self, victims: &[&Pod]) -> Result<(), kube::Error> {
        let uid = self.owner_uid();
        self.expectations.expect_deletions(
            &uid,
            victims.iter().filter_map(|p| p.uid()),
            Instant::now(),
        );
        let deletions = victims.iter().map(|pod| async move {
            let name = pod.name_any();
            let result = self.api.delete(&name, &DeleteParams::default()).await;
            (name, result)
        });
        let mut failed = None;
        for (name, result) in futures::future::join_all(deletions).await {
            match result {
                Ok(_) => {
                    self.event(
                        EventType::Normal,
                        "SuccessfulDelete",
                        &format!("Deleted pod: {name}"),
                    )
                    .await;
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    self.event(
                        EventType::Warning,
                        "FailedDelete",
                        &format!("Error deleting: {}", api_message(&e)),
                    )
                    .await;
                    failed = Some(e);
                }
            }
        }
        if let Some(e) = failed {
            self.expectations.forget(&uid);
            return Err(e);
        }
        Ok(())
    }
}

/// Awaits `work` while also polling `beside` (futures that need no result),
/// so they progress together on one task.
async fn drive_beside<T, F: Future<Output = ()>>(
    work: impl Future<Output = T>,
    beside: &mut FuturesUnordered<F>,
) -> T {
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            biased;
            output = &mut work => return output,
            Some(()) = beside.next(), if !beside.is_empty() => {}
        }
    }
}
