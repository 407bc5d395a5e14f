//! The admin commands (`lvsnap snapshot-list`, `volume-show`, `quota-update`,
//! `reset-state`, `force-delete`, …) as the real binary runs them, against
//! all-in-one's SQLite (`--state-dir`) and against Kubernetes (the fake API
//! server over HTTP, `--kubeconfig`): the same records print the same
//! tables, writes go through the records, and a force-deleted record's LV is
//! removed by its node, never by the command.
mod common;

use std::path::Path;
use std::sync::Arc;

use common::Cluster;
use common::harness::{GIB, Harness};
use lvsnap::records::{
    Lifecycle, LvsGroupSnapshotSpec, LvsGroupSnapshotStatus, LvsQuotaSpec, LvsQuotaStatus,
    LvsSnapshotSpec, LvsSnapshotStatus, LvsVolumeSpec, LvsVolumeStatus, SnapshotState, Usage,
    VolumeState,
};
use lvsnap::store::{KubeStore, Record, SqliteStore, Store};

const V1: &str = "0b3f8a52-1c3e-4f2b-9a4e-000000000001";
const S1: &str = "0b3f8a52-1c3e-4f2b-9a4e-000000000011";
const S2: &str = "0b3f8a52-1c3e-4f2b-9a4e-000000000012";
const G1: &str = "0b3f8a52-1c3e-4f2b-9a4e-000000000021";

fn life<S: lvsnap::records::LifeState>(status: S) -> Lifecycle<S> {
    let mut l = Lifecycle::creating();
    l.status = status;
    l.progress = "100%".into();
    l.created_at = "2026-12-01T10:00:00.000000000Z".into();
    l
}

/// The same records in any store: a volume, two snapshots (one in error), a quota.
async fn populate(store: &dyn Store) {
    let charged = |k: &str| [(k.to_string(), 1), ("gigabytes".into(), 1)].into();
    store
        .insert_volume(&Record::new(
            V1,
            LvsVolumeSpec {
                id: V1.into(),
                csi_name: "pvc-6b1c".into(),
                project: "team-a".into(),
                display_name: "data".into(),
                volume_type: "vg0".into(),
                node: "n1".into(),
                vg: "vg0".into(),
                device_class: None,
                lv_name: format!("volume-{V1}"),
                size_bytes: GIB,
                quota_charged: charged("volumes"),
                ..Default::default()
            },
            LvsVolumeStatus {
                life: life(VolumeState::Available),
                ..Default::default()
            },
        ))
        .await
        .expect("volume");
    for (id, name, status) in [
        (S1, "daily", SnapshotState::Available),
        (S2, "weekly", SnapshotState::Error),
    ] {
        let mut status = LvsSnapshotStatus {
            life: life(status),
            ready_to_use: status == SnapshotState::Available,
            size_bytes: GIB,
        };
        if status.life.status == SnapshotState::Error {
            status.life.error_code = Some(lvsnap::records::FailureCode::ResourceExhausted);
            status.life.error_message = Some("no room".into());
        }
        store
            .insert_snapshot(&Record::new(
                id,
                LvsSnapshotSpec {
                    id: id.into(),
                    csi_name: format!("snapshot-{name}"),
                    source_volume_id: V1.into(),
                    project: "team-a".into(),
                    display_name: name.into(),
                    volume_type: "vg0".into(),
                    volume_size: 1,
                    cow_size_bytes: Some(GIB),
                    node: "n1".into(),
                    vg: "vg0".into(),
                    device_class: None,
                    lv_name: format!("_snapshot-{id}"),
                    quota_charged: charged("snapshots"),
                    ..Default::default()
                },
                status,
            ))
            .await
            .expect("snapshot");
    }
    store
        .insert_group_snapshot(&Record::new(
            G1,
            LvsGroupSnapshotSpec {
                id: G1.into(),
                csi_name: "groupsnapshot-nightly".into(),
                project: "team-a".into(),
                display_name: "nightly".into(),
                node: "n1".into(),
                vg: "vg0".into(),
                source_volume_ids: vec![V1.into()],
                snapshot_ids: vec![S1.into()],
                freeze_timeout_millis: 10_000,
                ..Default::default()
            },
            LvsGroupSnapshotStatus {
                life: life(SnapshotState::Available),
                ready_to_use: true,
                frozen_millis: Some(42),
                ..Default::default()
            },
        ))
        .await
        .expect("group snapshot");
    // What those records charged, as the quota engine would have counted it.
    store
        .update_quota(
            "team-a",
            Box::new(|_| {
                let usage = |n| Usage {
                    in_use: n,
                    ..Default::default()
                };
                let spec = LvsQuotaSpec {
                    hard: [("snapshots".to_string(), 5)].into(),
                };
                let status = LvsQuotaStatus {
                    usage: [
                        ("snapshots".to_string(), usage(2)),
                        ("volumes".to_string(), usage(1)),
                        ("gigabytes".to_string(), usage(3)),
                    ]
                    .into(),
                    ..Default::default()
                };
                Ok((spec, status))
            }),
        )
        .await
        .expect("quota");
}

/// `lvsnap <args…>`: stdout, or a panic with stderr.
fn lvsnap(args: &[&str]) -> String {
    let out = common::run(args, Path::new("/"));
    assert!(
        out.status.success(),
        "lvsnap {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn strip_conditions(mut v: serde_json::Value) -> serde_json::Value {
    for r in v.as_array_mut().into_iter().flatten() {
        if let Some(s) = r["status"].as_object_mut() {
            s.remove("conditions");
        }
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_kubernetes_print_the_same_tables_for_the_same_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = SqliteStore::open(dir.path()).expect("sqlite");
    populate(&sqlite).await;
    let cluster = Cluster::start().await;
    let kube = KubeStore::new(cluster.http.api.client());
    populate(&kube).await;

    let state = dir.path().display().to_string();
    let kubeconfig = cluster.kubeconfig.display().to_string();
    let sq = ["--state-dir", state.as_str()];
    let kc = ["--kubeconfig", kubeconfig.as_str()];
    let both = |cmd: &[&str]| {
        let a = lvsnap(&[cmd, &sq[..]].concat());
        let b = lvsnap(&[cmd, &kc[..]].concat());
        assert_eq!(a, b, "lvsnap {cmd:?}: SQLite vs Kubernetes");
        a
    };
    let list = both(&["snapshot-list"]);
    assert!(list.starts_with("+"), "{list}");
    assert!(
        list.contains("| ID ") && list.contains("| Volume ID "),
        "{list}"
    );
    assert!(
        list.contains(S1) && list.contains("daily") && list.contains("error"),
        "{list}"
    );
    let errors = both(&["snapshot-list", "--status", "error"]);
    assert!(errors.contains(S2) && !errors.contains(S1), "{errors}");
    let vols = both(&["volume-list", "--project", "team-a"]);
    assert!(
        vols.contains(V1) && vols.contains("| data ") && vols.contains("team-a"),
        "{vols}"
    );
    let show = both(&["snapshot-show", S2]);
    assert!(
        show.contains("| Property ") && show.contains("no room"),
        "{show}"
    );
    assert!(
        show.contains("False (Error)"),
        "the Ready condition: {show}"
    );
    both(&["volume-show", V1]);
    // `cinder group-snapshot-list`: ID | Status | Name.
    let groups = both(&["group-snapshot-list"]);
    assert!(
        groups.contains("| ID ") && groups.contains(&format!("| {G1} | available | nightly |")),
        "{groups}"
    );
    let group = both(&["group-snapshot-show", G1]);
    let row = |key: &str| {
        group
            .lines()
            .find(|l| l.starts_with(&format!("| {key} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(row("snapshot_ids").contains(S1), "{group}");
    assert!(row("frozen_ms").contains("| 42 "), "{group}");
    let quota = both(&["quota-show", "team-a"]);
    // Cinder's quota-usage: the LvsQuota's limit, else the default.
    assert!(
        quota.contains("| snapshots | 2      | 0        | 5     |"),
        "{quota}"
    );
    assert!(
        quota.contains("| volumes   | 1      | 0        | 10    |"),
        "{quota}"
    );

    // JSON: the same records (conditions carry each store's write time).
    let json =
        |args: &[&str]| -> serde_json::Value { serde_json::from_str(&lvsnap(args)).expect("json") };
    let a = json(&["snapshot-list", "-o", "json", "--state-dir", &state]);
    let b = json(&["snapshot-list", "-o", "json", "--kubeconfig", &kubeconfig]);
    assert_eq!(strip_conditions(a.clone()), strip_conditions(b));
    assert_eq!(a[0]["id"], S1);
    let yaml = lvsnap(&["volume-show", V1, "-o", "yaml", "--state-dir", &state]);
    let y: serde_yaml::Value = serde_yaml::from_str(&yaml).expect("yaml");
    assert_eq!(y["spec"]["displayName"].as_str(), Some("data"));

    // Writes, on both: the same outcome.
    let upd = both(&[
        "quota-update",
        "team-a",
        "--gigabytes",
        "50",
        "--set",
        "snapshots_vg0=3",
    ]);
    assert!(
        upd.contains("| gigabytes     | 3      | 0        | 50    |"),
        "{upd}"
    );
    assert!(upd.contains("| snapshots_vg0 |"), "{upd}");
    let reset = both(&["reset-state", S2, "--state", "available"]);
    assert_eq!(reset, format!("snapshot {S2}: error -> available\n"));
    for store in [&sqlite as &dyn Store, &kube] {
        let s = store.get_snapshot(S2).await.unwrap().expect("record");
        assert_eq!(s.status.life.status, SnapshotState::Available);
        assert!(s.status.ready_to_use && s.status.life.error_message.is_none());
        let q = store.get_quota("team-a").await.unwrap().expect("quota");
        assert_eq!(
            q.status.usage["snapshots"].in_use, 2,
            "usage kept by quota-update"
        );
    }
    // Bad input: a clear error, nothing written.
    let bad = common::run(
        &[
            "reset-state",
            S1,
            "--state",
            "deleted",
            "--state-dir",
            &state,
        ],
        Path::new("/"),
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("force-delete"));
    let none = common::run(
        &["volume-show", "nope", "--state-dir", &state],
        Path::new("/"),
    );
    assert!(String::from_utf8_lossy(&none.stderr).contains("no volume with id nope"));
}

#[tokio::test]
async fn force_delete_marks_the_record_and_its_node_removes_the_lv() {
    let h = Harness::new(20 * GIB as u64).await;
    let v = h.volume("pvc-1", GIB).await;
    let s = h.snapshot("snap-1", &v).await;
    let lv = format!("_snapshot-{s}");
    assert!(h.lvs().contains(&lv));
    let state = h.dir.path().display().to_string();
    let out = lvsnap(&["force-delete", &s, "--state-dir", &state]);
    assert!(out.contains("available -> deleting"), "{out}");
    // The command removed nothing itself: the LV is there until the node works.
    assert!(h.lvs().contains(&lv), "force-delete must not touch LVM");
    let r = h.store.get_snapshot(&s).await.unwrap().expect("record");
    assert_eq!(r.status.life.status, SnapshotState::Deleting);
    h.work_all().await;
    assert!(!h.lvs().contains(&lv), "the node removed it");
    let r = h.store.get_snapshot(&s).await.unwrap().expect("record");
    assert!(r.status.life.deleted);
    assert_eq!(
        h.usage("default", "snapshots").await,
        (0, 0),
        "quota released"
    );
    let again = common::run(&["force-delete", &s, "--state-dir", &state], Path::new("/"));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already deleted"));
    let _ = Arc::clone(&h.store);
}
