//! The Kubernetes-mode fixtures: a node executor on the fake API (fake
//! LVM), a real `lvsnap controller` process, requests, usage, polling.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use super::{Cluster, Driver};
use lvsnap::client::CsiClients;
use lvsnap::lvm::Lvm;
use lvsnap::node::{Executor, NodeSettings};
use lvsnap::proto::v1 as csi;
use lvsnap::quota::{QuotaConfig, QuotaEngine, system_clock};
use lvsnap::store::{KubeEvents, KubeStore, Store};

pub const GIB: i64 = 1 << 30;

/// The node side on the cluster: executor + watch + events, fake LVM.
pub struct Node {
    pub store: Arc<dyn Store>,
    pub lvm: Lvm,
    pub _tasks: Vec<tokio::task::JoinHandle<()>>,
}

pub async fn node(cluster: &Cluster) -> Node {
    // The node exists in Kubernetes (a deleted Node object lets deletes
    // finish without it: see deletes_on_a_deleted_node_succeed).
    cluster.http.api.create_node("n1", &[]).expect("Node n1");
    let client = cluster.http.api.client();
    let kube = KubeStore::new(client.clone());
    let mut tasks = kube.spawn_watch(Some("n1"));
    let store: Arc<dyn Store> = Arc::new(kube);
    let (lvm, _fake) = Lvm::fake("vg0", 20 * GIB as u64);
    let quota = QuotaEngine::new(store.clone(), QuotaConfig::default(), system_clock());
    let executor = Executor::new(
        store.clone(),
        quota,
        lvm.clone(),
        NodeSettings::new("n1", "vg0"),
    )
    .with_events(Arc::new(KubeEvents::new(client, "lvsnap.io/node", "n1")));
    executor.report_capacity().await;
    tasks.push(tokio::spawn(executor.run()));
    Node {
        store,
        lvm,
        _tasks: tasks,
    }
}

pub async fn controller(cluster: &Cluster, extra: &[&str]) -> Driver {
    let mut args = vec!["controller", "--create-timeout", "20s"];
    args.extend_from_slice(extra);
    Driver::start_env(&args, &[cluster.env()]).await
}

pub async fn create_volume(c: &mut CsiClients, name: &str) -> csi::Volume {
    c.controller
        .create_volume(super::volume_request(name, GIB))
        .await
        .unwrap_or_else(|e| panic!("CreateVolume {name}: {e:?}"))
        .into_inner()
        .volume
        .expect("volume")
}

pub fn snapshot_req(name: &str, source: &str) -> csi::CreateSnapshotRequest {
    csi::CreateSnapshotRequest {
        name: name.into(),
        source_volume_id: source.into(),
        ..Default::default()
    }
}

/// (in_use, reserved) of `key` in the default project.
pub async fn usage(store: &Arc<dyn Store>, key: &str) -> (i64, i64) {
    let q = store.get_quota("default").await.expect("get quota");
    q.and_then(|q| q.status.usage.get(key).map(|u| (u.in_use, u.reserved)))
        .unwrap_or((0, 0))
}

/// Polls `f` until it holds, bounded (the sweep runs every second here).
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not reached within 30 s: {what}");
}
