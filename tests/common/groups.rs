//! Group snapshot helpers for the in-process tests (tests/groups.rs,
//! tests/group_failures.rs).
#![allow(dead_code)]

use std::collections::HashMap;

use lvsnap::controller::{CreateGroupSnapshot, GroupSnapshot};

use super::harness::{Harness, VG};

pub fn request(name: &str, volumes: &[&str], params: &[(&str, &str)]) -> CreateGroupSnapshot {
    CreateGroupSnapshot {
        name: name.into(),
        source_volume_ids: volumes.iter().map(|v| v.to_string()).collect(),
        parameters: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
    }
}

/// CreateVolumeGroupSnapshot, the node's work, CreateVolumeGroupSnapshot again.
pub async fn group(
    h: &Harness,
    name: &str,
    volumes: &[&str],
    params: &[(&str, &str)],
) -> GroupSnapshot {
    let _ = h
        .controller
        .create_group_snapshot(request(name, volumes, params))
        .await;
    h.work_all().await;
    h.controller
        .create_group_snapshot(request(name, volumes, params))
        .await
        .unwrap_or_else(|e| panic!("CreateVolumeGroupSnapshot {name}: {e:?}"))
}

/// The dmsetup and lvcreate calls so far, as `verb target` lines.
pub fn freeze_and_cut_calls(h: &Harness) -> Vec<String> {
    h.fake
        .calls()
        .into_iter()
        .filter_map(|c| match c.program() {
            "dmsetup" => Some(format!(
                "{} {}",
                c.argv[c.argv.len() - 2],
                c.argv[c.argv.len() - 1]
            )),
            "lvcreate" if c.argv.iter().any(|a| a == "--snapshot") => {
                Some(format!("lvcreate {}", c.argv[c.argv.len() - 1]))
            }
            _ => None,
        })
        .collect()
}

pub fn dm(volume: &str) -> String {
    format!("{VG}-volume--{}", volume.replace('-', "--"))
}
