//! Crash injection for the failure-path tests: named points in the create
//! and delete paths (controller and node side) where a test makes the
//! process die (`Abort`: the hidden `--failpoint` flag) or, in process, the
//! executor or controller stop as if it had died (`Halt`), before the next
//! step. Compiled in only with the `testing` feature: in the release build
//! [`Failpoints::hit`] is an empty function and the flag does not exist.
//! Held by the context structs (no global registry).

/// Where a crash may be injected. The names are the `--failpoint` values.
pub mod points {
    /// Controller: quota reserved, no record written yet.
    pub const SNAPSHOT_AFTER_RESERVE: &str = "snapshot-after-reserve";
    /// Controller: record written, reservation not committed yet.
    pub const SNAPSHOT_AFTER_RECORD: &str = "snapshot-after-record";
    pub const VOLUME_AFTER_RESERVE: &str = "volume-after-reserve";
    pub const VOLUME_AFTER_RECORD: &str = "volume-after-record";
    /// Controller: the record went `deleting`, before waiting on the node.
    pub const DELETE_AFTER_MARK: &str = "delete-after-mark";
    /// Node: lvcreate done, the record not yet `available`.
    pub const NODE_AFTER_LVCREATE: &str = "node-after-lvcreate";
    /// Node: lvremove done, quota not yet released.
    pub const NODE_AFTER_LVREMOVE: &str = "node-after-lvremove";
    /// Node: quota released, the record not yet marked deleted.
    pub const NODE_AFTER_RELEASE: &str = "node-after-release";
    /// Node: record marked deleted, the release not yet forgotten.
    pub const NODE_AFTER_DELETED: &str = "node-after-deleted";
    /// Controller: the group's one reservation made, no record written yet.
    pub const GROUP_AFTER_RESERVE: &str = "group-after-reserve";
    /// Controller: group and member records written, not committed or
    /// dispatched yet.
    pub const GROUP_AFTER_RECORD: &str = "group-after-record";
    /// Node: every member frozen, nothing cut yet.
    pub const GROUP_AFTER_FREEZE: &str = "group-after-freeze";
    /// Node: the first member cut, the others not, all still frozen.
    pub const GROUP_AFTER_FIRST_CUT: &str = "group-after-first-cut";

    pub const ALL: [&str; 13] = [
        SNAPSHOT_AFTER_RESERVE,
        SNAPSHOT_AFTER_RECORD,
        VOLUME_AFTER_RESERVE,
        VOLUME_AFTER_RECORD,
        DELETE_AFTER_MARK,
        NODE_AFTER_LVCREATE,
        NODE_AFTER_LVREMOVE,
        NODE_AFTER_RELEASE,
        NODE_AFTER_DELETED,
        GROUP_AFTER_RESERVE,
        GROUP_AFTER_RECORD,
        GROUP_AFTER_FREEZE,
        GROUP_AFTER_FIRST_CUT,
    ];
}

/// The work stopped at a failpoint (in-process `Halt`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("halted at failpoint {0}")]
pub struct Halted(pub String);

/// What happens at an armed point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `std::process::abort()`: no unwinding, no cleanup, a crash.
    Abort,
    /// The caller stops its work and everything after it (in-process tests).
    Halt,
}

#[cfg(feature = "testing")]
mod armed {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use super::{Action, Halted};

    /// The armed points of one process (or one in-process driver).
    #[derive(Debug, Clone, Default)]
    pub struct Failpoints {
        armed: Arc<Mutex<HashMap<String, Action>>>,
        halted: Arc<AtomicBool>,
    }

    impl Failpoints {
        /// Arms `point` (one of [`super::points::ALL`]).
        pub fn arm(&self, point: &str, action: Action) -> Result<(), String> {
            if !super::points::ALL.contains(&point) {
                return Err(format!(
                    "{point:?} is not a failpoint ({})",
                    super::points::ALL.join(", ")
                ));
            }
            if let Ok(mut m) = self.armed.lock() {
                m.insert(point.to_string(), action);
            }
            Ok(())
        }

        /// Passes `point`: aborts, halts, or (not armed) goes on. Once a
        /// point has halted, every later point halts too: the "process" is dead.
        pub fn hit(&self, point: &str) -> Result<(), Halted> {
            if self.halted.load(Ordering::SeqCst) {
                return Err(Halted(point.to_string()));
            }
            let action = self.armed.lock().ok().and_then(|m| m.get(point).copied());
            match action {
                None => Ok(()),
                Some(Action::Abort) => {
                    tracing::error!(point, "failpoint reached: aborting");
                    std::process::abort();
                }
                Some(Action::Halt) => {
                    tracing::warn!(point, "failpoint reached: halting");
                    self.halted.store(true, Ordering::SeqCst);
                    Err(Halted(point.to_string()))
                }
            }
        }

        /// Whether a point has halted this driver.
        pub fn halted(&self) -> bool {
            self.halted.load(Ordering::SeqCst)
        }
    }
}

#[cfg(not(feature = "testing"))]
mod armed {
    use super::Halted;

    /// Release build: no failpoints.
    #[derive(Debug, Clone, Default)]
    pub struct Failpoints {
        _none: (),
    }

    impl Failpoints {
        #[inline(always)]
        pub fn hit(&self, _point: &str) -> Result<(), Halted> {
            Ok(())
        }

        #[inline(always)]
        pub fn halted(&self) -> bool {
            false
        }
    }
}

pub use armed::Failpoints;

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;

    #[test]
    fn armed_points_halt_and_stay_halted() {
        let f = Failpoints::default();
        assert!(f.hit(points::NODE_AFTER_LVCREATE).is_ok());
        assert!(f.arm("nowhere", Action::Halt).is_err());
        f.arm(points::NODE_AFTER_LVREMOVE, Action::Halt).unwrap();
        assert!(f.hit(points::NODE_AFTER_LVCREATE).is_ok());
        assert_eq!(
            f.hit(points::NODE_AFTER_LVREMOVE),
            Err(Halted(points::NODE_AFTER_LVREMOVE.into()))
        );
        assert!(f.halted());
        assert!(f.hit(points::NODE_AFTER_LVCREATE).is_err());
    }
}
