//! The request id every call carries: taken from `x-request-id` when the caller sent a sane
//! one, minted otherwise, echoed on the response and named in every internal error.

use tonic::{Request, Response, Status};

use crate::status::ApiError;

pub const HEADER: &str = "x-request-id";

pub fn request_id<T>(req: &Request<T>) -> String {
    header_request_id(req.metadata().as_ref())
}

/// The request id of plain HTTP headers (tower layers in front of the gRPC services).
pub fn header_request_id(headers: &http::HeaderMap) -> String {
    headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(String::from)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// Maps a handler's result to a response carrying the request id, or to its status.
pub fn reply<T, E: Into<ApiError>>(
    request_id: &str,
    result: Result<T, E>,
) -> Result<Response<T>, Status> {
    match result {
        Ok(v) => {
            let mut resp = Response::new(v);
            if let Ok(v) = request_id.parse() {
                resp.metadata_mut().insert(HEADER, v);
            }
            Ok(resp)
        }
        Err(e) => Err(e.into().into_status(request_id)),
    }
}
