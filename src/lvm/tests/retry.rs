//! Classification of failures and the retry rule: 3 attempts, 1 s then 2 s
//! (on tokio's paused clock, so no test waits), never for "not found",
//! "already exists" or "insufficient space".
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::argv::{VG, config, setup};
use crate::lvm::{CommandOutput, ErrorKind, LvName, LvTag, LvmConfig, classify};

const MIB: u64 = 1 << 20;

fn name() -> LvName {
    LvName::new("volume-r").unwrap()
}

#[test]
fn stderr_is_classified() {
    let cases = [
        (
            "  Logical Volume \"v\" already exists in volume group \"vg0\"",
            ErrorKind::AlreadyExists,
        ),
        (
            "  Volume group \"vg0\" has insufficient free space (3 extents): 256 required.",
            ErrorKind::InsufficientSpace,
        ),
        (
            "  Insufficient free space: 256 extents needed, but only 3 available",
            ErrorKind::InsufficientSpace,
        ),
        (
            "  Insufficient suitable allocatable extents for logical volume v: 9 more required",
            ErrorKind::InsufficientSpace,
        ),
        (
            "  Volume group \"nope\" not found\n  Cannot process volume group nope",
            ErrorKind::NotFound,
        ),
        (
            "  Failed to find logical volume \"vg0/v\"",
            ErrorKind::NotFound,
        ),
        ("  Logical volume vg0/v in use.", ErrorKind::Busy),
        (
            "  Logical volume vg0/v contains a filesystem in use.",
            ErrorKind::Busy,
        ),
        ("  Can't remove open logical volume \"v\"", ErrorKind::Busy),
        (
            "  device-mapper: remove ioctl on  (253:3) failed: Device or resource busy",
            ErrorKind::Busy,
        ),
        (
            "  Giving up waiting for lock.\n  Can't get lock for vg0",
            ErrorKind::Other,
        ),
        (
            "  WARNING: Device /dev/loop9 not found.\n  Internal error: x",
            ErrorKind::Other,
        ),
        (
            "device-mapper: resume ioctl on vg0-x  failed: No such device or address\nCommand failed.",
            ErrorKind::NotFound,
        ),
        (
            "  Maximum number of logical volumes (3) reached in volume group vg0",
            ErrorKind::InsufficientSpace,
        ),
        ("", ErrorKind::Other),
    ];
    for (stderr, kind) in cases {
        assert_eq!(classify(stderr), kind, "{stderr:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_after_1s_then_2s() {
    let (fake, lvm) = setup(LvmConfig::default());
    fake.respond_next(
        "lvcreate",
        2,
        CommandOutput::failed(5, "  Giving up waiting for lock."),
    );
    let started = Instant::now();
    let lv = lvm.create_linear(VG, &name(), MIB, &[]).await.unwrap();
    assert_eq!(lv.size_bytes, 4 * MIB);
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(fake.argvs_of("lvcreate").len(), 3);
}

#[tokio::test(start_paused = true)]
async fn three_failures_give_a_typed_error_with_the_command() {
    let (fake, lvm) = setup(LvmConfig::default());
    fake.respond_next(
        "lvcreate",
        3,
        CommandOutput::failed(5, "  Giving up waiting for lock.\n"),
    );
    let started = Instant::now();
    let err = lvm.create_linear(VG, &name(), MIB, &[]).await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(fake.argvs_of("lvcreate").len(), 3);
    assert_eq!(err.kind(), ErrorKind::Other);
    let failure = err.failure().expect("carries the command");
    assert_eq!(failure.exit_code, Some(5));
    assert_eq!(failure.stderr, "Giving up waiting for lock.");
    assert_eq!(failure.argv[0], "lvcreate");
    let msg = err.to_string();
    assert!(
        msg.contains("lvcreate --yes --name volume-r") && msg.contains("exited with code 5"),
        "{msg}"
    );
    assert!(fake.lv_names(VG).is_empty());
}

#[tokio::test(start_paused = true)]
async fn permanent_failures_are_not_retried() {
    let cases = [
        (
            "  Failed to find logical volume \"vg0/x\"",
            ErrorKind::NotFound,
        ),
        (
            "  Logical Volume \"volume-r\" already exists in volume group \"vg0\"",
            ErrorKind::AlreadyExists,
        ),
        (
            "  Volume group \"vg0\" has insufficient free space (0 extents): 1 required.",
            ErrorKind::InsufficientSpace,
        ),
    ];
    for (stderr, kind) in cases {
        let (fake, lvm) = setup(LvmConfig::default());
        fake.respond_next("lvcreate", 1, CommandOutput::failed(5, stderr));
        let started = Instant::now();
        let err = lvm.create_linear(VG, &name(), MIB, &[]).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{stderr}");
        assert_eq!(started.elapsed(), Duration::ZERO, "{stderr}");
        assert_eq!(fake.argvs_of("lvcreate").len(), 1, "{stderr}");
    }
}

#[tokio::test(start_paused = true)]
async fn snapshot_of_a_missing_origin_is_not_found_without_lvcreate() {
    let (fake, lvm) = setup(LvmConfig::default());
    let origin = LvName::volume(Uuid::new_v4());
    let err = lvm
        .lvcreate_snapshot(VG, &origin, &LvName::snapshot(Uuid::new_v4()), None, &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains(origin.as_str()));
    // An empty VG: the report's vgs is its only source of the VG's figures.
    assert_eq!(fake.programs(), ["lvs", "vgs"]);
}

#[tokio::test(start_paused = true)]
async fn busy_remove_is_retried_then_reported() {
    let (fake, lvm) = setup(LvmConfig::default());
    lvm.create_linear(VG, &name(), MIB, &[]).await.unwrap();
    fake.respond_next(
        "lvremove",
        3,
        CommandOutput::failed(5, "  Logical volume vg0/volume-r in use."),
    );
    let err = lvm.remove(VG, &name()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy);
    assert_eq!(fake.argvs_of("lvremove").len(), 3);
    assert_eq!(fake.lv_names(VG), ["volume-r"]);
}

#[tokio::test(start_paused = true)]
async fn a_hung_command_times_out_and_is_retried() {
    let config = LvmConfig {
        timeout: Duration::from_secs(10),
        ..LvmConfig::default()
    };
    let (fake, lvm) = setup(config);
    fake.hang_next("vgs", 1);
    let started = Instant::now();
    let vg = lvm.vg(VG).await.unwrap();
    assert_eq!(vg.name, VG);
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(11),
        "10 s timeout + 1 s back-off"
    );
    assert_eq!(fake.programs(), ["vgs", "vgs"]);

    fake.hang_next("vgs", 3);
    let err = lvm.vg(VG).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other);
    let failure = err.failure().unwrap();
    assert_eq!(failure.exit_code, None);
    assert!(
        failure.stderr.contains("timed out after 10s"),
        "{}",
        failure.stderr
    );
}

#[tokio::test(start_paused = true)]
async fn lvcreate_that_lost_a_race_returns_the_lv_carrying_our_tag() {
    // The first look-up sees no LV (as if an earlier attempt's lvcreate were
    // still finishing); lvcreate then says "already exists"; the tag decides.
    let (fake, lvm) = setup(config());
    let tag = LvTag::record(Uuid::new_v4());
    lvm.create_linear(VG, &name(), MIB, std::slice::from_ref(&tag))
        .await
        .unwrap();
    fake.respond_next("lvs", 1, CommandOutput::ok(r#"{"report":[{"lv":[]}]}"#));
    fake.clear_calls();
    let lv = lvm
        .create_linear(VG, &name(), MIB, std::slice::from_ref(&tag))
        .await
        .unwrap();
    assert!(lv.existed, "{lv:?}");
    // The view knew the LV: a fresh report, which (scripted) showed none,
    // so no VG figures either (vgs); lvcreate; the report that finds it.
    assert_eq!(fake.programs(), ["lvs", "vgs", "lvcreate", "lvs"]);

    // Same race, but the LV is someone else's: AlreadyExists stands.
    fake.respond_next("lvs", 1, CommandOutput::ok(r#"{"report":[{"lv":[]}]}"#));
    let other = LvTag::record(Uuid::new_v4());
    let err = lvm
        .create_linear(VG, &name(), MIB, &[other])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(err.failure().is_some(), "the lvcreate failure is kept");
}

#[tokio::test(start_paused = true)]
async fn no_retry_delays_means_one_attempt() {
    let config = LvmConfig {
        retry_delays: vec![],
        ..LvmConfig::default()
    };
    let (fake, lvm) = setup(config);
    fake.respond_next(
        "vgs",
        1,
        CommandOutput::failed(5, "  Giving up waiting for lock."),
    );
    assert_eq!(lvm.vg(VG).await.unwrap_err().kind(), ErrorKind::Other);
    assert_eq!(fake.programs(), ["vgs"]);
}
