//! Generated protobuf and gRPC code for the `junheng.v1` API.
//!
//! Only the gRPC edge (`junheng-workflow`'s `api` module), the scheduler's client and tests
//! name these types; the rule core and the store never do.

pub mod v1 {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("junheng.v1");
}

/// Encoded `FileDescriptorSet`, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("junheng_descriptor");
