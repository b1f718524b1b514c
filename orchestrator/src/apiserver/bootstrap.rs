//! The objects every cluster has, created or reconciled add-only at each
//! start: namespaces, the `kubernetes` and DNS Services, the default
//! StorageClass, APIServices and flow-control objects, and RBAC defaults.

use serde_json::{json, Value};

use super::allocator::Allocator;
use super::catalog::{self, Serving};
use super::default_service_cidr;
use super::errors::ApiError;
use super::objects::{Objects, WriteOptions};

/// Creates what every cluster has: `default`, `kube-system`, `kube-public`,
/// `kube-node-lease`, the `kubernetes` Service, and the default RBAC roles and
/// bindings (reconciled add-only, as upstream's API server does at each start).
pub(super) async fn bootstrap(objects: &Objects, allocator: &Allocator) -> Result<(), ApiError> {
    bootstrap_namespaces_and_service(objects, allocator).await?;
    use berth_api::rbac::bootstrap as defaults;
    let rbac =
        |plural| catalog::builtin(berth_api::rbac::GROUP, "v1", plural).expect("RBAC served");
    for (plural, expected, is_role) in [
        ("clusterroles", defaults::cluster_roles(), true),
        (
            "clusterrolebindings",
            defaults::cluster_role_bindings(),
            false,
        ),
        ("roles", defaults::roles(), true),
        ("rolebindings", defaults::role_bindings(), false),
    ] {
        let r = rbac(plural);
        for object in expected {
            reconcile_default(objects, r, &object, is_role).await?;
        }
    }
    Ok(())
}

/// Brings one default RBAC object up to date with berth_api's reconciliation.
pub(super) async fn reconcile_default(
    objects: &Objects,
    r: &catalog::ResourceInfo,
    expected: &Value,
    is_role: bool,
) -> Result<(), ApiError> {
    use berth_api::rbac::reconciliation::{reconcile_binding, reconcile_role, Reconciled};
    let ns = expected
        .pointer("/metadata/namespace")
        .and_then(Value::as_str);
    let name = expected
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let existing = match objects.get(r, ns, name).await {
        Ok(existing) => Some(existing),
        Err(ApiError::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    let decision = if is_role {
        reconcile_role(existing.as_ref(), expected)
    } else {
        reconcile_binding(existing.as_ref(), expected)
    };
    let opts = WriteOptions::default();
    let written = match decision {
        Reconciled::Unchanged | Reconciled::Protected => return Ok(()),
        Reconciled::Create(object) => objects.create(r, ns, object, &opts).await,
        Reconciled::Update(object) => objects.update(r, ns, name, object, None, &opts).await,
        Reconciled::Recreate(object) => {
            match objects.delete(r, ns, name, &Default::default()).await {
                Ok(_) | Err(ApiError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
            objects.create(r, ns, object, &opts).await
        }
    };
    match written {
        Ok(_) | Err(ApiError::AlreadyExists(_)) | Err(ApiError::Conflict(..)) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn bootstrap_namespaces_and_service(
    objects: &Objects,
    allocator: &Allocator,
) -> Result<(), ApiError> {
    let namespaces = catalog::builtin("", "v1", "namespaces").expect("namespaces served");
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        match objects
            .create(namespaces, None, ns, &WriteOptions::default())
            .await
        {
            Ok(_) | Err(ApiError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let classes = catalog::builtin("scheduling.k8s.io", "v1", "priorityclasses")
        .expect("priority classes served");
    for class in berth_api::kinds::scheduling::priorityclass::system_classes() {
        match objects
            .create(classes, None, class, &WriteOptions::default())
            .await
        {
            Ok(_) | Err(ApiError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    bootstrap_api_services(objects).await?;
    bootstrap_flow_control(objects).await?;
    bootstrap_storage_class(objects).await?;
    allocator.migrate_legacy_claims().await?;
    allocator.reserve_api_service_ip().await?;
    default_service_cidr::ensure(objects, &allocator.service_cidr().to_string()).await?;
    let ip = allocator.api_service_ip().to_string();
    let svc = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": ip, "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
    });
    create_reserved_service(objects, "default", "kubernetes", svc).await?;
    if allocator.service_range_size() < 16 {
        tracing::warn!("the service range has no tenth address; no kube-dns Service is created");
        return Ok(());
    }
    allocator.reserve_dns_service_ip().await?;
    create_reserved_service(objects, "kube-system", "kube-dns", dns_service(allocator)).await
}

/// Creates the `local-path` StorageClass (the default) when it is missing;
/// a class the user changed or replaced is left as it is.
async fn bootstrap_storage_class(objects: &Objects) -> Result<(), ApiError> {
    let classes =
        catalog::builtin("storage.k8s.io", "v1", "storageclasses").expect("storage classes served");
    let class = crate::controllers::persistent_volume::local_path::default_class();
    match objects
        .create(classes, None, class, &WriteOptions::default())
        .await
    {
        Ok(_) | Err(ApiError::AlreadyExists(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The cluster DNS Service, as upstream installs it (selectorless here: each
/// node's agent keeps its own endpoint, and `internalTrafficPolicy: Local`
/// keeps every pod's queries on its own node).
fn dns_service(allocator: &Allocator) -> serde_json::Value {
    let ip = allocator.dns_service_ip().to_string();
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system",
                     "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS",
                                "kubernetes.io/cluster-service": "true"}},
        "spec": {"clusterIP": ip, "clusterIPs": [ip], "internalTrafficPolicy": "Local",
                 "ports": [
                     {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                     {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                     {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]},
    })
}

/// Creates Service `namespace/name` unless it exists; its ClusterIP was
/// reserved beforehand, so the create must not allocate it again.
async fn create_reserved_service(
    objects: &Objects,
    namespace: &str,
    name: &str,
    svc: serde_json::Value,
) -> Result<(), ApiError> {
    let services = catalog::builtin("", "v1", "services").expect("services served");
    match objects.get(services, Some(namespace), name).await {
        Ok(_) => Ok(()),
        Err(ApiError::NotFound(_)) => {
            match objects
                .create_preallocated(services, Some(namespace), svc)
                .await
            {
                Ok(_) | Err(ApiError::AlreadyExists(_)) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Creates the `Local` APIService of every group version the built-in catalog
/// serves (kube-aggregator's autoregistration), Available from the start;
/// not for the resource metrics, whose APIService belongs to the add-on.
async fn bootstrap_api_services(objects: &Objects) -> Result<(), ApiError> {
    use berth_api::kinds::apiregistration::defaults;
    let r = catalog::builtin("apiregistration.k8s.io", "v1", "apiservices")
        .expect("API services served");
    let now = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .to_string();
    let mut seen = std::collections::BTreeSet::new();
    for info in catalog::builtins() {
        // metrics.k8s.io is an add-on's group upstream: its APIService is the
        // add-on's (metrics-server's chart creates it), never a Local one.
        if info.serving == Serving::ResourceMetrics
            || !seen.insert((info.group.as_str(), info.version.as_str()))
        {
            continue;
        }
        let service = defaults::local_api_service(&info.group, &info.version, &now);
        let name = defaults::name(&info.group, &info.version);
        match objects
            .create(r, None, service.clone(), &WriteOptions::default())
            .await
        {
            Ok(_) => {
                objects
                    .update(
                        r,
                        None,
                        &name,
                        service,
                        Some("status"),
                        &WriteOptions::default(),
                    )
                    .await?;
            }
            Err(ApiError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Creates upstream's default FlowSchemas and PriorityLevelConfigurations
/// (stored for tools that read them; berth does not enforce them).
async fn bootstrap_flow_control(objects: &Objects) -> Result<(), ApiError> {
    use berth_api::kinds::flowcontrol::defaults;
    let levels = catalog::builtin(
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "prioritylevelconfigurations",
    )
    .expect("priority levels served");
    for level in defaults::priority_levels() {
        match objects
            .create(levels, None, level, &WriteOptions::default())
            .await
        {
            Ok(_) | Err(ApiError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let schemas = catalog::builtin("flowcontrol.apiserver.k8s.io", "v1", "flowschemas")
        .expect("flow schemas served");
    let now = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .to_string();
    for schema in defaults::flow_schemas() {
        let name = schema
            .pointer("/metadata/name")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut with_status = schema.clone();
        with_status["status"] = defaults::found_status(&schema, &now);
        match objects
            .create(schemas, None, schema, &WriteOptions::default())
            .await
        {
            Ok(_) => {
                objects
                    .update(
                        schemas,
                        None,
                        &name,
                        with_status,
                        Some("status"),
                        &WriteOptions::default(),
                    )
                    .await?;
            }
            Err(ApiError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
