//! Names and tags: lvm2's rules, Cinder's escaping, device-mapper paths.
use uuid::Uuid;

use crate::lvm::{LvName, LvRole, LvTag, device_mapper_path, validate_vg_name};

const ID: &str = "0b5ad6e4-5c0f-4f0e-9a53-52e6b0b0c7a1";

fn id() -> Uuid {
    Uuid::parse_str(ID).unwrap()
}

#[test]
fn cinder_names_for_volumes_and_snapshots() {
    assert_eq!(LvName::volume(id()).as_str(), format!("volume-{ID}"));
    assert_eq!(LvName::snapshot(id()).as_str(), format!("_snapshot-{ID}"));
    assert_eq!(LvName::volume(id()).role(), Some(LvRole::Volume(id())));
    assert_eq!(LvName::snapshot(id()).role(), Some(LvRole::Snapshot(id())));
    assert_eq!(LvName::new("data").unwrap().role(), None);
    assert_eq!(LvName::new("volume-not-a-uuid").unwrap().role(), None);
    // Only the canonical lower-case form lvsnap writes counts as a record id.
    let upper = format!("volume-{}", ID.to_uppercase());
    assert_eq!(LvName::new(&upper).unwrap().role(), None);
}

#[test]
fn escape_prepends_underscore_to_snapshot_names_and_unescape_removes_it() {
    let cases = [
        ("snapshot-1", "_snapshot-1"),
        ("snapshot", "_snapshot"),
        ("snapshots_of_x", "_snapshots_of_x"),
        ("volume-1", "volume-1"),
        ("my_snapshot", "my_snapshot"),
        ("_snapshot-1", "_snapshot-1"),
    ];
    for (raw, escaped) in cases {
        let name = LvName::escape(raw).unwrap();
        assert_eq!(name.as_str(), escaped, "escape({raw:?})");
    }
    // Back: only a leading `_` before `snapshot` is Cinder's escape.
    assert_eq!(
        LvName::escape("snapshot-1").unwrap().unescape(),
        "snapshot-1"
    );
    assert_eq!(LvName::snapshot(id()).unescape(), format!("snapshot-{ID}"));
    assert_eq!(LvName::new("volume-1").unwrap().unescape(), "volume-1");
    assert_eq!(LvName::new("_data").unwrap().unescape(), "_data");
    assert_eq!(LvName::new("_snap").unwrap().unescape(), "_snap");
}

#[test]
fn escape_still_validates() {
    assert!(LvName::escape("snapshot;rm").is_err());
    assert!(LvName::escape(&format!("snapshot{}", "x".repeat(119))).is_err());
    assert!(LvName::escape(&format!("snapshot{}", "x".repeat(118))).is_ok());
    assert!(LvName::escape("pvmove0").is_err());
}

#[test]
fn invalid_lv_names_are_rejected() {
    let long = "a".repeat(128);
    let bad: &[(&str, &str)] = &[
        ("", "empty"),
        (".", "dot"),
        ("..", "dot-dot"),
        ("-lv", "leading hyphen"),
        ("snapshot-1", "reserved prefix snapshot"),
        ("snapshot", "reserved prefix snapshot, whole"),
        ("pvmove0", "reserved prefix pvmove"),
        ("data_mlog", "_mlog suffix"),
        ("pool_tdata", "_tdata suffix"),
        ("pool_tmeta", "_tmeta suffix"),
        ("x_cdata", "_cdata"),
        ("x_cmeta", "_cmeta"),
        ("x_corig", "_corig"),
        ("x_rimage_0", "_rimage anywhere"),
        ("x_rmeta_1", "_rmeta"),
        ("x_mimage_0", "_mimage"),
        ("lvol0_pmspare", "_pmspare"),
        ("x_vorigin", "_vorigin"),
        ("x_vdata", "_vdata"),
        ("x_cpool", "_cpool"),
        ("x_cvol", "_cvol"),
        ("x_wcorig", "_wcorig"),
        ("x_imeta", "_imeta"),
        ("x_iorig", "_iorig"),
        ("my volume", "space"),
        ("a;b", "semicolon"),
        ("$(reboot)", "command substitution"),
        ("`id`", "backticks"),
        ("a/b", "slash"),
        ("a\nb", "newline"),
        ("a\0b", "NUL"),
        ("vol|cat", "pipe"),
        ("ünïcode", "non-ASCII"),
        ("volume-é", "non-ASCII at the end"),
        (&long, "128 characters"),
    ];
    assert!(bad.len() >= 15);
    for (name, why) in bad {
        let err = LvName::new(name).expect_err(why);
        assert_eq!(err.value, *name, "{why}");
        assert_eq!(err.what, "logical volume name");
    }
}

#[test]
fn valid_lv_names_are_accepted() {
    let longest = "a".repeat(127);
    for name in [
        "a",
        "volume-1",
        "_snapshot-1",
        "A.b+c_d-e",
        "lv..",
        ".lv",
        "data_tmeta_not",
        &longest,
    ] {
        // "data_tmeta_not" contains _tmeta: lvm2 matches anywhere, so refused.
        let ok = LvName::new(name);
        if name.contains("_tmeta") {
            assert!(ok.is_err(), "{name}");
        } else {
            assert_eq!(ok.unwrap().as_str(), name);
        }
    }
}

#[test]
fn vg_names_follow_lvm_rules_without_lv_reservations() {
    for good in ["vg0", "snapshot", "vg_tdata", "lvsnap-vg", "a.b+c"] {
        assert!(validate_vg_name(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        ".",
        "..",
        "-vg",
        "vg 0",
        "vg/0",
        "vg;x",
        "vgé",
        &"v".repeat(128),
    ] {
        let err = validate_vg_name(bad).expect_err(bad);
        assert_eq!(err.what, "volume group name");
    }
}

#[test]
fn tags_follow_lvm_charset_and_record_scheme() {
    let tag = LvTag::record(id());
    assert_eq!(tag.as_str(), format!("lvsnap.io/id={ID}"));
    assert!(
        LvTag::new(tag.as_str()).is_ok(),
        "our own scheme must be valid"
    );
    assert_eq!(tag.record_id(), Some(id()));
    assert!(tag.is_lvsnap());
    assert_eq!(LvTag::new("owner:db&x#1+2!").unwrap().record_id(), None);
    assert!(!LvTag::new("other").unwrap().is_lvsnap());
    let long = "t".repeat(1025);
    for bad in [
        "", "-x", "a b", "a,b", "a;b", "@tag", "$(x)", "tag*", "é", &long,
    ] {
        assert!(LvTag::new(bad).is_err(), "{bad:?}");
    }
    assert!(LvTag::new(&"t".repeat(1024)).is_ok());
}

#[test]
fn device_mapper_path_doubles_hyphens() {
    let lv = LvName::new("volume-1-2").unwrap();
    assert_eq!(device_mapper_path("vg", &lv), "/dev/mapper/vg-volume--1--2");
    assert_eq!(
        device_mapper_path("my-vg", &lv),
        "/dev/mapper/my--vg-volume--1--2"
    );
    let snap = LvName::snapshot(id());
    assert_eq!(
        device_mapper_path("lvsnap-vg", &snap),
        format!(
            "/dev/mapper/lvsnap--vg-_snapshot--{}",
            ID.replace('-', "--")
        )
    );
}
