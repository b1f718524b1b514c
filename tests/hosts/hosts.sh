#!/usr/bin/env bash
# Test "machines" for multi-node tests: network namespaces joined to this
# machine by veth pairs on one or two bridges.
#
#   hosts.sh up   --prefix P --count N --subnet 10.77 [--topology one-lan|two-lans]
#   hosts.sh down --prefix P
#   hosts.sh list --prefix P
#
# `up` makes namespaces P-1 … P-N. one-lan: every host on bridge Pbr0
# (SUBNET.0.0/24, this machine is .1, host i is .(10+i)), so all share one
# L2 network. two-lans: odd hosts on Pbr0, even hosts on Pbr1
# (SUBNET.1.0/24); the two networks meet only through this machine, which
# routes between them, so hosts on different bridges are not on one L2
# network. Each host's default route points at its bridge's .1 address.
# It prints one line per host: NAMESPACE ADDRESS GATEWAY.
# `down` removes the namespaces and bridges (and everything inside them);
# it is safe to run twice and after a failed `up`.
# Enter a host with `nsenter --net=/var/run/netns/P-i CMD`; `ip netns exec`
# remounts /sys and hides the cgroup v1 mounts containerd needs.
set -euo pipefail

die() {
    echo "hosts.sh: $*" >&2
    exit 1
}

command=${1:-}
[[ -n "$command" ]] || die "usage: hosts.sh up|down|list --prefix P …"
shift
prefix="" count=3 subnet="10.77" topology="one-lan"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --prefix) prefix="$2"; shift 2 ;;
        --count) count="$2"; shift 2 ;;
        --subnet) subnet="$2"; shift 2 ;;
        --topology) topology="$2"; shift 2 ;;
        *) die "unknown argument: $1" ;;
    esac
done
[[ "$prefix" =~ ^[a-z][a-z0-9]{0,7}$ ]] || die "--prefix must be 1-8 lower-case letters and digits, starting with a letter"
[[ "$count" =~ ^[0-9]+$ ]] && ((count >= 1 && count <= 50)) || die "--count must be 1 to 50"
[[ "$subnet" =~ ^[0-9]+\.[0-9]+$ ]] || die "--subnet must be the first two octets, like 10.77"
[[ "$topology" == one-lan || "$topology" == two-lans ]] || die "--topology must be one-lan or two-lans"

lan_of() {
    if [[ "$topology" == two-lans ]] && (($1 % 2 == 0)); then echo 1; else echo 0; fi
}

down() {
    local ns
    for ns in $(ip netns list | awk '{print $1}' | grep -E "^${prefix}-[0-9]+$" || true); do
        # Whatever still runs inside (an agent, containerd, shims) goes first,
        # then the pods' own namespaces (CNI's cni-*, wired to this host by
        # veth pairs), which containerd no longer will remove.
        local pids pod_netns
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        [[ -z "$pids" ]] || kill -9 $pids 2>/dev/null || true
        pod_netns=$(nsenter --net="/var/run/netns/$ns" ip netns list-id 2>/dev/null |
            sed -n 's/.*iproute2 netns name: \(cni-[0-9a-f-]*\)).*/\1/p' || true)
        for pod in $pod_netns; do
            pids=$(ip netns pids "$pod" 2>/dev/null || true)
            [[ -z "$pids" ]] || kill -9 $pids 2>/dev/null || true
            ip netns delete "$pod" 2>/dev/null || true
        done
        ip netns delete "$ns" 2>/dev/null || true
    done
    local lan
    for lan in 0 1; do
        ip link delete "${prefix}br${lan}" 2>/dev/null || true
    done
}

up() {
    down
    local lan
    for lan in 0 1; do
        [[ $lan == 0 || "$topology" == two-lans ]] || continue
        ip link add "${prefix}br${lan}" type bridge
        ip addr add "${subnet}.${lan}.1/24" dev "${prefix}br${lan}"
        ip link set "${prefix}br${lan}" up
    done
    local i ns lan address gateway
    for ((i = 1; i <= count; i++)); do
        ns="${prefix}-${i}"
        lan=$(lan_of "$i")
        address="${subnet}.${lan}.$((10 + i))"
        gateway="${subnet}.${lan}.1"
        ip netns add "$ns"
        ip link add "${prefix}v${i}" type veth peer name eth0 netns "$ns"
        ip link set "${prefix}v${i}" master "${prefix}br${lan}" up
        nsenter --net="/var/run/netns/$ns" sh -c "
            ip link set lo up &&
            ip addr add ${address}/24 dev eth0 &&
            ip link set eth0 up &&
            ip route add default via ${gateway} &&
            echo 1 > /proc/sys/net/ipv4/ip_forward"
        echo "$ns $address $gateway"
    done
}

list() {
    ip netns list | awk '{print $1}' | grep -E "^${prefix}-[0-9]+$" || true
}

case "$command" in
    up) up ;;
    down) down ;;
    list) list ;;
    *) die "unknown command: $command (up, down, list)" ;;
esac
