//! The cluster CA from the agent's kubeconfig: the CA the API server's
//! client certificate chains to, so the kubelet API trusts what the agent
//! itself trusts. Reads the file; never writes it.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;

use super::ServerError;

#[derive(Deserialize)]
struct Kubeconfig {
    #[serde(rename = "current-context", default)]
    current_context: Option<String>,
    #[serde(default)]
    contexts: Vec<NamedContext>,
    #[serde(default)]
    clusters: Vec<NamedCluster>,
}

#[derive(Deserialize)]
struct NamedContext {
    name: String,
    context: Context,
}

#[derive(Deserialize)]
struct Context {
    cluster: String,
}

#[derive(Deserialize)]
struct NamedCluster {
    name: String,
    cluster: Cluster,
}

#[derive(Deserialize)]
struct Cluster {
    #[serde(rename = "certificate-authority-data", default)]
    certificate_authority_data: Option<String>,
    #[serde(rename = "certificate-authority", default)]
    certificate_authority: Option<PathBuf>,
}

/// The PEM of the CA of the kubeconfig's current context's cluster
/// (`certificate-authority-data`, or the `certificate-authority` file,
/// relative to the kubeconfig as kubectl reads it).
pub fn ca_from_kubeconfig(path: &Path) -> Result<String, ServerError> {
    let fail = |reason: String| ServerError::Kubeconfig {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let config: Kubeconfig =
        serde_yaml::from_str(&text).map_err(|e| fail(format!("not a kubeconfig: {e}")))?;
    let cluster = current_cluster(&config).map_err(fail)?;
    let pem = if let Some(data) = &cluster.certificate_authority_data {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| fail(format!("certificate-authority-data is not base64: {e}")))?;
        String::from_utf8(bytes)
            .map_err(|_| fail("certificate-authority-data is not a PEM certificate".into()))?
    } else if let Some(file) = &cluster.certificate_authority {
        let file = path.parent().unwrap_or(Path::new("")).join(file);
        std::fs::read_to_string(&file)
            .map_err(|e| fail(format!("certificate-authority {}: {e}", file.display())))?
    } else {
        return Err(fail(
            "its cluster has neither certificate-authority-data nor certificate-authority; the kubelet API needs the cluster CA to check client certificates".into(),
        ));
    };
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(fail(
            "the cluster's certificate authority is not a PEM certificate".into(),
        ));
    }
    Ok(pem)
}

/// The cluster of the current context (or the only cluster when no context is current).
fn current_cluster(config: &Kubeconfig) -> Result<&Cluster, String> {
    let name = match config.current_context.as_deref().filter(|c| !c.is_empty()) {
        Some(current) => {
            let context = config
                .contexts
                .iter()
                .find(|c| c.name == current)
                .ok_or_else(|| format!("current-context {current:?} is not among its contexts"))?;
            context.context.cluster.as_str()
        }
        None => match config.clusters.as_slice() {
            [only] => only.name.as_str(),
            _ => {
                return Err("no current-context, and not exactly one cluster to default to".into())
            }
        },
    };
    config
        .clusters
        .iter()
        .find(|c| c.name == name)
        .map(|c| &c.cluster)
        .ok_or_else(|| format!("cluster {name:?} is not among its clusters"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn kubeconfig(dir: &Path, cluster: &str) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster:\n    server: https://x\n- name: berth\n  cluster:\n    server: https://127.0.0.1:6443\n{cluster}\ncontexts:\n- name: berth\n  context:\n    cluster: berth\n    user: node\ncurrent-context: berth\n"
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn reads_inline_ca_data() {
        let dir = tempfile::tempdir().unwrap();
        let data = base64::engine::general_purpose::STANDARD.encode(PEM);
        let path = kubeconfig(
            dir.path(),
            &format!("    certificate-authority-data: {data}"),
        );
        assert_eq!(ca_from_kubeconfig(&path).unwrap(), PEM);
    }

    #[test]
    fn reads_a_ca_file_relative_to_the_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), PEM).unwrap();
        let path = kubeconfig(dir.path(), "    certificate-authority: ca.crt");
        assert_eq!(ca_from_kubeconfig(&path).unwrap(), PEM);
    }

    #[test]
    fn a_cluster_without_ca_is_an_error_that_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = kubeconfig(dir.path(), "    insecure-skip-tls-verify: true");
        let error = ca_from_kubeconfig(&path).unwrap_err().to_string();
        assert!(
            error.contains("neither certificate-authority-data nor certificate-authority"),
            "{error}"
        );
        let missing = ca_from_kubeconfig(&dir.path().join("absent"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("absent"), "{missing}");
    }
}
