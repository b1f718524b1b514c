//! What `berth cluster check` prints: the cluster a checked file describes,
//! machine by machine, so a reader sees what would be built before anything is.

use std::fmt::Write;

use super::model::{Auth, AwsPool, Cluster, Machine, Pool, PoolSize};

/// A human-readable account of what `cluster` would build.
pub fn summary(cluster: &Cluster) -> String {
    let nodes: usize = cluster.pools.iter().map(|p| p.machines.len()).sum();
    let launched = cluster.aws.as_ref().and_then(|aws| aws.masters());
    let masters = launched.map_or(cluster.masters.len(), |m| *m.count.get_ref() as usize);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cluster {:?}: {} master(s) on {}, {} pool(s), {} node(s)",
        cluster.name,
        masters,
        cluster.datastore.as_str(),
        cluster.pools.len(),
        nodes
    );
    let _ = writeln!(out, "  binary:       {}", cluster.binary);
    let _ = writeln!(
        out,
        "  service CIDR: {} (the kubernetes Service at {})",
        cluster.service_cidr,
        cluster.service_cidr.first_address()
    );
    let _ = writeln!(out, "  cluster CIDR: {}", cluster.cluster_cidr);
    let mode = match cluster.network_mode {
        super::NetworkMode::Routed => "routed",
        super::NetworkMode::Vxlan => "vxlan",
    };
    let _ = writeln!(out, "  network mode: {mode}");
    let _ = writeln!(out, "masters:");
    for machine in &cluster.masters {
        machine_line(&mut out, machine);
    }
    if let Some(spec) = launched {
        let _ = writeln!(
            out,
            "  {}: EC2 instances launched by create ({}, {}), reached over SSH on their {} address",
            spec.names(&cluster.name).join(", "),
            spec.ami,
            spec.instance_types.join("/"),
            if spec.public { "public" } else { "private" }
        );
    }
    for pool in &cluster.pools {
        pool_lines(&mut out, pool);
    }
    out
}

fn pool_lines(out: &mut String, pool: &Pool) {
    let mut details = match &pool.aws {
        None => vec![format!("{} machine(s)", pool.machines.len())],
        Some(aws) => vec![aws_details(aws)],
    };
    if pool.gpu {
        details.push("GPU".to_owned());
    }
    if let Some(max) = pool.max_pods {
        details.push(format!("max {max} pods"));
    }
    if let Some(cpu) = pool.reserved_cpu {
        details.push(format!("reserved cpu {cpu}"));
    }
    if let Some(memory) = pool.reserved_memory {
        details.push(format!("reserved memory {memory}"));
    }
    let _ = writeln!(out, "pool {:?} ({}):", pool.name, details.join(", "));
    let labels: Vec<String> = pool
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let _ = writeln!(out, "  labels: {}", labels.join(", "));
    if !pool.taints.is_empty() {
        let taints: Vec<String> = pool.taints.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "  taints: {}", taints.join(", "));
    }
    for machine in &pool.machines {
        machine_line(out, machine);
    }
}

/// An `aws` pool in a few words: a NodePool, its size and instance types.
fn aws_details(aws: &AwsPool) -> String {
    let size = match aws.size {
        PoolSize::Fixed(n) => format!("{n} replica(s)"),
        PoolSize::Autoscaled { min, max } => format!(
            "autoscaled {}..{}",
            min.unwrap_or(0),
            max.map_or("limits".to_owned(), |m| m.to_string())
        ),
    };
    let spot = if aws.template.wants_spot() {
        ", spot"
    } else {
        ""
    };
    format!(
        "aws NodePool, {size}, {}{spot}, {}",
        aws.template.instance_types.join("/"),
        aws.template.ami
    )
}

fn machine_line(out: &mut String, machine: &Machine) {
    let ssh = &machine.ssh;
    let auth = match &ssh.auth {
        Auth::Agent => "ssh-agent".to_owned(),
        Auth::KeyFile(path) => format!("key {}", path.display()),
    };
    let jump = ssh
        .jump_host
        .as_ref()
        .map(|jump| format!(", via {jump}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  - {} ({}@{}:{}, {auth}, host key {}{jump})",
        machine.name,
        ssh.user,
        machine.host,
        ssh.port,
        ssh.host_key_policy.as_str()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lists_every_machine_with_its_role() {
        let text = "name = \"lab\"\n[masters]\nmachines = [{ host = \"10.0.0.1\" }]\n\
                    [[pools]]\nname = \"gpu\"\ngpu = true\nmax_pods = 8\n\
                    machines = [{ host = \"10.0.2.1\", name = \"g1\", key_file = \"/k\", jump_host = \"b\" }]\n";
        let cluster = crate::config::parse("cluster.toml", text).unwrap();
        assert_eq!(
            summary(&cluster),
            "cluster \"lab\": 1 master(s) on sqlite, 1 pool(s), 1 node(s)
  binary:       self (this berth executable)
  service CIDR: 10.43.0.0/16 (the kubernetes Service at 10.43.0.1)
  cluster CIDR: 10.42.0.0/16
  network mode: routed
masters:
  - 10.0.0.1 (root@10.0.0.1:22, ssh-agent, host key strict)
pool \"gpu\" (1 machine(s), GPU, max 8 pods):
  labels: berth.dev/pool=gpu
  taints: nvidia.com/gpu=present:NoSchedule
  - g1 (root@10.0.2.1:22, key /k, host key strict, via b:22)
"
        );
    }

    #[test]
    fn summary_names_the_master_instances_create_launches() {
        let text =
            "name = \"lab\"\ndatastore = \"etcd\"\n[aws]\nbinary_url = \"https://b/berth\"\n\
                    [aws.masters]\ncount = 3\ninstance_types = [\"m7i.large\"]\nami = \"ami-1\"\n";
        let cluster = crate::config::parse("cluster.toml", text).unwrap();
        let summary = summary(&cluster);
        assert!(
            summary.starts_with("cluster \"lab\": 3 master(s) on etcd"),
            "{summary}"
        );
        assert!(
            summary.contains("masters:\n  lab-master-1, lab-master-2, lab-master-3: EC2 instances launched by create (ami-1, m7i.large), reached over SSH on their private address\n"),
            "{summary}"
        );
    }
}
