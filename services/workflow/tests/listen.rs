//! The binary refuses a plaintext listener off loopback before it does anything else (no
//! database needed), names the way out, and accepts it with `--insecure-listen`.

use std::process::Command;

fn workflow(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_junheng-workflow"))
        .args(args)
        // Nothing listens here: the refusal must come before any connection attempt.
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env_remove("JUNHENG_LISTEN")
        .env_remove("JUNHENG_INSECURE_LISTEN")
        .env_remove("JUNHENG_METRICS_ADDR")
        .env_remove("JUNHENG_TLS_CERT")
        .env_remove("JUNHENG_TLS_KEY")
        .output()
        .expect("run junheng-workflow")
}

#[test]
fn plaintext_off_loopback_is_refused_without_the_flag() {
    let out = workflow(&["--listen", "0.0.0.0:0", "--metrics-addr", "off"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("refusing to serve gRPC in plaintext on 0.0.0.0:0"),
        "{err}"
    );
    assert!(err.contains("--insecure-listen"), "{err}");

    // The metrics port follows the same rule.
    let out = workflow(&["--metrics-addr", "0.0.0.0:0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("refusing to serve metrics in plaintext on 0.0.0.0:0"),
        "{err}"
    );
}

#[test]
fn the_insecure_flag_lets_it_start_and_warns() {
    // With the flag the listen check passes and the next step (the database) fails instead.
    let out = workflow(&[
        "--listen",
        "0.0.0.0:0",
        "--metrics-addr",
        "off",
        "--insecure-listen",
        "--db-acquire-timeout-ms",
        "200",
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success());
    assert!(!text.contains("refusing to serve"), "{text}");
    assert!(text.contains("INSECURE LISTEN"), "{text}");
    assert!(text.contains("connecting to PostgreSQL"), "{text}");
}

#[test]
fn tls_files_that_do_not_exist_are_named_at_start() {
    let out = workflow(&[
        "--listen",
        "0.0.0.0:0",
        "--metrics-addr",
        "off",
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        "/nonexistent/key.pem",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
}
