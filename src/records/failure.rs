//! A stored failure is a typed code, never a string (TopoLVM keeps a
//! `codes.Code` on its LogicalVolume status for the same reason). Serialised
//! as the gRPC code names records always carried (`RESOURCE_EXHAUSTED`, …),
//! so stored records stay readable; the CRD schema lists them as an enum.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why an operation on a record failed: the gRPC code the CO is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureCode {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    /// No room in the volume group or thin pool (or over quota).
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unavailable,
    Internal,
}

impl FailureCode {
    pub const ALL: [FailureCode; 9] = [
        Self::InvalidArgument,
        Self::NotFound,
        Self::AlreadyExists,
        Self::ResourceExhausted,
        Self::FailedPrecondition,
        Self::Aborted,
        Self::OutOfRange,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The stored (and gRPC) name, e.g. `RESOURCE_EXHAUSTED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::NotFound => "NOT_FOUND",
            Self::AlreadyExists => "ALREADY_EXISTS",
            Self::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Self::FailedPrecondition => "FAILED_PRECONDITION",
            Self::Aborted => "ABORTED",
            Self::OutOfRange => "OUT_OF_RANGE",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }
}

impl std::fmt::Display for FailureCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which operation a recorded failure interrupted. A failed `create` was
/// never handed to the CO as a success, so lvsnap may release it itself
/// once nobody asks for it again (DESIGN §9); the others may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Create,
    Delete,
    Extend,
    /// The node's own check (the LV vanished, the snapshot was invalidated).
    Check,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Delete => "delete",
            Self::Extend => "extend",
            Self::Check => "check",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_keep_their_stored_names() {
        for code in FailureCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: FailureCode = serde_json::from_str(&json).unwrap();
            assert_eq!(back, code);
        }
        assert!(serde_json::from_str::<FailureCode>("\"resource_exhausted\"").is_err());
        assert_eq!(
            serde_json::to_string(&Operation::Create).unwrap(),
            "\"create\""
        );
    }
}
