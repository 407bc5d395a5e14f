//! The read commands: snapshot-list/show, volume-list/show, quota-show.
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::render::{emit, properties, table};
use super::{Backend, IdArgs, ListArgs};
use crate::quota::gib_ceil;
use crate::records::LifeState;
use crate::store::{Record, SnapshotFilter, SnapshotRecord, VolumeFilter, VolumeRecord};

/// A record as JSON/YAML: its id, spec and status (not the store's version).
#[derive(Serialize)]
pub(super) struct View<'a, S, T> {
    pub id: &'a str,
    pub spec: &'a S,
    pub status: &'a T,
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

pub(super) fn keep<S: LifeState>(a: &ListArgs, status: S) -> bool {
    a.status.as_deref().is_none_or(|s| s == status.as_str())
}

pub(super) async fn snapshot_list(a: &ListArgs) -> anyhow::Result<String> {
    let store = a.backend.open().await?;
    let filter = SnapshotFilter {
        project: a.project.clone(),
        include_deleted: a.all,
        ..Default::default()
    };
    let records: Vec<SnapshotRecord> = store
        .list_snapshots(&filter, None, usize::MAX)
        .await?
        .into_iter()
        .filter(|s| keep(a, s.status.life.status))
        .collect();
    let header = ["ID", "Volume ID", "Status", "Name", "Size"];
    list(a, &records, &header, |s| {
        vec![
            s.name.clone(),
            s.spec.source_volume_id.clone(),
            s.status.life.status.as_str().to_string(),
            s.spec.display_name.clone(),
            s.spec.volume_size.to_string(),
        ]
    })
}

pub(super) async fn volume_list(a: &ListArgs) -> anyhow::Result<String> {
    let store = a.backend.open().await?;
    let filter = VolumeFilter {
        project: a.project.clone(),
        include_deleted: a.all,
        ..Default::default()
    };
    let records: Vec<VolumeRecord> = store
        .list_volumes(&filter, None, usize::MAX)
        .await?
        .into_iter()
        .filter(|v| keep(a, v.status.life.status))
        .collect();
    let header = [
        "ID",
        "Status",
        "Name",
        "Size",
        "Volume Type",
        "Project",
        "Node",
    ];
    list(a, &records, &header, |v| {
        vec![
            v.name.clone(),
            v.status.life.status.as_str().to_string(),
            v.spec.display_name.clone(),
            gib_ceil(v.spec.size_bytes).to_string(),
            v.spec.volume_type.clone(),
            v.spec.project.clone(),
            v.spec.node.clone(),
        ]
    })
}

/// Records as a table (`header`, a row each) or as JSON/YAML views.
pub(super) fn list<S: Serialize, T: Serialize>(
    a: &ListArgs,
    records: &[Record<S, T>],
    header: &[&str],
    row: impl Fn(&Record<S, T>) -> Vec<String>,
) -> anyhow::Result<String> {
    let views: Vec<_> = records
        .iter()
        .map(|r| View {
            id: &r.name,
            spec: &r.spec,
            status: &r.status,
        })
        .collect();
    emit(a.backend.output, &views, || {
        let rows: Vec<Vec<String>> = records.iter().map(&row).collect();
        table(header, &rows)
    })
}

/// The lifecycle rows both kinds show.
pub(super) fn life_rows<S: LifeState>(
    l: &crate::records::Lifecycle<S>,
) -> Vec<(&'static str, String)> {
    let ready = l.ready_condition();
    vec![
        ("status", l.status.as_str().to_string()),
        ("progress", l.progress.clone()),
        ("ready", format!("{} ({})", ready.status, ready.reason)),
        ("created_at", l.created_at.clone()),
        (
            "error_code",
            l.error_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
        ),
        ("error_message", opt(&l.error_message)),
        (
            "error_op",
            l.error_op
                .map(|o| o.as_str().to_string())
                .unwrap_or_else(|| "-".into()),
        ),
        ("error_at", opt(&l.error_at)),
        ("deleted", l.deleted.to_string()),
        ("deleted_at", opt(&l.deleted_at)),
    ]
}

pub(super) fn charged(c: &BTreeMap<String, i64>) -> String {
    let parts: Vec<String> = c.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

pub(super) async fn snapshot_show(a: &IdArgs) -> anyhow::Result<String> {
    let store = a.backend.open().await?;
    let Some(s) = store.get_snapshot(&a.id).await? else {
        anyhow::bail!("no snapshot with id {}", a.id);
    };
    let view = View {
        id: &s.name,
        spec: &s.spec,
        status: &s.status,
    };
    emit(a.backend.output, &view, || {
        let mut rows = vec![
            ("id", s.name.clone()),
            ("name", s.spec.display_name.clone()),
            ("csi_name", s.spec.csi_name.clone()),
            ("volume_id", s.spec.source_volume_id.clone()),
            ("project", s.spec.project.clone()),
            ("size", s.spec.volume_size.to_string()),
            ("size_bytes", s.status.size_bytes.to_string()),
            ("volume_type", s.spec.volume_type.clone()),
            ("node", s.spec.node.clone()),
            ("lv", format!("{}/{}", s.spec.vg, s.spec.lv_name)),
            (
                "cow_size_bytes",
                s.spec
                    .cow_size_bytes
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "- (thin)".into()),
            ),
            (
                "autoextend",
                match (s.spec.cow_size_bytes, s.spec.autoextend.unwrap_or_default()) {
                    (None, _) => "-".into(),
                    (Some(_), p) if !p.enabled() => "off".into(),
                    (Some(_), p) => format!("at {}% by {}%", p.threshold, p.percent),
                },
            ),
            ("ready_to_use", s.status.ready_to_use.to_string()),
            ("quota_charged", charged(&s.spec.quota_charged)),
        ];
        rows.extend(life_rows(&s.status.life));
        properties(&rows)
    })
}

pub(super) async fn volume_show(a: &IdArgs) -> anyhow::Result<String> {
    let store = a.backend.open().await?;
    let Some(v) = store.get_volume(&a.id).await? else {
        anyhow::bail!("no volume with id {}", a.id);
    };
    let view = View {
        id: &v.name,
        spec: &v.spec,
        status: &v.status,
    };
    emit(a.backend.output, &view, || {
        let mut rows = vec![
            ("id", v.name.clone()),
            ("name", v.spec.display_name.clone()),
            ("csi_name", v.spec.csi_name.clone()),
            ("project", v.spec.project.clone()),
            ("size", gib_ceil(v.spec.size_bytes).to_string()),
            ("size_bytes", v.spec.size_bytes.to_string()),
            ("volume_type", v.spec.volume_type.clone()),
            ("node", v.spec.node.clone()),
            ("device_class", opt(&v.spec.device_class)),
            ("lv", format!("{}/{}", v.spec.vg, v.spec.lv_name)),
            ("thin_pool", opt(&v.spec.thin_pool)),
            ("fs_type", opt(&v.spec.fs_type)),
            ("snapshot_id", opt(&v.spec.source_snapshot_id)),
            ("source_volid", opt(&v.spec.source_volume_id)),
            ("quota_charged", charged(&v.spec.quota_charged)),
        ];
        rows.extend(life_rows(&v.status.life));
        properties(&rows)
    })
}

/// One resource of a project's quota.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QuotaRow {
    in_use: i64,
    reserved: i64,
    limit: i64,
}

pub(super) async fn quota_show(backend: &Backend, project: &str) -> anyhow::Result<String> {
    let store = backend.open().await?;
    let quota = backend.quota(store)?;
    let (limits, status) = quota.show(project).await?;
    let keys: BTreeSet<&String> = limits.keys().chain(status.usage.keys()).collect();
    let usage: BTreeMap<String, QuotaRow> = keys
        .into_iter()
        .map(|k| {
            let u = status.usage.get(k).cloned().unwrap_or_default();
            let row = QuotaRow {
                in_use: u.in_use,
                reserved: u.reserved,
                limit: limits.get(k).copied().unwrap_or(-1),
            };
            (k.clone(), row)
        })
        .collect();
    #[derive(Serialize)]
    struct View<'a> {
        project: &'a str,
        usage: &'a BTreeMap<String, QuotaRow>,
    }
    emit(
        backend.output,
        &View {
            project,
            usage: &usage,
        },
        || {
            let rows: Vec<Vec<String>> = usage
                .iter()
                .map(|(k, u)| {
                    vec![
                        k.clone(),
                        u.in_use.to_string(),
                        u.reserved.to_string(),
                        u.limit.to_string(),
                    ]
                })
                .collect();
            table(&["Type", "In_use", "Reserved", "Limit"], &rows)
        },
    )
}
