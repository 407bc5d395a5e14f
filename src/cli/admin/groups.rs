//! The group snapshot views: `group-snapshot-list` prints what
//! `cinder group-snapshot-list` prints (ID | Status | Name), and
//! `group-snapshot-show` one group with its members and how they were cut.
use super::render::{emit, properties};
use super::views::{View, charged, keep, life_rows, list};
use super::{IdArgs, ListArgs};
use crate::store::{GroupSnapshotFilter, GroupSnapshotRecord};

pub(super) async fn group_snapshot_list(a: &ListArgs) -> anyhow::Result<String> {
    let store = a.backend.open().await?;
    let filter = GroupSnapshotFilter {
        project: a.project.clone(),
        include_deleted: a.all,
        ..Default::default()
    };
    let records: Vec<GroupSnapshotRecord> = store
        .list_group_snapshots(&filter, None, usize::MAX)
        .await?
        .into_iter()
        .filter(|g| keep(a, g.status.life.status))
        .collect();
    list(a, &records, &["ID", "Status", "Name"], |g| {
        vec![
            g.name.clone(),
            g.status.life.status.as_str().to_string(),
            g.spec.display_name.clone(),
        ]
    })
}

pub(super) async fn group_snapshot_show(a: &IdArgs) -> anyhow::Result<String> {
    let store = a.backend.open().await?;
    let Some(g) = store.get_group_snapshot(&a.id).await? else {
        anyhow::bail!("no group snapshot with id {}", a.id);
    };
    let view = View {
        id: &g.name,
        spec: &g.spec,
        status: &g.status,
    };
    emit(a.backend.output, &view, || {
        let mut rows = vec![
            ("id", g.name.clone()),
            ("name", g.spec.display_name.clone()),
            ("csi_name", g.spec.csi_name.clone()),
            ("project", g.spec.project.clone()),
            ("node", g.spec.node.clone()),
            ("volume_ids", g.spec.source_volume_ids.join(", ")),
            ("snapshot_ids", g.spec.snapshot_ids.join(", ")),
            ("consistency", g.spec.consistency.as_str().to_string()),
            (
                "frozen_ms",
                g.status
                    .frozen_millis
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| "-".into()),
            ),
            ("ready_to_use", g.status.ready_to_use.to_string()),
            ("quota_charged", charged(&g.spec.quota_charged)),
        ];
        rows.extend(life_rows(&g.status.life));
        properties(&rows)
    })
}
