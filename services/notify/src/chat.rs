//! Chat robots and HTTP webhooks: payloads, signing, size splitting and the
//! classification of vendor answers.
//!
//! A message too long for one request is sent as several parts, each titled
//! "(i/n)" and each carrying the same "编号" line. The attempt counts as delivered
//! only when every part was accepted; otherwise the scheduler retries the whole
//! message, so a receiver may see early parts twice and can de-duplicate by 编号.

use std::time::Duration;

use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::endpoint::{
    DingTalkEndpoint, Endpoint, FeishuEndpoint, SlackEndpoint, WeComEndpoint, WebhookEndpoint,
};
use crate::{Message, Outcome, sign, split_utf8};

// Limits in UTF-8 bytes (CHANNELS.md). DingTalk and Feishu limit the whole body at
// about 20 000 bytes / 20 KB; we stay 1 KB below to absorb small differences in how
// the vendor counts.
const WECOM_TEXT_MAX: usize = 2048;
const WECOM_MARKDOWN_MAX: usize = 4096;
const DINGTALK_BODY_MAX: usize = 19_000;
const FEISHU_BODY_MAX: usize = 19_000;
// Slack truncates text beyond 40 000 characters; bytes ≥ characters, so this is safe.
const SLACK_TEXT_MAX: usize = 39_000;

/// DingTalk's throttle lasts 10 minutes once a robot exceeds 20 messages a minute.
const DINGTALK_THROTTLE: Duration = Duration::from_secs(600);
/// WeCom 45009: back off at least a minute.
const WECOM_FREQ_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Vendor {
    WeCom,
    DingTalk,
    Feishu,
    Slack,
    Webhook,
}

pub(crate) struct HttpRequest {
    pub url: Url,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// One part of a possibly split message.
struct Part {
    title: String,
    body: String,
    first: bool,
}

/// Splits `body` into parts such that `measure(part) <= max` for every part.
///
/// `measure` is the size the vendor limits (a content field, or the whole JSON body
/// after escaping), so the overhead of title, 编号 line and JSON is accounted for by
/// shrinking the chunk budget until everything fits.
fn compose(title: &str, body: &str, max: usize, measure: impl Fn(&Part) -> usize) -> Vec<Part> {
    const MIN_BUDGET: usize = 64;
    let mut budget = max;
    loop {
        let chunks = split_utf8(body, budget);
        let n = chunks.len();
        let parts: Vec<Part> = chunks
            .into_iter()
            .enumerate()
            .map(|(i, chunk)| Part {
                title: if n > 1 {
                    format!("{title} ({}/{n})", i + 1)
                } else {
                    title.to_owned()
                },
                body: chunk,
                first: i == 0,
            })
            .collect();
        let worst = parts.iter().map(&measure).max().unwrap_or(0);
        if worst <= max || budget <= MIN_BUDGET {
            // At the minimum budget the fixed overhead alone is too large; send it
            // and let the vendor's answer classify it as permanent.
            return parts;
        }
        budget = budget.saturating_sub(worst - max + 8).max(MIN_BUDGET);
    }
}

fn json_len(v: &Value) -> usize {
    serde_json::to_vec(v).map_or(usize::MAX, |b| b.len())
}

fn json_request(url: Url, body: &Value) -> HttpRequest {
    HttpRequest {
        url,
        headers: vec![("content-type", "application/json; charset=utf-8".into())],
        body: serde_json::to_vec(body).expect("a serde_json::Value always serializes"),
    }
}

fn parse_url(s: &str, what: &str) -> Result<Url, Outcome> {
    // The URL may contain the credential, so never echo it.
    Url::parse(s).map_err(|e| Outcome::disable(format!("{what} URL is invalid: {e}")))
}

fn has_table(markdown: &str) -> bool {
    markdown.lines().any(|l| {
        let t = l.trim();
        t.starts_with('|') && t.contains("---")
    })
}

/// Builds every HTTP request an endpoint needs for `msg`, in sending order.
pub(crate) fn build(
    endpoint: &Endpoint,
    msg: &Message,
    now_ms: i64,
) -> Result<(Vendor, Vec<HttpRequest>), Outcome> {
    match endpoint {
        Endpoint::WeCom(ep) => Ok((Vendor::WeCom, wecom(ep, msg)?)),
        Endpoint::DingTalk(ep) => Ok((Vendor::DingTalk, dingtalk(ep, msg, now_ms)?)),
        Endpoint::Feishu(ep) => Ok((Vendor::Feishu, feishu(ep, msg, now_ms)?)),
        Endpoint::Slack(ep) => Ok((Vendor::Slack, slack(ep, msg)?)),
        Endpoint::Webhook(ep) => Ok((Vendor::Webhook, vec![webhook(ep, msg, now_ms)?])),
        Endpoint::Smtp(_) | Endpoint::File(_) => {
            unreachable!("SMTP and file endpoints are not HTTP channels")
        }
    }
}

fn wecom(ep: &WeComEndpoint, msg: &Message) -> Result<Vec<HttpRequest>, Outcome> {
    let mut url = parse_url(
        &format!("{}/cgi-bin/webhook/send", ep.base_url.trim_end_matches('/')),
        "WeCom",
    )?;
    url.query_pairs_mut()
        .append_pair("key", ep.key.expose_secret());
    let title = msg.display_title();
    let id_line = msg.id_line();

    // Markdown cannot carry mentioned_mobile_list, so a message that must @ someone
    // goes as text. markdown_v2 renders tables but has no mentions or colours.
    let bodies: Vec<Value> = match (&msg.markdown, msg.mention_mobiles.is_empty()) {
        (Some(md), true) => {
            let msgtype = if has_table(md) {
                "markdown_v2"
            } else {
                "markdown"
            };
            let content = |p: &Part| format!("### {}\n{}\n\n{id_line}", p.title, p.body);
            compose(&title, md, WECOM_MARKDOWN_MAX, |p| content(p).len())
                .iter()
                .map(|p| json!({ "msgtype": msgtype, msgtype: { "content": content(p) } }))
                .collect()
        }
        _ => {
            let content = |p: &Part| format!("{}\n{}\n{id_line}", p.title, p.body);
            compose(&title, &msg.text, WECOM_TEXT_MAX, |p| content(p).len())
                .iter()
                .map(|p| {
                    // Mention once, on the first part, rather than pinging per part.
                    let mobiles: &[String] = if p.first { &msg.mention_mobiles } else { &[] };
                    json!({
                        "msgtype": "text",
                        "text": { "content": content(p), "mentioned_mobile_list": mobiles },
                    })
                })
                .collect()
        }
    };
    Ok(bodies
        .iter()
        .map(|b| json_request(url.clone(), b))
        .collect())
}

fn dingtalk(
    ep: &DingTalkEndpoint,
    msg: &Message,
    now_ms: i64,
) -> Result<Vec<HttpRequest>, Outcome> {
    let mut url = parse_url(
        &format!("{}/robot/send", ep.base_url.trim_end_matches('/')),
        "DingTalk",
    )?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("access_token", ep.access_token.expose_secret());
        if let Some(secret) = &ep.secret {
            // Raw base64 here: query_pairs_mut percent-encodes it exactly once.
            q.append_pair("timestamp", &now_ms.to_string());
            q.append_pair("sign", &sign::dingtalk(secret.expose_secret(), now_ms));
        }
    }
    let id_line = msg.id_line();
    let keyword = ep.keyword.as_deref().filter(|k| !k.is_empty());
    // Keyword security rejects a message lacking the keyword (310000), so put it in
    // front of the title of any part that does not already contain it.
    let titled = |p: &Part, content: &dyn Fn(&str) -> String| -> (String, String) {
        let c = content(&p.title);
        match keyword {
            Some(k) if !c.contains(k) => {
                let t = format!("{k} {}", p.title);
                let c = content(&t);
                (t, c)
            }
            _ => (p.title.clone(), c),
        }
    };
    let at = |p: &Part| {
        let mobiles: &[String] = if p.first { &msg.mention_mobiles } else { &[] };
        json!({ "atMobiles": mobiles, "atUserIds": [], "isAtAll": false })
    };
    let payload = |p: &Part| -> Value {
        match &msg.markdown {
            Some(_) => {
                // DingTalk only renders a markdown mention when "@mobile" is in the text.
                let mentions: String = if p.first {
                    msg.mention_mobiles
                        .iter()
                        .map(|m| format!(" @{m}"))
                        .collect()
                } else {
                    String::new()
                };
                let content = |t: &str| format!("### {t}\n\n{}\n\n{id_line}{mentions}", p.body);
                let (title, text) = titled(p, &content);
                json!({
                    "msgtype": "markdown",
                    "markdown": { "title": title, "text": text },
                    "at": at(p),
                })
            }
            None => {
                let content = |t: &str| format!("{t}\n{}\n{id_line}", p.body);
                let (_, text) = titled(p, &content);
                json!({ "msgtype": "text", "text": { "content": text }, "at": at(p) })
            }
        }
    };
    let body = msg.markdown.as_deref().unwrap_or(&msg.text);
    Ok(compose(&msg.display_title(), body, DINGTALK_BODY_MAX, |p| {
        json_len(&payload(p))
    })
    .iter()
    .map(|p| json_request(url.clone(), &payload(p)))
    .collect())
}

fn feishu(ep: &FeishuEndpoint, msg: &Message, now_ms: i64) -> Result<Vec<HttpRequest>, Outcome> {
    let url = parse_url(
        &format!(
            "{}/open-apis/bot/v2/hook/{}",
            ep.base_url.trim_end_matches('/'),
            ep.hook_id.expose_secret()
        ),
        "Feishu",
    )?;
    let ts = now_ms.div_euclid(1000);
    let id_line = msg.id_line();
    // Custom bots can only @ by open_id, which we do not have: mention_mobiles is
    // not used on Feishu.
    let payload = |p: &Part| -> Value {
        let mut lines: Vec<Value> = p
            .body
            .lines()
            .map(|l| json!([{ "tag": "text", "text": l }]))
            .collect();
        lines.push(json!([{ "tag": "text", "text": id_line }]));
        let mut v = json!({
            "msg_type": "post",
            "content": { "post": { "zh_cn": { "title": p.title, "content": lines } } },
        });
        if let Some(secret) = &ep.secret {
            v["timestamp"] = json!(ts.to_string());
            v["sign"] = json!(sign::feishu(secret.expose_secret(), ts));
        }
        v
    };
    Ok(
        compose(&msg.display_title(), &msg.text, FEISHU_BODY_MAX, |p| {
            json_len(&payload(p))
        })
        .iter()
        .map(|p| json_request(url.clone(), &payload(p)))
        .collect(),
    )
}

fn slack(ep: &SlackEndpoint, msg: &Message) -> Result<Vec<HttpRequest>, Outcome> {
    let url = parse_url(ep.url.expose_secret(), "Slack")?;
    let id_line = msg.id_line();
    let text = |p: &Part| format!("*{}*\n{}\n{id_line}", p.title, p.body);
    Ok(
        compose(&msg.display_title(), &msg.text, SLACK_TEXT_MAX, |p| {
            text(p).len()
        })
        .iter()
        .map(|p| json_request(url.clone(), &json!({ "text": text(p) })))
        .collect(),
    )
}

fn webhook(ep: &WebhookEndpoint, msg: &Message, now_ms: i64) -> Result<HttpRequest, Outcome> {
    let url = parse_url(&ep.url, "webhook")?;
    let ts = now_ms.div_euclid(1000);
    let body = serde_json::to_vec(&json!({
        "id": msg.id,
        "title": msg.display_title(),
        "text": msg.text,
        "markdown": msg.markdown,
    }))
    .expect("a serde_json::Value always serializes");
    // Signed over exactly these bytes, which are the ones sent.
    let signature = sign::standard_webhook(ep.secret.expose_secret(), &msg.id, ts, &body)
        .ok_or_else(|| Outcome::disable("webhook secret is not whsec_<base64>"))?;
    Ok(HttpRequest {
        url,
        headers: vec![
            ("content-type", "application/json".into()),
            ("webhook-id", msg.id.clone()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", signature),
        ],
        body,
    })
}

/// Sends every part in order; stops at the first part that was not delivered.
pub(crate) async fn send(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    msg: &Message,
    now_ms: i64,
) -> Outcome {
    let (vendor, requests) = match build(endpoint, msg, now_ms) {
        Ok(x) => x,
        Err(outcome) => return outcome,
    };
    let n = requests.len();
    let mut last_detail = String::new();
    for (i, req) in requests.into_iter().enumerate() {
        match post(http, vendor, req, now_ms).await {
            Outcome::Delivered { detail } => last_detail = detail,
            other if n == 1 => return other,
            other => return prefix_reason(other, &format!("part {}/{n}: ", i + 1)),
        }
    }
    if n == 1 {
        Outcome::Delivered {
            detail: last_detail,
        }
    } else {
        Outcome::Delivered {
            detail: format!("{n} parts accepted"),
        }
    }
}

fn prefix_reason(o: Outcome, prefix: &str) -> Outcome {
    match o {
        Outcome::Retry { after, reason } => Outcome::Retry {
            after,
            reason: format!("{prefix}{reason}"),
        },
        Outcome::Permanent { reason } => Outcome::permanent(format!("{prefix}{reason}")),
        Outcome::DisableEndpoint { reason } => Outcome::disable(format!("{prefix}{reason}")),
        d @ Outcome::Delivered { .. } => d,
    }
}

async fn post(http: &reqwest::Client, vendor: Vendor, req: HttpRequest, now_ms: i64) -> Outcome {
    let mut builder = http.post(req.url);
    for (name, value) in req.headers {
        builder = builder.header(name, value);
    }
    let resp = match builder.body(req.body).send().await {
        Ok(r) => r,
        // without_url: the URL holds the robot key or token.
        Err(e) if e.is_timeout() => return Outcome::retry("request timed out"),
        Err(e) => return Outcome::retry(format!("network error: {}", e.without_url())),
    };
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| parse_retry_after(v, now_ms));
    let is_json = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let body = match resp.text().await {
        Ok(b) => b,
        Err(e) if e.is_timeout() => return Outcome::retry("timed out reading the response"),
        Err(e) => {
            return Outcome::retry(format!("could not read response: {}", e.without_url()));
        }
    };
    tracing::debug!(notify.vendor = ?vendor, http.status = status, is_json, "vendor answered");
    classify(vendor, status, retry_after, &body)
}

/// `Retry-After` is either delta-seconds or an HTTP date; the date is measured
/// against the caller's `now` because this crate does not read the clock.
pub(crate) fn parse_retry_after(v: &HeaderValue, now_ms: i64) -> Option<Duration> {
    let s = v.to_str().ok()?.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(s).ok()?;
    let ms = at.timestamp_millis().saturating_sub(now_ms).max(0);
    Some(Duration::from_millis(ms as u64))
}

/// Maps one HTTP answer to an outcome, per vendor (CHANNELS.md §1–4).
pub(crate) fn classify(
    vendor: Vendor,
    status: u16,
    retry_after: Option<Duration>,
    body: &str,
) -> Outcome {
    match vendor {
        Vendor::Slack => return classify_slack(status, retry_after, body),
        Vendor::Webhook => return classify_webhook(status, retry_after, body),
        _ => {}
    }
    if status == 429 || status >= 500 {
        return Outcome::Retry {
            after: retry_after,
            reason: format!("HTTP {status}: {}", snippet(body)),
        };
    }
    // Business errors arrive as HTTP 200 (and Feishu's sometimes as 4xx) with a
    // JSON code, so the body decides whenever it has one.
    let parsed: Option<(i64, String)> = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        let (code_key, msg_key) = match vendor {
            Vendor::Feishu if v.get("code").is_none() => ("StatusCode", "StatusMessage"),
            Vendor::Feishu => ("code", "msg"),
            _ => ("errcode", "errmsg"),
        };
        let code = v.get(code_key)?.as_i64()?;
        let msg = v
            .get(msg_key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        Some((code, msg))
    });
    let ok_status = (200..300).contains(&status);
    match parsed {
        Some((0, _)) if ok_status => Outcome::Delivered {
            detail: format!("HTTP {status}, code 0"),
        },
        Some((code, msg)) if code != 0 => match vendor {
            Vendor::WeCom => wecom_code(code, &msg),
            Vendor::DingTalk => dingtalk_code(code, &msg),
            _ => feishu_code(code, &msg),
        },
        // No usable code: a proxy or gateway answered, or the body was cut.
        _ if ok_status => Outcome::retry(format!(
            "HTTP {status} without a vendor code: {}",
            snippet(body)
        )),
        _ if status == 408 => Outcome::retry("HTTP 408"),
        _ => Outcome::permanent(format!("HTTP {status}: {}", snippet(body))),
    }
}

fn wecom_code(code: i64, msg: &str) -> Outcome {
    let why = format!("WeCom errcode {code}: {msg}");
    // WeCom says to branch on errcode only, never on errmsg.
    match code {
        -1 => Outcome::retry(why),
        45009 => Outcome::retry_after(WECOM_FREQ_BACKOFF, why),
        93000 | 93004 | 93008 => Outcome::disable(why),
        _ => Outcome::permanent(why),
    }
}

fn dingtalk_code(code: i64, msg: &str) -> Outcome {
    let why = format!("DingTalk errcode {code}: {msg}");
    let m = msg.to_ascii_lowercase();
    // Two code tables circulate (one shifted by one), so the errmsg keywords are
    // checked first and the codes of both tables are accepted.
    if m.contains("too fast") || m.contains("exceed 20 times") {
        return Outcome::retry_after(DINGTALK_THROTTLE, why);
    }
    if m.contains("token is not exist")
        || m.contains("token not exist")
        || m.contains("sign not match")
        || m.contains("keywords not in content")
        || m.contains("whitelist")
        || m.contains("stopped")
        || m.contains("dissolved")
    {
        return Outcome::disable(why);
    }
    match code {
        130101 | 410100 | 410101 => Outcome::retry_after(DINGTALK_THROTTLE, why),
        -1 => Outcome::retry(why),
        310000 | 300001 | 300005 | 400101 | 400102 | 400103 | 400013 | 400106 => {
            Outcome::disable(why)
        }
        _ => Outcome::permanent(why),
    }
}

fn feishu_code(code: i64, msg: &str) -> Outcome {
    let why = format!("Feishu code {code}: {msg}");
    let m = msg.to_ascii_lowercase();
    match code {
        11232 => Outcome::retry(why),
        9499 if m.contains("frequen") || m.contains("too many") || m.contains("rate limit") => {
            Outcome::retry(why)
        }
        19021 | 19022 | 19024 | 19007 => Outcome::disable(why),
        _ => Outcome::permanent(why),
    }
}

fn classify_slack(status: u16, retry_after: Option<Duration>, body: &str) -> Outcome {
    let why = format!("Slack HTTP {status}: {}", snippet(body));
    match status {
        200..=299 if body.trim() == "ok" => Outcome::Delivered {
            detail: "Slack ok".into(),
        },
        200..=299 => Outcome::permanent(why),
        429 => Outcome::Retry {
            after: retry_after,
            reason: why,
        },
        410 => Outcome::disable(why),
        500.. => Outcome::Retry {
            after: retry_after,
            reason: why,
        },
        _ => Outcome::permanent(why),
    }
}

fn classify_webhook(status: u16, retry_after: Option<Duration>, body: &str) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered {
            detail: format!("HTTP {status}"),
        },
        408 | 429 | 500.. => Outcome::Retry {
            after: retry_after,
            reason: format!("HTTP {status}: {}", snippet(body)),
        },
        // Redirects are not followed: a signed body must not be re-sent elsewhere.
        _ => Outcome::permanent(format!("HTTP {status}: {}", snippet(body))),
    }
}

/// The start of a response body for a reason string, cut on a character boundary.
fn snippet(body: &str) -> &str {
    let body = body.trim();
    let mut end = body.len().min(200);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    &body[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(vendor: Vendor, status: u16, body: &str) -> Outcome {
        classify(vendor, status, None, body)
    }

    fn kind(o: &Outcome) -> (&'static str, Option<Duration>) {
        match o {
            Outcome::Delivered { .. } => ("delivered", None),
            Outcome::Retry { after, .. } => ("retry", *after),
            Outcome::Permanent { .. } => ("permanent", None),
            Outcome::DisableEndpoint { .. } => ("disable", None),
        }
    }

    #[test]
    fn wecom_codes() {
        let w = |code: i64| {
            kind(&c(
                Vendor::WeCom,
                200,
                &format!(r#"{{"errcode":{code},"errmsg":"x"}}"#),
            ))
        };
        assert_eq!(w(0), ("delivered", None));
        assert_eq!(w(-1), ("retry", None));
        assert_eq!(w(45009), ("retry", Some(Duration::from_secs(60))));
        for code in [93000, 93004, 93008] {
            assert_eq!(w(code), ("disable", None), "{code}");
        }
        for code in [40058, 44004, 40008] {
            assert_eq!(w(code), ("permanent", None), "{code}");
        }
    }

    #[test]
    fn dingtalk_codes_and_keywords() {
        let d = |code: i64, msg: &str| {
            kind(&c(
                Vendor::DingTalk,
                200,
                &json!({"errcode": code, "errmsg": msg}).to_string(),
            ))
        };
        let ten_min = Some(Duration::from_secs(600));
        assert_eq!(d(0, "ok"), ("delivered", None));
        assert_eq!(d(310000, "sign not match"), ("disable", None));
        assert_eq!(d(310000, "keywords not in content"), ("disable", None));
        assert_eq!(
            d(130101, "send too fast, exceed 20 times per minute"),
            ("retry", ten_min)
        );
        assert_eq!(d(410100, "流量超限"), ("retry", ten_min));
        // The shifted table's throttle code is recognised by its message.
        assert_eq!(d(999999, "send too fast"), ("retry", ten_min));
        for code in [300001, 300005, 400101, 400102, 400013, 400106] {
            assert_eq!(d(code, "x"), ("disable", None), "{code}");
        }
        assert_eq!(d(400105, "x"), ("permanent", None));
        for code in 430101..=430104 {
            assert_eq!(d(code, "x"), ("permanent", None), "{code}");
        }
        assert_eq!(d(-1, "系统繁忙"), ("retry", None));
    }

    #[test]
    fn feishu_codes() {
        let f = |code: i64, msg: &str| {
            kind(&c(
                Vendor::Feishu,
                200,
                &json!({"code": code, "msg": msg, "data": {}}).to_string(),
            ))
        };
        assert_eq!(f(0, "success"), ("delivered", None));
        assert_eq!(f(11232, "frequency limited"), ("retry", None));
        assert_eq!(f(9499, "too many request"), ("retry", None));
        assert_eq!(f(9499, "Bad Request"), ("permanent", None));
        for code in [19021, 19022, 19024, 19007] {
            assert_eq!(f(code, "x"), ("disable", None), "{code}");
        }
        // Legacy-only body.
        assert_eq!(
            kind(&c(
                Vendor::Feishu,
                200,
                r#"{"StatusCode":0,"StatusMessage":"success"}"#
            )),
            ("delivered", None)
        );
        // A sign error may come with a 4xx status: the code still decides.
        assert_eq!(
            kind(&c(
                Vendor::Feishu,
                400,
                r#"{"code":19021,"msg":"sign match fail"}"#
            )),
            ("disable", None)
        );
    }

    #[test]
    fn http_level_answers_for_chat_bots() {
        assert_eq!(
            kind(&c(Vendor::WeCom, 200, "<html>gateway</html>")).0,
            "retry"
        );
        assert_eq!(kind(&c(Vendor::WeCom, 502, "")).0, "retry");
        assert_eq!(kind(&c(Vendor::DingTalk, 404, "not found")).0, "permanent");
        assert_eq!(
            kind(&classify(
                Vendor::Feishu,
                429,
                Some(Duration::from_secs(3)),
                ""
            )),
            ("retry", Some(Duration::from_secs(3)))
        );
    }

    #[test]
    fn slack_and_webhook_statuses() {
        assert_eq!(kind(&c(Vendor::Slack, 200, "ok")).0, "delivered");
        assert_eq!(
            kind(&c(Vendor::Slack, 410, "channel_is_archived")).0,
            "disable"
        );
        assert_eq!(
            kind(&c(Vendor::Slack, 404, "channel_not_found")).0,
            "permanent"
        );
        assert_eq!(kind(&c(Vendor::Slack, 500, "rollup_error")).0, "retry");
        assert_eq!(kind(&c(Vendor::Webhook, 204, "")).0, "delivered");
        for s in [408, 429, 500, 503] {
            assert_eq!(kind(&c(Vendor::Webhook, s, "")).0, "retry", "{s}");
        }
        for s in [301, 400, 401, 404, 422] {
            assert_eq!(kind(&c(Vendor::Webhook, s, "")).0, "permanent", "{s}");
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z")
            .unwrap()
            .timestamp_millis();
        let v = |s: &str| parse_retry_after(&HeaderValue::from_str(s).unwrap(), now);
        assert_eq!(v("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            v("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(v("Wed, 21 Oct 2015 07:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(v("soon"), None);
    }

    #[test]
    fn long_wecom_text_is_split_within_limits() {
        let text = "种子校申请材料清单第N项，请按时提交。\n".repeat(200);
        let msg = Message {
            id: "m-1".into(),
            title: "【提醒】昌乐县 2020 年种子校申请".into(),
            text: text.clone(),
            ..Default::default()
        };
        let ep = WeComEndpoint {
            key: "k".into(),
            base_url: "http://127.0.0.1:1".into(),
        };
        let reqs = wecom(&ep, &msg).unwrap();
        assert!(reqs.len() > 1);
        let n = reqs.len();
        let mut rebuilt = String::new();
        for (i, r) in reqs.iter().enumerate() {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            let content = v["text"]["content"].as_str().unwrap();
            assert!(content.len() <= WECOM_TEXT_MAX, "{}", content.len());
            let header = format!("【提醒】昌乐县 2020 年种子校申请 ({}/{n})\n", i + 1);
            assert!(content.starts_with(&header), "{content}");
            assert!(content.ends_with("\n编号: m-1"));
            rebuilt.push_str(&content[header.len()..content.len() - "\n编号: m-1".len()]);
        }
        assert_eq!(rebuilt, text);
    }
}
