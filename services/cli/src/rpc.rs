//! Calls any method of the junheng API by name with a JSON body, through the descriptor set
//! compiled into `junheng-proto`: the same JSON mapping as grpcurl, so one code path serves the
//! curated subcommands and `junheng call`.

use bytes::{Buf, BufMut};
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, SerializeOptions};
use serde_json::Value;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Every service is in this package.
pub const PACKAGE: &str = "junheng.v1";

/// Passes already-encoded protobuf bytes through tonic unchanged.
#[derive(Debug, Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n).to_vec()))
    }
}

/// What went wrong with a call, in the classes the exit code tells apart.
#[derive(Debug)]
pub enum CallError {
    /// The request could not be built (unknown method, JSON that does not fit the message).
    Usage(String),
    /// The server (or the connection) answered with this status.
    Status(Status),
}

impl From<Status> for CallError {
    fn from(s: Status) -> Self {
        CallError::Status(s)
    }
}

pub struct Client {
    workflow: Channel,
    scheduler: Channel,
    token: Option<String>,
    pool: DescriptorPool,
}

/// The scheduler serves this service; the workflow every other one.
const SCHEDULER_SERVICE: &str = "SchedulerService";

impl Client {
    pub fn new(
        workflow: Channel,
        scheduler: Channel,
        token: Option<String>,
    ) -> anyhow::Result<Self> {
        Ok(Client {
            workflow,
            scheduler,
            token,
            pool: DescriptorPool::decode(junheng_proto::FILE_DESCRIPTOR_SET)?,
        })
    }

    /// The same servers with another bearer token (the demo's actors take turns).
    pub fn with_token(&self, token: String) -> Client {
        Client {
            workflow: self.workflow.clone(),
            scheduler: self.scheduler.clone(),
            token: Some(token),
            pool: self.pool.clone(),
        }
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    pub fn token_string(&self) -> String {
        self.token.clone().unwrap_or_default()
    }

    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }

    /// Calls `Service/Method` (e.g. `SeedService/Nominate`) with `body`; an empty
    /// `idempotency_key` field is filled with a fresh key. Returns the reply as JSON with the
    /// proto field names and every field present.
    pub async fn call(&self, method: &str, body: Value) -> Result<Value, CallError> {
        let call = self.prepare(method, body, false)?;
        let mut grpc = self.ready(&call).await?;
        let reply = grpc.unary(call.request, call.path, Raw).await?.into_inner();
        to_json(&call.method, &reply)
    }

    /// Calls a server-streaming method and hands each message to `each` as JSON until the
    /// stream ends.
    pub async fn stream(
        &self,
        method: &str,
        body: Value,
        mut each: impl FnMut(Value),
    ) -> Result<(), CallError> {
        let call = self.prepare(method, body, true)?;
        let mut grpc = self.ready(&call).await?;
        let mut stream = grpc
            .server_streaming(call.request, call.path, Raw)
            .await?
            .into_inner();
        while let Some(msg) = stream.message().await? {
            each(to_json(&call.method, &msg)?);
        }
        Ok(())
    }

    async fn ready(&self, call: &Prepared) -> Result<tonic::client::Grpc<Channel>, CallError> {
        let channel = if call.method.parent_service().name() == SCHEDULER_SERVICE {
            &self.scheduler
        } else {
            &self.workflow
        };
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready()
            .await
            .map_err(|e| Status::new(Code::Unavailable, format!("cannot reach the server: {e}")))?;
        Ok(grpc)
    }

    fn prepare(
        &self,
        method: &str,
        mut body: Value,
        streaming: bool,
    ) -> Result<Prepared, CallError> {
        let (service, name) = method.split_once('/').ok_or_else(|| {
            CallError::Usage(format!(
                "`{method}`: expected Service/Method, e.g. SeedService/Nominate"
            ))
        })?;
        let service = service
            .strip_prefix(&format!("{PACKAGE}."))
            .unwrap_or(service);
        let svc = self
            .pool
            .get_service_by_name(&format!("{PACKAGE}.{service}"))
            .ok_or_else(|| {
                CallError::Usage(format!(
                    "no service `{service}`; the services are {}",
                    self.pool
                        .services()
                        .map(|s| s.name().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let m = svc.methods().find(|m| m.name() == name).ok_or_else(|| {
            CallError::Usage(format!(
                "{service} has no method `{name}`; it has {}",
                svc.methods()
                    .map(|m| m.name().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        if m.is_client_streaming() || m.is_server_streaming() != streaming {
            return Err(CallError::Usage(format!(
                "{service}/{name} {}; use {}",
                if m.is_server_streaming() {
                    "streams"
                } else {
                    "does not stream"
                },
                if m.is_server_streaming() {
                    "its subcommand (e.g. `junheng events follow`)"
                } else {
                    "`junheng call`"
                }
            )));
        }
        let input = m.input();
        if let Value::Object(o) = &mut body
            && input.get_field_by_name("idempotency_key").is_some()
        {
            let empty = o
                .get("idempotency_key")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            if empty {
                o.insert(
                    "idempotency_key".into(),
                    Value::String(uuid::Uuid::new_v4().to_string()),
                );
            }
        }
        let req = DynamicMessage::deserialize_with_options(input, body, &DeserializeOptions::new())
            .map_err(|e| CallError::Usage(format!("request for {service}/{name}: {e}")))?;
        let mut request = tonic::Request::new(prost_reflect::prost::Message::encode_to_vec(&req));
        if let Some(t) = &self.token {
            let v: MetadataValue<_> = format!("Bearer {t}")
                .parse()
                .map_err(|_| CallError::Usage("the token is not valid header text".into()))?;
            request.metadata_mut().insert("authorization", v);
        }
        let path = format!("/{PACKAGE}.{service}/{name}")
            .parse()
            .map_err(|_| CallError::Usage(format!("`{method}` is not a valid method path")))?;
        Ok(Prepared {
            method: m,
            request,
            path,
        })
    }
}

struct Prepared {
    method: prost_reflect::MethodDescriptor,
    request: tonic::Request<Vec<u8>>,
    path: http::uri::PathAndQuery,
}

fn to_json(method: &prost_reflect::MethodDescriptor, reply: &[u8]) -> Result<Value, CallError> {
    let msg = DynamicMessage::decode(method.output(), reply)
        .map_err(|e| Status::new(Code::Internal, format!("undecodable reply: {e}")))?;
    let opts = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false)
        .stringify_64_bit_integers(false);
    msg.serialize_with_options(serde_json::value::Serializer, &opts)
        .map_err(|e| CallError::Status(Status::internal(format!("reply to JSON: {e}"))))
}
