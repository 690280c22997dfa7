//! The headless clipboard: selections held in memory. Used for tests and for sessions
//! without a display; nothing else can copy into it, so it never reports a change.

use std::collections::HashMap;

use guestlink_vocabulary::types::ClipboardSelection;

use super::mime::is_text;
use super::{channels, Clipboard, Selections};

/// Selections held in memory.
#[derive(Debug, Default)]
struct Memory(HashMap<ClipboardSelection, (String, Vec<u8>)>);

impl Selections for Memory {
    fn get(
        &mut self,
        selection: ClipboardSelection,
        mime: Option<String>,
    ) -> Result<(String, Vec<u8>), String> {
        match (self.0.get(&selection), mime) {
            (None, _) => Err("the selection is empty".to_string()),
            (Some((have, data)), None) if is_text(have) => Ok((have.clone(), data.clone())),
            (Some((have, data)), Some(want))
                if *have == want || (is_text(have) && is_text(&want)) =>
            {
                Ok((have.clone(), data.clone()))
            }
            (Some((have, _)), want) => Err(format!(
                "the selection holds {have}, not {}",
                want.as_deref().unwrap_or("text")
            )),
        }
    }

    fn set(
        &mut self,
        selection: ClipboardSelection,
        mime: String,
        data: Vec<u8>,
    ) -> Result<(), String> {
        self.0.insert(selection, (mime, data));
        Ok(())
    }

    fn offer(&mut self, selection: ClipboardSelection, _types: Vec<String>) -> Result<(), String> {
        // The agent answers pastes of what the host offered; what was here is gone.
        self.0.remove(&selection);
        Ok(())
    }

    fn clear(&mut self, selection: ClipboardSelection) -> Result<(), String> {
        self.0.remove(&selection);
        Ok(())
    }
}

/// Starts the in-memory back end.
pub fn start() -> Clipboard {
    let (handle, ends) = channels(true);
    std::thread::spawn(move || {
        // Nothing else writes to this clipboard, so no change is ever sent; keeping the
        // sender tells the agent the back end is still running.
        let super::Ends {
            requests,
            changes: _changes,
            fetches: _fetches,
        } = ends;
        let mut memory = Memory::default();
        while let Ok(r) = requests.recv() {
            r.answer(&mut memory);
        }
    });
    handle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn holds_what_it_is_given() {
        let c = start();
        let sel = ClipboardSelection::Clipboard;
        assert!(c.get(sel, None).await.is_err());
        c.set(sel, "text/plain;charset=utf-8".into(), b"hi".to_vec())
            .await
            .unwrap();
        assert_eq!(c.get(sel, None).await.unwrap().1, b"hi");
        assert!(c.get(sel, Some("image/png".into())).await.is_err());
        assert!(c.get(ClipboardSelection::Primary, None).await.is_err());
    }
}
