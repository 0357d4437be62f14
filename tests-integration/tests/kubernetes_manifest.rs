//! The Kubernetes manifest in deploy/, read with a real YAML parser (Python's `yaml`), held to
//! the nesting the README promises: readiness detection shorter than pre-stop, the worst-case
//! sequence inside grace, and grace (plus the watchdog's margin and any `preStop` sleep) inside
//! `terminationGracePeriodSeconds`. No kubelet runs here: this is what can be checked without
//! one.

use std::time::Duration;

use serde_json::Value;

/// The watchdog forces the exit this long after `grace` (graceful-runtime's budget).
const WATCHDOG_MARGIN: Duration = Duration::from_millis(500);

/// The manifest as JSON, parsed by PyYAML; `None` when no such parser is installed.
fn manifest() -> Option<Value> {
    let python = "/usr/bin/python3";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/kubernetes.yaml");
    let output = std::process::Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
            path,
        ])
        .output()
        .ok()
        .filter(|output| output.status.success())?;
    Some(serde_json::from_slice(&output.stdout).expect("PyYAML printed JSON"))
}

fn seconds(value: &Value, what: &str) -> Duration {
    Duration::from_secs(
        value
            .as_u64()
            .unwrap_or_else(|| panic!("{what} is not a number: {value}")),
    )
}

#[test]
fn the_manifest_timings_nest() {
    let Some(manifest) = manifest() else {
        graceful_tests_integration::require::require(
            "/usr/bin/python3 with PyYAML (Debian python3-yaml)",
            false,
        );
        return;
    };
    let pod = &manifest["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let env = |name: &str| -> Duration {
        let value = container["env"]
            .as_array()
            .expect("env is a list")
            .iter()
            .find(|variable| variable["name"] == name)
            .unwrap_or_else(|| panic!("the manifest sets no {name}"))["value"]
            .as_str()
            .expect("env values are strings")
            .to_owned();
        humantime::parse_duration(&value)
            .unwrap_or_else(|error| panic!("{name}={value:?}: {error}"))
    };
    let (pre_stop, drain, hook, grace) = (
        env("GRACEFUL_PRE_STOP"),
        env("GRACEFUL_DRAIN_TIMEOUT"),
        env("GRACEFUL_HOOK_TIMEOUT"),
        env("GRACEFUL_GRACE"),
    );

    let readiness = &container["readinessProbe"];
    let detection = seconds(&readiness["periodSeconds"], "periodSeconds")
        * u32::try_from(readiness["failureThreshold"].as_u64().unwrap_or(3)).unwrap();
    assert!(
        detection < pre_stop,
        "readiness detection ({detection:?}) must be shorter than GRACEFUL_PRE_STOP ({pre_stop:?})"
    );

    // examples/service registers one hook (order 10) and declares none: one group, under
    // GRACEFUL_HOOK_TIMEOUT.
    let worst_case = pre_stop + drain + hook;
    assert!(
        worst_case <= grace,
        "pre_stop + drain_timeout + hooks = {worst_case:?} exceeds GRACEFUL_GRACE ({grace:?})"
    );

    let pre_stop_sleep = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .map_or(Duration::ZERO, Duration::from_secs);
    let termination = seconds(
        &pod["terminationGracePeriodSeconds"],
        "terminationGracePeriodSeconds",
    );
    assert!(
        pre_stop_sleep + grace + WATCHDOG_MARGIN <= termination,
        "preStop sleep ({pre_stop_sleep:?}) + grace ({grace:?}) + {WATCHDOG_MARGIN:?} must fit in terminationGracePeriodSeconds ({termination:?})"
    );
}
