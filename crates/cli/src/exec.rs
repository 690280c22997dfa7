//! `guestlink exec`: run a program in the guest with `guest-exec`, pass our standard
//! input, wait for it, print what it wrote (QGA returns output once the program has
//! exited), and exit with its status (128 + signal when a signal killed it).

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use guestlink_client::Client;
use guestlink_vocabulary::commands as cmd;
use guestlink_vocabulary::types::{
    base64_encode, GuestExecArgs, GuestExecCaptureOutput, GuestExecStatusArgs,
};

/// The result of a program as `--json` prints it: guest-exec-status's shape, with
/// base64 output.
pub fn json_result(exitcode: Option<i32>, signal: Option<i32>, out: &[u8], err: &[u8]) -> String {
    serde_json::json!({
        "exitcode": exitcode,
        "signal": signal,
        "out-data": base64_encode(out),
        "err-data": base64_encode(err),
    })
    .to_string()
}

/// Runs `argv` in the guest; with `json`, prints one object (see [`json_result`])
/// instead of the output.
pub async fn run(
    c: &mut Client,
    argv: &[String],
    env: &[String],
    pass_stdin: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let input = if pass_stdin && !std::io::stdin().is_terminal() {
        let mut data = Vec::new();
        std::io::stdin().read_to_end(&mut data)?;
        Some(base64_encode(&data))
    } else {
        None
    };
    let pid = c
        .call::<cmd::GuestExec>(&GuestExecArgs {
            path: argv[0].clone(),
            arg: Some(argv[1..].to_vec()),
            env: (!env.is_empty()).then(|| env.to_vec()),
            input_data: input,
            capture_output: Some(GuestExecCaptureOutput::Flag(true)),
        })
        .await?
        .pid;
    let mut wait = Duration::from_millis(5);
    let status = loop {
        let s = c
            .call::<cmd::GuestExecStatus>(&GuestExecStatusArgs { pid })
            .await?;
        if s.exited {
            break s;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(200));
    };
    if json {
        let out = status.out_data.as_ref().map_or(&[][..], |d| &d.0[..]);
        let err = status.err_data.as_ref().map_or(&[][..], |d| &d.0[..]);
        println!(
            "{}",
            json_result(
                status.exitcode.map(|c| c as i32),
                status.signal.map(|s| s as i32),
                out,
                err
            )
        );
    } else {
        if let Some(out) = &status.out_data {
            std::io::stdout().write_all(&out.0)?;
        }
        if let Some(err) = &status.err_data {
            std::io::stderr().write_all(&err.0)?;
        }
    }
    if status.out_truncated == Some(true) || status.err_truncated == Some(true) {
        eprintln!("guestlink: output was cut at the agent's 16 MiB limit");
    }
    let code = match (status.exitcode, status.signal) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 1,
    };
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
