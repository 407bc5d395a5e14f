//! Host tier: the real `lvsnap` binary served on a Unix socket, called over
//! gRPC. Node and all-in-one need a real volume group: their Identity tests
//! run in the VM tier (`tests/vm_driver.rs`).
mod common;

use std::os::unix::fs::FileTypeExt;

use common::{Cluster, Driver, run, run_env};
use lvsnap::proto::v1::{
    GetPluginCapabilitiesRequest, GetPluginInfoRequest, ProbeRequest, plugin_capability,
};

// Multi-threaded: terminate() blocks this thread while the client side of
// the connection must still be driven to close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_mode_answers_identity_and_stops_on_sigterm() {
    let cluster = Cluster::start().await;
    let mut driver = Driver::start_env(
        &["controller", "--driver-name", "test.lvsnap.io"],
        &[cluster.env()],
    )
    .await;
    let mut c = driver.clients().await;

    let info = c
        .identity
        .get_plugin_info(GetPluginInfoRequest {})
        .await
        .expect("GetPluginInfo")
        .into_inner();
    assert_eq!(info.name, "test.lvsnap.io");
    assert_eq!(info.vendor_version, env!("CARGO_PKG_VERSION"));

    let caps = c
        .identity
        .get_plugin_capabilities(GetPluginCapabilitiesRequest {})
        .await
        .expect("GetPluginCapabilities")
        .into_inner();
    let mut services: Vec<i32> = caps
        .capabilities
        .iter()
        .filter_map(|cap| match &cap.r#type {
            Some(plugin_capability::Type::Service(s)) => Some(s.r#type),
            _ => None,
        })
        .collect();
    services.sort();
    use plugin_capability::service::Type;
    assert_eq!(
        services,
        vec![
            Type::ControllerService as i32,
            Type::VolumeAccessibilityConstraints as i32,
            Type::GroupControllerService as i32,
        ]
    );

    let probe = c
        .identity
        .probe(ProbeRequest {})
        .await
        .expect("Probe")
        .into_inner();
    assert_eq!(probe.ready, Some(true));

    drop(c);
    let status = driver.terminate();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    assert!(
        !driver.socket.exists(),
        "the socket file is removed on shutdown"
    );
}

#[tokio::test]
async fn driver_name_defaults_to_lvsnap_io() {
    let cluster = Cluster::start().await;
    let driver = Driver::start_env(&["controller"], &[cluster.env()]).await;
    let mut c = driver.clients().await;
    let info = c
        .identity
        .get_plugin_info(GetPluginInfoRequest {})
        .await
        .expect("GetPluginInfo")
        .into_inner();
    assert_eq!(info.name, "lvsnap.io");
}

#[tokio::test]
async fn stale_socket_is_replaced_but_a_regular_file_is_not() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the socket should go: refused, left untouched.
    let file = dir.path().join("csi.sock");
    std::fs::write(&file, b"precious").unwrap();
    let cluster = Cluster::start().await;
    let out = run_env(
        &[
            "controller",
            "--endpoint",
            &format!("unix://{}", file.display()),
        ],
        dir.path(),
        &[cluster.env()],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--endpoint") && err.contains("not a socket"),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"precious");

    // A stale socket (nobody listening): removed and served again.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(
        std::fs::symlink_metadata(&stale)
            .unwrap()
            .file_type()
            .is_socket()
    );
    let endpoint = format!("unix://{}", stale.display());
    let mut child = std::process::Command::new(common::BIN)
        .args(["controller", "--endpoint", &endpoint])
        .envs([cluster.env()])
        .spawn()
        .unwrap();
    let mut served = false;
    for _ in 0..600 {
        if lvsnap::client::CsiClients::connect(&stale).await.is_ok() {
            served = true;
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "exited early");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(served, "serves on the replaced stale socket");

    // A second process on a live socket: refused, the first keeps serving.
    let out = run_env(
        &["controller", "--endpoint", &endpoint],
        dir.path(),
        &[cluster.env()],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use"), "{err}");
    assert!(lvsnap::client::CsiClients::connect(&stale).await.is_ok());
    let _ = child.kill();
    let _ = child.wait();
}

/// Bad flags: one line naming the flag, non-zero exit, nothing created.
#[test]
fn bad_flags_fail_with_one_line_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let sock = |name: &str| format!("unix://{}/{name}", dir.path().display());
    let state = dir.path().join("state");
    let state_s = state.display().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "controller".into(),
                "--endpoint".into(),
                "tcp://127.0.0.1:9000".into(),
            ],
            "--endpoint",
        ),
        (
            vec![
                "controller".into(),
                "--endpoint".into(),
                "/no/scheme.sock".into(),
            ],
            "--endpoint",
        ),
        (
            vec![
                "node".into(),
                "--endpoint".into(),
                sock("a.sock"),
                "--vg".into(),
                "vg0".into(),
                "--state-dir".into(),
                state_s.clone(),
            ],
            "--node-id",
        ),
        (
            vec![
                "all-in-one".into(),
                "--endpoint".into(),
                sock("b.sock"),
                "--node-id".into(),
                "n1".into(),
                "--state-dir".into(),
                state_s.clone(),
            ],
            "--vg",
        ),
        (
            vec![
                "node".into(),
                "--endpoint".into(),
                sock("c.sock"),
                "--node-id".into(),
                "n1".into(),
                "--vg".into(),
                "bad vg".into(),
                "--state-dir".into(),
                state_s.clone(),
            ],
            "--vg",
        ),
        (
            vec![
                "node".into(),
                "--endpoint".into(),
                sock("d.sock"),
                "--node-id".into(),
                "n1".into(),
                "--vg".into(),
                "lvsnap-no-such-vg".into(),
                "--state-dir".into(),
                state_s.clone(),
            ],
            "--vg",
        ),
        (
            vec![
                "node".into(),
                "--endpoint".into(),
                sock("e.sock"),
                "--node-id".into(),
                "bad;id".into(),
                "--vg".into(),
                "vg0".into(),
                "--state-dir".into(),
                state_s.clone(),
            ],
            "--node-id",
        ),
        (
            vec![
                "--log-format".into(),
                "xml".into(),
                "controller".into(),
                "--endpoint".into(),
                sock("f.sock"),
            ],
            "--log-format",
        ),
    ];
    for (args, flag) in cases {
        let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args_ref, dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(
            err.contains(flag),
            "{args:?}: error must name {flag}: {err}"
        );
        if flag != "--log-format" {
            // clap prints its own usage for unknown enum values; ours are one line.
            assert_eq!(
                err.trim_end().lines().count(),
                1,
                "{args:?}: one line: {err}"
            );
        }
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "nothing left behind: {left:?}");
}

#[test]
fn version_prints_the_crate_version() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["--version"], dir.path());
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("lvsnap {}", env!("CARGO_PKG_VERSION"))
    );
}

/// The quota flags of controller and all-in-one are validated at startup.
#[test]
fn bad_quota_flags_fail_with_one_line_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("--default-quota", "backups=3"),
        ("--default-quota", "snapshots=many"),
        ("--reservation-expire", "1w"),
        ("--reservation-expire", "0s"),
        ("--quota-max-age", "soon"),
        ("--default-project", "Not A Namespace"),
        ("--quota-until-refresh", "-1"),
    ];
    for (i, (flag, value)) in cases.into_iter().enumerate() {
        let endpoint = format!("unix://{}/{i}.sock", dir.path().display());
        let arg = format!("{flag}={value}");
        let out = run(&["controller", "--endpoint", &endpoint, &arg], dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{arg} must fail");
        assert!(err.contains(flag), "{arg}: error must name {flag}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{arg}: one line: {err}");
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing left behind"
    );
}

/// The LVM runner flags of node and all-in-one are validated at startup.
#[test]
fn bad_lvm_flags_fail_with_one_line_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state").display().to_string();
    for (i, (flag, value)) in [
        ("--lvm-env", "DM_DISABLE_UDEV"),
        ("--lvm-env", "BAD NAME=1"),
        ("--lvm-timeout", "0s"),
        ("--lvm-timeout", "forever"),
    ]
    .into_iter()
    .enumerate()
    {
        let endpoint = format!("unix://{}/{i}.sock", dir.path().display());
        let arg = format!("{flag}={value}");
        let out = run(
            &[
                "node",
                "--endpoint",
                &endpoint,
                "--node-id",
                "n1",
                "--vg",
                "vg0",
                "--state-dir",
                &state,
                &arg,
            ],
            dir.path(),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{arg} must fail");
        assert!(err.contains(flag), "{arg}: error must name {flag}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{arg}: one line: {err}");
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing left behind"
    );
}

/// Controller mode keeps its records in Kubernetes: without any client
/// configuration it refuses to start, in one line; with an API server that
/// stops answering, Probe says so (the sidecars' liveness probe sees it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_mode_needs_the_kubernetes_api() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("unix://{}/c.sock", dir.path().display());
    let out = run(&["controller", "--endpoint", &endpoint], dir.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("kubernetes") && err.contains("KUBECONFIG"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");

    let cluster = Cluster::start().await;
    let driver = Driver::start_env(&["controller"], &[cluster.env()]).await;
    let mut c = driver.clients().await;
    let probe = c.identity.probe(ProbeRequest {}).await.expect("Probe");
    assert_eq!(probe.into_inner().ready, Some(true));
    drop(cluster); // the API server goes away
    let err = c
        .identity
        .probe(ProbeRequest {})
        .await
        .expect_err("Probe fails without the API server");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("kubernetes API"), "{err:?}");
}
