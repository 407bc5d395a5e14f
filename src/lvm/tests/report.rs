//! Parsing `vgs`/`lvs` JSON reports and decoding `lv_attr`.
use crate::lvm::{LvAttr, LvState, VolumeType, parse_lvs, parse_vgs, round_up};

/// `vgs --reportformat json --units b --nosuffix -o vg_name,vg_size,vg_free,vg_extent_size`
const VGS: &str = r#"  {
      "report": [
          {
              "vg": [
                  {"vg_name":"lvsnap", "vg_size":"1069547520", "vg_free":"843055104", "vg_extent_size":"4194304"}
              ]
          }
      ]
  }
"#;

/// `lvs --reportformat json --units b --nosuffix -o <LV_FIELDS> lvsnap`
const LVS: &str = r#"  {
      "report": [
          {
              "lv": [
                  {"vg_name":"lvsnap", "lv_name":"_snapshot-a", "lv_attr":"swi-a-s---", "lv_size":"12582912", "origin":"volume-a", "origin_size":"12582912", "pool_lv":"", "lv_tags":"lvsnap.io/id=4a8f7b0e-4f4c-4a43-9c3d-2b7d1c1b9e10", "data_percent":"0.10", "snap_percent":"0.10", "metadata_percent":""},
                  {"vg_name":"lvsnap", "lv_name":"_snapshot-bad", "lv_attr":"swi-I-s---", "lv_size":"4194304", "origin":"volume-a", "origin_size":"12582912", "pool_lv":"", "lv_tags":"", "data_percent":"100.00", "snap_percent":"100.00", "metadata_percent":""},
                  {"vg_name":"lvsnap", "lv_name":"_snapshot-t", "lv_attr":"Vwi-a-tz-k", "lv_size":"8388608", "origin":"volume-t", "origin_size":"8388608", "pool_lv":"pool", "lv_tags":"a,lvsnap.io/id=9b1de1b6-4c7f-4a6d-8d0f-7e5b1b7a3c21", "data_percent":"1.56", "snap_percent":"", "metadata_percent":""},
                  {"vg_name":"lvsnap", "lv_name":"pool", "lv_attr":"twi-aotz--", "lv_size":"67108864", "origin":"", "origin_size":"", "pool_lv":"", "lv_tags":"", "data_percent":"0.20", "snap_percent":"", "metadata_percent":"10.94"},
                  {"vg_name":"lvsnap", "lv_name":"volume-a", "lv_attr":"owi-aos---", "lv_size":"12582912", "origin":"", "origin_size":"", "pool_lv":"", "lv_tags":"", "data_percent":"", "snap_percent":"", "metadata_percent":""},
                  {"vg_name":"lvsnap", "lv_name":"volume-t", "lv_attr":"Vwi-aotz--", "lv_size":"8388608", "origin":"", "origin_size":"", "pool_lv":"pool", "lv_tags":"", "data_percent":"1.56", "snap_percent":"", "metadata_percent":""}
              ]
          }
      ]
  }
"#;

#[test]
fn parses_vgs() {
    let vgs = parse_vgs(VGS).unwrap();
    assert_eq!(vgs.len(), 1);
    let vg = &vgs[0];
    assert_eq!(vg.name, "lvsnap");
    assert_eq!(vg.size_bytes, 1_069_547_520);
    assert_eq!(vg.free_bytes, 843_055_104);
    assert_eq!(vg.extent_size_bytes, 4 << 20);
    assert_eq!(vg.round_up(1), Some(4 << 20));
    assert_eq!(vg.round_up(4 << 20), Some(4 << 20));
    assert_eq!(vg.round_up((4 << 20) + 1), Some(8 << 20));
    assert_eq!(vg.round_up(u64::MAX), None);
    assert_eq!(round_up(5, 0), Some(5));
}

#[test]
fn parses_lvs_of_every_kind() {
    let lvs = parse_lvs(LVS).unwrap();
    let names: Vec<&str> = lvs.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "_snapshot-a",
            "_snapshot-bad",
            "_snapshot-t",
            "pool",
            "volume-a",
            "volume-t"
        ]
    );
    let by = |n: &str| lvs.iter().find(|l| l.name.as_str() == n).unwrap();

    let thick = by("_snapshot-a");
    assert_eq!(thick.attr.volume_type, VolumeType::Snapshot);
    assert!(thick.attr.is_thick_snapshot() && thick.is_snapshot() && thick.attr.is_active());
    assert!(!thick.attr.is_snapshot_invalid());
    assert_eq!(thick.origin.as_ref().unwrap().as_str(), "volume-a");
    assert_eq!(thick.origin_size_bytes, Some(12_582_912));
    assert_eq!(thick.snap_percent, Some(0.10));
    assert_eq!(thick.pool, None);
    assert_eq!(thick.record_ids().len(), 1);

    let invalid = by("_snapshot-bad");
    assert_eq!(invalid.attr.state, LvState::InvalidSnapshot);
    assert!(invalid.attr.is_snapshot_invalid() && !invalid.attr.is_active());
    assert_eq!(invalid.data_percent, Some(100.0));
    assert!(invalid.tags.is_empty());

    let thin_snap = by("_snapshot-t");
    assert_eq!(thin_snap.attr.volume_type, VolumeType::Thin);
    assert!(thin_snap.attr.activation_skip && thin_snap.is_snapshot());
    assert_eq!(thin_snap.pool.as_ref().unwrap().as_str(), "pool");
    assert_eq!(
        thin_snap.tags,
        ["a", "lvsnap.io/id=9b1de1b6-4c7f-4a6d-8d0f-7e5b1b7a3c21"]
    );

    let pool = by("pool");
    assert!(pool.attr.is_thin_pool() && pool.attr.open && !pool.is_snapshot());
    assert_eq!(pool.metadata_percent, Some(10.94));
    assert_eq!(pool.size_bytes, 64 << 20);

    let origin = by("volume-a");
    assert_eq!(origin.attr.volume_type, VolumeType::Origin);
    assert!(origin.attr.has_thick_snapshots() && origin.attr.open && !origin.is_snapshot());
    assert_eq!(origin.data_percent, None);

    let thin = by("volume-t");
    assert!(thin.attr.is_thin() && !thin.is_snapshot() && !thin.attr.activation_skip);
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
    assert!(parse_lvs(&bad_attr).is_err());
    let bad_pct = LVS.replace("10.94", "lots");
    assert!(parse_lvs(&bad_pct).is_err());
    // An empty VG reports an empty list.
    assert!(parse_lvs(r#"{"report":[{"lv":[]}]}"#).unwrap().is_empty());
    // Sizes printed with a unit suffix (no --nosuffix) are still read.
    let vgs = parse_vgs(&VGS.replace("\"4194304\"", "\"4194304B\"")).unwrap();
    assert_eq!(vgs[0].extent_size_bytes, 4194304);
}

#[test]
fn hidden_and_foreign_names_are_skipped() {
    let hidden = LVS.replace("\"lv_name\":\"pool\"", "\"lv_name\":\"[lvol0_pmspare]\"");
    let lvs = parse_lvs(&hidden).unwrap();
    assert_eq!(lvs.len(), 5);
    assert!(lvs.iter().all(|l| l.name.as_str() != "pool"));
}
