//! System services through systemd's D-Bus API (`org.freedesktop.systemd1`), as
//! systemctl uses it: `ListUnits`; `LoadUnit` and the unit's properties for a status;
//! `StartUnit`/`StopUnit`/`RestartUnit` in job mode `replace`, waiting for the job's
//! `JobRemoved` signal and its result; `EnableUnitFiles`/`DisableUnitFiles` followed by
//! `Reload`. The bus is the system bus, or `GUESTLINK_SYSTEM_BUS` (the tests' private
//! bus with a stand-in systemd), reached through [`crate::linux::dbus`].

use std::time::Duration;

use guestlink_core::platform::{BoxFuture, Services};
use guestlink_vocabulary::types::{GuestlinkService, GuestlinkServiceAction};

use crate::linux::dbus::{Arg, Bus, BusError, Value};

const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const UNIT: &str = "org.freedesktop.systemd1.Unit";
const SERVICE: &str = "org.freedesktop.systemd1.Service";

/// How long a start, stop or restart job is waited for: longer than systemd's own
/// default start and stop timeouts (90 s), after which it ends the job itself.
const JOB_WAIT: Duration = Duration::from_secs(300);

/// systemd on the system bus.
#[derive(Debug, Default, Clone, Copy)]
pub struct Systemd;

async fn connect() -> Result<Bus, String> {
    Bus::system()
        .await
        .map_err(|e| e.in_words("cannot reach systemd"))
}

/// One entry of `ListUnits` (`a(ssssssouso)`): the first five fields.
fn list_entry(v: &Value) -> Option<GuestlinkService> {
    let Value::Struct(m) = v else { return None };
    let s = |i: usize| m.get(i).and_then(Value::as_str).map(String::from);
    Some(GuestlinkService {
        unit: s(0)?,
        description: s(1)?,
        load_state: s(2)?,
        active_state: s(3)?,
        sub_state: s(4)?,
        unit_file_state: None,
        main_pid: None,
    })
}

async fn list() -> Result<Vec<GuestlinkService>, String> {
    let mut bus = connect().await?;
    let body = bus
        .call(SYSTEMD, MANAGER_PATH, MANAGER, "ListUnits", &[])
        .await
        .map_err(|e| e.in_words("failed to list units"))?;
    let Some(Value::Array(units)) = body.first() else {
        return Err("failed to list units: unexpected reply".into());
    };
    let mut out: Vec<GuestlinkService> = units.iter().filter_map(list_entry).collect();
    out.sort_by(|a, b| a.unit.cmp(&b.unit));
    Ok(out)
}

async fn status_on(bus: &mut Bus, unit: &str) -> Result<GuestlinkService, BusError> {
    let body = bus
        .call(
            SYSTEMD,
            MANAGER_PATH,
            MANAGER,
            "LoadUnit",
            &[Arg::Str(unit)],
        )
        .await?;
    let path = body
        .first()
        .and_then(Value::as_str)
        .ok_or(BusError::Reply("LoadUnit"))?
        .to_string();
    let mut text = Vec::new();
    for name in [
        "Id",
        "Description",
        "LoadState",
        "ActiveState",
        "SubState",
        "UnitFileState",
    ] {
        let v = bus.property(SYSTEMD, &path, UNIT, name).await?;
        text.push(v.as_str().unwrap_or_default().to_string());
    }
    let main_pid = if unit.ends_with(".service") {
        let pid = bus.property(SYSTEMD, &path, SERVICE, "MainPID").await?;
        pid.as_u64().filter(|p| *p != 0).map(|p| p as i64)
    } else {
        None
    };
    let [id, description, load_state, active_state, sub_state, file_state] =
        <[String; 6]>::try_from(text).map_err(|_| BusError::Reply("Properties.Get"))?;
    Ok(GuestlinkService {
        unit: id,
        description,
        load_state,
        active_state,
        sub_state,
        unit_file_state: (!file_state.is_empty()).then_some(file_state),
        main_pid,
    })
}

async fn status(unit: &str) -> Result<GuestlinkService, String> {
    let mut bus = connect().await?;
    let s = status_on(&mut bus, unit)
        .await
        .map_err(|e| e.in_words(&format!("failed to read unit '{unit}'")))?;
    // As systemctl: a unit without a file that is not running is not a unit at all.
    if s.load_state == "not-found" && s.active_state == "inactive" {
        return Err(format!("Unit {unit} could not be found."));
    }
    Ok(s)
}

/// Runs a start, stop or restart job and waits for its end.
async fn run_job(bus: &mut Bus, method: &str, unit: &str) -> Result<(), BusError> {
    bus.add_match(&format!(
        "type='signal',sender='{SYSTEMD}',interface='{MANAGER}',member='JobRemoved'"
    ))
    .await?;
    // systemd sends its signals only while some client is subscribed.
    bus.call(SYSTEMD, MANAGER_PATH, MANAGER, "Subscribe", &[])
        .await?;
    let body = bus
        .call(
            SYSTEMD,
            MANAGER_PATH,
            MANAGER,
            method,
            &[Arg::Str(unit), Arg::Str("replace")],
        )
        .await?;
    let job = body
        .first()
        .and_then(Value::as_str)
        .ok_or(BusError::Reply("StartUnit"))?
        .to_string();
    let wait = async {
        loop {
            let m = bus.next_signal().await?;
            // JobRemoved(u id, o job, s unit, s result)
            if m.member.as_deref() == Some("JobRemoved")
                && m.body.get(1).and_then(Value::as_str) == Some(job.as_str())
            {
                let result = m.body.get(3).and_then(Value::as_str).unwrap_or("done");
                return Ok::<String, BusError>(result.to_string());
            }
        }
    };
    let result = match tokio::time::timeout(JOB_WAIT, wait).await {
        Ok(r) => r?,
        Err(_) => "still running".into(),
    };
    if result == "done" {
        return Ok(());
    }
    Err(BusError::Method {
        name: String::new(),
        message: format!(
            "the job's result is '{result}' (see \"systemctl status {unit}\" and \"journalctl -u {unit}\")"
        ),
    })
}

async fn control(unit: &str, action: GuestlinkServiceAction) -> Result<(), String> {
    use GuestlinkServiceAction as A;
    let mut bus = connect().await?;
    let units = [unit];
    let done = match action {
        A::Start => run_job(&mut bus, "StartUnit", unit).await,
        A::Stop => run_job(&mut bus, "StopUnit", unit).await,
        A::Restart => run_job(&mut bus, "RestartUnit", unit).await,
        A::Enable | A::Disable => {
            let args_enable = [Arg::StrArray(&units), Arg::Bool(false), Arg::Bool(false)];
            let args_disable = [Arg::StrArray(&units), Arg::Bool(false)];
            let (method, args): (&str, &[Arg<'_>]) = if action == A::Enable {
                ("EnableUnitFiles", &args_enable)
            } else {
                ("DisableUnitFiles", &args_disable)
            };
            match bus.call(SYSTEMD, MANAGER_PATH, MANAGER, method, args).await {
                Ok(_) => bus
                    .call(SYSTEMD, MANAGER_PATH, MANAGER, "Reload", &[])
                    .await
                    .map(drop),
                Err(e) => Err(e),
            }
        }
    };
    done.map_err(|e| e.in_words(&format!("failed to {} '{unit}'", action.as_str())))
}

impl Services for Systemd {
    fn list(&self) -> BoxFuture<'_, Result<Vec<GuestlinkService>, String>> {
        Box::pin(list())
    }

    fn status(&self, unit: String) -> BoxFuture<'_, Result<GuestlinkService, String>> {
        Box::pin(async move { status(&unit).await })
    }

    fn control(
        &self,
        unit: String,
        action: GuestlinkServiceAction,
    ) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { control(&unit, action).await })
    }
}
