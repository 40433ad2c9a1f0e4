//! The outbox: rendered messages waiting to be delivered, one row per (source, occasion,
//! recipient, endpoint). Rows are inserted with `ON CONFLICT (dedupe_key) DO NOTHING`, so any
//! number of planners (replicas, restarts) create each notification at most once.

use std::borrow::Cow;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use junheng_notify::templates::{ChannelKind, render};
use junheng_notify::{Attachment, Endpoint, Message};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

pub use crate::kind::Kind;

use crate::config::Settings;
use crate::lifecycle::OutboxStatus;
use crate::recipients::Target;
use crate::schedule::{self, QuietRules};

/// The rendered message as stored in `outbox.payload`. The message id is the outbox row id,
/// so every attempt (and a crash re-send) carries the same id.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Payload {
    pub title: String,
    pub text: String,
    #[serde(default)]
    pub markdown: Option<String>,
    #[serde(default)]
    pub html: Option<String>,
    #[serde(default)]
    pub attachments: Vec<StoredAttachment>,
    #[serde(default)]
    pub mention_mobiles: Vec<String>,
    #[serde(default)]
    pub urgent: bool,
    /// Replaces an SMTP endpoint's recipients.
    #[serde(default)]
    pub to: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredAttachment {
    pub filename: String,
    pub content_type: String,
    pub base64: String,
    #[serde(default)]
    pub inline_cid: Option<String>,
}

impl StoredAttachment {
    pub fn new(filename: &str, content_type: &str, bytes: &[u8], inline_cid: Option<&str>) -> Self {
        Self {
            filename: filename.into(),
            content_type: content_type.into(),
            base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            inline_cid: inline_cid.map(Into::into),
        }
    }
}

impl Payload {
    /// The message to send; consumes the payload (a claimed row is sent once per attempt).
    pub fn into_message(self, id: Uuid) -> Message {
        Message {
            id: id.to_string(),
            title: self.title,
            text: self.text,
            markdown: self.markdown,
            html: self.html,
            attachments: self
                .attachments
                .into_iter()
                .map(|a| Attachment {
                    bytes: base64::engine::general_purpose::STANDARD
                        .decode(&a.base64)
                        .unwrap_or_default(),
                    filename: a.filename,
                    content_type: a.content_type,
                    inline_cid: a.inline_cid,
                })
                .collect(),
            mention_mobiles: self.mention_mobiles,
            urgent: self.urgent,
        }
    }

    /// The endpoint to use for this message: `to` overrides an SMTP endpoint's recipients.
    pub fn effective_endpoint<'e>(&self, ep: &'e Endpoint) -> Cow<'e, Endpoint> {
        match (ep, &self.to) {
            (Endpoint::Smtp(s), Some(to)) => {
                let mut s = s.clone();
                s.to = to.clone();
                Cow::Owned(Endpoint::Smtp(s))
            }
            _ => Cow::Borrowed(ep),
        }
    }
}

/// A row to insert.
#[derive(Debug, Clone)]
pub struct NewRow {
    pub dedupe_key: String,
    pub campaign_id: Uuid,
    pub kind: Kind,
    pub endpoint: String,
    pub recipient: String,
    pub obligation_id: Option<Uuid>,
    pub planned_due_at: Option<DateTime<Utc>>,
    pub payload: Payload,
    pub urgent: bool,
    pub not_before: DateTime<Utc>,
    /// `held` when quiet hours or a non-working day pushed `not_before` later.
    pub held: bool,
    /// The `traceparent` of the call that caused it (its delivery continues that trace).
    pub trace_context: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("no endpoint named `{0}` in the configuration")]
    UnknownEndpoint(String),
    #[error(transparent)]
    Template(#[from] junheng_notify::Error),
}

/// Everything needed to turn one notification into outbox rows for several targets.
pub struct Occurrence<'a> {
    pub campaign_id: Uuid,
    pub kind: Kind,
    /// The source and occasion part of the dedupe key, e.g. `obl:<id>:remind:<due>:7`.
    pub key: String,
    pub obligation_id: Option<Uuid>,
    pub planned_due_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
    /// The campaign's time zone: a late message names its planned time in local time.
    pub tz: Tz,
    pub urgent: bool,
    /// Template context; `owner` is filled per target when absent; `delayed_from` is set
    /// per target when the message is late.
    pub ctx: serde_json::Value,
    pub attachments: Vec<StoredAttachment>,
    /// Called with the rendered e-mail HTML, e.g. to embed a chart.
    pub html_hook: Option<&'a dyn Fn(String) -> String>,
    pub quiet: Option<QuietRules<'a>>,
    /// A hold that would reach this instant is not applied (a reminder held past its own
    /// deadline would be useless, so it goes out in quiet time instead).
    pub hold_limit: Option<DateTime<Utc>>,
    /// The `traceparent` of the call that caused it, when known.
    pub trace_context: Option<String>,
}

/// Renders `occ` for every target's channel and builds one row per target.
///
/// `now` is when the rows are planned. When a row may leave is [`schedule::departure`]: a chat
/// message planned late is held from `now`, not from when it was due, so it never lands in
/// quiet hours. A non-urgent Feishu message is kept off the vendor's :00/:30 peaks
/// ([`schedule::off_feishu_peak`]). A message planned more than [`schedule::LATE_AFTER`] after it was
/// due to leave on its channel (its occasion, or the end of the quiet hours that would have
/// held it) is marked late: the templates get `delayed_from`, that instant in campaign time.
pub fn rows_for(
    settings: &Settings,
    occ: &Occurrence<'_>,
    targets: &[Target],
    now: DateTime<Utc>,
) -> Result<Vec<NewRow>, RenderError> {
    let mut rows = Vec::with_capacity(targets.len());
    for t in targets {
        let ep = settings
            .endpoints
            .get(&t.endpoint)
            .ok_or_else(|| RenderError::UnknownEndpoint(t.endpoint.clone()))?;
        let channel = ChannelKind::from(&ep.endpoint);
        // Quiet hours and non-working days hold non-urgent chat messages only.
        let quiet = occ.quiet.as_ref().filter(|_| !occ.urgent && ep.is_chat());
        let due_to_leave = schedule::release(occ.at, occ.at, quiet, occ.hold_limit);
        let mut ctx = occ.ctx.clone();
        if let Some(obj) = ctx.as_object_mut() {
            obj.entry("owner")
                .or_insert_with(|| serde_json::Value::String(t.display.clone()));
            if schedule::is_late(due_to_leave, now) {
                obj.insert(
                    "delayed_from".into(),
                    serde_json::Value::String(schedule::describe_local(due_to_leave, occ.tz)),
                );
            }
        }
        let r = render(occ.kind.template(), channel, &ctx)?;
        let html = match (r.html, occ.html_hook) {
            (Some(h), Some(hook)) => Some(hook(h)),
            (h, _) => h,
        };
        let attachments = if channel == ChannelKind::Email {
            occ.attachments.clone()
        } else {
            Vec::new()
        };
        let payload = Payload {
            title: r.title,
            text: r.text,
            markdown: r.markdown,
            html,
            attachments,
            mention_mobiles: t.mention_mobiles.clone(),
            urgent: occ.urgent,
            to: t.to.clone(),
        };
        let schedule::Departure {
            held_until,
            not_before,
        } = schedule::departure(
            occ.at,
            now,
            quiet,
            !occ.urgent && matches!(ep.endpoint, Endpoint::Feishu(_)),
            occ.hold_limit,
        );
        rows.push(NewRow {
            dedupe_key: format!("{}|{}|{}", occ.key, t.recipient, t.endpoint),
            campaign_id: occ.campaign_id,
            kind: occ.kind,
            endpoint: t.endpoint.clone(),
            recipient: t.recipient.clone(),
            obligation_id: occ.obligation_id,
            planned_due_at: occ.planned_due_at,
            payload,
            urgent: occ.urgent,
            not_before,
            // Only quiet hours hold; a two-minute step off a Feishu peak is not a hold.
            held: held_until > occ.at,
            trace_context: occ.trace_context.clone(),
        });
    }
    Ok(rows)
}

/// Inserts rows that do not exist yet; returns how many were new.
pub async fn insert(
    conn: &mut PgConnection,
    rows: &[NewRow],
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = rows.iter().map(|_| Uuid::now_v7()).collect();
    let keys: Vec<String> = rows.iter().map(|r| r.dedupe_key.clone()).collect();
    let campaigns: Vec<Uuid> = rows.iter().map(|r| r.campaign_id).collect();
    let kinds: Vec<String> = rows.iter().map(|r| r.kind.code().to_owned()).collect();
    let endpoints: Vec<String> = rows.iter().map(|r| r.endpoint.clone()).collect();
    let recipients: Vec<String> = rows.iter().map(|r| r.recipient.clone()).collect();
    let obligations: Vec<Option<Uuid>> = rows.iter().map(|r| r.obligation_id).collect();
    let dues: Vec<Option<DateTime<Utc>>> = rows.iter().map(|r| r.planned_due_at).collect();
    let payloads: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| serde_json::to_value(&r.payload).expect("payload serializes"))
        .collect();
    let urgent: Vec<bool> = rows.iter().map(|r| r.urgent).collect();
    let not_before: Vec<DateTime<Utc>> = rows.iter().map(|r| r.not_before).collect();
    let traces: Vec<Option<String>> = rows.iter().map(|r| r.trace_context.clone()).collect();
    let statuses: Vec<OutboxStatus> = rows
        .iter()
        .map(|r| {
            if r.held {
                OutboxStatus::Held
            } else {
                OutboxStatus::Pending
            }
        })
        .collect();
    let res = sqlx::query!(
        r#"INSERT INTO outbox (id, dedupe_key, campaign_id, kind, endpoint, recipient, obligation_id, planned_due_at,
                               payload, urgent, not_before, status, created_at, trace_context)
           SELECT i, k, c, kd, e, r, o, d, p, u, nb, s, $1, tc
           FROM UNNEST($2::uuid[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::uuid[],
                       $9::timestamptz[], $10::jsonb[], $11::bool[], $12::timestamptz[], $13::text[], $14::text[])
                AS t(i, k, c, kd, e, r, o, d, p, u, nb, s, tc)
           ON CONFLICT (dedupe_key) DO NOTHING"#,
        now,
        &ids,
        &keys,
        &campaigns,
        &kinds,
        &endpoints,
        &recipients,
        &obligations as &[Option<Uuid>],
        &dues as &[Option<DateTime<Utc>>],
        &payloads,
        &urgent,
        &not_before,
        &statuses as &[OutboxStatus],
        &traces as &[Option<String>],
    )
    .execute(&mut *conn)
    .await?;
    Ok(res.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use junheng_core::calendar::WorkCalendar;
    use serde_json::json;

    fn tz() -> Tz {
        chrono_tz::Asia::Shanghai
    }
    fn local(m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        tz().with_ymd_and_hms(2020, m, d, h, mi, 0)
            .unwrap()
            .with_timezone(&Utc)
    }
    fn settings() -> Settings {
        Settings::from_toml(
            r#"
            database_url = "postgres://x/y"
            [endpoints.mail]
            kind = "smtp"
            host = "localhost"
            from = "jy@example.cn"
            to = ["office@example.cn"]
            message_id_domain = "example.cn"
            [endpoints.wecom]
            kind = "wecom"
            key = "k"
            [endpoints.feishu]
            kind = "feishu"
            hook_id = "h"
            secret = "s"
            "#,
            |_| None,
        )
        .unwrap()
    }
    fn targets() -> Vec<Target> {
        ["mail", "wecom", "feishu"]
            .into_iter()
            .map(|ep| Target {
                recipient: "role:office".into(),
                display: "县教育局督导室".into(),
                endpoint: ep.into(),
                to: None,
                mention_mobiles: Vec::new(),
            })
            .collect()
    }
    fn occurrence<'a>(
        kind: Kind,
        at: DateTime<Utc>,
        urgent: bool,
        cal: &'a WorkCalendar,
    ) -> Occurrence<'a> {
        Occurrence {
            campaign_id: Uuid::nil(),
            kind,
            key: "k".into(),
            obligation_id: None,
            planned_due_at: None,
            at,
            tz: tz(),
            urgent,
            ctx: json!({"subject": "审核自主申报", "due": "d", "days_left": 0, "days_overdue": 1}),
            attachments: Vec::new(),
            html_hook: None,
            quiet: Some(QuietRules {
                quiet_start: chrono::NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
                quiet_end: chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
                tz: tz(),
                calendar: cal,
            }),
            hold_limit: None,
            trace_context: None,
        }
    }
    fn by_endpoint(rows: &[NewRow]) -> Vec<(&str, DateTime<Utc>, bool)> {
        rows.iter()
            .map(|r| (r.endpoint.as_str(), r.not_before, r.held))
            .collect()
    }

    #[test]
    fn feishu_steps_off_the_peak_minutes_unless_urgent() {
        let cal = WorkCalendar::statutory();
        let s = settings();
        // Thursday 08:30, the reminder morning, planned on time.
        let at = local(4, 9, 8, 30);
        let rows = rows_for(
            &s,
            &occurrence(Kind::Reminder, at, false, &cal),
            &targets(),
            at,
        )
        .unwrap();
        assert_eq!(
            by_endpoint(&rows),
            vec![
                ("mail", at, false),
                ("wecom", at, false),
                ("feishu", local(4, 9, 8, 32), false)
            ]
        );
        let rows = rows_for(
            &s,
            &occurrence(Kind::Reminder, at, true, &cal),
            &targets(),
            at,
        )
        .unwrap();
        assert!(
            rows.iter().all(|r| r.not_before == at),
            "urgent never moves"
        );
        // Overdue at Saturday 00:00, planned at 00:01: e-mail now, chat held to Monday 08:00,
        // Feishu to 08:02 (still a hold).
        let due = local(4, 11, 0, 0);
        let rows = rows_for(
            &s,
            &occurrence(Kind::Overdue, due, false, &cal),
            &targets(),
            local(4, 11, 0, 1),
        )
        .unwrap();
        assert_eq!(
            by_endpoint(&rows),
            vec![
                ("mail", due, false),
                ("wecom", local(4, 13, 8, 0), true),
                ("feishu", local(4, 13, 8, 2), true)
            ]
        );
        assert!(rows.iter().all(|r| !r.payload.title.contains("补发")));
    }

    #[test]
    fn a_message_planned_over_an_hour_after_it_was_due_to_leave_says_so() {
        let cal = WorkCalendar::statutory();
        let s = settings();
        let due = local(4, 11, 0, 0); // Saturday 00:00
        let occ = occurrence(Kind::Overdue, due, false, &cal);
        let title = "【逾期】审核自主申报超过截止时间1天";
        let late = |r: &NewRow, from: &str| {
            assert_eq!(
                r.payload.title,
                format!("{title}（补发）"),
                "{}",
                r.endpoint
            );
            let note = format!("原定于{from}发送，因系统停机延后补发。");
            assert!(r.payload.text.starts_with(&note), "{}", r.payload.text);
        };
        let on_time = |r: &NewRow| {
            assert_eq!(r.payload.title, title, "{}", r.endpoint);
            assert!(!r.payload.text.contains("补发"));
        };
        // Down until Monday 08:30: the e-mail was due at 00:00 on Saturday and is late; the
        // chat copies would have been held to Monday 08:00 anyway and are not.
        let rows = rows_for(&s, &occ, &targets(), local(4, 13, 8, 30)).unwrap();
        late(&rows[0], "2020年4月10日24时");
        assert!(
            rows[0]
                .payload
                .html
                .as_deref()
                .unwrap()
                .contains("原定于2020年4月10日24时发送")
        );
        on_time(&rows[1]);
        on_time(&rows[2]);
        // Down until Monday 09:30: every copy is late, the chat ones since Monday 08:00.
        let rows = rows_for(&s, &occ, &targets(), local(4, 13, 9, 30)).unwrap();
        late(&rows[0], "2020年4月10日24时");
        late(&rows[1], "2020年4月13日08:00");
        assert!(
            rows[1]
                .payload
                .markdown
                .as_deref()
                .unwrap()
                .starts_with("> 原定于2020年4月13日08:00发送，因系统停机延后补发。\n\n")
        );
        late(&rows[2], "2020年4月13日08:00");
        // Within the hour: not marked.
        let rows = rows_for(&s, &occ, &targets(), local(4, 11, 1, 0)).unwrap();
        on_time(&rows[0]);
    }
}
