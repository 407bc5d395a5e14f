//! [`Tracked`]: volume and snapshot records seen the same way (lifecycle,
//! quota charged, placement), so that the controller and the executor each
//! write one code path for both kinds.
use std::collections::BTreeMap;

use futures::future::BoxFuture;

use super::{Kind, Modify, SnapshotRecord, Store, StoreError, VolumeRecord};
use crate::records::{LifeState, Lifecycle, SnapshotState, VolumeState};

/// A volume or snapshot record: what the controller and the executor do
/// the same way to both kinds goes through this.
pub trait Tracked: Clone + Send + Sync + 'static {
    type State: LifeState + Send + Sync + 'static;
    const KIND: Kind;
    /// The record's id (its name in the store).
    fn id(&self) -> &str;
    fn life(&self) -> &Lifecycle<Self::State>;
    fn life_mut(&mut self) -> &mut Lifecycle<Self::State>;
    fn project(&self) -> &str;
    fn charged(&self) -> &BTreeMap<String, i64>;
    fn vg(&self) -> &str;
    fn lv_name(&self) -> &str;
    fn node(&self) -> &str;
    /// Marks the record cut (`available`, `100%`, …).
    fn set_available(&mut self);
    /// Marks the record `error` (a snapshot is no longer ready to use).
    fn set_error(&mut self);
    fn get<'a>(
        store: &'a dyn Store,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Self>, StoreError>>;
    fn modify<'a>(
        store: &'a dyn Store,
        id: &'a str,
        f: Modify<Self>,
    ) -> BoxFuture<'a, Result<Option<Self>, StoreError>>;
}

impl Tracked for SnapshotRecord {
    type State = SnapshotState;
    const KIND: Kind = Kind::Snapshot;
    fn id(&self) -> &str {
        &self.name
    }
    fn life(&self) -> &Lifecycle<SnapshotState> {
        &self.status.life
    }
    fn life_mut(&mut self) -> &mut Lifecycle<SnapshotState> {
        &mut self.status.life
    }
    fn project(&self) -> &str {
        &self.spec.project
    }
    fn charged(&self) -> &BTreeMap<String, i64> {
        &self.spec.quota_charged
    }
    fn vg(&self) -> &str {
        &self.spec.vg
    }
    fn lv_name(&self) -> &str {
        &self.spec.lv_name
    }
    fn node(&self) -> &str {
        &self.spec.node
    }
    fn get<'a>(
        store: &'a dyn Store,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Self>, StoreError>> {
        store.get_snapshot(id)
    }
    fn set_error(&mut self) {
        self.status.life.status = SnapshotState::Error;
        self.status.ready_to_use = false;
    }
    fn set_available(&mut self) {
        self.status.life.status = SnapshotState::Available;
        self.status.life.progress = "100%".into();
        self.status.life.clear_error();
        self.status.ready_to_use = true;
    }
    fn modify<'a>(
        store: &'a dyn Store,
        id: &'a str,
        f: Modify<Self>,
    ) -> BoxFuture<'a, Result<Option<Self>, StoreError>> {
        store.modify_snapshot(id, f)
    }
}

impl Tracked for VolumeRecord {
    type State = VolumeState;
    const KIND: Kind = Kind::Volume;
    fn id(&self) -> &str {
        &self.name
    }
    fn life(&self) -> &Lifecycle<VolumeState> {
        &self.status.life
    }
    fn life_mut(&mut self) -> &mut Lifecycle<VolumeState> {
        &mut self.status.life
    }
    fn project(&self) -> &str {
        &self.spec.project
    }
    fn charged(&self) -> &BTreeMap<String, i64> {
        &self.spec.quota_charged
    }
    fn vg(&self) -> &str {
        &self.spec.vg
    }
    fn lv_name(&self) -> &str {
        &self.spec.lv_name
    }
    fn node(&self) -> &str {
        &self.spec.node
    }
    fn get<'a>(
        store: &'a dyn Store,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Self>, StoreError>> {
        store.get_volume(id)
    }
    fn set_error(&mut self) {
        self.status.life.status = VolumeState::Error;
    }
    fn set_available(&mut self) {
        self.status.life.status = VolumeState::Available;
        self.status.life.progress = "100%".into();
        self.status.life.clear_error();
    }
    fn modify<'a>(
        store: &'a dyn Store,
        id: &'a str,
        f: Modify<Self>,
    ) -> BoxFuture<'a, Result<Option<Self>, StoreError>> {
        store.modify_volume(id, f)
    }
}
