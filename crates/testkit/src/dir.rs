//! Scratch directories that go away with the test, whatever way it ends.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty directory under the system's temporary directory, named after a tag,
/// the process and a counter; removed with everything in it when dropped (a panicking
/// test drops it while unwinding).
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// A new directory for `tag`. Panics when it cannot be made (a test cannot go on).
    pub fn new(tag: &str) -> Scratch {
        Scratch::try_new(tag).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A new directory for `tag`, or why not.
    pub fn try_new(tag: &str) -> Result<Scratch, String> {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("gl-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(Scratch { path })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside it.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }

    /// Keeps the directory after all (to look at it after a run); its path.
    pub fn keep(self) -> PathBuf {
        let path = self.path.clone();
        std::mem::forget(self);
        path
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.path.as_os_str()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_directory_goes_even_when_its_test_panics() {
        let (tx, rx) = std::sync::mpsc::channel();
        let r = std::thread::spawn(move || {
            let s = Scratch::new("panics");
            std::fs::write(s.join("f"), b"x").unwrap();
            tx.send(s.path().to_path_buf()).unwrap();
            panic!("the test fails");
        })
        .join();
        assert!(r.is_err());
        let path = rx.recv().unwrap();
        assert!(!path.exists(), "{} left behind", path.display());
        let a = Scratch::new("two");
        let b = Scratch::new("two");
        assert_ne!(a.path(), b.path());
        let kept = a.keep();
        assert!(kept.is_dir());
        std::fs::remove_dir_all(kept).unwrap();
    }
}
