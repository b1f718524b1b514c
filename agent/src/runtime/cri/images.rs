//! Images for containers, as their pull policy wants them: present ones
//! are used, missing (or `Always`) ones pulled with the pod's pull-secret
//! credentials for that registry, failures backed off per image and told as
//! kubelet tells them (`ErrImagePull`, `ImagePullBackOff`, `ErrImageNeverPull`).

use std::time::Instant;

use k8s_cri::v1 as cri;

use super::CriRuntime;
use crate::lock;
use crate::runtime::{ContainerConfig, PodSandboxConfig, PullPolicy};

impl CriRuntime {
    /// Makes sure `container`'s image is present as its pull policy wants;
    /// `Err` carries the waiting reason and message when it is not.
    pub(super) async fn ensure_image(
        &self,
        pod: &PodSandboxConfig,
        container: &ContainerConfig,
    ) -> Result<(), (&'static str, String)> {
        let spec = cri::ImageSpec {
            image: container.image.clone(),
            ..cri::ImageSpec::default()
        };
        if container.pull_policy != PullPolicy::Always {
            let present = self
                .images
                .clone()
                .image_status(cri::ImageStatusRequest {
                    image: Some(spec.clone()),
                    verbose: false,
                })
                .await
                .map_err(|s| ("ErrImagePull", s.message().to_owned()))?
                .into_inner()
                .image
                .is_some();
            if present {
                self.event(
                    pod,
                    container,
                    false,
                    "Pulled",
                    format!(
                        "Container image \"{}\" already present on machine",
                        container.image
                    ),
                );
                return Ok(());
            }
            if container.pull_policy == PullPolicy::Never {
                return Err((
                    "ErrImageNeverPull",
                    format!(
                        "Container image \"{}\" is not present with pull policy of Never",
                        container.image
                    ),
                ));
            }
        }
        let key = container.image.clone();
        let now = Instant::now();
        let in_backoff = {
            let mut memo = lock(&self.memo);
            let failed_at = memo.pull_failed_at.get(&key).copied();
            failed_at.and_then(|at| memo.pulls.waiting(&key, at, now))
        };
        if in_backoff.is_some() {
            self.event(
                pod,
                container,
                false,
                "BackOff",
                format!("Back-off pulling image \"{}\"", container.image),
            );
            return Err((
                "ImagePullBackOff",
                format!("Back-off pulling image \"{}\"", container.image),
            ));
        }
        self.event(
            pod,
            container,
            false,
            "Pulling",
            format!("Pulling image \"{}\"", container.image),
        );
        let pull_started = Instant::now();
        let pulled = self
            .images
            .clone()
            .pull_image(cri::PullImageRequest {
                image: Some(spec),
                auth: pull_auth(pod, &container.image),
                sandbox_config: None,
            })
            .await;
        match &pulled {
            Ok(_) => self.event(
                pod,
                container,
                false,
                "Pulled",
                format!(
                    "Successfully pulled image \"{}\" in {:.3}s",
                    container.image,
                    pull_started.elapsed().as_secs_f64()
                ),
            ),
            Err(status) => self.event(
                pod,
                container,
                true,
                "Failed",
                format!(
                    "Failed to pull image \"{}\": {}",
                    container.image,
                    status.message()
                ),
            ),
        }
        let mut memo = lock(&self.memo);
        match pulled {
            Ok(_) => {
                memo.pulls.reset(&key);
                memo.pull_failed_at.remove(&key);
                Ok(())
            }
            Err(status) => {
                memo.pulls.next(&key, now);
                memo.pull_failed_at.insert(key, Instant::now());
                Err((
                    "ErrImagePull",
                    format!(
                        "failed to pull image \"{}\": {}",
                        container.image,
                        status.message()
                    ),
                ))
            }
        }
    }
}

/// The credentials of the pod's pull secrets for the registry `image` is on.
fn pull_auth(pod: &PodSandboxConfig, image: &str) -> Option<cri::AuthConfig> {
    let registry = crate::pods::spec::image_registry(image);
    pod.registry_auths
        .iter()
        .find(|a| a.server == registry)
        .map(|a| cri::AuthConfig {
            username: a.username.clone(),
            password: a.password.clone(),
            auth: a.auth.clone(),
            server_address: a.server.clone(),
            ..cri::AuthConfig::default()
        })
}
