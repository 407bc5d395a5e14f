//! How many LVM commands the node runs per CreateSnapshot and per
//! DeleteSnapshot, with the executor running on its own (its capacity
//! reports included), counted from the in-memory LVM's call log. Counts,
//! not times: `lvsnap bench` measures what they cost on real LVM
//! (docs/performance.md has the figures before and after).
mod common;

use std::time::Duration;

use common::harness::{GIB, Harness, MIB};
use lvsnap::controller::ControllerConfig;
use lvsnap::node::NodeSettings;
use lvsnap::store::Kind;

/// Waits for the node's next capacity report (a write of its LvsNode).
async fn next_capacity_report(
    changes: &mut tokio::sync::broadcast::Receiver<lvsnap::store::Change>,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let c = tokio::time::timeout_at(deadline, changes.recv())
            .await
            .expect("a capacity report within 30 s")
            .expect("changes");
        if c.kind == Kind::Node {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_costs_one_lvcreate_and_its_delete_one_lvremove() {
    let config = ControllerConfig {
        wait_timeout: Duration::from_secs(20),
        ..Harness::config()
    };
    let mut settings = NodeSettings::new(common::harness::NODE, common::harness::VG);
    settings.resync = Duration::from_secs(3600);
    let h = Harness::with(4 * GIB as u64, settings, config).await;
    let mut changes = h.store.subscribe();
    let task = tokio::spawn(h.executor.clone().run());
    next_capacity_report(&mut changes).await;
    let volume = h
        .controller
        .create_volume(Harness::volume_request("pvc-count", 8 * MIB))
        .await
        .expect("CreateVolume");
    next_capacity_report(&mut changes).await;

    let mut per_call = Vec::new();
    for i in 0..3 {
        h.fake.clear_calls();
        let snap = h
            .controller
            .create_snapshot(Harness::snapshot_request(
                &format!("snap-{i}"),
                &volume.name,
            ))
            .await
            .expect("CreateSnapshot");
        assert!(snap.status.ready_to_use);
        let create = h.fake.programs();
        h.fake.clear_calls();
        h.controller
            .delete_snapshot(&snap.name)
            .await
            .expect("DeleteSnapshot");
        let delete = h.fake.programs();
        h.fake.clear_calls();
        // The coalesced capacity report after both changes reads the view:
        // it adds no command.
        next_capacity_report(&mut changes).await;
        let report = h.fake.programs();
        per_call.push((create, delete, report));
    }
    println!("LVM commands (create | delete | capacity report): {per_call:?}");
    for (create, delete, report) in per_call {
        assert_eq!(create, ["lvcreate"], "per CreateSnapshot");
        assert_eq!(delete, ["lvremove"], "per DeleteSnapshot");
        assert!(report.is_empty(), "the capacity report ran {report:?}");
    }
    // ...and the free space it reported is lvm2's.
    let nodes = h.store.list_nodes().await.expect("nodes");
    assert_eq!(
        u64::try_from(nodes[0].status.free_bytes).ok(),
        h.fake.free_bytes(common::harness::VG)
    );
    task.abort();
}
