//! The one map from an edge failure to a gRPC [`Status`]. Each service turns its own errors
//! into an [`ApiError`] (the workflow's rule refusals, the scheduler's outbox errors) and this
//! module decides the code, the message and the `BadRequest` details.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// What a caller can be told, by gRPC code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// One `(field, reason)` per problem; becomes `InvalidArgument` with a `BadRequest` detail.
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
    /// Logged with its cause chain, shown as a generic message with the request id.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::Invalid(vec![(field.into(), reason.into())])
    }

    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        ApiError::Internal(Box::new(e))
    }

    /// The status a caller sees. Internal causes are logged here, once, with their chain, and
    /// replaced by a generic message carrying the request id.
    pub fn into_status(self, request_id: &str) -> Status {
        match self {
            ApiError::Invalid(violations) => {
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
            ApiError::Unauthenticated(m) => Status::unauthenticated(m),
            ApiError::PermissionDenied(m) => Status::permission_denied(m),
            ApiError::NotFound(m) => Status::not_found(m),
            ApiError::AlreadyExists(m) => Status::already_exists(m),
            ApiError::Aborted(m) => Status::aborted(m),
            ApiError::FailedPrecondition(m) => Status::failed_precondition(m),
            ApiError::Internal(e) => {
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

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::internal(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::StatusExt;

    #[test]
    fn invalid_lists_every_field_in_message_and_details() {
        let s = ApiError::Invalid(vec![
            ("a".into(), "required".into()),
            ("b".into(), "too long".into()),
        ])
        .into_status("r1");
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.message(), "invalid request: a: required; b: too long");
        let br = s.get_details_bad_request().expect("BadRequest detail");
        let fields: Vec<_> = br
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["a", "b"]);
    }

    #[test]
    fn internal_hides_the_cause_and_names_the_request() {
        let s = ApiError::Internal("disk on fire".into()).into_status("r2");
        assert_eq!(s.code(), Code::Internal);
        assert_eq!(s.message(), "internal error (request id r2)");
    }
}
