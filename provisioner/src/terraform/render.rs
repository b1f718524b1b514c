//! Writes a [`TerraformCluster`] as `cluster.toml` text: the same fields a
//! person would write, every value quoted by `toml_edit`, with a header
//! saying where it came from.

use std::fmt::Write;

use super::outputs::{AwsPool, Machine, TerraformCluster};

/// The `cluster.toml` text for `cluster`, made from the outputs file `source`.
pub(super) fn cluster_toml(cluster: &TerraformCluster, source: &str) -> String {
    let mut out = String::new();
    let line = |out: &mut String, text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(
        &mut out,
        format!("# Made by `berth cluster create --from-terraform` from {source}."),
    );
    line(
        &mut out,
        "# Re-made on every run: change the Terraform variables, not this file.".to_owned(),
    );
    line(&mut out, format!("name = {}", quote(&cluster.name)));
    let datastore = cluster.datastore.clone().unwrap_or_else(|| {
        if cluster.masters.len() == 1 {
            "sqlite"
        } else {
            "etcd"
        }
        .to_owned()
    });
    line(&mut out, format!("datastore = {}", quote(&datastore)));
    let network_mode = cluster.network_mode.as_deref().unwrap_or("vxlan");
    line(&mut out, format!("network_mode = {}", quote(network_mode)));
    for (key, value) in [
        ("cluster_cidr", &cluster.cluster_cidr),
        ("service_cidr", &cluster.service_cidr),
        ("api_endpoint", &cluster.api_endpoint),
        ("data_dir", &cluster.data_dir),
    ] {
        if let Some(value) = value {
            line(&mut out, format!("{key} = {}", quote(value)));
        }
    }
    out.push_str("\n[ssh]\n");
    for (key, value) in [
        ("user", &cluster.ssh_user),
        ("key_file", &cluster.ssh_key_file),
        ("jump_host", &cluster.ssh_jump_host),
        ("known_hosts", &cluster.ssh_known_hosts),
        ("host_key_policy", &cluster.ssh_host_key_policy),
    ] {
        if let Some(value) = value {
            line(&mut out, format!("{key} = {}", quote(value)));
        }
    }
    if let Some(region) = &cluster.region {
        out.push_str("\n[aws]\n");
        line(&mut out, format!("region = {}", quote(region)));
        if let Some(url) = &cluster.binary_url {
            line(&mut out, format!("binary_url = {}", quote(url)));
        }
    }
    out.push_str("\n[masters]\n");
    machines(&mut out, &cluster.masters);
    for pool in &cluster.ssh_pools {
        out.push_str("\n[[pools]]\n");
        line(&mut out, format!("name = {}", quote(&pool.name)));
        line(&mut out, "provider = \"ssh\"".to_owned());
        if pool.gpu {
            line(&mut out, "gpu = true".to_owned());
        }
        machines(&mut out, &pool.machines);
        if !pool.labels.is_empty() {
            let labels: Vec<String> = pool
                .labels
                .iter()
                .map(|(key, value)| format!("{} = {}", quote(key), quote(value)))
                .collect();
            line(&mut out, format!("labels = {{ {} }}", labels.join(", ")));
        }
        if !pool.taints.is_empty() {
            let taints: Vec<String> = pool.taints.iter().map(|t| quote(t)).collect();
            line(&mut out, format!("taints = [{}]", taints.join(", ")));
        }
    }
    for pool in &cluster.node_pools {
        aws_pool(&mut out, pool);
    }
    out
}

/// One `provider = "aws"` `[[pools]]` entry.
fn aws_pool(out: &mut String, pool: &AwsPool) {
    let _ = write!(
        out,
        "\n[[pools]]\nname = {}\nprovider = \"aws\"\n",
        quote(&pool.name)
    );
    if pool.gpu {
        out.push_str("gpu = true\n");
    }
    if pool.spot {
        out.push_str("spot = true\n");
    }
    let _ = writeln!(out, "ami = {}", quote(&pool.ami));
    for (key, values) in [
        ("instance_types", &pool.instance_types),
        ("subnet_ids", &pool.subnet_ids),
        ("security_group_ids", &pool.security_group_ids),
    ] {
        let values: Vec<String> = values.iter().map(|v| quote(v)).collect();
        let _ = writeln!(out, "{key} = [{}]", values.join(", "));
    }
    for (key, value) in [
        ("iam_instance_profile", &pool.instance_profile),
        ("key_name", &pool.key_name),
    ] {
        if let Some(value) = value {
            let _ = writeln!(out, "{key} = {}", quote(value));
        }
    }
    if let Some(size) = pool.root_volume_size {
        let _ = writeln!(out, "root_volume_gib = {size}");
    }
}

/// `machines = [ … ]`, one inline table a line.
fn machines(out: &mut String, machines: &[Machine]) {
    out.push_str("machines = [\n");
    for machine in machines {
        let _ = write!(out, "  {{ host = {}", quote(&machine.host));
        if let Some(name) = &machine.name {
            let _ = write!(out, ", name = {}", quote(name));
        }
        out.push_str(" },\n");
    }
    out.push_str("]\n");
}

/// `text` as a TOML basic string, escaped where needed.
fn quote(text: &str) -> String {
    toml_edit::Value::from(text).to_string().trim().to_owned()
}
