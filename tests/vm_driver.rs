//! VM tier: the real `lvsnap` binary in node and all-in-one modes on a real
//! loop-backed volume group (run inside `scripts/vm-run`, see docs/testing.md).
mod common;
#[path = "common/vm.rs"]
mod vm;

use common::{Driver, run};
use lvsnap::proto::v1::{
    GetPluginCapabilitiesRequest, GetPluginInfoRequest, ProbeRequest, plugin_capability,
};
use vm::LoopVg;

fn services(caps: &[lvsnap::proto::v1::PluginCapability]) -> Vec<i32> {
    let mut s: Vec<i32> = caps
        .iter()
        .filter_map(|cap| match &cap.r#type {
            Some(plugin_capability::Type::Service(s)) => Some(s.r#type),
            _ => None,
        })
        .collect();
    s.sort();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "vm tier: run inside scripts/vm-run"]
async fn node_and_all_in_one_answer_identity_on_a_real_vg() {
    let vg = LoopVg::create("lvsnapidvg", 256);
    // node mode keeps its records in Kubernetes: the fake API server.
    let cluster = common::Cluster::start().await;
    for (mode, expect_controller) in [("node", false), ("all-in-one", true)] {
        let state = tempfile::tempdir().unwrap();
        let state_s = state.path().display().to_string();
        let mut driver = Driver::start_env(
            &[
                mode,
                "--node-id",
                "vm-node",
                "--vg",
                &vg.name,
                "--state-dir",
                &state_s,
            ],
            &[cluster.env()],
        )
        .await;
        let mut c = driver.clients().await;
        let info = c
            .identity
            .get_plugin_info(GetPluginInfoRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(info.name, "lvsnap.io", "{mode}");
        let caps = c
            .identity
            .get_plugin_capabilities(GetPluginCapabilitiesRequest {})
            .await
            .unwrap()
            .into_inner();
        use plugin_capability::service::Type;
        let expected = if expect_controller {
            vec![
                Type::ControllerService as i32,
                Type::VolumeAccessibilityConstraints as i32,
                Type::GroupControllerService as i32,
            ]
        } else {
            vec![]
        };
        assert_eq!(services(&caps.capabilities), expected, "{mode}");
        let probe = c
            .identity
            .probe(ProbeRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(probe.ready, Some(true), "{mode}");
        drop(c);
        assert!(driver.terminate().success(), "{mode}");
        assert_eq!(
            state.path().join("lvsnap.db").exists(),
            expect_controller,
            "{mode}: all-in-one keeps its records in SQLite under --state-dir"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "vm tier: run inside scripts/vm-run"]
async fn probe_fails_when_the_vg_goes_away_and_startup_refuses_a_missing_vg() {
    let vg = LoopVg::create("lvsnapgonevg", 128);
    let state = tempfile::tempdir().unwrap();
    let state_s = state.path().display().to_string();
    let cluster = common::Cluster::start().await;
    let driver = Driver::start_env(
        &[
            "node",
            "--node-id",
            "vm-node",
            "--vg",
            &vg.name,
            "--state-dir",
            &state_s,
        ],
        &[cluster.env()],
    )
    .await;
    let mut c = driver.clients().await;
    assert_eq!(
        c.identity
            .probe(ProbeRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready,
        Some(true)
    );
    let name = vg.name.clone();
    drop(vg); // vgremove + losetup -d
    let err = c.identity.probe(ProbeRequest {}).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("volume group"), "{err:?}");

    // Starting against a VG that does not exist: one line naming --vg.
    let dir = tempfile::tempdir().unwrap();
    let sock = format!("unix://{}/x.sock", dir.path().display());
    let out = run(
        &[
            "node",
            "--endpoint",
            &sock,
            "--node-id",
            "n",
            "--vg",
            &name,
            "--state-dir",
            &state_s,
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--vg") && err.contains(&name), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}
