//! Quota configuration, parsed from the controller's flags.
use std::collections::BTreeMap;
use std::time::Duration;

use super::{QuotaError, validate_key};

/// Limits and options (Cinder's `quota_*`, `no_snapshot_gb_quota`,
/// `reservation_expire`, `until_refresh`, `max_age`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaConfig {
    /// Default limits; keys absent here default to -1 (unlimited) for
    /// per-type keys and to Cinder's defaults for the base resources.
    pub defaults: BTreeMap<String, i64>,
    pub no_snapshot_gb_quota: bool,
    pub reservation_expire: Duration,
    /// Recount usage after this many reservations (None: never).
    pub until_refresh: Option<i64>,
    /// Recount usage when it is older than this (None: never).
    pub max_age: Option<Duration>,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            defaults: [("snapshots", 10), ("gigabytes", 1000), ("volumes", 10)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            no_snapshot_gb_quota: false,
            reservation_expire: Duration::from_secs(86_400),
            until_refresh: None,
            max_age: None,
        }
    }
}

impl QuotaConfig {
    /// Parses `snapshots=10,gigabytes=1000,volumes=10,snapshots_fast=2` on
    /// top of Cinder's defaults.
    pub fn parse_defaults(raw: &str) -> Result<BTreeMap<String, i64>, QuotaError> {
        let mut out = QuotaConfig::default().defaults;
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| QuotaError::Invalid(format!("{part:?} is not key=value")))?;
            let k = k.trim();
            validate_key(k)?;
            let v: i64 = v
                .trim()
                .parse()
                .map_err(|_| QuotaError::Invalid(format!("{k}={v:?}: not an integer")))?;
            out.insert(k.to_string(), v);
        }
        Ok(out)
    }

    /// The configured default for `key`.
    pub fn default_limit(&self, key: &str) -> i64 {
        self.defaults.get(key).copied().unwrap_or(-1)
    }
}

/// Parses `86400s`, `24h`, `30m`, `7d`, or plain seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let s = raw.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        Some((i, 'd')) => (&s[..i], 86_400),
        _ => (s, 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration (e.g. 86400s, 30m, 24h, 7d)"))?;
    n.checked_mul(mult)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{raw:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_on_top_of_cinders() {
        let d = QuotaConfig::parse_defaults("snapshots=2, gigabytes_fast=5").unwrap();
        assert_eq!(d["snapshots"], 2);
        assert_eq!(d["gigabytes"], 1000);
        assert_eq!(d["volumes"], 10);
        assert_eq!(d["gigabytes_fast"], 5);
        for bad in ["snapshots", "snapshots=x", "backups=1", "snapshots=1.5"] {
            assert!(QuotaConfig::parse_defaults(bad).is_err(), "{bad}");
        }
        let c = QuotaConfig::default();
        assert_eq!(c.default_limit("snapshots_fast"), -1);
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("86400s").unwrap(),
            Duration::from_secs(86400)
        );
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86400)
        );
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        for bad in ["", "s", "-1s", "1w", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
