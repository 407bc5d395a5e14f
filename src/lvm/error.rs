//! The LVM layer's typed errors and the classification of a failed command
//! from its stderr (commands run with `LC_ALL=C`, so the texts are stable).
use std::fmt;

use super::names::NameError;

/// What kind of failure, for callers that map errors onto CSI codes and for
/// the retry rule (only [`ErrorKind::Busy`] and [`ErrorKind::Other`] are
/// retried).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A name, tag or size refused before any command was built.
    InvalidArgument,
    /// The VG or LV (or a snapshot's origin) does not exist.
    NotFound,
    /// An LV of that name exists (and is not the one asked for).
    AlreadyExists,
    /// Not enough free space in the VG.
    InsufficientSpace,
    /// The LV is open or has dependants (a thick origin with snapshots).
    Busy,
    /// Anything else: timeouts, lock contention, unparsable output, …
    Other,
}

impl ErrorKind {
    /// A metric label: `not_found`, `insufficient_space`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid_argument",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::InsufficientSpace => "insufficient_space",
            Self::Busy => "busy",
            Self::Other => "other",
        }
    }

    /// Whether an operation failing this way is worth another attempt.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Busy | Self::Other)
    }
}

/// A command that ran (or was started) and failed: what a person needs to
/// reproduce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandFailure {
    /// The full argv, command prefix included.
    pub argv: Vec<String>,
    /// `None` when the command was killed (timeout) or could not start.
    pub exit_code: Option<i32>,
    /// Trimmed stderr, or the runner's own error when there is no stderr.
    pub stderr: String,
}

impl CommandFailure {
    /// The argv joined by spaces (for messages only; nothing ever runs it).
    pub fn command(&self) -> String {
        self.argv.join(" ")
    }
}

impl fmt::Display for CommandFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` ", self.command())?;
        match self.exit_code {
            Some(code) => write!(f, "exited with code {code}")?,
            None => f.write_str("did not exit")?,
        }
        if !self.stderr.is_empty() {
            write!(f, ": {}", self.stderr.replace('\n', " | "))?;
        }
        Ok(())
    }
}

/// An error of the LVM layer. Every variant but `InvalidName` may carry the
/// failed command; `kind()` says which class it is.
#[derive(Debug, thiserror::Error)]
pub enum LvmError {
    #[error(transparent)]
    InvalidName(#[from] NameError),
    #[error("{message}")]
    InvalidArgument { message: String },
    #[error("{message}{}", suffix(.failure))]
    NotFound {
        message: String,
        failure: Option<CommandFailure>,
    },
    #[error("{message}{}", suffix(.failure))]
    AlreadyExists {
        message: String,
        failure: Option<CommandFailure>,
    },
    #[error("{message}{}", suffix(.failure))]
    InsufficientSpace {
        message: String,
        failure: Option<CommandFailure>,
    },
    #[error("{message}{}", suffix(.failure))]
    Busy {
        message: String,
        failure: Option<CommandFailure>,
    },
    #[error("{message}{}", suffix(.failure))]
    Other {
        message: String,
        failure: Option<CommandFailure>,
    },
}

fn suffix(failure: &Option<CommandFailure>) -> String {
    failure
        .as_ref()
        .map(|f| format!(": {f}"))
        .unwrap_or_default()
}

impl LvmError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidName(_) | Self::InvalidArgument { .. } => ErrorKind::InvalidArgument,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Self::InsufficientSpace { .. } => ErrorKind::InsufficientSpace,
            Self::Busy { .. } => ErrorKind::Busy,
            Self::Other { .. } => ErrorKind::Other,
        }
    }

    /// The failed command, when the error came from one.
    pub fn failure(&self) -> Option<&CommandFailure> {
        match self {
            Self::NotFound { failure, .. }
            | Self::AlreadyExists { failure, .. }
            | Self::InsufficientSpace { failure, .. }
            | Self::Busy { failure, .. }
            | Self::Other { failure, .. } => failure.as_ref(),
            Self::InvalidName(_) | Self::InvalidArgument { .. } => None,
        }
    }

    /// An error of `kind` with no command behind it (a check made before
    /// running anything).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::with_failure(kind, message, None)
    }

    /// A failed command, classified from its stderr.
    pub fn from_failure(message: impl Into<String>, failure: CommandFailure) -> Self {
        let kind = classify(&failure.stderr);
        Self::with_failure(kind, message, Some(failure))
    }

    /// An error of `kind`, with the command behind it if any.
    pub fn with_failure(
        kind: ErrorKind,
        message: impl Into<String>,
        failure: Option<CommandFailure>,
    ) -> Self {
        let message = message.into();
        match kind {
            ErrorKind::InvalidArgument => Self::InvalidArgument { message },
            ErrorKind::NotFound => Self::NotFound { message, failure },
            ErrorKind::AlreadyExists => Self::AlreadyExists { message, failure },
            ErrorKind::InsufficientSpace => Self::InsufficientSpace { message, failure },
            ErrorKind::Busy => Self::Busy { message, failure },
            ErrorKind::Other => Self::Other { message, failure },
        }
    }
}

/// Classifies a failed LVM command by its stderr. `WARNING:` lines are
/// ignored (a missing PV warns "… not found" on commands that fail for other
/// reasons). The first matching class in the order below wins.
pub fn classify(stderr: &str) -> ErrorKind {
    let lines: Vec<String> = stderr
        .lines()
        .map(|l| l.trim().to_ascii_lowercase())
        .filter(|l| !l.is_empty() && !l.starts_with("warning:"))
        .collect();
    let any = |needles: &[&str]| lines.iter().any(|l| needles.iter().any(|n| l.contains(n)));
    if any(&["already exists"]) {
        ErrorKind::AlreadyExists
    } else if any(&[
        "insufficient free space",
        "insufficient suitable",
        "insufficient allocatable",
        "not enough free",
        "maximum number of logical volumes",
    ]) {
        ErrorKind::InsufficientSpace
    } else if any(&["not found", "failed to find", "no such device"]) {
        ErrorKind::NotFound
    } else if any(&[" in use", "busy", "can't remove open", "is open"]) {
        ErrorKind::Busy
    } else {
        ErrorKind::Other
    }
}
