//! Step 1, the claim: picks due rows (and expired leases) with `FOR UPDATE SKIP LOCKED`,
//! writes what [`lifecycle::triage`] and the shared rate limit ([`lifecycle::budget`]) decide
//! for each (cancelled, parked, deferred, or `sending` with a lease) and commits before
//! anything is sent.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use junheng_store::notifications;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Claimed, DispatchReport, Dispatcher};
use crate::Error;
use crate::lifecycle::{self, Claim, ClaimFacts, ObligationFacts, OutboxStatus};
use crate::outbox::{Kind, Payload};

impl Dispatcher {
    /// Step 1: claim a batch and commit the leases. Public so tests can simulate a crash
    /// between claim and send.
    pub async fn claim(&self, now: DateTime<Utc>) -> Result<(Vec<Claimed>, DispatchReport), Error> {
        let mut report = DispatchReport::default();
        let mut tx = self.pool.begin().await?;
        super::index_plans(&mut tx).await?;
        // Two index range scans, each stopping after `batch_size` rows: due rows in
        // (not_before, id) order (index `outbox_due_order`), and expired leases (crash
        // recovery). An OR of both in one scan made every claim sort the whole due set.
        let rows = sqlx::query!(
            r#"WITH due AS (
                   SELECT id, endpoint, kind, recipient, attempts, payload, obligation_id, planned_due_at, not_before, trace_context
                   FROM outbox WHERE status IN ('pending', 'held') AND not_before <= $3
                        AND (not_before <= $1 OR NOT endpoint = ANY($4))
                   ORDER BY not_before, id LIMIT $2 FOR UPDATE SKIP LOCKED),
               leased AS (
                   SELECT id, endpoint, kind, recipient, attempts, payload, obligation_id, planned_due_at, not_before, trace_context
                   FROM outbox WHERE status = 'sending' AND lease_until <= $1
                   ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED),
               c AS (SELECT * FROM due UNION ALL SELECT * FROM leased)
               SELECT c.id AS "id!", c.endpoint AS "endpoint!", c.kind AS "kind!", c.recipient AS "recipient!",
                      c.attempts AS "attempts!", c.payload::text AS "payload!", c.obligation_id, c.planned_due_at,
                      c.not_before AS "not_before!", es.reason AS "disabled?", c.trace_context
               FROM c LEFT JOIN endpoint_states es ON es.endpoint = c.endpoint
               ORDER BY c.not_before, c.id"#,
            now,
            self.settings.dispatch.batch_size,
            now + self.lookahead(),
            self.limited.as_slice()
        )
        .fetch_all(&mut *tx)
        .await?;
        // The obligations the rows were planned for, as they are now (the workflow's table,
        // read through the store).
        let mut obligation_ids: Vec<Uuid> = rows.iter().filter_map(|r| r.obligation_id).collect();
        obligation_ids.sort_unstable();
        obligation_ids.dedup();
        let obligations = notifications::obligations_now(&mut tx, &obligation_ids).await?;

        let facts: Vec<ClaimFacts<'_>> = rows
            .iter()
            .map(|r| ClaimFacts {
                reminder: r.kind == Kind::Reminder.code(),
                recipient: &r.recipient,
                endpoint: &r.endpoint,
                not_before: r.not_before,
                obligation: r.obligation_id.map(|id| {
                    let now = obligations.get(&id);
                    ObligationFacts {
                        id,
                        planned_due_at: r.planned_due_at,
                        status: now.map(|o| o.status),
                        due_at: now.map(|o| o.due_at),
                    }
                }),
                endpoint_disabled: r.disabled.is_some(),
            })
            .collect();
        let mut cancel: Vec<(Uuid, String)> = Vec::new();
        let mut park: Vec<Uuid> = Vec::new();
        let mut live = Vec::new();
        for (r, claim) in rows.iter().zip(lifecycle::triage(&facts)) {
            match claim {
                Claim::Send => live.push(r),
                Claim::Cancel(why) => cancel.push((r.id, why)),
                Claim::Park => park.push(r.id),
            }
        }
        if !cancel.is_empty() {
            let (ids, why): (Vec<Uuid>, Vec<String>) = cancel.into_iter().unzip();
            report.cancelled = ids.len();
            sqlx::query!(
                r#"UPDATE outbox SET status = $3, last_error = u.why, lease_until = NULL
                   FROM UNNEST($1::uuid[], $2::text[]) AS u(id, why) WHERE outbox.id = u.id"#,
                &ids,
                &why,
                OutboxStatus::Cancelled as OutboxStatus
            )
            .execute(&mut *tx)
            .await?;
        }

        if !park.is_empty() {
            // Not an attempt: the message waits for its endpoint to be enabled again.
            report.parked = park.len();
            sqlx::query!(
                "UPDATE outbox SET status = $2, lease_until = NULL, last_error = 'endpoint disabled; waiting for it to be enabled again' WHERE id = ANY($1)",
                &park,
                OutboxStatus::Parked as OutboxStatus
            )
            .execute(&mut *tx)
            .await?;
        }

        // Shared rate limits: per endpoint, take as many as every window allows.
        let mut by_endpoint: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, r) in live.iter().enumerate() {
            by_endpoint.entry(r.endpoint.as_str()).or_default().push(i);
        }
        let mut endpoints: Vec<&str> = by_endpoint.keys().copied().collect();
        endpoints.sort_unstable(); // fixed lock order across replicas
        let mut take = vec![true; live.len()];
        let mut defer: Vec<(Uuid, DateTime<Utc>)> = Vec::new();
        if self.settings.dispatch.rate_limits_enabled {
            for ep in endpoints {
                let idx = &by_endpoint[ep];
                let limits = self
                    .settings
                    .endpoints
                    .get(ep)
                    .map(|e| e.limits(self.settings.dispatch.rate_limit_margin))
                    .unwrap_or_default();
                if limits.is_empty() {
                    continue;
                }
                let (allowed, next_free) =
                    take_budget(&mut tx, ep, &limits, idx.len(), now).await?;
                if allowed < idx.len() {
                    crate::metrics::rate_limit_wait(
                        ep,
                        "budget",
                        idx.len() - allowed,
                        (next_free - now).to_std().unwrap_or_default(),
                    );
                }
                for &i in &idx[allowed..] {
                    take[i] = false;
                    defer.push((live[i].id, next_free));
                }
            }
        }
        if !defer.is_empty() {
            report.deferred = defer.len();
            let (ids, at): (Vec<Uuid>, Vec<DateTime<Utc>>) = defer.into_iter().unzip();
            // A deferred expired lease goes back to pending: it was never sent by us.
            sqlx::query!(
                r#"UPDATE outbox SET not_before = u.at, lease_until = NULL,
                          status = CASE WHEN status = 'sending' THEN $3 ELSE status END
                   FROM UNNEST($1::uuid[], $2::timestamptz[]) AS u(id, at) WHERE outbox.id = u.id"#,
                &ids,
                &at,
                lifecycle::DEFERRED as OutboxStatus
            )
            .execute(&mut *tx)
            .await?;
        }

        let ids: Vec<Uuid> = live
            .iter()
            .zip(take)
            .filter(|(_, t)| *t)
            .map(|(r, _)| r.id)
            .collect();
        // The lease runs from the send instant: a row claimed ahead is not taken over while
        // it waits for its time. The database's lease is the one the sender honours.
        let leases: HashMap<Uuid, DateTime<Utc>> = sqlx::query!(
            r#"UPDATE outbox SET status = $4, lease_until = GREATEST(not_before, $2) + make_interval(secs => $3),
                    attempts = attempts + 1
             WHERE id = ANY($1)
             RETURNING id, lease_until AS "lease_until!""#,
            &ids,
            now,
            self.settings.dispatch.lease().as_secs_f64(),
            Claim::Send.status() as OutboxStatus
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| (r.id, r.lease_until))
        .collect();
        tx.commit().await?;

        let out = rows
            .into_iter()
            .filter_map(|r| {
                let lease_until = *leases.get(&r.id)?;
                let payload: Payload =
                    serde_json::from_str(&r.payload).unwrap_or_else(|e| Payload {
                        title: "(unreadable payload)".into(),
                        text: e.to_string(),
                        ..Payload::default()
                    });
                Some(Claimed {
                    id: r.id,
                    urgent: payload.urgent,
                    payload,
                    feishu: matches!(
                        self.settings
                            .endpoints
                            .get(&r.endpoint)
                            .map(|e| &e.endpoint),
                        Some(junheng_notify::Endpoint::Feishu(_))
                    ),
                    endpoint: r.endpoint,
                    kind: r.kind,
                    attempt: r.attempts + 1,
                    ahead: r.not_before > now,
                    lease_until,
                    not_before: r.not_before,
                    obligation_id: r.obligation_id,
                    planned_due_at: r.planned_due_at,
                    trace_context: r.trace_context,
                })
            })
            .collect::<Vec<_>>();
        report.claimed = out.len();
        Ok((out, report))
    }
}

/// The shared sliding-window budgets of one endpoint (`endpoint_budgets`, row-locked in the
/// claiming transaction, in a fixed endpoint order across replicas): how many of `wanted`
/// may be claimed now, and when the next slot frees otherwise.
async fn take_budget(
    tx: &mut PgConnection,
    endpoint: &str,
    limits: &[crate::config::RateLimit],
    wanted: usize,
    now: DateTime<Utc>,
) -> Result<(usize, DateTime<Utc>), Error> {
    let mut windows = Vec::with_capacity(limits.len());
    for l in limits {
        let window_ms = (l.per_secs * 1000) as i64;
        sqlx::query!(
            "INSERT INTO endpoint_budgets (endpoint, window_ms, max_sends) VALUES ($1, $2, $3) ON CONFLICT (endpoint, window_ms) DO UPDATE SET max_sends = EXCLUDED.max_sends",
            endpoint,
            window_ms,
            l.max as i32
        )
        .execute(&mut *tx)
        .await?;
        let recent = sqlx::query_scalar!(
            "SELECT recent FROM endpoint_budgets WHERE endpoint = $1 AND window_ms = $2 FOR UPDATE",
            endpoint,
            window_ms
        )
        .fetch_one(&mut *tx)
        .await?;
        windows.push(lifecycle::Window {
            window: chrono::Duration::milliseconds(window_ms),
            max: l.max as usize,
            recent,
        });
    }
    let budget = lifecycle::budget(&windows, wanted, now);
    for (l, recent) in limits.iter().zip(&budget.recent) {
        let window_ms = (l.per_secs * 1000) as i64;
        sqlx::query!(
            "UPDATE endpoint_budgets SET recent = $3 WHERE endpoint = $1 AND window_ms = $2",
            endpoint,
            window_ms,
            recent
        )
        .execute(&mut *tx)
        .await?;
    }
    Ok((budget.allowed, budget.next_free))
}
