//! The fake's command line: lvm2's options as the LVM layer uses them,
//! applied to the in-memory model. Unknown options fail as lvm2 would (exit
//! code 3), so a wrong argv shows up in tests.
use std::collections::{BTreeMap, BTreeSet};

use super::model::{Kind, Lv, Vg, fail, lv_not_found, report, vg_not_found};
use crate::lvm::{CommandOutput, LvName, names::validate_vg_name};

/// What `lvm version` prints (lvm2 2.03.16, Debian 12).
const VERSION: &str = "  LVM version:     2.03.16(2) (2022-05-18)\n  Library version: 1.02.185 (2022-05-18)\n  Driver version:  4.48.0\n";

/// Options taking a value, with their short forms.
const VALUED: [(&str, &str); 14] = [
    ("--stripes", "-i"),
    ("--stripesize", "-I"),
    ("--mirrors", "-m"),
    ("--name", "-n"),
    ("--size", "-L"),
    ("--virtualsize", "-V"),
    ("--thinpool", "--thinpool"),
    ("--type", "--type"),
    ("--addtag", "--addtag"),
    ("--setactivationskip", "-k"),
    ("--reportformat", "--reportformat"),
    ("--units", "--units"),
    ("--options", "-o"),
    ("--activate", "-a"),
];
const FLAGS: [(&str, &str); 5] = [
    ("--yes", "-y"),
    ("--snapshot", "-s"),
    ("--nosuffix", "--nosuffix"),
    ("--force", "-f"),
    ("--ignoreactivationskip", "-K"),
];

#[derive(Default)]
struct Args {
    values: BTreeMap<&'static str, Vec<String>>,
    flags: BTreeSet<&'static str>,
    positional: Vec<String>,
}

impl Args {
    fn parse(args: &[String]) -> Result<Self, CommandOutput> {
        let mut out = Self::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if let Some((long, _)) = VALUED.iter().find(|(l, s)| a == l || a == s) {
                let Some(v) = it.next() else {
                    return Err(usage(format!("Option {a} requires an argument.")));
                };
                out.values.entry(long).or_default().push(v.clone());
            } else if let Some((long, _)) = FLAGS.iter().find(|(l, s)| a == l || a == s) {
                out.flags.insert(long);
            } else if a.starts_with('-') {
                return Err(usage(format!("unrecognized option '{a}'")));
            } else {
                out.positional.push(a.clone());
            }
        }
        Ok(out)
    }

    fn one(&self, long: &str) -> Option<&str> {
        self.values
            .get(long)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    fn flag(&self, long: &str) -> bool {
        self.flags.contains(long)
    }
}

fn usage(msg: String) -> CommandOutput {
    CommandOutput::failed(3, format!("  {msg}\n"))
}

/// `<n>b` → n; lvsnap only ever passes bytes.
fn bytes_arg(v: &str) -> Result<u64, CommandOutput> {
    v.strip_suffix(['b', 'B'])
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| usage(format!("Invalid argument for --size: {v}")))
}

/// `vg/lv` → (vg, lv).
fn split_path(p: &str) -> Result<(&str, &str), CommandOutput> {
    p.split_once('/')
        .ok_or_else(|| usage(format!("Invalid logical volume path {p}")))
}

/// Runs one command; `argv[0]` is the program's name or path.
pub(super) fn run(vgs: &mut BTreeMap<String, Vg>, argv: &[String]) -> CommandOutput {
    let program = argv[0].rsplit('/').next().unwrap_or_default();
    if program == "dmsetup" {
        return super::dm::dmsetup(vgs, &argv[1..]);
    }
    let result = Args::parse(&argv[1..]).and_then(|args| match program {
        "vgs" => vgs_cmd(vgs, &args),
        "lvs" => lvs_cmd(vgs, &args),
        "lvcreate" => lvcreate(vgs, &args),
        "lvremove" => lvremove(vgs, &args),
        "lvextend" => lvextend(vgs, &args),
        "lvchange" => lvchange(vgs, &args),
        "lvm" if args.positional == ["version"] => Ok(CommandOutput::ok(VERSION)),
        _ => Err(usage(format!("{program}: not simulated"))),
    });
    result.unwrap_or_else(|e| e)
}

fn target_vg<'a>(vgs: &'a mut BTreeMap<String, Vg>, vg: &str) -> Result<&'a mut Vg, CommandOutput> {
    vgs.get_mut(vg).ok_or_else(|| vg_not_found(vg))
}

fn vgs_cmd(vgs: &mut BTreeMap<String, Vg>, args: &Args) -> Result<CommandOutput, CommandOutput> {
    let mut rows = Vec::new();
    let per_pv = args.one("--options").is_some_and(|o| o.contains("pv_free"));
    for name in &args.positional {
        let vg = target_vg(vgs, name)?;
        match per_pv {
            true => rows.extend(vg.pv_rows(name)),
            false => rows.push(vg.vg_row(name)),
        }
    }
    Ok(CommandOutput::ok(report("vg", rows)))
}

fn lvs_cmd(vgs: &mut BTreeMap<String, Vg>, args: &Args) -> Result<CommandOutput, CommandOutput> {
    let mut rows = Vec::new();
    for target in &args.positional {
        let (vg_name, lv_name) = target
            .split_once('/')
            .map_or((target.as_str(), None), |(v, l)| (v, Some(l)));
        let vg = target_vg(vgs, vg_name)?;
        for (name, lv) in &vg.lvs {
            if lv_name.is_none_or(|l| l == name) {
                rows.push(vg.lv_row(vg_name, name, lv));
            }
        }
        if let Some(l) = lv_name.filter(|l| !vg.lvs.contains_key(*l)) {
            return Err(lv_not_found(vg_name, l));
        }
    }
    Ok(CommandOutput::ok(report("lv", rows)))
}

fn lvcreate(vgs: &mut BTreeMap<String, Vg>, args: &Args) -> Result<CommandOutput, CommandOutput> {
    let name = args
        .one("--name")
        .ok_or_else(|| usage("--name is required by the fake".into()))?;
    let [target] = args.positional.as_slice() else {
        return Err(usage("one VG or origin expected".into()));
    };
    let (vg_name, origin) = match target.split_once('/') {
        Some((v, o)) => (v, Some(o)),
        None => (target.as_str(), None),
    };
    if validate_vg_name(vg_name).is_err() || LvName::new(name).is_err() {
        return Err(usage(format!("Logical volume name \"{name}\" is invalid.")));
    }
    let vg = target_vg(vgs, vg_name)?;
    if vg.lvs.contains_key(name) {
        return Err(fail(format!(
            "Logical Volume \"{name}\" already exists in volume group \"{vg_name}\""
        )));
    }
    let tags = args
        .values
        .get("--addtag")
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let skip_flag = args.one("--setactivationskip");
    let size = args
        .one("--size")
        .map(bytes_arg)
        .transpose()?
        .map(|b| vg.round(b));
    let (kind, size, skip) = if args.flag("--snapshot") {
        let origin = origin.ok_or_else(|| usage("--snapshot needs an origin".into()))?;
        let source = vg
            .lvs
            .get(origin)
            .ok_or_else(|| lv_not_found(vg_name, origin))?;
        match (&source.kind, size) {
            // lvm2 sends no message to the pool for an origin someone else
            // suspended: the new thin LV does not load.
            (Kind::Thin { .. }, None) if source.suspended => {
                return Err(fail(format!(
                    "device-mapper: reload ioctl on  (254:6) failed: No data available\n  Failed to activate thin {name}."
                )));
            }
            (Kind::Thin { pool, .. }, None) => {
                let kind = Kind::Thin {
                    pool: pool.clone(),
                    origin: Some(origin.to_string()),
                };
                (kind, source.size, skip_flag != Some("n"))
            }
            (Kind::Linear, Some(size)) => (
                Kind::ThickSnapshot {
                    origin: origin.to_string(),
                },
                size,
                false,
            ),
            _ => {
                return Err(fail(format!(
                    "Snapshot of {vg_name}/{origin} is not simulated"
                )));
            }
        }
    } else {
        match args.one("--type") {
            Some("thin-pool") => (
                Kind::ThinPool,
                size.ok_or_else(|| usage("--size".into()))?,
                false,
            ),
            Some("thin") => {
                let pool = args
                    .one("--thinpool")
                    .ok_or_else(|| usage("--thinpool".into()))?;
                if vg.lvs.get(pool).is_none_or(|p| p.kind != Kind::ThinPool) {
                    return Err(lv_not_found(vg_name, pool));
                }
                let v = args.one("--virtualsize").map(bytes_arg).transpose()?;
                let size = vg.round(v.ok_or_else(|| usage("--virtualsize".into()))?);
                (
                    Kind::Thin {
                        pool: pool.to_string(),
                        origin: None,
                    },
                    size,
                    false,
                )
            }
            None => (
                Kind::Linear,
                size.ok_or_else(|| usage("--size".into()))?,
                false,
            ),
            // Simulated as linear (the copies are checked for room only).
            Some("raid1") => {
                let size = size.ok_or_else(|| usage("--size".into()))?;
                let m: u64 = args
                    .one("--mirrors")
                    .unwrap_or("1")
                    .parse()
                    .map_err(|_| usage("--mirrors".into()))?;
                vg.check_space(vg_name, size.saturating_mul(m + 1))?;
                (Kind::Linear, size, false)
            }
            Some(other) => return Err(usage(format!("type {other} is not simulated"))),
        }
    };
    if !matches!(kind, Kind::Thin { .. }) {
        vg.check_space(vg_name, size)?;
    }
    let active = !skip || args.flag("--ignoreactivationskip");
    let lv = Lv {
        size,
        kind,
        tags,
        active,
        skip,
        created: chrono::Utc::now(),
        open: false,
        fill: None,
        invalid: false,
        suspended: false,
    };
    // lvm2 resumes the origin it snapshots, also one suspended beforehand.
    if let Some(o) = origin.and_then(|o| vg.lvs.get_mut(o)) {
        o.suspended = false;
    }
    vg.lvs.insert(name.to_string(), lv);
    Ok(CommandOutput::ok(format!(
        "  Logical volume \"{name}\" created.\n"
    )))
}

fn lvremove(vgs: &mut BTreeMap<String, Vg>, args: &Args) -> Result<CommandOutput, CommandOutput> {
    for target in &args.positional {
        let (vg_name, lv) = split_path(target)?;
        let vg = target_vg(vgs, vg_name)?;
        match vg.lvs.get(lv) {
            None => return Err(lv_not_found(vg_name, lv)),
            Some(found) if found.open => {
                return Err(super::model::fail(format!(
                    "Logical volume {vg_name}/{lv} in use."
                )));
            }
            Some(_) => {}
        }
        vg.remove(lv);
    }
    Ok(CommandOutput::ok(String::new()))
}

fn lvextend(vgs: &mut BTreeMap<String, Vg>, args: &Args) -> Result<CommandOutput, CommandOutput> {
    let [target] = args.positional.as_slice() else {
        return Err(usage("one LV expected".into()));
    };
    let (vg_name, name) = split_path(target)?;
    let vg = target_vg(vgs, vg_name)?;
    let wanted = args
        .one("--size")
        .map(bytes_arg)
        .transpose()?
        .map(|b| vg.round(b));
    let lv = vg
        .lvs
        .get(name)
        .ok_or_else(|| lv_not_found(vg_name, name))?;
    let (current, thin) = (lv.size, matches!(lv.kind, Kind::Thin { .. }));
    let size = wanted.ok_or_else(|| usage("--size".into()))?;
    if size <= current {
        let (n, c) = (size / vg.extent, current / vg.extent);
        return Err(fail(format!(
            "New size ({n} extents) matches existing size ({c} extents)."
        )));
    }
    if !thin {
        let (needed, free) = ((size - current) / vg.extent, vg.free() / vg.extent);
        if needed > free {
            return Err(fail(format!(
                "Insufficient free space: {needed} extents needed, but only {free} available"
            )));
        }
    }
    if let Some(lv) = vg.lvs.get_mut(name) {
        // The same data in a larger area: a lower percentage.
        if let Some((used, meta)) = lv.fill {
            lv.fill = Some((used * current as f64 / size as f64, meta));
        }
        lv.size = size;
    }
    Ok(CommandOutput::ok(format!(
        "  Logical volume {target} successfully resized.\n"
    )))
}

fn lvchange(vgs: &mut BTreeMap<String, Vg>, args: &Args) -> Result<CommandOutput, CommandOutput> {
    let activate = args.one("--activate");
    for target in &args.positional {
        let (vg_name, name) = split_path(target)?;
        let vg = target_vg(vgs, vg_name)?;
        let lv = vg
            .lvs
            .get_mut(name)
            .ok_or_else(|| lv_not_found(vg_name, name))?;
        match activate {
            Some("y") if !lv.skip || args.flag("--ignoreactivationskip") => lv.active = true,
            Some("y") => {}
            Some("n") => lv.active = false,
            _ => return Err(usage("only --activate y|n is simulated".into())),
        }
    }
    Ok(CommandOutput::ok(String::new()))
}
