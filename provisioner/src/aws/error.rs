//! What EC2 calls fail with, sorted into what a caller can act on: throttling
//! and capacity errors are retried, spot capacity errors fall back to
//! on-demand, everything else is reported.

use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Error codes EC2 throttles with.
const THROTTLING: &[&str] = &["RequestLimitExceeded", "Throttling", "ThrottlingException"];
/// Error codes saying there is no capacity for the request right now.
const CAPACITY: &[&str] = &[
    "InsufficientInstanceCapacity",
    "InsufficientCapacity",
    "InsufficientHostCapacity",
    "InsufficientReservedInstanceCapacity",
    "InstanceLimitExceeded",
    "VcpuLimitExceeded",
];
/// Error codes only spot requests get; on-demand may still work.
const SPOT_CAPACITY: &[&str] = &[
    "MaxSpotInstanceCountExceeded",
    "SpotMaxPriceTooLow",
    "InsufficientSpotCapacity",
    "UnfulfillableCapacity",
];
/// Error codes of instances that are already gone.
const NOT_FOUND: &[&str] = &["InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"];

/// A failed EC2 operation.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// EC2 answered with an error code.
    #[error("{operation}: {code}: {message}")]
    Api {
        /// The EC2 action.
        operation: &'static str,
        /// EC2's error code (`InsufficientInstanceCapacity`).
        code: String,
        /// EC2's message.
        message: String,
    },
    /// No answer: connection, credentials, timeouts.
    #[error("{operation}: {message}")]
    Transport {
        /// The EC2 action.
        operation: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The request cannot work as written (no instance types, no AMI).
    #[error("invalid EC2 launch settings: {0}")]
    Invalid(String),
}

impl AwsError {
    /// Wraps an SDK error of `operation`.
    pub(crate) fn from_sdk<E, R>(operation: &'static str, error: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        match error.code() {
            Some(code) => AwsError::Api {
                operation,
                code: code.to_owned(),
                message: error.message().unwrap_or_default().to_owned(),
            },
            None => AwsError::Transport {
                operation,
                message: DisplayErrorContext(&error).to_string(),
            },
        }
    }

    fn code(&self) -> Option<&str> {
        match self {
            AwsError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// EC2 asked us to slow down.
    pub fn is_throttling(&self) -> bool {
        self.code().is_some_and(|c| THROTTLING.contains(&c))
    }

    /// No capacity for this instance type right now, spot or not.
    pub fn is_capacity(&self) -> bool {
        self.code().is_some_and(|c| CAPACITY.contains(&c)) || self.is_spot_capacity()
    }

    /// No spot capacity (or price): on-demand may still work.
    pub fn is_spot_capacity(&self) -> bool {
        self.code().is_some_and(|c| SPOT_CAPACITY.contains(&c))
    }

    /// The instance does not exist (any more).
    pub fn is_not_found(&self) -> bool {
        self.code().is_some_and(|c| NOT_FOUND.contains(&c))
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            AwsError::Api { .. } => self.is_throttling() || self.is_capacity(),
            AwsError::Transport { .. } => true,
            AwsError::Invalid(_) => false,
        }
    }
}
