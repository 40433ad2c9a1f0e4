//! The append-only audit log (also the campaign event stream) and the application of a
//! decision's effects.

use chrono::{DateTime, Utc};
use junheng_core::effects::{Effect, Owner};
use junheng_core::role::Role;
use junheng_core::{CampaignId, SchoolId};
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
    /// The W3C `traceparent` of the call, when traces are on.
    pub trace_context: Option<String>,
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
    pub trace_context: Option<String>,
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
    trace_context: Option<String>,
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
            trace_context: r.trace_context,
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
    apply_obligations(conn, ctx, effects).await?;
    insert_events(conn, ctx, effects).await
}

/// Everything of `apply` but the events: obligations opened, closed or re-planned.
pub async fn apply_obligations(
    conn: &mut PgConnection,
    ctx: &AuditCtx,
    effects: &[Effect],
) -> Result<()> {
    let mut opens = Vec::new();
    for e in effects {
        match e {
            Effect::Event { .. } => {}
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
                obligations::close(
                    conn,
                    CampaignId::new(ctx.campaign),
                    *kind,
                    *school,
                    key,
                    ctx.at,
                )
                .await?;
            }
            Effect::ReplanObligations { deadline, due } => {
                obligations::replan(conn, CampaignId::new(ctx.campaign), &deadline.code(), *due)
                    .await?;
            }
        }
    }
    obligations::open_many(
        conn,
        CampaignId::new(ctx.campaign),
        &opens,
        ctx.at,
        ctx.trace_context.as_deref(),
    )
    .await?;
    Ok(())
}

/// The events of `apply`, in one batch. Appending takes the campaign's chain lock (migration
/// 0008) until the transaction ends, so a unit of work calls this last, after every row lock
/// it needs: the chain lock is then always the last lock taken and cannot deadlock.
pub async fn insert_events(
    conn: &mut PgConnection,
    ctx: &AuditCtx,
    effects: &[Effect],
) -> Result<()> {
    let mut schools = Vec::new();
    let mut actions = Vec::new();
    let mut befores = Vec::new();
    let mut afters = Vec::new();
    let mut reasons = Vec::new();
    for e in effects {
        if let Effect::Event {
            action,
            school,
            before,
            after,
            reason,
        } = e
        {
            schools.push(school.map(SchoolId::as_uuid));
            actions.push(action.to_string());
            befores.push(before.clone());
            afters.push(after.clone());
            reasons.push(reason.clone());
        }
    }
    if !actions.is_empty() {
        sqlx::query!(
            r#"INSERT INTO events (campaign_id, school_id, actor, role, action, before, after, reason, request_id, occurred_at, trace_context)
               SELECT $1, s, $2, $3, a, b, af, r, $4, $5, $11
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
            ctx.trace_context,
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Audit events of a campaign (optionally one school), oldest first, paged by id.
pub async fn list(
    conn: &mut PgConnection,
    campaign: CampaignId,
    school: Option<SchoolId>,
    after_id: i64,
    limit: i64,
) -> Result<Vec<EventRow>> {
    let campaign = campaign.as_uuid();
    let school = school.map(SchoolId::as_uuid);
    rows(sqlx::query_as!(
        EventRec,
        r#"SELECT id, campaign_id, xid::text AS "xid!", school_id, actor, role, action, before, after, reason, request_id, occurred_at, trace_context
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
        r#"SELECT id, campaign_id, xid::text AS "xid!", school_id, actor, role, action, before, after, reason, request_id, occurred_at, trace_context
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

/// The chain of events that belong to no campaign: the clock, the scheduler's endpoints and
/// deliveries without a campaign.
pub const SYSTEM_CHAIN: Uuid = Uuid::nil();

/// The `prev_hash` of a chain's first event (migration 0008).
pub fn genesis(campaign: Uuid) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(
        format!("junheng-audit-genesis:{campaign}").as_bytes(),
    ))
}

/// One event as the chain sees it: every hashed field in its stored text form.
#[derive(Debug, Clone)]
pub struct ChainLink {
    pub id: i64,
    pub chain_seq: i64,
    pub prev_hash: String,
    pub hash: String,
    pub campaign_id: Uuid,
    pub xid: String,
    pub school_id: Option<Uuid>,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub before: String,
    pub after: String,
    pub reason: Option<String>,
    pub request_id: String,
    pub occurred_at: DateTime<Utc>,
}

/// The hash the row should carry: SHA-256 over the canonical encoding (v1) of migration 0008,
/// computed here independently of the database's trigger.
pub fn link_hash(l: &ChainLink) -> String {
    use sha2::Digest;
    fn field(out: &mut Vec<u8>, v: Option<&str>) {
        match v {
            None => out.extend_from_slice(b"-\n"),
            Some(v) => {
                out.extend_from_slice(format!("{}:", v.len()).as_bytes());
                out.extend_from_slice(v.as_bytes());
                out.push(b'\n');
            }
        }
    }
    let mut b = b"junheng-audit-v1\n".to_vec();
    field(&mut b, Some(&l.prev_hash));
    field(&mut b, Some(&l.chain_seq.to_string()));
    field(&mut b, Some(&l.id.to_string()));
    field(&mut b, Some(&l.campaign_id.to_string()));
    field(&mut b, Some(&l.xid));
    field(&mut b, l.school_id.map(|s| s.to_string()).as_deref());
    field(&mut b, Some(&l.actor));
    field(&mut b, Some(&l.role));
    field(&mut b, Some(&l.action));
    field(&mut b, Some(&l.before));
    field(&mut b, Some(&l.after));
    field(&mut b, l.reason.as_deref());
    field(&mut b, Some(&l.request_id));
    field(&mut b, Some(&l.occurred_at.timestamp_micros().to_string()));
    hex::encode(sha2::Sha256::digest(&b))
}

/// The first link of a chain that does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    /// The event at fault; `None` when the fault is the chain's head (events missing at the end).
    pub event_id: Option<i64>,
    pub chain_seq: i64,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Events checked, in chain order, up to and including the broken one.
    pub checked: i64,
    /// The hash of the last event that verified (the genesis hash if none did).
    pub last_hash: String,
    pub broken: Option<BrokenLink>,
}

/// Makes the caller's fresh transaction one read-only snapshot (its first statement).
pub async fn snapshot(conn: &mut PgConnection) -> Result<()> {
    sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Walks a campaign's chain from its genesis, recomputing every hash, and names the first
/// broken link. Run it in a REPEATABLE READ transaction so the events and the head it compares
/// belong to one snapshot.
pub async fn verify(conn: &mut PgConnection, campaign: Uuid) -> Result<ChainReport> {
    const PAGE: i64 = 1000;
    let mut prev = genesis(campaign);
    let mut expected = 1i64;
    let mut checked = 0i64;
    loop {
        let page = sqlx::query_as!(
            ChainLink,
            r#"SELECT id, chain_seq, prev_hash, hash, campaign_id, xid::text AS "xid!", school_id,
                      actor, role, action, before::text AS "before!", after::text AS "after!",
                      reason, request_id, occurred_at
               FROM events WHERE campaign_id = $1 AND chain_seq >= $2
               ORDER BY chain_seq, id LIMIT $3"#,
            campaign,
            expected,
            PAGE
        )
        .fetch_all(&mut *conn)
        .await?;
        let n = page.len() as i64;
        for l in page {
            checked += 1;
            let problem = if l.chain_seq > expected {
                Some(format!(
                    "chain position {} follows {}: the event(s) in between are missing",
                    l.chain_seq,
                    expected - 1
                ))
            } else if l.chain_seq < expected {
                Some(format!("chain position {} appears twice", l.chain_seq))
            } else if l.prev_hash != prev {
                Some(format!(
                    "prev_hash {} is not the hash {} of the event before it",
                    l.prev_hash, prev
                ))
            } else {
                let h = link_hash(&l);
                (h != l.hash).then(|| {
                    format!(
                        "the row does not match its hash (stored {}, content hashes to {h}): it was changed after it was written",
                        l.hash
                    )
                })
            };
            if let Some(problem) = problem {
                return Ok(ChainReport {
                    checked,
                    last_hash: prev,
                    broken: Some(BrokenLink {
                        event_id: Some(l.id),
                        chain_seq: l.chain_seq,
                        problem,
                    }),
                });
            }
            prev = l.hash;
            expected += 1;
        }
        if n < PAGE {
            break;
        }
    }
    let head = sqlx::query!(
        "SELECT seq, hash FROM audit_chain_heads WHERE campaign_id = $1",
        campaign
    )
    .fetch_optional(&mut *conn)
    .await?;
    let last = expected - 1;
    let broken = match head {
        None if last > 0 => Some(format!(
            "the chain has {last} event(s) but no head: audit_chain_heads was changed"
        )),
        Some(h) if h.seq != last || h.hash != prev => Some(format!(
            "the chain head is at position {} (hash {}) but the last event is at position {last} (hash {prev}): events are missing at the end",
            h.seq, h.hash
        )),
        _ => None,
    }
    .map(|problem| BrokenLink {
        event_id: None,
        chain_seq: last + 1,
        problem,
    });
    Ok(ChainReport {
        checked,
        last_hash: prev,
        broken,
    })
}

/// The last decision of one kind (`action`) recorded for each school of a campaign: what it
/// made of the school (`after`) and its stated reason, in school-id order. Reads the audit log,
/// so it stays true after later commands move the school on (the confirmed mentor list after
/// awards replace the `mentor` state, for example).
pub async fn school_decisions(
    conn: &mut PgConnection,
    campaign: CampaignId,
    action: &str,
) -> Result<Vec<(SchoolId, serde_json::Value, Option<String>)>> {
    let campaign = campaign.as_uuid();
    let rows = sqlx::query!(
        r#"SELECT DISTINCT ON (school_id) school_id AS "school_id!", after, reason
           FROM events
           WHERE campaign_id = $1 AND action = $2 AND school_id IS NOT NULL
           ORDER BY school_id, id DESC"#,
        campaign,
        action
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (SchoolId::new(r.school_id), r.after, r.reason))
        .collect())
}
