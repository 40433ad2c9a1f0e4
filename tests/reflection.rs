//! Reflection lists exactly what each server serves (issue #10, item 4), in both reflection
//! versions (v1, and v1alpha as grpcurl 1.8 and grpcio-reflection speak it): the workflow never
//! lists `junheng.v1.SchedulerService`, the scheduler never the workflow's services. Every
//! listed service is then called through the server to prove it is served (anything but
//! UNIMPLEMENTED), and every listed service resolves to its descriptor.

use std::collections::BTreeSet;
use std::sync::Arc;

use junheng_tests::*;
use junheng_workflow::ClockMode;
use tonic::transport::Channel;
use tonic_reflection::pb::{v1, v1alpha};

async fn list_v1(channel: Channel) -> BTreeSet<String> {
    use v1::server_reflection_client::ServerReflectionClient;
    use v1::server_reflection_request::MessageRequest;
    use v1::server_reflection_response::MessageResponse;
    let req = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .expect("reflection v1")
        .into_inner();
    let resp = stream.message().await.expect("a reply").expect("one reply");
    match resp.message_response {
        Some(MessageResponse::ListServicesResponse(l)) => {
            l.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("not a service list: {other:?}"),
    }
}

async fn list_v1alpha(channel: Channel) -> BTreeSet<String> {
    use v1alpha::server_reflection_client::ServerReflectionClient;
    use v1alpha::server_reflection_request::MessageRequest;
    use v1alpha::server_reflection_response::MessageResponse;
    let req = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .expect("reflection v1alpha")
        .into_inner();
    let resp = stream.message().await.expect("a reply").expect("one reply");
    match resp.message_response {
        Some(MessageResponse::ListServicesResponse(l)) => {
            l.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("not a service list: {other:?}"),
    }
}

/// Whether the symbol resolves to a file descriptor through reflection v1alpha.
async fn resolves_v1alpha(channel: Channel, symbol: &str) -> bool {
    use v1alpha::server_reflection_client::ServerReflectionClient;
    use v1alpha::server_reflection_request::MessageRequest;
    use v1alpha::server_reflection_response::MessageResponse;
    let req = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(symbol.into())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .expect("reflection v1alpha")
        .into_inner();
    let resp = stream.message().await.expect("a reply").expect("one reply");
    matches!(
        resp.message_response,
        Some(MessageResponse::FileDescriptorResponse(_))
    )
}

/// Calls the service's first method with an empty body: anything but UNIMPLEMENTED means the
/// server routes it.
async fn served(channel: Channel, service: &str) -> bool {
    let pool = prost_reflect::DescriptorPool::decode(junheng_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptors");
    let method = match pool.get_service_by_name(service) {
        Some(s) => s.methods().next().expect("a method").name().to_owned(),
        // Health and reflection: a method every server has.
        None if service == "grpc.health.v1.Health" => "Check".into(),
        None => "ServerReflectionInfo".into(),
    };
    let path: http::uri::PathAndQuery = format!("/{service}/{method}").parse().expect("path");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let r = grpc
        .unary(
            tonic::Request::new(Vec::<u8>::new()),
            path,
            tonic_prost::ProstCodec::<Vec<u8>, ()>::default(),
        )
        .await;
    !matches!(r, Err(s) if s.code() == tonic::Code::Unimplemented)
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_server_lists_exactly_what_it_serves_in_both_versions() {
    let app = App::spawn(ClockMode::Real).await;
    let text = r#"
        database_url = "postgres://unused/unused"
        [endpoints.hook]
        kind = "webhook"
        url = "http://127.0.0.1:9/hook"
        secret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="
        [recipients]
        office = ["hook"]
    "#;
    let settings =
        Arc::new(junheng_scheduler::config::Settings::from_toml(text, |_| None).expect("settings"));
    let scheduler = junheng_scheduler::grpc::start(app.pool.clone(), settings, "127.0.0.1:0")
        .await
        .expect("scheduler starts");
    let scheduler_channel = Channel::from_shared(scheduler.url())
        .expect("url")
        .connect()
        .await
        .expect("connect");

    let reflection = [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ];
    let mut workflow: Vec<&str> = vec![
        "junheng.v1.AcceptanceService",
        "junheng.v1.AdminService",
        "junheng.v1.AwardService",
        "junheng.v1.CampaignService",
        "junheng.v1.MentorService",
        "junheng.v1.PairingService",
        "junheng.v1.SchoolService",
        "junheng.v1.SeedService",
        "junheng.v1.SpreadsheetService",
    ];
    workflow.extend(reflection);
    let mut sched: Vec<&str> = vec!["junheng.v1.SchedulerService"];
    sched.extend(reflection);

    for (name, channel, expected) in [
        ("workflow", app.channel.clone(), set(&workflow)),
        ("scheduler", scheduler_channel.clone(), set(&sched)),
    ] {
        let a = list_v1(channel.clone()).await;
        let b = list_v1alpha(channel.clone()).await;
        assert_eq!(a, expected, "{name} v1 lists what it serves");
        assert_eq!(b, expected, "{name} v1alpha lists what it serves");
        for s in &a {
            assert!(
                served(channel.clone(), s).await,
                "{name} lists {s} but does not serve it"
            );
            assert!(
                resolves_v1alpha(channel.clone(), s).await,
                "{name}: {s} does not resolve"
            );
        }
    }
    // And what one server lists, the other does not serve: the lists are not just equal by
    // construction, they are the routes.
    assert!(!served(app.channel.clone(), "junheng.v1.SchedulerService").await);
    assert!(!served(scheduler_channel, "junheng.v1.CampaignService").await);
}
