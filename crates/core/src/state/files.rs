//! Open file handles: global to the process, surviving reconnects, numbered from the
//! persistent counter.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::sync::{Arc, Mutex};

use super::persist::StateFile;

/// An open file and the stdio-like end-of-file flag qemu-ga reports.
#[derive(Debug)]
pub struct OpenFile {
    /// The file, non-blocking.
    pub file: File,
    /// Set when a read reached the end; cleared by a seek (as `feof`).
    pub eof: bool,
}

/// The handle table.
#[derive(Debug)]
pub struct FileTable {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    counter: StateFile,
    open: HashMap<i64, Arc<Mutex<OpenFile>>>,
}

impl FileTable {
    pub(super) fn new(counter: StateFile) -> FileTable {
        FileTable {
            inner: Mutex::new(Inner {
                counter,
                open: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `file` under a new handle.
    pub fn insert(&self, file: File) -> io::Result<i64> {
        let mut inner = self.lock();
        let handle = inner.counter.take_handle()?;
        inner
            .open
            .insert(handle, Arc::new(Mutex::new(OpenFile { file, eof: false })));
        Ok(handle)
    }

    /// The file behind `handle`.
    pub fn get(&self, handle: i64) -> Option<Arc<Mutex<OpenFile>>> {
        self.lock().open.get(&handle).cloned()
    }

    /// Forgets `handle`; the file closes when the last user drops it.
    pub fn remove(&self, handle: i64) -> Option<Arc<Mutex<OpenFile>>> {
        self.lock().open.remove(&handle)
    }

    /// Number of open handles.
    pub fn len(&self) -> usize {
        self.lock().open.len()
    }

    /// Whether no handle is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
