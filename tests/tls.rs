//! TLS on the workflow's gRPC listener, with certificates made in the test (rcgen, ring): a
//! client that trusts the CA gets real answers; one that trusts another CA, none, or expects
//! another name fails; with a client CA (mTLS) a client without a certificate, or with one
//! from another CA, is refused and one with a certificate from the CA is served. Plaintext
//! never reaches a TLS listener.

use junheng_proto::v1 as pb;
use junheng_proto::v1::admin_service_client::AdminServiceClient;
use junheng_proto::v1::campaign_service_client::CampaignServiceClient;
use junheng_tests::certs::Certs;
use junheng_tests::{OFFICE_TOKEN, auth, fresh_db};
use junheng_workflow::{ClockMode, Running};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

async fn server(certs: &Certs, mtls: bool) -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (pool, _) = fresh_db().await;
    junheng_workflow::bootstrap::ensure_office_token(&pool, Some(OFFICE_TOKEN))
        .await
        .expect("office token");
    junheng_workflow::spawn_tls(pool, ClockMode::Real, certs.server(mtls))
        .await
        .expect("server starts")
}

fn pem(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).expect("pem")
}

/// A client of `https://localhost:<port>` with `tls`, connected (or the connection error).
async fn connect(server: &Running, tls: ClientTlsConfig) -> Result<Channel, String> {
    Endpoint::from_shared(format!("https://localhost:{}", server.addr.port()))
        .unwrap()
        .tls_config(tls)
        .map_err(|e| format!("{e:?}"))?
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))
}

/// A real RPC: the campaigns the office token sees (none yet) and the server's info.
async fn answers(channel: Channel) -> Result<(), tonic::Status> {
    CampaignServiceClient::new(channel.clone())
        .list_campaigns(auth(OFFICE_TOKEN, pb::ListCampaignsRequest::default()))
        .await?;
    let info = AdminServiceClient::new(channel)
        .get_server_info(pb::GetServerInfoRequest::default())
        .await?
        .into_inner();
    assert_eq!(info.clock_mode, "real");
    Ok(())
}

/// A client that fails either at the handshake or at its first call.
async fn refused(server: &Running, tls: ClientTlsConfig, what: &str) {
    match connect(server, tls).await {
        Err(_) => {}
        Ok(ch) => {
            let r = answers(ch).await;
            assert!(r.is_err(), "{what}: the server answered");
            let s = r.unwrap_err();
            // Refused by the transport (the handshake or the server's alert), never by a
            // handler: UNAVAILABLE, or UNKNOWN "transport error" for a TLS alert.
            assert!(
                s.code() == tonic::Code::Unavailable
                    || (s.code() == tonic::Code::Unknown && s.message() == "transport error"),
                "{what}: {s:?}"
            );
        }
    }
}

fn trusting(ca: &std::path::Path) -> ClientTlsConfig {
    ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem(ca)))
}

#[tokio::test]
async fn a_client_that_trusts_the_ca_is_served_and_others_fail() {
    let certs = Certs::new();
    let server = server(&certs, false).await;

    let ch = connect(&server, trusting(&certs.ca))
        .await
        .expect("a client trusting the CA connects");
    answers(ch).await.expect("and gets real answers");

    // The server's certificate names 127.0.0.1 too: an address works when it is named.
    let ch = Endpoint::from_shared(format!("https://127.0.0.1:{}", server.addr.port()))
        .unwrap()
        .tls_config(trusting(&certs.ca))
        .unwrap()
        .connect()
        .await
        .expect("by address");
    answers(ch).await.expect("answers by address");

    refused(&server, ClientTlsConfig::new(), "no CA at all").await;
    refused(&server, trusting(&certs.other_ca), "another CA").await;
    refused(
        &server,
        trusting(&certs.ca).domain_name("workflow.elsewhere.test"),
        "a name the certificate does not carry",
    )
    .await;

    // Plaintext to the TLS port gets no answer.
    let plain = Endpoint::from_shared(format!("http://127.0.0.1:{}", server.addr.port()))
        .unwrap()
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(5))
        .connect()
        .await;
    if let Ok(ch) = plain {
        let s = answers(ch).await.expect_err("plaintext is not served");
        assert_ne!(s.code(), tonic::Code::Ok);
    }
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn with_a_client_ca_only_clients_with_its_certificates_are_served() {
    let certs = Certs::new();
    let server = server(&certs, true).await;

    refused(&server, trusting(&certs.ca), "no client certificate").await;
    refused(
        &server,
        trusting(&certs.ca).identity(Identity::from_pem(
            pem(&certs.stranger_cert),
            pem(&certs.stranger_key),
        )),
        "a client certificate from another CA",
    )
    .await;

    let ch = connect(
        &server,
        trusting(&certs.ca).identity(Identity::from_pem(
            pem(&certs.client_cert),
            pem(&certs.client_key),
        )),
    )
    .await
    .expect("a client with the CA's certificate connects");
    answers(ch).await.expect("and is served");
    server.shutdown().await.expect("clean shutdown");
}

#[test]
fn rustls_config_for_http_listeners_offers_h2_and_http1() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = Certs::new();
    let config = certs.server(true).rustls_config().expect("config");
    assert_eq!(
        config.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    // A key that does not belong to the certificate is named at start.
    let wrong = junheng_edge::tls::TlsFiles {
        key: certs.client_key.clone(),
        ..certs.server(false)
    };
    let err = format!("{:#}", wrong.rustls_config().unwrap_err());
    assert!(err.contains("does not match"), "{err}");
    let missing = junheng_edge::tls::TlsFiles {
        cert: certs.path("nope.pem"),
        ..certs.server(false)
    };
    let err = format!("{:#}", missing.server_config().unwrap_err());
    assert!(err.contains("nope.pem"), "{err}");
}

/// The pages speak TLS when gRPC does, from the same certificate: a browser that trusts the CA
/// reads the notice board and gets a `Secure` session cookie; plaintext HTTP gets nothing.
#[tokio::test]
async fn the_pages_are_served_over_tls_with_secure_cookies() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = Certs::new();
    let (pool, _) = fresh_db().await;
    let (_server, web) =
        junheng_workflow::spawn_tls_with_web(pool, ClockMode::Real, certs.server(true))
            .await
            .expect("server starts");
    let ca = reqwest::Certificate::from_pem(&pem(&certs.path("ca.pem"))).unwrap();
    let browser = reqwest::Client::builder()
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // No client certificate is asked of a browser, although gRPC requires one here (mTLS).
    let board = browser
        .get(format!("https://localhost:{}/", web.port()))
        .send()
        .await
        .expect("the board answers over TLS");
    assert_eq!(board.status(), 200);
    assert!(board.text().await.unwrap().contains("公示"));
    let login = browser
        .get(format!("https://localhost:{}/login", web.port()))
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> = login
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        !cookies.is_empty() && cookies.iter().all(|c| c.contains("; Secure")),
        "{cookies:?}"
    );
    // Plain HTTP on the TLS port is no page.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/", web.port()))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
}
