//! The parameter and name rules of `params.rs`, case by case.
use super::*;

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn names() {
    assert!(check_name("name", "snapshot-1234").is_ok());
    assert!(check_name("name", &"x".repeat(128)).is_ok());
    assert!(check_name("name", "tab\tand\nnewline\rok").is_ok());
    for bad in [
        String::new(),
        "x".repeat(129),
        "a\u{0}b".into(),
        "a\u{7}".into(),
        "\u{0b}".into(),
        "\u{1b}[0m".into(),
        "\u{7f}".into(),
        "\u{85}".into(),
        "\u{9f}".into(),
    ] {
        assert!(check_name("name", &bad).is_err(), "{bad:?}");
    }
    // Multi-byte characters count in bytes.
    assert!(check_name("name", &"é".repeat(65)).is_err());
}

#[test]
fn maps() {
    assert!(check_map("parameters", &map(&[("a", &"b".repeat(4095))])).is_ok());
    assert!(check_map("parameters", &map(&[("a", &"b".repeat(4096))])).is_err());
}

#[test]
fn volume_params() {
    let p = VolumeParams::parse(&map(&[
        ("type", "fast"),
        ("fsType", "xfs"),
        (PVC_NAME, "x"),
    ]))
    .unwrap();
    assert_eq!(p.volume_type.as_deref(), Some("fast"));
    assert_eq!(p.fs_type.as_deref(), Some("xfs"));
    let fast = VolumeParams::parse(&map(&[("deviceClass", "fast")])).unwrap();
    assert_eq!(fast.device_class.as_deref(), Some("fast"));
    assert!(VolumeParams::parse(&map(&[("deviceClass", "fast"), ("vg", "vg0")])).is_err());
    assert!(VolumeParams::parse(&map(&[("deviceClass", "a/b")])).is_err());
    let thick = VolumeParams::parse(&map(&[("lvType", "thick")])).unwrap();
    assert_eq!(thick.lv_type, Some(LvType::Thick));
    assert!(VolumeParams::parse(&map(&[("lvType", "thick"), ("thinPool", "p")])).is_err());
    for bad in [
        ("color", "red"),
        ("lvType", "fat"),
        ("fsType", "ntfs"),
        ("type", "a b"),
        ("vg", " "),
    ] {
        assert!(VolumeParams::parse(&map(&[bad])).is_err(), "{bad:?}");
    }
}

#[test]
fn snapshot_params() {
    let p = SnapshotParams::parse(&map(&[
        ("snapshotSize", "50%"),
        ("requireDetached", "true"),
        (SNAPSHOT_NAME, "  daily  "),
    ]))
    .unwrap();
    assert_eq!(p.size, SnapshotSize::Percent(50));
    assert!(p.require_detached);
    assert_eq!(p.display_name.as_deref(), Some("daily"));
    assert_eq!(p.autoextend, crate::records::Autoextend::default());
    let off = SnapshotParams::parse(&map(&[
        ("autoextendThreshold", "0"),
        ("autoextendPercent", "50"),
    ]))
    .unwrap();
    assert!(!off.autoextend.enabled());
    assert_eq!(off.autoextend.percent, 50);
    assert_eq!(
        SnapshotParams::parse(&map(&[("snapshotSize", "1Gi")]))
            .unwrap()
            .size,
        SnapshotSize::Bytes(1 << 30)
    );
    assert_eq!(
        SnapshotParams::parse(&map(&[("snapshotSize", "100%")]))
            .unwrap()
            .size,
        SnapshotSize::Full
    );
    for bad in [
        ("snapshotSize", "0%"),
        ("snapshotSize", "101%"),
        ("snapshotSize", "-1"),
        ("snapshotSize", "0"),
        ("snapshotSize", "lots"),
        ("requireDetached", "yes"),
        ("force", "true"),
        ("autoextendThreshold", "100"),
        ("autoextendThreshold", "-1"),
        ("autoextendPercent", "0"),
        ("autoextendPercent", "101"),
        ("autoextendPercent", "x"),
    ] {
        assert!(SnapshotParams::parse(&map(&[bad])).is_err(), "{bad:?}");
    }
}

#[test]
fn projects() {
    let p = map(&[(SNAPSHOT_NAMESPACE, "team-a")]);
    assert_eq!(
        project(&p, SNAPSHOT_NAMESPACE, "default").unwrap(),
        "team-a"
    );
    assert_eq!(
        project(&map(&[]), SNAPSHOT_NAMESPACE, "default").unwrap(),
        "default"
    );
    assert!(
        project(
            &map(&[(SNAPSHOT_NAMESPACE, "Team A")]),
            SNAPSHOT_NAMESPACE,
            "d"
        )
        .is_err()
    );
}
