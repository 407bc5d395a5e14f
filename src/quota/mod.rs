//! Cinder's quota engine, per project (a Kubernetes namespace): limits,
//! reservations with expiry, commit and rollback, per-type keys, refresh.
//! [`arith`] is the pure arithmetic; [`engine`] runs it as one atomic
//! read-modify-write of the project's quota record.
pub mod arith;
mod charge;
mod config;
mod engine;
mod release;

pub use charge::ChargeError;
pub use config::{QuotaConfig, parse_duration};
pub use engine::{Clock, QuotaEngine, system_clock};

/// Resource names Cinder knows (per-type keys are `<resource>_<type>`).
pub const RESOURCES: [&str; 3] = ["snapshots", "gigabytes", "volumes"];

/// Quota failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    /// Over a limit, with Cinder's message.
    #[error("{0}")]
    OverQuota(String),
    #[error("invalid quota request: {0}")]
    Invalid(String),
    #[error("quota store: {0}")]
    Store(String),
}

/// Checks a quota key: a resource, or a resource with `_<type>`.
pub fn validate_key(key: &str) -> Result<(), QuotaError> {
    for r in RESOURCES {
        if key == r {
            return Ok(());
        }
        if let Some(t) = key.strip_prefix(r).and_then(|rest| rest.strip_prefix('_'))
            && !t.is_empty()
            && t.len() <= 63
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Ok(());
        }
    }
    Err(QuotaError::Invalid(format!(
        "unknown quota key {key:?} (use snapshots, gigabytes, volumes, or <resource>_<type>)"
    )))
}

/// The key a record's quota release is remembered by until the record is
/// marked deleted (see [`QuotaEngine::release_once`]).
pub fn release_key(kind: crate::store::Kind, id: &str) -> String {
    format!("{}/{id}", kind.as_str())
}

/// Bytes to GiB, rounded up, as Cinder sizes are.
pub fn gib_ceil(bytes: i64) -> i64 {
    const GIB: i64 = 1 << 30;
    if bytes <= 0 { 0 } else { (bytes - 1) / GIB + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in [
            "snapshots",
            "gigabytes",
            "volumes",
            "snapshots_fast",
            "gigabytes_vg0",
            "volumes_a.b-c",
        ] {
            assert!(validate_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "backups",
            "snapshots_",
            "snapshotsfast",
            "gigabytes_a b",
            "Volumes",
        ] {
            assert!(validate_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gib() {
        assert_eq!(gib_ceil(0), 0);
        assert_eq!(gib_ceil(1), 1);
        assert_eq!(gib_ceil(1 << 30), 1);
        assert_eq!(gib_ceil((1 << 30) + 1), 2);
        assert_eq!(gib_ceil(-5), 0);
    }
}
