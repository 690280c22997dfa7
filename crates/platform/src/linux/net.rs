//! Network interfaces (getifaddrs, sysfs MAC addresses, /proc/net/dev counters) and
//! routes (/proc/net/route, /proc/net/ipv6_route).

use std::fs;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};

use guestlink_vocabulary::types::{
    GuestIpAddress, GuestIpAddressType, GuestNetworkInterface, GuestNetworkInterfaceStat,
    GuestNetworkRoute,
};
use nix::sys::socket::{AddressFamily, SockaddrLike};

/// Parses /proc/net/dev into (name, counters).
pub fn parse_net_dev(text: &str) -> Vec<(String, GuestNetworkInterfaceStat)> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let v: Vec<u64> = rest
                .split_whitespace()
                .map(|x| x.parse().ok())
                .collect::<Option<_>>()?;
            if v.len() < 16 {
                return None;
            }
            Some((
                name.trim().to_string(),
                GuestNetworkInterfaceStat {
                    rx_bytes: v[0],
                    rx_packets: v[1],
                    rx_errs: v[2],
                    rx_dropped: v[3],
                    tx_bytes: v[8],
                    tx_packets: v[9],
                    tx_errs: v[10],
                    tx_dropped: v[11],
                },
            ))
        })
        .collect()
}

/// The Ethernet-style (6-byte) hardware address of a link-layer entry, as sysfs writes
/// it (`52:54:00:12:34:56`).
fn mac_of(addr: &nix::sys::socket::LinkAddr) -> Option<String> {
    let ll: &libc::sockaddr_ll = addr.as_ref();
    (ll.sll_halen == 6).then(|| {
        ll.sll_addr[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    })
}

/// `guest-network-get-interfaces`. Hardware addresses come from the link-layer entries
/// of getifaddrs(3), which reads them with the addresses (no file per interface).
pub fn interfaces() -> io::Result<Vec<GuestNetworkInterface>> {
    let stats = crate::linux::sysfs::attr("/proc/net/dev")
        .map(|t| parse_net_dev(&t))
        .unwrap_or_default();
    let all: Vec<_> = nix::ifaddrs::getifaddrs()
        .map_err(io::Error::from)?
        .collect();
    let macs: Vec<(&str, String)> = all
        .iter()
        .filter_map(|ifa| {
            let link = ifa.address.as_ref()?.as_link_addr()?;
            Some((ifa.interface_name.as_str(), mac_of(link)?))
        })
        .collect();
    // An alias (`eth0:1`) has its device's address.
    let mac_for = |name: &str| {
        let base = name.split(':').next().unwrap_or(name);
        macs.iter()
            .find(|(n, _)| *n == base)
            .map(|(_, m)| m.clone())
    };
    let mut out: Vec<GuestNetworkInterface> = Vec::new();
    for ifa in &all {
        let idx = match out.iter().position(|i| i.name == ifa.interface_name) {
            Some(i) => i,
            None => {
                out.push(GuestNetworkInterface {
                    name: ifa.interface_name.clone(),
                    hardware_address: mac_for(&ifa.interface_name),
                    statistics: stats
                        .iter()
                        .find(|(n, _)| *n == ifa.interface_name)
                        .map(|(_, s)| s.clone()),
                    ..Default::default()
                });
                out.len() - 1
            }
        };
        let (Some(addr), Some(mask)) = (&ifa.address, &ifa.netmask) else {
            continue;
        };
        let entry = match addr.family() {
            Some(AddressFamily::Inet) => {
                let (Some(a), Some(m)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) else {
                    continue;
                };
                GuestIpAddress {
                    ip_address: a.ip().to_string(),
                    ip_address_type: GuestIpAddressType::Ipv4,
                    prefix: i64::from(u32::from(m.ip()).count_ones()),
                }
            }
            Some(AddressFamily::Inet6) => {
                let (Some(a), Some(m)) = (addr.as_sockaddr_in6(), mask.as_sockaddr_in6()) else {
                    continue;
                };
                GuestIpAddress {
                    ip_address: a.ip().to_string(),
                    ip_address_type: GuestIpAddressType::Ipv6,
                    prefix: i64::from(u128::from(m.ip()).count_ones()),
                }
            }
            _ => continue,
        };
        out[idx]
            .ip_addresses
            .get_or_insert_with(Vec::new)
            .push(entry);
    }
    Ok(out)
}

fn hex_v4(s: &str) -> Option<String> {
    Some(Ipv4Addr::from(u32::from_str_radix(s, 16).ok()?.swap_bytes()).to_string())
}

fn hex_v6(s: &str) -> Option<String> {
    Some(Ipv6Addr::from(u128::from_str_radix(s, 16).ok()?).to_string())
}

/// Parses /proc/net/route.
pub fn parse_route(text: &str) -> Vec<GuestNetworkRoute> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 11 {
                return None;
            }
            let int = |s: &str| s.parse::<i64>().ok();
            Some(GuestNetworkRoute {
                iface: f[0].to_string(),
                destination: hex_v4(f[1])?,
                gateway: hex_v4(f[2]),
                flags: u64::from_str_radix(f[3], 16).ok(),
                refcnt: int(f[4]),
                use_: int(f[5]),
                metric: int(f[6])?,
                mask: hex_v4(f[7]),
                mtu: int(f[8]),
                window: int(f[9]),
                irtt: int(f[10]),
                version: 4,
                ..Default::default()
            })
        })
        .collect()
}

/// Parses /proc/net/ipv6_route.
pub fn parse_ipv6_route(text: &str) -> Vec<GuestNetworkRoute> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            let hex = |s: &str| u64::from_str_radix(s, 16).ok();
            Some(GuestNetworkRoute {
                destination: hex_v6(f[0])?,
                desprefixlen: Some(hex(f[1])?.to_string()),
                source: hex_v6(f[2]),
                srcprefixlen: Some(hex(f[3])?.to_string()),
                nexthop: hex_v6(f[4]),
                metric: hex(f[5])? as i64,
                refcnt: hex(f[6]).map(|v| v as i64),
                use_: hex(f[7]).map(|v| v as i64),
                flags: hex(f[8]),
                iface: f[9].to_string(),
                version: 6,
                ..Default::default()
            })
        })
        .collect()
}

/// `guest-network-get-route`.
pub fn routes() -> io::Result<Vec<GuestNetworkRoute>> {
    let mut out = parse_route(&fs::read_to_string("/proc/net/route")?);
    if let Ok(t) = fs::read_to_string("/proc/net/ipv6_route") {
        out.extend(parse_ipv6_route(&t));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_files_parse() {
        let dev = "Inter-|   Receive\n face |bytes\n    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0\n";
        let s = parse_net_dev(dev);
        assert_eq!(s[0].0, "lo");
        assert_eq!((s[0].1.rx_bytes, s[0].1.tx_packets), (3193, 29));
        let r = parse_route("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\neth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n");
        assert_eq!(r[0].destination, "0.0.0.0");
        assert_eq!(r[0].gateway.as_deref(), Some("192.0.2.1"));
        assert_eq!((r[0].metric, r[0].version), (100, 4));
        let r6 = parse_ipv6_route("fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n");
        assert_eq!(r6[0].destination, "fd00::");
        assert_eq!(r6[0].desprefixlen.as_deref(), Some("64"));
        assert_eq!((r6[0].metric, r6[0].version), (256, 6));
    }
}
