//! What ELBv2 calls fail with, sorted into the provider's errors: throttling
//! and anything without an answer are transient (the controller backs off);
//! subnets that do not exist are the Service's to fix; a resource already
//! gone is success for whoever was deleting it.

use aws_sdk_elasticloadbalancingv2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::provider::ProviderError;

/// Codes of resources that no longer exist.
const GONE: &[&str] = &[
    "LoadBalancerNotFound",
    "TargetGroupNotFound",
    "ListenerNotFound",
    "InvalidTarget",
];
/// Codes only a change of the Service's annotations can fix.
const INVALID: &[&str] = &["SubnetNotFound", "InvalidSubnet", "InvalidScheme"];

/// A failed ELBv2 call.
#[derive(Debug)]
pub struct Failure {
    /// The ELBv2 action.
    pub operation: &'static str,
    /// Its error code, None when no answer came.
    pub code: Option<String>,
    /// What went wrong.
    pub message: String,
}

impl Failure {
    /// Wraps an SDK error of `operation`.
    pub fn from_sdk<E, R>(operation: &'static str, error: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        Failure {
            operation,
            code: error.code().map(str::to_owned),
            message: match error.message() {
                Some(message) => message.to_owned(),
                None => DisplayErrorContext(&error).to_string(),
            },
        }
    }

    /// A request the SDK refused to build (a required field missing).
    pub fn build(operation: &'static str, error: impl std::fmt::Display) -> Self {
        Failure {
            operation,
            code: None,
            message: error.to_string(),
        }
    }

    /// Whether the resource acted on is already gone.
    pub fn is_gone(&self) -> bool {
        self.code.as_deref().is_some_and(|c| GONE.contains(&c))
    }

    /// The provider error of this failure for the Service `service`.
    pub fn for_service(self, service: &str) -> ProviderError {
        match self.code.as_deref() {
            Some(code) if INVALID.contains(&code) => ProviderError::Invalid {
                service: service.to_owned(),
                reason: format!("{}: {code}: {}", self.operation, self.message),
            },
            _ => self.into(),
        }
    }
}

impl From<Failure> for ProviderError {
    fn from(failure: Failure) -> Self {
        let reason = match failure.code {
            Some(code) => format!("{code}: {}", failure.message),
            None => failure.message,
        };
        ProviderError::Transient {
            operation: failure.operation,
            reason,
        }
    }
}

/// Ok when `result` failed only because its resource is gone.
pub fn ignore_gone(result: Result<(), Failure>) -> Result<(), Failure> {
    match result {
        Err(failure) if failure.is_gone() => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: Option<&str>) -> Failure {
        Failure {
            operation: "CreateLoadBalancer",
            code: code.map(str::to_owned),
            message: "no".into(),
        }
    }

    #[test]
    fn throttling_and_silence_are_transient_bad_subnets_invalid() {
        for code in [Some("Throttling"), None, Some("InternalFailure")] {
            assert!(matches!(
                failure(code).for_service("shop/web"),
                ProviderError::Transient { .. }
            ));
        }
        assert!(matches!(
            failure(Some("SubnetNotFound")).for_service("shop/web"),
            ProviderError::Invalid { .. }
        ));
        assert!(ignore_gone(Err(failure(Some("TargetGroupNotFound")))).is_ok());
        assert!(ignore_gone(Err(failure(Some("Throttling")))).is_err());
    }
}
