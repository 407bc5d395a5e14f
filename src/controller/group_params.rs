//! VolumeGroupSnapshotClass parameters of CreateVolumeGroupSnapshot:
//! `consistency` (freeze, none), `groupFreezeTimeout`, and the member
//! snapshots' own `snapshotSize`, `requireDetached`, `autoextendThreshold`
//! and `autoextendPercent`.
use std::collections::HashMap;
use std::time::Duration;

use super::params::{Invalid, K8S_PREFIX, SnapshotParams};
use crate::records::GroupConsistency;

pub const GROUP_SNAPSHOT_NAMESPACE: &str = "csi.storage.k8s.io/volumegroupsnapshot/namespace";
pub const GROUP_SNAPSHOT_NAME: &str = "csi.storage.k8s.io/volumegroupsnapshot/name";
/// How long members stay frozen at most when the class says nothing.
pub const DEFAULT_FREEZE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest freeze a class may ask for: I/O on the members is held
/// that long at worst.
pub const MAX_FREEZE_TIMEOUT: Duration = Duration::from_secs(300);

/// Parsed VolumeGroupSnapshotClass parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupParams {
    pub consistency: GroupConsistency,
    pub freeze_timeout: Duration,
    /// What each member snapshot is cut with.
    pub members: SnapshotParams,
    /// The VolumeGroupSnapshot's name, recorded as the display name.
    pub display_name: Option<String>,
}

impl GroupParams {
    pub fn parse(params: &HashMap<String, String>) -> Result<Self, Invalid> {
        let mut out = GroupParams {
            consistency: GroupConsistency::Freeze,
            freeze_timeout: DEFAULT_FREEZE_TIMEOUT,
            members: SnapshotParams::default(),
            display_name: None,
        };
        let mut member = HashMap::new();
        for (k, v) in params {
            match k.as_str() {
                "consistency" => out.consistency = consistency(v)?,
                "groupFreezeTimeout" => out.freeze_timeout = freeze_timeout(v)?,
                "snapshotSize"
                | "requireDetached"
                | "autoextendThreshold"
                | "autoextendPercent" => {
                    member.insert(k.clone(), v.clone());
                }
                GROUP_SNAPSHOT_NAME => {
                    out.display_name = Some(v.trim().chars().take(255).collect())
                }
                k if k.starts_with(K8S_PREFIX) => {}
                k => {
                    return Err(Invalid(format!(
                        "unknown VolumeGroupSnapshotClass parameter {k:?} (known: consistency, groupFreezeTimeout, snapshotSize, requireDetached, autoextendThreshold, autoextendPercent)"
                    )));
                }
            }
        }
        out.members = SnapshotParams::parse(&member)?;
        Ok(out)
    }
}

fn consistency(v: &str) -> Result<GroupConsistency, Invalid> {
    match v {
        "freeze" => Ok(GroupConsistency::Freeze),
        "none" => Ok(GroupConsistency::None),
        other => Err(Invalid(format!(
            "consistency {other:?} is not supported: freeze (one point in time, the default) or none (members cut back to back)"
        ))),
    }
}

fn freeze_timeout(v: &str) -> Result<Duration, Invalid> {
    let d =
        crate::quota::parse_duration(v).map_err(|e| Invalid(format!("groupFreezeTimeout: {e}")))?;
    if d.is_zero() || d > MAX_FREEZE_TIMEOUT {
        return Err(Invalid(format!(
            "groupFreezeTimeout={v:?}: between 1s and {}s",
            MAX_FREEZE_TIMEOUT.as_secs()
        )));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::params::SnapshotSize;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_every_key() {
        let d = GroupParams::parse(&HashMap::new()).unwrap();
        assert_eq!(d.consistency, GroupConsistency::Freeze);
        assert_eq!(d.freeze_timeout, Duration::from_secs(10));
        let p = GroupParams::parse(&map(&[
            ("consistency", "none"),
            ("groupFreezeTimeout", "2m"),
            ("snapshotSize", "50%"),
            ("requireDetached", "true"),
            ("autoextendThreshold", "70"),
            ("autoextendPercent", "50"),
            (GROUP_SNAPSHOT_NAME, " db-backup "),
            (GROUP_SNAPSHOT_NAMESPACE, "team-a"),
        ]))
        .unwrap();
        assert_eq!(p.consistency, GroupConsistency::None);
        assert_eq!(p.freeze_timeout, Duration::from_secs(120));
        assert_eq!(p.members.size, SnapshotSize::Percent(50));
        assert!(p.members.require_detached);
        assert_eq!(
            (p.members.autoextend.threshold, p.members.autoextend.percent),
            (70, 50)
        );
        assert_eq!(p.display_name.as_deref(), Some("db-backup"));
    }

    #[test]
    fn bad_values_are_refused_with_the_known_keys() {
        for (k, v, says) in [
            ("consistency", "crash", "freeze"),
            ("groupFreezeTimeout", "0s", "between"),
            ("groupFreezeTimeout", "1h", "between"),
            ("groupFreezeTimeout", "soon", "duration"),
            ("snapshotSize", "0%", "snapshotSize"),
            ("autoextendThreshold", "100", "autoextendThreshold"),
            ("color", "red", "known: consistency"),
        ] {
            let e = GroupParams::parse(&map(&[(k, v)])).unwrap_err();
            assert!(e.0.contains(says), "{k}={v}: {e}");
        }
    }
}
