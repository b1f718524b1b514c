//! The pool's assigned addresses on one interface of the load-balancer
//! host, as MetalLB's layer-2 mode announces them: the kernel then answers
//! ARP and neighbour solicitations for them, so clients on that LAN reach
//! HAProxy with no route or address set up by hand. Pure: this module only
//! plans `ip` commands from what `ip -o addr show` printed; the provider
//! runs them on the host through its [`super::target::ConfigTarget`].

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::pool::AddressPool;

/// The interface the provider keeps the pool's addresses on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolInterface {
    name: String,
}

/// The commands that bring the interface to the wanted addresses: `add`
/// runs before HAProxy reloads (it must bind them), `remove` after (it has
/// let go of them).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AddressChanges {
    /// `ip addr add` for each wanted address the interface lacks.
    pub add: Vec<Vec<String>>,
    /// `ip addr del` for each pool address on it no Service holds.
    pub remove: Vec<Vec<String>>,
}

impl PoolInterface {
    /// Keeps addresses on the interface `name` (`eth0`).
    pub fn new(name: impl Into<String>) -> Self {
        PoolInterface { name: name.into() }
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The command listing the interface's addresses, one per line.
    pub fn show(&self) -> Vec<String> {
        ["ip", "-o", "addr", "show", "dev", &self.name]
            .map(str::to_owned)
            .to_vec()
    }

    /// What to change, given the output of [`Self::show`]. Only host-sized
    /// (`/32`, `/128`) addresses of `pool` are ever removed, so the host's
    /// own addresses stay even where an operator's pool overlaps them.
    pub fn changes(
        &self,
        shown: &str,
        pool: &AddressPool,
        wanted: &BTreeSet<IpAddr>,
    ) -> AddressChanges {
        let present = host_addresses(shown);
        let any_present: BTreeSet<IpAddr> = present.iter().map(|(a, _)| *a).collect();
        let add = wanted
            .iter()
            .filter(|address| !any_present.contains(address))
            .map(|address| self.command("add", *address))
            .collect();
        let remove = present
            .iter()
            .filter(|(address, host_sized)| {
                *host_sized && pool.contains(*address) && !wanted.contains(address)
            })
            .map(|(address, _)| self.command("del", *address))
            .collect();
        AddressChanges { add, remove }
    }

    fn command(&self, verb: &str, address: IpAddr) -> Vec<String> {
        let prefix = if address.is_ipv4() { 32 } else { 128 };
        let mut command: Vec<String> = ["ip", "addr", verb, &format!("{address}/{prefix}"), "dev"]
            .map(str::to_owned)
            .to_vec();
        command.push(self.name.clone());
        // Without duplicate address detection an IPv6 address is usable at
        // once; a tentative one cannot be bound and the reload would fail.
        if verb == "add" && address.is_ipv6() {
            command.push("nodad".into());
        }
        command
    }
}

/// Every address in `ip -o addr show` output, with whether its prefix is a
/// single host's.
fn host_addresses(shown: &str) -> Vec<(IpAddr, bool)> {
    shown
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|word| matches!(*word, "inet" | "inet6"))?;
            let (address, prefix) = words.next()?.split_once('/')?;
            let address: IpAddr = address.parse().ok()?;
            let full = if address.is_ipv4() { "32" } else { "128" };
            Some((address, prefix == full))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOWN: &str = "\
2: eth0    inet 10.68.0.1/24 brd 10.68.0.255 scope global eth0\\       valid_lft forever preferred_lft forever
2: eth0    inet 192.0.2.10/32 scope global eth0\\       valid_lft forever preferred_lft forever
2: eth0    inet 192.0.2.12/32 scope global eth0\\       valid_lft forever preferred_lft forever
2: eth0    inet 192.0.2.0/24 scope global eth0\\       valid_lft forever preferred_lft forever
2: eth0    inet6 fd00::10/128 scope global nodad \\       valid_lft forever preferred_lft forever
2: eth0    inet6 fe80::1/64 scope link \\       valid_lft forever preferred_lft forever
";

    fn addresses(list: &[&str]) -> BTreeSet<IpAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    fn command(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn missing_addresses_are_added_and_released_pool_addresses_removed() {
        let pool = AddressPool::new("p", &["192.0.2.0/24", "fd00::/120"]).unwrap();
        let changes = PoolInterface::new("eth0").changes(
            SHOWN,
            &pool,
            &addresses(&["192.0.2.10", "192.0.2.11", "fd00::11"]),
        );
        assert_eq!(
            changes.add,
            vec![
                command("ip addr add 192.0.2.11/32 dev eth0"),
                command("ip addr add fd00::11/128 dev eth0 nodad"),
            ]
        );
        assert_eq!(
            changes.remove,
            vec![
                command("ip addr del 192.0.2.12/32 dev eth0"),
                command("ip addr del fd00::10/128 dev eth0"),
            ],
            "the host's own 192.0.2.0/24 stays though it lies in the pool"
        );
    }

    #[test]
    fn addresses_outside_the_pool_are_never_removed() {
        let pool = AddressPool::new("p", &["198.51.100.0/28"]).unwrap();
        let changes = PoolInterface::new("eth0").changes(SHOWN, &pool, &BTreeSet::new());
        assert_eq!(changes, AddressChanges::default());
    }

    #[test]
    fn an_address_present_with_another_prefix_is_not_added_again() {
        let pool = AddressPool::new("p", &["192.0.2.0/24"]).unwrap();
        let changes = PoolInterface::new("eth0").changes(SHOWN, &pool, &addresses(&["192.0.2.0"]));
        assert!(changes.add.is_empty(), "{changes:?}");
    }
}
