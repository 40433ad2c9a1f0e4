//! Chat robots and webhooks against a real HTTP server (wiremock) standing in for
//! the vendors. Signatures are re-computed here independently, the way each vendor
//! documents the check.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use junheng_notify::{
    DingTalkEndpoint, Endpoint, FeishuEndpoint, FileEndpoint, Message, Outcome, Sender,
    SlackEndpoint, WeComEndpoint, WebhookEndpoint,
};
use serde_json::{Value, json};
use sha2::Sha256;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const NOW_MS: i64 = 1_700_000_000_123;

fn sender() -> Sender {
    Sender::with_timeout(Duration::from_secs(5)).unwrap()
}

fn message() -> Message {
    Message {
        id: "0190a1b2-reminder-42".into(),
        title: "【提醒】昌乐县 2020 年种子校申请截止还有 3 天".into(),
        text: "王校长：\n申请材料请于 5 月 10 日前提交。".into(),
        markdown: None,
        html: None,
        attachments: vec![],
        mention_mobiles: vec![],
        urgent: false,
    }
}

fn hmac_b64(key: &[u8], msg: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(msg);
    B64.encode(mac.finalize().into_bytes())
}

fn ok_json(v: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(v)
}

/// Starts a server that answers every POST with `resp`, sends `msg` to the endpoint
/// made by `ep`, and returns the outcome and the bodies received.
async fn exchange(
    resp: ResponseTemplate,
    ep: impl FnOnce(&str) -> Endpoint,
    msg: &Message,
) -> (Outcome, Vec<wiremock::Request>) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(resp)
        .mount(&server)
        .await;
    let endpoint = ep(&server.uri());
    let outcome = sender().send(&endpoint, msg, NOW_MS).await;
    (outcome, server.received_requests().await.unwrap())
}

fn wecom(base: &str) -> Endpoint {
    Endpoint::WeCom(WeComEndpoint {
        key: "wecom-key-1".into(),
        base_url: base.into(),
    })
}

fn dingtalk(base: &str) -> Endpoint {
    Endpoint::DingTalk(DingTalkEndpoint {
        access_token: "ding-token".into(),
        secret: Some("SEC0123456789abcdef".into()),
        keyword: None,
        base_url: base.into(),
    })
}

fn feishu(base: &str) -> Endpoint {
    Endpoint::Feishu(FeishuEndpoint {
        hook_id: "hook-uuid".into(),
        secret: Some("feishu-secret".into()),
        base_url: base.into(),
    })
}

fn after(o: &Outcome) -> Option<Duration> {
    match o {
        Outcome::Retry { after, .. } => *after,
        other => panic!("expected Retry, got {other:?}"),
    }
}

// ---------------------------------------------------------------- WeCom

#[tokio::test]
async fn wecom_markdown_payload_is_exact() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/cgi-bin/webhook/send"))
        .and(query_param("key", "wecom-key-1"))
        .respond_with(ok_json(json!({"errcode": 0, "errmsg": "ok"})))
        .expect(1)
        .mount(&server)
        .await;
    let mut msg = message();
    msg.markdown = Some("**申请材料**请于 5 月 10 日前提交".into());
    let outcome = sender().send(&wecom(&server.uri()), &msg, NOW_MS).await;
    assert!(outcome.is_delivered(), "{outcome:?}");
    let body: Value = server.received_requests().await.unwrap()[0]
        .body_json()
        .unwrap();
    assert_eq!(
        body,
        json!({"msgtype": "markdown", "markdown": {"content":
            "### 【提醒】昌乐县 2020 年种子校申请截止还有 3 天\n**申请材料**请于 5 月 10 日前提交\n\n编号: 0190a1b2-reminder-42"}})
    );
}

#[tokio::test]
async fn wecom_uses_markdown_v2_for_tables() {
    let mut msg = message();
    msg.markdown = Some("| 状态 | 数量 |\n| --- | --- |\n| 已提交 | 12 |".into());
    let (outcome, reqs) =
        exchange(ok_json(json!({"errcode": 0, "errmsg": "ok"})), wecom, &msg).await;
    assert!(outcome.is_delivered());
    let body: Value = reqs[0].body_json().unwrap();
    assert_eq!(body["msgtype"], "markdown_v2");
    assert!(
        body["markdown_v2"]["content"]
            .as_str()
            .unwrap()
            .contains("| 已提交 | 12 |")
    );
}

#[tokio::test]
async fn wecom_mentions_force_text_with_mobile_list() {
    let mut msg = message();
    msg.markdown = Some("**不会使用**".into());
    msg.mention_mobiles = vec!["13800001111".into()];
    msg.urgent = true;
    let (outcome, reqs) =
        exchange(ok_json(json!({"errcode": 0, "errmsg": "ok"})), wecom, &msg).await;
    assert!(outcome.is_delivered());
    assert_eq!(
        reqs[0].body_json::<Value>().unwrap(),
        json!({"msgtype": "text", "text": {
            "content": "【紧急】【提醒】昌乐县 2020 年种子校申请截止还有 3 天\n王校长：\n申请材料请于 5 月 10 日前提交。\n编号: 0190a1b2-reminder-42",
            "mentioned_mobile_list": ["13800001111"],
        }})
    );
}

#[tokio::test]
async fn wecom_business_errors_inside_http_200() {
    let cases: [(i64, &str); 6] = [
        (-1, "retry"),
        (45009, "retry60"),
        (93000, "disable"),
        (93008, "disable"),
        (40058, "permanent"),
        (44004, "permanent"),
    ];
    for (code, want) in cases {
        let (o, _) = exchange(
            ok_json(json!({"errcode": code, "errmsg": "x"})),
            wecom,
            &message(),
        )
        .await;
        match want {
            "retry" => assert_eq!(after(&o), None, "{code}"),
            "retry60" => assert!(after(&o).unwrap() >= Duration::from_secs(60), "{code}"),
            "disable" => assert!(
                matches!(o, Outcome::DisableEndpoint { .. }),
                "{code}: {o:?}"
            ),
            _ => assert!(matches!(o, Outcome::Permanent { .. }), "{code}: {o:?}"),
        }
    }
}

#[tokio::test]
async fn wecom_long_text_goes_in_parts_and_fails_as_a_whole() {
    let server = MockServer::start().await;
    // First part accepted, every later one throttled.
    Mock::given(method("POST"))
        .respond_with(ok_json(json!({"errcode": 0, "errmsg": "ok"})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ok_json(
            json!({"errcode": 45009, "errmsg": "api freq out of limit"}),
        ))
        .with_priority(2)
        .mount(&server)
        .await;
    let mut msg = message();
    msg.text = "请各校按时提交均衡发展自评材料。\n".repeat(150); // ~7 KB
    let outcome = sender().send(&wecom(&server.uri()), &msg, NOW_MS).await;
    match &outcome {
        Outcome::Retry { reason, .. } => assert!(reason.starts_with("part 2/"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2, "stops at the first failed part");
    let first: Value = reqs[0].body_json().unwrap();
    let content = first["text"]["content"].as_str().unwrap();
    assert!(content.len() <= 2048);
    assert!(content.contains("截止还有 3 天 (1/4)"), "{content}");
    assert!(content.ends_with("编号: 0190a1b2-reminder-42"));
}

#[tokio::test]
async fn wecom_all_parts_delivered() {
    let mut msg = message();
    msg.text = "请各校按时提交均衡发展自评材料。\n".repeat(150);
    let (outcome, reqs) =
        exchange(ok_json(json!({"errcode": 0, "errmsg": "ok"})), wecom, &msg).await;
    assert_eq!(
        outcome,
        Outcome::Delivered {
            detail: "4 parts accepted".into()
        }
    );
    assert_eq!(reqs.len(), 4);
}

// ---------------------------------------------------------------- DingTalk

#[tokio::test]
async fn dingtalk_signature_and_markdown_payload() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/robot/send"))
        .and(query_param("access_token", "ding-token"))
        .and(query_param("timestamp", NOW_MS.to_string()))
        .respond_with(ok_json(json!({"errcode": 0, "errmsg": "ok"})))
        .expect(1)
        .mount(&server)
        .await;
    let mut msg = message();
    msg.markdown = Some("申请材料请于 **5 月 10 日**前提交".into());
    msg.mention_mobiles = vec!["13800001111".into()];
    let ep = Endpoint::DingTalk(DingTalkEndpoint {
        access_token: "ding-token".into(),
        secret: Some("SEC0123456789abcdef".into()),
        keyword: Some("均衡".into()),
        base_url: server.uri(),
    });
    let outcome = sender().send(&ep, &msg, NOW_MS).await;
    assert!(outcome.is_delivered(), "{outcome:?}");

    let req = &server.received_requests().await.unwrap()[0];
    // DingTalk's check: HMAC-SHA256 keyed with the secret over "ts\nsecret".
    let expected = hmac_b64(
        b"SEC0123456789abcdef",
        format!("{NOW_MS}\nSEC0123456789abcdef").as_bytes(),
    );
    let sign = req
        .url
        .query_pairs()
        .find(|(k, _)| k == "sign")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    assert_eq!(sign, expected);
    assert!(
        !req.url.query().unwrap().contains("%25"),
        "sign must be percent-encoded exactly once"
    );
    assert_eq!(
        req.body_json::<Value>().unwrap(),
        json!({
            "msgtype": "markdown",
            "markdown": {
                "title": "均衡 【提醒】昌乐县 2020 年种子校申请截止还有 3 天",
                "text": "### 均衡 【提醒】昌乐县 2020 年种子校申请截止还有 3 天\n\n申请材料请于 **5 月 10 日**前提交\n\n编号: 0190a1b2-reminder-42 @13800001111",
            },
            "at": {"atMobiles": ["13800001111"], "atUserIds": [], "isAtAll": false},
        })
    );
}

#[tokio::test]
async fn dingtalk_text_without_markdown_and_keyword_already_present() {
    let ep = |base: &str| {
        Endpoint::DingTalk(DingTalkEndpoint {
            access_token: "t".into(),
            secret: None,
            keyword: Some("种子校".into()),
            base_url: base.into(),
        })
    };
    let (o, reqs) = exchange(
        ok_json(json!({"errcode": 0, "errmsg": "ok"})),
        ep,
        &message(),
    )
    .await;
    assert!(o.is_delivered());
    assert!(reqs[0].url.query_pairs().all(|(k, _)| k != "sign"));
    assert_eq!(
        reqs[0].body_json::<Value>().unwrap(),
        json!({
            "msgtype": "text",
            "text": {"content": "【提醒】昌乐县 2020 年种子校申请截止还有 3 天\n王校长：\n申请材料请于 5 月 10 日前提交。\n编号: 0190a1b2-reminder-42"},
            "at": {"atMobiles": [], "atUserIds": [], "isAtAll": false},
        })
    );
}

#[tokio::test]
async fn dingtalk_business_errors_inside_http_200() {
    let ten_min = Duration::from_secs(600);
    let cases: [(i64, &str, &str); 7] = [
        (310000, "sign not match", "disable"),
        (310000, "keywords not in content", "disable"),
        (
            130101,
            "send too fast, exceed 20 times per minute",
            "throttle",
        ),
        (410100, "发送速度太快而限流", "throttle"),
        (300001, "token is not exist", "disable"),
        (430102, "含有不安全的外链", "permanent"),
        (-1, "系统繁忙", "retry"),
    ];
    for (code, errmsg, want) in cases {
        let (o, _) = exchange(
            ok_json(json!({"errcode": code, "errmsg": errmsg})),
            dingtalk,
            &message(),
        )
        .await;
        match want {
            "throttle" => assert_eq!(after(&o), Some(ten_min), "{code}"),
            "retry" => assert_eq!(after(&o), None, "{code}"),
            "disable" => assert!(
                matches!(o, Outcome::DisableEndpoint { .. }),
                "{code}: {o:?}"
            ),
            _ => assert!(matches!(o, Outcome::Permanent { .. }), "{code}: {o:?}"),
        }
    }
}

#[tokio::test]
async fn dingtalk_long_markdown_is_split_under_19kb() {
    let mut msg = message();
    msg.markdown = Some(
        "| 学校 | 状态 |\n| --- | --- |\n".to_owned()
            + &"| 昌乐县第二实验小学 | 已提交 |\n".repeat(1200),
    );
    let (o, reqs) = exchange(
        ok_json(json!({"errcode": 0, "errmsg": "ok"})),
        dingtalk,
        &msg,
    )
    .await;
    assert!(o.is_delivered(), "{o:?}");
    assert!(reqs.len() >= 3, "{}", reqs.len());
    for (i, r) in reqs.iter().enumerate() {
        assert!(
            r.body.len() <= 19_000,
            "part {i} has {} bytes",
            r.body.len()
        );
        let v: Value = r.body_json().unwrap();
        assert!(v["markdown"]["title"].as_str().unwrap().ends_with(&format!(
            "({}/{})",
            i + 1,
            reqs.len()
        )));
    }
}

// ---------------------------------------------------------------- Feishu

#[tokio::test]
async fn feishu_signature_and_post_payload() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/open-apis/bot/v2/hook/hook-uuid"))
        .respond_with(ok_json(
            json!({"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}, "msg": "success"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let outcome = sender()
        .send(&feishu(&server.uri()), &message(), NOW_MS)
        .await;
    assert!(outcome.is_delivered(), "{outcome:?}");
    let body: Value = server.received_requests().await.unwrap()[0]
        .body_json()
        .unwrap();
    let ts = "1700000000";
    // Feishu's check: HMAC keyed with "ts\nsecret" over an empty message.
    let expected = hmac_b64(format!("{ts}\nfeishu-secret").as_bytes(), b"");
    assert_eq!(
        body,
        json!({
            "timestamp": ts,
            "sign": expected,
            "msg_type": "post",
            "content": {"post": {"zh_cn": {
                "title": "【提醒】昌乐县 2020 年种子校申请截止还有 3 天",
                "content": [
                    [{"tag": "text", "text": "王校长："}],
                    [{"tag": "text", "text": "申请材料请于 5 月 10 日前提交。"}],
                    [{"tag": "text", "text": "编号: 0190a1b2-reminder-42"}],
                ],
            }}},
        })
    );
}

#[tokio::test]
async fn feishu_error_codes() {
    let cases: [(u16, i64, &str, &str); 5] = [
        (
            200,
            19021,
            "sign match fail or timestamp is not within one hour from current time",
            "disable",
        ),
        (200, 19024, "Key Words Not Found", "disable"),
        (200, 11232, "frequency limited psm", "retry"),
        (400, 9499, "too many request", "retry"),
        (400, 9499, "Bad Request", "permanent"),
    ];
    for (status, code, m, want) in cases {
        let (o, _) = exchange(
            ResponseTemplate::new(status)
                .set_body_json(json!({"code": code, "msg": m, "data": {}})),
            feishu,
            &message(),
        )
        .await;
        match want {
            "retry" => assert_eq!(after(&o), None, "{code}"),
            "disable" => assert!(
                matches!(o, Outcome::DisableEndpoint { .. }),
                "{code}: {o:?}"
            ),
            _ => assert!(matches!(o, Outcome::Permanent { .. }), "{code}: {o:?}"),
        }
    }
}

// ---------------------------------------------------------------- Slack

fn slack(base: &str) -> Endpoint {
    Endpoint::Slack(SlackEndpoint {
        url: format!("{base}/services/T000/B000/XXXX").into(),
    })
}

#[tokio::test]
async fn slack_payload_and_status_classes() {
    let (o, reqs) = exchange(
        ResponseTemplate::new(200).set_body_string("ok"),
        slack,
        &message(),
    )
    .await;
    assert!(o.is_delivered(), "{o:?}");
    assert_eq!(reqs[0].url.path(), "/services/T000/B000/XXXX");
    assert_eq!(
        reqs[0].body_json::<Value>().unwrap(),
        json!({"text": "*【提醒】昌乐县 2020 年种子校申请截止还有 3 天*\n王校长：\n申请材料请于 5 月 10 日前提交。\n编号: 0190a1b2-reminder-42"})
    );

    let (o, _) = exchange(
        ResponseTemplate::new(429).insert_header("Retry-After", "30"),
        slack,
        &message(),
    )
    .await;
    assert_eq!(after(&o), Some(Duration::from_secs(30)));

    let (o, _) = exchange(
        ResponseTemplate::new(410).set_body_string("channel_is_archived"),
        slack,
        &message(),
    )
    .await;
    assert!(matches!(o, Outcome::DisableEndpoint { .. }), "{o:?}");

    let (o, _) = exchange(
        ResponseTemplate::new(400).set_body_string("invalid_payload"),
        slack,
        &message(),
    )
    .await;
    assert!(matches!(o, Outcome::Permanent { .. }), "{o:?}");

    let (o, _) = exchange(
        ResponseTemplate::new(500).set_body_string("rollup_error"),
        slack,
        &message(),
    )
    .await;
    assert_eq!(after(&o), None);
}

// ---------------------------------------------------------------- Standard Webhooks

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn webhook(base: &str) -> Endpoint {
    Endpoint::Webhook(WebhookEndpoint {
        url: format!("{base}/hooks/junheng"),
        secret: WHSEC.into(),
    })
}

#[tokio::test]
async fn webhook_is_signed_over_the_exact_bytes() {
    let mut msg = message();
    msg.markdown = Some("**申请材料**".into());
    let (o, reqs) = exchange(ResponseTemplate::new(204), webhook, &msg).await;
    assert!(o.is_delivered(), "{o:?}");
    let req = &reqs[0];
    let header = |name: &str| req.headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(header("webhook-id"), "0190a1b2-reminder-42");
    assert_eq!(header("webhook-timestamp"), "1700000000");
    // The receiver's check, per the Standard Webhooks spec.
    let key = B64.decode(WHSEC.strip_prefix("whsec_").unwrap()).unwrap();
    let mut signed = b"0190a1b2-reminder-42.1700000000.".to_vec();
    signed.extend_from_slice(&req.body);
    assert_eq!(
        header("webhook-signature"),
        format!("v1,{}", hmac_b64(&key, &signed))
    );
    assert_eq!(
        req.body_json::<Value>().unwrap(),
        json!({
            "id": "0190a1b2-reminder-42",
            "title": "【提醒】昌乐县 2020 年种子校申请截止还有 3 天",
            "text": "王校长：\n申请材料请于 5 月 10 日前提交。",
            "markdown": "**申请材料**",
        })
    );
}

#[tokio::test]
async fn webhook_status_classes() {
    let (o, _) = exchange(
        ResponseTemplate::new(503).insert_header("Retry-After", "120"),
        webhook,
        &message(),
    )
    .await;
    assert_eq!(after(&o), Some(Duration::from_secs(120)));
    let (o, _) = exchange(ResponseTemplate::new(408), webhook, &message()).await;
    assert_eq!(after(&o), None);
    let (o, _) = exchange(ResponseTemplate::new(422), webhook, &message()).await;
    assert!(matches!(o, Outcome::Permanent { .. }), "{o:?}");
    // A redirect is not followed with a signed body.
    let (o, reqs) = exchange(
        ResponseTemplate::new(308).insert_header("Location", "http://127.0.0.1:9/x"),
        webhook,
        &message(),
    )
    .await;
    assert!(matches!(o, Outcome::Permanent { .. }), "{o:?}");
    assert_eq!(reqs.len(), 1);
}

#[tokio::test]
async fn bad_webhook_secret_disables_endpoint() {
    let ep = Endpoint::Webhook(WebhookEndpoint {
        url: "http://127.0.0.1:9/x".into(),
        secret: "whsec_***".into(),
    });
    let o = sender().send(&ep, &message(), NOW_MS).await;
    assert!(matches!(o, Outcome::DisableEndpoint { .. }), "{o:?}");
}

// ---------------------------------------------------------------- transport failures

#[tokio::test]
async fn slow_vendor_times_out_as_retry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok_json(json!({"errcode": 0})).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let sender = Sender::with_timeout(Duration::from_millis(300)).unwrap();
    let o = sender.send(&wecom(&server.uri()), &message(), NOW_MS).await;
    match o {
        Outcome::Retry {
            after: None,
            reason,
        } => assert!(reason.contains("timed out"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn refused_connection_is_retry_and_does_not_leak_the_key() {
    // Bind then drop a listener to get a port that refuses connections.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = sender()
        .send(
            &wecom(&format!("http://127.0.0.1:{port}")),
            &message(),
            NOW_MS,
        )
        .await;
    match o {
        Outcome::Retry { reason, .. } => assert!(!reason.contains("wecom-key-1"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- file sink

#[tokio::test]
async fn file_sink_writes_markdown_idempotently() {
    let dir = std::env::temp_dir().join(format!("junheng-notify-file-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ep = Endpoint::File(FileEndpoint { dir: dir.clone() });
    let mut msg = message();
    let o = sender().send(&ep, &msg, NOW_MS).await;
    assert!(o.is_delivered(), "{o:?}");
    let path = dir.join("0190a1b2-reminder-42.md");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "# 【提醒】昌乐县 2020 年种子校申请截止还有 3 天\n\n王校长：\n申请材料请于 5 月 10 日前提交。\n\n编号: 0190a1b2-reminder-42\n"
    );
    // A retry of the same id overwrites instead of adding a file.
    msg.text = "第二次".into();
    assert!(sender().send(&ep, &msg, NOW_MS + 1).await.is_delivered());
    assert!(std::fs::read_to_string(&path).unwrap().contains("第二次"));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
