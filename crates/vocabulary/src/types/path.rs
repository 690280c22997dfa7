//! Types of the `__org.guestlink_path-*` commands: files and directories managed by
//! path (stat, list, mkdir, remove, rename, modes, owners, links, times), beside the
//! handle-based `guest-file-*`.

qapi_enum! {
    /// What a path names.
    pub enum GuestlinkPathKind as "__org.guestlink_PathKind" {
        /// A regular file.
        File = "file",
        /// A directory.
        Directory = "directory",
        /// A symbolic link (not followed).
        Symlink = "symlink",
        /// A named pipe.
        Fifo = "fifo",
        /// A unix socket.
        Socket = "socket",
        /// A character device.
        CharDevice = "char-device",
        /// A block device.
        BlockDevice = "block-device",
        /// Anything else.
        Other = "other",
    }
}

qapi_struct! {
    /// Arguments naming one path.
    pub struct GuestlinkPathArgs as "q_obj___org.guestlink_path-sha256-arg" {
        /// An absolute path in the guest.
        path: String = "path",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_path-stat`.
    pub struct GuestlinkPathStatArgs as "q_obj___org.guestlink_path-stat-arg" {
        /// An absolute path in the guest.
        path: String = "path",
        /// Follow a symbolic link at the end of the path (as stat(1) -L); default false.
        follow: Option<bool> = "follow",
    }
}

qapi_struct! {
    /// What `__org.guestlink_path-stat` reports; also one entry of a listing.
    pub struct GuestlinkPathInfo as "__org.guestlink_PathInfo" {
        /// The entry's name within its directory (the last component of the path).
        name: String = "name",
        /// What it is.
        kind: GuestlinkPathKind = "type",
        /// Size in bytes.
        size: u64 = "size",
        /// Permission bits with set-user-id, set-group-id and sticky (07777).
        mode: i64 = "mode",
        /// Owner's user id.
        uid: i64 = "uid",
        /// Owner's group id.
        gid: i64 = "gid",
        /// Hard links.
        nlink: u64 = "nlink",
        /// Last modification, nanoseconds since the epoch.
        mtime_ns: i64 = "mtime-ns",
        /// Last access, nanoseconds since the epoch.
        atime_ns: i64 = "atime-ns",
        /// Where a symbolic link points.
        target: Option<String> = "target",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_path-list`.
    pub struct GuestlinkPathListArgs as "q_obj___org.guestlink_path-list-arg" {
        /// An absolute path of a directory in the guest.
        path: String = "path",
        /// Entries to skip, in name order: the `next` of the previous page; default 0.
        offset: Option<u64> = "offset",
        /// Entries to return, 1 to 10000; default 1000.
        limit: Option<u64> = "limit",
    }
}

qapi_struct! {
    /// One page of a directory listing.
    pub struct GuestlinkPathPage as "__org.guestlink_PathPage" {
        /// The entries of this page, in byte order of their names, without `.` and `..`.
        entries: Vec<GuestlinkPathInfo> = "entries",
        /// Entries in the directory.
        total: u64 = "total",
        /// The offset of the next page; absent on the last page.
        next: Option<u64> = "next",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_path-mkdir`.
    pub struct GuestlinkPathMkdirArgs as "q_obj___org.guestlink_path-mkdir-arg" {
        /// An absolute path in the guest.
        path: String = "path",
        /// Create missing parents too, and succeed when the directory exists (mkdir -p).
        parents: Option<bool> = "parents",
        /// Permission bits of the new directories (before the umask); default 0777.
        mode: Option<i64> = "mode",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_path-remove`.
    pub struct GuestlinkPathRemoveArgs as "q_obj___org.guestlink_path-remove-arg" {
        /// An absolute path in the guest. A symbolic link is removed, not followed.
        path: String = "path",
        /// Remove a directory with everything in it (rm -r). `/` is never removed.
        recursive: Option<bool> = "recursive",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_path-rename`.
    pub struct GuestlinkPathRenameArgs as "q_obj___org.guestlink_path-rename-arg" {
        /// The path to rename.
        path: String = "path",
        /// Its new path, on the same file system; an existing file there is replaced.
        new_path: String = "new-path",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_path-set-attributes`: what is absent stays.
    pub struct GuestlinkPathSetAttributesArgs as "q_obj___org.guestlink_path-set-attributes-arg" {
        /// An absolute path in the guest (a link is followed).
        path: String = "path",
        /// New permission bits (07777), set after the owner (which clears set-id bits).
        mode: Option<i64> = "mode",
        /// New owner: a user name or a numeric id.
        owner: Option<String> = "owner",
        /// New group: a group name or a numeric id.
        group: Option<String> = "group",
        /// New modification time, nanoseconds since the epoch.
        mtime_ns: Option<i64> = "mtime-ns",
        /// New access time, nanoseconds since the epoch.
        atime_ns: Option<i64> = "atime-ns",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_path-symlink`.
    pub struct GuestlinkPathSymlinkArgs as "q_obj___org.guestlink_path-symlink-arg" {
        /// The link to create.
        path: String = "path",
        /// What it points to, stored as given.
        target: String = "target",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_path-watch`.
    pub struct GuestlinkPathWatchArgs as "q_obj___org.guestlink_path-watch-arg" {
        /// An absolute path of a file or directory in the guest.
        path: String = "path",
        /// Watch the directories below it too, those created later included.
        recursive: Option<bool> = "recursive",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_path-unwatch`, and what `path-watch` returns.
    pub struct GuestlinkWatchId as "__org.guestlink_WatchId" {
        /// The watch.
        watch: i64 = "watch",
    }
}

qapi_enum! {
    /// What happened to a watched path.
    pub enum GuestlinkPathChange as "__org.guestlink_PathChange" {
        /// It was created (or moved in from an unwatched place).
        Created = "created",
        /// A file was written and closed, or truncated.
        Modified = "modified",
        /// It was removed (or moved out to an unwatched place).
        Deleted = "deleted",
        /// It was renamed away; a `moved-to` with the same `cookie` follows.
        MovedFrom = "moved-from",
        /// It was renamed here.
        MovedTo = "moved-to",
        /// Its mode, owner or times changed.
        Attributes = "attributes",
        /// Too many changes came at once and some were lost: read the tree again.
        Overflow = "overflow",
        /// The watch ended: its path was removed or moved away.
        Ended = "ended",
    }
}

qapi_struct! {
    /// Data of the `PATH_CHANGED` event.
    pub struct GuestlinkPathChanged as "__org.guestlink_PathChanged" {
        /// The watch that saw it.
        watch: i64 = "watch",
        /// The path that changed.
        path: String = "path",
        /// What happened.
        change: GuestlinkPathChange = "change",
        /// Whether the path is a directory.
        directory: bool = "directory",
        /// Pairs a `moved-from` with its `moved-to` (0 otherwise).
        cookie: u64 = "cookie",
    }
}
