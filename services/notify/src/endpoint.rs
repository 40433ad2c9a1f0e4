//! Endpoint configuration, loadable from TOML/JSON by the scheduler.
//!
//! Every credential is a `SecretString`, so the derived `Debug` prints
//! `[REDACTED]`; the Slack URL and the Feishu hook id are credentials too (anyone
//! holding them can post), so they are secrets as well.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

/// Where a message goes. Tagged by `kind` in configuration files:
/// `kind = "wecom"`, `"dingtalk"`, `"feishu"`, `"slack"`, `"webhook"`, `"smtp"`, `"file"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Endpoint {
    Smtp(SmtpEndpoint),
    #[serde(rename = "wecom")]
    WeCom(WeComEndpoint),
    #[serde(rename = "dingtalk")]
    DingTalk(DingTalkEndpoint),
    Feishu(FeishuEndpoint),
    Webhook(WebhookEndpoint),
    Slack(SlackEndpoint),
    File(FileEndpoint),
}

impl Endpoint {
    /// Short channel name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Endpoint::Smtp(_) => "smtp",
            Endpoint::WeCom(_) => "wecom",
            Endpoint::DingTalk(_) => "dingtalk",
            Endpoint::Feishu(_) => "feishu",
            Endpoint::Webhook(_) => "webhook",
            Endpoint::Slack(_) => "slack",
            Endpoint::File(_) => "file",
        }
    }
}

/// WeCom group robot: `POST {base_url}/cgi-bin/webhook/send?key=KEY`.
#[derive(Clone, Debug, Deserialize)]
pub struct WeComEndpoint {
    pub key: SecretString,
    #[serde(default = "default_wecom_base")]
    pub base_url: String,
}

/// DingTalk custom robot: `POST {base_url}/robot/send?access_token=TOKEN`.
#[derive(Clone, Debug, Deserialize)]
pub struct DingTalkEndpoint {
    pub access_token: SecretString,
    /// The "SEC…" signing secret, when the robot uses 加签.
    #[serde(default)]
    pub secret: Option<SecretString>,
    /// The robot's custom keyword, when it uses keyword security: prefixed to the
    /// content when the content lacks it.
    #[serde(default)]
    pub keyword: Option<String>,
    #[serde(default = "default_dingtalk_base")]
    pub base_url: String,
}

/// Feishu custom bot: `POST {base_url}/open-apis/bot/v2/hook/{hook_id}`.
#[derive(Clone, Debug, Deserialize)]
pub struct FeishuEndpoint {
    pub hook_id: SecretString,
    #[serde(default)]
    pub secret: Option<SecretString>,
    #[serde(default = "default_feishu_base")]
    pub base_url: String,
}

/// Slack incoming webhook; the whole URL is the credential.
#[derive(Clone, Debug, Deserialize)]
pub struct SlackEndpoint {
    pub url: SecretString,
}

/// A receiver implementing Standard Webhooks; `secret` is `whsec_<base64>`.
#[derive(Clone, Debug, Deserialize)]
pub struct WebhookEndpoint {
    pub url: String,
    pub secret: SecretString,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// TLS from the first byte (port 465); preferred by RFC 8314.
    #[default]
    Implicit,
    /// STARTTLS required (port 587); never sends credentials in clear.
    StartTls,
    /// Plain text: only for a local test server.
    None,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SmtpEndpoint {
    pub host: String,
    /// Defaults to 465 / 587 / 25 according to `tls`.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretString>,
    /// Chinese providers require this to equal the login (QQ answers 501 otherwise).
    pub from: String,
    pub to: Vec<String>,
    /// Right-hand side of `Message-ID: <id@domain>`; without it lettre would use the
    /// machine's hostname.
    pub message_id_domain: String,
}

impl SmtpEndpoint {
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::Implicit => 465,
            SmtpTls::StartTls => 587,
            SmtpTls::None => 25,
        })
    }
}

/// Local sink: one UTF-8 Markdown file per message id, overwritten on retry.
#[derive(Clone, Debug, Deserialize)]
pub struct FileEndpoint {
    pub dir: PathBuf,
}

fn default_wecom_base() -> String {
    "https://qyapi.weixin.qq.com".into()
}
fn default_dingtalk_base() -> String {
    "https://oapi.dingtalk.com".into()
}
fn default_feishu_base() -> String {
    "https://open.feishu.cn".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_from_toml_with_vendor_defaults() {
        #[derive(Deserialize)]
        struct Cfg {
            endpoints: Vec<Endpoint>,
        }
        let cfg: Cfg = toml::from_str(
            r#"
            [[endpoints]]
            kind = "wecom"
            key = "k-123"

            [[endpoints]]
            kind = "dingtalk"
            access_token = "t"
            secret = "SECx"
            keyword = "通知"

            [[endpoints]]
            kind = "smtp"
            host = "smtp.qq.com"
            username = "jy@qq.com"
            password = "authcode"
            from = "jy@qq.com"
            to = ["a@example.com"]
            message_id_domain = "jy.example.cn"

            [[endpoints]]
            kind = "file"
            dir = "/tmp/out"
            "#,
        )
        .unwrap();
        match &cfg.endpoints[0] {
            Endpoint::WeCom(w) => assert_eq!(w.base_url, "https://qyapi.weixin.qq.com"),
            other => panic!("{other:?}"),
        }
        match &cfg.endpoints[1] {
            Endpoint::DingTalk(d) => {
                assert_eq!(d.base_url, "https://oapi.dingtalk.com");
                assert_eq!(d.keyword.as_deref(), Some("通知"));
            }
            other => panic!("{other:?}"),
        }
        match &cfg.endpoints[2] {
            Endpoint::Smtp(s) => {
                assert_eq!(s.tls, SmtpTls::Implicit);
                assert_eq!(s.effective_port(), 465);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(cfg.endpoints[3].kind(), "file");
    }

    #[test]
    fn debug_never_prints_credentials() {
        let secret = "S3CRET-value-42";
        let s = || SecretString::from(secret);
        let endpoints = [
            Endpoint::WeCom(WeComEndpoint {
                key: s(),
                base_url: default_wecom_base(),
            }),
            Endpoint::DingTalk(DingTalkEndpoint {
                access_token: s(),
                secret: Some(s()),
                keyword: None,
                base_url: default_dingtalk_base(),
            }),
            Endpoint::Feishu(FeishuEndpoint {
                hook_id: s(),
                secret: Some(s()),
                base_url: default_feishu_base(),
            }),
            Endpoint::Slack(SlackEndpoint {
                url: SecretString::from(format!("https://hooks.slack.com/services/{secret}")),
            }),
            Endpoint::Webhook(WebhookEndpoint {
                url: "https://example.com/hook".into(),
                secret: SecretString::from(format!("whsec_{secret}")),
            }),
            Endpoint::Smtp(SmtpEndpoint {
                host: "smtp.qq.com".into(),
                port: None,
                tls: SmtpTls::Implicit,
                username: Some("jy@qq.com".into()),
                password: Some(s()),
                from: "jy@qq.com".into(),
                to: vec![],
                message_id_domain: "x".into(),
            }),
        ];
        for e in &endpoints {
            let dbg = format!("{e:?}");
            assert!(!dbg.contains(secret), "{} leaks: {dbg}", e.kind());
            assert!(dbg.contains("REDACTED"), "{dbg}");
        }
    }
}
