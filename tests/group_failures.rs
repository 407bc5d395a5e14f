//! Group snapshot failure paths in process (tests/common/harness.rs): the
//! second member's lvcreate failing rolls everything back and thaws, a cut
//! longer than `groupFreezeTimeout` is abandoned and thawed, a node that
//! died while frozen thaws when it starts again, a controller that stopped
//! before dispatching a group has it finished by the next ask.
mod common;

use common::groups::{freeze_and_cut_calls, group, request};
use common::harness::{Harness, MIB, VG};
use lvsnap::controller::ControllerError;
use lvsnap::failpoint::points;
use lvsnap::lvm::CommandOutput;
use lvsnap::records::{FailureCode, SnapshotState};
use lvsnap::store::Phase;

#[tokio::test]
async fn the_second_members_failed_lvcreate_rolls_everything_back_and_thaws() {
    let h = Harness::new(1 << 30).await;
    let a = h.volume("pvc-a", 16 * MIB).await;
    let b = h.volume("pvc-b", 16 * MIB).await;
    let before = h.lvs();
    h.fake.respond_after(
        "lvcreate",
        1,
        CommandOutput::failed(
            5,
            "  Volume group \"vg0\" has insufficient free space (3 extents): 4 required.\n",
        ),
    );
    h.fake.clear_calls();
    let _ = h
        .controller
        .create_group_snapshot(request("vgs", &[&a, &b], &[]))
        .await;
    h.work_all().await;
    let g = h.store.find_group_snapshot("vgs").await.unwrap().unwrap();
    assert_eq!(g.status.life.status, SnapshotState::Error);
    assert_eq!(
        g.status.life.error_code,
        Some(FailureCode::ResourceExhausted)
    );
    let message = g.status.life.error_message.clone().unwrap_or_default();
    assert!(
        message.contains(&b) && message.contains("insufficient free space"),
        "{message}"
    );
    assert!(
        g.status.frozen.is_empty(),
        "the record says nothing is frozen"
    );
    let calls = freeze_and_cut_calls(&h);
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("resume")).count(),
        2,
        "both thawed: {calls:?}"
    );
    assert!(h.fake.suspended(VG).is_empty(), "nothing left frozen");
    assert_eq!(h.lvs(), before, "no member LV left");
    assert_eq!(h.usage("default", "snapshots").await, (0, 0), "quota back");
    assert_eq!(
        h.usage("default", "gigabytes").await,
        (2, 0),
        "the volumes' only"
    );
    let (_, snaps) = h.live().await;
    assert!(snaps.is_empty(), "member records rolled back");
    h.assert_consistent("default", "after the failed group")
        .await;

    // Asked again (space freed): cut under a new reservation.
    let again = group(&h, "vgs", &[&a, &b], &[]).await;
    assert!(again.group.status.ready_to_use);
    assert_eq!(h.usage("default", "snapshots").await, (2, 0));
    h.assert_consistent("default", "after the second attempt")
        .await;
}

#[tokio::test]
async fn a_crash_while_frozen_is_thawed_when_the_node_starts_again() {
    for point in [points::GROUP_AFTER_FREEZE, points::GROUP_AFTER_FIRST_CUT] {
        let mut h = Harness::new(1 << 30).await;
        let a = h.volume("pvc-a", 16 * MIB).await;
        let b = h.volume("pvc-b", 16 * MIB).await;
        let _ = h
            .controller
            .create_group_snapshot(request("vgs", &[&a, &b], &[]))
            .await;
        h.halt_at(point);
        h.work_all().await;
        assert_eq!(
            h.fake.suspended(VG).len(),
            2,
            "{point}: the dead node left both frozen"
        );
        let g = h.store.find_group_snapshot("vgs").await.unwrap().unwrap();
        assert_eq!(g.status.frozen.len(), 2, "{point}: and its record says so");

        h.restart();
        assert_eq!(h.executor.thaw_leftovers().await.unwrap(), 1);
        assert!(h.fake.suspended(VG).is_empty(), "{point}: thawed on start");
        let g = h.store.find_group_snapshot("vgs").await.unwrap().unwrap();
        assert!(g.status.frozen.is_empty());
        let events = h.events.0.lock().unwrap().clone();
        assert!(events.iter().any(|e| e.phase == Phase::Thawed), "{point}");
        // The cut starts over: whatever the dead attempt cut goes, both are
        // cut again at one new point in time.
        h.work_all().await;
        let done = h
            .controller
            .create_group_snapshot(request("vgs", &[&a, &b], &[]))
            .await
            .expect("cut after the restart");
        assert!(done.group.status.ready_to_use, "{point}");
        assert_eq!(h.lvs().len(), 4, "{point}: two volumes, two members");
        h.assert_consistent("default", point).await;
    }
}

#[tokio::test]
async fn a_controller_stopped_before_dispatch_is_finished_by_the_next_ask() {
    let mut h = Harness::new(1 << 30).await;
    let a = h.volume("pvc-a", 16 * MIB).await;
    let b = h.volume("pvc-b", 16 * MIB).await;
    h.halt_at(points::GROUP_AFTER_RECORD);
    let err = h
        .controller
        .create_group_snapshot(request("vgs", &[&a, &b], &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, ControllerError::Halted(_)), "{err:?}");
    assert_eq!(
        h.usage("default", "snapshots").await,
        (0, 2),
        "reserved, not committed"
    );
    h.work_all().await;
    assert!(
        h.fake.suspended(VG).is_empty() && h.lvs().len() == 2,
        "an undispatched group is not cut"
    );
    h.restart();
    let g = group(&h, "vgs", &[&a, &b], &[]).await;
    assert!(g.group.status.ready_to_use);
    h.assert_consistent("default", "finished by the next ask")
        .await;
}

#[tokio::test]
async fn a_cut_longer_than_group_freeze_timeout_is_abandoned_and_thawed() {
    let h = Harness::new(1 << 30).await;
    let a = h.volume("pvc-a", 16 * MIB).await;
    let b = h.volume("pvc-b", 16 * MIB).await;
    // The second lvcreate never finishes; the class allows 1 s frozen.
    let params = [("groupFreezeTimeout", "1s")];
    let _ = h
        .controller
        .create_group_snapshot(request("vgs", &[&a, &b], &params))
        .await;
    h.fake.hang_after("lvcreate", 1);
    h.work_all().await;
    let g = h.store.find_group_snapshot("vgs").await.unwrap().unwrap();
    assert_eq!(g.status.life.status, SnapshotState::Error);
    assert_eq!(g.status.life.error_code, Some(FailureCode::Aborted));
    assert!(h.fake.suspended(VG).is_empty(), "thawed at the timeout");
    assert_eq!(h.usage("default", "snapshots").await, (0, 0));
    h.assert_consistent("default", "after the timeout").await;
}
