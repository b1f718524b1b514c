//! Commands for benchmarks that build their machines from network
//! namespaces: run one on the host, or inside a named namespace, and fail
//! with its stderr.

use std::process::Command;

use anyhow::bail;

/// Runs `args` on the host; fails with its stderr.
pub fn run(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new(args[0]).args(&args[1..]).output()?;
    if !output.status.success() {
        bail!(
            "{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Runs `args` inside network namespace `netns` (`ip netns add` made);
/// its stdout.
pub fn inside(netns: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("nsenter")
        .arg(format!("--net=/var/run/netns/{netns}"))
        .args(args)
        .output()?;
    if !output.status.success() {
        bail!(
            "{} in {netns} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Gives node namespace `node` a pod bridge `cbr0` at `gateway`/24 and
/// forwarding, and wires namespace `pod` to it at `pod_address`/24 with a
/// default route, as the agent's CNI wires a pod.
pub fn wire_pod(node: &str, pod: &str, gateway: &str, pod_address: &str) -> anyhow::Result<()> {
    let script = format!(
        "ip link add cbr0 type bridge && ip addr add {gateway}/24 dev cbr0 && ip link set cbr0 up && \
         ip link add veth0 type veth peer name eth0 netns {pod} && ip link set veth0 master cbr0 up && \
         echo 1 > /proc/sys/net/ipv4/ip_forward"
    );
    inside(node, &["sh", "-c", &script])?;
    let script = format!(
        "ip link set lo up && ip addr add {pod_address}/24 dev eth0 && ip link set eth0 up && ip route add default via {gateway}"
    );
    inside(pod, &["sh", "-c", &script])?;
    Ok(())
}
