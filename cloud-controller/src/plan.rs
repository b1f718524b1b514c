//! What one reconcile of a Service must do, decided from the Service, the
//! current target nodes and what was last synced to its provider. The loop
//! keeps the last sync in memory only: after a restart there is none, so
//! every Service gets a full ensure (as upstream's first sync), and since
//! the provider's calls are idempotent that is always safe.

use k8s_openapi::api::core::v1::Service;

use crate::nodes::TargetNode;
use crate::service::{action, has_finalizer, missing_node_ports, needs_update, Action, Classes};

/// What the provider was last told for one Service.
#[derive(Debug, Clone, PartialEq)]
pub struct Synced {
    /// The Service as it was when its balancer was last ensured.
    pub service: Service,
    /// The targets it was given then, sorted by name.
    pub targets: Vec<TargetNode>,
}

/// The steps of one reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan<'a> {
    /// Not ours, or in sync.
    Nothing,
    /// Add the finalizer when `add_finalizer`, call `ensure` with the
    /// targets, then patch the status it returns.
    Ensure {
        /// The provider.
        provider: &'a str,
        /// The Service lacks the finalizer: add it before anything is made.
        add_finalizer: bool,
    },
    /// Only the targets moved: call `update`.
    UpdateTargets {
        /// The provider.
        provider: &'a str,
    },
    /// No provider can serve the Service as it is (a port without a
    /// NodePort): report `reason` and retry only with back-off, since
    /// nothing but a change of the Service helps.
    Refuse {
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// Call `delete`, clear the status, then remove the finalizer.
    Cleanup {
        /// The provider.
        provider: &'a str,
    },
}

/// The plan for `service` given the `targets` now and the `last` sync.
pub fn plan<'a>(
    classes: &'a Classes,
    service: &Service,
    targets: &[TargetNode],
    last: Option<&Synced>,
) -> Plan<'a> {
    match action(classes, service) {
        Action::Ignore => Plan::Nothing,
        Action::Cleanup { provider } => Plan::Cleanup { provider },
        Action::Ensure { provider } => {
            if let Some(reason) = missing_node_ports(service) {
                return Plan::Refuse { reason };
            }
            let add_finalizer = !has_finalizer(service);
            match last {
                Some(last) if !add_finalizer && !needs_update(&last.service, service) => {
                    if last.targets.as_slice() == targets {
                        Plan::Nothing
                    } else {
                        Plan::UpdateTargets { provider }
                    }
                }
                _ => Plan::Ensure {
                    provider,
                    add_finalizer,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::FINALIZER;
    use crate::testing::{lb_service, target};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn service(finalizer: bool) -> Service {
        let mut service = lb_service("web", &[(80, 30080)]);
        if finalizer {
            service.metadata.finalizers = Some(vec![FINALIZER.into()]);
        }
        service
    }

    fn node(name: &str) -> TargetNode {
        target(name, "10.0.0.1")
    }

    #[test]
    fn plans_follow_the_service_the_nodes_and_the_last_sync() {
        let classes = Classes {
            default: Some("haproxy".into()),
            providers: vec!["haproxy".into()],
        };
        let p = "haproxy";
        let two = [node("a"), node("b")];
        let synced = Synced {
            service: service(true),
            targets: two.to_vec(),
        };
        let mut moved_port = service(true);
        moved_port.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = 8080;
        let mut deleted = service(true);
        deleted.metadata.deletion_timestamp = Some(Time(Default::default()));
        let mut other_class = service(true);
        other_class.spec.as_mut().unwrap().load_balancer_class = Some("example.com/lb".into());
        let mut no_node_ports = service(false);
        let spec = no_node_ports.spec.as_mut().unwrap();
        spec.allocate_load_balancer_node_ports = Some(false);
        spec.ports.as_mut().unwrap()[0].node_port = None;

        let cases = [
            (
                "new Service",
                service(false),
                None,
                Plan::Ensure {
                    provider: p,
                    add_finalizer: true,
                },
            ),
            (
                "after a restart",
                service(true),
                None,
                Plan::Ensure {
                    provider: p,
                    add_finalizer: false,
                },
            ),
            (
                "finalizer removed by hand",
                service(false),
                Some(&synced),
                Plan::Ensure {
                    provider: p,
                    add_finalizer: true,
                },
            ),
            ("in sync", service(true), Some(&synced), Plan::Nothing),
            (
                "ports changed",
                moved_port,
                Some(&synced),
                Plan::Ensure {
                    provider: p,
                    add_finalizer: false,
                },
            ),
            (
                "deleted",
                deleted,
                Some(&synced),
                Plan::Cleanup { provider: p },
            ),
            ("another controller's", other_class, None, Plan::Nothing),
            (
                "no NodePorts",
                no_node_ports.clone(),
                None,
                Plan::Refuse {
                    reason: missing_node_ports(&no_node_ports).expect("a reason"),
                },
            ),
        ];
        for (case, svc, last, want) in cases {
            assert_eq!(plan(&classes, &svc, &two, last), want, "{case}");
        }
        assert_eq!(
            plan(&classes, &service(true), &two[..1], Some(&synced)),
            Plan::UpdateTargets { provider: p },
            "a node left"
        );
    }
}
