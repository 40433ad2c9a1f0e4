//! A season replay: the real workflow server (simulated clock) and the scheduler share one
//! database; the office drives phase 1 of the Changle 2020 campaign over gRPC, the clock is
//! advanced over gRPC, and the scheduler ticks at chosen instants. Every notification lands on
//! a real local server — aiosmtpd for e-mail, a wiremock server playing the WeCom robots, the
//! leadership's DingTalk robot and Standard-Webhooks receiver and two schools' Feishu bots —
//! and the test asserts, tick by tick, exactly what went out, to whom, on which channel, in
//! which order, and that nothing went out twice. The wiremock server checks every request the
//! way the vendor does (signature, timestamp window, keyword, payload shape) against the
//! simulated clock and answers with the vendor's error code when a check fails.

mod common;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use common::Aiosmtpd;
use hmac::{Hmac, Mac};
use junheng_proto::v1 as pb;
use junheng_scheduler::{GrpcWorkflow, Scheduler, Settings, SignClock};
use junheng_tests::{App, OFFICE_TOKEN, at, auth, key};
use junheng_workflow::ClockMode;
use secrecy::SecretString;
use sha2::Sha256;

const HOOK_SECRET: &str = "whsec_c2Vhc29uLXJlcGxheS1zZWNyZXQ=";

/// The bureau leadership's DingTalk group robot: 加签 plus a custom keyword.
const DING_TOKEN: &str = "leaders-ding-token";
const DING_SECRET: &str = "SECb0e6f7a1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9";
const DING_KEYWORD: &str = "通知";

/// Two schools keep their own Feishu group with a signed custom bot instead of the county's
/// WeCom principals' group: (school index, endpoint, hook id, signing secret).
const FEISHU: [(usize, &str, &str, &str); 2] = [
    (1, "baocheng-feishu", "baocheng-hook", "bcXq7LmN2pRs9TvW"),
    (2, "zhuliu-feishu", "zhuliu-hook", "zlK4fH8jD1sA6gY3"),
];

/// The robots named in a school's contact.
fn robots(i: usize) -> Vec<String> {
    let ep = FEISHU
        .iter()
        .find(|f| f.0 == i)
        .map_or("schools-wecom", |f| f.1);
    vec![ep.to_owned()]
}

/// The six schools: (code, name, contact mobile). Mobiles identify a school in WeCom mentions.
const SCHOOLS: [(&str, &str, &str); 6] = [
    ("3707250101", "昌乐二中", "13800000001"),
    ("3707250102", "宝城小学", "13800000002"),
    ("3707250103", "朱刘小学", "13800000003"),
    ("3707250104", "五图中学", "13800000004"),
    ("3707250105", "红河小学", "13800000005"),
    ("3707250106", "营丘小学", "13800000006"),
];

fn school_email(i: usize) -> String {
    format!("s{}@schools.changle.example", SCHOOLS[i].0)
}

/// One message as a receiving server saw it.
#[derive(Debug, Clone)]
struct Seen {
    /// `email`, `wecom`, `dingtalk`, `feishu` or `webhook`.
    channel: &'static str,
    /// `office`, `leader` or a school name.
    to: String,
    title: String,
    /// Message-ID / "编号" line / webhook-id: the outbox row id.
    id: String,
    body: String,
}

impl Seen {
    fn line(&self) -> String {
        format!("{} {} {}", self.channel, self.to, self.title)
    }
}

fn who_by_email(addr: &str) -> String {
    match addr {
        "office@junheng.example" => "office".into(),
        "leaders@junheng.example" => "leader".into(),
        other => (0..SCHOOLS.len())
            .find(|i| school_email(*i) == other)
            .map(|i| SCHOOLS[i].1.to_owned())
            .unwrap_or_else(|| format!("unknown<{other}>")),
    }
}

/// Everything the SMTP sink stored, in the order it was stored (sends are sequential:
/// dispatch concurrency 1, and aiosmtpd writes the file before answering 250).
fn emails(smtp: &Aiosmtpd) -> Vec<Seen> {
    let mut files: Vec<(std::time::SystemTime, std::path::PathBuf)> = std::fs::read_dir(&smtp.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .map(|p| (std::fs::metadata(&p).unwrap().modified().unwrap(), p))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|(_, p)| {
            let raw = std::fs::read(&p).unwrap();
            let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
            let to: Vec<String> = m
                .to()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.address().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(to.len(), 1, "one addressee per message: {to:?}");
            let id = m
                .message_id()
                .unwrap()
                .trim_end_matches("@junheng.example")
                .to_owned();
            Seen {
                channel: "email",
                to: who_by_email(&to[0]),
                title: m.subject().unwrap().to_owned(),
                id,
                // The raw message (MIME structure) followed by both decoded parts.
                body: format!(
                    "{}\n{}\n{}",
                    String::from_utf8_lossy(&raw),
                    m.body_text(0).unwrap_or_default(),
                    m.body_html(0).unwrap_or_default()
                ),
            }
        })
        .collect()
}

fn hmac_b64(key: &[u8], msg: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(msg);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The vendors' clock: the simulated "now", set whenever the test advances the clock.
type Clock = Arc<Mutex<DateTime<Utc>>>;

/// What a vendor would answer instead of success: (error code, message).
type Refusal = (i64, String);

fn refuse<T>(code: i64, msg: &str) -> Result<T, Refusal> {
    Err((code, msg.to_owned()))
}

/// Checks a request the way its vendor does (CHANNELS.md). `now` is the vendor's clock;
/// `None` skips the freshness windows, for re-reading requests after the clock moved on.
fn vendor_check(r: &wiremock::Request, now: Option<DateTime<Utc>>) -> Result<(), Refusal> {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&r.body) else {
        return refuse(400, "body is not JSON");
    };
    let path = r.url.path();
    let query: HashMap<String, String> = r.url.query_pairs().into_owned().collect();
    if path == "/leaders" {
        // Standard Webhooks: v1,base64(HMAC(key, id.ts.body)), ts within 5 minutes.
        let h = |n: &str| {
            r.headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (Some(id), Some(ts), Some(sig)) = (
            h("webhook-id"),
            h("webhook-timestamp"),
            h("webhook-signature"),
        ) else {
            return refuse(400, "missing webhook headers");
        };
        let Ok(ts_s) = ts.parse::<i64>() else {
            return refuse(400, "bad webhook-timestamp");
        };
        if now.is_some_and(|n| (ts_s - n.timestamp()).abs() > 300) {
            return refuse(401, "webhook-timestamp outside the tolerance");
        }
        let key = base64::engine::general_purpose::STANDARD
            .decode(HOOK_SECRET.trim_start_matches("whsec_"))
            .unwrap();
        let mut signed = format!("{id}.{ts}.").into_bytes();
        signed.extend_from_slice(&r.body);
        let want = format!("v1,{}", hmac_b64(&key, &signed));
        if !sig.split(' ').any(|s| s == want) {
            return refuse(401, "Standard Webhooks signature mismatch");
        }
        return Ok(());
    }
    if path == "/cgi-bin/webhook/send" {
        if !matches!(
            query.get("key").map(String::as_str),
            Some("office-robot" | "schools-robot")
        ) {
            return refuse(93000, "invalid webhook url");
        }
        let msgtype = body["msgtype"].as_str().unwrap_or_default();
        if !matches!(msgtype, "text" | "markdown" | "markdown_v2") {
            return refuse(40008, "invalid message type");
        }
        if body[msgtype]["content"]
            .as_str()
            .is_none_or(|c| c.is_empty())
        {
            return refuse(44004, "empty content");
        }
        return Ok(());
    }
    if path == "/robot/send" {
        // DingTalk: timestamp (ms, within an hour) and sign in the query, the sign being
        // base64(HMAC-SHA256(key = secret, msg = "ts\nsecret")) URL-encoded once, so decoding
        // the query once must give exactly the base64.
        if query.get("access_token").map(String::as_str) != Some(DING_TOKEN) {
            return refuse(300001, "token is not exist");
        }
        let Some(ts) = query.get("timestamp").and_then(|t| t.parse::<i64>().ok()) else {
            return refuse(310000, "invalid timestamp");
        };
        if now.is_some_and(|n| (ts - n.timestamp_millis()).abs() > 3_600_000) {
            return refuse(310000, "invalid timestamp");
        }
        let want = hmac_b64(
            DING_SECRET.as_bytes(),
            format!("{ts}\n{DING_SECRET}").as_bytes(),
        );
        if query.get("sign") != Some(&want) {
            return refuse(310000, "sign not match");
        }
        let content = match body["msgtype"].as_str() {
            Some("markdown") => {
                let (title, text) = (&body["markdown"]["title"], &body["markdown"]["text"]);
                if title.as_str().is_none_or(str::is_empty) {
                    return refuse(400105, "markdown.title is required");
                }
                text.as_str()
            }
            Some("text") => body["text"]["content"].as_str(),
            _ => return refuse(400105, "不支持的消息类型"),
        };
        let Some(content) = content.filter(|c| !c.is_empty()) else {
            return refuse(400105, "content is required");
        };
        let keys: BTreeSet<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let msgtype = body["msgtype"].as_str().unwrap();
        if keys != BTreeSet::from(["at", "msgtype", msgtype]) {
            return refuse(400105, "unexpected fields");
        }
        let at = &body["at"];
        if !(at["atMobiles"].is_array() && at["isAtAll"].is_boolean()) {
            return refuse(400105, "bad at");
        }
        if !content.contains(DING_KEYWORD) {
            return refuse(310000, "keywords not in content");
        }
        return Ok(());
    }
    if let Some(hook) = path.strip_prefix("/open-apis/bot/v2/hook/") {
        // Feishu: timestamp (s, within an hour) and sign in the body, the sign being
        // base64(HMAC-SHA256(key = "ts\nsecret", msg = "")).
        let Some(&(_, _, _, secret)) = FEISHU.iter().find(|f| f.2 == hook) else {
            return refuse(
                19001,
                "param invalid: incoming webhook access token invalid",
            );
        };
        let bad_sign = "sign match fail or timestamp is not within one hour from current time";
        let Some(ts) = body["timestamp"]
            .as_str()
            .and_then(|t| t.parse::<i64>().ok())
        else {
            return refuse(19021, bad_sign);
        };
        if now.is_some_and(|n| (ts - n.timestamp()).abs() > 3600) {
            return refuse(19021, bad_sign);
        }
        if body["sign"].as_str() != Some(&hmac_b64(format!("{ts}\n{secret}").as_bytes(), b"")) {
            return refuse(19021, bad_sign);
        }
        let keys: BTreeSet<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        if keys != BTreeSet::from(["content", "msg_type", "sign", "timestamp"]) {
            return refuse(9499, "Bad Request");
        }
        let post = &body["content"]["post"]["zh_cn"];
        let lines_ok = post["content"].as_array().is_some_and(|lines| {
            !lines.is_empty()
                && lines.iter().all(|l| {
                    l.as_array().is_some_and(|els| {
                        els.iter().all(|e| match e["tag"].as_str() {
                            Some("text") => e["text"].is_string(),
                            Some("a") => e["text"].is_string() && e["href"].is_string(),
                            Some("at") => e["user_id"].is_string(),
                            _ => false,
                        })
                    })
                })
        });
        if body["msg_type"] != "post"
            || post["title"].as_str().is_none_or(str::is_empty)
            || !lines_ok
        {
            return refuse(9499, "Bad Request");
        }
        return Ok(());
    }
    refuse(404, "no such endpoint")
}

/// The local servers' answers: the vendor's success body, or its error for a failed check.
struct Vendors {
    clock: Clock,
}

impl wiremock::Respond for Vendors {
    fn respond(&self, r: &wiremock::Request) -> wiremock::ResponseTemplate {
        let now = *self.clock.lock().unwrap();
        let checked = vendor_check(r, Some(now));
        let path = r.url.path();
        let json = |v| wiremock::ResponseTemplate::new(200).set_body_json(v);
        if path == "/leaders" {
            // A webhook receiver answers with the HTTP status.
            return match checked {
                Ok(()) => wiremock::ResponseTemplate::new(200),
                Err((code, msg)) => {
                    wiremock::ResponseTemplate::new(code as u16).set_body_string(msg)
                }
            };
        }
        if path.starts_with("/open-apis/") {
            return json(match checked {
                Ok(()) => serde_json::json!(
                    {"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}, "msg": "success"}
                ),
                Err((code, msg)) => serde_json::json!({"code": code, "msg": msg, "data": {}}),
            });
        }
        // WeCom and DingTalk: errors inside HTTP 200.
        json(match checked {
            Ok(()) => serde_json::json!({"errcode": 0, "errmsg": "ok"}),
            Err((code, msg)) => serde_json::json!({"errcode": code, "errmsg": msg}),
        })
    }
}

/// The id from a chat message's last line, "编号: <id>" (DingTalk may add " @mobile"s).
fn id_line(last: &str) -> String {
    last.strip_prefix("编号: ")
        .expect("the id line ends every chat message")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// Everything the HTTP mock received, in arrival order: WeCom robots (by `key`), the
/// leadership's DingTalk robot and webhook, and the schools' Feishu bots (by hook id). Every
/// request is checked again here, independently of the answer the mock gave.
async fn chats(server: &wiremock::MockServer) -> Vec<Seen> {
    let mut out = Vec::new();
    for r in server.received_requests().await.unwrap_or_default() {
        if let Err((code, msg)) = vendor_check(&r, None) {
            panic!(
                "{} was refused: {code} {msg}: {}",
                r.url.path(),
                String::from_utf8_lossy(&r.body)
            );
        }
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let path = r.url.path();
        if path == "/leaders" {
            out.push(Seen {
                channel: "webhook",
                to: "leader".into(),
                title: body["title"].as_str().unwrap().to_owned(),
                id: r
                    .headers
                    .get("webhook-id")
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned(),
                body: body.to_string(),
            });
            continue;
        }
        if path == "/robot/send" {
            // Leadership messages carry tables, so markdown; the keyword was put in front of
            // the title because the content lacked it.
            assert_eq!(body["msgtype"], "markdown", "{body}");
            let text = body["markdown"]["text"].as_str().unwrap();
            let title = body["markdown"]["title"].as_str().unwrap();
            assert_eq!(text.lines().next(), Some(format!("### {title}").as_str()));
            out.push(Seen {
                channel: "dingtalk",
                to: "leader".into(),
                title: title.to_owned(),
                id: id_line(text.lines().last().unwrap()),
                body: body.to_string(),
            });
            continue;
        }
        if let Some(hook) = path.strip_prefix("/open-apis/bot/v2/hook/") {
            let post = &body["content"]["post"]["zh_cn"];
            let lines = post["content"].as_array().unwrap();
            let school = FEISHU.iter().find(|f| f.2 == hook).unwrap().0;
            out.push(Seen {
                channel: "feishu",
                to: SCHOOLS[school].1.to_owned(),
                title: post["title"].as_str().unwrap().to_owned(),
                id: id_line(lines.last().unwrap()[0]["text"].as_str().unwrap()),
                body: body.to_string(),
            });
            continue;
        }
        assert_eq!(path, "/cgi-bin/webhook/send", "{}", r.url);
        let key = r
            .url
            .query_pairs()
            .find(|(k, _)| k == "key")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        let msgtype = body["msgtype"].as_str().unwrap().to_owned();
        let content = body[&msgtype]["content"].as_str().unwrap().to_owned();
        let title = content
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("### ")
            .to_owned();
        let id = id_line(content.lines().last().unwrap());
        let to = match key.as_str() {
            "office-robot" => "office".to_owned(),
            "schools-robot" => {
                let mobiles: Vec<String> = body["text"]["mentioned_mobile_list"]
                    .as_array()
                    .expect("school messages mention the contact, so they go as text")
                    .iter()
                    .map(|m| m.as_str().unwrap().to_owned())
                    .collect();
                assert_eq!(mobiles.len(), 1, "{body}");
                SCHOOLS
                    .iter()
                    .find(|s| s.2 == mobiles[0])
                    .map(|s| s.1.to_owned())
                    .unwrap()
            }
            other => panic!("unexpected WeCom key {other}"),
        };
        out.push(Seen {
            channel: "wecom",
            to,
            title,
            id,
            body: body.to_string(),
        });
    }
    out
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

/// What each sink has received so far; `next` returns what arrived since the last call.
struct Ledger {
    smtp: Aiosmtpd,
    http: wiremock::MockServer,
    emails_seen: usize,
    chats_seen: usize,
    all: Vec<Seen>,
}

impl Ledger {
    /// Waits (bounded) for exactly `n_email` new e-mails and `n_chat` new chat requests, then
    /// returns them sorted, e-mail first. Extra arrivals fail the test. The messages of one tick
    /// are sent side by side, so their order within a tick is not part of the contract; the
    /// order from tick to tick is.
    async fn next(&mut self, n_email: usize, n_chat: usize) -> (Vec<String>, Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let e = emails(&self.smtp);
            let c = chats(&self.http).await;
            if e.len() >= self.emails_seen + n_email && c.len() >= self.chats_seen + n_chat {
                // Give a stray extra message a moment to show itself.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let e = emails(&self.smtp);
                let c = chats(&self.http).await;
                let new_e: Vec<Seen> = e[self.emails_seen..].to_vec();
                let new_c: Vec<Seen> = c[self.chats_seen..].to_vec();
                self.emails_seen = e.len();
                self.chats_seen = c.len();
                self.all.extend(new_e.iter().cloned());
                self.all.extend(new_c.iter().cloned());
                return (
                    sorted(new_e.iter().map(Seen::line).collect()),
                    sorted(new_c.iter().map(Seen::line).collect()),
                );
            }
            assert!(
                Instant::now() < deadline,
                "waited for {n_email} e-mails and {n_chat} chat messages; have {} and {}: {:#?}",
                e.len() - self.emails_seen,
                c.len() - self.chats_seen,
                (&e[self.emails_seen..], &c[self.chats_seen..])
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn last(&self, channel: &str, title_prefix: &str) -> &Seen {
        self.all
            .iter()
            .rev()
            .find(|s| s.channel == channel && s.title.starts_with(title_prefix))
            .unwrap_or_else(|| panic!("no {channel} message starting with {title_prefix}"))
    }
}

fn v(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|s| s.to_string()).collect()
}

fn settings(smtp_port: u16, http: &str) -> Arc<Settings> {
    let text = format!(
        r#"
        database_url = "postgres://unused/unused"
        clock = "simulated"
        [dispatch]
        batch_size = 50
        lease_secs = 60
        max_attempts = 3
        backoff_base_secs = 30
        backoff_max_secs = 3600
        concurrency = 1
        [planning]
        digests_enabled = true
        digest_horizon_days = 14

        [endpoints.office-mail]
        kind = "smtp"
        host = "127.0.0.1"
        port = {smtp_port}
        tls = "none"
        from = "jy@junheng.example"
        to = ["office@junheng.example"]
        message_id_domain = "junheng.example"

        [endpoints.leader-mail]
        kind = "smtp"
        host = "127.0.0.1"
        port = {smtp_port}
        tls = "none"
        from = "jy@junheng.example"
        to = ["leaders@junheng.example"]
        message_id_domain = "junheng.example"

        [endpoints.office-wecom]
        kind = "wecom"
        key = "office-robot"
        base_url = "{http}"

        [endpoints.schools-wecom]
        kind = "wecom"
        key = "schools-robot"
        base_url = "{http}"

        [endpoints.leader-hook]
        kind = "webhook"
        url = "{http}/leaders"
        secret = "{HOOK_SECRET}"

        [endpoints.leader-dingtalk]
        kind = "dingtalk"
        access_token = "{DING_TOKEN}"
        secret = "{DING_SECRET}"
        keyword = "{DING_KEYWORD}"
        base_url = "{http}"

        [recipients]
        office = ["office-mail", "office-wecom"]
        leadership = ["leader-mail", "leader-hook", "leader-dingtalk"]
        schools = []
        school_email = "office-mail"
        "#
    );
    let feishu: String = FEISHU
        .iter()
        .map(|(_, name, hook, secret)| {
            format!(
                "[endpoints.{name}]\nkind = \"feishu\"\nhook_id = \"{hook}\"\nsecret = \"{secret}\"\nbase_url = \"{http}\"\n"
            )
        })
        .collect();
    // Endpoint tables may follow [recipients]: TOML tables are order-free.
    Arc::new(Settings::from_toml(&format!("{text}\n{feishu}"), |_| None).unwrap())
}

async fn advance(app: &App, s: &Scheduler, clock: &Clock, to: &str) -> DateTime<Utc> {
    app.advance(to).await;
    *clock.lock().unwrap() = at(to);
    // "Now" as the scheduler reads it (the clock row), and as the workflow reports it.
    let now = s.now().await.unwrap();
    let info = app
        .admin()
        .get_server_info(auth(OFFICE_TOKEN, pb::GetServerInfoRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.now.unwrap().seconds, now.timestamp());
    assert_eq!(now, at(to));
    now
}

async fn tick(app: &App, s: &Scheduler, clock: &Clock, to: &str) -> junheng_scheduler::TickReport {
    let now = advance(app, s, clock, to).await;
    let r = s.tick(now).await.unwrap();
    assert!(r.plan.errors.is_empty(), "{r:?}");
    assert_eq!(
        (r.dispatch.retried, r.dispatch.dead),
        (0, 0),
        "local servers accept everything: {r:?}"
    );
    r
}

#[tokio::test]
async fn a_replayed_season_sends_exactly_the_expected_messages_in_order() {
    let app = App::spawn(ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    })
    .await;
    let smtp = Aiosmtpd::start();
    let http = wiremock::MockServer::start().await;
    let clock: Clock = Arc::new(Mutex::new(at("2020-03-02T09:00:00+08:00")));
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(Vendors {
            clock: clock.clone(),
        })
        .mount(&http)
        .await;
    let workflow =
        Arc::new(GrpcWorkflow::new(&app.server.url(), SecretString::from(OFFICE_TOKEN)).unwrap());
    let s = Scheduler::new(app.pool.clone(), settings(smtp.port, &http.uri()), workflow)
        .unwrap()
        .with_sign_clock(SignClock::Tick);
    let mut seen = Ledger {
        smtp,
        http,
        emails_seen: 0,
        chats_seen: 0,
        all: Vec::new(),
    };

    // ---- 2020-03-02 09:00 (Mon): the campaign, six schools, phase 1 opened. ----
    let o = OFFICE_TOKEN;
    let camp = app
        .campaigns()
        .create_campaign(auth(
            o,
            pb::CreateCampaignRequest {
                idempotency_key: key(),
                definition_toml: junheng_tests::CHANGLE_2020.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let id = camp.id.clone();
    let schools = app
        .schools()
        .register_schools(auth(
            o,
            pb::RegisterSchoolsRequest {
                idempotency_key: key(),
                campaign_id: id.clone(),
                schools: (0..SCHOOLS.len())
                    .map(|i| pb::NewSchool {
                        code: SCHOOLS[i].0.into(),
                        name: SCHOOLS[i].1.into(),
                        level: pb::SchoolLevel::Primary as i32,
                        town: "宝城街道".into(),
                        principal: format!("校长{i}"),
                        contacts: vec![pb::Contact {
                            name: format!("校长{i}"),
                            email: school_email(i),
                            mobile: SCHOOLS[i].2.into(),
                            robots: robots(i),
                        }],
                    })
                    .collect(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .schools;
    assert_eq!(schools.len(), 6);
    app.campaigns()
        .open_phase(auth(
            o,
            pb::OpenPhaseRequest {
                idempotency_key: key(),
                campaign_id: id.clone(),
                phase: pb::Phase::SeedDesignation as i32,
            },
        ))
        .await
        .unwrap();
    // Schools 0–2 are nominated and put on the candidate notice; 3 and 4 apply themselves;
    // 5 does nothing and must receive nothing.
    let dept = app.token("业务科室", pb::Role::Department, "").await;
    for s in &schools[..3] {
        app.seed()
            .nominate(auth(
                &dept,
                pb::NominateRequest {
                    idempotency_key: key(),
                    school_id: s.id.clone(),
                    expected_version: 0,
                    basis: "达到评估标准".into(),
                },
            ))
            .await
            .unwrap();
    }
    let notice = app
        .seed()
        .publish_notice(auth(
            o,
            pb::PublishNoticeRequest {
                idempotency_key: key(),
                campaign_id: id.clone(),
                kind: pb::NoticeKind::SeedCandidates as i32,
                school_ids: schools[..3].iter().map(|s| s.id.clone()).collect(),
                title: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    // Five working days from Monday 03-02: the notice ends after Friday 03-06.
    assert_eq!(
        notice.ends_at.unwrap().seconds,
        at("2020-03-07T00:00:00+08:00").timestamp()
    );
    let mut applications = Vec::new();
    for s in &schools[3..5] {
        let token = app.token(&s.name, pb::Role::School, &s.id).await;
        let a = app
            .seed()
            .submit_application(auth(
                &token,
                pb::SubmitApplicationRequest {
                    idempotency_key: key(),
                    school_id: s.id.clone(),
                    expected_version: 0,
                    self_assessment: camp
                        .indicators
                        .iter()
                        .map(|i| pb::IndicatorScore {
                            indicator: i.code.clone(),
                            score: 85.0,
                            note: String::new(),
                        })
                        .collect(),
                    statement: "申请成为标杆种子校".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        applications.push(a);
    }
    let review = |i: usize, app_id: String, version: i64| pb::ReviewApplicationRequest {
        idempotency_key: key(),
        application_id: app_id,
        decision: pb::Decision::Reject as i32,
        reason: format!("{}自评材料不完整", SCHOOLS[i].1),
        expected_version: version,
    };

    let complete_phase = "完成确定标杆种子校阶段";
    let review3 = format!("复核{}的自主申报", SCHOOLS[3].1);
    let review4 = format!("复核{}的自主申报", SCHOOLS[4].1);
    let nt = notice.title.clone();

    // The first tick starts the digest schedule; nothing is due yet.
    let r = tick(&app, &s, &clock, "2020-03-02T09:00:00+08:00").await;
    assert_eq!((r.plan.planned, r.dispatch.sent), (0, 0), "{r:?}");

    // ---- 17:00: the office's daily digest, on both office channels. ----
    let r = tick(&app, &s, &clock, "2020-03-02T17:00:00+08:00").await;
    assert_eq!((r.plan.digests, r.dispatch.sent), (1, 2), "{r:?}");
    let (e, c) = seen.next(1, 1).await;
    assert_eq!(e, v(&["email office 【每日汇总】2020年3月2日共0项待办"]));
    assert_eq!(c, v(&["wecom office 【每日汇总】2020年3月2日共0项待办"]));

    // ---- Friday 17:00: the digests of Tue–Thu were missed and collapse into Friday's. ----
    let r = tick(&app, &s, &clock, "2020-03-06T17:00:00+08:00").await;
    assert_eq!((r.plan.digests, r.dispatch.sent), (1, 2), "{r:?}");
    let (e, c) = seen.next(1, 1).await;
    assert_eq!(e, v(&["email office 【每日汇总】2020年3月6日共0项待办"]));
    assert_eq!(c, v(&["wecom office 【每日汇总】2020年3月6日共0项待办"]));

    // ---- Saturday 00:01: the notice has ended. The office and the three listed schools are
    // told; e-mail goes now, chat waits for Monday morning; the workflow closes the notice. ----
    let r = tick(&app, &s, &clock, "2020-03-07T00:01:00+08:00").await;
    assert_eq!(
        (r.plan.planned, r.plan.notices_closed, r.dispatch.sent),
        (8, 1, 4),
        "{r:?}"
    );
    assert_eq!(nt, "昌乐县2020年标杆种子校拟定名单公示");
    let expiry = "【公示期满】关于昌乐县2020年标杆种子校拟定名单的公示";
    let (e, c) = seen.next(4, 0).await;
    assert_eq!(
        e,
        sorted(vec![
            format!("email office {expiry}"),
            format!("email {} {expiry}", SCHOOLS[0].1),
            format!("email {} {expiry}", SCHOOLS[1].1),
            format!("email {} {expiry}", SCHOOLS[2].1),
        ])
    );
    assert!(c.is_empty());
    let n = app
        .seed()
        .get_notice(auth(
            o,
            pb::GetNoticeRequest {
                notice_id: notice.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(n.status, "ended", "the scheduler closed the notice");
    let events = app
        .campaigns()
        .list_audit_events(auth(
            o,
            pb::ListAuditEventsRequest {
                campaign_id: id.clone(),
                page_size: 1000,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .events;
    let opened = events
        .iter()
        .find(|e| e.action == "phase.opened")
        .expect("phase.opened");
    let closed: Vec<_> = events
        .iter()
        .filter(|e| e.action == "notice.closed")
        .collect();
    assert_eq!(closed.len(), 1, "closed once");
    assert_eq!(
        (closed[0].actor.as_str(), closed[0].role),
        (opened.actor.as_str(), pb::Role::Office as i32),
        "closed by the office's actor, through the scheduler's office token"
    );
    assert!(closed[0].after_json.contains(&notice.id));
    // A second tick the same night neither re-announces nor re-closes.
    let r = tick(&app, &s, &clock, "2020-03-07T00:30:00+08:00").await;
    assert_eq!(
        (r.plan.planned, r.plan.notices_closed, r.dispatch.sent),
        (0, 0, 0),
        "{r:?}"
    );

    // ---- Monday 08:00: the held WeCom messages go out (school 0 is @-mentioned in the
    // principals' group). Schools 1 and 2 are on Feishu, which throttles at :00 and :30: their
    // held messages were planned for 08:02. They were planned on time (Saturday 00:01), so
    // none is marked late. ----
    let r = tick(&app, &s, &clock, "2020-03-09T08:00:00+08:00").await;
    assert_eq!((r.plan.planned, r.dispatch.sent), (0, 2), "{r:?}");
    let (e, c) = seen.next(0, 2).await;
    assert!(e.is_empty());
    assert_eq!(
        c,
        sorted(vec![
            format!("wecom office {expiry}"),
            format!("wecom {} {expiry}", SCHOOLS[0].1),
        ])
    );
    // The office's copy lists the three schools; each school's own copy names only itself.
    let office = seen
        .all
        .iter()
        .find(|s| s.channel == "wecom" && s.to == "office" && s.title.starts_with("【公示期满】"))
        .expect("the office's WeCom copy");
    for (i, school) in SCHOOLS[..3].iter().enumerate() {
        assert!(
            office.body.contains(&format!("{}. {}", i + 1, school.1)),
            "{}",
            office.body
        );
    }
    // It carries what the 公示 carried: basis, period, how to object, contacts, 落款.
    for part in [
        "根据《昌乐县2020年义务教育优质均衡系列示范校创建实施方案》（乐教督字〔2020〕2号）要求，经学校申报、昌乐县人民政府教育督导室审核，现将昌乐县2020年标杆种子校拟定名单予以公示。",
        "公示期：2020年3月2日至2020年3月6日（共5个工作日）",
        "匿名异议不予受理。",
        "监督电话：0536-6212345",
        "昌乐县教育和体育局",
    ] {
        assert!(office.body.contains(part), "{part}: {}", office.body);
    }
    let wecom = seen.last("wecom", "【公示期满】");
    assert!(
        wecom
            .body
            .contains(&format!("{}在名单中（名单共3所学校）", SCHOOLS[0].1)),
        "{}",
        wecom.body
    );
    let r = tick(&app, &s, &clock, "2020-03-09T08:02:00+08:00").await;
    assert_eq!((r.plan.planned, r.dispatch.sent), (0, 2), "{r:?}");
    let (e, c) = seen.next(0, 2).await;
    assert!(e.is_empty());
    assert_eq!(
        c,
        sorted(vec![
            format!("feishu {} {expiry}", SCHOOLS[1].1),
            format!("feishu {} {expiry}", SCHOOLS[2].1),
        ])
    );
    let feishu = seen.last("feishu", "【公示期满】");
    assert!(feishu.body.contains(SCHOOLS[2].1), "{}", feishu.body);
    assert!(
        !feishu.body.contains("补发") && !feishu.body.contains(SCHOOLS[2].2),
        "on time, and Feishu bots cannot @ by mobile: {}",
        feishu.body
    );

    // ---- 04-22: the office rejects school 4's application before any reminder is due. ----
    advance(&app, &s, &clock, "2020-04-22T10:00:00+08:00").await;
    let s4 = app
        .schools()
        .get_school(auth(
            o,
            pb::GetSchoolRequest {
                school_id: schools[4].id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    app.seed()
        .review_application(auth(o, review(4, applications[1].id.clone(), s4.version)))
        .await
        .unwrap();

    // ---- 04-23 08:30 (Thu): 7 days before the phase deadline (last day 04-30). The office is
    // reminded of completing the phase and of school 3's pending application; school 4's
    // review is done, so no reminder. Wednesday's digest (caught up: the scheduler did not
    // tick at 17:00, so it was down as far as anyone can tell) lists both, and says it is
    // late: due 15½ hours ago on both channels (17:00 is outside quiet hours). It keeps its
    // own instant, so it still goes before this morning's reminders. ----
    let r = tick(&app, &s, &clock, "2020-04-23T08:30:00+08:00").await;
    assert_eq!((r.plan.digests, r.dispatch.sent), (1, 6), "{r:?}");
    let (e, c) = seen.next(3, 3).await;
    let want = |ch: &str| {
        sorted(vec![
            format!("{ch} office 【每日汇总】2020年4月22日共2项待办（补发）"),
            format!("{ch} office 【提醒】{complete_phase}距截止还有7天"),
            format!("{ch} office 【提醒】{review3}距截止还有7天"),
        ])
    };
    assert_eq!(e, want("email"));
    assert_eq!(c, want("wecom"));
    let late_note = |day: u32| format!("原定于2020年4月{day}日17:00发送，因系统停机延后补发。");
    for ch in ["email", "wecom"] {
        let digest = seen.last(ch, "【每日汇总】");
        assert!(digest.body.contains(&late_note(22)), "{}", digest.body);
    }
    assert!(!seen.last("wecom", "【提醒】").body.contains("补发"));
    let reminder = seen.last("email", "【提醒】");
    assert!(
        reminder.body.contains("2020年4月30日24时"),
        "{}",
        reminder.body
    );

    // ---- 04-24: the office extends phase 1 to 05-15; reminders are re-planned. ----
    advance(&app, &s, &clock, "2020-04-24T10:00:00+08:00").await;
    app.campaigns()
        .extend_deadline(auth(
            o,
            pb::ExtendDeadlineRequest {
                idempotency_key: key(),
                campaign_id: id.clone(),
                phase: pb::Phase::SeedDesignation as i32,
                milestone: String::new(),
                new_last_day: "2020-05-15".into(),
                reason: "疫情影响，延长申报复核时间".into(),
            },
        ))
        .await
        .unwrap();

    // ---- 04-27 08:30: the old 3-day occasion; nothing is reminded, only Friday's digest
    // (whose horizon no longer reaches the moved deadline), late. Sunday 04-26 was a working
    // day in 2020, but the digest cron runs Monday to Friday. ----
    let r = tick(&app, &s, &clock, "2020-04-27T08:30:00+08:00").await;
    assert_eq!((r.plan.planned, r.dispatch.sent), (2, 2), "{r:?}");
    let (e, c) = seen.next(1, 1).await;
    assert_eq!(
        e,
        v(&["email office 【每日汇总】2020年4月24日共0项待办（补发）"])
    );
    assert_eq!(
        c,
        v(&["wecom office 【每日汇总】2020年4月24日共0项待办（补发）"])
    );
    assert!(
        seen.last("wecom", "【每日汇总】")
            .body
            .contains(&late_note(24))
    );

    // ---- 05-08 08:30 (Fri): 7 days before the new last day; Thursday's digest, late. ----
    let r = tick(&app, &s, &clock, "2020-05-08T08:30:00+08:00").await;
    assert_eq!((r.plan.digests, r.dispatch.sent), (1, 6), "{r:?}");
    let (e, c) = seen.next(3, 3).await;
    let want = |ch: &str| {
        sorted(vec![
            format!("{ch} office 【每日汇总】2020年5月7日共2项待办（补发）"),
            format!("{ch} office 【提醒】{complete_phase}距截止还有7天"),
            format!("{ch} office 【提醒】{review3}距截止还有7天"),
        ])
    };
    assert_eq!(e, want("email"));
    assert_eq!(c, want("wecom"));
    let reminder = seen.last("email", "【提醒】");
    assert!(
        reminder.body.contains("2020年5月15日24时"),
        "{}",
        reminder.body
    );

    // ---- 05-08 10:00: school 3 is reviewed and phase 1 completed (possible only because the
    // scheduler closed the notice): leadership gets the summary, on time, with a chart by
    // e-mail and a markdown table by webhook and on DingTalk (whose robot's keyword the
    // content lacked, so it leads the title). DingTalk has no :00 rule: it goes at 10:00. ----
    advance(&app, &s, &clock, "2020-05-08T10:00:00+08:00").await;
    let s3 = app
        .schools()
        .get_school(auth(
            o,
            pb::GetSchoolRequest {
                school_id: schools[3].id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    app.seed()
        .review_application(auth(o, review(3, applications[0].id.clone(), s3.version)))
        .await
        .unwrap();
    app.campaigns()
        .complete_phase(auth(
            o,
            pb::CompletePhaseRequest {
                idempotency_key: key(),
                campaign_id: id.clone(),
                phase: pb::Phase::SeedDesignation as i32,
            },
        ))
        .await
        .unwrap();
    let r = tick(&app, &s, &clock, "2020-05-08T10:00:00+08:00").await;
    assert_eq!((r.plan.summaries, r.dispatch.sent), (1, 3), "{r:?}");
    let (e, c) = seen.next(1, 2).await;
    let summary = "【阶段小结】昌乐县2020年义务教育优质均衡提升行动「确定标杆种子校」";
    assert_eq!(e, vec![format!("email leader {summary}")]);
    assert_eq!(
        c,
        sorted(vec![
            format!("dingtalk leader {DING_KEYWORD} {summary}"),
            format!("webhook leader {summary}"),
        ])
    );
    let mail = seen.last("email", "【阶段小结】");
    assert!(mail.body.contains("multipart/related"), "inline chart");
    assert!(mail.body.contains("Content-Type: image/png"));
    assert!(mail.body.contains("Content-ID: <phase-summary-counts>"));
    let seed_list = format!("{}、{}、{}", SCHOOLS[0].1, SCHOOLS[1].1, SCHOOLS[2].1);
    assert!(
        mail.body.contains(&seed_list),
        "the seed list: {}",
        mail.body
    );
    let hook = seen.last("webhook", "【阶段小结】");
    let hook_body: serde_json::Value = serde_json::from_str(&hook.body).unwrap();
    let md = hook_body["markdown"].as_str().unwrap();
    assert!(md.contains("| 状态 | 学校数 |"), "{md}");
    // The scheduler closed the notice a minute after it ended, the first moment it could:
    // that is not "late" for leadership.
    assert!(!md.contains("公示期满"), "{md}");
    let ding = seen.last("dingtalk", DING_KEYWORD);
    let ding_body: serde_json::Value = serde_json::from_str(&ding.body).unwrap();
    let text = ding_body["markdown"]["text"].as_str().unwrap();
    assert!(text.contains("| 状态 | 学校数 |"), "{text}");
    assert!(
        seen.all
            .iter()
            .filter(|m| m.title.contains("阶段小结"))
            .all(|m| !m.body.contains("补发")),
        "on time"
    );

    // A later tick the same morning sends nothing more.
    let r = tick(&app, &s, &clock, "2020-05-08T11:00:00+08:00").await;
    assert_eq!((r.plan.planned, r.dispatch.sent), (0, 0), "{r:?}");
    let (e, c) = seen.next(0, 0).await;
    assert!(e.is_empty() && c.is_empty());

    // ---- The whole season: every channel kind was used, nobody got anything twice, school 5
    // got nothing, the rejected application was never reminded, and the outbox agrees with
    // what the servers saw. ----
    assert_eq!(seen.all.len(), 29);
    let channels: BTreeSet<&str> = seen.all.iter().map(|m| m.channel).collect();
    assert_eq!(
        channels,
        BTreeSet::from(["dingtalk", "email", "feishu", "webhook", "wecom"])
    );
    let ids: HashSet<&str> = seen.all.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        ids.len(),
        seen.all.len(),
        "distinct Message-IDs / message ids"
    );
    assert!(seen.all.iter().all(|m| m.to != SCHOOLS[5].1));
    assert!(seen.all.iter().all(|m| !m.title.contains(&review4)));
    let sent: Vec<(uuid::Uuid, String)> =
        sqlx::query_as("SELECT id, status FROM outbox WHERE status <> 'cancelled'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(sent.len(), 29, "{sent:?}");
    for (row, status) in &sent {
        assert_eq!(status, "sent");
        assert!(
            ids.contains(row.to_string().as_str()),
            "{row} was not received"
        );
    }
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM delivery_log")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 29, "one attempt per message");
}

/// Found by the replay above: a chat message planned late (the scheduler was down, or the
/// simulated clock jumped, from Friday until Saturday 00:01) must still wait for working
/// hours — Friday's 17:00 digest goes to chat on Monday morning, not at 00:01 on Saturday.
#[tokio::test]
async fn a_caught_up_chat_digest_waits_for_working_hours() {
    let db = common::TestDb::new().await;
    let sink = common::webhook_sink().await;
    common::seed_campaign(&db.pool).await;
    let s = Scheduler::new(
        db.pool.clone(),
        common::settings(
            &format!("{}/hook", sink.uri()),
            "[planning]\ndigests_enabled = true\n",
        ),
        Arc::new(junheng_scheduler::NoWorkflow),
    )
    .unwrap()
    .with_sign_clock(SignClock::Tick);
    // Friday 2020-03-06 09:00 starts the digest schedule; the next tick is Saturday 00:01.
    s.tick(common::local(2020, 3, 6, 9, 0)).await.unwrap();
    let r = s.tick(common::local(2020, 3, 7, 0, 1)).await.unwrap();
    assert_eq!(r.plan.digests, 1, "Friday's digest is caught up");
    assert!(
        common::received(&sink).await.is_empty(),
        "nothing goes to chat at 00:01 on a Saturday"
    );
    let r = s.tick(common::local(2020, 3, 9, 8, 0)).await.unwrap();
    assert_eq!(r.dispatch.sent, 1, "held until Monday 08:00");
}
