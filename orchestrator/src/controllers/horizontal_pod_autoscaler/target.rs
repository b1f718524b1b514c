//! The HPA's scale target through the API: its resource found by discovery
//! from `scaleTargetRef` (Deployments, ReplicaSets, StatefulSets,
//! ReplicationControllers, custom resources with a scale subresource), and
//! its `/scale` read and written. Thin I/O; errors carry upstream's texts.

use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::autoscaling::v2::CrossVersionObjectReference;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};

use super::api_message;

/// A scale target resolved to its resource.
pub struct Target {
    api: Api<DynamicObject>,
    /// The target's name.
    pub name: String,
}

/// The group and version of an `apiVersion` (`apps/v1`, or `v1` for core).
pub fn group_version(api_version: &str) -> Result<(String, String), String> {
    let parts: Vec<&str> = api_version.split('/').collect();
    match parts.as_slice() {
        [version] if !version.is_empty() => Ok((String::new(), (*version).to_owned())),
        [group, version] if !group.is_empty() && !version.is_empty() => {
            Ok(((*group).to_owned(), (*version).to_owned()))
        }
        _ => Err(format!("unexpected GroupVersion string: {api_version}")),
    }
}

impl Target {
    /// Resolves `reference` in `namespace` through discovery.
    pub async fn resolve(
        client: &kube::Client,
        namespace: &str,
        reference: &CrossVersionObjectReference,
    ) -> Result<Self, String> {
        let (group, version) = group_version(reference.api_version.as_deref().unwrap_or_default())?;
        let gvk = GroupVersionKind::gvk(&group, &version, &reference.kind);
        let resource: ApiResource = kube::discovery::pinned_kind(client, &gvk)
            .await
            .map(|(resource, _)| resource)
            .map_err(|_| {
                format!(
                    "no matches for kind \"{}\" in group \"{}\"",
                    reference.kind, group
                )
            })?;
        Ok(Self {
            api: Api::namespaced_with(client.clone(), namespace, &resource),
            name: reference.name.clone(),
        })
    }

    /// The target's current Scale.
    pub async fn scale(&self) -> Result<Scale, String> {
        self.api
            .get_scale(&self.name)
            .await
            .map_err(|e| api_message(&e))
    }

    /// Sets the target's replicas through `/scale`, guarded by the
    /// resourceVersion of the Scale read (a conflict waits for the next pass).
    pub async fn set_replicas(&self, mut scale: Scale, replicas: i32) -> Result<(), String> {
        scale.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
        scale.status = None;
        self.api
            .replace_scale(&self.name, &PostParams::default(), &scale)
            .await
            .map(|_| ())
            .map_err(|e| api_message(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_split_into_group_and_version() {
        let cases = [
            ("apps/v1", Ok(("apps", "v1"))),
            ("v1", Ok(("", "v1"))),
            ("a/b/c", Err(())),
            ("", Err(())),
        ];
        for (text, want) in cases {
            let got = group_version(text);
            match want {
                Ok((g, v)) => assert_eq!(got, Ok((g.to_owned(), v.to_owned())), "{text}"),
                Err(()) => assert!(got.is_err(), "{text}"),
            }
        }
    }
}
