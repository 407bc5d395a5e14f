//! Parsing `vgs`/`lvs` JSON reports and decoding `lv_attr`.
use crate::lvm::{LvAttr, LvState, VolumeType, parse_lvs, parse_vgs, round_up};

/// `vgs --reportformat json --units b --nosuffix -o vg_name,vg_size,vg_free,vg_extent_size`
/// as lvm2 2.03.16 printed it (a 256 MiB loop device).
const VGS: &str = r#"  {
      "report": [
          {
              "vg": [
                  {"vg_name":"lvsnap-probe", "vg_size":"264241152", "vg_free":"264241152", "vg_extent_size":"4194304"}
              ]
          }
      ]
  }
"#;

/// `lvs --reportformat json --units b --nosuffix -o <LV_FIELDS> <vg>` as lvm2
/// 2.03.16 printed it in the VM tier (rows of two runs joined, in lvs's
/// order): an active thick snapshot, a skip-flagged thin snapshot activated
/// with -K, an invalidated thick snapshot, a thin pool in use, an open
/// origin, a plain LV, a thin LV, an origin that is not open.
const LVS: &str = r#"  {
      "report": [
          {
              "lv": [
                  {"vg_name":"lvsnap-vm-124", "lv_name":"_snapshot-75384244-1ebc-470c-884a-428d80640bf0", "lv_attr":"swi-a-s---", "lv_size":"8388608", "origin":"volume-345484bb-785e-4b15-8801-4415729f29da", "origin_size":"8388608", "pool_lv":"", "lv_tags":"", "data_percent":"0.00", "snap_percent":"0.00", "metadata_percent":""},
                  {"vg_name":"lvsnap-vm-124", "lv_name":"_snapshot-c950c3d4-61c8-4ca5-8138-437dc65f1b65", "lv_attr":"Vwi-a-tz-k", "lv_size":"8388608", "origin":"volume-83161efc-ad2f-46e1-9f5d-e9f4eb8b9cac", "origin_size":"", "pool_lv":"pool196459a40f784072a9ae781699293b34", "lv_tags":"", "data_percent":"0.00", "snap_percent":"0.00", "metadata_percent":""},
                  {"vg_name":"lvsnap-vm-124", "lv_name":"_snapshot-d00adbe2-14ab-4cbe-a5da-4b99a624ceab", "lv_attr":"swi-I-s---", "lv_size":"4194304", "origin":"volume-9dbee64c-10d3-4512-82d3-68f36de10050", "origin_size":"16777216", "pool_lv":"", "lv_tags":"", "data_percent":"100.00", "snap_percent":"100.00", "metadata_percent":""},
                  {"vg_name":"lvsnap-vm-124", "lv_name":"pool196459a40f784072a9ae781699293b34", "lv_attr":"twi-aotz--", "lv_size":"67108864", "origin":"", "origin_size":"", "pool_lv":"", "lv_tags":"", "data_percent":"0.00", "snap_percent":"0.00", "metadata_percent":"10.94"},
                  {"vg_name":"lvsnap-vm-124", "lv_name":"volume-345484bb-785e-4b15-8801-4415729f29da", "lv_attr":"owi-aos---", "lv_size":"8388608", "origin":"", "origin_size":"8388608", "pool_lv":"", "lv_tags":"", "data_percent":"", "snap_percent":"", "metadata_percent":""},
                  {"vg_name":"lvsnap-vm-124", "lv_name":"volume-68fb67f9-d0bd-4ee7-b6a3-21fa22c41978", "lv_attr":"-wi-a-----", "lv_size":"4194304", "origin":"", "origin_size":"", "pool_lv":"", "lv_tags":"lvsnap.io/id=68fb67f9-d0bd-4ee7-b6a3-21fa22c41978", "data_percent":"", "snap_percent":"", "metadata_percent":""},
                  {"vg_name":"lvsnap-vm-124", "lv_name":"volume-83161efc-ad2f-46e1-9f5d-e9f4eb8b9cac", "lv_attr":"Vwi-a-tz--", "lv_size":"8388608", "origin":"", "origin_size":"", "pool_lv":"pool196459a40f784072a9ae781699293b34", "lv_tags":"", "data_percent":"0.00", "snap_percent":"0.00", "metadata_percent":""},
                  {"vg_name":"lvsnap-vm-124", "lv_name":"volume-9dbee64c-10d3-4512-82d3-68f36de10050", "lv_attr":"owi-a-s---", "lv_size":"16777216", "origin":"", "origin_size":"16777216", "pool_lv":"", "lv_tags":"lvsnap.io/id=9dbee64c-10d3-4512-82d3-68f36de10050", "data_percent":"", "snap_percent":"", "metadata_percent":""}
              ]
          }
      ]
  }
"#;

const INVALID: &str = "_snapshot-d00adbe2-14ab-4cbe-a5da-4b99a624ceab";
const THICK: &str = "_snapshot-75384244-1ebc-470c-884a-428d80640bf0";
const THIN_SNAP: &str = "_snapshot-c950c3d4-61c8-4ca5-8138-437dc65f1b65";
const POOL: &str = "pool196459a40f784072a9ae781699293b34";
const OPEN_ORIGIN: &str = "volume-345484bb-785e-4b15-8801-4415729f29da";
const PLAIN: &str = "volume-68fb67f9-d0bd-4ee7-b6a3-21fa22c41978";
const THIN: &str = "volume-83161efc-ad2f-46e1-9f5d-e9f4eb8b9cac";
const ORIGIN: &str = "volume-9dbee64c-10d3-4512-82d3-68f36de10050";

#[test]
fn parses_vgs() {
    let vgs = parse_vgs(VGS).unwrap();
    assert_eq!(vgs.len(), 1);
    let vg = &vgs[0];
    assert_eq!(vg.name, "lvsnap-probe");
    assert_eq!(vg.size_bytes, 252 << 20);
    assert_eq!(vg.free_bytes, 252 << 20);
    assert_eq!(vg.extent_size_bytes, 4 << 20);
    assert_eq!(vg.round_up(1), Some(4 << 20));
    assert_eq!(vg.round_up(4 << 20), Some(4 << 20));
    assert_eq!(vg.round_up((4 << 20) + 1), Some(8 << 20));
    assert_eq!(vg.round_up(u64::MAX), None);
    assert_eq!(round_up(5, 0), Some(5));
}

#[test]
fn parses_real_lvs_of_every_kind() {
    let lvs = parse_lvs(LVS).unwrap();
    let names: Vec<&str> = lvs.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            THICK,
            THIN_SNAP,
            INVALID,
            POOL,
            OPEN_ORIGIN,
            PLAIN,
            THIN,
            ORIGIN
        ]
    );
    assert!(lvs.iter().all(|l| l.vg == "lvsnap-vm-124"));
    let by = |n: &str| lvs.iter().find(|l| l.name.as_str() == n).unwrap();

    let thick = by(THICK);
    assert_eq!(thick.attr.raw, "swi-a-s---");
    assert_eq!(thick.attr.volume_type, VolumeType::Snapshot);
    assert!(thick.attr.is_thick_snapshot() && thick.is_snapshot() && thick.attr.is_active());
    assert!(!thick.attr.is_snapshot_invalid() && !thick.attr.open);
    assert_eq!(thick.origin.as_ref().unwrap().as_str(), OPEN_ORIGIN);
    assert_eq!(
        (thick.size_bytes, thick.origin_size_bytes),
        (8 << 20, Some(8 << 20))
    );
    assert_eq!(
        (thick.data_percent, thick.snap_percent),
        (Some(0.0), Some(0.0))
    );
    assert_eq!(thick.pool, None);

    let invalid = by(INVALID);
    assert_eq!(invalid.attr.raw, "swi-I-s---");
    assert_eq!(invalid.attr.state, LvState::InvalidSnapshot);
    assert!(invalid.attr.is_snapshot_invalid() && !invalid.attr.is_active());
    assert_eq!(
        (invalid.data_percent, invalid.snap_percent),
        (Some(100.0), Some(100.0))
    );
    assert_eq!(
        (invalid.size_bytes, invalid.origin_size_bytes),
        (4 << 20, Some(16 << 20))
    );
    assert_eq!(invalid.origin.as_ref().unwrap().as_str(), ORIGIN);
    assert!(invalid.tags.is_empty());

    let thin_snap = by(THIN_SNAP);
    assert_eq!(thin_snap.attr.raw, "Vwi-a-tz-k");
    assert_eq!(thin_snap.attr.volume_type, VolumeType::Thin);
    assert!(
        thin_snap.attr.activation_skip && thin_snap.attr.is_active() && thin_snap.is_snapshot()
    );
    assert_eq!(thin_snap.pool.as_ref().unwrap().as_str(), POOL);
    assert_eq!(thin_snap.origin.as_ref().unwrap().as_str(), THIN);
    assert_eq!(
        thin_snap.origin_size_bytes, None,
        "lvm2 gives none for thin"
    );

    let pool = by(POOL);
    assert_eq!(pool.attr.raw, "twi-aotz--");
    assert!(pool.attr.is_thin_pool() && pool.attr.open && pool.attr.zero && !pool.is_snapshot());
    assert_eq!(
        (pool.metadata_percent, pool.size_bytes),
        (Some(10.94), 64 << 20)
    );

    let origin = by(OPEN_ORIGIN);
    assert_eq!(origin.attr.raw, "owi-aos---");
    assert_eq!(origin.attr.volume_type, VolumeType::Origin);
    assert!(origin.attr.has_thick_snapshots() && origin.attr.open && !origin.is_snapshot());
    assert_eq!(
        (origin.data_percent, origin.origin_size_bytes),
        (None, Some(8 << 20))
    );
    assert!(by(ORIGIN).attr.has_thick_snapshots() && !by(ORIGIN).attr.open);

    let plain = by(PLAIN);
    assert_eq!(plain.attr.raw, "-wi-a-----");
    assert_eq!(plain.attr.volume_type, VolumeType::Plain);
    assert_eq!(
        plain.tags,
        ["lvsnap.io/id=68fb67f9-d0bd-4ee7-b6a3-21fa22c41978"]
    );
    assert_eq!(
        plain.record_ids(),
        [uuid::Uuid::parse_str(&PLAIN[7..]).unwrap()]
    );

    let thin = by(THIN);
    assert!(thin.attr.is_thin() && !thin.is_snapshot() && !thin.attr.activation_skip);
    assert_eq!(thin.pool.as_ref().unwrap().as_str(), POOL);
}

#[test]
fn several_tags_are_split() {
    let two = LVS.replace(
        "\"lv_tags\":\"lvsnap.io/id=68fb67f9",
        "\"lv_tags\":\"owner:x,lvsnap.io/id=68fb67f9",
    );
    let lvs = parse_lvs(&two).unwrap();
    let plain = lvs.iter().find(|l| l.name.as_str() == PLAIN).unwrap();
    assert_eq!(
        plain.tags,
        [
            "owner:x",
            "lvsnap.io/id=68fb67f9-d0bd-4ee7-b6a3-21fa22c41978"
        ]
    );
    assert_eq!(plain.record_ids().len(), 1);
}

#[test]
fn decodes_attr_characters() {
    let a = LvAttr::parse("Vwi-a-tz-k").unwrap();
    assert_eq!(a.volume_type, VolumeType::Thin);
    assert!(a.writable && a.is_active() && !a.open && a.zero && a.activation_skip);
    assert_eq!((a.target, a.health), ('t', '-'));

    let a = LvAttr::parse("-wi-------").unwrap();
    assert_eq!(
        (a.volume_type, a.state),
        (VolumeType::Plain, LvState::Inactive)
    );
    assert!(!a.is_active() && !a.zero && !a.activation_skip);

    let a = LvAttr::parse("twi-aotzD-").unwrap();
    assert_eq!(a.health, 'D');
    assert_eq!(
        LvAttr::parse("Owi-a-s---").unwrap().volume_type,
        VolumeType::MergingOrigin
    );
    assert!(LvAttr::parse("Owi-a-s---").unwrap().has_thick_snapshots());
    assert_eq!(
        LvAttr::parse("Swi-a-s---").unwrap().volume_type,
        VolumeType::MergingSnapshot
    );
    assert_eq!(
        LvAttr::parse("ewi-------").unwrap().volume_type,
        VolumeType::Metadata
    );
    assert_eq!(
        LvAttr::parse("xwi-X-----").unwrap().volume_type,
        VolumeType::Unknown('x')
    );
    assert_eq!(
        LvAttr::parse("-wi-X-----").unwrap().state,
        LvState::Unknown('X')
    );
    assert_eq!(
        LvAttr::parse("swi-S-s---").unwrap().state,
        LvState::InvalidSuspendedSnapshot
    );
    assert!(LvAttr::parse("-r--a-----").is_ok_and(|a| !a.writable));
    for bad in ["", "-wi-a----", "-wi-a------", "-wi-a----é"] {
        assert!(LvAttr::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn bad_reports_are_errors_not_panics() {
    assert!(parse_vgs("").is_err());
    assert!(parse_vgs("{}").is_err());
    assert!(parse_vgs(r#"{"report":[{"vg":[{"vg_name":"x","vg_size":"1g","vg_free":"0","vg_extent_size":"1"}]}]}"#).is_err());
    let bad_attr = LVS.replace("owi-aos---", "owi");
    assert_ne!(bad_attr, LVS);
    assert!(parse_lvs(&bad_attr).is_err());
    let bad_pct = LVS.replace("10.94", "lots");
    assert_ne!(bad_pct, LVS);
    assert!(parse_lvs(&bad_pct).is_err());
    // An empty VG reports an empty list.
    assert!(parse_lvs(r#"{"report":[{"lv":[]}]}"#).unwrap().is_empty());
    // Sizes printed with a unit suffix (no --nosuffix) are still read.
    let vgs = parse_vgs(&VGS.replace("\"4194304\"", "\"4194304B\"")).unwrap();
    assert_eq!(vgs[0].extent_size_bytes, 4194304);
}

#[test]
fn hidden_and_foreign_names_are_skipped() {
    let hidden = LVS.replace(
        &format!("\"lv_name\":\"{POOL}\""),
        "\"lv_name\":\"[lvol0_pmspare]\"",
    );
    assert_ne!(hidden, LVS);
    let lvs = parse_lvs(&hidden).unwrap();
    assert_eq!(lvs.len(), 7);
    assert!(lvs.iter().all(|l| l.name.as_str() != POOL));
}
