//! The resources the fake serves, and how each behaves: its scope, whether
//! it has a status subresource, whether `spec` is required.
//!
//! | resource | scope | status subresource |
//! | --- | --- | --- |
//! | lvsnap.io CRDs (from `records::crds()`) | as in the CRD | as in the CRD (all have one) |
//! | `nodes` (core v1) | cluster | yes |
//! | `persistentvolumeclaims` (core v1) | namespaced | yes |
//! | `events` (core v1, events.k8s.io/v1) | namespaced | no |
//! | `leases.coordination.k8s.io/v1` | namespaced | no |
//! | `volumesnapshots.snapshot.storage.k8s.io/v1` | namespaced | yes |
//! | `volumesnapshotcontents.snapshot.storage.k8s.io/v1` | cluster | yes |
//! | `volumesnapshotclasses.snapshot.storage.k8s.io/v1` | cluster | no |
//!
//! With a status subresource, a create drops `status`, a write of the
//! object keeps the stored status, and a write of `/status` changes only
//! the status. Without one, a write replaces the whole object. Anything
//! else answers 404 until registered (`FakeApiServer::register`,
//! `register_crd`), as a real cluster without the CRD would.
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// One resource the fake serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// The API group; empty for the core group.
    pub group: String,
    pub version: String,
    pub plural: String,
    pub kind: String,
    pub namespaced: bool,
    /// Whether `/status` is a subresource (see the module docs).
    pub status_subresource: bool,
    /// Whether a create or update without `spec` is refused (422).
    pub spec_required: bool,
    /// A CustomResource: strategic merge patch is refused (415), as the
    /// real server refuses it for custom resources.
    pub custom: bool,
}

impl ResourceInfo {
    /// A built-in (non-custom) resource without required spec.
    pub fn builtin(
        group: &str,
        version: &str,
        plural: &str,
        kind: &str,
        namespaced: bool,
        status_subresource: bool,
    ) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            kind: kind.into(),
            namespaced,
            status_subresource,
            spec_required: false,
            custom: false,
        }
    }

    /// The resource a CRD defines, at its storage version.
    pub fn from_crd(crd: &CustomResourceDefinition) -> Option<Self> {
        let spec = &crd.spec;
        let version = spec
            .versions
            .iter()
            .find(|v| v.storage)
            .or(spec.versions.first())?;
        let required = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .and_then(|s| s.required.as_ref())
            .is_some_and(|r| r.iter().any(|f| f == "spec"));
        Some(Self {
            group: spec.group.clone(),
            version: version.name.clone(),
            plural: spec.names.plural.clone(),
            kind: spec.names.kind.clone(),
            namespaced: spec.scope == "Namespaced",
            status_subresource: version
                .subresources
                .as_ref()
                .is_some_and(|s| s.status.is_some()),
            spec_required: required,
            custom: true,
        })
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` (`plural` for the core group), as in the server's messages.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The URL path of the collection (in `namespace` if given).
    pub fn path(&self, namespace: Option<&str>) -> String {
        let root = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace {
            Some(ns) => format!("{root}/namespaces/{ns}/{}", self.plural),
            None => format!("{root}/{}", self.plural),
        }
    }
}

/// What a fresh server serves (see the module docs).
pub(super) fn defaults() -> Vec<ResourceInfo> {
    let b = ResourceInfo::builtin;
    let snapshot = |plural: &str, kind: &str, namespaced: bool, status: bool| ResourceInfo {
        spec_required: status,
        custom: true,
        ..b(
            "snapshot.storage.k8s.io",
            "v1",
            plural,
            kind,
            namespaced,
            status,
        )
    };
    let mut all = vec![
        b("", "v1", "nodes", "Node", false, true),
        b(
            "",
            "v1",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            true,
            true,
        ),
        b("", "v1", "events", "Event", true, false),
        b("events.k8s.io", "v1", "events", "Event", true, false),
        b("coordination.k8s.io", "v1", "leases", "Lease", true, false),
        snapshot("volumesnapshots", "VolumeSnapshot", true, true),
        snapshot(
            "volumesnapshotcontents",
            "VolumeSnapshotContent",
            false,
            true,
        ),
        snapshot("volumesnapshotclasses", "VolumeSnapshotClass", false, false),
    ];
    all.extend(
        crate::records::crds()
            .iter()
            .filter_map(ResourceInfo::from_crd),
    );
    all
}

/// Finds the resource a path names (group, version and plural must match).
pub(super) fn find<'a>(
    all: &'a [ResourceInfo],
    group: &str,
    version: &str,
    plural: &str,
) -> Option<&'a ResourceInfo> {
    all.iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Finds the resource of an object's `apiVersion` and `kind`.
pub(super) fn find_kind<'a>(
    all: &'a [ResourceInfo],
    api_version: &str,
    kind: &str,
) -> Option<&'a ResourceInfo> {
    all.iter()
        .find(|r| r.api_version() == api_version && r.kind == kind)
}

/// Resolves `plural.group` or a bare plural, as kubectl does: a bare
/// plural means the core group's if it has one, else the one group that
/// has it; an ambiguous or unknown name is an error.
pub(super) fn resolve<'a>(all: &'a [ResourceInfo], name: &str) -> Result<&'a ResourceInfo, String> {
    if let Some((plural, group)) = name.split_once('.') {
        return all
            .iter()
            .find(|r| r.plural == plural && r.group == group)
            .ok_or_else(|| format!("no resource {name:?} is registered"));
    }
    if let Some(core) = all.iter().find(|r| r.plural == name && r.group.is_empty()) {
        return Ok(core);
    }
    let mut matching = all.iter().filter(|r| r.plural == name);
    match (matching.next(), matching.next()) {
        (Some(r), None) => Ok(r),
        (Some(a), Some(b)) => Err(format!(
            "{name:?} is ambiguous ({} and {}); say plural.group",
            a.group_resource(),
            b.group_resource()
        )),
        (None, _) => Err(format!("no resource {name:?} is registered")),
    }
}
