//! Device class fixtures for the in-process tests (tests/device_classes.rs,
//! tests/group_classes.rs): a harness whose node serves several classes
//! over vg0 and a second VG with a thin pool.
#![allow(dead_code)]

use std::collections::HashMap;

use lvsnap::controller::CreateVolume;
use lvsnap::lvm::{DeviceClass, LvName};
use lvsnap::node::NodeSettings;

use super::harness::{GIB, Harness, NODE};

/// The second VG of the class fixtures.
pub const NVME: &str = "vg-nvme";

pub fn class(spec: &str) -> DeviceClass {
    DeviceClass::parse(spec).expect("class")
}

/// n1 serving `classes`, over vg0 of `vg0_bytes` and [`NVME`] of
/// `nvme_bytes` holding a 1 GiB thin pool named `pool`; capacity reported.
pub async fn harness(classes: &[String], vg0_bytes: u64, nvme_bytes: u64) -> Harness {
    let classes = classes.iter().map(|c| class(c)).collect();
    let settings = NodeSettings::with_classes(NODE, classes);
    let h = Harness::with(vg0_bytes, settings, Harness::config()).await;
    h.fake.add_vg(NVME, nvme_bytes, 4 << 20);
    let pool = LvName::new("pool").expect("name");
    h.lvm
        .create_thin_pool(NVME, &pool, GIB as u64)
        .await
        .expect("pool");
    h.executor.report_capacity().await;
    h
}

/// CreateVolume of `bytes` in device class `class`.
pub fn in_class(name: &str, bytes: i64, class: &str) -> CreateVolume {
    let mut req = Harness::volume_request(name, bytes);
    req.parameters = HashMap::from([("deviceClass".into(), class.into())]);
    req
}
