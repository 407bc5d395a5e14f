//! The fake is only worth what it shares with real LVM: the same scenario
//! runs on `FakeRunner` and on the VM's lvm2, and what `lvs` says afterwards
//! (names, attrs, sizes, origins, pools, tags) and how each refusal is
//! classified must agree. Also checks lvsnap's COW cap against lvm2's own,
//! and the attrs of an open origin and a skip-flagged thin snapshot.
use lvsnap::lvm::{
    ErrorKind, LV_FIELDS, LvInfo, LvName, LvTag, Lvm, device_mapper_path, max_cow_bytes, parse_lvs,
    round_up,
};
use uuid::Uuid;

use super::support::{MIB, lvm, raw, snap, timed, vg, vol};

/// What must agree between the fake and lvm2 for one LV: name, attr,
/// size, origin, origin size, pool, tags, and which of data, snapshot and
/// metadata use are reported (their values depend on the data written).
type Row = (
    String,
    String,
    u64,
    Option<String>,
    Option<u64>,
    Option<String>,
    Vec<String>,
    [bool; 3],
);

fn row(lv: &LvInfo) -> Row {
    (
        lv.name.to_string(),
        lv.attr.raw.clone(),
        lv.size_bytes,
        lv.origin.as_ref().map(ToString::to_string),
        lv.origin_size_bytes,
        lv.pool.as_ref().map(ToString::to_string),
        lv.tags.clone(),
        [
            lv.data_percent.is_some(),
            lv.snap_percent.is_some(),
            lv.metadata_percent.is_some(),
        ],
    )
}

struct Names {
    origin: (LvName, LvTag),
    thick: (LvName, LvTag),
    pool: LvName,
    thin: (LvName, LvTag),
    thin_snap: (LvName, LvTag),
}

impl Names {
    fn all(&self) -> [&LvName; 5] {
        let n = self;
        [&n.origin.0, &n.thick.0, &n.pool, &n.thin.0, &n.thin_snap.0]
    }
}

/// Builds every kind of LV, tries each refusal, and returns the scenario's
/// rows of `lvs` plus the kinds of the refusals.
async fn scenario(lvm: &Lvm, vg: &str, n: &Names) -> (Vec<Row>, Vec<ErrorKind>) {
    let tags = |t: &LvTag| vec![t.clone()];
    let (o, t) = (&n.origin.0, &n.thin.0);
    lvm.create_linear(vg, o, 6 * MIB, &tags(&n.origin.1))
        .await
        .unwrap();
    lvm.lvcreate_snapshot(vg, o, &n.thick.0, None, &tags(&n.thick.1))
        .await
        .unwrap();
    lvm.create_thin_pool(vg, &n.pool, 64 * MIB).await.unwrap();
    lvm.create_thin(vg, &n.pool, t, 16 * MIB, &tags(&n.thin.1))
        .await
        .unwrap();
    lvm.lvcreate_snapshot(vg, t, &n.thin_snap.0, None, &tags(&n.thin_snap.1))
        .await
        .unwrap();
    lvm.extend(vg, t, 17 * MIB).await.unwrap();
    let missing = LvName::volume(Uuid::new_v4());
    let refusals = vec![
        lvm.remove(vg, o).await.unwrap_err().kind(),
        lvm.remove(vg, &n.pool).await.unwrap_err().kind(),
        lvm.create_linear(vg, o, MIB, &[]).await.unwrap_err().kind(),
        lvm.lvcreate_snapshot(vg, &missing, &snap().0, None, &[])
            .await
            .unwrap_err()
            .kind(),
        lvm.create_thin(vg, &missing, &vol().0, MIB, &[])
            .await
            .unwrap_err()
            .kind(),
        lvm.extend(vg, &missing, MIB).await.unwrap_err().kind(),
    ];
    let mut rows: Vec<Row> = lvm
        .lvs(vg)
        .await
        .unwrap()
        .iter()
        .filter(|l| n.all().contains(&&l.name))
        .map(row)
        .collect();
    rows.sort();
    for name in [&n.thin_snap.0, &n.thin.0, &n.pool, &n.thick.0, &n.origin.0] {
        assert!(lvm.remove(vg, name).await.unwrap(), "{name}");
    }
    let left = lvm.lvs(vg).await.unwrap();
    assert!(
        left.iter().all(|l| !n.all().contains(&&l.name)),
        "all removed"
    );
    (rows, refusals)
}

#[tokio::test]
#[ignore = "vm tier: run inside scripts/vm-run"]
async fn fake_and_real_lvm_agree_on_every_kind_of_lv() {
    let names = Names {
        origin: vol(),
        thick: snap(),
        pool: LvName::new(&format!("pool{}", Uuid::new_v4().simple())).unwrap(),
        thin: vol(),
        thin_snap: snap(),
    };
    let real = scenario(&lvm(), vg(), &names).await;
    let (fake_lvm, _) = Lvm::fake(vg(), 1 << 30);
    let fake = scenario(&fake_lvm, vg(), &names).await;
    for r in &real.0 {
        eprintln!("[vm-report] real row: {r:?}");
    }
    assert_eq!(real.0.len(), 5);
    assert_eq!(fake.0, real.0, "lvs rows: fake (left) vs lvm2 (right)");
    let expected = [
        ErrorKind::Busy,
        ErrorKind::Busy,
        ErrorKind::AlreadyExists,
        ErrorKind::NotFound,
        ErrorKind::NotFound,
        ErrorKind::NotFound,
    ];
    assert_eq!(real.1, expected);
    assert_eq!(fake.1, expected);
}

#[tokio::test]
#[ignore = "vm tier: run inside scripts/vm-run"]
async fn oversized_cow_is_capped_as_lvm2_caps_it() {
    let lvm = lvm();
    let (origin, tag) = vol();
    lvm.create_linear(vg(), &origin, 16 * MIB, &[tag])
        .await
        .unwrap();
    let (ours, theirs) = (snap().0, snap().0);
    let s = lvm
        .lvcreate_snapshot(vg(), &origin, &ours, Some(1 << 30), &[])
        .await
        .unwrap();
    let target = format!("{}/{}", vg(), origin);
    let out = raw(&[
        "lvcreate",
        "--yes",
        "--name",
        theirs.as_str(),
        "--snapshot",
        "--size",
        "1g",
        &target,
    ])
    .await;
    assert_eq!(out.exit_code, Some(0), "{out:?}");
    eprintln!(
        "[vm-report] lvm2 on an oversized COW: {}",
        out.stdout.trim()
    );
    let lvm2 = lvm.lv(vg(), &theirs).await.unwrap().unwrap();
    assert_eq!(s.size_bytes, lvm2.size_bytes, "lvsnap's cap vs lvm2's");
    assert_eq!(
        Some(s.size_bytes),
        round_up(max_cow_bytes(16 * MIB), 4 * MIB)
    );
    for name in [&ours, &theirs, &origin] {
        assert!(lvm.remove(vg(), name).await.unwrap());
    }
}

#[tokio::test]
#[ignore = "vm tier: run inside scripts/vm-run"]
async fn open_origin_skip_flag_and_activate_on_real_lvm() {
    let lvm = lvm();
    let (origin, thick) = (vol().0, snap().0);
    lvm.create_linear(vg(), &origin, 8 * MIB, &[])
        .await
        .unwrap();
    lvm.lvcreate_snapshot(vg(), &origin, &thick, None, &[])
        .await
        .unwrap();
    let held = std::fs::File::open(device_mapper_path(vg(), &origin)).unwrap();

    let pool = LvName::new(&format!("pool{}", Uuid::new_v4().simple())).unwrap();
    let (thin, skipped) = (vol().0, snap().0);
    lvm.create_thin_pool(vg(), &pool, 64 * MIB).await.unwrap();
    lvm.create_thin(vg(), &pool, &thin, 8 * MIB, &[])
        .await
        .unwrap();
    // lvm2's default for a thin snapshot: the activation skip flag, inactive.
    let target = format!("{}/{}", vg(), thin);
    let out = raw(&[
        "lvcreate",
        "--yes",
        "--name",
        skipped.as_str(),
        "--snapshot",
        &target,
    ])
    .await;
    assert_eq!(out.exit_code, Some(0), "{out:?}");
    let s = lvm.lv(vg(), &skipped).await.unwrap().unwrap();
    assert_eq!(s.attr.raw, "Vwi---tz-k");
    let s = timed("lvchange activate", lvm.activate(vg(), &skipped))
        .await
        .unwrap();
    assert_eq!(s.attr.raw, "Vwi-a-tz-k", "active, flag kept");

    let out = raw(&[
        "lvs",
        "--reportformat",
        "json",
        "--units",
        "b",
        "--nosuffix",
        "-o",
        LV_FIELDS,
        vg(),
    ])
    .await;
    let lvs = parse_lvs(&out.stdout).unwrap();
    let attr = |n: &LvName| {
        lvs.iter()
            .find(|l| &l.name == n)
            .map(|l| l.attr.raw.clone())
    };
    assert_eq!(attr(&origin).as_deref(), Some("owi-aos---"));
    assert_eq!(attr(&thick).as_deref(), Some("swi-a-s---"));
    assert_eq!(attr(&pool).as_deref(), Some("twi-aotz--"));
    assert_eq!(attr(&thin).as_deref(), Some("Vwi-a-tz--"));
    let mine = [&origin, &thick, &pool, &thin, &skipped];
    for line in out
        .stdout
        .lines()
        .filter(|l| mine.iter().any(|n| l.contains(&format!("\"{n}\""))))
    {
        eprintln!("[vm-report] lvs row: {}", line.trim());
    }
    drop(held);
    for name in [&skipped, &thin, &pool, &thick, &origin] {
        assert!(lvm.remove(vg(), name).await.unwrap(), "{name}");
    }
}
