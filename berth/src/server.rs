//! `berth server`: the API server on a data directory, with its PKI and
//! `admin.kubeconfig` created on first start and reused afterwards.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use berth_observability::metrics::MetricsRegistry;
use berth_orchestrator::apiserver::allocator::Cidr;
use berth_orchestrator::apiserver::{ApiServer, ApiServerConfig, DefaultTolerationSeconds};
use berth_orchestrator::controllers;
use berth_orchestrator::scheduler;
use berth_orchestrator::store::encryption::{self, EncryptedStore};
use berth_orchestrator::store::etcd::EtcdStore;
use berth_orchestrator::store::sqlite::SqliteStore;
use berth_orchestrator::store::{compactor, Store};
use berth_pki::Pki;
use clap::Args;
use tokio_util::sync::CancellationToken;

mod etcd_tls;

/// Flags of `berth server`.
#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Directory for the database, certificates and admin.kubeconfig.
    #[arg(long, env = "BERTH_DATA_DIR", default_value = "/var/lib/berth/server")]
    data_dir: PathBuf,
    /// Address the HTTPS API listens on.
    #[arg(long, env = "BERTH_LISTEN", default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Address published in the `kubernetes` Service's endpoints, for pods and
    /// other machines (default: the listen address).
    #[arg(long, env = "BERTH_ADVERTISE_ADDRESS")]
    advertise_address: Option<std::net::IpAddr>,
    /// State store: `sqlite` (embedded) or `etcd://HOST:PORT[,HOST:PORT…]`.
    #[arg(long, env = "BERTH_DATASTORE", default_value = "sqlite")]
    datastore: String,
    /// An `apiserver.config.k8s.io/v1` EncryptionConfiguration (YAML or
    /// JSON): which resources are stored encrypted, and with which keys
    /// (kube-apiserver's flag). Read once at start; a bad file stops the server.
    #[arg(long, env = "BERTH_ENCRYPTION_PROVIDER_CONFIG")]
    encryption_provider_config: Option<PathBuf>,
    /// Range Service ClusterIPs are allocated from.
    #[arg(long, env = "BERTH_SERVICE_CIDR", default_value = "10.43.0.0/16")]
    service_cidr: String,
    /// How often store history older than one interval is compacted (`300s`, `5m`, `1h`).
    #[arg(long, env = "BERTH_COMPACTION_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    compaction_interval: std::time::Duration,
    /// In-process components not to run (`controllers`, `scheduler`, `nodepool`, `cloud-controller`), e.g. when they run as their own processes.
    #[arg(long, value_delimiter = ',', value_parser = ["controllers", "scheduler", "nodepool", "cloud-controller"])]
    disable: Vec<String>,
    /// Extra names or addresses the serving certificate is valid for.
    #[arg(long = "tls-san", value_delimiter = ',')]
    tls_san: Vec<String>,
    /// Range node IPAM hands each Node's spec.podCIDR out of.
    #[arg(long, env = "BERTH_CLUSTER_CIDR", default_value = "10.42.0.0/16")]
    cluster_cidr: String,
    /// Prefix length of each Node's podCIDR inside --cluster-cidr.
    #[arg(long, env = "BERTH_NODE_CIDR_MASK_SIZE", default_value_t = 24)]
    node_cidr_mask_size: u8,
    /// How long a node may miss Lease heartbeats before it is marked Unknown and
    /// tainted unreachable (upstream 40s; 20s so, with the 30s default
    /// tolerations, a lost node's pods are replaced within about a minute).
    #[arg(long, env = "BERTH_NODE_MONITOR_GRACE_PERIOD", default_value = "20s", value_parser = parse_duration)]
    node_monitor_grace_period: std::time::Duration,
    /// How often the horizontal pod autoscaler evaluates every HPA (upstream's
    /// `--horizontal-pod-autoscaler-sync-period`).
    #[arg(long, env = "BERTH_HORIZONTAL_POD_AUTOSCALER_SYNC_PERIOD", default_value = "15s", value_parser = parse_duration)]
    horizontal_pod_autoscaler_sync_period: std::time::Duration,
    /// How long an HPA without a `behavior` keeps the highest recent
    /// recommendation before it scales down (upstream's
    /// `--horizontal-pod-autoscaler-downscale-stabilization`).
    #[arg(long, env = "BERTH_HORIZONTAL_POD_AUTOSCALER_DOWNSCALE_STABILIZATION", default_value = "5m", value_parser = parse_duration)]
    horizontal_pod_autoscaler_downscale_stabilization: std::time::Duration,
    /// tolerationSeconds of the unreachable:NoExecute toleration new pods get (upstream 300).
    #[arg(
        long,
        env = "BERTH_DEFAULT_UNREACHABLE_TOLERATION_SECONDS",
        default_value_t = 30
    )]
    default_unreachable_toleration_seconds: i64,
    /// tolerationSeconds of the not-ready:NoExecute toleration new pods get (upstream 300).
    #[arg(
        long,
        env = "BERTH_DEFAULT_NOT_READY_TOLERATION_SECONDS",
        default_value_t = 30
    )]
    default_not_ready_toleration_seconds: i64,
    /// A `PodSecurityConfiguration` (YAML or JSON) with Pod Security's
    /// defaults for unlabelled namespaces and its exempt namespaces and
    /// RuntimeClasses; without it every namespace defaults to privileged.
    #[arg(long, env = "BERTH_POD_SECURITY_CONFIG")]
    pod_security_config: Option<std::path::PathBuf>,
    /// The longest lifetime of the kubelet certificates the csrsigning
    /// controller issues (kube-controller-manager's flag; upstream 8760h).
    #[arg(long, env = "BERTH_CLUSTER_SIGNING_DURATION", default_value = "8760h", value_parser = parse_duration)]
    cluster_signing_duration: std::time::Duration,
    /// TLS to etcd (HA masters).
    #[command(flatten)]
    etcd_tls: etcd_tls::EtcdTlsFlags,
    /// Run the in-process controllers only while this server holds the
    /// `kube-system/berth-controller-manager` Lease (HA masters; the scheduler
    /// always elects through its own Lease).
    #[arg(long, env = "BERTH_LEADER_ELECT")]
    leader_elect: bool,
    /// The NodePool controller's `ssh` provider (on with --nodepool-ssh-key-file;
    /// boxed: rarely set, and it would double the size of `berth`'s command enum).
    #[command(flatten)]
    nodepool_ssh: Box<crate::nodepool::ssh_settings::SshProviderFlags>,
    /// The NodePool controller's `aws` provider (on with --aws-cluster; boxed likewise).
    #[command(flatten)]
    aws: Box<crate::nodepool::AwsFlags>,
    /// How long after launch a NodePool machine's node may take to register
    /// before its claim and machine are removed and replaced.
    #[arg(long, env = "BERTH_NODEPOOL_REGISTRATION_TIMEOUT", default_value = "15m", value_parser = parse_duration)]
    nodepool_registration_timeout: std::time::Duration,
    /// The service controller's load-balancer providers, as for `berth
    /// cloud-controller` (boxed like the NodePool flags).
    #[command(flatten)]
    cloud: Box<crate::cloud_controller::ProviderFlags>,
}

/// The controllers' configuration from the flags.
fn controllers_config(args: &ServerArgs) -> anyhow::Result<controllers::ControllersConfig> {
    let cluster = args
        .cluster_cidr
        .parse()
        .map_err(|e| anyhow::anyhow!("--cluster-cidr: {e}"))?;
    let node_cidrs =
        controllers::node_ipam::NodeCidrAllocator::new(cluster, args.node_cidr_mask_size)
            .map_err(|e| anyhow::anyhow!("--node-cidr-mask-size: {e}"))?;
    Ok(controllers::ControllersConfig {
        node_cidrs,
        node_lifecycle: controllers::node_lifecycle::NodeLifecycleConfig {
            grace_period: args.node_monitor_grace_period,
        },
        csr_signing: None,
        horizontal_pod_autoscaler:
            controllers::horizontal_pod_autoscaler::HorizontalPodAutoscalerConfig {
                sync_period: args.horizontal_pod_autoscaler_sync_period,
                downscale_stabilization: args.horizontal_pod_autoscaler_downscale_stabilization,
                ..Default::default()
            },
    })
}

/// The service controller's providers, or None when it is disabled or,
/// as upstream's controller-manager without a cloud provider, when no
/// provider is configured (LoadBalancer Services then stay pending).
async fn cloud_setup(args: &ServerArgs) -> anyhow::Result<Option<crate::cloud_controller::Setup>> {
    if args.disable.iter().any(|d| d == "cloud-controller") {
        return Ok(None);
    }
    let setup = args.cloud.setup(args.aws.account()).await?;
    if setup.is_none() {
        tracing::info!("no load-balancer provider configured (--haproxy-config or --aws-cluster): the service controller does not run and LoadBalancer Services stay pending");
    }
    Ok(setup)
}

/// The csrsigning controller's CA: the cluster CA under `data_dir/tls`.
fn signing_config(
    pki: &Pki,
    data_dir: &std::path::Path,
    duration: std::time::Duration,
) -> anyhow::Result<controllers::certificates::signer::SigningConfig> {
    let key = data_dir.join("tls").join("ca.key");
    let ca_key_pem = std::fs::read_to_string(&key)
        .with_context(|| format!("reading the cluster CA key {}", key.display()))?;
    Ok(controllers::certificates::signer::SigningConfig {
        ca_cert_pem: pki.ca_pem.clone(),
        ca_key_pem,
        duration,
    })
}

/// The store wrapped to encrypt what --encryption-provider-config names, or
/// as it is without the flag.
fn encrypt_at_rest(
    store: Arc<dyn Store>,
    rules: Option<encryption::rules::EncryptionRules>,
) -> Arc<dyn Store> {
    match rules {
        Some(rules) => {
            tracing::info!(?rules, "encrypting resources at rest");
            EncryptedStore::wrap(store, rules)
        }
        None => store,
    }
}

async fn open_store(args: &ServerArgs) -> anyhow::Result<Arc<dyn Store>> {
    match args.datastore.as_str() {
        "sqlite" => {
            if args.etcd_tls.any() {
                anyhow::bail!("--etcd-cafile/--etcd-certfile/--etcd-keyfile need --datastore etcd://HOST:PORT[,HOST:PORT…]");
            }
            let path = args.data_dir.join("state.db");
            let store =
                SqliteStore::open(&path).with_context(|| format!("opening {}", path.display()))?;
            Ok(Arc::new(store))
        }
        other if other.starts_with("etcd://") => {
            let endpoints = etcd_endpoints(other)?;
            let tls = args.etcd_tls.load()?;
            let store = EtcdStore::connect_with(&endpoints, tls.as_ref())
                .await
                .with_context(|| format!("--datastore {other}"))?;
            tracing::info!(endpoints = %endpoints.join(","), "using the etcd store");
            Ok(Arc::new(store))
        }
        other => anyhow::bail!(
            "--datastore {other:?}: expected `sqlite` or `etcd://HOST:PORT[,HOST:PORT…]`"
        ),
    }
}

/// The `HOST:PORT` list of `etcd://HOST:PORT[,HOST:PORT…]`.
fn etcd_endpoints(datastore: &str) -> anyhow::Result<Vec<String>> {
    let list = datastore.strip_prefix("etcd://").unwrap_or(datastore);
    let endpoints: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect();
    if endpoints.is_empty() {
        anyhow::bail!("--datastore {datastore}: expected etcd://HOST:PORT[,HOST:PORT…] with at least one endpoint");
    }
    if let Some(bad) = endpoints
        .iter()
        .find(|e| e.contains('/') || !e.contains(':'))
    {
        anyhow::bail!("--datastore {datastore}: endpoint {bad:?} is not HOST:PORT");
    }
    Ok(endpoints)
}

/// Parses `90`, `90s`, `5m` or `1h`.
pub(crate) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 5m or 1h"))?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{text:?}: unit must be s, m or h")),
    };
    if seconds == 0 {
        return Err("the interval must be at least 1s".into());
    }
    Ok(std::time::Duration::from_secs(seconds))
}

/// How long a stopping server waits for its tasks before ending them.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// A server started in this process, with its in-process scheduler and
/// controllers; [`Running::stop`] ends them.
pub struct Running {
    cancel: CancellationToken,
    tasks: tokio::task::JoinSet<anyhow::Result<()>>,
    /// Where the admin kubeconfig was written.
    pub kubeconfig: PathBuf,
    /// The URL clients use.
    pub url: String,
}

impl Running {
    /// Stops every task and waits for them, at most [`STOP_GRACE`]: the API
    /// server's graceful shutdown waits for open requests, and a client's
    /// watch (an agent's, a simulator's) never ends by itself, so without a
    /// bound a SIGTERM'd server could hang until its clients went away.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.cancel.cancel();
        let drained = tokio::time::timeout(STOP_GRACE, async {
            while let Some(result) = self.tasks.join_next().await {
                result.context("a server task panicked")??;
            }
            anyhow::Ok(())
        })
        .await;
        match drained {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(
                    tasks = self.tasks.len(),
                    "tasks still running {STOP_GRACE:?} after the stop (open watches); ending them"
                );
                self.tasks.shutdown().await;
                Ok(())
            }
        }
    }
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let stop = shutdown_signal();
    let running = start(args).await?;
    // The same facts are logged as an event; this is for the person at the console.
    if berth_observability::log_format() == berth_observability::LogFormat::Text {
        eprintln!(
            "berth API server listening on {}\nuse it with: kubectl --kubeconfig {}",
            running.url,
            running.kubeconfig.display()
        );
    }
    stop.await;
    tracing::info!("shutting down");
    running.stop().await
}

/// Starts the server (and, unless disabled, its scheduler and controllers).
pub async fn start(args: ServerArgs) -> anyhow::Result<Running> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating --data-dir {}", args.data_dir.display()))?;
    let service_cidr: Cidr = args
        .service_cidr
        .parse()
        .map_err(|e| anyhow::anyhow!("--service-cidr: {e}"))?;
    let mut hosts = vec![
        "127.0.0.1".to_owned(),
        "localhost".to_owned(),
        "kubernetes".to_owned(),
        "kubernetes.default".to_owned(),
        "kubernetes.default.svc".to_owned(),
    ];
    hosts.push(service_cidr.nth(1).to_string());
    let listen_ip = args.listen.ip();
    if !listen_ip.is_unspecified() && !hosts.contains(&listen_ip.to_string()) {
        hosts.push(listen_ip.to_string());
    }
    if let Some(advertised) = args.advertise_address.map(|ip| ip.to_string()) {
        if !hosts.contains(&advertised) {
            hosts.push(advertised);
        }
    }
    hosts.extend(args.tls_san.iter().cloned());
    let mut controllers_config = controllers_config(&args)?;
    let encryption = args
        .encryption_provider_config
        .as_deref()
        .map(encryption::config::load)
        .transpose()?;
    let cloud = cloud_setup(&args).await?;
    let pki = Pki::load_or_create(&args.data_dir, &hosts).context("setting up the cluster CA")?;
    controllers_config.csr_signing = Some(signing_config(
        &pki,
        &args.data_dir,
        args.cluster_signing_duration,
    )?);
    let store = encrypt_at_rest(open_store(&args).await?, encryption);
    let in_process = ["controllers", "scheduler"]
        .into_iter()
        .filter(|part| !args.disable.iter().any(|d| d == part))
        .map(|part| match part {
            "controllers" => "controller-manager".to_owned(),
            other => other.to_owned(),
        })
        .collect();
    // The API server's `/metrics` serves the control plane's registry: the
    // scheduler and controllers below run in this process and register
    // theirs there (one scrape sees the whole control plane).
    let metrics = MetricsRegistry::control_plane().clone();
    let config = ApiServerConfig {
        listen: args.listen,
        service_cidr,
        advertise_address: args.advertise_address,
        in_process,
        metrics,
        pod_security: pod_security_config(args.pod_security_config.as_deref())?,
    };
    let toleration_seconds = DefaultTolerationSeconds {
        not_ready: args.default_not_ready_toleration_seconds,
        unreachable: args.default_unreachable_toleration_seconds,
    };
    let server = ApiServer::bind_with(config, toleration_seconds, Arc::clone(&store), &pki).await?;
    let addr = server.local_addr()?;
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        addr.ip().to_string()
    };
    let kubeconfig = args.data_dir.join("admin.kubeconfig");
    pki.write_admin_kubeconfig(&kubeconfig, &format!("https://{host}:{}", addr.port()))?;
    tracing::info!(%addr, kubeconfig = %kubeconfig.display(), "berth API server listening");
    let url = format!("https://{host}:{}", addr.port());

    let cancel = CancellationToken::new();
    let mut tasks: tokio::task::JoinSet<anyhow::Result<()>> = tokio::task::JoinSet::new();
    let serve = server.serve(cancel.clone());
    tasks.spawn(async move {
        serve.await;
        Ok(())
    });
    let compact = compactor::run(store, args.compaction_interval, cancel.clone());
    tasks.spawn(async move {
        compact.await;
        Ok(())
    });
    if !args.disable.iter().any(|d| d == "controllers") {
        let client = controllers::client::from_kubeconfig_yaml(&pki.admin_kubeconfig(&url))
            .await
            .context("building the controllers' API client")?;
        let cancel = cancel.clone();
        let leader_elect = args.leader_elect;
        tasks.spawn(async move {
            if leader_elect {
                let identity = scheduler::default_identity();
                tracing::info!(%identity, "controllers run while this server holds the controller-manager Lease");
                crate::controller_manager::supervise_while_leading(client, &identity, controllers_config, cancel).await;
            } else {
                controllers::supervise_with(client, cancel, controllers_config).await;
            }
            Ok(())
        });
    }
    if !args.disable.iter().any(|d| d == "scheduler") {
        let client = controllers::client::from_kubeconfig_yaml(&pki.admin_kubeconfig(&url))
            .await
            .context("building the scheduler's API client")?;
        let run = scheduler::run_restarting(client, scheduler::default_identity(), cancel.clone());
        tasks.spawn(async move {
            run.await;
            Ok(())
        });
    }
    if !args.disable.iter().any(|d| d == "nodepool") {
        let client = controllers::client::from_kubeconfig_yaml(&pki.admin_kubeconfig(&url))
            .await
            .context("building the nodepool controller's API client")?;
        let ssh = args
            .nodepool_ssh
            .settings(crate::nodepool::ssh_settings::server_defaults(
                &url,
                &args.data_dir,
            ))
            .context("the nodepool controller's ssh provider")?;
        let aws = args.aws.config(Some(&url), Some(&pki.ca_pem))?;
        let settings = crate::nodepool::ControllerSettings {
            ssh,
            aws,
            registration_timeout: args.nodepool_registration_timeout,
        };
        let cancel = cancel.clone();
        let leader_elect = args.leader_elect;
        tasks.spawn(async move {
            if leader_elect {
                let identity = scheduler::default_identity();
                crate::nodepool::run_while_leading(client, &identity, settings, cancel).await;
            } else {
                crate::nodepool::run_controller(client, settings, cancel).await;
            }
            Ok(())
        });
    }
    if let Some(setup) = cloud {
        let client = controllers::client::from_kubeconfig_yaml(&pki.admin_kubeconfig(&url))
            .await
            .context("building the cloud-controller's API client")?;
        let cancel = cancel.clone();
        tasks.spawn(async move {
            let identity = scheduler::default_identity();
            crate::cloud_controller::run_while_leading(client, &identity, setup, cancel).await;
            Ok(())
        });
    }
    Ok(Running {
        cancel,
        tasks,
        kubeconfig,
        url,
    })
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when it is
/// called, not when first polled, so a stop that comes while the server is
/// still starting is not the default "terminate now" (which would lose the
/// queued spans and skip the clean stop).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing SIGINT handler");
    async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    }
}

/// The Pod Security configuration in `path`, or upstream's default
/// (privileged everywhere, nothing exempt) without one.
fn pod_security_config(
    path: Option<&std::path::Path>,
) -> anyhow::Result<berth_api::pod_security::Configuration> {
    let Some(path) = path else {
        return Ok(Default::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading --pod-security-config {}", path.display()))?;
    let document: serde_json::Value = serde_yaml::from_str(&text).with_context(|| {
        format!(
            "--pod-security-config {} is not YAML or JSON",
            path.display()
        )
    })?;
    berth_api::pod_security::Configuration::from_document(&document)
        .with_context(|| format!("--pod-security-config {}", path.display()))
}
