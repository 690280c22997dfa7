//! Log lines to the Windows Application log, source `guestlinkd`, as qemu-ga logs its
//! audit and error messages when it runs as a service.

use std::sync::OnceLock;

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::System::EventLog::{
    RegisterEventSourceW, ReportEventW, EVENTLOG_ERROR_TYPE, EVENTLOG_INFORMATION_TYPE,
    EVENTLOG_WARNING_TYPE,
};

use crate::logging::Sink;

/// The event source handle, as an address (the handle is a pointer).
static SOURCE: OnceLock<usize> = OnceLock::new();

fn source() -> HANDLE {
    *SOURCE.get_or_init(|| {
        let name: Vec<u16> = super::service::SERVICE_NAME
            .encode_utf16()
            .chain(std::iter::once(0))
            .collect();
        // SAFETY: the local machine (null) and a NUL-terminated source name.
        unsafe { RegisterEventSourceW(std::ptr::null(), name.as_ptr()) as usize }
    }) as HANDLE
}

/// The event type of a line in qemu-ga's format (`<time>: <level>: <message>`).
fn event_type(line: &str) -> u16 {
    match line.split(": ").nth(1) {
        Some("error" | "critical") => EVENTLOG_ERROR_TYPE,
        Some("warning") => EVENTLOG_WARNING_TYPE,
        _ => EVENTLOG_INFORMATION_TYPE,
    }
}

/// A sink that reports each line as an event.
pub fn sink() -> Sink {
    Box::new(|line: &[u8]| {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end();
        let h = source();
        if h.is_null() {
            return;
        }
        let wide: Vec<u16> = text.encode_utf16().chain(std::iter::once(0)).collect();
        let strings = [wide.as_ptr()];
        // SAFETY: the source is registered; one NUL-terminated string, no raw data.
        unsafe {
            ReportEventW(
                h,
                event_type(text),
                0,
                1,
                std::ptr::null_mut(),
                1,
                0,
                strings.as_ptr(),
                std::ptr::null(),
            )
        };
    })
}
