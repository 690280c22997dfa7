//! Types of the desktop extensions the SPICE agent protocol needs and any host may use:
//! a clipboard the host offers without sending it, files the host drops into the
//! active user's download directory, and the display layout.

use super::ClipboardSelection;

qapi_struct! {
    /// Arguments of `__org.guestlink_clipboard-offer`: the host owns a selection and
    /// offers these types; the data is fetched from it when a guest program pastes.
    pub struct ClipboardOfferArgs as "q_obj___org.guestlink_clipboard-offer-arg" {
        /// Which selection (default `clipboard`).
        selection: Option<ClipboardSelection> = "selection",
        /// MIME types on offer; none: the host lets the selection go.
        types: Vec<String> = "types",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_clipboard-fetch` and `__org.guestlink_clipboard-clear`.
    pub struct ClipboardSelectionArgs as "q_obj___org.guestlink_clipboard-selection-arg" {
        /// Which selection (default `clipboard`).
        selection: Option<ClipboardSelection> = "selection",
        /// The MIME type wanted (fetch only); the first offered when absent.
        mime_type: Option<String> = "mime-type",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_transfer-start`.
    pub struct TransferStartArgs as "q_obj___org.guestlink_transfer-start-arg" {
        /// The file's name: one path component, no `/`, not `.` or `..`.
        name: String = "name",
        /// Its size in bytes, reserved before any data is accepted.
        size: i64 = "size",
    }
}

qapi_struct! {
    /// A file transfer that may now receive data.
    pub struct Transfer as "GuestlinkTransfer" {
        /// Handle for `transfer-write`, `transfer-cancel`.
        handle: i64 = "handle",
        /// Where the file is being written (a collision-free name).
        path: String = "path",
        /// The user who owns it.
        uid: i64 = "uid",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_transfer-write`: `count` raw bytes follow (bulk),
    /// or `data` carries them in base64.
    pub struct TransferWriteArgs as "q_obj___org.guestlink_transfer-write-arg" {
        /// The transfer.
        handle: i64 = "handle",
        /// Bytes that follow the request.
        count: i64 = "count",
    }
}

qapi_struct! {
    /// How far a transfer got.
    pub struct TransferProgress as "GuestlinkTransferProgress" {
        /// Bytes received so far.
        received: i64 = "received",
        /// Whether that is all of it: the file is complete and closed.
        complete: bool = "complete",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_transfer-cancel`.
    pub struct TransferHandleArgs as "q_obj___org.guestlink_transfer-cancel-arg" {
        /// The transfer.
        handle: i64 = "handle",
    }
}

qapi_struct! {
    /// One display of a layout.
    pub struct Display as "GuestlinkDisplay" {
        /// Display id (the host's index).
        id: i64 = "id",
        /// Width in pixels; 0 with `height` 0: the display is off.
        width: i64 = "width",
        /// Height in pixels.
        height: i64 = "height",
        /// Left edge, when the host placed it.
        x: Option<i64> = "x",
        /// Top edge, when the host placed it.
        y: Option<i64> = "y",
        /// The guest output that shows it (a connector name such as `Virtual-2`), when
        /// the host said (SPICE's GRAPHICS_DEVICE_INFO); else display `i` of the
        /// layout drives the `i`th output.
        output: Option<String> = "output",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_display-set`.
    pub struct DisplaySetArgs as "q_obj___org.guestlink_display-set-arg" {
        /// The layout the host's window has.
        displays: Vec<Display> = "displays",
    }
}

/// The order of output (connector) names as the kernel made them: the text before a
/// trailing number, then the number, so `Virtual-2` comes before `Virtual-10`.
pub fn output_order(name: &str) -> (String, u64) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (text, number) = name.split_at(name.len() - digits);
    (text.to_string(), number.parse().unwrap_or(0))
}
