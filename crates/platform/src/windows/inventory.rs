//! Hardware inventory on Windows: network adapters with their counters (IP Helper's
//! `GetAdaptersAddresses` and `GetIfEntry2`, as qemu-ga), logical processors, mounted
//! volumes with their sizes (`volumes.rs`), PCI devices (`devices.rs`) and the load.

use std::io;

use guestlink_core::platform::Inventory;
use guestlink_vocabulary::types::{
    GuestCpuStats, GuestDeviceInfo, GuestDiskInfo, GuestDiskStatsInfo, GuestFilesystemInfo,
    GuestIpAddress, GuestIpAddressType, GuestLoadAverage, GuestLogicalProcessor, GuestMemoryBlock,
    GuestNetworkInterface, GuestNetworkInterfaceStat, GuestNetworkRoute,
};
use windows_sys::Win32::Foundation::ERROR_BUFFER_OVERFLOW;
use windows_sys::Win32::NetworkManagement::IpHelper::{
    GetAdaptersAddresses, GetIfEntry2, GAA_FLAG_INCLUDE_PREFIX, GAA_FLAG_SKIP_ANYCAST,
    GAA_FLAG_SKIP_MULTICAST, IP_ADAPTER_ADDRESSES_LH, MIB_IF_ROW2,
};
use windows_sys::Win32::System::Threading::GetActiveProcessorCount;

use super::rules::{mac_address, sockaddr_ip};
use super::wide::from_ptr;

/// `ALL_PROCESSOR_GROUPS`.
const ALL_PROCESSOR_GROUPS: u16 = 0xffff;
/// `AF_UNSPEC`: IPv4 and IPv6.
const AF_UNSPEC: u32 = 0;

/// The inventory of a Windows guest.
#[derive(Debug, Default, Clone, Copy)]
pub struct WindowsInventory;

fn unsupported<T>() -> io::Result<T> {
    Err(io::ErrorKind::Unsupported.into())
}

/// The adapters' list, in the buffer IP Helper filled.
fn adapters() -> io::Result<Vec<u64>> {
    let flags = GAA_FLAG_INCLUDE_PREFIX | GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST;
    let mut size = 16 * 1024u32;
    loop {
        // u64 elements: the list is 8-byte aligned.
        let mut buf = vec![0u64; (size as usize).div_ceil(8)];
        // SAFETY: the buffer holds `size` bytes.
        let r = unsafe {
            GetAdaptersAddresses(
                AF_UNSPEC,
                flags,
                std::ptr::null(),
                buf.as_mut_ptr().cast(),
                &mut size,
            )
        };
        match r {
            0 => return Ok(buf),
            ERROR_BUFFER_OVERFLOW => continue,
            e => return Err(io::Error::from_raw_os_error(e as i32)),
        }
    }
}

/// The counters of interface `index`.
fn statistics(index: u32) -> Option<GuestNetworkInterfaceStat> {
    // SAFETY: MIB_IF_ROW2 is plain data; the index selects the row.
    let mut row: MIB_IF_ROW2 = unsafe { std::mem::zeroed() };
    row.InterfaceIndex = index;
    // SAFETY: `row` is valid and has its index set.
    if unsafe { GetIfEntry2(&mut row) } != 0 {
        return None;
    }
    Some(GuestNetworkInterfaceStat {
        rx_bytes: row.InOctets,
        rx_packets: row.InUcastPkts,
        rx_errs: row.InErrors,
        rx_dropped: row.InDiscards,
        tx_bytes: row.OutOctets,
        tx_packets: row.OutUcastPkts,
        tx_errs: row.OutErrors,
        tx_dropped: row.OutDiscards,
    })
}

impl Inventory for WindowsInventory {
    fn filesystems(&self) -> io::Result<Vec<GuestFilesystemInfo>> {
        super::volumes::filesystems()
    }

    fn disks(&self) -> io::Result<Vec<GuestDiskInfo>> {
        super::disks::disks()
    }

    fn disk_stats(&self) -> io::Result<Vec<GuestDiskStatsInfo>> {
        unsupported()
    }

    fn interfaces(&self) -> io::Result<Vec<GuestNetworkInterface>> {
        let buf = adapters()?;
        let mut out = Vec::new();
        let mut p = buf.as_ptr().cast::<IP_ADAPTER_ADDRESSES_LH>();
        while !p.is_null() {
            // SAFETY: `p` walks the list IP Helper wrote into `buf`, which lives.
            let a = unsafe { &*p };
            let mut addresses = Vec::new();
            let mut u = a.FirstUnicastAddress;
            while !u.is_null() {
                // SAFETY: as above.
                let ua = unsafe { &*u };
                let sa = ua.Address.lpSockaddr;
                if !sa.is_null() {
                    // SAFETY: the socket address has the length IP Helper gives.
                    let raw = unsafe {
                        std::slice::from_raw_parts(
                            sa.cast::<u8>(),
                            ua.Address.iSockaddrLength.max(0) as usize,
                        )
                    };
                    if let Some(ip) = sockaddr_ip(raw) {
                        addresses.push(GuestIpAddress {
                            ip_address: ip.to_string(),
                            ip_address_type: if ip.is_ipv4() {
                                GuestIpAddressType::Ipv4
                            } else {
                                GuestIpAddressType::Ipv6
                            },
                            prefix: i64::from(ua.OnLinkPrefixLength),
                        });
                    }
                }
                u = ua.Next;
            }
            let len = (a.PhysicalAddressLength as usize).min(a.PhysicalAddress.len());
            // SAFETY: the union's index member is what IP Helper sets.
            let index = unsafe { a.Anonymous1.Anonymous.IfIndex };
            out.push(GuestNetworkInterface {
                // SAFETY: IP Helper's friendly name is NUL-terminated.
                name: unsafe { from_ptr(a.FriendlyName) },
                hardware_address: mac_address(&a.PhysicalAddress[..len]),
                ip_addresses: Some(addresses),
                statistics: statistics(index),
            });
            p = a.Next;
        }
        Ok(out)
    }

    fn routes(&self) -> io::Result<Vec<GuestNetworkRoute>> {
        unsupported()
    }

    fn cpu_stats(&self) -> io::Result<Vec<GuestCpuStats>> {
        unsupported()
    }

    fn load(&self) -> io::Result<GuestLoadAverage> {
        let [load1m, load5m, load15m] = super::load::loads();
        Ok(GuestLoadAverage {
            load1m,
            load5m,
            load15m,
        })
    }

    fn vcpus(&self) -> io::Result<Vec<GuestLogicalProcessor>> {
        // SAFETY: no pointers.
        let n = unsafe { GetActiveProcessorCount(ALL_PROCESSOR_GROUPS) };
        Ok((0..i64::from(n))
            .map(|logical_id| GuestLogicalProcessor {
                logical_id,
                online: true,
                can_offline: Some(false),
            })
            .collect())
    }

    fn memory_blocks(&self) -> io::Result<Vec<GuestMemoryBlock>> {
        unsupported()
    }

    fn memory_block_size(&self) -> io::Result<u64> {
        unsupported()
    }

    fn devices(&self) -> io::Result<Vec<GuestDeviceInfo>> {
        super::devices::pci_devices()
    }
}
