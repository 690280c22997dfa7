//! Paths watched for the host (`__org.guestlink_path-watch`): each watch's number and
//! the flag that stops its thread. A watch leaves the table when it is unwatched or
//! its thread ends (its path went away, or no host listens any more).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct Table {
    next: i64,
    stops: HashMap<i64, Arc<AtomicBool>>,
}

/// The watches. Cheap to clone; all clones are the same table.
#[derive(Debug, Clone, Default)]
pub struct Watches {
    table: Arc<Mutex<Table>>,
}

impl Watches {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Numbers a new watch stopped by `stop`, unless `limit` watches run already.
    pub fn insert(&self, stop: Arc<AtomicBool>, limit: usize) -> Option<i64> {
        let mut t = self.lock();
        if t.stops.len() >= limit {
            return None;
        }
        t.next += 1;
        let id = t.next;
        t.stops.insert(id, stop);
        Some(id)
    }

    /// Stops watch `id` and forgets it; false when there is no such watch.
    pub fn stop(&self, id: i64) -> bool {
        match self.lock().stops.remove(&id) {
            Some(flag) => {
                flag.store(true, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    /// Watches running.
    pub fn len(&self) -> usize {
        self.lock().stops.len()
    }

    /// Whether none runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
