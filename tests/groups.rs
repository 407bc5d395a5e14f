//! Group snapshots in process (SQLite + the in-memory LVM, driven step by
//! step: tests/common/harness.rs): one reservation for all members committed
//! once, every member frozen before the first cut and thawed after the
//! last, idempotency by name, the delete of the group and the refusal of a
//! member's own, restore from a member, and the refusals (bad requests,
//! other nodes, thin, raw block). Failure paths: tests/group_failures.rs.
mod common;

use common::groups::{dm, freeze_and_cut_calls, group, request};
use common::harness::{Harness, MIB, VG};
use lvsnap::controller::ControllerError;
use lvsnap::records::{FailureCode, SnapshotState};
use lvsnap::store::Record;

#[tokio::test]
async fn one_reservation_one_commit_members_frozen_together_then_thawed() {
    let h = Harness::new(1 << 30).await;
    let a = h.volume("pvc-a", 64 * MIB).await;
    let b = h.volume("pvc-b", 128 * MIB).await;
    h.fake.clear_calls();
    let first = h
        .controller
        .create_group_snapshot(request("vgs-1", &[&a, &b], &[]))
        .await
        .expect("accepted; the node has not cut it yet");
    assert!(!first.group.status.ready_to_use);
    assert_eq!(first.members.len(), 2);
    // One reservation for both members, committed once, before any cut.
    assert_eq!(h.usage("default", "snapshots").await, (2, 0));
    assert_eq!(
        h.usage("default", "gigabytes").await,
        (2 + 2, 0),
        "volumes 1+1, members 1+1"
    );
    assert_eq!(first.group.spec.quota_charged["snapshots"], 2);
    assert!(h.fake.suspended(VG).is_empty());

    h.work_all().await;
    let calls = freeze_and_cut_calls(&h);
    let (ma, mb) = (&first.members[0], &first.members[1]);
    assert_eq!(
        calls,
        [
            format!("suspend {}", dm(&a)),
            format!("suspend {}", dm(&b)),
            format!("lvcreate {VG}/volume-{a}"),
            format!("lvcreate {VG}/volume-{b}"),
            format!("resume {}", dm(&a)),
            format!("resume {}", dm(&b)),
        ],
        "both frozen before the first cut, thawed after the last"
    );
    assert!(h.fake.suspended(VG).is_empty(), "nothing left frozen");
    // While frozen, only the cuts run: every lookup and check came before.
    let programs = h.fake.programs();
    let from = programs.iter().position(|p| p == "dmsetup").unwrap();
    let to = programs.iter().rposition(|p| p == "dmsetup").unwrap();
    assert!(
        programs[from..=to]
            .iter()
            .all(|p| p == "dmsetup" || p == "lvcreate"),
        "{:?}",
        &programs[from..=to]
    );

    let done = h
        .controller
        .create_group_snapshot(request("vgs-1", &[&b, &a], &[]))
        .await
        .expect("same name, same volumes in another order: the same group");
    assert!(done.group.status.ready_to_use);
    assert_eq!(done.group.name, first.group.name);
    assert!(done.group.status.frozen.is_empty());
    assert!(done.group.status.frozen_millis.is_some());
    for (m, v) in done.members.iter().zip([&a, &b]) {
        assert!(m.status.ready_to_use, "{}", m.name);
        assert_eq!(&m.spec.source_volume_id, v);
        assert_eq!(
            m.spec.group_snapshot_id.as_deref(),
            Some(done.group.name.as_str())
        );
        assert!(h.lvs().contains(&m.spec.lv_name));
    }
    assert_eq!(done.members[0].name, ma.name);
    assert_eq!(done.members[1].name, mb.name);
    assert_eq!(
        h.usage("default", "snapshots").await,
        (2, 0),
        "no second charge"
    );
    h.assert_consistent("default", "after the cut").await;
    // Every member is a snapshot like any other.
    let got = h.controller.get_snapshot(&ma.name).await.expect("member");
    assert_eq!(got.spec.group_snapshot_id, ma.spec.group_snapshot_id);
}

#[tokio::test]
async fn bad_requests_and_a_name_taken_by_other_volumes() {
    let h = Harness::new(1 << 30).await;
    let a = h.volume("pvc-a", 16 * MIB).await;
    let b = h.volume("pvc-b", 16 * MIB).await;
    let cases = [
        (request("", &[&a], &[]), "name is required"),
        (request("g", &[], &[]), "source_volume_ids are required"),
        (request("g", &[&a, &a], &[]), "twice"),
        (
            request("g", &[&a], &[("colour", "red")]),
            "unknown VolumeGroupSnapshotClass parameter",
        ),
        (request("g", &[&a], &[("consistency", "crash")]), "freeze"),
    ];
    for (req, says) in cases {
        match h.controller.create_group_snapshot(req).await {
            Err(ControllerError::Invalid(m)) => assert!(m.contains(says), "{m}"),
            other => panic!("{says}: {other:?}"),
        }
    }
    let missing = h
        .controller
        .create_group_snapshot(request("g", &[&a, "no-such-volume"], &[]))
        .await;
    assert!(
        matches!(missing, Err(ControllerError::NotFound(_))),
        "{missing:?}"
    );
    group(&h, "vgs", &[&a], &[]).await;
    let other = h
        .controller
        .create_group_snapshot(request("vgs", &[&a, &b], &[]))
        .await;
    assert!(
        matches!(other, Err(ControllerError::AlreadyExists(_))),
        "{other:?}"
    );
    assert_eq!(
        h.usage("default", "snapshots").await,
        (1, 0),
        "refusals reserve nothing"
    );
}

#[tokio::test]
async fn volumes_on_two_nodes_or_thin_volumes_are_refused_with_the_reason() {
    let h = Harness::new(1 << 30).await;
    let a = h.volume("pvc-a", 16 * MIB).await;
    let mut elsewhere = h.store.get_volume(&a).await.unwrap().unwrap();
    elsewhere.spec.node = "n2".into();
    elsewhere.spec.csi_name = "pvc-elsewhere".into();
    elsewhere.spec.lv_name = format!("volume-{}", uuid::Uuid::new_v4());
    elsewhere.name = uuid::Uuid::new_v4().to_string();
    elsewhere.spec.id = elsewhere.name.clone();
    h.store
        .insert_volume(&Record::new(
            elsewhere.name.clone(),
            elsewhere.spec.clone(),
            elsewhere.status.clone(),
        ))
        .await
        .unwrap();
    let err = h
        .controller
        .create_group_snapshot(request("g", &[&a, &elsewhere.name], &[]))
        .await
        .unwrap_err();
    match err {
        ControllerError::FailedPrecondition(m) => {
            assert!(m.contains("different nodes") && m.contains("on n2"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let mut thin = elsewhere.clone();
    thin.name = uuid::Uuid::new_v4().to_string();
    thin.spec.id = thin.name.clone();
    thin.spec.csi_name = "pvc-thin".into();
    thin.spec.node = common::harness::NODE.into();
    thin.spec.thin_pool = Some("pool".into());
    h.store
        .insert_volume(&Record::new(
            thin.name.clone(),
            thin.spec.clone(),
            thin.status.clone(),
        ))
        .await
        .unwrap();
    let err = h
        .controller
        .create_group_snapshot(request("g", &[&a, &thin.name], &[]))
        .await
        .unwrap_err();
    match err {
        ControllerError::FailedPrecondition(m) => {
            assert!(
                m.contains("is thin") && m.contains("consistency: none"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.usage("default", "snapshots").await, (0, 0));
}

#[tokio::test]
async fn the_group_is_deleted_as_one_and_a_member_never_alone() {
    let h = Harness::new(1 << 30).await;
    let a = h.volume("pvc-a", 16 * MIB).await;
    let b = h.volume("pvc-b", 16 * MIB).await;
    let g = group(&h, "vgs", &[&a, &b], &[]).await;
    let member = g.members[0].name.clone();
    match h.controller.delete_snapshot(&member).await {
        Err(ControllerError::FailedPrecondition(m)) => {
            assert!(
                m.contains(&g.group.name) && m.contains("DeleteVolumeGroupSnapshot"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
    // A member restores like any snapshot; while it is read, the group
    // cannot be deleted.
    let mut restore = Harness::volume_request("pvc-restored", 16 * MIB);
    restore.source_snapshot_id = Some(member.clone());
    let _ = h.controller.create_volume(restore.clone()).await;
    match h.controller.delete_group_snapshot(&g.group.name, &[]).await {
        Err(ControllerError::FailedPrecondition(m)) => assert!(m.contains("restored"), "{m}"),
        other => panic!("{other:?}"),
    }
    // (The host has no device to copy from: tests/vm_group.rs restores
    // members byte for byte; here the restore just ends.)
    h.work_all().await;

    let wrong = h
        .controller
        .delete_group_snapshot(&g.group.name, std::slice::from_ref(&member))
        .await;
    assert!(
        matches!(wrong, Err(ControllerError::Invalid(_))),
        "{wrong:?}"
    );
    let ids: Vec<String> = g.members.iter().map(|m| m.name.clone()).collect();
    let pending = h
        .controller
        .delete_group_snapshot(&g.group.name, &ids)
        .await;
    assert!(
        matches!(pending, Err(ControllerError::Aborted(_))),
        "the node has not run: {pending:?}"
    );
    for m in &ids {
        let s = h.store.get_snapshot(m).await.unwrap().unwrap();
        assert_eq!(
            s.status.life.status,
            SnapshotState::Deleting,
            "every member on its way"
        );
    }
    h.work_all().await;
    h.controller
        .delete_group_snapshot(&g.group.name, &ids)
        .await
        .expect("deleted");
    h.controller
        .delete_group_snapshot(&g.group.name, &ids)
        .await
        .expect("idempotent");
    h.controller
        .delete_group_snapshot("00000000-0000-0000-0000-000000000000", &[])
        .await
        .expect("unknown: already gone");
    let gone = h.controller.get_group_snapshot(&g.group.name, &[]).await;
    assert!(
        matches!(gone, Err(ControllerError::NotFound(_))),
        "{gone:?}"
    );
    assert_eq!(
        h.usage("default", "snapshots").await,
        (0, 0),
        "every member released"
    );
    h.assert_consistent("default", "after the delete").await;
}

#[tokio::test]
async fn a_raw_block_member_needs_consistency_none_and_is_then_cut_unfrozen() {
    let h = Harness::new(1 << 30).await;
    let a = h.volume("pvc-a", 16 * MIB).await;
    let b = h.volume("pvc-b", 16 * MIB).await;
    // Open without a mounted filesystem: a raw block device in use.
    assert!(h.fake.set_open(VG, &format!("volume-{b}"), true));
    let _ = h
        .controller
        .create_group_snapshot(request("frozen", &[&a, &b], &[]))
        .await;
    h.work_all().await;
    let refused = h
        .store
        .find_group_snapshot("frozen")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        refused.status.life.error_code,
        Some(FailureCode::FailedPrecondition)
    );
    let message = refused.status.life.error_message.unwrap_or_default();
    assert!(
        message.contains("raw block") && message.contains("consistency: none"),
        "{message}"
    );
    assert!(h.fake.suspended(VG).is_empty(), "nothing was frozen");
    assert_eq!(h.usage("default", "snapshots").await, (0, 0));
    h.fake.clear_calls();
    let g = group(&h, "unfrozen", &[&a, &b], &[("consistency", "none")]).await;
    assert!(g.group.status.ready_to_use);
    assert_eq!(
        g.group.status.frozen_millis, None,
        "the record says it was not frozen"
    );
    let calls = freeze_and_cut_calls(&h);
    assert!(calls.iter().all(|c| c.starts_with("lvcreate")), "{calls:?}");
    assert_eq!(calls.len(), 2);
    h.assert_consistent("default", "unfrozen group").await;
}

#[tokio::test]
async fn group_records_are_counted_in_lvsnap_records() {
    let h = Harness::new(1 << 30).await;
    let a = h.volume("pvc-a", 16 * MIB).await;
    let b = h.volume("pvc-b", 16 * MIB).await;
    group(&h, "vgs", &[&a, &b], &[]).await;
    let metrics = lvsnap::metrics::Metrics::new();
    metrics.add_source(std::sync::Arc::new(lvsnap::metrics::StoreSource::new(
        h.store.clone(),
        h.controller.quota.clone(),
    )));
    let text = metrics.render().await;
    let value = |kind: &str, status: &str| {
        let series = format!("lvsnap_records{{kind=\"{kind}\",status=\"{status}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .map(str::to_string)
    };
    assert_eq!(
        value("group_snapshot", "available").as_deref(),
        Some("1"),
        "{text}"
    );
    assert_eq!(
        value("group_snapshot", "error").as_deref(),
        Some("0"),
        "{text}"
    );
    assert_eq!(
        value("snapshot", "available").as_deref(),
        Some("2"),
        "the members"
    );
}
