//! Device classes: the `--device-class` syntax and its allowlist, the
//! options' argv, and a class's capacity from the node's view of its VG
//! (thick: free less the reserve, per copy; thin: pool × ratio less the
//! virtual size allocated, at most the pool's free data less the reserve ×
//! the ratio) — kept current by lvsnap's own creates without a report.
use uuid::Uuid;

use super::argv::{VG, config, setup};
use crate::lvm::class::check_classes;
use crate::lvm::{DeviceClass, LvName, LvOptions};

const MIB: u64 = 1 << 20;

fn parse(spec: &str) -> DeviceClass {
    DeviceClass::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

#[test]
fn the_syntax_and_its_allowlist() {
    let c =
        parse("name=fast,vg=vg-nvme,thinPool=pool0,overprovisionRatio=4,spareGb=1,default=true");
    assert_eq!((c.name.as_str(), c.vg.as_str()), ("fast", "vg-nvme"));
    assert_eq!(c.thin_pool.as_ref().map(|p| p.as_str()), Some("pool0"));
    assert_eq!(
        (c.overprovision_ratio, c.spare_bytes, c.default),
        (4.0, 1 << 30, true)
    );
    let thin = parse("name=t,vg=vg0,thinPool=p");
    assert_eq!(
        thin.overprovision_ratio, 20.0,
        "Cinder's max_over_subscription_ratio"
    );
    let implicit = DeviceClass::implicit("vg0", Some(LvName::new("p").unwrap()));
    assert_eq!(
        (implicit.name.as_str(), implicit.overprovision_ratio),
        ("vg0", 20.0)
    );
    let striped = parse("name=s,vg=vg0,stripes=2,stripeSize=64Ki");
    assert_eq!(
        striped.options.argv(),
        ["--stripes", "2", "--stripesize", "64k"]
    );
    let raid = parse("name=m,vg=vg0,type=raid1");
    assert_eq!(raid.options.argv(), ["--type", "raid1", "--mirrors", "1"]);
    assert_eq!(raid.options.copies(), 2);
    for bad in [
        "name=a,vg=vg0,color=red",
        "name=a,vg=vg0,type=raid5",
        "name=a,vg=vg0,type=thin",
        "name=a,vg=vg0,mirrors=1",
        "name=a,vg=vg0,type=raid1,stripes=2",
        "name=a,vg=vg0,stripes=1",
        "name=a,vg=vg0,stripes=2,stripeSize=3k",
        "name=a,vg=vg0,stripeSize=64k",
        "name=a,vg=vg0,thinPool=p,type=raid1",
        "name=a,vg=vg0,overprovisionRatio=4",
        "name=a,vg=vg0,thinPool=p,overprovisionRatio=0.5",
        "name=a,vg=vg0,spareGb=-1",
        "name=a,vg=vg0,default=yes",
        "name=a;b,vg=vg0",
        "name=a,vg=bad vg",
        "name=a,vg=vg0,thinPool=../x",
        "name=a,vg=vg0,--force",
        "vg=vg0",
        "name=a",
    ] {
        assert!(DeviceClass::parse(bad).is_err(), "{bad} must be refused");
    }
    let two = |a: &str, b: &str| check_classes(vec![parse(a), parse(b)]);
    assert!(two("name=a,vg=vg0", "name=a,vg=vg1").is_err(), "duplicate");
    assert!(two("name=a,vg=vg0", "name=b,vg=vg1").is_err(), "no default");
    assert!(two("name=a,vg=vg0,default=true", "name=b,vg=vg1,default=true").is_err());
    assert!(two("name=a,vg=vg0,default=true", "name=b,vg=vg1").is_ok());
    let one = check_classes(vec![parse("name=a,vg=vg0")]).unwrap();
    assert!(one[0].default, "a single class is the default");
}

#[tokio::test]
async fn capacity_follows_own_creates_without_a_report() {
    let (fake, lvm) = setup(config());
    let pool = LvName::new("pool").unwrap();
    lvm.create_thin_pool(VG, &pool, 256 * MIB).await.unwrap();
    let thin = parse(&format!(
        "name=fast,vg={VG},thinPool=pool,overprovisionRatio=2.5,spareGb=0"
    ));
    let cap = lvm.class_capacity(&thin, true).await.unwrap();
    assert_eq!(cap.available_bytes, 640 * MIB, "256 MiB × 2.5");
    let vol = LvName::volume(Uuid::new_v4());
    lvm.create_thin(VG, &pool, &vol, 400 * MIB, &[])
        .await
        .unwrap();
    let snap = LvName::snapshot(Uuid::new_v4());
    lvm.lvcreate_snapshot(VG, &vol, &snap, None, &[])
        .await
        .unwrap();
    fake.clear_calls();
    let cap = lvm.class_capacity(&thin, false).await.unwrap();
    assert!(
        fake.calls().is_empty(),
        "the view answered: {:?}",
        fake.programs()
    );
    let pool_use = cap.pool.clone().unwrap();
    assert_eq!(
        pool_use.virtual_bytes,
        800 * MIB,
        "the volume and its thin snapshot"
    );
    assert_eq!(cap.available_bytes, 0, "640 - 800: none left");

    // Thick with a reserve and two copies: (free - spare) / 2.
    let raid = DeviceClass {
        spare_bytes: 100 * MIB,
        options: LvOptions {
            raid1_mirrors: Some(1),
            ..LvOptions::default()
        },
        ..parse(&format!("name=m,vg={VG}"))
    };
    let cap = lvm.class_capacity(&raid, false).await.unwrap();
    let halves = cap.vg_free_bytes / 2 / (4 * MIB) * (4 * MIB);
    let by_pv = halves - 4 * MIB; // each copy on one of the fake's two PVs
    assert_eq!(
        cap.available_bytes,
        ((cap.vg_free_bytes - 100 * MIB) / 2).min(by_pv)
    );
    // A missing pool is an error, not a class with room.
    let gone = parse(&format!("name=g,vg={VG},thinPool=nopool"));
    assert!(lvm.class_capacity(&gone, false).await.is_err());
}
