use thiserror::Error;

/// Everything that can fail in this crate outside of a delivery attempt.
///
/// Delivery failures are not errors: they are classified into an
/// [`Outcome`](crate::Outcome) because the scheduler must act on them.
#[derive(Debug, Error)]
pub enum Error {
    #[error("could not build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    #[error("unknown template kind {0:?}")]
    UnknownTemplate(String),
    #[error("template {name} failed to render: {source}")]
    Template {
        name: String,
        #[source]
        source: minijinja::Error,
    },
}
