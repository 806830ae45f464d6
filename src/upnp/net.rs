//! The network interfaces the UPnP face serves, and the subnet checks SSDP and GENA make
//! against them (DESIGN.md §8: answer only senders on served subnets; GENA callbacks only to the
//! subnet the SUBSCRIBE arrived on).
//!
//! IPv4 only for now: UDA 2.0 makes IPv6 optional and every control point we interoperate with
//! speaks IPv4.

use std::net::Ipv4Addr;

/// One IPv4 address of one interface the gateway serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedInterface {
    /// Interface name (`eth0`, `eth0.20`, `lo`).
    pub name: String,
    /// Kernel interface index (for `IP_MULTICAST_IF` / `IP_ADD_MEMBERSHIP`).
    pub index: u32,
    /// The interface's address.
    pub addr: Ipv4Addr,
    /// Its netmask.
    pub netmask: Ipv4Addr,
}

impl ServedInterface {
    /// Whether `peer` is on this interface's subnet.
    pub fn contains(&self, peer: Ipv4Addr) -> bool {
        let mask = u32::from(self.netmask);
        u32::from(self.addr) & mask == u32::from(peer) & mask
    }

    /// The served interface whose address is `local`, if any: the one a connection accepted on
    /// `local` arrived through.
    pub fn by_local_addr(served: &[Self], local: Ipv4Addr) -> Option<&Self> {
        served.iter().find(|i| i.addr == local)
    }
}

/// Why the served interfaces could not be determined.
#[derive(Debug, thiserror::Error)]
pub enum InterfaceError {
    /// `getifaddrs` failed.
    #[error("cannot list the network interfaces: {0}")]
    List(#[source] nix::Error),
    /// A configured interface does not exist or has no IPv4 address.
    #[error(
        "interface `{name}` named in [listen] interfaces {why}; interfaces with an IPv4 address here: {present}"
    )]
    Missing {
        /// The configured name.
        name: String,
        /// What is wrong with it.
        why: &'static str,
        /// The usable interfaces, for the message.
        present: String,
    },
    /// No interface could be served at all.
    #[error(
        "no up, multicast-capable, non-loopback interface with an IPv4 address: name the interfaces in [listen] interfaces"
    )]
    NoneUsable,
}

/// The interfaces to serve: the named ones (each must exist, be up and have an IPv4 address),
/// or, when `names` is empty, every up, multicast-capable, non-loopback interface with an IPv4
/// address.
pub fn served_interfaces(names: &[String]) -> Result<Vec<ServedInterface>, InterfaceError> {
    use nix::net::if_::InterfaceFlags;
    let mut all = Vec::new();
    for ifaddr in nix::ifaddrs::getifaddrs().map_err(InterfaceError::List)? {
        let (Some(addr), Some(mask)) = (
            ifaddr.address.as_ref().and_then(|a| a.as_sockaddr_in()),
            ifaddr.netmask.as_ref().and_then(|a| a.as_sockaddr_in()),
        ) else {
            continue;
        };
        let index = nix::net::if_::if_nametoindex(ifaddr.interface_name.as_str()).unwrap_or(0);
        all.push((
            ifaddr.flags,
            ServedInterface {
                name: ifaddr.interface_name.clone(),
                index,
                addr: addr.ip(),
                netmask: mask.ip(),
            },
        ));
    }
    select(names, all, |flags: &InterfaceFlags| {
        (
            flags.contains(InterfaceFlags::IFF_UP),
            flags.contains(InterfaceFlags::IFF_LOOPBACK),
            flags.contains(InterfaceFlags::IFF_MULTICAST),
        )
    })
}

fn select<F>(
    names: &[String],
    all: Vec<(F, ServedInterface)>,
    flags: impl Fn(&F) -> (bool, bool, bool),
) -> Result<Vec<ServedInterface>, InterfaceError> {
    let present = || {
        let mut names: Vec<_> = all.iter().map(|(_, i)| i.name.as_str()).collect();
        names.dedup();
        names.join(", ")
    };
    if names.is_empty() {
        let chosen: Vec<_> = all
            .iter()
            .filter(|(f, _)| matches!(flags(f), (true, false, true)))
            .map(|(_, i)| i.clone())
            .collect();
        return if chosen.is_empty() {
            Err(InterfaceError::NoneUsable)
        } else {
            Ok(chosen)
        };
    }
    let mut chosen = Vec::new();
    for name in names {
        let matching: Vec<_> = all.iter().filter(|(_, i)| &i.name == name).collect();
        if matching.is_empty() {
            return Err(InterfaceError::Missing {
                name: name.clone(),
                why: "does not exist or has no IPv4 address",
                present: present(),
            });
        }
        if !matching.iter().any(|(f, _)| flags(f).0) {
            return Err(InterfaceError::Missing {
                name: name.clone(),
                why: "is down (bring it up with `ip link set <name> up`)",
                present: present(),
            });
        }
        chosen.extend(matching.into_iter().map(|(_, i)| i.clone()));
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, addr: [u8; 4], mask: [u8; 4]) -> ServedInterface {
        ServedInterface {
            name: name.into(),
            index: 1,
            addr: addr.into(),
            netmask: mask.into(),
        }
    }

    #[test]
    fn contains_should_match_the_subnet_only() {
        let eth = iface("eth0", [192, 168, 1, 10], [255, 255, 255, 0]);
        assert!(eth.contains(Ipv4Addr::new(192, 168, 1, 200)));
        assert!(!eth.contains(Ipv4Addr::new(192, 168, 2, 200)));
        let lo = iface("lo", [127, 0, 0, 1], [255, 0, 0, 0]);
        assert!(lo.contains(Ipv4Addr::new(127, 9, 9, 9)));
    }

    #[test]
    fn empty_names_should_pick_up_multicast_non_loopback_interfaces() {
        let all = vec![
            (
                (true, true, true),
                iface("lo", [127, 0, 0, 1], [255, 0, 0, 0]),
            ),
            (
                (true, false, true),
                iface("eth0", [10, 0, 0, 2], [255, 0, 0, 0]),
            ),
            (
                (false, false, true),
                iface("eth1", [10, 1, 0, 2], [255, 0, 0, 0]),
            ),
            (
                (true, false, false),
                iface("tun0", [10, 2, 0, 2], [255, 0, 0, 0]),
            ),
        ];
        let chosen = select(&[], all, |f| *f).unwrap();
        assert_eq!(
            chosen.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
            ["eth0"]
        );
    }

    #[test]
    fn a_missing_or_down_interface_should_be_named_in_the_error() {
        let all = vec![
            (
                (true, false, true),
                iface("eth0", [10, 0, 0, 2], [255, 0, 0, 0]),
            ),
            (
                (false, false, true),
                iface("eth1", [10, 1, 0, 2], [255, 0, 0, 0]),
            ),
        ];
        let missing = select(&["wlan0".into()], all.clone(), |f| *f).unwrap_err();
        assert!(missing.to_string().contains("`wlan0`"), "{missing}");
        assert!(missing.to_string().contains("eth0, eth1"), "{missing}");
        let down = select(&["eth1".into()], all, |f| *f).unwrap_err();
        assert!(down.to_string().contains("is down"), "{down}");
    }

    #[test]
    fn loopback_should_be_served_when_named() {
        let lo = served_interfaces(&["lo".into()]).unwrap();
        assert_eq!(lo[0].addr, Ipv4Addr::LOCALHOST);
        assert!(lo[0].index > 0);
    }
}
