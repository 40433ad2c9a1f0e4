//! E-mail against a real SMTP server: aiosmtpd with the handler in
//! `tests/smtp_sink.py`. The received .eml is parsed with mail-parser, which shares
//! no code with lettre, so encoding mistakes cannot cancel out.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use junheng_notify::{Attachment, Endpoint, Message, Outcome, Sender, SmtpEndpoint, SmtpTls};
use mail_parser::{MessageParser, MimeHeaders};

/// A running aiosmtpd; killed when dropped.
struct SmtpSink {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl SmtpSink {
    fn start(name: &str) -> SmtpSink {
        let check = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .output();
        match check {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!(
                "the SMTP tests need the aiosmtpd Python package (pip install aiosmtpd): {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => panic!("the SMTP tests need python3 with aiosmtpd installed: {e}"),
        }
        let dir = std::env::temp_dir().join(format!("junheng-smtp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Ask the OS for a free port, release it, and hand it to aiosmtpd.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let tests_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "smtp_sink.Sink"])
            .env("PYTHONPATH", &tests_dir)
            .env("SMTP_SINK_DIR", &dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("failed to start python3 -m aiosmtpd");
        let mut sink = SmtpSink { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = sink.child.try_wait() {
                panic!("aiosmtpd exited early with {status}");
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sink
    }

    fn endpoint(&self, from: &str, to: &str) -> Endpoint {
        Endpoint::Smtp(SmtpEndpoint {
            host: "127.0.0.1".into(),
            port: Some(self.port),
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: from.into(),
            to: vec![to.into()],
            message_id_domain: "notify.junheng.example".into(),
        })
    }

    /// Bounded polling for the one stored message.
    fn wait_for_eml(&self) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let emls: Vec<PathBuf> = std::fs::read_dir(&self.dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                .collect();
            if let [one] = emls.as_slice() {
                return std::fs::read(one).unwrap();
            }
            assert!(
                emls.len() <= 1,
                "expected one message, found {}",
                emls.len()
            );
            assert!(
                Instant::now() < deadline,
                "no message arrived in {:?}",
                self.dir
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stored_count(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|e| e == "eml")
            })
            .count()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn message() -> Message {
    Message {
        id: "0190a1b2-reminder-42".into(),
        title: "【提醒】昌乐县 2020 年种子校申请截止还有 3 天".into(),
        text: "王校长：\n申请材料请于 5 月 10 日前提交。".into(),
        markdown: None,
        html: Some("<p>王校长：</p><p>申请材料请于 <b>5 月 10 日</b>前提交。</p>".into()),
        attachments: vec![],
        mention_mobiles: vec![],
        urgent: false,
    }
}

const NOW_MS: i64 = 1_700_000_000_000;

#[tokio::test]
async fn chinese_mail_arrives_with_both_parts_and_message_id() {
    let sink = SmtpSink::start("plain");
    let sender = Sender::with_timeout(Duration::from_secs(10)).unwrap();
    let ep = sink.endpoint("jiaoyuju@changle.example", "xiaozhang@school.example");
    let outcome = sender.send(&ep, &message(), NOW_MS).await;
    assert!(outcome.is_delivered(), "{outcome:?}");

    let raw = sink.wait_for_eml();
    let raw_text = String::from_utf8_lossy(&raw);
    // The subject travels RFC 2047-encoded, never as raw UTF-8.
    assert!(raw_text.contains("=?utf-8?"), "{raw_text}");
    let parsed = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(
        parsed.subject(),
        Some("【提醒】昌乐县 2020 年种子校申请截止还有 3 天")
    );
    assert_eq!(
        // SMTP bodies use CRLF line endings; compare the text itself.
        parsed
            .body_text(0)
            .unwrap()
            .replace("\r\n", "\n")
            .trim_end(),
        "王校长：\n申请材料请于 5 月 10 日前提交。"
    );
    assert_eq!(
        parsed.body_html(0).unwrap().trim_end(),
        "<p>王校长：</p><p>申请材料请于 <b>5 月 10 日</b>前提交。</p>"
    );
    assert_eq!(
        parsed.message_id(),
        Some("0190a1b2-reminder-42@notify.junheng.example")
    );
    assert!(raw_text.contains("Message-ID: <0190a1b2-reminder-42@notify.junheng.example>"));
    assert!(raw_text.contains("multipart/alternative"));
}

#[tokio::test]
async fn html_is_derived_and_inline_png_is_related() {
    let sink = SmtpSink::start("inline");
    let sender = Sender::new().unwrap();
    let png = b"\x89PNG\r\n\x1a\nfake-chart".to_vec();
    let mut msg = message();
    msg.html = None;
    msg.text = "统计图见下方 <图1>".into();
    msg.urgent = true;
    msg.attachments = vec![Attachment {
        filename: "chart.png".into(),
        content_type: "image/png".into(),
        bytes: png.clone(),
        inline_cid: Some("chart1".into()),
    }];
    let ep = sink.endpoint("jiaoyuju@changle.example", "xiaozhang@school.example");
    let outcome = sender.send(&ep, &msg, NOW_MS).await;
    assert!(outcome.is_delivered(), "{outcome:?}");

    let raw = sink.wait_for_eml();
    let parsed = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(
        parsed.subject(),
        Some("【紧急】【提醒】昌乐县 2020 年种子校申请截止还有 3 天")
    );
    assert!(String::from_utf8_lossy(&raw).contains("multipart/related"));
    let html = parsed.body_html(0).unwrap();
    assert!(html.contains("统计图见下方 &lt;图1&gt;"), "{html}");
    assert!(!html.contains("<pre>"));
    let image = parsed.attachment(0).expect("the chart is attached");
    assert_eq!(image.contents(), png.as_slice());
    assert_eq!(image.content_id(), Some("chart1"));
}

#[tokio::test]
async fn scripted_smtp_replies_map_to_outcomes() {
    let sink = SmtpSink::start("replies");
    let sender = Sender::with_timeout(Duration::from_secs(10)).unwrap();
    let from = "jiaoyuju@changle.example";

    let o = sender
        .send(
            &sink.endpoint(from, "fail451@school.example"),
            &message(),
            NOW_MS,
        )
        .await;
    assert!(matches!(o, Outcome::Retry { after: None, .. }), "{o:?}");

    let o = sender
        .send(
            &sink.endpoint(from, "fail550q@school.example"),
            &message(),
            NOW_MS,
        )
        .await;
    assert_eq!(
        o,
        Outcome::Retry {
            after: Some(Duration::from_secs(15 * 60)),
            reason: "SMTP rate limited: permanent error (550): Connection frequency limited".into()
        }
    );

    let o = sender
        .send(
            &sink.endpoint(from, "fail550@school.example"),
            &message(),
            NOW_MS,
        )
        .await;
    assert!(matches!(o, Outcome::Permanent { .. }), "{o:?}");

    let o = sender
        .send(
            &sink.endpoint("fail501@changle.example", "ok@school.example"),
            &message(),
            NOW_MS,
        )
        .await;
    assert!(matches!(o, Outcome::DisableEndpoint { .. }), "{o:?}");

    // The pooled connection survives the rejections and still delivers.
    let o = sender
        .send(
            &sink.endpoint(from, "ok@school.example"),
            &message(),
            NOW_MS,
        )
        .await;
    assert!(o.is_delivered(), "{o:?}");
    sink.wait_for_eml();
    assert_eq!(sink.stored_count(), 1);
}

#[tokio::test]
async fn unreachable_server_is_retry() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ep = Endpoint::Smtp(SmtpEndpoint {
        host: "127.0.0.1".into(),
        port: Some(port),
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: "a@b.example".into(),
        to: vec!["c@d.example".into()],
        message_id_domain: "x.example".into(),
    });
    let o = Sender::new().unwrap().send(&ep, &message(), NOW_MS).await;
    assert!(matches!(o, Outcome::Retry { after: None, .. }), "{o:?}");
}
