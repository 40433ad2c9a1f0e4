//! `junheng` against a workflow serving TLS with a client CA (mTLS): with `--ca` and its
//! certificate it gets the server's answer; with the flags from a config file too; without the
//! CA, or without a client certificate, or in plaintext, it fails.

use std::process::Output;

use junheng_tests::certs::Certs;
use junheng_tests::{OFFICE_TOKEN, fresh_db};
use junheng_workflow::ClockMode;

fn run(addr: &str, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_junheng"))
        .args(args)
        .env("JUNHENG_ADDR", addr)
        .env("JUNHENG_TOKEN", OFFICE_TOKEN)
        .env_remove("JUNHENG_TOKEN_FILE")
        .env_remove("JUNHENG_CONFIG")
        .env_remove("JUNHENG_CA")
        .env_remove("JUNHENG_CLIENT_CERT")
        .env_remove("JUNHENG_CLIENT_KEY")
        .env_remove("JUNHENG_TLS_DOMAIN")
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .output()
        .expect("the binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_speaks_mtls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = Certs::new();
    let (pool, _) = fresh_db().await;
    junheng_workflow::bootstrap::ensure_office_token(&pool, Some(OFFICE_TOKEN))
        .await
        .unwrap();
    let server = junheng_workflow::spawn_tls(pool, ClockMode::Real, certs.server(true))
        .await
        .unwrap();
    let addr = format!("localhost:{}", server.addr.port());
    let s = |p: &std::path::Path| p.display().to_string();
    let (ca, cert, key) = (s(&certs.ca), s(&certs.client_cert), s(&certs.client_key));

    let a = addr.clone();
    let (ca2, cert2, key2) = (ca.clone(), cert.clone(), key.clone());
    let out = tokio::task::spawn_blocking(move || {
        run(
            &a,
            &[
                "--ca",
                &ca2,
                "--client-cert",
                &cert2,
                "--client-key",
                &key2,
                "-o",
                "json",
                "info",
            ],
        )
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\"real\""), "{stdout}");

    // The same from the config file, by address with the name given.
    let config = certs.path("cli.toml");
    std::fs::write(
        &config,
        format!(
            "ca = \"{ca}\"\nclient_cert = \"{cert}\"\nclient_key = \"{key}\"\ntls_domain = \"localhost\"\n"
        ),
    )
    .unwrap();
    let by_ip = format!("127.0.0.1:{}", server.addr.port());
    let c = config.display().to_string();
    let out =
        tokio::task::spawn_blocking(move || run(&by_ip, &["--config", &c, "campaign", "list"]))
            .await
            .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Without a client certificate, or trusting another CA: refused.
    let a = addr.clone();
    let ca3 = ca.clone();
    let out = tokio::task::spawn_blocking(move || run(&a, &["--ca", &ca3, "info"]))
        .await
        .unwrap();
    assert!(!out.status.success());
    let a = addr.clone();
    let other = s(&certs.other_ca);
    let out = tokio::task::spawn_blocking(move || {
        run(
            &a,
            &[
                "--ca",
                &other,
                "--client-cert",
                &cert,
                "--client-key",
                &key,
                "info",
            ],
        )
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    // Plaintext to the TLS port gets no answer either.
    let a = addr.clone();
    let out = tokio::task::spawn_blocking(move || run(&a, &["info"]))
        .await
        .unwrap();
    assert!(!out.status.success());
    server.shutdown().await.unwrap();
}
