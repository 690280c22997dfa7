//! System services over D-Bus, end to end: a stand-in systemd serves the
//! `org.freedesktop.systemd1` interfaces on a private `dbus-daemon`, guestlinkd is
//! pointed at it (`GUESTLINK_SYSTEM_BUS`), and a host lists, reads, starts, stops,
//! enables and disables units through the service commands, under a policy that lists
//! some of them. A failing start job comes back as an error with its result.
//!
//! The real systemd runs in the package's boot test (tests/package); this checks the
//! agent's D-Bus side (arrays of strings, booleans, job signals) against a real bus
//! daemon and zbus's decoding.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Agent, AgentExt, PrivateBus, GUESTLINKD};
use serde_json::{json, Value};
use zbus::object_server::SignalEmitter;
use zbus::{ObjectPath, OwnedObjectPath};

/// A unit's states: active, sub, file state.
type States = BTreeMap<String, (String, String, String)>;

/// The changes `EnableUnitFiles` reports: (type, file, destination).
type Changes = Vec<(String, String, String)>;

/// Calls made to the manager, in order.
type Calls = Arc<Mutex<Vec<String>>>;

fn unit_path(name: &str) -> OwnedObjectPath {
    let escaped: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("_{b:02x}")
            }
        })
        .collect();
    OwnedObjectPath::try_from(format!("/org/freedesktop/systemd1/unit/{escaped}")).unwrap()
}

struct Manager {
    units: Arc<Mutex<States>>,
    calls: Calls,
    jobs: u32,
}

type ListRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

impl Manager {
    /// Queues a job whose `JobRemoved` comes a little after its reply, as systemd's does.
    fn job(
        &mut self,
        unit: &str,
        to: (&str, &str),
        emitter: SignalEmitter<'_>,
    ) -> zbus::fdo::Result<OwnedObjectPath> {
        if !self.units.lock().unwrap().contains_key(unit) {
            return Err(zbus::fdo::Error::Failed(format!("Unit {unit} not found.")));
        }
        self.jobs += 1;
        let id = self.jobs;
        let job = OwnedObjectPath::try_from(format!("/org/freedesktop/systemd1/job/{id}")).unwrap();
        let (units, unit, job2) = (self.units.clone(), unit.to_string(), job.clone());
        let (active, sub) = (to.0.to_string(), to.1.to_string());
        let emitter = emitter.into_owned();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            // Another job's signal first: the agent must wait for its own.
            Manager::job_removed(
                &emitter,
                999,
                ObjectPath::try_from("/org/freedesktop/systemd1/job/999").unwrap(),
                "other.service",
                "failed",
            )
            .await
            .unwrap();
            let result = if unit == "broken.service" && active == "active" {
                units.lock().unwrap().get_mut(&unit).unwrap().0 = "failed".into();
                "failed"
            } else {
                let mut u = units.lock().unwrap();
                let e = u.get_mut(&unit).unwrap();
                (e.0, e.1) = (active, sub);
                "done"
            };
            Manager::job_removed(&emitter, id, job2.as_ref(), &unit, result)
                .await
                .unwrap();
        });
        Ok(job)
    }

    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl Manager {
    fn list_units(&self) -> Vec<ListRow> {
        let root = OwnedObjectPath::try_from("/").unwrap();
        self.units
            .lock()
            .unwrap()
            .iter()
            .map(|(n, (a, s, _))| {
                (
                    n.clone(),
                    format!("The {n}"),
                    "loaded".into(),
                    a.clone(),
                    s.clone(),
                    String::new(),
                    unit_path(n),
                    0,
                    String::new(),
                    root.clone(),
                )
            })
            .collect()
    }

    fn load_unit(&self, name: &str) -> OwnedObjectPath {
        unit_path(name)
    }

    fn subscribe(&self) {
        self.record("Subscribe".into());
    }

    fn start_unit(
        &mut self,
        name: &str,
        mode: &str,
        #[zbus(signal_emitter)] e: SignalEmitter<'_>,
    ) -> zbus::fdo::Result<OwnedObjectPath> {
        self.record(format!("StartUnit {name} {mode}"));
        self.job(name, ("active", "running"), e)
    }

    fn stop_unit(
        &mut self,
        name: &str,
        mode: &str,
        #[zbus(signal_emitter)] e: SignalEmitter<'_>,
    ) -> zbus::fdo::Result<OwnedObjectPath> {
        self.record(format!("StopUnit {name} {mode}"));
        self.job(name, ("inactive", "dead"), e)
    }

    fn restart_unit(
        &mut self,
        name: &str,
        mode: &str,
        #[zbus(signal_emitter)] e: SignalEmitter<'_>,
    ) -> zbus::fdo::Result<OwnedObjectPath> {
        self.record(format!("RestartUnit {name} {mode}"));
        self.job(name, ("active", "running"), e)
    }

    fn enable_unit_files(
        &self,
        files: Vec<String>,
        runtime: bool,
        force: bool,
    ) -> zbus::fdo::Result<(bool, Changes)> {
        self.record(format!("EnableUnitFiles {files:?} {runtime} {force}"));
        self.set_file_state(&files, "enabled")?;
        Ok((
            true,
            vec![("symlink".into(), "/etc/x".into(), "/lib/x".into())],
        ))
    }

    fn disable_unit_files(&self, files: Vec<String>, runtime: bool) -> zbus::fdo::Result<Changes> {
        self.record(format!("DisableUnitFiles {files:?} {runtime}"));
        self.set_file_state(&files, "disabled")?;
        Ok(vec![])
    }

    fn reload(&self) {
        self.record("Reload".into());
    }

    #[zbus(signal)]
    async fn job_removed(
        e: &SignalEmitter<'_>,
        id: u32,
        job: ObjectPath<'_>,
        unit: &str,
        result: &str,
    ) -> zbus::Result<()>;
}

impl Manager {
    fn set_file_state(&self, files: &[String], state: &str) -> zbus::fdo::Result<()> {
        let mut units = self.units.lock().unwrap();
        for f in files {
            let u = units.get_mut(f).ok_or_else(|| {
                zbus::fdo::Error::Failed(format!("Unit file {f} does not exist."))
            })?;
            u.2 = state.into();
        }
        Ok(())
    }
}

struct Unit {
    name: String,
    units: Arc<Mutex<States>>,
}

impl Unit {
    fn states(&self) -> (String, String, String) {
        self.units
            .lock()
            .unwrap()
            .get(&self.name)
            .cloned()
            .unwrap_or(("inactive".into(), "dead".into(), String::new()))
    }
}

#[zbus::interface(name = "org.freedesktop.systemd1.Unit")]
impl Unit {
    #[zbus(property)]
    fn id(&self) -> String {
        self.name.clone()
    }
    #[zbus(property)]
    fn description(&self) -> String {
        format!("The {}", self.name)
    }
    #[zbus(property)]
    fn load_state(&self) -> String {
        let known = self.units.lock().unwrap().contains_key(&self.name);
        if known { "loaded" } else { "not-found" }.into()
    }
    #[zbus(property)]
    fn active_state(&self) -> String {
        self.states().0
    }
    #[zbus(property)]
    fn sub_state(&self) -> String {
        self.states().1
    }
    #[zbus(property)]
    fn unit_file_state(&self) -> String {
        self.states().2
    }
}

struct Service(Unit);

#[zbus::interface(name = "org.freedesktop.systemd1.Service")]
impl Service {
    #[zbus(property, name = "MainPID")]
    fn main_pid(&self) -> u32 {
        if self.0.states().1 == "running" {
            321
        } else {
            0
        }
    }
}

async fn stand_in(bus: &PrivateBus, names: &[&str]) -> (zbus::Connection, Calls) {
    let units: States = names
        .iter()
        .map(|n| {
            let s = ("active".into(), "running".into(), "enabled".into());
            (n.to_string(), s)
        })
        .collect();
    let units = Arc::new(Mutex::new(units));
    let calls = Calls::default();
    let conn = zbus::connection::Builder::address(bus.address.as_str())
        .name("org.freedesktop.systemd1")
        .serve_at(
            "/org/freedesktop/systemd1",
            Manager {
                units: units.clone(),
                calls: calls.clone(),
                jobs: 0,
            },
        )
        .build()
        .await
        .unwrap();
    for name in names.iter().chain(&["missing.service"]) {
        let unit = || Unit {
            name: name.to_string(),
            units: units.clone(),
        };
        let server = conn.object_server();
        server.at(unit_path(name), unit()).await.unwrap();
        server.at(unit_path(name), Service(unit())).await.unwrap();
    }
    (conn, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_are_listed_read_and_acted_on_through_systemd() {
    let bus = PrivateBus::start();
    let (_conn, calls) = stand_in(&bus, &["app.service", "broken.service", "ssh.service"]).await;
    let policy = guestlink_testkit::Scratch::new("systemd-policy");
    std::fs::write(
        policy.path().join("50-services.toml"),
        "[services]\nunits = [\"app.service\", \"broken.service\"]\n",
    )
    .unwrap();
    let policy_dir = policy.path().display().to_string();
    let address = bus.address.clone();
    let agent = tokio::task::spawn_blocking(move || {
        Agent::start_with(GUESTLINKD, &["--policy-dir", &policy_dir], |c| {
            c.env("GUESTLINK_SYSTEM_BUS", &address);
        })
    })
    .await
    .unwrap();
    let sock = agent.sock.clone();
    let call = move |cmd: &'static str, args: Value| {
        let sock = sock.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut c = common::Conn::connect_to(&sock);
                let req = json!({"execute": cmd, "arguments": args}).to_string();
                c.json(req.as_bytes())
            })
            .await
            .unwrap()
        }
    };

    let list = call("__org.guestlink_service-list", json!({})).await;
    let units: Vec<&str> = list["return"]
        .as_array()
        .unwrap_or_else(|| panic!("{list}"))
        .iter()
        .map(|u| u["unit"].as_str().unwrap())
        .collect();
    assert_eq!(units, ["app.service", "broken.service", "ssh.service"]);
    assert_eq!(list["return"][0]["description"], "The app.service");

    let ssh = call("__org.guestlink_service-status", json!({"unit": "ssh"})).await;
    assert_eq!(ssh["return"]["unit"], "ssh.service", "{ssh}");
    assert_eq!(ssh["return"]["sub-state"], "running");
    assert_eq!(ssh["return"]["unit-file-state"], "enabled");
    assert_eq!(ssh["return"]["main-pid"], 321);
    let missing = call("__org.guestlink_service-status", json!({"unit": "missing"})).await;
    assert_eq!(
        missing["error"]["desc"], "Unit missing.service could not be found.",
        "{missing}"
    );

    // Stop waits for the job: the state returned is the one after it.
    let stopped = call(
        "__org.guestlink_service-control",
        json!({"unit": "app", "action": "stop"}),
    )
    .await;
    assert_eq!(stopped["return"]["active-state"], "inactive", "{stopped}");
    assert!(stopped["return"].get("main-pid").is_none(), "{stopped}");
    let started = call(
        "__org.guestlink_service-control",
        json!({"unit": "app", "action": "start"}),
    )
    .await;
    assert_eq!(started["return"]["sub-state"], "running", "{started}");
    let disabled = call(
        "__org.guestlink_service-control",
        json!({"unit": "app", "action": "disable"}),
    )
    .await;
    assert_eq!(
        disabled["return"]["unit-file-state"], "disabled",
        "{disabled}"
    );
    let enabled = call(
        "__org.guestlink_service-control",
        json!({"unit": "app.service", "action": "enable"}),
    )
    .await;
    assert_eq!(enabled["return"]["unit-file-state"], "enabled", "{enabled}");

    // A job that fails, and a unit the policy does not list.
    let broken = call(
        "__org.guestlink_service-control",
        json!({"unit": "broken", "action": "restart"}),
    )
    .await;
    let desc = broken["error"]["desc"]
        .as_str()
        .unwrap_or_else(|| panic!("{broken}"));
    assert!(
        desc.starts_with("failed to restart 'broken.service': the job's result is 'failed'"),
        "{desc}"
    );
    let refused = call(
        "__org.guestlink_service-control",
        json!({"unit": "ssh", "action": "stop"}),
    )
    .await;
    assert!(
        refused["error"]["desc"]
            .as_str()
            .unwrap()
            .contains("unit 'ssh.service' is not allowed by the policy"),
        "{refused}"
    );
    let calls = calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            "Subscribe",
            "StopUnit app.service replace",
            "Subscribe",
            "StartUnit app.service replace",
            "DisableUnitFiles [\"app.service\"] false",
            "Reload",
            "EnableUnitFiles [\"app.service\"] false false",
            "Reload",
            "Subscribe",
            "RestartUnit broken.service replace",
        ]
    );
    agent.terminate();
}
