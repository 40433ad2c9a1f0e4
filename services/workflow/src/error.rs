//! One error type for the service. What a rule refusal or a store error means to a caller is
//! decided here; the gRPC status itself comes from the shared map in `junheng_edge::status`.

use junheng_core::RuleError;
use junheng_edge::clock::ClockError;
use junheng_edge::status::ApiError;
use junheng_store::StoreError;
use tonic::Status;

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
    /// A limit was reached (per caller or per server): retry after the wait.
    #[error("{message}")]
    ResourceExhausted {
        message: String,
        retry_after: std::time::Duration,
    },
    /// The database could not be reached: `UNAVAILABLE`, worth retrying.
    #[error("unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
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

    /// The status a caller sees, through the one map in `junheng_edge::status`.
    pub fn into_status(self, request_id: &str) -> Status {
        ApiError::from(self).into_status(request_id)
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Invalid(v) => ApiError::Invalid(v),
            AppError::Unauthenticated(m) => ApiError::Unauthenticated(m),
            AppError::PermissionDenied(m) => ApiError::PermissionDenied(m),
            AppError::NotFound(m) => ApiError::NotFound(m),
            AppError::AlreadyExists(m) => ApiError::AlreadyExists(m),
            AppError::Aborted(m) => ApiError::Aborted(m),
            AppError::FailedPrecondition(m) => ApiError::FailedPrecondition(m),
            AppError::ResourceExhausted {
                message,
                retry_after,
            } => ApiError::ResourceExhausted {
                message,
                retry_after,
            },
            AppError::Unavailable(e) => ApiError::Unavailable(e),
            AppError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<ApiError> for AppError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Invalid(v) => AppError::Invalid(v),
            ApiError::Unauthenticated(m) => AppError::Unauthenticated(m),
            ApiError::PermissionDenied(m) => AppError::PermissionDenied(m),
            ApiError::NotFound(m) => AppError::NotFound(m),
            ApiError::AlreadyExists(m) => AppError::AlreadyExists(m),
            ApiError::Aborted(m) => AppError::Aborted(m),
            ApiError::FailedPrecondition(m) => AppError::FailedPrecondition(m),
            ApiError::ResourceExhausted {
                message,
                retry_after,
            } => AppError::ResourceExhausted {
                message,
                retry_after,
            },
            ApiError::Unavailable(e) => AppError::Unavailable(e),
            ApiError::Internal(e) => AppError::Internal(e),
        }
    }
}

impl From<ClockError> for AppError {
    fn from(e: ClockError) -> Self {
        match e {
            ClockError::NotSet => AppError::FailedPrecondition(e.to_string()),
            ClockError::Store(e) => e.into(),
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
            StoreError::Sqlx(e) => e.into(),
            StoreError::Corrupt(m) => AppError::Internal(m.into()),
        }
    }
}

impl From<sqlx::Error> for AppError {
    /// A database outage is `Unavailable` (the caller may retry), anything else `Internal`.
    fn from(e: sqlx::Error) -> Self {
        if junheng_store::is_unavailable(&e) {
            AppError::Unavailable(Box::new(e))
        } else {
            AppError::internal(e)
        }
    }
}
