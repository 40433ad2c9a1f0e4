//! The scheduler over TLS: its workflow client verifies the workflow's certificate and
//! presents its own (mTLS) — the real workflow server, served with a client CA, answers it;
//! without the client certificate, or trusting another CA, the call never reaches a handler.
//! Its own gRPC listener serves TLS too, and the binary refuses a plaintext listener off
//! loopback unless `--insecure-listen` is given.

mod common;

use std::process::Command;

use junheng_edge::tls::ClientTls;
use junheng_scheduler::{GrpcWorkflow, Workflow, grpc};
use junheng_tests::certs::Certs;
use junheng_tests::{OFFICE_TOKEN, fresh_db};
use junheng_workflow::ClockMode;
use secrecy::SecretString;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

#[tokio::test]
async fn the_workflow_client_speaks_mtls_and_verifies_the_server() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = Certs::new();
    let (pool, _) = fresh_db().await;
    junheng_workflow::bootstrap::ensure_office_token(&pool, Some(OFFICE_TOKEN))
        .await
        .unwrap();
    let server = junheng_workflow::spawn_tls(pool, ClockMode::Real, certs.server(true))
        .await
        .unwrap();
    let url = format!("https://localhost:{}", server.addr.port());
    let client = |tls: ClientTls| {
        GrpcWorkflow::with_tls(&url, SecretString::from(OFFICE_TOKEN), &tls).unwrap()
    };
    let notice = uuid::Uuid::now_v7();

    // With the CA and the scheduler's certificate the call reaches the handler, which looks
    // the notice up (there is none: NOT_FOUND is an answer from the workflow itself).
    let mtls = client(ClientTls {
        ca: Some(certs.ca.clone()),
        domain: None,
        cert: Some(certs.client_cert.clone()),
        key: Some(certs.client_key.clone()),
    });
    let err = mtls.close_notice(notice, "tls-1").await.unwrap_err();
    assert!(err.to_string().contains("NotFound"), "{err}");

    // The same with an explicit name the certificate carries.
    let named = client(ClientTls {
        domain: Some("localhost".into()),
        ca: Some(certs.ca.clone()),
        cert: Some(certs.client_cert.clone()),
        key: Some(certs.client_key.clone()),
    });
    let err = named.close_notice(notice, "tls-2").await.unwrap_err();
    assert!(err.to_string().contains("NotFound"), "{err}");

    for (what, tls) in [
        (
            "no client certificate",
            ClientTls {
                ca: Some(certs.ca.clone()),
                ..ClientTls::default()
            },
        ),
        (
            "trusting another CA",
            ClientTls {
                ca: Some(certs.other_ca.clone()),
                cert: Some(certs.client_cert.clone()),
                key: Some(certs.client_key.clone()),
                ..ClientTls::default()
            },
        ),
        (
            "a name the certificate does not carry",
            ClientTls {
                ca: Some(certs.ca.clone()),
                domain: Some("workflow.elsewhere.test".into()),
                cert: Some(certs.client_cert.clone()),
                key: Some(certs.client_key.clone()),
            },
        ),
    ] {
        let err = client(tls).close_notice(notice, "tls-3").await.unwrap_err();
        assert!(!err.to_string().contains("NotFound"), "{what}: {err}");
        let text = err.to_string();
        assert!(
            text.contains("Unavailable") || text.contains("transport error"),
            "{what}: {text}"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_scheduler_serves_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = Certs::new();
    let db = common::TestDb::new().await;
    let settings = common::settings("http://127.0.0.1:1/hook", "");
    let server = grpc::start_tls(
        db.pool.clone(),
        settings,
        "127.0.0.1:0",
        certs.server(false),
    )
    .await
    .unwrap();
    let ca = Certificate::from_pem(std::fs::read(&certs.ca).unwrap());
    let channel = Endpoint::from_shared(format!("https://localhost:{}", server.addr.port()))
        .unwrap()
        .tls_config(ClientTlsConfig::new().ca_certificate(ca))
        .unwrap()
        .connect()
        .await
        .expect("a client trusting the CA connects");
    let h = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "junheng.v1.SchedulerService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(h.status, 1, "SERVING");
    let untrusting = Endpoint::from_shared(format!("https://localhost:{}", server.addr.port()))
        .unwrap()
        .tls_config(ClientTlsConfig::new())
        .unwrap()
        .connect()
        .await;
    assert!(untrusting.is_err(), "a client without the CA fails");
    server.shutdown().await.unwrap();
}

#[test]
fn the_binary_refuses_plaintext_off_loopback() {
    let dir = std::env::temp_dir().join(format!("jh-sched-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("s.toml");
    std::fs::write(
        &config,
        "database_url = \"postgres://nobody@127.0.0.1:1/none\"\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_junheng-scheduler"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("JUNHENG_SCHEDULER_GRPC_ADDR")
            .env_remove("JUNHENG_SCHEDULER_METRICS_ADDR")
            .env_remove("JUNHENG_INSECURE_LISTEN")
            .env_remove("JUNHENG_TLS_CERT")
            .env_remove("JUNHENG_TLS_KEY")
            .env("JUNHENG_DB_ACQUIRE_TIMEOUT_MS", "200")
            .output()
            .unwrap()
    };
    let out = run(&["--grpc-addr", "0.0.0.0:0", "--metrics-addr", "off"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("refusing to serve gRPC in plaintext on 0.0.0.0:0"),
        "{err}"
    );
    let out = run(&["--metrics-addr", "0.0.0.0:0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to serve metrics in plaintext on 0.0.0.0:0"),
        "{err}"
    );
    // With the flag it gets past the check (and fails at the database instead).
    let out = run(&[
        "--grpc-addr",
        "0.0.0.0:0",
        "--metrics-addr",
        "off",
        "--insecure-listen",
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("refusing to serve"), "{text}");
    assert!(text.contains("INSECURE LISTEN"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
