//! The workflow actions the scheduler asks for, behind a trait so tests run without the
//! workflow server. The gRPC implementation calls `SeedService.CloseNotice` with the office
//! token and an idempotency key derived from the notice, so retries are harmless.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("no workflow service configured")]
    NotConfigured,
    #[error("workflow call failed: {0}")]
    Call(String),
}

#[async_trait]
pub trait Workflow: Send + Sync {
    /// Records that a notice period has ended. Must be idempotent for the same key.
    async fn close_notice(
        &self,
        notice_id: Uuid,
        idempotency_key: &str,
    ) -> Result<(), WorkflowError>;
}

/// Used when no workflow URL is configured: notices are announced, never closed.
pub struct NoWorkflow;

#[async_trait]
impl Workflow for NoWorkflow {
    async fn close_notice(&self, _notice_id: Uuid, _key: &str) -> Result<(), WorkflowError> {
        Err(WorkflowError::NotConfigured)
    }
}

pub struct GrpcWorkflow {
    channel: tonic::transport::Channel,
    token: SecretString,
}

impl GrpcWorkflow {
    /// Connects lazily: the scheduler starts even when the workflow is not up yet.
    pub fn new(url: &str, token: SecretString) -> Result<Self, WorkflowError> {
        Self::with_tls(url, token, &junheng_edge::tls::ClientTls::default())
    }

    /// As [`GrpcWorkflow::new`], verifying the workflow's certificate against `tls.ca` (and
    /// presenting `tls.cert` for mTLS) when any TLS setting is given.
    pub fn with_tls(
        url: &str,
        token: SecretString,
        tls: &junheng_edge::tls::ClientTls,
    ) -> Result<Self, WorkflowError> {
        let mut endpoint = tonic::transport::Endpoint::from_shared(url.to_owned())
            .map_err(|e| WorkflowError::Call(format!("invalid workflow url: {e}")))?;
        if tls.enabled() {
            let config = tls
                .config()
                .map_err(|e| WorkflowError::Call(format!("workflow TLS: {e:#}")))?;
            endpoint = endpoint
                .tls_config(config)
                .map_err(|e| WorkflowError::Call(format!("workflow TLS: {e}")))?;
        }
        let channel = endpoint
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(15))
            .connect_lazy();
        Ok(Self { channel, token })
    }
}

#[async_trait]
impl Workflow for GrpcWorkflow {
    async fn close_notice(
        &self,
        notice_id: Uuid,
        idempotency_key: &str,
    ) -> Result<(), WorkflowError> {
        use junheng_proto::v1::CloseNoticeRequest;
        use junheng_proto::v1::seed_service_client::SeedServiceClient;
        let mut req = tonic::Request::new(CloseNoticeRequest {
            idempotency_key: idempotency_key.to_owned(),
            notice_id: notice_id.to_string(),
        });
        let value = format!("Bearer {}", self.token.expose_secret())
            .parse()
            .map_err(|_| {
                WorkflowError::Call("the office token is not a valid header value".into())
            })?;
        req.metadata_mut().insert("authorization", value);
        let mut client = SeedServiceClient::new(self.channel.clone());
        match client.close_notice(req).await {
            Ok(_) => Ok(()),
            Err(status) => Err(WorkflowError::Call(format!(
                "{:?}: {}",
                status.code(),
                status.message()
            ))),
        }
    }
}
