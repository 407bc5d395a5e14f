//! The node's capacity reports: its LvsNode record (the VG's size, free
//! space and extent size, lvm2's version, the heartbeat placement and
//! GetCapacity read).
//!
//! Coalesced: a change of the VG asks for a report
//! ([`Executor::capacity_changed`]); the report follows the last change of
//! a burst by [`QUIET`], or [`MAX_DELAY`] after the first one under a steady
//! stream of changes, so a burst of creates and deletes costs one store
//! write instead of one (or two) per change. Its figures come from the LVM
//! layer's view of the VG ([`Lvm::capacity`]: no LVM command while the view
//! is known). The heartbeat at every resync reads the VG afresh, so changes
//! made behind lvsnap's back reach the record within a resync.
//!
//! Each report carries the default VG's figures (the fields placement read
//! before device classes) and every device class's (`status.classes`: the
//! VG, the thin pool's use, what a new volume may take).
use std::time::Duration;

use tokio::time::Instant;

use super::executor::Executor;
use crate::lvm::{ClassCapacity, DeviceClass, Lvm, LvmError, VgInfo};
use crate::records::{LvsNodeSpec, LvsNodeStatus, NodeClass, NodePool, now_rfc3339};
use crate::store::Record;

/// A report waits for this much quiet after the last change...
pub const QUIET: Duration = Duration::from_millis(250);
/// ...but no longer than this after the first unreported one.
pub const MAX_DELAY: Duration = Duration::from_secs(2);

/// One VG's figures for the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VgCapacity {
    pub vg: String,
    pub info: VgInfo,
}

/// How a report reads the VG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// The view when known (after a change lvsnap made).
    View,
    /// A fresh report (the heartbeat; startup).
    Fresh,
}

async fn read(lvm: &Lvm, vg: &str, how: Read) -> Result<VgCapacity, LvmError> {
    let info = match how {
        Read::View => lvm.capacity(vg).await?,
        Read::Fresh => lvm.report(vg).await?.vg,
    };
    Ok(VgCapacity {
        vg: vg.to_string(),
        info,
    })
}

/// Aborts the spawned task when dropped.
pub(super) struct Reporter(tokio::task::JoinHandle<()>);

impl Drop for Reporter {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Executor {
    /// Asks for a capacity report soon (coalesced with other changes).
    pub fn capacity_changed(&self) {
        self.wanted.notify_one();
    }

    /// Writes this node's capacity into its LvsNode record now, reading the
    /// VG afresh (startup, heartbeat).
    pub async fn report_capacity(&self) {
        self.write_capacity(Read::Fresh).await;
    }

    /// Runs the coalesced reports until dropped.
    pub(super) fn spawn_reporter(&self) -> Reporter {
        let this = self.clone();
        Reporter(tokio::spawn(async move {
            loop {
                this.wanted.notified().await;
                let first = Instant::now();
                loop {
                    let quiet = (Instant::now() + QUIET).min(first + MAX_DELAY);
                    let more = tokio::time::timeout_at(quiet, this.wanted.notified());
                    if more.await.is_err() {
                        break;
                    }
                }
                if this.failpoints.halted() {
                    return;
                }
                this.write_capacity(Read::View).await;
            }
        }))
    }

    async fn write_capacity(&self, how: Read) {
        let vg = match read(&self.lvm, &self.settings.vg, how).await {
            Ok(vg) => vg,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the volume group");
                return;
            }
        };
        let mut classes = Vec::new();
        for class in self.settings.classes() {
            // The default VG was just read afresh if it was to be.
            let fresh = how == Read::Fresh && class.vg != self.settings.vg;
            match self.lvm.class_capacity(&class, fresh).await {
                Ok(c) => classes.push(node_class(&class, &c)),
                // A class that cannot be read is left out (nothing is placed
                // on it) rather than reported with stale figures.
                Err(e) => {
                    tracing::warn!(class = %class.name, error = %e, "cannot read a device class")
                }
            }
        }
        let available = classes
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    u64::try_from(c.available_bytes).unwrap_or(0),
                )
            })
            .collect();
        self.update_fill(|f| {
            f.vg = Some(vg.info.clone());
            f.classes = available;
        });
        // lvm2's version does not change under a running node: asked once.
        let version = self
            .lvm_version
            .get_or_try_init(|| self.lvm.version())
            .await
            .cloned()
            .unwrap_or_default();
        let record = Record::new(
            self.settings.node_id.clone(),
            LvsNodeSpec {
                vg: vg.vg.clone(),
                thin_pool: self.settings.thin_pool.clone(),
            },
            LvsNodeStatus {
                size_bytes: bytes(vg.info.size_bytes),
                free_bytes: bytes(vg.info.free_bytes),
                extent_size_bytes: bytes(vg.info.extent_size_bytes),
                lvm_version: version,
                last_heartbeat: now_rfc3339(),
                classes,
            },
        );
        if let Err(e) = self.store.put_node(&record).await {
            tracing::warn!(error = %e, "cannot report capacity");
        }
    }
}

fn bytes(b: u64) -> i64 {
    i64::try_from(b).unwrap_or(i64::MAX)
}

/// A class's figures as the LvsNode record reports them.
fn node_class(class: &DeviceClass, c: &ClassCapacity) -> NodeClass {
    NodeClass {
        name: class.name.clone(),
        vg: class.vg.clone(),
        thin_pool: class.thin_pool.as_ref().map(|p| p.to_string()),
        default: class.default,
        size_bytes: bytes(c.vg_size_bytes),
        free_bytes: bytes(c.vg_free_bytes),
        available_bytes: bytes(c.available_bytes),
        overprovision_ratio: class.thin_pool.as_ref().map(|_| class.overprovision_ratio),
        pool: c.pool.as_ref().map(|p| NodePool {
            size_bytes: bytes(p.size_bytes),
            data_used_bytes: bytes(p.data_used_bytes),
            metadata_percent: f64::from(p.metadata_basis_points) / 100.0,
            virtual_bytes: bytes(p.virtual_bytes),
        }),
    }
}
