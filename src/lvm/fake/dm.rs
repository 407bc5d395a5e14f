//! `dmsetup suspend|resume <name>` on the fake's LVs: a suspended LV shows
//! `s` as its state in `lvs` (as lvm2 does); suspending a missing or
//! inactive LV fails, resuming one that is not suspended does nothing.
use std::collections::BTreeMap;

use super::model::{Vg, fail};
use crate::lvm::CommandOutput;

fn dm_name(vg: &str, lv: &str) -> String {
    format!("{}-{}", vg.replace('-', "--"), lv.replace('-', "--"))
}

pub(super) fn dmsetup(vgs: &mut BTreeMap<String, Vg>, args: &[String]) -> CommandOutput {
    let (Some(verb), Some(name), None) = (args.first(), args.get(1), args.get(2)) else {
        return CommandOutput::failed(1, "dmsetup: the fake knows suspend|resume <name>\n");
    };
    let found = vgs.iter_mut().find_map(|(vg, v)| {
        v.lvs
            .iter_mut()
            .find(|(lv, _)| dm_name(vg, lv) == *name)
            .map(|(_, lv)| lv)
    });
    let missing = || {
        CommandOutput::failed(
            1,
            format!(
                "device-mapper: {verb} ioctl on {name}  failed: No such device or address\nCommand failed.\n"
            ),
        )
    };
    match (verb.as_str(), found) {
        (_, Some(lv)) if !lv.active => missing(),
        (_, None) => missing(),
        ("suspend", Some(lv)) => {
            lv.suspended = true;
            CommandOutput::ok("")
        }
        ("resume", Some(lv)) => {
            lv.suspended = false;
            CommandOutput::ok("")
        }
        (other, _) => fail(format!("dmsetup {other}: not simulated")),
    }
}
