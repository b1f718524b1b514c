//! Where the cluster's API is reached: each master's own URL, the list the
//! agents fail over between, and the one address the admin kubeconfig names
//! (`api_endpoint`, a DNS name with one record per master or a load balancer,
//! as kubeadm's `controlPlaneEndpoint`; the first master without one).

use crate::config::{Cluster, Machine};

/// The API servers' port on every master.
pub const API_PORT: u16 = 6443;

/// `HOST:PORT`, bracketing IPv6 addresses.
pub fn listen_address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `https://HOST:6443` of a master.
pub fn api_url(master: &Machine) -> String {
    format!("https://{}", listen_address(&master.host, API_PORT))
}

/// Every master's URL, comma-separated: what `berth agent --server` fails over between.
pub fn agent_servers(cluster: &Cluster) -> String {
    cluster
        .masters
        .iter()
        .map(api_url)
        .collect::<Vec<_>>()
        .join(",")
}

/// The URL the admin kubeconfig names.
pub fn admin_server(cluster: &Cluster) -> String {
    match &cluster.api_endpoint {
        Some(endpoint) => format!("https://{}", endpoint_address(endpoint)),
        None => api_url(&cluster.masters[0]),
    }
}

/// `api_endpoint` with the API port added when it names none.
fn endpoint_address(endpoint: &str) -> String {
    let bracketed_v6 = endpoint.starts_with('[');
    let has_port = if bracketed_v6 {
        endpoint.contains("]:")
    } else {
        endpoint.matches(':').count() == 1
    };
    if has_port {
        endpoint.to_owned()
    } else {
        listen_address(endpoint.trim_matches(['[', ']']), API_PORT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_the_api_port_unless_they_name_one() {
        let cases = [
            ("api.example.com", "api.example.com:6443", "api.example.com"),
            (
                "api.example.com:443",
                "api.example.com:443",
                "api.example.com",
            ),
            ("10.0.0.100", "10.0.0.100:6443", "10.0.0.100"),
            ("fd00::100", "[fd00::100]:6443", "fd00::100"),
            ("[fd00::100]:7443", "[fd00::100]:7443", "fd00::100"),
        ];
        for (endpoint, address, host) in cases {
            assert_eq!(endpoint_address(endpoint), address, "{endpoint}");
            assert_eq!(berth_pki::endpoint_host(endpoint), host, "{endpoint}");
        }
    }
}
