/// A rendered, channel-neutral notification.
///
/// `id` is the dedupe key: it must be the same on every retry of the same logical
/// notification, because receivers use it to drop duplicates (webhook-id header,
/// e-mail Message-ID, the "编号" line in chat messages).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub title: String,
    pub text: String,
    /// Markdown body for chat robots; `text` is used when absent.
    pub markdown: Option<String>,
    /// HTML body for e-mail; derived from `text` when absent.
    pub html: Option<String>,
    /// Sent with e-mail only; chat robots cannot carry files.
    pub attachments: Vec<Attachment>,
    /// Mobile numbers to @-mention where the channel supports it (WeCom, DingTalk).
    pub mention_mobiles: Vec<String>,
    /// Adds a "【紧急】" marker to the title unless it already has one.
    pub urgent: bool,
}

#[derive(Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
    /// When set, the attachment is embedded in the HTML (`<img src="cid:…">`).
    pub inline_cid: Option<String>,
}

// Attachments can be megabytes of PNG; print their size, not their bytes.
impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment")
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("len", &self.bytes.len())
            .field("inline_cid", &self.inline_cid)
            .finish()
    }
}

pub(crate) const URGENT_MARK: &str = "【紧急】";

impl Message {
    /// The title as shown to people: with the urgent marker when asked for.
    pub(crate) fn display_title(&self) -> String {
        if self.urgent && !self.title.contains(URGENT_MARK) {
            format!("{URGENT_MARK}{}", self.title)
        } else {
            self.title.clone()
        }
    }

    /// The trailing line that lets a reader (and a support person) match a chat
    /// message to its outbox row.
    pub(crate) fn id_line(&self) -> String {
        format!("编号: {}", self.id)
    }

    /// HTML for e-mail: the given HTML, or the text escaped with line breaks kept.
    pub(crate) fn html_body(&self) -> String {
        match &self.html {
            Some(h) => h.clone(),
            None => text_to_html(&self.text),
        }
    }
}

/// The id reduced to characters that are safe in a file name and in a Message-ID
/// local part. Ids that needed changing get a hash suffix so two different ids can
/// never map to the same name.
pub(crate) fn safe_id(id: &str) -> String {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if !id.is_empty() && id.chars().all(ok) && !id.starts_with('.') {
        return id.to_owned();
    }
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(id.as_bytes());
    let suffix: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    let cleaned: String = id.chars().map(|c| if ok(c) { c } else { '_' }).collect();
    format!("{}-{suffix}", cleaned.trim_start_matches('.'))
}

pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Plain text to a minimal HTML document. No `<pre>`: mail clients render it in a
/// monospace font that makes Chinese text hard to read on phones.
pub(crate) fn text_to_html(text: &str) -> String {
    let body: Vec<String> = text.lines().map(escape_html).collect();
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body><p>{}</p></body></html>",
        body.join("<br>\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_html_escapes_and_keeps_lines() {
        let html = text_to_html("a<b>&\"c\"\n第二行");
        assert!(html.contains("a&lt;b&gt;&amp;&quot;c&quot;<br>\n第二行"));
        assert!(!html.contains("<pre>"));
    }

    #[test]
    fn safe_id_keeps_plain_ids_and_disambiguates_others() {
        assert_eq!(safe_id("0190-abc_1.x"), "0190-abc_1.x");
        let a = safe_id("../etc/passwd");
        assert!(!a.contains('/') && !a.starts_with('.'), "{a}");
        assert_ne!(safe_id("a/b"), safe_id("a_b"));
        assert_ne!(safe_id("a/b"), safe_id("a:b"));
    }

    #[test]
    fn urgent_marks_title_once() {
        let mut m = Message {
            title: "截止提醒".into(),
            urgent: true,
            ..Default::default()
        };
        assert_eq!(m.display_title(), "【紧急】截止提醒");
        m.title = "【紧急】截止提醒".into();
        assert_eq!(m.display_title(), "【紧急】截止提醒");
    }
}
