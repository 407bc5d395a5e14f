//! Quota and node records in the Kubernetes store: read-modify-writes of one
//! object per project (per node) that many callers of one process race for.
//!
//! They are serialized per object inside the process (an async lock per
//! project or node), so 1 000 concurrent CreateSnapshot calls queue for
//! their project's quota instead of losing compare-and-swaps to each other
//! and backing off; other processes (the node's releases, another replica)
//! still race through resourceVersion, retried with jittered back-off
//! (`cas.rs`). The read is the API server's, except right after this
//! process's own write of the object, which it remembers: under the lock
//! that is the current version unless another process wrote since, and then
//! the write is a 409. A remembered version may only let a write through:
//! any other outcome on it (a 409, a 404, a refusal such as "over quota")
//! is decided again on a read from the API server.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::api::PostParams;

use super::super::{Kind, NodeRecord, QuotaRecord, QuotaUpdate, Record, StoreError, cas};
use super::cr::{Cr, classify, to_record};
use super::{KubeStore, LABEL_NODE};
use crate::records::{LvsNode, LvsQuota};

/// One object's lock and the version this process last wrote.
type Slot<R> = Arc<tokio::sync::Mutex<Option<R>>>;

/// This process's quota and node writes.
#[derive(Default)]
pub(super) struct Writes {
    quotas: Mutex<HashMap<String, Slot<QuotaRecord>>>,
    nodes: Mutex<HashMap<String, Slot<NodeRecord>>>,
}

fn slot<R>(map: &Mutex<HashMap<String, Slot<R>>>, name: &str) -> Result<Slot<R>, StoreError> {
    let mut map = map
        .lock()
        .map_err(|_| StoreError::Other("write lock map poisoned".into()))?;
    Ok(map.entry(name.to_string()).or_default().clone())
}

/// One write of an object this process serializes: first on the version
/// it remembers from its own last write (no read), and when that fails
/// (changed or gone behind this process: 409, 404; or refused on what it
/// remembered: over quota, a recount needed) by compare-and-swap from fresh
/// reads, since only a fresh read may decide that. What it wrote is
/// remembered; a failure forgets.
async fn remembered_write<T, W, WF, R, RF>(
    last: &mut Option<T>,
    write: W,
    read: R,
) -> Result<T, StoreError>
where
    T: Clone,
    W: Fn(Option<T>) -> WF,
    WF: Future<Output = Result<T, StoreError>>,
    R: Fn() -> RF,
    RF: Future<Output = Result<Option<T>, StoreError>>,
{
    if let Some(current) = last.take()
        && let Ok(out) = write(Some(current)).await
    {
        *last = Some(out.clone());
        return Ok(out);
    }
    let out = cas::retry(true, || async { write(read().await?).await }).await?;
    *last = Some(out.clone());
    Ok(out)
}

impl KubeStore {
    /// `Store::update_quota`: one compare-and-swap of the project's quota,
    /// serialized per project in this process.
    pub(super) async fn update_quota_cas(
        &self,
        project: &str,
        update: QuotaUpdate,
    ) -> Result<QuotaRecord, StoreError> {
        let slot = slot(&self.writes.quotas, project)?;
        let mut last = slot.lock().await;
        let update = Mutex::new(update);
        let attempt = |current: Option<QuotaRecord>| {
            let update = &update;
            async move {
                let next = {
                    let mut f = update
                        .lock()
                        .map_err(|_| StoreError::Other("quota closure lock poisoned".into()))?;
                    f(current.as_ref()).map_err(StoreError::Aborted)?
                };
                self.write_quota(project, current, next).await
            }
        };
        let read = || self.get_direct::<LvsQuota>(project);
        let out = remembered_write(&mut last, attempt, read).await?;
        drop(last);
        self.notify(Kind::Quota, project, None);
        Ok(out)
    }

    async fn write_quota(
        &self,
        project: &str,
        current: Option<QuotaRecord>,
        (spec, status): (crate::records::LvsQuotaSpec, crate::records::LvsQuotaStatus),
    ) -> Result<QuotaRecord, StoreError> {
        match &current {
            None => {
                self.create::<LvsQuota>(&Record::new(project, spec, status), vec![])
                    .await
            }
            Some(cur) if cur.spec != spec => {
                let next = Record {
                    spec,
                    status,
                    ..cur.clone()
                };
                self.update::<LvsQuota>(&next, vec![], true).await
            }
            Some(cur) => {
                // Status only: one compare-and-swap on the status subresource.
                let (api, object) = <LvsQuota as Cr>::scoped(&self.client, project);
                let mut obj = <LvsQuota as Cr>::build(project, cur.spec.clone());
                obj.metadata.resource_version = Some(cur.version.clone());
                obj.status = Some(status);
                api.replace_status(&object, &PostParams::default(), &obj)
                    .await
                    .map(|o| to_record(&o))
                    .map_err(|e| classify(Kind::Quota, project, e))
            }
        }
    }

    /// `Store::put_node`: this node's record, created or replaced,
    /// serialized per node in this process.
    pub(super) async fn put_node_cas(&self, r: &NodeRecord) -> Result<NodeRecord, StoreError> {
        let slot = slot(&self.writes.nodes, &r.name)?;
        let mut last = slot.lock().await;
        let labels = || vec![(LABEL_NODE, r.name.clone())];
        let write = |current: Option<NodeRecord>| async move {
            match current {
                None => self.create::<LvsNode>(r, labels()).await,
                Some(cur) => {
                    let next = Record {
                        version: cur.version.clone(),
                        ..r.clone()
                    };
                    let spec_too = cur.spec != r.spec;
                    self.update::<LvsNode>(&next, labels(), spec_too).await
                }
            }
        };
        let read = || self.get_direct::<LvsNode>(&r.name);
        let out = remembered_write(&mut last, write, read).await?;
        drop(last);
        self.notify(Kind::Node, &r.name, Some(r.name.clone()));
        Ok(out)
    }
}
