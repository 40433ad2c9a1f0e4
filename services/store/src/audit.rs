//! The append-only audit log (also the campaign event stream) and the application of a
//! decision's effects.

use chrono::{DateTime, Utc};
use junheng_core::effects::{Effect, Owner};
use junheng_core::role::Role;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{Result, StoreError, decode, obligations};

/// Who did it, on which request, when: stamped on every event of one command.
#[derive(Debug, Clone)]
pub struct AuditCtx {
    pub campaign: Uuid,
    pub actor: String,
    pub role: Role,
    pub request_id: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: i64,
    pub campaign_id: Uuid,
    pub xid: String,
    pub school_id: Option<Uuid>,
    pub actor: String,
    pub role: Role,
    pub action: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    pub reason: Option<String>,
    pub request_id: String,
    pub occurred_at: DateTime<Utc>,
}

/// An `events` row as fetched, before its role is read.
struct EventRec {
    id: i64,
    campaign_id: Uuid,
    xid: String,
    school_id: Option<Uuid>,
    actor: String,
    role: String,
    action: String,
    before: serde_json::Value,
    after: serde_json::Value,
    reason: Option<String>,
    request_id: String,
    occurred_at: DateTime<Utc>,
}

impl TryFrom<EventRec> for EventRow {
    type Error = StoreError;

    fn try_from(r: EventRec) -> Result<Self> {
        Ok(EventRow {
            role: decode("events.role", &r.role, Role::from_code)?,
            id: r.id,
            campaign_id: r.campaign_id,
            xid: r.xid,
            school_id: r.school_id,
            actor: r.actor,
            action: r.action,
            before: r.before,
            after: r.after,
            reason: r.reason,
            request_id: r.request_id,
            occurred_at: r.occurred_at,
        })
    }
}

fn rows(recs: Vec<EventRec>) -> Result<Vec<EventRow>> {
    recs.into_iter().map(EventRow::try_from).collect()
}

/// A position in the event stream: (transaction id, event id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cursor {
    pub xid: u64,
    pub id: i64,
}

impl Cursor {
    pub fn parse(s: &str) -> Option<Cursor> {
        if s.is_empty() {
            return Some(Cursor::default());
        }
        let (x, i) = s.split_once('.')?;
        Some(Cursor {
            xid: x.parse().ok()?,
            id: i.parse().ok()?,
        })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.xid, self.id)
    }
}

impl EventRow {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            xid: self.xid.parse().unwrap_or_default(),
            id: self.id,
        }
    }
}

/// Persists the effects of one decision: events in one batch, obligations opened, closed or
/// re-planned. Runs inside the caller's transaction.
pub async fn apply(conn: &mut PgConnection, ctx: &AuditCtx, effects: &[Effect]) -> Result<()> {
    let mut schools = Vec::new();
    let mut actions = Vec::new();
    let mut befores = Vec::new();
    let mut afters = Vec::new();
    let mut reasons = Vec::new();
    let mut opens = Vec::new();
    for e in effects {
        match e {
            Effect::Event {
                action,
                school,
                before,
                after,
                reason,
            } => {
                schools.push(*school);
                actions.push(action.to_string());
                befores.push(before.clone());
                afters.push(after.clone());
                reasons.push(reason.clone());
            }
            Effect::OpenObligation {
                kind,
                school,
                key,
                owner,
                deadline,
                due,
                subject,
            } => {
                let (owner_role, owner_school) = match owner {
                    Owner::Role(r) => (*r, None),
                    Owner::School(s) => (Role::School, Some(*s)),
                };
                opens.push(obligations::NewObligation {
                    kind: *kind,
                    school: *school,
                    key: key.clone(),
                    owner_role,
                    owner_school,
                    deadline_ref: deadline.code(),
                    due: *due,
                    subject: subject.clone(),
                });
            }
            Effect::CloseObligation { kind, school, key } => {
                obligations::close(conn, ctx.campaign, *kind, *school, key, ctx.at).await?;
            }
            Effect::ReplanObligations { deadline, due } => {
                obligations::replan(conn, ctx.campaign, &deadline.code(), *due).await?;
            }
        }
    }
    if !actions.is_empty() {
        sqlx::query!(
            r#"INSERT INTO events (campaign_id, school_id, actor, role, action, before, after, reason, request_id, occurred_at)
               SELECT $1, s, $2, $3, a, b, af, r, $4, $5
               FROM UNNEST($6::uuid[], $7::text[], $8::jsonb[], $9::jsonb[], $10::text[]) AS t(s, a, b, af, r)"#,
            ctx.campaign,
            ctx.actor,
            ctx.role.code(),
            ctx.request_id,
            ctx.at,
            &schools as &[Option<Uuid>],
            &actions,
            &befores,
            &afters,
            &reasons as &[Option<String>],
        )
        .execute(&mut *conn)
        .await?;
    }
    obligations::open_many(conn, ctx.campaign, &opens, ctx.at).await?;
    Ok(())
}

/// Audit events of a campaign (optionally one school), oldest first, paged by id.
pub async fn list(
    conn: &mut PgConnection,
    campaign: Uuid,
    school: Option<Uuid>,
    after_id: i64,
    limit: i64,
) -> Result<Vec<EventRow>> {
    rows(sqlx::query_as!(
        EventRec,
        r#"SELECT id, campaign_id, xid::text AS "xid!", school_id, actor, role, action, before, after, reason, request_id, occurred_at
           FROM events
           WHERE campaign_id = $1 AND ($2::uuid IS NULL OR school_id = $2) AND id > $3
           ORDER BY id LIMIT $4"#,
        campaign,
        school,
        after_id,
        limit
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// Events after `cursor` whose transactions have all finished, in (xid, id) order. A reader that
/// resumes from the last cursor it saw never skips an event, even when writers commit out of
/// order: an event becomes visible here only once no older transaction can still add one.
pub async fn follow(
    conn: &mut PgConnection,
    campaign: Uuid,
    cursor: Cursor,
    limit: i64,
) -> Result<Vec<EventRow>> {
    rows(sqlx::query_as!(
        EventRec,
        r#"SELECT id, campaign_id, xid::text AS "xid!", school_id, actor, role, action, before, after, reason, request_id, occurred_at
           FROM events
           WHERE campaign_id = $1
             AND (xid, id) > ($2::text::xid8, $3)
             AND xid < pg_snapshot_xmin(pg_current_snapshot())
           ORDER BY xid, id LIMIT $4"#,
        campaign,
        cursor.xid.to_string(),
        cursor.id,
        limit
    )
    .fetch_all(&mut *conn)
    .await?)
}

pub const EVENTS_CHANNEL: &str = "junheng_events";

/// Wakes followers after commit (NOTIFY is delivered at commit). Never the only signal:
/// followers also poll.
pub async fn notify(conn: &mut PgConnection, campaign: Uuid) -> Result<()> {
    sqlx::query!(
        "SELECT pg_notify($1, $2)",
        EVENTS_CHANNEL,
        campaign.to_string()
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
