//! The exact argv of every operation, the prefix, the environment and the
//! timeout each command gets.
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::lvm::{FakeRunner, LV_FIELDS, LvName, LvTag, Lvm, LvmConfig, VG_FIELDS};

const MIB: u64 = 1 << 20;
pub(super) const VG: &str = "vg0";

pub(super) fn config() -> LvmConfig {
    LvmConfig {
        retry_delays: vec![Duration::ZERO, Duration::ZERO],
        ..LvmConfig::default()
    }
}

pub(super) fn setup(config: LvmConfig) -> (Arc<FakeRunner>, Lvm) {
    let fake = Arc::new(FakeRunner::with_vg(VG, 1024 * MIB));
    let lvm = Lvm::new(fake.clone(), config);
    (fake, lvm)
}

fn v(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

fn report(program: &str, fields: &str) -> Vec<String> {
    v(&[
        program,
        "--reportformat",
        "json",
        "--units",
        "b",
        "--nosuffix",
        "-o",
        fields,
        VG,
    ])
}

fn lvs() -> Vec<String> {
    report("lvs", LV_FIELDS)
}

fn vgs() -> Vec<String> {
    report("vgs", VG_FIELDS)
}

fn argvs(fake: &FakeRunner) -> Vec<Vec<String>> {
    let calls = fake.calls();
    fake.clear_calls();
    calls.into_iter().map(|c| c.argv).collect()
}

/// The exact commands of each operation, in order: what the node runs per
/// create and delete (docs/performance.md counts them from here).
#[tokio::test]
async fn every_operation_builds_the_expected_argv() {
    let (fake, lvm) = setup(config());
    let (vol, snap) = (
        LvName::new("volume-a").unwrap(),
        LvName::snapshot(Uuid::nil()),
    );
    let snap_path = format!("vg0/{snap}");
    let tag = LvTag::record(Uuid::nil());
    let t = tag.as_str();

    lvm.vg(VG).await.unwrap();
    assert_eq!(argvs(&fake), [vgs()]);

    // An empty VG's report has no row to carry the VG's figures.
    lvm.lvs(VG).await.unwrap();
    assert_eq!(argvs(&fake), [lvs(), vgs()]);

    // 10 MiB + 1 byte rounds up to three 4 MiB extents. The view (the
    // report just made) lets it proceed: lvcreate alone, not read back.
    lvm.create_linear(VG, &vol, 10 * MIB + 1, std::slice::from_ref(&tag))
        .await
        .unwrap();
    let create = v(&[
        "lvcreate",
        "--yes",
        "--name",
        "volume-a",
        "--size",
        "12582912b",
        "--addtag",
        t,
        VG,
    ]);
    assert_eq!(argvs(&fake), [create]);

    let snapshot = v(&[
        "lvcreate",
        "--yes",
        "--name",
        snap.as_str(),
        "--snapshot",
        "--size",
        "12582912b",
        "--addtag",
        t,
        "vg0/volume-a",
    ]);
    lvm.lvcreate_snapshot(VG, &vol, &snap, None, std::slice::from_ref(&tag))
        .await
        .unwrap();
    assert_eq!(
        argvs(&fake),
        std::slice::from_ref(&snapshot),
        "one command per snapshot"
    );

    // A snapshot lvsnap cut goes without a report: one command per delete.
    assert!(lvm.remove(VG, &snap).await.unwrap());
    let remove = v(&["lvremove", "-f", &snap_path]);
    assert_eq!(argvs(&fake), std::slice::from_ref(&remove));

    // Without a view (another process, a restart): one report first.
    let (fake, lvm) = setup(config());
    lvm.create_linear(VG, &vol, 10 * MIB + 1, std::slice::from_ref(&tag))
        .await
        .unwrap();
    let fresh = Lvm::new(fake.clone(), super::argv::config());
    argvs(&fake);
    fresh
        .lvcreate_snapshot(VG, &vol, &snap, None, std::slice::from_ref(&tag))
        .await
        .unwrap();
    assert_eq!(argvs(&fake), [lvs(), snapshot]);
    let fresh = Lvm::new(fake.clone(), super::argv::config());
    assert!(fresh.remove(VG, &snap).await.unwrap());
    assert_eq!(argvs(&fake), [remove], "no report to remove a snapshot");

    let small = LvName::snapshot(Uuid::from_u128(1));
    lvm.lvcreate_snapshot(VG, &vol, &small, Some(MIB), &[])
        .await
        .unwrap();
    let create = v(&[
        "lvcreate",
        "--yes",
        "--name",
        small.as_str(),
        "--snapshot",
        "--size",
        "4194304b",
        "vg0/volume-a",
    ]);
    // `lvm` did not see `fresh` cut and remove the snapshot: its view
    // (free space unchanged) still lets the next create proceed.
    assert_eq!(argvs(&fake), [create]);
    assert!(lvm.remove(VG, &small).await.unwrap());
    argvs(&fake);

    let pool = LvName::new("pool").unwrap();
    lvm.create_thin_pool(VG, &pool, 64 * MIB).await.unwrap();
    let create = v(&[
        "lvcreate",
        "--yes",
        "--type",
        "thin-pool",
        "--name",
        "pool",
        "--size",
        "67108864b",
        VG,
    ]);
    assert_eq!(argvs(&fake), [lvs(), create, lvs()]);

    // The read-back refreshed the view: the thin LV goes at once.
    let thin = LvName::new("volume-t").unwrap();
    lvm.create_thin(VG, &pool, &thin, 8 * MIB, std::slice::from_ref(&tag))
        .await
        .unwrap();
    let create = v(&[
        "lvcreate",
        "--yes",
        "--type",
        "thin",
        "--name",
        "volume-t",
        "--virtualsize",
        "8388608b",
        "--thinpool",
        "pool",
        "--addtag",
        t,
        VG,
    ]);
    assert_eq!(argvs(&fake), [create]);

    let thin_snap = LvName::new("_snapshot-t").unwrap();
    lvm.lvcreate_snapshot(VG, &thin, &thin_snap, None, std::slice::from_ref(&tag))
        .await
        .unwrap();
    let create = v(&[
        "lvcreate",
        "--yes",
        "--name",
        "_snapshot-t",
        "--snapshot",
        "--setactivationskip",
        "n",
        "--addtag",
        t,
        "vg0/volume-t",
    ]);
    assert_eq!(argvs(&fake), [create], "a thin snapshot needs no size");

    lvm.extend(VG, &thin, 9 * MIB).await.unwrap();
    let extend = v(&["lvextend", "--size", "12582912b", "vg0/volume-t"]);
    assert_eq!(argvs(&fake), [lvs(), extend, lvs()]);

    lvm.activate(VG, &thin_snap).await.unwrap();
    let change = v(&[
        "lvchange",
        "--activate",
        "y",
        "--ignoreactivationskip",
        "vg0/_snapshot-t",
    ]);
    assert_eq!(argvs(&fake), [change, lvs()]);

    // A volume may be a thick origin: its dependants are checked first.
    assert!(lvm.remove(VG, &vol).await.unwrap());
    assert_eq!(
        argvs(&fake),
        [lvs(), v(&["lvremove", "-f", "vg0/volume-a"])]
    );
    // The capacity comes from the view: no command.
    let cap = lvm.capacity(VG).await.unwrap();
    assert_eq!(Some(cap.free_bytes), fake.free_bytes(VG));
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn prefix_env_and_timeout_reach_every_command() {
    let config = LvmConfig {
        command_prefix: v(&["nsenter", "--target=1", "--mount", "--"]),
        env: vec![
            ("DM_DISABLE_UDEV".into(), "1".into()),
            ("LC_ALL".into(), "de_DE.UTF-8".into()),
        ],
        timeout: Duration::from_secs(7),
        ..config()
    };
    let (fake, lvm) = setup(config);
    let name = LvName::new("volume-p").unwrap();
    lvm.create_linear(VG, &name, MIB, &[]).await.unwrap();
    lvm.remove(VG, &name).await.unwrap();
    let calls = fake.calls();
    assert_eq!(calls.len(), 5, "lvs vgs lvcreate | lvs lvremove");
    for call in &calls {
        assert_eq!(
            call.argv[..4],
            v(&["nsenter", "--target=1", "--mount", "--"])
        );
        assert!(!call.program().is_empty());
        let env: Vec<(&str, &str)> = call
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            env,
            [
                ("DM_DISABLE_UDEV", "1"),
                ("LC_ALL", "C"),
                ("LVM_SUPPRESS_FD_WARNINGS", "1")
            ],
            "LC_ALL=C always wins; fd warnings quiet by default"
        );
        assert_eq!(call.timeout, Duration::from_secs(7));
    }
    assert_eq!(calls[2].argv[4..7], v(&["lvcreate", "--yes", "--name"]));
}

#[tokio::test]
async fn default_config_is_as_documented() {
    let c = LvmConfig::default();
    assert!(c.command_prefix.is_empty() && c.env.is_empty());
    assert_eq!(c.timeout, Duration::from_secs(120));
    assert_eq!(
        c.retry_delays,
        [Duration::from_secs(1), Duration::from_secs(2)]
    );
    let env = |c: &LvmConfig| -> Vec<String> {
        let env = c.command_env().into_iter();
        env.map(|(k, v)| format!("{k}={v}")).collect()
    };
    assert_eq!(env(&c), ["LC_ALL=C", "LVM_SUPPRESS_FD_WARNINGS=1"]);
    let c = LvmConfig::default().with_env("DM_DISABLE_UDEV", "1");
    assert_eq!(env(&c)[0], "DM_DISABLE_UDEV=1");
    // A configured LVM_SUPPRESS_FD_WARNINGS is kept, not doubled.
    let c = LvmConfig::default().with_env("LVM_SUPPRESS_FD_WARNINGS", "0");
    assert_eq!(env(&c), ["LVM_SUPPRESS_FD_WARNINGS=0", "LC_ALL=C"]);
}

#[tokio::test]
async fn invalid_names_never_reach_the_runner() {
    let (fake, lvm) = setup(config());
    let ok = LvName::new("volume-a").unwrap();
    for vg in ["", "vg 0", "$(reboot)", "-vg", "..", "vg;rm"] {
        let err = lvm.vg(vg).await.unwrap_err();
        assert_eq!(err.kind(), crate::lvm::ErrorKind::InvalidArgument, "{vg:?}");
        assert!(lvm.create_linear(vg, &ok, MIB, &[]).await.is_err());
        assert!(lvm.remove(vg, &ok).await.is_err());
    }
    assert!(
        fake.calls().is_empty(),
        "no command may be built from a bad name"
    );
}
