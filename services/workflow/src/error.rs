//! One error type for the service, mapped to a gRPC status in one place.

use junheng_core::RuleError;
use junheng_store::StoreError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("invalid request")]
    Invalid(Vec<(String, String)>),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        AppError::Invalid(vec![(field.into(), reason.into())])
    }

    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        AppError::Internal(Box::new(e))
    }

    /// The status a caller sees. Internal causes are logged here, once, with their chain, and
    /// replaced by a generic message carrying the request id.
    pub fn into_status(self, request_id: &str) -> Status {
        match self {
            AppError::Invalid(violations) => {
                let summary = violations
                    .iter()
                    .map(|(f, r)| format!("{f}: {r}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                let mut details = ErrorDetails::new();
                for (f, r) in violations {
                    details.add_bad_request_violation(f, r);
                }
                Status::with_error_details(
                    Code::InvalidArgument,
                    format!("invalid request: {summary}"),
                    details,
                )
            }
            AppError::Unauthenticated(m) => Status::unauthenticated(m),
            AppError::PermissionDenied(m) => Status::permission_denied(m),
            AppError::NotFound(m) => Status::not_found(m),
            AppError::AlreadyExists(m) => Status::already_exists(m),
            AppError::Aborted(m) => Status::aborted(m),
            AppError::FailedPrecondition(m) => Status::failed_precondition(m),
            AppError::Internal(e) => {
                let mut chain = e.to_string();
                let mut src = e.source();
                while let Some(s) = src {
                    chain.push_str(": ");
                    chain.push_str(&s.to_string());
                    src = s.source();
                }
                tracing::error!(request.id = request_id, error = %chain, "internal error");
                Status::internal(format!("internal error (request id {request_id})"))
            }
        }
    }
}

impl From<RuleError> for AppError {
    fn from(e: RuleError) -> Self {
        match e {
            RuleError::Invalid(v) => AppError::Invalid(v),
            e if e.is_permission() => AppError::PermissionDenied(e.to_string()),
            e => AppError::FailedPrecondition(e.to_string()),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => AppError::NotFound(e.to_string()),
            StoreError::VersionConflict { expected, current } => AppError::Aborted(format!(
                "version conflict: the school case is at version {current}, the request expected {expected}; re-read and retry"
            )),
            StoreError::Conflict(m) => AppError::AlreadyExists(m),
            StoreError::Sqlx(e) => AppError::internal(e),
            StoreError::Corrupt(m) => AppError::Internal(m.into()),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::internal(e)
    }
}
