//! Functions behind the scheduler's query API (delivery log, resend, preview), independent of
//! any transport so the gRPC edge can wrap them one-to-one.

use chrono::{DateTime, Utc};
use junheng_core::text::deadline_zh;
use junheng_core::{Effect, Role};
use junheng_store::notifications;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::Settings;
use crate::lifecycle::OutboxStatus;
use crate::outbox::Kind;
use crate::planning::load_schools;
use crate::schedule::{self, ObligationMessage, ObligationSchedule, QuietRules};
use crate::{Error, recipients};

#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub campaign_id: Option<Uuid>,
    pub status: Option<String>,
    pub kind: Option<String>,
    pub recipient: Option<String>,
    /// Page by (created_at, id) descending: pass the last row's id.
    pub before_id: Option<Uuid>,
    pub limit: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub id: Uuid,
    pub dedupe_key: String,
    pub campaign_id: Uuid,
    pub kind: String,
    pub endpoint: String,
    pub recipient: String,
    pub title: String,
    pub status: String,
    pub attempts: i32,
    pub not_before: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub attempt: i32,
    pub worker: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: String,
    pub detail: String,
}

/// The delivery log, newest first.
pub async fn list_deliveries(pool: &PgPool, f: &DeliveryFilter) -> Result<Vec<Delivery>, Error> {
    let limit = if f.limit <= 0 { 100 } else { f.limit.min(1000) };
    Ok(sqlx::query_as!(
        Delivery,
        r#"SELECT id, dedupe_key, campaign_id, kind, endpoint, recipient, payload->>'title' AS "title!", status, attempts,
                  not_before, last_error, created_at, sent_at
           FROM outbox
           WHERE ($1::uuid IS NULL OR campaign_id = $1) AND ($2::text IS NULL OR status = $2)
             AND ($3::text IS NULL OR kind = $3) AND ($4::text IS NULL OR recipient = $4)
             AND ($5::uuid IS NULL OR (created_at, id) < (SELECT created_at, id FROM outbox WHERE id = $5))
           ORDER BY created_at DESC, id DESC LIMIT $6"#,
        f.campaign_id,
        f.status,
        f.kind,
        f.recipient,
        f.before_id,
        limit
    )
    .fetch_all(pool)
    .await?)
}

/// Every attempt of one delivery, oldest first.
pub async fn attempts(pool: &PgPool, outbox_id: Uuid) -> Result<Vec<Attempt>, Error> {
    Ok(sqlx::query_as!(
        Attempt,
        r#"SELECT attempt AS "attempt!", worker AS "worker!", started_at AS "started_at!", finished_at AS "finished_at!",
                  outcome AS "outcome!", detail AS "detail!"
           FROM delivery_log WHERE outbox_id = $1 ORDER BY attempt"#,
        outbox_id
    )
    .fetch_all(pool)
    .await?)
}

/// One delivery and the plain text that was (or will be) sent.
pub async fn get_delivery(pool: &PgPool, id: Uuid) -> Result<(Delivery, String), Error> {
    let r = sqlx::query!(
        r#"SELECT id, dedupe_key, campaign_id, kind, endpoint, recipient, payload->>'title' AS "title!",
                  COALESCE(payload->>'text', '') AS "text!", status, attempts,
                  not_before, last_error, created_at, sent_at
           FROM outbox WHERE id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| Error::NotFound(format!("delivery {id} not found")))?;
    Ok((
        Delivery {
            id: r.id,
            dedupe_key: r.dedupe_key,
            campaign_id: r.campaign_id,
            kind: r.kind,
            endpoint: r.endpoint,
            recipient: r.recipient,
            title: r.title,
            status: r.status,
            attempts: r.attempts,
            not_before: r.not_before,
            last_error: r.last_error,
            created_at: r.created_at,
            sent_at: r.sent_at,
        },
        r.text,
    ))
}

/// Queues a copy of a delivery to be sent now, under a new id (receivers that de-duplicate by
/// id would drop a re-send under the old one). Idempotent per (`caller`, `idempotency_key`):
/// the same key returns the same copy, even under concurrent calls (the unique dedupe key
/// lets one insert win); the same key for a different delivery is refused with
/// [`Error::Conflict`]. The copy is not re-checked against its obligation: a person asked.
///
/// Audited (`delivery.resent`, in the delivery's campaign chain) in the transaction that
/// queues the copy, with the original's status before and the copy after; a replay of the
/// same key writes nothing.
pub async fn resend(
    pool: &PgPool,
    outbox_id: Uuid,
    caller: &Audit,
    idempotency_key: &str,
    now: DateTime<Utc>,
) -> Result<Uuid, Error> {
    let key = format!("resend:{}:{idempotency_key}", caller.actor.id);
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO outbox (id, dedupe_key, campaign_id, kind, endpoint, recipient, payload, urgent, not_before, status, created_at, resend_of, trace_context)
           SELECT $1, $2, campaign_id, kind, endpoint, recipient, payload, urgent, $3, $5, $3, id, $6 FROM outbox WHERE id = $4
           ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"#,
        Uuid::now_v7(),
        key,
        now,
        outbox_id,
        OutboxStatus::Pending as OutboxStatus,
        // The resend's delivery continues the trace of the call that asked for it.
        junheng_edge::telemetry::traceparent()
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(id) = inserted {
        let orig = sqlx::query!(
            "SELECT campaign_id, status, attempts, kind, endpoint, recipient FROM outbox WHERE id = $1",
            outbox_id
        )
        .fetch_one(&mut *tx)
        .await?;
        let event = Effect::event(
            "delivery.resent",
            None,
            serde_json::json!({ "delivery_id": outbox_id, "status": orig.status,
                                "attempts": orig.attempts, "kind": orig.kind,
                                "endpoint": orig.endpoint, "recipient": orig.recipient }),
            serde_json::json!({ "delivery_id": id, "resend_of": outbox_id,
                                "status": "pending", "not_before": now }),
            None,
        );
        junheng_store::audit::apply(&mut tx, &caller.ctx(orig.campaign_id, now), &[event]).await?;
        tx.commit().await?;
        return Ok(id);
    }
    drop(tx);
    let existing = sqlx::query!(
        "SELECT id, resend_of FROM outbox WHERE dedupe_key = $1",
        key
    )
    .fetch_optional(pool)
    .await?;
    match existing {
        Some(r) if r.resend_of == Some(outbox_id) => Ok(r.id),
        Some(r) => Err(Error::Conflict(format!(
            "idempotency key `{idempotency_key}` was already used to resend delivery {}",
            r.resend_of
                .map(|u| u.to_string())
                .unwrap_or_else(|| "?".into())
        ))),
        None => Err(Error::NotFound(format!("delivery {outbox_id} not found"))),
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PreviewItem {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub subject: String,
    pub recipient: String,
    pub endpoint: String,
    /// `queued` (an outbox row exists) or `planned` (will be created when due).
    pub state: String,
}

/// What will be sent in `(now, until]` for a campaign: queued rows plus reminders, overdue
/// notices, notice expiries and digests that will be planned, assuming nothing changes.
pub async fn preview(
    pool: &PgPool,
    settings: &Settings,
    campaign_id: Uuid,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<PreviewItem>, Error> {
    let mut conn = pool.acquire().await?;
    let c =
        junheng_store::campaigns::get(&mut conn, campaign_id, junheng_store::campaigns::Lock::None)
            .await?;
    let def = crate::planning::definition(settings, &c.definition)?;
    let tz = def.tz();
    let mut items = Vec::new();
    let queued = sqlx::query!(
        r#"SELECT not_before, kind, payload->>'title' AS "title!", recipient, endpoint FROM outbox
           WHERE campaign_id = $1 AND status IN ('pending', 'held') AND not_before <= $2 ORDER BY not_before, id"#,
        campaign_id,
        until
    )
    .fetch_all(&mut *conn)
    .await?;
    items.extend(queued.into_iter().map(|r| PreviewItem {
        at: r.not_before,
        kind: r.kind,
        subject: r.title,
        recipient: r.recipient,
        endpoint: r.endpoint,
        state: "queued".into(),
    }));

    // When a planned message will actually leave: chat is held by quiet hours and non-working
    // days like the planner does (a reminder is never held past its own deadline), and Feishu
    // steps off the :00/:30 peaks.
    let quiet = QuietRules::for_campaign(&def);
    let leaves = |at: DateTime<Utc>, kind: Kind, endpoint: &str, limit: Option<DateTime<Utc>>| {
        let urgent = settings
            .planning
            .urgent_kinds
            .iter()
            .any(|k| k == kind.code());
        let Some(ep) = settings.endpoints.get(endpoint) else {
            return at;
        };
        let held = !urgent && ep.is_chat();
        let feishu = !urgent && matches!(ep.endpoint, junheng_notify::Endpoint::Feishu(_));
        schedule::departure(at, at, held.then_some(&quiet), feishu, limit).not_before
    };
    let planned = |at: DateTime<Utc>,
                   kind: Kind,
                   subject: &str,
                   t: recipients::Target,
                   limit: Option<DateTime<Utc>>| PreviewItem {
        at: leaves(at, kind, &t.endpoint, limit),
        kind: kind.code().into(),
        subject: subject.to_owned(),
        recipient: t.recipient,
        endpoint: t.endpoint,
        state: "planned".into(),
    };
    let schools = load_schools(&mut conn, campaign_id).await?;
    for o in notifications::open_obligations(&mut conn, campaign_id).await? {
        if settings.planning.skips(o.kind) {
            continue;
        }
        let owner = recipients::for_owner(
            settings,
            o.owner_role,
            o.owner_school.and_then(|id| schools.get(&id)),
        );
        let messages = ObligationSchedule::new(o.due_at, o.created_at, &def.reminders, tz);
        for m in messages.between(now, until) {
            let (targets, limit) = match m {
                // A reminder is never held past its own deadline.
                ObligationMessage::Reminder(_) => (owner.clone(), Some(o.due_at)),
                // The owner's copy and the office's, one per (recipient, endpoint).
                ObligationMessage::Overdue(_) => {
                    let mut targets = owner.clone();
                    targets.extend(
                        recipients::for_role(settings, Role::Office)
                            .into_iter()
                            .filter(|t| {
                                !owner
                                    .iter()
                                    .any(|x| x.recipient == t.recipient && x.endpoint == t.endpoint)
                            }),
                    );
                    (targets, None)
                }
            };
            for t in targets {
                items.push(planned(m.at(), m.kind(), &o.subject, t, limit));
            }
        }
    }
    let notices = notifications::notices_ending(&mut conn, campaign_id, now, until).await?;
    for n in notices {
        let subject = format!("{}（{}）", n.title, deadline_zh(n.ends_at, tz));
        for t in recipients::for_role(settings, Role::Office) {
            items.push(planned(n.ends_at, Kind::NoticeExpiry, &subject, t, None));
        }
    }
    let digests = if settings.planning.digests_enabled {
        schedule::digest_occurrences(&def.reminders.digest_cron, tz, now, until)
            .map_err(|e| Error::Definition(e.to_string()))?
    } else {
        Vec::new()
    };
    for at in digests {
        let day = junheng_core::time::local_date(at, tz);
        if !def
            .calendar()
            .is_working_day(day)
            .map_err(|e| Error::Definition(e.to_string()))?
        {
            continue;
        }
        for t in recipients::for_role(settings, Role::Office) {
            items.push(planned(at, Kind::DailyDigest, "每日汇总", t, None));
        }
    }
    items.sort_by(|a, b| {
        (a.at, &a.kind, &a.recipient, &a.endpoint).cmp(&(b.at, &b.kind, &b.recipient, &b.endpoint))
    });
    Ok(items)
}

/// A configured endpoint and whether it is usable.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EndpointStatus {
    pub name: String,
    /// `smtp`, `wecom`, `dingtalk`, `feishu`, `slack`, `webhook` or `file`.
    pub kind: String,
    pub disabled: Option<Disabled>,
    /// Messages waiting for it to be enabled again.
    pub parked: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Disabled {
    pub at: DateTime<Utc>,
    pub reason: String,
    pub by_delivery: Uuid,
}

/// Every endpoint of the configuration, and any disabled endpoint the database still names
/// (a configuration may have dropped it while messages wait for it).
pub async fn endpoints(pool: &PgPool, settings: &Settings) -> Result<Vec<EndpointStatus>, Error> {
    let states =
        sqlx::query!("SELECT endpoint, disabled_at, reason, outbox_id FROM endpoint_states")
            .fetch_all(pool)
            .await?;
    let parked = sqlx::query!(
        r#"SELECT endpoint, count(*) AS "n!" FROM outbox WHERE status = 'parked' GROUP BY endpoint"#
    )
    .fetch_all(pool)
    .await?;
    let mut out: std::collections::BTreeMap<String, EndpointStatus> = settings
        .endpoints
        .iter()
        .map(|(name, e)| {
            let status = EndpointStatus {
                name: name.clone(),
                kind: e.endpoint.kind().to_owned(),
                disabled: None,
                parked: 0,
            };
            (name.clone(), status)
        })
        .collect();
    let unknown = |name: &str| EndpointStatus {
        name: name.to_owned(),
        kind: "(not configured)".into(),
        disabled: None,
        parked: 0,
    };
    for s in states {
        out.entry(s.endpoint.clone())
            .or_insert_with(|| unknown(&s.endpoint))
            .disabled = Some(Disabled {
            at: s.disabled_at,
            reason: s.reason,
            by_delivery: s.outbox_id,
        });
    }
    for p in parked {
        out.entry(p.endpoint.clone())
            .or_insert_with(|| unknown(&p.endpoint))
            .parked = p.n;
    }
    Ok(out.into_values().collect())
}

/// Enables a disabled endpoint again and releases its parked messages (same ids) to be sent
/// from `now`. Enabling an endpoint that is not disabled releases nothing and is not an
/// error, so a retried call is harmless. A call that changed something is audited
/// (`endpoint.enabled`, in the system chain) with the disabled state before it.
pub async fn enable_endpoint(
    pool: &PgPool,
    name: &str,
    caller: &Audit,
    now: DateTime<Utc>,
) -> Result<u64, Error> {
    let mut tx = pool.begin().await?;
    let before = sqlx::query!(
        "DELETE FROM endpoint_states WHERE endpoint = $1 RETURNING disabled_at, reason, outbox_id",
        name
    )
    .fetch_optional(&mut *tx)
    .await?;
    let released = sqlx::query!(
        "UPDATE outbox SET status = $3, not_before = GREATEST(not_before, $2) WHERE endpoint = $1 AND status = 'parked'",
        name,
        now,
        OutboxStatus::Pending as OutboxStatus
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if before.is_some() || released > 0 {
        let event = Effect::event(
            "endpoint.enabled",
            None,
            serde_json::json!({ "endpoint": name, "disabled": before.map(|b| serde_json::json!({
                "disabled_at": b.disabled_at, "reason": b.reason, "outbox_id": b.outbox_id })) }),
            serde_json::json!({ "endpoint": name, "disabled": null, "released": released }),
            None,
        );
        let ctx = caller.ctx(junheng_store::audit::SYSTEM_CHAIN, now);
        junheng_store::audit::apply(&mut tx, &ctx, &[event]).await?;
    }
    tx.commit().await?;
    Ok(released)
}

/// Who made an audited scheduler call, on which request.
#[derive(Debug, Clone)]
pub struct Audit {
    pub actor: junheng_core::Actor,
    /// The campaigns the caller's token covers: a campaign-scoped token sees and acts on
    /// only those campaigns' messages.
    pub scope: junheng_core::Scope,
    pub request_id: String,
}

impl Audit {
    fn ctx(&self, campaign: Uuid, at: DateTime<Utc>) -> junheng_store::audit::AuditCtx {
        junheng_store::audit::AuditCtx {
            campaign,
            actor: self.actor.id.clone(),
            role: self.actor.role,
            request_id: self.request_id.clone(),
            at,
            trace_context: junheng_edge::telemetry::traceparent(),
        }
    }
}
