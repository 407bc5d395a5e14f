//! Checks of a StorageClass's or VolumeSnapshotClass's parameters as the
//! Kubernetes sidecars will treat them, then as lvsnap will: the class must
//! pass both, or no PVC or VolumeSnapshot of it is ever provisioned. The
//! sidecars' rules are read from their own code: external-provisioner
//! (`pkg/controller/controller.go`: `removePrefixedParameters` and the
//! fstype count in `prepareProvision`) and external-snapshotter
//! (`pkg/utils/util.go`: `RemovePrefixedParameters`).
use std::collections::HashMap;

use super::group_params::GroupParams;
use super::params::{Invalid, SnapshotParams, VolumeParams};

const PREFIX: &str = "csi.storage.k8s.io/";

/// The `csi.storage.k8s.io/` keys csi-provisioner knows (it strips them
/// before CreateVolume; any other key with the prefix fails provisioning).
const PROVISIONER_KEYS: [&str; 17] = [
    "fstype",
    "secret-name",
    "secret-namespace",
    "provisioner-secret-name",
    "provisioner-secret-namespace",
    "controller-publish-secret-name",
    "controller-publish-secret-namespace",
    "node-stage-secret-name",
    "node-stage-secret-namespace",
    "node-publish-secret-name",
    "node-publish-secret-namespace",
    "controller-expand-secret-name",
    "controller-expand-secret-namespace",
    "node-expand-secret-name",
    "node-expand-secret-namespace",
    "controller-modify-secret-name",
    "controller-modify-secret-namespace",
];

/// The `csi.storage.k8s.io/` keys csi-snapshotter knows (the same list
/// serves VolumeGroupSnapshotClasses).
const SNAPSHOTTER_KEYS: [&str; 8] = [
    "snapshotter-secret-name",
    "snapshotter-secret-namespace",
    "snapshotter-list-secret-name",
    "snapshotter-list-secret-namespace",
    "group-snapshotter-get-secret-name",
    "group-snapshotter-get-secret-namespace",
    "group-snapshotter-secret-name",
    "group-snapshotter-secret-namespace",
];

/// What the sidecar passes on: the parameters without its own prefixed
/// keys, or why it refuses the class.
fn strip(
    params: &HashMap<String, String>,
    known: &[&str],
    sidecar: &str,
) -> Result<HashMap<String, String>, Invalid> {
    let mut out = HashMap::new();
    for (k, v) in params {
        match k.strip_prefix(PREFIX) {
            Some(rest) if known.contains(&rest) => {}
            Some(_) => {
                return Err(Invalid(format!(
                    "{sidecar} refuses the class: found unknown parameter key {k:?} with reserved namespace {PREFIX}"
                )));
            }
            None => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(out)
}

/// A StorageClass's parameters: csi-provisioner's rules, then lvsnap's.
pub fn check_storage_class(params: &HashMap<String, String>) -> Result<(), Invalid> {
    // csi-provisioner counts "fstype" in any case and its prefixed key.
    let fs_keys: Vec<&String> = params
        .keys()
        .filter(|k| k.eq_ignore_ascii_case("fstype") || *k == "csi.storage.k8s.io/fstype")
        .collect();
    if fs_keys.len() > 1 {
        return Err(Invalid(format!(
            "csi-provisioner refuses the class: fstype specified in parameters with both \"fstype\" and \"csi.storage.k8s.io/fstype\" keys ({fs_keys:?}); keep csi.storage.k8s.io/fstype"
        )));
    }
    let passed = strip(params, &PROVISIONER_KEYS, "csi-provisioner")?;
    VolumeParams::parse(&passed).map(|_| ())
}

/// A VolumeSnapshotClass's parameters: csi-snapshotter's rules, then lvsnap's.
pub fn check_snapshot_class(params: &HashMap<String, String>) -> Result<(), Invalid> {
    let passed = strip(params, &SNAPSHOTTER_KEYS, "csi-snapshotter")?;
    SnapshotParams::parse(&passed).map(|_| ())
}

/// A VolumeGroupSnapshotClass's parameters: csi-snapshotter's rules, then lvsnap's.
pub fn check_group_snapshot_class(params: &HashMap<String, String>) -> Result<(), Invalid> {
    let passed = strip(params, &SNAPSHOTTER_KEYS, "csi-snapshotter")?;
    GroupParams::parse(&passed).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_provisioners_rules_come_first() {
        assert!(
            check_storage_class(&map(&[
                ("csi.storage.k8s.io/fstype", "xfs"),
                ("lvType", "thick")
            ]))
            .is_ok()
        );
        let both = check_storage_class(&map(&[
            ("fsType", "ext4"),
            ("csi.storage.k8s.io/fstype", "ext4"),
        ]));
        assert!(both.unwrap_err().0.contains("both"));
        let unknown = check_storage_class(&map(&[("csi.storage.k8s.io/pvc/name", "x")]));
        assert!(unknown.unwrap_err().0.contains("reserved namespace"));
        assert!(check_storage_class(&map(&[("color", "red")])).is_err());
        assert!(check_snapshot_class(&map(&[("snapshotSize", "50%")])).is_ok());
        assert!(check_snapshot_class(&map(&[("csi.storage.k8s.io/fstype", "x")])).is_err());
        assert!(
            check_group_snapshot_class(&map(&[
                ("consistency", "none"),
                ("groupFreezeTimeout", "30s")
            ]))
            .is_ok()
        );
        assert!(check_group_snapshot_class(&map(&[("consistency", "some")])).is_err());
        // A group class is not a snapshot class: its keys are its own.
        assert!(check_snapshot_class(&map(&[("consistency", "none")])).is_err());
    }
}
