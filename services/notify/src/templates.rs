//! Chinese message templates for the notifications the scheduler sends.
//!
//! Each kind has a title, a plain-text body, a Markdown body (chat robots) and an
//! HTML body (e-mail). Rendering is strict: a missing context field is an error, so
//! a half-filled reminder never reaches a principal. Optional fields are guarded with
//! `is defined` in the templates and listed in each kind's doc below.

use std::sync::OnceLock;

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

use crate::{Endpoint, Error, Message};

/// What is being announced. Context fields (all required unless marked optional):
///
/// Dates and times arrive formatted by `junheng_core::text` (2020年4月30日, 2020年4月30日24时,
/// 2020年4月9日08:30); the templates put no Western spaces around them or around numbers.
///
/// Every kind also takes an optional `delayed_from` ("2020年4月11日08:30"): the message goes
/// out late, after downtime, and was due to leave at that local time. The title then ends in
/// "（补发）" and every body starts with "原定于{delayed_from}发送，因系统停机延后补发。".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TemplateKind {
    /// `subject`, `due`, `days_left` (0 on the last day: 今日截止), `owner`; optional `school`,
    /// `link`.
    Reminder,
    /// `subject`, `due`, `days_overdue`, `owner`; optional `school`, `link`, `office_owned`
    /// (true when the office itself is late: it is not told to contact the bureau), and
    /// `late_party` for the office copy (who is late: "昌乐二中"), which then reads
    /// "{late_party}的“{subject}”已于…截止" instead of addressing the owner. The title reads
    /// "【逾期】…超过截止时间N天" (never 逾期…已逾期).
    Overdue,
    /// A notice whose period has ended: `notice_title`, `expires` (when it ended), an
    /// optional `heading` (关于…的公示, used for the title when given), and either
    /// `schools` (names of the schools the notice listed publicly: the office copy, which may
    /// also carry what the 公示 carried: `basis`, `period`, `objection`, `contacts` (list),
    /// `issuing_unit` and `signed`, all or none) or, for a
    /// listed school's own copy, `school` (its name) and `school_count` (how many the notice
    /// listed) — so a notice to N schools renders its list once, not N times.
    NoticeExpiry,
    /// `campaign`, `phase`, `counts` (list of `{state, count}`), `lists` (list of
    /// `{name, items}`), `scores` (list of `{name, count, mean, min, max}`, one per phase with
    /// scores; empty: 暂无评分), `late` (list of
    /// `{school, subject, days_late}`), `next_deadlines` (list of `{subject, due}`).
    PhaseSummary,
    /// `date`, `items` (list of `{title}`, optional `school`, `due`).
    DailyDigest,
}

impl TemplateKind {
    pub const ALL: [TemplateKind; 5] = [
        TemplateKind::Reminder,
        TemplateKind::Overdue,
        TemplateKind::NoticeExpiry,
        TemplateKind::PhaseSummary,
        TemplateKind::DailyDigest,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TemplateKind::Reminder => "reminder",
            TemplateKind::Overdue => "overdue",
            TemplateKind::NoticeExpiry => "notice_expiry",
            TemplateKind::PhaseSummary => "phase_summary",
            TemplateKind::DailyDigest => "daily_digest",
        }
    }

    /// Parses the name stored in an outbox row (`"reminder"`, …).
    pub fn from_name(name: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| Error::UnknownTemplate(name.to_owned()))
    }
}

/// Which bodies the channel can show; decides which optional bodies are rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelKind {
    /// Text + HTML.
    Email,
    /// Text + Markdown (WeCom, DingTalk, generic webhook, file sink).
    Chat,
    /// Text only (Feishu post, Slack).
    Plain,
}

impl From<&Endpoint> for ChannelKind {
    fn from(e: &Endpoint) -> Self {
        match e {
            Endpoint::Smtp(_) => ChannelKind::Email,
            Endpoint::WeCom(_)
            | Endpoint::DingTalk(_)
            | Endpoint::Webhook(_)
            | Endpoint::File(_) => ChannelKind::Chat,
            Endpoint::Feishu(_) | Endpoint::Slack(_) => ChannelKind::Plain,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub title: String,
    pub text: String,
    pub markdown: Option<String>,
    pub html: Option<String>,
}

impl Rendered {
    /// A [`Message`] with these bodies; attachments and mentions are left empty.
    pub fn into_message(self, id: impl Into<String>) -> Message {
        Message {
            id: id.into(),
            title: self.title,
            text: self.text,
            markdown: self.markdown,
            html: self.html,
            ..Message::default()
        }
    }
}

/// Renders `kind` for a channel. Fill a [`crate::Message`] from the result.
pub fn render(kind: TemplateKind, channel: ChannelKind, ctx: &Value) -> Result<Rendered, Error> {
    let env = env();
    let one = |suffix: &str| -> Result<String, Error> {
        let name = format!("{}.{suffix}", kind.name());
        env.get_template(&name)
            .and_then(|t| t.render(ctx))
            .map(|s| s.trim().to_owned())
            .map_err(|source| Error::Template { name, source })
    };
    // A late message says so in every part; the HTML note is in `layout.html`.
    let delayed = ctx.get("delayed_from").is_some_and(|v| !v.is_null());
    let note = |name: &str, body: String, sep: &str| -> Result<String, Error> {
        if !delayed {
            return Ok(body);
        }
        let name = format!("delayed.{name}");
        let note = env
            .get_template(&name)
            .and_then(|t| t.render(ctx))
            .map(|s| s.trim().to_owned())
            .map_err(|source| Error::Template { name, source })?;
        Ok(if sep.is_empty() {
            format!("{body}{note}")
        } else {
            format!("{note}{sep}{body}")
        })
    };
    Ok(Rendered {
        title: note("title", one("title")?, "")?,
        text: note("txt", one("txt")?, "\n")?,
        markdown: match channel {
            // A blank line ends the quote.
            ChannelKind::Chat => Some(note("md", one("md")?, "\n\n")?),
            _ => None,
        },
        html: match channel {
            ChannelKind::Email => Some(one("html")?),
            _ => None,
        },
    })
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        // Names ending in .html are auto-escaped by minijinja's default callback.
        for (name, src) in TEMPLATES {
            env.add_template(name, src)
                .unwrap_or_else(|e| panic!("built-in template {name} is invalid: {e}"));
        }
        env
    })
}

const TEMPLATES: &[(&str, &str)] = &[
    (
        "layout.html",
        r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"></head>
<body style="font-family: 'PingFang SC','Microsoft YaHei',sans-serif; line-height: 1.6">
{% if delayed_from is defined and delayed_from is not none %}{% include "delayed.html" %}{% endif %}
{% block body %}{% endblock %}
<p style="color:#888;font-size:12px">此邮件由均衡系统自动发送，请勿直接回复。</p>
</body></html>"#,
    ),
    // ---- a late message (optional `delayed_from` on every kind) ----
    // The title gets the suffix; the bodies start with the note.
    ("delayed.title", "（补发）"),
    (
        "delayed.txt",
        "原定于{{ delayed_from }}发送，因系统停机延后补发。",
    ),
    (
        "delayed.md",
        "> 原定于{{ delayed_from }}发送，因系统停机延后补发。",
    ),
    (
        "delayed.html",
        r#"<p style="color:#b35900">原定于{{ delayed_from }}发送，因系统停机延后补发。</p>"#,
    ),
    // ---- reminder ----
    // The morning of the last day says 今日截止, never "还有 0 天".
    (
        "reminder.title",
        "【提醒】{% if days_left == 0 %}{{ subject }}今日截止{% else %}{{ subject }}距截止还有{{ days_left }}天{% endif %}",
    ),
    (
        "reminder.txt",
        r#"{{ owner }}：
{% if days_left == 0 %}
您负责的“{{ subject }}”今日截止（{{ due }}）。
{% else %}
您负责的“{{ subject }}”将于{{ due }}截止，还有{{ days_left }}天。
{% endif %}
{% if school is defined %}
学校：{{ school }}
{% endif %}
请在截止前完成提交。
{% if link is defined %}
办理入口：{{ link }}
{% endif %}"#,
    ),
    (
        "reminder.md",
        r#"**{{ subject }}**将于**{{ due }}**截止
> 剩余：<font color="warning">{% if days_left == 0 %}今日截止{% else %}{{ days_left }}天{% endif %}</font>
> 负责人：{{ owner }}
{% if school is defined %}
> 学校：{{ school }}
{% endif %}
{% if link is defined %}

[前往办理]({{ link }})
{% endif %}"#,
    ),
    (
        "reminder.html",
        r#"{% extends "layout.html" %}{% block body %}
<p>{{ owner }}：</p>
{% if days_left == 0 %}<p>您负责的“<b>{{ subject }}</b>”<b>今日截止</b>（{{ due }}）。</p>
{% else %}<p>您负责的“<b>{{ subject }}</b>”将于<b>{{ due }}</b>截止，还有<b>{{ days_left }}天</b>。</p>{% endif %}
{% if school is defined %}<p>学校：{{ school }}</p>{% endif %}
<p>请在截止前完成提交。{% if link is defined %}<a href="{{ link }}">前往办理</a>{% endif %}</p>
{% endblock %}"#,
    ),
    // ---- overdue ----
    // The party's copy speaks to the owner; the office copy (`late_party` defined) names the
    // school or role that is late.
    (
        "overdue.title",
        "【逾期】{% if late_party is defined %}{{ late_party }}的{% endif %}{{ subject }}超过截止时间{{ days_overdue }}天",
    ),
    (
        "overdue.txt",
        r#"{% if late_party is defined %}{{ late_party }}的“{{ subject }}”已于{{ due }}截止，目前已逾期{{ days_overdue }}天，尚未完成。
{% if school is defined %}
学校：{{ school }}
{% endif %}
请督促其尽快提交。
{% else %}{{ owner }}：
您负责的“{{ subject }}”已于{{ due }}截止，目前已逾期{{ days_overdue }}天。
{% if school is defined %}
学校：{{ school }}
{% endif %}
{% if office_owned is defined and office_owned %}请尽快办理。{% else %}请尽快提交，并与县教育局联系说明情况。{% endif %}
{% endif %}
{% if link is defined %}
办理入口：{{ link }}
{% endif %}"#,
    ),
    (
        "overdue.md",
        r#"{% if late_party is defined %}**{{ late_party }}**的**{{ subject }}**<font color="warning">已逾期{{ days_overdue }}天</font>
{% else %}**{{ subject }}**<font color="warning">已逾期{{ days_overdue }}天</font>
{% endif %}
> 截止时间：{{ due }}
{% if late_party is defined %}
> 逾期方：{{ late_party }}
{% else %}
> 负责人：{{ owner }}
{% endif %}
{% if school is defined %}
> 学校：{{ school }}
{% endif %}

{% if late_party is defined %}请督促其尽快提交。{% else %}{% if office_owned is defined and office_owned %}请尽快办理。{% else %}请尽快提交，并与县教育局联系说明情况。{% endif %}{% endif %}

{% if link is defined %}
[前往办理]({{ link }})
{% endif %}"#,
    ),
    (
        "overdue.html",
        r#"{% extends "layout.html" %}{% block body %}
{% if late_party is defined %}
<p><b>{{ late_party }}</b>的“<b>{{ subject }}</b>”已于{{ due }}截止，目前<b style="color:#c00">已逾期{{ days_overdue }}天</b>，尚未完成。</p>
{% if school is defined %}<p>学校：{{ school }}</p>{% endif %}
<p>请督促其尽快提交。{% if link is defined %}<a href="{{ link }}">查看详情</a>{% endif %}</p>
{% else %}
<p>{{ owner }}：</p>
<p>您负责的“<b>{{ subject }}</b>”已于{{ due }}截止，目前<b style="color:#c00">已逾期{{ days_overdue }}天</b>。</p>
{% if school is defined %}<p>学校：{{ school }}</p>{% endif %}
<p>{% if office_owned is defined and office_owned %}请尽快办理。{% else %}请尽快提交，并与县教育局联系说明情况。{% endif %}{% if link is defined %}<a href="{{ link }}">前往办理</a>{% endif %}</p>
{% endif %}
{% endblock %}"#,
    ),
    // ---- notice_expiry ----
    // Sent once the notice period HAS ended; `schools` are the schools the notice listed (the
    // office copy); a listed school's copy names only itself (`school`, `school_count`).
    (
        "notice_expiry.title",
        "【公示期满】{{ heading if heading is defined else notice_title }}",
    ),
    (
        "notice_expiry.txt",
        r#"《{{ heading if heading is defined else notice_title }}》已于{{ expires }}期满。
{% if school is defined and school %}
{{ school }}在名单中（名单共{{ school_count }}所学校）。
{% else %}
{% if basis is defined %}
{{ basis }}
{{ period }}
{% endif %}
{% if schools %}
名单（共{{ schools|length }}所学校）：
{% for s in schools %}
{{ loop.index }}. {{ s }}
{% endfor %}
{% else %}
名单中没有学校。
{% endif %}
{% if basis is defined %}
{{ objection }}
{% for c in contacts %}
{{ c }}
{% endfor %}
{{ issuing_unit }}
{{ signed }}
{% endif %}
{% endif %}
后续事项将按程序办理。"#,
    ),
    (
        "notice_expiry.md",
        r#"**《{{ heading if heading is defined else notice_title }}》**已于**{{ expires }}**期满。
{% if school is defined and school %}

**{{ school }}**在名单中（名单共{{ school_count }}所学校）。
{% else %}
{% if basis is defined %}

{{ basis }}
{{ period }}
{% endif %}
{% if schools %}

名单（共{{ schools|length }}所学校）：
{% for s in schools %}
{{ loop.index }}. {{ s }}
{% endfor %}
{% else %}

名单中没有学校。
{% endif %}
{% if basis is defined %}

{{ objection }}
{% for c in contacts %}
> {{ c }}
{% endfor %}

{{ issuing_unit }}  
{{ signed }}
{% endif %}
{% endif %}

后续事项将按程序办理。"#,
    ),
    (
        "notice_expiry.html",
        r#"{% extends "layout.html" %}{% block body %}
<p>《<b>{{ heading if heading is defined else notice_title }}</b>》已于<b>{{ expires }}</b>期满。</p>
{% if school is defined and school %}
<p><b>{{ school }}</b>在名单中（名单共{{ school_count }}所学校）。</p>
{% else %}
{% if basis is defined %}<p>{{ basis }}</p>
<p>{{ period }}</p>{% endif %}
{% if schools %}<p>名单（共{{ schools|length }}所学校）：</p>
<ol>{% for s in schools %}<li>{{ s }}</li>{% endfor %}</ol>
{% else %}<p>名单中没有学校。</p>{% endif %}
{% if basis is defined %}<p>{{ objection }}</p>
<ul>{% for c in contacts %}<li>{{ c }}</li>{% endfor %}</ul>
<p style="text-align:right">{{ issuing_unit }}<br>{{ signed }}</p>{% endif %}
{% endif %}
<p>后续事项将按程序办理。</p>
{% endblock %}"#,
    ),
    // ---- phase_summary ----
    (
        "phase_summary.title",
        "【阶段小结】{{ campaign }}「{{ phase }}」",
    ),
    (
        "phase_summary.txt",
        r#"{{ campaign }}「{{ phase }}」阶段小结
各状态学校数：
{% for c in counts %}
  {{ c.state }}：{{ c.count }}所
{% endfor %}
{% for l in lists %}
{{ l.name }}：{{ l['items']|join("、") if l['items'] else "无" }}
{% endfor %}
{% if scores %}
评分统计：
{% for x in scores %}
  {{ x.name }}：共{{ x.count }}所学校，平均{{ x.mean }}分，最低{{ x.min }}分，最高{{ x.max }}分
{% endfor %}
{% else %}
评分统计：暂无评分
{% endif %}
{% if late %}
逾期事项：
{% for x in late %}
  {{ x.school }}：{{ x.subject }}（逾期{{ x.days_late }}天）
{% endfor %}
{% else %}
逾期事项：无
{% endif %}
{% if next_deadlines %}
近期截止：
{% for d in next_deadlines %}
  {{ d.subject }}（{{ d.due }}截止）
{% endfor %}
{% endif %}"#,
    ),
    (
        "phase_summary.md",
        r#"**{{ campaign }}「{{ phase }}」阶段小结**

| 状态 | 学校数 |
| --- | ---: |
{% for c in counts %}
| {{ c.state }} | {{ c.count }} |
{% endfor %}

{% for l in lists %}
**{{ l.name }}**：{{ l['items']|join("、") if l['items'] else "无" }}

{% endfor %}
{% if scores %}
**评分统计**
{% for x in scores %}
- {{ x.name }}：共{{ x.count }}所学校，平均{{ x.mean }}分，最低{{ x.min }}分，最高{{ x.max }}分
{% endfor %}
{% else %}
**评分统计**：暂无评分
{% endif %}

{% if late %}
**逾期事项**
{% for x in late %}
- {{ x.school }}：{{ x.subject }}（逾期{{ x.days_late }}天）
{% endfor %}
{% else %}
**逾期事项**：无
{% endif %}
{% if next_deadlines %}

**近期截止**
{% for d in next_deadlines %}
- {{ d.subject }}（{{ d.due }}截止）
{% endfor %}
{% endif %}"#,
    ),
    (
        "phase_summary.html",
        r#"{% extends "layout.html" %}{% block body %}
<h3>{{ campaign }}「{{ phase }}」阶段小结</h3>
<table border="1" cellpadding="4" style="border-collapse:collapse">
<tr><th>状态</th><th>学校数</th></tr>
{% for c in counts %}<tr><td>{{ c.state }}</td><td align="right">{{ c.count }}</td></tr>{% endfor %}
</table>
{% for l in lists %}<p><b>{{ l.name }}</b>：{{ l['items']|join("、") if l['items'] else "无" }}</p>{% endfor %}
{% if scores %}<p><b>评分统计</b></p><ul>{% for x in scores %}<li>{{ x.name }}：共{{ x.count }}所学校，平均{{ x.mean }}分，最低{{ x.min }}分，最高{{ x.max }}分</li>{% endfor %}</ul>
{% else %}<p><b>评分统计</b>：暂无评分</p>{% endif %}
{% if late %}<p><b>逾期事项</b></p><ul>{% for x in late %}<li>{{ x.school }}：{{ x.subject }}（逾期{{ x.days_late }}天）</li>{% endfor %}</ul>
{% else %}<p><b>逾期事项</b>：无</p>{% endif %}
{% if next_deadlines %}<p><b>近期截止</b></p><ul>{% for d in next_deadlines %}<li>{{ d.subject }}（{{ d.due }}截止）</li>{% endfor %}</ul>{% endif %}
{% endblock %}"#,
    ),
    // ---- daily_digest ----
    (
        "daily_digest.title",
        "【每日汇总】{{ date }}共{{ items|length }}项待办",
    ),
    (
        "daily_digest.txt",
        r#"{{ date }}待办汇总（{{ items|length }}项）：
{% for i in items %}
{{ loop.index }}. {{ i.title }}{% if i.school is defined %}（{{ i.school }}）{% endif %}{% if i.due is defined %}，截止时间{{ i.due }}{% endif %}

{% else %}
今日无待办事项。
{% endfor %}"#,
    ),
    (
        "daily_digest.md",
        r#"**{{ date }} 待办汇总**（{{ items|length }} 项）

{% for i in items %}
{{ loop.index }}. {{ i.title }}{% if i.school is defined %}（{{ i.school }}）{% endif %}{% if i.due is defined %}，截止时间**{{ i.due }}**{% endif %}

{% else %}
今日无待办事项。
{% endfor %}"#,
    ),
    (
        "daily_digest.html",
        r#"{% extends "layout.html" %}{% block body %}
<p><b>{{ date }} 待办汇总</b>（{{ items|length }} 项）</p>
{% if items %}<ol>{% for i in items %}<li>{{ i.title }}{% if i.school is defined %}（{{ i.school }}）{% endif %}{% if i.due is defined %}，截止时间<b>{{ i.due }}</b>{% endif %}</li>{% endfor %}</ol>
{% else %}<p>今日无待办事项。</p>{% endif %}
{% endblock %}"#,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reminder_renders_chinese_for_every_channel() {
        let ctx = json!({
            "subject": "昌乐县 2020 年种子校申请",
            "due": "2020年5月10日17:00",
            "days_left": 3,
            "owner": "王校长",
            "school": "昌乐二中",
        });
        let r = render(TemplateKind::Reminder, ChannelKind::Email, &ctx).unwrap();
        assert_eq!(r.title, "【提醒】昌乐县 2020 年种子校申请距截止还有3天");
        assert!(
            r.text.starts_with(
                "王校长：\n您负责的“昌乐县 2020 年种子校申请”将于2020年5月10日17:00截止，还有3天。"
            ),
            "{}",
            r.text
        );
        assert!(r.text.contains("学校：昌乐二中"));
        assert!(!r.text.contains("办理入口"));
        assert!(r.markdown.is_none());
        let html = r.html.unwrap();
        assert!(html.contains("<b>昌乐县 2020 年种子校申请</b>"), "{html}");
        assert!(html.contains("请勿直接回复"));

        let msg = render(TemplateKind::Reminder, ChannelKind::Chat, &ctx)
            .unwrap()
            .into_message("r-1");
        assert_eq!(msg.id, "r-1");
        let chat = render(TemplateKind::Reminder, ChannelKind::Chat, &ctx).unwrap();
        assert!(
            chat.markdown
                .unwrap()
                .contains("剩余：<font color=\"warning\">3天</font>")
        );
        assert!(chat.html.is_none());
    }

    #[test]
    fn a_late_message_says_so_in_every_part() {
        let ctx = json!({"subject": "提交汇报材料", "due": "2020年4月10日24时", "days_overdue": 1,
                         "owner": "昌乐二中（王校长）", "delayed_from": "2020年4月11日08:30"});
        let note = "原定于2020年4月11日08:30发送，因系统停机延后补发。";
        let mail = render(TemplateKind::Overdue, ChannelKind::Email, &ctx).unwrap();
        assert_eq!(mail.title, "【逾期】提交汇报材料超过截止时间1天（补发）");
        assert!(
            mail.text
                .starts_with(&format!("{note}\n昌乐二中（王校长）：\n您负责的")),
            "{}",
            mail.text
        );
        let html = mail.html.unwrap();
        let (before, after) = html.split_once(note).expect("the note in the HTML");
        assert!(
            before.contains("<body") && after.contains("您负责的"),
            "{html}"
        );
        let md = render(TemplateKind::Overdue, ChannelKind::Chat, &ctx)
            .unwrap()
            .markdown
            .unwrap();
        assert!(
            md.starts_with(&format!("> {note}\n\n**提交汇报材料**")),
            "{md}"
        );
        // Every kind takes it; without it (or null) nothing changes.
        let digest =
            json!({"date": "2020年4月10日", "items": [], "delayed_from": "2020年4月10日17:00"});
        let r = render(TemplateKind::DailyDigest, ChannelKind::Plain, &digest).unwrap();
        assert_eq!(r.title, "【每日汇总】2020年4月10日共0项待办（补发）");
        let mut on_time = ctx.clone();
        on_time["delayed_from"] = Value::Null;
        let r = render(TemplateKind::Overdue, ChannelKind::Email, &on_time).unwrap();
        assert!(!r.title.contains("补发") && !r.text.contains("补发"));
        on_time.as_object_mut().unwrap().remove("delayed_from");
        let r = render(TemplateKind::Overdue, ChannelKind::Email, &on_time).unwrap();
        assert!(!r.title.contains("补发") && !r.html.unwrap().contains("补发"));
    }

    #[test]
    fn html_escapes_context() {
        let ctx = json!({"subject": "<script>", "due": "d", "days_overdue": 1, "owner": "o"});
        let r = render(TemplateKind::Overdue, ChannelKind::Email, &ctx).unwrap();
        assert!(r.html.unwrap().contains("&lt;script&gt;"));
        assert_eq!(r.title, "【逾期】<script>超过截止时间1天");
    }

    #[test]
    fn missing_field_is_an_error() {
        let err = render(
            TemplateKind::Reminder,
            ChannelKind::Plain,
            &json!({"subject": "x"}),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Template { .. }), "{err}");
        assert!(TemplateKind::from_name("nope").is_err());
        assert_eq!(
            TemplateKind::from_name("daily_digest").unwrap(),
            TemplateKind::DailyDigest
        );
    }

    #[test]
    fn notice_expiry_lists_schools() {
        let ctx = json!({
            "notice_title": "关于开展均衡发展督导评估的通知",
            "expires": "2020年6月1日24时",
            "schools": ["昌乐二中", "宝都街道小学"],
        });
        let r = render(TemplateKind::NoticeExpiry, ChannelKind::Chat, &ctx).unwrap();
        assert_eq!(r.title, "【公示期满】关于开展均衡发展督导评估的通知");
        assert!(
            r.text.starts_with("《关于开展均衡发展督导评估的通知》已于2020年6月1日24时期满。\n名单（共2所学校）：\n1. 昌乐二中\n2. 宝都街道小学"),
            "{}",
            r.text
        );
        assert!(!r.text.contains("尚未完成") && !r.text.contains("将于"));
        assert!(r.markdown.unwrap().contains("\n2. 宝都街道小学"));
        let none = render(
            TemplateKind::NoticeExpiry,
            ChannelKind::Email,
            &json!({"notice_title": "t", "expires": "e", "schools": []}),
        )
        .unwrap();
        assert!(none.text.contains("名单中没有学校。"), "{}", none.text);
        assert!(none.html.unwrap().contains("名单中没有学校"));
        // A listed school's own copy names itself and the list's size, not the list.
        for channel in [ChannelKind::Email, ChannelKind::Chat] {
            let own = render(
                TemplateKind::NoticeExpiry,
                channel,
                &json!({"notice_title": "t", "expires": "e", "school": "昌乐二中", "school_count": 400}),
            )
            .unwrap();
            assert!(
                own.text.contains("昌乐二中在名单中（名单共400所学校）。"),
                "{}",
                own.text
            );
            assert!(!own.text.contains("没有学校"), "{}", own.text);
            for body in [own.markdown, own.html].into_iter().flatten() {
                assert!(body.contains("在名单中（名单共400所学校）"), "{body}");
            }
        }
    }

    #[test]
    fn overdue_office_copy_names_the_late_party() {
        let ctx = json!({"subject": "提交汇报材料", "due": "2020年4月8日24时", "days_overdue": 1,
                         "owner": "昌乐二中", "late_party": "昌乐二中"});
        let r = render(TemplateKind::Overdue, ChannelKind::Email, &ctx).unwrap();
        assert_eq!(r.title, "【逾期】昌乐二中的提交汇报材料超过截止时间1天");
        assert!(
            r.text.starts_with("昌乐二中的“提交汇报材料”已于2020年4月8日24时截止，目前已逾期1天，尚未完成。\n请督促其尽快提交。"),
            "{}",
            r.text
        );
        assert!(!r.text.contains("您负责"));
        assert!(r.html.unwrap().contains("<b>昌乐二中</b>的"));
        let md = render(TemplateKind::Overdue, ChannelKind::Chat, &ctx)
            .unwrap()
            .markdown
            .unwrap();
        assert!(md.starts_with("**昌乐二中**的**提交汇报材料**"), "{md}");
        assert!(
            md.contains("> 逾期方：昌乐二中") && !md.contains("负责人"),
            "{md}"
        );
        // The party's own copy still addresses the owner.
        let own = render(
            TemplateKind::Overdue,
            ChannelKind::Plain,
            &json!({"subject": "提交汇报材料", "due": "d", "days_overdue": 1, "owner": "昌乐二中"}),
        )
        .unwrap();
        assert!(
            own.text.starts_with("昌乐二中：\n您负责的“提交汇报材料”"),
            "{}",
            own.text
        );
        assert_eq!(own.title, "【逾期】提交汇报材料超过截止时间1天");
    }

    #[test]
    fn the_morning_of_the_last_day_says_today() {
        let ctx = json!({"subject": "提交展示汇报材料", "due": "2020年4月30日24时", "days_left": 0, "owner": "昌乐二中"});
        let r = render(TemplateKind::Reminder, ChannelKind::Email, &ctx).unwrap();
        assert_eq!(r.title, "【提醒】提交展示汇报材料今日截止");
        assert_eq!(
            r.text,
            "昌乐二中：\n您负责的“提交展示汇报材料”今日截止（2020年4月30日24时）。\n请在截止前完成提交。"
        );
        assert!(
            r.html
                .unwrap()
                .contains("<b>今日截止</b>（2020年4月30日24时）")
        );
        let chat = render(TemplateKind::Reminder, ChannelKind::Chat, &ctx).unwrap();
        assert!(
            chat.markdown
                .unwrap()
                .contains("> 剩余：<font color=\"warning\">今日截止</font>")
        );
    }

    #[test]
    fn an_office_owned_overdue_item_does_not_tell_the_office_to_contact_itself() {
        let ctx = json!({"subject": "处理对昌乐二中的异议", "due": "2020年4月30日24时", "days_overdue": 1,
                         "owner": "县教育局督导室", "office_owned": true});
        let r = render(TemplateKind::Overdue, ChannelKind::Plain, &ctx).unwrap();
        assert_eq!(
            r.text,
            "县教育局督导室：\n您负责的“处理对昌乐二中的异议”已于2020年4月30日24时截止，目前已逾期1天。\n请尽快办理。"
        );
        let school = json!({"subject": "提交展示汇报材料", "due": "2020年4月30日24时", "days_overdue": 1, "owner": "昌乐二中"});
        let r = render(TemplateKind::Overdue, ChannelKind::Plain, &school).unwrap();
        assert!(
            r.text.ends_with("请尽快提交，并与县教育局联系说明情况。"),
            "{}",
            r.text
        );
    }

    #[test]
    fn phase_summary_has_a_markdown_table() {
        let ctx = json!({
            "campaign": "2020 年种子校评选",
            "phase": "材料申报",
            "counts": [{"state": "已提交", "count": 12}, {"state": "未提交", "count": 3}],
            "lists": [{"name": "已通过名单", "items": ["昌乐二中", "首阳山中学"]}, {"name": "退回名单", "items": []}],
            "scores": [{"name": "验收评估阶段综合得分", "count": 12, "mean": "86.5", "min": "70", "max": "97"}],
            "late": [{"school": "红河镇中学", "subject": "自评报告", "days_late": 2}],
            "next_deadlines": [{"subject": "现场核查", "due": "2020年6月15日24时"}],
        });
        let r = render(TemplateKind::PhaseSummary, ChannelKind::Chat, &ctx).unwrap();
        let md = r.markdown.unwrap();
        assert!(
            md.contains("| 状态 | 学校数 |\n| --- | ---: |\n| 已提交 | 12 |\n| 未提交 | 3 |"),
            "{md}"
        );
        assert!(md.contains("**已通过名单**：昌乐二中、首阳山中学"));
        assert!(md.contains("**退回名单**：无"));
        assert!(
            md.contains(
                "**评分统计**\n- 验收评估阶段综合得分：共12所学校，平均86.5分，最低70分，最高97分"
            ),
            "{md}"
        );
        assert!(md.contains("- 红河镇中学：自评报告（逾期2天）"));
        assert!(md.contains("- 现场核查（2020年6月15日24时截止）"));
        assert!(r.text.contains("已提交：12所"), "{}", r.text);
        let email = render(TemplateKind::PhaseSummary, ChannelKind::Email, &ctx).unwrap();
        assert!(
            email
                .html
                .unwrap()
                .contains("<td>已提交</td><td align=\"right\">12</td>")
        );
    }

    #[test]
    fn daily_digest_counts_items() {
        let ctx = json!({
            "date": "2020年5月7日",
            "items": [
                {"title": "提交自评报告", "school": "昌乐二中", "due": "2020年5月10日24时"},
                {"title": "确认督导名单"},
            ],
        });
        let r = render(TemplateKind::DailyDigest, ChannelKind::Plain, &ctx).unwrap();
        assert_eq!(r.title, "【每日汇总】2020年5月7日共2项待办");
        assert!(
            r.text
                .contains("1. 提交自评报告（昌乐二中），截止时间2020年5月10日24时"),
            "{}",
            r.text
        );
        assert!(r.text.contains("2. 确认督导名单"));
        let empty = render(
            TemplateKind::DailyDigest,
            ChannelKind::Plain,
            &json!({"date": "d", "items": []}),
        )
        .unwrap();
        assert!(empty.text.contains("今日无待办事项。"));
    }

    /// The whole plain text of one message of each kind, as a bureau would sign it: dates as
    /// 2020年4月30日24时, no Western spaces, no doubled words.
    #[test]
    fn every_kind_reads_exactly_as_the_bureau_writes_it() {
        let cases: Vec<(&str, TemplateKind, Value, &str, &str)> = vec![
            (
                "reminder",
                TemplateKind::Reminder,
                json!({"subject": "提交展示汇报材料", "due": "2020年4月30日24时", "days_left": 3, "owner": "昌乐二中（王校长）"}),
                "【提醒】提交展示汇报材料距截止还有3天",
                "昌乐二中（王校长）：\n您负责的“提交展示汇报材料”将于2020年4月30日24时截止，还有3天。\n请在截止前完成提交。",
            ),
            (
                "reminder on the last morning",
                TemplateKind::Reminder,
                json!({"subject": "提交展示汇报材料", "due": "2020年4月30日24时", "days_left": 0, "owner": "昌乐二中（王校长）"}),
                "【提醒】提交展示汇报材料今日截止",
                "昌乐二中（王校长）：\n您负责的“提交展示汇报材料”今日截止（2020年4月30日24时）。\n请在截止前完成提交。",
            ),
            (
                "overdue, the school's copy",
                TemplateKind::Overdue,
                json!({"subject": "提交展示汇报材料", "due": "2020年4月30日24时", "days_overdue": 2, "owner": "昌乐二中（王校长）"}),
                "【逾期】提交展示汇报材料超过截止时间2天",
                "昌乐二中（王校长）：\n您负责的“提交展示汇报材料”已于2020年4月30日24时截止，目前已逾期2天。\n请尽快提交，并与县教育局联系说明情况。",
            ),
            (
                "overdue, the office's copy",
                TemplateKind::Overdue,
                json!({"subject": "提交展示汇报材料", "due": "2020年4月30日24时", "days_overdue": 2, "owner": "昌乐二中（王校长）", "late_party": "昌乐二中（王校长）"}),
                "【逾期】昌乐二中（王校长）的提交展示汇报材料超过截止时间2天",
                "昌乐二中（王校长）的“提交展示汇报材料”已于2020年4月30日24时截止，目前已逾期2天，尚未完成。\n请督促其尽快提交。",
            ),
            (
                "overdue, the office's own item",
                TemplateKind::Overdue,
                json!({"subject": "审核自主申报", "due": "2020年4月8日24时", "days_overdue": 1, "owner": "县教育局督导室", "office_owned": true}),
                "【逾期】审核自主申报超过截止时间1天",
                "县教育局督导室：\n您负责的“审核自主申报”已于2020年4月8日24时截止，目前已逾期1天。\n请尽快办理。",
            ),
            (
                "notice expiry, the office's copy",
                TemplateKind::NoticeExpiry,
                json!({"notice_title": "关于标杆种子校拟定名单的公示", "expires": "2020年4月14日24时", "schools": ["昌乐二中", "宝都街道小学"]}),
                "【公示期满】关于标杆种子校拟定名单的公示",
                "《关于标杆种子校拟定名单的公示》已于2020年4月14日24时期满。\n名单（共2所学校）：\n1. 昌乐二中\n2. 宝都街道小学\n后续事项将按程序办理。",
            ),
            (
                "notice expiry, the office's copy with what the 公示 carried",
                TemplateKind::NoticeExpiry,
                json!({"notice_title": "昌乐县2020年标杆种子校拟定名单公示", "expires": "2020年3月6日24时", "schools": ["昌乐二中"],
                       "heading": "关于昌乐县2020年标杆种子校拟定名单的公示",
                       "basis": "根据《昌乐县2020年义务教育优质均衡系列示范校创建实施方案》（乐教督字〔2020〕2号）要求，经学校申报、昌乐县人民政府教育督导室审核，现将昌乐县2020年标杆种子校拟定名单予以公示。",
                       "period": "公示期：2020年3月2日至2020年3月6日（共5个工作日）",
                       "objection": "公示期内，如对公示内容有异议，请以书面形式实名向昌乐县人民政府教育督导室反映，写明真实姓名和联系方式，并提供必要的证据材料。截止时间：2020年3月6日。匿名异议不予受理。",
                       "contacts": ["监督电话：0536-6212345", "电子邮箱：dudaoshi@changle.example.cn"],
                       "issuing_unit": "昌乐县教育和体育局", "signed": "2020年3月2日"}),
                "【公示期满】关于昌乐县2020年标杆种子校拟定名单的公示",
                "《关于昌乐县2020年标杆种子校拟定名单的公示》已于2020年3月6日24时期满。\n根据《昌乐县2020年义务教育优质均衡系列示范校创建实施方案》（乐教督字〔2020〕2号）要求，经学校申报、昌乐县人民政府教育督导室审核，现将昌乐县2020年标杆种子校拟定名单予以公示。\n公示期：2020年3月2日至2020年3月6日（共5个工作日）\n名单（共1所学校）：\n1. 昌乐二中\n公示期内，如对公示内容有异议，请以书面形式实名向昌乐县人民政府教育督导室反映，写明真实姓名和联系方式，并提供必要的证据材料。截止时间：2020年3月6日。匿名异议不予受理。\n监督电话：0536-6212345\n电子邮箱：dudaoshi@changle.example.cn\n昌乐县教育和体育局\n2020年3月2日\n后续事项将按程序办理。",
            ),
            (
                "notice expiry, a school's copy",
                TemplateKind::NoticeExpiry,
                json!({"notice_title": "关于标杆种子校拟定名单的公示", "expires": "2020年4月14日24时", "school": "昌乐二中", "school_count": 2}),
                "【公示期满】关于标杆种子校拟定名单的公示",
                "《关于标杆种子校拟定名单的公示》已于2020年4月14日24时期满。\n昌乐二中在名单中（名单共2所学校）。\n后续事项将按程序办理。",
            ),
            (
                "leadership summary",
                TemplateKind::PhaseSummary,
                json!({"campaign": "昌乐县2020年义务教育优质均衡提升行动", "phase": "确定标杆种子校",
                       "counts": [{"state": "已确定", "count": 2}], "lists": [{"name": "标杆种子校", "items": ["昌乐二中", "首阳山中学"]}],
                       "scores": [], "late": [{"school": "红河镇中学", "subject": "提交申报材料", "days_late": 2}],
                       "next_deadlines": [{"subject": "结对帮扶", "due": "2020年5月31日24时"}]}),
                "【阶段小结】昌乐县2020年义务教育优质均衡提升行动「确定标杆种子校」",
                "昌乐县2020年义务教育优质均衡提升行动「确定标杆种子校」阶段小结\n各状态学校数：\n  已确定：2所\n标杆种子校：昌乐二中、首阳山中学\n评分统计：暂无评分\n逾期事项：\n  红河镇中学：提交申报材料（逾期2天）\n近期截止：\n  结对帮扶（2020年5月31日24时截止）",
            ),
            (
                "daily digest",
                TemplateKind::DailyDigest,
                json!({"date": "2020年4月9日", "items": [{"title": "提交展示汇报材料", "school": "昌乐二中", "due": "2020年4月10日24时"}]}),
                "【每日汇总】2020年4月9日共1项待办",
                "2020年4月9日待办汇总（1项）：\n1. 提交展示汇报材料（昌乐二中），截止时间2020年4月10日24时",
            ),
            (
                "a late message",
                TemplateKind::DailyDigest,
                json!({"date": "2020年4月10日", "items": [], "delayed_from": "2020年4月10日17:00"}),
                "【每日汇总】2020年4月10日共0项待办（补发）",
                "原定于2020年4月10日17:00发送，因系统停机延后补发。\n2020年4月10日待办汇总（0项）：\n今日无待办事项。",
            ),
        ];
        for (what, kind, ctx, title, text) in cases {
            let r = render(kind, ChannelKind::Plain, &ctx).unwrap();
            assert_eq!(r.title, title, "{what}");
            assert_eq!(r.text, text, "{what}");
        }
    }
}
