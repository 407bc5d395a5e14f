//! The fake is only worth what it shares with real LVM: the same scenario
//! runs on `FakeRunner` and on the VM's lvm2, and what `lvs` says afterwards
//! (names, attrs, sizes, origins, pools, tags) and how each refusal is
//! classified must agree. Also checks lvsnap's COW cap against lvm2's own.
use lvsnap::lvm::{ErrorKind, LvInfo, LvName, LvTag, Lvm, max_cow_bytes, round_up};
use uuid::Uuid;

use super::support::{MIB, lvm, raw, snap, vg, vol};

/// What must agree between the fake and lvm2 for one LV.
type Row = (
    String,
    String,
    u64,
    Option<String>,
    Option<String>,
    Vec<String>,
);

fn row(lv: &LvInfo) -> Row {
    (
        lv.name.to_string(),
        lv.attr.raw.clone(),
        lv.size_bytes,
        lv.origin.as_ref().map(ToString::to_string),
        lv.pool.as_ref().map(ToString::to_string),
        lv.tags.clone(),
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
    lvm.create_snapshot(vg, o, &n.thick.0, None, &tags(&n.thick.1))
        .await
        .unwrap();
    lvm.create_thin_pool(vg, &n.pool, 64 * MIB).await.unwrap();
    lvm.create_thin(vg, &n.pool, t, 16 * MIB, &tags(&n.thin.1))
        .await
        .unwrap();
    lvm.create_snapshot(vg, t, &n.thin_snap.0, None, &tags(&n.thin_snap.1))
        .await
        .unwrap();
    lvm.extend(vg, t, 17 * MIB).await.unwrap();
    let missing = LvName::volume(Uuid::new_v4());
    let refusals = vec![
        lvm.remove(vg, o).await.unwrap_err().kind(),
        lvm.remove(vg, &n.pool).await.unwrap_err().kind(),
        lvm.create_linear(vg, o, MIB, &[]).await.unwrap_err().kind(),
        lvm.create_snapshot(vg, &missing, &snap().0, None, &[])
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
        .create_snapshot(vg(), &origin, &ours, Some(1 << 30), &[])
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
