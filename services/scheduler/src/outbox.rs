//! The outbox: rendered messages waiting to be delivered, one row per (source, occasion,
//! recipient, endpoint). Rows are inserted with `ON CONFLICT (dedupe_key) DO NOTHING`, so any
//! number of planners (replicas, restarts) create each notification at most once.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use junheng_notify::templates::{ChannelKind, TemplateKind, render};
use junheng_notify::{Attachment, Endpoint, Message};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::config::Settings;
use crate::plan::QuietRules;
use crate::recipients::Target;

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
    pub fn to_message(&self, id: Uuid) -> Message {
        Message {
            id: id.to_string(),
            title: self.title.clone(),
            text: self.text.clone(),
            markdown: self.markdown.clone(),
            html: self.html.clone(),
            attachments: self
                .attachments
                .iter()
                .map(|a| Attachment {
                    filename: a.filename.clone(),
                    content_type: a.content_type.clone(),
                    bytes: base64::engine::general_purpose::STANDARD
                        .decode(&a.base64)
                        .unwrap_or_default(),
                    inline_cid: a.inline_cid.clone(),
                })
                .collect(),
            mention_mobiles: self.mention_mobiles.clone(),
            urgent: self.urgent,
        }
    }

    /// The endpoint to use for this message: `to` overrides an SMTP endpoint's recipients.
    pub fn effective_endpoint(&self, ep: &Endpoint) -> Endpoint {
        match (ep, &self.to) {
            (Endpoint::Smtp(s), Some(to)) => {
                let mut s = s.clone();
                s.to = to.clone();
                Endpoint::Smtp(s)
            }
            _ => ep.clone(),
        }
    }
}

/// What a notification is about; `kind` is also the template name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Reminder,
    Overdue,
    NoticeExpiry,
    PhaseSummary,
    DailyDigest,
}

impl Kind {
    pub fn template(self) -> TemplateKind {
        match self {
            Kind::Reminder => TemplateKind::Reminder,
            Kind::Overdue => TemplateKind::Overdue,
            Kind::NoticeExpiry => TemplateKind::NoticeExpiry,
            Kind::PhaseSummary => TemplateKind::PhaseSummary,
            Kind::DailyDigest => TemplateKind::DailyDigest,
        }
    }
    pub fn code(self) -> &'static str {
        self.template().name()
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
    pub urgent: bool,
    /// Template context; `owner` is filled per target when absent.
    pub ctx: serde_json::Value,
    pub attachments: Vec<StoredAttachment>,
    /// Called with the rendered e-mail HTML, e.g. to embed a chart.
    pub html_hook: Option<&'a dyn Fn(String) -> String>,
    pub quiet: Option<QuietRules<'a>>,
    /// A hold that would reach this instant is not applied (a reminder held past its own
    /// deadline would be useless, so it goes out in quiet time instead).
    pub hold_limit: Option<DateTime<Utc>>,
}

/// Renders `occ` for every target's channel and builds one row per target.
/// `now` is when the rows are planned: a chat message planned late (after downtime or a
/// clock jump) is held from then, not from when it was due, so it never lands in quiet hours.
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
        let mut ctx = occ.ctx.clone();
        if let Some(obj) = ctx.as_object_mut() {
            obj.entry("owner")
                .or_insert_with(|| serde_json::Value::String(t.display.clone()));
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
        let not_before = match occ.quiet {
            Some(q) if !occ.urgent && ep.is_chat() => {
                // Planned late but inside allowed hours: keep the occasion's own instant, so
                // older occasions still go first.
                let t = if occ.at < now && q.next_allowed(now) == now {
                    occ.at
                } else {
                    q.next_allowed(occ.at.max(now))
                };
                if occ.hold_limit.is_some_and(|limit| t >= limit) {
                    occ.at
                } else {
                    t
                }
            }
            _ => occ.at,
        };
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
            held: not_before > occ.at,
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
    let statuses: Vec<String> = rows
        .iter()
        .map(|r| if r.held { "held" } else { "pending" }.to_owned())
        .collect();
    let res = sqlx::query!(
        r#"INSERT INTO outbox (id, dedupe_key, campaign_id, kind, endpoint, recipient, obligation_id, planned_due_at,
                               payload, urgent, not_before, status, created_at)
           SELECT i, k, c, kd, e, r, o, d, p, u, nb, s, $1
           FROM UNNEST($2::uuid[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::uuid[],
                       $9::timestamptz[], $10::jsonb[], $11::bool[], $12::timestamptz[], $13::text[])
                AS t(i, k, c, kd, e, r, o, d, p, u, nb, s)
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
        &statuses,
    )
    .execute(&mut *conn)
    .await?;
    Ok(res.rows_affected())
}
