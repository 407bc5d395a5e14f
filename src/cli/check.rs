//! `lvsnap check-classes`: reads StorageClasses, VolumeSnapshotClasses and
//! VolumeGroupSnapshotClasses (YAML, e.g. `helm template` output) and checks
//! the parameters of those for this driver as the Kubernetes sidecars, then
//! lvsnap, will: a class that fails here never provisions anything.
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;

use crate::config::DEFAULT_DRIVER_NAME;
use crate::controller::storage_class::{
    check_group_snapshot_class, check_snapshot_class, check_storage_class,
};

#[derive(Debug, Args)]
pub struct CheckClassesArgs {
    /// YAML files (multi-document); none: standard input.
    pub files: Vec<PathBuf>,
    /// Only classes of this driver are checked.
    #[arg(long, env = "LVSNAP_DRIVER_NAME", default_value = DEFAULT_DRIVER_NAME)]
    pub driver_name: String,
}

#[derive(Debug, Deserialize)]
struct Doc {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    provisioner: Option<String>,
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    parameters: HashMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct Meta {
    #[serde(default)]
    name: String,
}

pub fn run(args: CheckClassesArgs) -> anyhow::Result<()> {
    let mut texts = Vec::new();
    if args.files.is_empty() {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        texts.push(("<stdin>".to_string(), s));
    }
    for f in &args.files {
        let text =
            std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        texts.push((f.display().to_string(), text));
    }
    let (mut checked, mut failed) = (0, 0);
    for (source, text) in texts {
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let Ok(doc) = Doc::deserialize(doc) else {
                continue; // not an object of interest (or empty)
            };
            let verdict = match doc.kind.as_str() {
                "StorageClass" if doc.provisioner.as_deref() == Some(&args.driver_name) => {
                    check_storage_class(&doc.parameters)
                }
                "VolumeSnapshotClass" if doc.driver.as_deref() == Some(&args.driver_name) => {
                    check_snapshot_class(&doc.parameters)
                }
                "VolumeGroupSnapshotClass" if doc.driver.as_deref() == Some(&args.driver_name) => {
                    check_group_snapshot_class(&doc.parameters)
                }
                _ => continue,
            };
            checked += 1;
            match verdict {
                Ok(()) => println!("ok   {}/{}", doc.kind, doc.metadata.name),
                Err(e) => {
                    failed += 1;
                    println!("FAIL {}/{} ({source}): {e}", doc.kind, doc.metadata.name);
                }
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {checked} classes would not provision");
    }
    if checked == 0 {
        anyhow::bail!("no class of driver {:?} found", args.driver_name);
    }
    Ok(())
}
