//! VM tier: group snapshots on real LVM through `lvsnap all-in-one` over
//! gRPC. Two ext4 volumes are staged (NodeStageVolume); a writer appends
//! increasing sequence numbers to a file on each, always the first volume
//! then the second. A group snapshot taken during the writes, restored, has
//! last numbers at most one step apart; two individual snapshots taken one
//! after the other are apart by whatever was written between them (both
//! gaps printed). The second member's lvcreate failing rolls the group
//! back and the writes go on; a process killed while the members are frozen
//! leaves them frozen, and its restart thaws them.
mod common;
#[path = "vm_group/support.rs"]
mod support;
#[path = "common/vm.rs"]
mod vm;

use std::time::Duration;

use lvsnap::proto::v1 as csi;
use support::{
    MIB, Writer, dm_state, group, last_seq, restored_seq, run, snapshot, sqlite, two_staged,
    unstage,
};
use tonic::Code;
use vm::{LoopVg, all_in_one_at, lv_names};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "VM tier: needs root and device-mapper (scripts/vm-run)"]
async fn a_group_snapshot_is_one_point_in_time_and_two_single_snapshots_are_not() {
    let vg = LoopVg::create("lvsnapgroup", 1024);
    let state = tempfile::tempdir().expect("tempdir");
    let driver = all_in_one_at(&vg, state.path(), &[]).await;
    let store = sqlite(state.path()).await;
    let mut c = driver.clients().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ([a, b], [sa, sb]) = two_staged(&mut c, [32 * MIB, 32 * MIB], dir.path()).await;
    let writer = Writer::start(&sa, &sb);
    writer.wait_past(500, "before the snapshots");

    let mut groups = Vec::new();
    for name in ["vgs-1", "vgs-2"] {
        let g = group(&mut c, name, &[&a, &b]).await.expect(name);
        assert!(g.ready_to_use, "{name} cut within the create timeout");
        assert_eq!(g.snapshots.len(), 2);
        let after = writer.steps();
        writer.wait_past(after, "after the group cut: thawed");
        groups.push(g);
    }
    // The admin view reads like `cinder group-snapshot-list`.
    let state_s = state.path().display().to_string();
    let listed = common::run(
        &["group-snapshot-list", "--state-dir", &state_s],
        state.path(),
    );
    let table = String::from_utf8_lossy(&listed.stdout);
    assert!(
        table.contains("| ID ") && table.contains("| Status ") && table.contains("| Name "),
        "{table}"
    );
    for g in &groups {
        assert!(table.contains(&g.group_snapshot_id), "{table}");
    }
    assert_eq!(table.matches("available").count(), 2, "{table}");
    let single = [
        snapshot(&mut c, "single-wal", &a).await,
        snapshot(&mut c, "single-data", &b).await,
    ];
    let written = writer.stop();

    let mut report = Vec::new();
    for g in &groups {
        let by_volume = |v: &str| {
            g.snapshots
                .iter()
                .find(|s| s.source_volume_id == v)
                .map(|s| s.snapshot_id.clone())
                .expect("member")
        };
        let (wal, data) = (
            restored_seq(&mut c, &by_volume(&a), dir.path()).await,
            restored_seq(&mut c, &by_volume(&b), dir.path()).await,
        );
        let record = store
            .get_group_snapshot(&g.group_snapshot_id)
            .await
            .expect("store")
            .expect("group record");
        let frozen_ms = record.status.frozen_millis.expect("frozen");
        report.push(format!(
            "group snapshot {}: wal {wal}, data {data}: gap {} (members frozen {frozen_ms} ms)",
            g.group_snapshot_id,
            wal.abs_diff(data)
        ));
        assert!(wal > 0 && data > 0, "the snapshot holds writes");
        assert!(
            wal == data || wal == data + 1,
            "one point in time: the first volume is written first, so it is at most one step ahead: wal {wal}, data {data}"
        );
        assert!(record.status.frozen.is_empty(), "nothing left frozen");
    }
    let (wal, data) = (
        restored_seq(&mut c, &single[0], dir.path()).await,
        restored_seq(&mut c, &single[1], dir.path()).await,
    );
    report.push(format!(
        "two single snapshots, one after the other: wal {wal}, data {data}: gap {}",
        wal.abs_diff(data)
    ));
    println!(
        "{written} steps written; last sequence numbers of the restored members:\n{}",
        report.join("\n")
    );
    assert!(
        last_seq(&sa) >= written && last_seq(&sb) >= written,
        "writes went on"
    );

    // Over gRPC: a member is not deleted alone (the message names its
    // group), and a name taken by other members is ALREADY_EXISTS.
    let member = groups[0].snapshots[0].snapshot_id.clone();
    let alone = c
        .controller
        .delete_snapshot(csi::DeleteSnapshotRequest {
            snapshot_id: member,
            ..Default::default()
        })
        .await
        .expect_err("a member alone");
    assert_eq!(alone.code(), Code::FailedPrecondition, "{alone:?}");
    assert!(
        alone.message().contains(&groups[0].group_snapshot_id),
        "{alone:?}"
    );
    let taken = group(&mut c, "vgs-1", &[&a])
        .await
        .expect_err("other members");
    assert_eq!(taken.code(), Code::AlreadyExists, "{taken:?}");

    // The groups go as a whole; each member's quota is released.
    for g in &groups {
        c.group
            .delete_volume_group_snapshot(csi::DeleteVolumeGroupSnapshotRequest {
                group_snapshot_id: g.group_snapshot_id.clone(),
                ..Default::default()
            })
            .await
            .expect("DeleteVolumeGroupSnapshot");
    }
    for s in single {
        c.controller
            .delete_snapshot(csi::DeleteSnapshotRequest {
                snapshot_id: s,
                ..Default::default()
            })
            .await
            .expect("DeleteSnapshot");
    }
    let mut want = vec![format!("volume-{a}"), format!("volume-{b}")];
    want.sort();
    assert_eq!(lv_names(&vg.name), want, "only the volumes are left");
    let q = store
        .get_quota("default")
        .await
        .expect("quota")
        .expect("record");
    assert_eq!(q.status.usage["snapshots"].in_use, 0);
    assert_eq!(q.status.usage["snapshots"].reserved, 0);
    unstage(&mut c, &a, &sa).await;
    unstage(&mut c, &b, &sb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "VM tier: needs root and device-mapper (scripts/vm-run)"]
async fn the_second_members_failed_lvcreate_rolls_the_group_back_and_writes_go_on() {
    let vg = LoopVg::create("lvsnapgrpfail", 512);
    let state = tempfile::tempdir().expect("tempdir");
    let driver = all_in_one_at(&vg, state.path(), &[]).await;
    let store = sqlite(state.path()).await;
    let mut c = driver.clients().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ([a, b], [sa, sb]) = two_staged(&mut c, [32 * MIB, 32 * MIB], dir.path()).await;
    let volumes = lv_names(&vg.name);
    // Room for one more LV in the VG: the first member's lvcreate succeeds,
    // the second's fails ("Maximum number of logical volumes (3) reached"),
    // while both members are frozen: nothing lvsnap checks beforehand.
    run(&["vgchange", "-q", "-l", "3", &vg.name]);
    let writer = Writer::start(&sa, &sb);
    writer.wait_past(200, "before the group");
    let err = group(&mut c, "vgs-fail", &[&a, &b])
        .await
        .expect_err("no second LV");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains(&b) && err.message().contains("Maximum number of logical volumes"),
        "the second member's own lvcreate failed: {err:?}"
    );
    let after = writer.steps();
    writer.wait_past(after, "after the failed group: thawed");
    assert_eq!(lv_names(&vg.name), volumes, "no member LV left");
    for v in [&a, &b] {
        assert_eq!(dm_state(&vg.name, &format!("volume-{v}")), "Active");
    }
    let q = store
        .get_quota("default")
        .await
        .expect("quota")
        .expect("record");
    let u = &q.status.usage["snapshots"];
    assert_eq!((u.in_use, u.reserved), (0, 0), "quota back");
    let snaps = store
        .list_snapshots(&Default::default(), None, usize::MAX)
        .await
        .expect("list");
    assert!(snaps.is_empty(), "no member record left");
    let record = store
        .find_group_snapshot("vgs-fail")
        .await
        .expect("store")
        .expect("group");
    assert!(
        record.status.frozen.is_empty(),
        "the record says nothing is frozen"
    );

    // The limit lifted, the CO's next ask cuts the group.
    run(&["vgchange", "-q", "-l", "0", &vg.name]);
    let g = group(&mut c, "vgs-fail", &[&a, &b])
        .await
        .expect("asked again");
    assert!(g.ready_to_use);
    let q = store
        .get_quota("default")
        .await
        .expect("quota")
        .expect("record");
    assert_eq!(q.status.usage["snapshots"].in_use, 2, "charged once");
    writer.stop();
    unstage(&mut c, &a, &sa).await;
    unstage(&mut c, &b, &sb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "VM tier: needs root and device-mapper (scripts/vm-run)"]
async fn a_process_killed_while_frozen_is_thawed_by_its_restart() {
    let vg = LoopVg::create("lvsnapgrpcrash", 512);
    let state = tempfile::tempdir().expect("tempdir");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut dying = all_in_one_at(&vg, state.path(), &["--failpoint", "group-after-freeze"]).await;
    let mut c = dying.clients().await;
    let ([a, b], [sa, sb]) = two_staged(&mut c, [32 * MIB, 32 * MIB], dir.path()).await;
    let writer = Writer::start(&sa, &sb);
    writer.wait_past(200, "before the group");
    let err = group(&mut c, "vgs-crash", &[&a, &b])
        .await
        .expect_err("the process dies");
    assert!(
        matches!(
            err.code(),
            Code::Unavailable | Code::Unknown | Code::Internal
        ),
        "{err:?}"
    );
    assert!(!dying.child.wait().expect("wait").success(), "aborted");
    for v in [&a, &b] {
        assert_eq!(
            dm_state(&vg.name, &format!("volume-{v}")),
            "Suspended",
            "the dead process left the members frozen"
        );
    }
    let frozen_at = writer.steps();

    let restarted = all_in_one_at(&vg, state.path(), &[]).await;
    let log = restarted.log.clone().expect("log");
    log.wait_for(
        "thawed what interrupted group cuts left frozen",
        1,
        Duration::from_secs(60),
    );
    for v in [&a, &b] {
        assert_eq!(dm_state(&vg.name, &format!("volume-{v}")), "Active");
    }
    writer.wait_past(frozen_at, "after the restart: thawed");
    let mut c = restarted.clients().await;
    // The CO asks again: the group is cut anew, at one point in time.
    let g = group(&mut c, "vgs-crash", &[&a, &b])
        .await
        .expect("asked again");
    assert!(g.ready_to_use);
    writer.stop();
    let seqs: Vec<u64> = {
        let mut out = Vec::new();
        for v in [&a, &b] {
            let id = g
                .snapshots
                .iter()
                .find(|s| &s.source_volume_id == v)
                .map(|s| s.snapshot_id.clone())
                .expect("member");
            out.push(restored_seq(&mut c, &id, dir.path()).await);
        }
        out
    };
    println!("after the restart: wal {}, data {}", seqs[0], seqs[1]);
    assert!(seqs[0] == seqs[1] || seqs[0] == seqs[1] + 1, "{seqs:?}");
    unstage(&mut c, &a, &sa).await;
    unstage(&mut c, &b, &sb).await;
}
