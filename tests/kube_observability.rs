//! Kubernetes mode (the fake API server): the `Ready` condition as the API
//! server stores it (what `kubectl wait --for=condition=Ready` reads), and a
//! real `lvsnap controller` process serving /metrics and /healthz, logging
//! refused creates once with their project, and naming itself in its
//! requests' User-Agent.
mod common;

use std::sync::Arc;

use common::Cluster;
use common::kube::{create_volume, node, snapshot_req};
use common::scrape::{Scrape, get, served_addr};
use lvsnap::records::{FailureCode, Lifecycle, LvsSnapshotSpec, LvsSnapshotStatus, Operation};
use lvsnap::records::{SnapshotState, VolumeState};
use lvsnap::store::{KubeStore, Record, SnapshotRecord, Store, modify};

/// `.status.conditions[?(@.type=="Ready")]` of the stored object.
fn ready(cluster: &Cluster, plural: &str, id: &str) -> serde_json::Value {
    let obj = cluster.http.api.object(plural, id).expect("object");
    let conditions = obj["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let found: Vec<_> = conditions
        .into_iter()
        .filter(|c| c["type"] == "Ready")
        .collect();
    assert_eq!(found.len(), 1, "one Ready condition: {obj}");
    found[0].clone()
}

fn snapshot(id: &str) -> SnapshotRecord {
    Record::new(
        id,
        LvsSnapshotSpec {
            id: id.into(),
            csi_name: format!("csi-{id}"),
            source_volume_id: "v".into(),
            project: "default".into(),
            display_name: "daily".into(),
            volume_type: "vg0".into(),
            volume_size: 1,
            node: "n1".into(),
            vg: "vg0".into(),
            device_class: None,
            lv_name: format!("_snapshot-{id}"),
            ..Default::default()
        },
        LvsSnapshotStatus {
            life: Lifecycle::creating(),
            ..Default::default()
        },
    )
}

#[tokio::test]
async fn the_ready_condition_follows_the_record_in_the_api_server() {
    let cluster = Cluster::start().await;
    let store: Arc<dyn Store> = Arc::new(KubeStore::new(cluster.http.api.client()));
    let id = "8f0f5c52-9c3e-4f2b-9a4e-0000000000aa";
    store.insert_snapshot(&snapshot(id)).await.expect("insert");
    let c = ready(&cluster, "lvssnapshots", id);
    assert_eq!(
        (c["status"].as_str(), c["reason"].as_str()),
        (Some("False"), Some("Creating"))
    );
    assert_eq!(c["message"], "creating: 0%");
    let created_at = c["lastTransitionTime"].clone();

    // Progress alone is no transition.
    store
        .modify_snapshot(
            id,
            modify(|s: &mut SnapshotRecord| {
                s.status.life.progress = "40%".into();
                Ok(())
            }),
        )
        .await
        .expect("progress");
    let c = ready(&cluster, "lvssnapshots", id);
    assert_eq!(c["lastTransitionTime"], created_at);
    assert_eq!(c["message"], "creating: 40%");

    store
        .modify_snapshot(
            id,
            modify(|s: &mut SnapshotRecord| {
                s.status.life.status = SnapshotState::Available;
                s.status.ready_to_use = true;
                Ok(())
            }),
        )
        .await
        .expect("available");
    let c = ready(&cluster, "lvssnapshots", id);
    assert_eq!(
        (c["status"].as_str(), c["reason"].as_str()),
        (Some("True"), Some("Available"))
    );
    let available_at = c["lastTransitionTime"].clone();
    assert!(available_at.as_str() >= created_at.as_str());

    store
        .modify_snapshot(
            id,
            modify(|s: &mut SnapshotRecord| {
                s.status.life.status = SnapshotState::Error;
                s.status.life.fail(
                    Operation::Check,
                    FailureCode::Internal,
                    "COW area overflowed",
                );
                Ok(())
            }),
        )
        .await
        .expect("error");
    let c = ready(&cluster, "lvssnapshots", id);
    assert_eq!(
        (c["status"].as_str(), c["reason"].as_str()),
        (Some("False"), Some("Error"))
    );
    assert_eq!(c["message"], "COW area overflowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_controller_serves_metrics_logs_refusals_once_and_names_itself() {
    let cluster = Cluster::start().await;
    let node = node(&cluster).await;
    let mut args = vec!["controller", "--create-timeout", "20s"];
    args.extend(["--metrics-address", "127.0.0.1:0"]);
    args.extend(["--default-quota", "snapshots=1,gigabytes=100,volumes=10"]);
    let driver = common::Driver::start_logged(&args, &[cluster.env()]).await;
    let log = driver.log.clone().expect("log");
    let addr = served_addr(&log);
    let mut c = driver.clients().await;
    let volume = create_volume(&mut c, "pvc-m1").await;
    c.controller
        .create_snapshot(snapshot_req("snap-m1", &volume.volume_id))
        .await
        .expect("first snapshot");
    let refused = c
        .controller
        .create_snapshot(snapshot_req("snap-m2", &volume.volume_id))
        .await
        .expect_err("over quota");
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    log.wait_for(
        "CreateSnapshot refused",
        1,
        std::time::Duration::from_secs(10),
    );
    let lines: Vec<String> = log
        .lines()
        .into_iter()
        .filter(|l| l.contains("CreateSnapshot refused"))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("INFO") && lines[0].contains("project=default"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("Maximum number of snapshots allowed (1) exceeded"),
        "{}",
        lines[0]
    );

    assert_eq!(get(&addr, "/healthz"), (200, "ok\n".into()));
    assert_eq!(get(&addr, "/nope").0, 404);
    let (code, body) = get(&addr, "/metrics");
    assert_eq!(code, 200);
    let m = Scrape::parse(&body);
    let refused = [("method", "CreateSnapshot"), ("code", "ResourceExhausted")];
    assert_eq!(m.value("lvsnap_rpc_requests_total", &refused), Some(1.0));
    let ok = [("method", "CreateSnapshot"), ("code", "OK")];
    assert_eq!(m.value("lvsnap_rpc_requests_total", &ok), Some(1.0));
    let used = [("project", "default"), ("resource", "snapshots")];
    assert_eq!(m.value("lvsnap_quota_in_use", &used), Some(1.0));
    assert_eq!(m.value("lvsnap_quota_limit", &used), Some(1.0));
    let vols = node
        .store
        .list_volumes(&Default::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(
        m.value(
            "lvsnap_records",
            &[
                ("kind", "volume"),
                ("status", VolumeState::Available.as_str())
            ]
        ),
        Some(vols.len() as f64)
    );

    // The quota is the namespaced object `quota` in the project's namespace
    // (readable from inside it, as a ResourceQuota).
    let q = cluster
        .http
        .api
        .object_in("lvsquotas", "default", lvsnap::store::QUOTA_OBJECT)
        .expect("LvsQuota default/quota");
    assert_eq!(q["status"]["usage"]["snapshots"]["inUse"], 1);

    // Every request of the controller process said who it is.
    let agents = cluster.http.api.user_agents();
    assert!(
        agents.contains_key(lvsnap::store::USER_AGENT),
        "User-Agents seen: {agents:?}"
    );
    assert_eq!(
        lvsnap::store::USER_AGENT,
        concat!("lvsnap/", env!("CARGO_PKG_VERSION"))
    );
}
