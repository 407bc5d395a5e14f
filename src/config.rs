//! Validated configuration: what the command line parsed, checked once, in
//! domain types. Nothing here talks to the network or to LVM.
use std::path::{Path, PathBuf};

/// The driver's default CSI name.
pub const DEFAULT_DRIVER_NAME: &str = "lvsnap.io";

/// Which services a process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Controller,
    Node,
    AllInOne,
}

impl Mode {
    pub fn serves_controller(self) -> bool {
        matches!(self, Mode::Controller | Mode::AllInOne)
    }
    pub fn serves_node(self) -> bool {
        matches!(self, Mode::Node | Mode::AllInOne)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Controller => "controller",
            Mode::Node => "node",
            Mode::AllInOne => "all-in-one",
        }
    }
}

/// A configuration error: names the flag at fault, printed as one line.
#[derive(Debug, thiserror::Error)]
#[error("--{flag}: {message}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn new(flag: &'static str, message: impl Into<String>) -> Self {
        Self {
            flag,
            message: message.into(),
        }
    }
}

/// A CSI endpoint: only Unix domain sockets are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub path: PathBuf,
}

impl Endpoint {
    /// Parses `unix:///abs/path.sock` (or `unix:/abs/path.sock`).
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let rest = raw
            .strip_prefix("unix://")
            .or_else(|| raw.strip_prefix("unix:"));
        let Some(rest) = rest else {
            return Err(ConfigError::new(
                "endpoint",
                format!("{raw:?} is not a unix:// endpoint (only Unix sockets are served)"),
            ));
        };
        if rest.is_empty() || !rest.starts_with('/') {
            return Err(ConfigError::new(
                "endpoint",
                format!(
                    "{raw:?} must name an absolute socket path, e.g. unix:///run/lvsnap/csi.sock"
                ),
            ));
        }
        if rest.contains('\0') {
            return Err(ConfigError::new("endpoint", "path contains a NUL byte"));
        }
        Ok(Self {
            path: PathBuf::from(rest),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Checks a node id: non-empty, at most 128 bytes, printable, usable as a
/// Kubernetes label value once hashed or as-is when it is a DNS-1123 name.
pub fn validate_node_id(raw: &str) -> Result<String, ConfigError> {
    let id = raw.trim();
    if id.is_empty() {
        return Err(ConfigError::new(
            "node-id",
            "is required and must not be empty",
        ));
    }
    if id.len() > 128 {
        return Err(ConfigError::new("node-id", "must be at most 128 bytes"));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(ConfigError::new(
            "node-id",
            format!("{id:?} may only contain ASCII letters, digits, '-', '.' and '_'"),
        ));
    }
    Ok(id.to_string())
}

/// Checks a volume group name against LVM's rules before any command sees it.
pub fn validate_vg_name(raw: &str) -> Result<String, ConfigError> {
    let vg = raw.trim();
    if vg.is_empty() {
        return Err(ConfigError::new("vg", "is required and must not be empty"));
    }
    if vg.len() > 127 {
        return Err(ConfigError::new("vg", "must be at most 127 characters"));
    }
    if vg == "." || vg == ".." || vg.starts_with('-') {
        return Err(ConfigError::new(
            "vg",
            format!("{vg:?} is not a valid volume group name"),
        ));
    }
    if !vg
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
    {
        return Err(ConfigError::new(
            "vg",
            format!("{vg:?} may only contain a-z A-Z 0-9 + _ . -"),
        ));
    }
    Ok(vg.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_accepts_unix_paths_only() {
        assert_eq!(
            Endpoint::parse("unix:///run/x.sock").unwrap().path,
            PathBuf::from("/run/x.sock")
        );
        assert_eq!(
            Endpoint::parse("unix:/run/x.sock").unwrap().path,
            PathBuf::from("/run/x.sock")
        );
        for bad in [
            "tcp://127.0.0.1:10000",
            "/run/x.sock",
            "unix://",
            "unix://relative.sock",
            "",
        ] {
            let err = Endpoint::parse(bad).unwrap_err();
            assert_eq!(err.flag, "endpoint", "{bad}");
        }
    }

    #[test]
    fn node_id_rules() {
        assert_eq!(validate_node_id(" node-1 ").unwrap(), "node-1");
        for bad in ["", "  ", "a b", "a;b", "é", &"x".repeat(129)] {
            assert!(validate_node_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn vg_name_rules() {
        assert_eq!(validate_vg_name("vg0").unwrap(), "vg0");
        for bad in [
            "",
            "..",
            ".",
            "-vg",
            "vg 0",
            "vg/0",
            "vg$(x)",
            &"v".repeat(128),
        ] {
            assert!(validate_vg_name(bad).is_err(), "{bad:?}");
        }
    }
}
