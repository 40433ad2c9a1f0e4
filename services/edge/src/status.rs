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
    /// A per-caller or per-server limit was reached: `RESOURCE_EXHAUSTED` with a `RetryInfo`
    /// detail saying when to try again.
    #[error("{message}")]
    ResourceExhausted {
        message: String,
        retry_after: std::time::Duration,
    },
    /// The database could not be reached (pool timeout, refused or broken connection): worth
    /// retrying later with the same idempotency key. Logged with its cause.
    #[error("unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Logged with its cause chain, shown as a generic message with the request id.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type ApiResult<T> = Result<T, ApiError>;

/// At most this many characters of a violation's field path and reason reach the reply.
const MAX_FIELD_CHARS: usize = 200;
const MAX_REASON_CHARS: usize = 400;
/// The violations a reply carries in its details, by their UTF-8 size: a 20,000-row import
/// with every row wrong still answers within a client's 16 KiB metadata limit (the details
/// are base64 in a header; the message is percent-encoded).
const MAX_DETAIL_BYTES: usize = 6 * 1024;
/// Violations named in the message itself.
const MESSAGE_VIOLATIONS: usize = 5;

fn cap(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        s
    } else {
        let mut c: String = s.chars().take(max).collect();
        c.push('…');
        c
    }
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::Invalid(vec![(field.into(), reason.into())])
    }

    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        ApiError::Internal(Box::new(e))
    }

    /// `Unavailable` when the error (or anything in its source chain) is a database outage
    /// ([`junheng_store::is_unavailable`]), else `Internal`.
    pub fn from_failure(e: Box<dyn std::error::Error + Send + Sync>) -> Self {
        if outage_in_chain(&*e) {
            ApiError::Unavailable(e)
        } else {
            ApiError::Internal(e)
        }
    }

    /// The status a caller sees. Internal causes are logged here, once, with their chain, and
    /// replaced by a generic message carrying the request id.
    pub fn into_status(self, request_id: &str) -> Status {
        match self {
            ApiError::Invalid(violations) => {
                // A reason that quotes more than a prefix of the caller's value (a parser's
                // message with the whole line, say) is cut here, so no reply outgrows a
                // client's metadata limit.
                let total = violations.len();
                let mut kept: Vec<(String, String)> = Vec::new();
                let mut bytes = 0;
                for (f, r) in violations {
                    let (f, r) = (cap(f, MAX_FIELD_CHARS), cap(r, MAX_REASON_CHARS));
                    bytes += f.len() + r.len();
                    if bytes > MAX_DETAIL_BYTES {
                        break;
                    }
                    kept.push((f, r));
                }
                let more = total - kept.len();
                if more > 0 {
                    kept.push((
                        "…".into(),
                        format!("and {more} more violations (fix these and retry)"),
                    ));
                }
                // The message names the first few; the details carry all that fit.
                let mut summary = kept
                    .iter()
                    .take(MESSAGE_VIOLATIONS)
                    .map(|(f, r)| format!("{f}: {r}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                if kept.len() > MESSAGE_VIOLATIONS {
                    summary.push_str(&format!(
                        "; … {} violations in all (see the details)",
                        total
                    ));
                }
                let mut details = ErrorDetails::new();
                for (f, r) in kept {
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
            ApiError::ResourceExhausted {
                message,
                retry_after,
            } => {
                let ms = retry_after.as_millis().max(1);
                Status::with_error_details(
                    Code::ResourceExhausted,
                    format!("{message} (retry in {ms} ms)"),
                    ErrorDetails::with_retry_info(Some(retry_after)),
                )
            }
            ApiError::Unavailable(e) => {
                tracing::warn!(request.id = request_id, error = %chain(&*e), "database unavailable");
                Status::unavailable(format!(
                    "数据库暂时不可用，请稍后用同一幂等键重试 (the database is unavailable; retry later; request id {request_id})"
                ))
            }
            // An outage that reached here wrapped in some other error is still an outage.
            ApiError::Internal(e) if outage_in_chain(&*e) => {
                ApiError::Unavailable(e).into_status(request_id)
            }
            ApiError::Internal(e) => {
                tracing::error!(request.id = request_id, error = %chain(&*e), "internal error");
                Status::internal(format!("internal error (request id {request_id})"))
            }
        }
    }
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        src = s.source();
    }
    chain
}

/// Whether `e` or one of its sources is a database outage.
fn outage_in_chain(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(s) = err.downcast_ref::<sqlx::Error>()
            && junheng_store::is_unavailable(s)
        {
            return true;
        }
        if let Some(s) = err.downcast_ref::<junheng_store::StoreError>()
            && s.is_unavailable()
        {
            return true;
        }
        cur = err.source();
    }
    false
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if junheng_store::is_unavailable(&e) {
            ApiError::Unavailable(Box::new(e))
        } else {
            ApiError::internal(e)
        }
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
    fn thousands_of_violations_fit_a_clients_metadata_limit() {
        let many: Vec<(String, String)> = (0..20_000)
            .map(|i| {
                (
                    format!("schools[{i}].name"),
                    "不能为空，且不超过 100 个字符".to_string(),
                )
            })
            .collect();
        let s = ApiError::Invalid(many).into_status("r");
        let br = s.get_details_bad_request().expect("BadRequest detail");
        let last = br.field_violations.last().unwrap();
        assert_eq!(last.field, "…");
        assert!(last.description.contains("more violations"), "{last:?}");
        assert_eq!(br.field_violations[0].field, "schools[0].name");
        assert!(
            s.message().contains("20000 violations in all"),
            "{}",
            s.message()
        );
        let mut headers = http::HeaderMap::new();
        s.add_header(&mut headers).unwrap();
        let size: usize = headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len())
            .sum();
        assert!(size < 16 * 1024, "reply metadata is {size} bytes");
    }

    #[test]
    fn outages_are_unavailable_never_internal() {
        for e in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        ] {
            assert_eq!(ApiError::from(e).into_status("r").code(), Code::Unavailable);
        }
        let wrapped = junheng_store::StoreError::Sqlx(sqlx::Error::PoolTimedOut);
        assert_eq!(
            ApiError::internal(wrapped).into_status("r").code(),
            Code::Unavailable
        );
        assert_eq!(
            ApiError::from(sqlx::Error::RowNotFound)
                .into_status("r")
                .code(),
            Code::Internal
        );
    }

    #[test]
    fn internal_hides_the_cause_and_names_the_request() {
        let s = ApiError::Internal("disk on fire".into()).into_status("r2");
        assert_eq!(s.code(), Code::Internal);
        assert_eq!(s.message(), "internal error (request id r2)");
    }
}
