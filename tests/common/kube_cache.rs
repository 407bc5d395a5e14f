//! Helpers of the Kubernetes cache tests (`store_kube_cache.rs`,
//! `kube_cache_decisions.rs`): a cached store, waiting for a change.
use std::sync::Arc;
use std::time::Duration;

use lvsnap::store::fake_api::FakeApiServer;
use lvsnap::store::{Change, KubeStore};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// A store whose watches run and whose caches are in step.
pub async fn cached(api: &FakeApiServer) -> (Arc<KubeStore>, Vec<JoinHandle<()>>) {
    let store = KubeStore::new(api.client());
    let tasks = store.spawn_watch(None);
    store.synced().await;
    (Arc::new(store), tasks)
}

/// Until `seen` holds, checked now and after every change announced,
/// within 10 s (a create is two writes: the watch shows the object, then
/// its status).
pub async fn heard<F, Fut>(rx: &mut broadcast::Receiver<Change>, what: &str, seen: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    tokio::time::timeout(Duration::from_secs(10), async {
        while !seen().await {
            match rx.recv().await {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("changes: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} within 10 s"));
}

pub fn node_record(name: &str, free: i64) -> lvsnap::store::NodeRecord {
    lvsnap::store::Record::new(
        name,
        lvsnap::records::LvsNodeSpec {
            vg: "vg0".into(),
            thin_pool: None,
        },
        lvsnap::records::LvsNodeStatus {
            size_bytes: free,
            free_bytes: free,
            ..Default::default()
        },
    )
}
