//! `guestlink clipboard get|set|watch`: the clipboard of the guest's active session,
//! through guestlinkd and the session agent — what a VNC or GTK console needs without
//! SPICE.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use guestlink_client::Client;
use guestlink_vocabulary::commands::{
    GuestlinkClipboardGet, GuestlinkClipboardGetRaw, GuestlinkClipboardSet,
    GuestlinkClipboardSetRaw, GuestlinkClipboardTypes,
};
use guestlink_vocabulary::types::{
    Base64Data, ClipboardGetArgs, ClipboardSelection, ClipboardSetArgs, ClipboardSetRawArgs,
    ClipboardTypesArgs, CLIPBOARD_SIZE,
};
use guestlink_vocabulary::Command;
use serde_json::json;

/// The MIME type of plain text.
pub const TEXT: &str = "text/plain;charset=utf-8";

/// Which selection, by the name users type.
pub fn selection(primary: bool) -> Option<ClipboardSelection> {
    primary.then_some(ClipboardSelection::Primary)
}

/// Prints the clipboard's contents (to `output` or standard output).
pub async fn get(
    client: &mut Client,
    primary: bool,
    mime: Option<&str>,
    output: Option<&Path>,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let args = ClipboardGetArgs {
        selection: selection(primary),
        mime_type: mime.map(String::from),
    };
    // Raw bytes where the agent has bulk transfer: no base64 on either side.
    let data = if client.offers(GuestlinkClipboardGetRaw::NAME).await? {
        client
            .call_with_reply_payload::<GuestlinkClipboardGetRaw>(&args, CLIPBOARD_SIZE, |r| r.count)
            .await?
            .1
    } else {
        client.call::<GuestlinkClipboardGet>(&args).await?.data.0
    };
    match output {
        Some(p) => std::fs::write(p, &data)?,
        None if json_out => println!(
            "{}",
            json!({"mime-type": mime.unwrap_or(TEXT), "data": guestlink_vocabulary::types::base64_encode(&data)})
        ),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&data)?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The MIME type of a file, by its name.
fn mime_of(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("bmp") => "image/bmp",
        Some("html" | "htm") => "text/html",
        _ => TEXT,
    }
}

/// Sets the clipboard from `text`, a file, or standard input.
pub async fn set(
    client: &mut Client,
    primary: bool,
    mime: Option<&str>,
    text: Option<&str>,
    file: Option<&PathBuf>,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let (data, guessed) = match (text, file) {
        (Some(t), _) => (t.as_bytes().to_vec(), TEXT),
        (None, Some(f)) => (std::fs::read(f)?, mime_of(f)),
        (None, None) => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf)?;
            (buf, TEXT)
        }
    };
    let size = data.len();
    let mime_type = mime.unwrap_or(guessed).to_string();
    if client.offers(GuestlinkClipboardSetRaw::NAME).await? {
        let args = ClipboardSetRawArgs {
            selection: selection(primary),
            mime_type,
            count: size as i64,
        };
        client
            .call_with_payload_up_to::<GuestlinkClipboardSetRaw>(&args, &data, Some(CLIPBOARD_SIZE))
            .await?;
    } else {
        client
            .call::<GuestlinkClipboardSet>(&ClipboardSetArgs {
                selection: selection(primary),
                mime_type,
                data: Base64Data(data),
            })
            .await?;
    }
    if json_out {
        println!("{}", json!({"set": size}));
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints what the clipboard offers now and after every change, and with `fetch` the
/// text itself; stops after `count` changes.
pub async fn watch(
    client: &mut Client,
    primary: bool,
    fetch: bool,
    count: Option<usize>,
) -> anyhow::Result<ExitCode> {
    client.subscribe(Some(&["CLIPBOARD_CHANGED"]), None).await?;
    let want = selection(primary).unwrap_or(ClipboardSelection::Clipboard);
    let now = client
        .call::<GuestlinkClipboardTypes>(&ClipboardTypesArgs {
            selection: Some(want),
        })
        .await;
    let mut out = std::io::stdout().lock();
    if let Ok(t) = now {
        writeln!(out, "{}", json!({"session": t.session, "types": t.types}))?;
        out.flush()?;
    }
    let mut seen = 0;
    while count.is_none_or(|c| seen < c) {
        let e = client.next_event().await?;
        if e.name != "CLIPBOARD_CHANGED" || e.data["selection"] != want.as_str() {
            continue;
        }
        seen += 1;
        let mut line = json!({"session": e.data["session"], "types": e.data["types"]});
        let has_text = e.data["types"].as_array().is_some_and(|t| {
            t.iter()
                .any(|m| m.as_str().is_some_and(|m| m.starts_with("text/")))
        });
        if fetch && has_text {
            let data = client
                .call::<GuestlinkClipboardGet>(&ClipboardGetArgs {
                    selection: Some(want),
                    mime_type: None,
                })
                .await?;
            line["text"] = String::from_utf8_lossy(&data.data.0).into();
        }
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}
