//! E-mail through lettre: message building and SMTP reply classification.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment as MailAttachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::endpoint::{SmtpEndpoint, SmtpTls};
use crate::message::safe_id;
use crate::{Message, Outcome};

/// Rate-limit or quota answers: a 5xx that means "later", not "never" (QQ
/// `550 Connection frequency limited`, NetEase `MI:SFQ`/`HL:`, enterprise `MI:STC`).
const RATE_LIMIT_BACKOFF: Duration = Duration::from_secs(15 * 60);

pub(crate) type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// Pooled transports, one per distinct server + login, so repeated sends reuse the
/// TLS connection instead of handshaking and authenticating each time.
#[derive(Default)]
pub(crate) struct TransportCache {
    map: Mutex<HashMap<String, Transport>>,
}

impl TransportCache {
    fn get(&self, ep: &SmtpEndpoint, timeout: Duration) -> Result<Transport, Outcome> {
        use sha2::Digest as _;
        // The password is part of the key (hashed) so a rotated password takes effect
        // without restarting; the map never holds it in clear.
        let pw = ep.password.as_ref().map(|p| {
            let d = sha2::Sha256::digest(p.expose_secret().as_bytes());
            d[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        });
        let key = format!(
            "{}:{}:{:?}:{:?}:{:?}",
            ep.host,
            ep.effective_port(),
            ep.tls,
            ep.username,
            pw
        );
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = map.get(&key) {
            return Ok(t.clone());
        }
        let t = build_transport(ep, timeout)?;
        map.insert(key, t.clone());
        Ok(t)
    }
}

fn build_transport(ep: &SmtpEndpoint, timeout: Duration) -> Result<Transport, Outcome> {
    let tls_params = || {
        TlsParameters::new(ep.host.clone())
            .map_err(|e| Outcome::disable(format!("SMTP TLS setup for {} failed: {e}", ep.host)))
    };
    let tls = match ep.tls {
        SmtpTls::Implicit => Tls::Wrapper(tls_params()?),
        SmtpTls::StartTls => Tls::Required(tls_params()?),
        SmtpTls::None => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(ep.host.as_str())
        .port(ep.effective_port())
        .tls(tls)
        .timeout(Some(timeout));
    if let (Some(user), Some(pass)) = (&ep.username, &ep.password) {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            pass.expose_secret().to_owned(),
        ));
    }
    Ok(builder.build())
}

/// Builds the MIME message: multipart/alternative (text + HTML); HTML with inline
/// images becomes multipart/related; other attachments wrap it all in
/// multipart/mixed.
pub(crate) fn build_email(ep: &SmtpEndpoint, msg: &Message) -> Result<lettre::Message, Outcome> {
    let from: Mailbox = ep
        .from
        .parse()
        .map_err(|e| Outcome::disable(format!("invalid from address {:?}: {e}", ep.from)))?;
    if ep.to.is_empty() {
        return Err(Outcome::disable("SMTP endpoint has no recipients"));
    }
    let mut builder = lettre::Message::builder()
        .from(from)
        .subject(msg.display_title())
        .message_id(Some(format!(
            "<{}@{}>",
            safe_id(&msg.id),
            ep.message_id_domain
        )));
    for to in &ep.to {
        // A recipient the mailer refuses fails this one message, never the endpoint: a
        // school's address (the message's own `to`) is data, and the endpoint's configured
        // recipients are checked when the configuration loads (`check_mailbox`).
        let mbox: Mailbox = to
            .parse()
            .map_err(|e| Outcome::permanent(format!("invalid recipient {}: {e}", quote(to))))?;
        builder = builder.to(mbox);
    }

    let content_type = |a: &crate::Attachment| {
        ContentType::parse(&a.content_type).map_err(|e| {
            Outcome::permanent(format!(
                "attachment {} has an invalid content type: {e}",
                a.filename
            ))
        })
    };
    let (inline, files): (Vec<_>, Vec<_>) =
        msg.attachments.iter().partition(|a| a.inline_cid.is_some());

    let html = msg.html_body();
    let alternative = if inline.is_empty() {
        MultiPart::alternative_plain_html(msg.text.clone(), html)
    } else {
        let mut related = MultiPart::related().singlepart(SinglePart::html(html));
        for a in inline {
            let cid = a.inline_cid.clone().unwrap_or_default();
            related = related.singlepart(
                MailAttachment::new_inline_with_name(cid, a.filename.clone())
                    .body(a.bytes.clone(), content_type(a)?),
            );
        }
        MultiPart::alternative()
            .singlepart(SinglePart::plain(msg.text.clone()))
            .multipart(related)
    };
    let body = if files.is_empty() {
        alternative
    } else {
        let mut mixed = MultiPart::mixed().multipart(alternative);
        for a in files {
            mixed = mixed.singlepart(
                MailAttachment::new(a.filename.clone()).body(a.bytes.clone(), content_type(a)?),
            );
        }
        mixed
    };
    builder
        .multipart(body)
        .map_err(|e| Outcome::permanent(format!("could not build the e-mail: {e}")))
}

pub(crate) async fn send(
    cache: &TransportCache,
    timeout: Duration,
    ep: &SmtpEndpoint,
    msg: &Message,
) -> Outcome {
    let email = match build_email(ep, msg) {
        Ok(m) => m,
        Err(o) => return o,
    };
    let transport = match cache.get(ep, timeout) {
        Ok(t) => t,
        Err(o) => return o,
    };
    match transport.send(email).await {
        Ok(resp) => Outcome::Delivered {
            detail: format!(
                "{} {}",
                resp.code(),
                resp.message().collect::<Vec<_>>().join(" ")
            ),
        },
        Err(e) => classify(&e),
    }
}

pub(crate) fn classify(e: &lettre::transport::smtp::Error) -> Outcome {
    // Display is "permanent error (550): <server text>"; it never contains the
    // password, which lettre only sends encoded inside AUTH.
    let text = e.to_string();
    let Some(code) = e.status() else {
        if e.is_client() {
            return Outcome::permanent(format!("SMTP client error: {text}"));
        }
        // Connection refused, I/O, TLS and timeouts are neither transient nor
        // permanent in lettre's terms; all of them may clear up by themselves.
        return Outcome::retry(format!("SMTP network error: {text}"));
    };
    let code = code.to_string();
    if code == "535" || (code == "501" && is_about_the_sender(&text)) {
        // 535: bad login / 授权码; 501 at QQ: From differs from the login. Any other 501 (a
        // recipient's address syntax refused at RCPT) fails this one message below.
        return Outcome::disable(format!("SMTP configuration rejected: {text}"));
    }
    if is_rate_limit(&text) {
        return Outcome::retry_after(RATE_LIMIT_BACKOFF, format!("SMTP rate limited: {text}"));
    }
    if e.is_transient() {
        Outcome::retry(text)
    } else {
        Outcome::permanent(text)
    }
}

/// Whether a 501 refuses the sender (MAIL FROM, the login) rather than one recipient: lettre
/// does not say which command was refused, so the server's text decides.
fn is_about_the_sender(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    [
        "mail from",
        "sender",
        "from address",
        "authoriz",
        "authentic",
        "login",
    ]
    .iter()
    .any(|k| lower.contains(k))
}

/// At most 64 characters of an address, for a reason stored and shown.
fn quote(s: &str) -> String {
    let mut q: String = s.chars().take(64).collect();
    if s.chars().count() > 64 {
        q.push('…');
    }
    format!("{q:?}")
}

/// Checks an address as the mailer will (a mailbox: `addr` or `Name <addr>`), for
/// configurations loaded before any message is sent.
pub fn check_mailbox(s: &str) -> Result<(), String> {
    s.parse::<Mailbox>().map(|_| ()).map_err(|e| e.to_string())
}

fn is_rate_limit(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    ["frequency", "too many", "quota"]
        .iter()
        .any(|k| lower.contains(k))
        || ["MI:STC", "MI:SFQ", "HL:"].iter().any(|k| text.contains(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_texts() {
        assert!(is_rate_limit(
            "permanent error (550): Connection frequency limited"
        ));
        assert!(is_rate_limit(
            "permanent error (554): 5.5.0 MI:STC daily quota"
        ));
        assert!(is_rate_limit(
            "transient error (421): HL:ICC too many connections"
        ));
        assert!(!is_rate_limit("permanent error (550): mailbox unavailable"));
    }

    #[test]
    fn a_501_disables_only_when_it_is_about_the_sender() {
        assert!(is_about_the_sender(
            "permanent error (501): mail from address must be same as authorization user"
        ));
        assert!(!is_about_the_sender(
            "permanent error (501): 5.1.3 Bad recipient address syntax"
        ));
    }

    #[test]
    fn a_bad_recipient_fails_only_its_message() {
        let ep = SmtpEndpoint {
            host: "localhost".into(),
            port: Some(25),
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "jy@example.com".into(),
            to: vec!["good@example.com".into(), "bad@@example.com".into()],
            message_id_domain: "example.com".into(),
        };
        let msg = Message {
            id: "x".into(),
            ..Default::default()
        };
        assert!(matches!(
            build_email(&ep, &msg),
            Err(Outcome::Permanent { .. })
        ));
    }

    #[test]
    fn bad_addresses_disable_the_endpoint() {
        let ep = SmtpEndpoint {
            host: "localhost".into(),
            port: Some(25),
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "not an address".into(),
            to: vec!["a@example.com".into()],
            message_id_domain: "example.com".into(),
        };
        let msg = Message {
            id: "x".into(),
            ..Default::default()
        };
        assert!(matches!(
            build_email(&ep, &msg),
            Err(Outcome::DisableEndpoint { .. })
        ));
    }
}
