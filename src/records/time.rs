//! The timestamps records carry.
use chrono::{DateTime, Utc};

/// Now, RFC 3339 with nanoseconds: every timestamp a record carries.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Parses a record timestamp; `None` when absent or malformed.
pub fn parse_time(t: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
