//! TerminateInstances, and the clean-up pass that terminates node instances
//! whose NodeClaim is gone (a crash between launch and recording the
//! machine, a pool deleted while the controller was down).

use std::collections::BTreeSet;
use std::future::Future;

use super::{AwsError, Ec2, Instance, Role, CLAIM_TAG, ROLE_TAG};

impl Ec2 {
    /// Terminates instance `id`; Ok when it is already gone.
    pub async fn terminate(&self, id: &str) -> Result<(), AwsError> {
        let out = self
            .backoff
            .run(AwsError::is_throttling, || async {
                self.client
                    .terminate_instances()
                    .instance_ids(id)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("TerminateInstances", e))
            })
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Terminates every live node instance of the cluster whose claim is not
    /// among those `live_claims` returns, and returns their ids. The claims
    /// are read after the instances, so a claim made (and launched) while
    /// this runs is never mistaken for a missing one.
    pub async fn clean_up<F, Fut, E>(&self, live_claims: F) -> Result<Vec<String>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<BTreeSet<String>, E>>,
        E: From<AwsError>,
    {
        let instances = self.list_tagged(&[(ROLE_TAG, Role::Node.as_str())]).await?;
        let claims = live_claims().await?;
        let mut terminated = Vec::new();
        for instance in orphans(&instances, &claims) {
            tracing::info!(
                instance = %instance.id,
                claim = instance.tag(CLAIM_TAG).unwrap_or("<none>"),
                "terminating an instance whose NodeClaim is gone"
            );
            self.terminate(&instance.id).await?;
            terminated.push(instance.id.clone());
        }
        Ok(terminated)
    }
}

/// The live instances among `instances` whose claim tag names none of `claims`.
pub fn orphans<'a>(instances: &'a [Instance], claims: &BTreeSet<String>) -> Vec<&'a Instance> {
    instances
        .iter()
        .filter(|i| i.live())
        .filter(|i| !i.tag(CLAIM_TAG).is_some_and(|c| claims.contains(c)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str, state: &str, claim: Option<&str>) -> Instance {
        Instance {
            id: id.into(),
            state: state.into(),
            tags: claim
                .map(|c| (CLAIM_TAG.to_owned(), c.to_owned()))
                .into_iter()
                .collect(),
            ..Instance::default()
        }
    }

    #[test]
    fn orphans_are_live_instances_without_a_live_claim() {
        let instances = [
            instance("i-1", "running", Some("kept")),
            instance("i-2", "running", Some("gone")),
            instance("i-3", "pending", None),
            instance("i-4", "terminated", Some("gone")),
            instance("i-5", "shutting-down", None),
        ];
        let claims = BTreeSet::from(["kept".to_owned()]);
        let ids: Vec<&str> = orphans(&instances, &claims)
            .iter()
            .map(|i| i.id.as_str())
            .collect();
        assert_eq!(ids, ["i-2", "i-3"]);
    }
}
