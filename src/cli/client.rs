//! `lvsnap client`: a small CSI client for operators and the quickstart. It
//! speaks CSI over the Unix socket like the Kubernetes sidecars do.
use std::collections::HashMap;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::client::CsiClients;
use crate::config::Endpoint;
use crate::proto::v1 as csi;

#[derive(Debug, Args)]
pub struct ClientCmd {
    /// CSI endpoint of the driver to call: unix:///path/to/csi.sock
    #[arg(
        long,
        env = "LVSNAP_ENDPOINT",
        default_value = "unix:///run/lvsnap/csi.sock"
    )]
    pub endpoint: String,
    #[command(subcommand)]
    pub call: Call,
}

#[derive(Debug, Subcommand)]
pub enum Call {
    /// GetPluginInfo.
    Info,
    /// Probe: exits non-zero unless ready.
    Probe,
    /// CreateVolume (mount access, single-node writer).
    CreateVolume {
        name: String,
        /// Size in bytes, or with a suffix: 512M, 1G (powers of 1024).
        size: String,
        /// Project (Kubernetes namespace) charged for the volume.
        #[arg(long)]
        project: Option<String>,
        /// StorageClass-style parameters, key=value.
        #[arg(long = "param", value_parser = parse_kv)]
        params: Vec<(String, String)>,
    },
    /// DeleteVolume.
    DeleteVolume { volume_id: String },
    /// CreateSnapshot of a volume.
    CreateSnapshot {
        name: String,
        source_volume_id: String,
        /// Project (Kubernetes namespace) charged for the snapshot.
        #[arg(long)]
        project: Option<String>,
        /// VolumeSnapshotClass-style parameters, key=value.
        #[arg(long = "param", value_parser = parse_kv)]
        params: Vec<(String, String)>,
    },
    /// DeleteSnapshot.
    DeleteSnapshot { snapshot_id: String },
    /// ListSnapshots, all pages.
    ListSnapshots {
        #[arg(long)]
        source_volume_id: Option<String>,
    },
}

fn parse_kv(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{raw:?} is not key=value"))
}

/// Parses `1073741824`, `512M`, `1G`, `1Gi` into bytes (powers of 1024).
pub fn parse_size(raw: &str) -> anyhow::Result<i64> {
    let s = raw.trim();
    let s = match s.strip_suffix('i') {
        Some(rest) if rest.ends_with(|c: char| c.is_ascii_alphabetic()) => rest,
        _ => s,
    };
    let (num, shift) = match s.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => anyhow::bail!("size {raw:?}: unknown suffix {c:?} (use K, M, G or T)"),
            };
            (&s[..s.len() - 1], shift)
        }
        _ => (s, 0),
    };
    let n: i64 = num
        .parse()
        .with_context(|| format!("size {raw:?} is not a number with an optional K/M/G/T suffix"))?;
    n.checked_mul(1i64 << shift)
        .filter(|v| *v > 0)
        .with_context(|| format!("size {raw:?} must be positive and below 8 EiB"))
}

pub(super) async fn run(cmd: ClientCmd) -> anyhow::Result<()> {
    let endpoint = Endpoint::parse(&cmd.endpoint)?;
    let mut c = CsiClients::connect(endpoint.path())
        .await
        .with_context(|| format!("connecting to {}", endpoint.path().display()))?;
    match cmd.call {
        Call::Info => {
            let r = c
                .identity
                .get_plugin_info(csi::GetPluginInfoRequest {})
                .await?
                .into_inner();
            println!("name: {}\nvendor_version: {}", r.name, r.vendor_version);
        }
        Call::Probe => {
            let r = c.identity.probe(csi::ProbeRequest {}).await?.into_inner();
            println!("ready: {}", r.ready.unwrap_or(false));
            anyhow::ensure!(r.ready.unwrap_or(false), "the driver is not ready");
        }
        Call::CreateVolume {
            name,
            size,
            project,
            params,
        } => {
            let mut parameters: HashMap<String, String> = params.into_iter().collect();
            if let Some(p) = project {
                parameters.insert("csi.storage.k8s.io/pvc/namespace".into(), p);
            }
            let req = csi::CreateVolumeRequest {
                name,
                capacity_range: Some(csi::CapacityRange {
                    required_bytes: parse_size(&size)?,
                    limit_bytes: 0,
                }),
                volume_capabilities: vec![mount_capability()],
                parameters,
                ..Default::default()
            };
            let v = c
                .controller
                .create_volume(req)
                .await?
                .into_inner()
                .volume
                .unwrap_or_default();
            println!(
                "volume_id: {}\ncapacity_bytes: {}",
                v.volume_id, v.capacity_bytes
            );
            for t in v.accessible_topology {
                println!("accessible_topology: {:?}", t.segments);
            }
        }
        Call::DeleteVolume { volume_id } => {
            c.controller
                .delete_volume(csi::DeleteVolumeRequest {
                    volume_id,
                    ..Default::default()
                })
                .await?;
            println!("deleted");
        }
        Call::CreateSnapshot {
            name,
            source_volume_id,
            project,
            params,
        } => {
            let mut parameters: HashMap<String, String> = params.into_iter().collect();
            if let Some(p) = project {
                parameters.insert("csi.storage.k8s.io/volumesnapshot/namespace".into(), p);
            }
            let req = csi::CreateSnapshotRequest {
                name,
                source_volume_id,
                parameters,
                ..Default::default()
            };
            let s = c
                .controller
                .create_snapshot(req)
                .await?
                .into_inner()
                .snapshot
                .unwrap_or_default();
            print_snapshot(&s);
        }
        Call::DeleteSnapshot { snapshot_id } => {
            c.controller
                .delete_snapshot(csi::DeleteSnapshotRequest {
                    snapshot_id,
                    ..Default::default()
                })
                .await?;
            println!("deleted");
        }
        Call::ListSnapshots { source_volume_id } => {
            let mut token = String::new();
            loop {
                let r = c
                    .controller
                    .list_snapshots(csi::ListSnapshotsRequest {
                        max_entries: 100,
                        starting_token: token.clone(),
                        source_volume_id: source_volume_id.clone().unwrap_or_default(),
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                for e in r.entries {
                    if let Some(s) = e.snapshot {
                        print_snapshot(&s);
                    }
                }
                if r.next_token.is_empty() {
                    break;
                }
                token = r.next_token;
            }
        }
    }
    Ok(())
}

fn print_snapshot(s: &csi::Snapshot) {
    println!(
        "snapshot_id: {}  source_volume_id: {}  size_bytes: {}  ready_to_use: {}",
        s.snapshot_id, s.source_volume_id, s.size_bytes, s.ready_to_use
    );
}

fn mount_capability() -> csi::VolumeCapability {
    use csi::volume_capability::{AccessMode, AccessType, MountVolume, access_mode::Mode};
    csi::VolumeCapability {
        access_mode: Some(AccessMode {
            mode: Mode::SingleNodeWriter as i32,
        }),
        access_type: Some(AccessType::Mount(MountVolume::default())),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("1Gi").unwrap(), 1 << 30);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        for bad in ["", "G", "-1G", "0", "1X", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
