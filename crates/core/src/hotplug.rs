//! Resize automation: what the agent does when the host hot-adds a CPU or memory, or
//! resizes a disk. The platform turns the kernel's uevents into [`Change`]s; [`apply`]
//! onlines the new CPU or memory block (as distributions' udev rules do, unless the
//! agent was told only to report), grows the file systems on a resized disk when
//! asked to, and tells subscribers with `CPU_ADDED`, `MEMORY_ADDED` or `DISK_RESIZED`.

use std::path::PathBuf;

use guestlink_vocabulary::events::{CpuAddedEvent, DiskResizedEvent, MemoryAddedEvent};
use guestlink_vocabulary::types::{
    GuestMemoryBlockResponseType, GuestlinkCpuAdded, GuestlinkDiskResized, GuestlinkMemoryAdded,
};

use crate::events::{Audience, EventRecord};
use crate::Agent;

/// Something the host changed under the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// CPU `cpuN` appeared.
    CpuAdded(i64),
    /// Memory block `memoryN` appeared.
    MemoryAdded(u64),
    /// A disk changed size.
    DiskResized {
        /// Its kernel name (`vdb`).
        name: String,
        /// Its new size in bytes.
        size: u64,
    },
}

/// What to do about changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Online new CPUs and memory blocks (the default).
    pub online: bool,
    /// Grow the file systems mounted from a resized disk.
    pub grow: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            online: true,
            grow: false,
        }
    }
}

/// Acts on one change and publishes its event.
pub async fn apply(agent: &Agent, change: Change, opts: Options) {
    let platform = agent.platform().clone();
    let record = match change {
        Change::CpuAdded(id) => {
            let result = if opts.online {
                let machine = platform.machine.clone();
                blocking(move || machine.set_vcpu(id, true)).await
            } else {
                Err("not onlined: the agent only reports hot-added CPUs".into())
            };
            tracing::info!(cpu = id, online = result.is_ok(), "CPU hot-added");
            EventRecord::new::<CpuAddedEvent>(&GuestlinkCpuAdded {
                logical_id: id,
                online: result.is_ok(),
                error: result.err().filter(|_| opts.online),
            })
        }
        Change::MemoryAdded(index) => {
            let size = platform.inventory.memory_block_size().unwrap_or(0);
            let result = if opts.online {
                let machine = platform.machine.clone();
                match blocking(move || Ok(machine.set_memory_block(index, true))).await {
                    Ok((GuestMemoryBlockResponseType::Success, _)) => Ok(()),
                    Ok((outcome, errno)) => Err(format!(
                        "onlining memory block {index}: {}{}",
                        outcome.as_str(),
                        errno.map(|e| format!(" (errno {e})")).unwrap_or_default()
                    )),
                    Err(e) => Err(e),
                }
            } else {
                Err("not onlined: the agent only reports hot-added memory".into())
            };
            tracing::info!(block = index, online = result.is_ok(), "memory hot-added");
            EventRecord::new::<MemoryAddedEvent>(&GuestlinkMemoryAdded {
                phys_index: index,
                size,
                online: result.is_ok(),
                error: result.err().filter(|_| opts.online),
            })
        }
        Change::DiskResized { name, size } => {
            let mut grown = Vec::new();
            if opts.grow {
                let fs = platform.filesystems.clone();
                let disk = name.clone();
                let results = blocking(move || {
                    Ok(fs
                        .mounts_on_disk(&disk)
                        .into_iter()
                        .map(|m: PathBuf| (m.clone(), fs.grow(&m)))
                        .collect::<Vec<_>>())
                })
                .await
                .unwrap_or_default();
                for (mount, r) in results {
                    match r {
                        Ok(g) => grown.push(g),
                        Err(e) => {
                            tracing::warn!(mount = %mount.display(), error = %e, "could not grow")
                        }
                    }
                }
            }
            tracing::info!(disk = %name, size, grown = grown.len(), "disk resized");
            EventRecord::new::<DiskResizedEvent>(&GuestlinkDiskResized { name, size, grown })
        }
    };
    agent.publish(record, Audience::Everyone);
}

/// Runs sysfs writes and helper programs off the async threads
/// ([`crate::handlers::off_thread`]).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    crate::handlers::off_thread(f)
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
}
