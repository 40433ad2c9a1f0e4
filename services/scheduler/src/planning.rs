//! Planning, the I/O side: reads obligations, notices, the event stream and the digest
//! schedule, asks [`crate::schedule`] what is due, and writes it into the outbox. Idempotent: every row has a dedupe key and is inserted
//! with `ON CONFLICT DO NOTHING`, so any number of replicas may plan at once; cursors are
//! row-locked so only one replica advances each.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use junheng_core::effects::ObligationKind;
use junheng_core::text::{date_zh, deadline_zh};
use junheng_core::time::local_date;
use junheng_core::{CampaignDefinition, Role};
use junheng_store::audit::{self, Cursor};
use junheng_store::campaigns::CampaignRow;
use junheng_store::notifications::{self, open_obligations};
use junheng_store::{PgConnection, PgPool, StoreError};
use serde_json::json;
use uuid::Uuid;

use crate::Error;
use crate::config::Settings;
use crate::outbox::{self, Kind, NewRow, Occurrence};
use crate::recipients::{self, SchoolInfo, Target};
use crate::schedule::{self, ObligationMessage, ObligationSchedule, QuietRules};
use crate::summary;
use crate::workflow::{Workflow, WorkflowError};

#[derive(Debug, Default, Clone)]
pub struct PlanReport {
    /// New outbox rows.
    pub planned: u64,
    pub notices_closed: u32,
    pub summaries: u32,
    pub digests: u32,
    /// Campaign-level failures; one campaign's problem never stops the others.
    pub errors: Vec<String>,
}

pub struct Planner {
    settings: Arc<Settings>,
    workflow: Arc<dyn Workflow>,
}

/// The campaign's schools as recipients, by id.
pub(crate) async fn load_schools(
    conn: &mut PgConnection,
    campaign: Uuid,
) -> Result<HashMap<Uuid, SchoolInfo>, StoreError> {
    Ok(notifications::school_contacts(conn, campaign)
        .await?
        .into_iter()
        .map(|r| (r.id, SchoolInfo::new(r.id, r.name, &r.contacts)))
        .collect())
}

impl Planner {
    pub fn new(settings: Arc<Settings>, workflow: Arc<dyn Workflow>) -> Self {
        Self { settings, workflow }
    }

    fn urgent(&self, kind: Kind) -> bool {
        self.settings
            .planning
            .urgent_kinds
            .iter()
            .any(|k| k == kind.code())
    }

    /// Obligations of this kind get no messages (`planning.skip_kinds`).
    fn skipped(&self, kind: ObligationKind) -> bool {
        self.settings.planning.skips(kind)
    }

    /// Plans everything that is due at `now`, for every campaign.
    pub async fn plan(&self, pool: &PgPool, now: DateTime<Utc>) -> Result<PlanReport, Error> {
        let mut report = PlanReport::default();
        let campaigns = {
            let mut conn = pool.acquire().await?;
            junheng_store::campaigns::list(&mut conn).await?
        };
        for c in campaigns {
            if let Err(e) = self.plan_campaign(pool, &c, now, &mut report).await {
                tracing::error!(campaign.id = %c.id, error = %e, "planning failed");
                report.errors.push(format!("{}: {e}", c.code));
            }
        }
        Ok(report)
    }

    async fn plan_campaign(
        &self,
        pool: &PgPool,
        c: &CampaignRow,
        now: DateTime<Utc>,
        report: &mut PlanReport,
    ) -> Result<(), Error> {
        let def = definition(&self.settings, &c.definition)?;
        let mut conn = pool.acquire().await?;
        let schools = load_schools(&mut conn, c.id).await?;
        drop(conn);
        report.planned += self
            .plan_obligations(pool, c.id, &def, &schools, now)
            .await?;
        self.plan_notices(pool, c.id, &def, &schools, now, report)
            .await?;
        if self.settings.planning.digests_enabled {
            self.plan_digest(pool, c, &def, &schools, now, report)
                .await?;
        }
        self.plan_phase_summaries(pool, c, &def, now, report)
            .await?;
        Ok(())
    }

    /// Reminders at the configured offsets and one overdue message per deadline.
    async fn plan_obligations(
        &self,
        pool: &PgPool,
        campaign: Uuid,
        def: &CampaignDefinition,
        schools: &HashMap<Uuid, SchoolInfo>,
        now: DateTime<Utc>,
    ) -> Result<u64, Error> {
        let tz = def.tz();
        let q = QuietRules::for_campaign(def);
        let mut conn = pool.acquire().await?;
        let obligations = open_obligations(&mut conn, campaign).await?;
        let mut rows: Vec<NewRow> = Vec::new();
        for o in obligations.iter().filter(|o| !self.skipped(o.kind)) {
            let owner_school = o.owner_school.and_then(|id| schools.get(&id));
            let owner_targets = recipients::for_owner(&self.settings, o.owner_role, owner_school);
            let mut ctx = json!({"subject": o.subject, "due": deadline_zh(o.due_at, tz)});
            if o.owner_role == Role::Office {
                // The office is not told to contact the bureau about its own item.
                ctx["office_owned"] = json!(true);
            }
            // A school's own item names the school once, as its owner ("昌乐二中（王校长）"),
            // not again as 学校：昌乐二中.
            if let Some(s) = o
                .school_id
                .filter(|id| o.owner_school != Some(*id))
                .and_then(|id| schools.get(&id))
            {
                ctx["school"] = json!(s.name);
            }
            let messages = ObligationSchedule::new(o.due_at, o.created_at, &def.reminders, tz);
            for message in messages.due_at(now) {
                match message {
                    ObligationMessage::Reminder(occ) => {
                        let mut ctx = ctx.clone();
                        ctx["days_left"] = json!(schedule::days_left(o.due_at, now, tz));
                        let urgent = self.urgent(Kind::Reminder)
                            || self
                                .settings
                                .planning
                                .urgent_offset_days
                                .is_some_and(|d| occ.offset_days <= d);
                        let occurrence = Occurrence {
                            campaign_id: campaign,
                            kind: Kind::Reminder,
                            key: format!(
                                "obl:{}:reminder:{}:{}",
                                o.id,
                                o.due_at.timestamp(),
                                occ.offset_days
                            ),
                            obligation_id: Some(o.id),
                            planned_due_at: Some(o.due_at),
                            at: occ.at,
                            tz,
                            urgent,
                            ctx,
                            attachments: Vec::new(),
                            html_hook: None,
                            quiet: Some(q),
                            hold_limit: Some(o.due_at),
                            trace_context: o.trace_context.clone(),
                        };
                        rows.extend(outbox::rows_for(
                            &self.settings,
                            &occurrence,
                            &owner_targets,
                            now,
                        )?);
                    }
                    ObligationMessage::Overdue(at) => {
                        let mut ctx = ctx.clone();
                        ctx["days_overdue"] = json!(schedule::days_overdue(o.due_at, now, tz));
                        let late_party = owner_targets
                            .first()
                            .map(|t| t.display.clone())
                            .unwrap_or_else(|| recipients::role_display(o.owner_role).into());
                        // The office copy names the party that is late ("昌乐二中的…已于…截止"); the
                        // party's own copy addresses it. Keys are per recipient, so splitting the two
                        // copies keeps one row per (deadline, recipient, endpoint).
                        let office_targets: Vec<Target> =
                            recipients::for_role(&self.settings, Role::Office)
                                .into_iter()
                                .filter(|t| {
                                    !owner_targets.iter().any(|x| {
                                        x.recipient == t.recipient && x.endpoint == t.endpoint
                                    })
                                })
                                .collect();
                        let mut office_ctx = ctx.clone();
                        office_ctx["owner"] = json!(late_party);
                        office_ctx["late_party"] = json!(late_party);
                        for (ctx, targets) in [(ctx, &owner_targets), (office_ctx, &office_targets)]
                        {
                            let occurrence = Occurrence {
                                campaign_id: campaign,
                                kind: Kind::Overdue,
                                key: format!("obl:{}:overdue:{}", o.id, o.due_at.timestamp()),
                                obligation_id: Some(o.id),
                                planned_due_at: Some(o.due_at),
                                at,
                                tz,
                                urgent: self.urgent(Kind::Overdue),
                                ctx,
                                attachments: Vec::new(),
                                html_hook: None,
                                quiet: Some(q),
                                hold_limit: None,
                                trace_context: o.trace_context.clone(),
                            };
                            rows.extend(outbox::rows_for(
                                &self.settings,
                                &occurrence,
                                targets,
                                now,
                            )?);
                        }
                    }
                }
            }
        }
        Ok(outbox::insert(&mut conn, &rows, now).await?)
    }

    /// Announces ended notices to the office and the listed schools, then asks the workflow
    /// to close them. The announcement commits first; the close is retried every tick until it
    /// succeeds (the workflow call is idempotent by key).
    async fn plan_notices(
        &self,
        pool: &PgPool,
        campaign: Uuid,
        def: &CampaignDefinition,
        schools: &HashMap<Uuid, SchoolInfo>,
        now: DateTime<Utc>,
        report: &mut PlanReport,
    ) -> Result<(), Error> {
        let tz = def.tz();
        let mut conn = pool.acquire().await?;
        // Ended notices whose expiry is not settled yet (announced and closed).
        let ended = notifications::ended_notices(&mut conn, campaign, now).await?;
        let ids: Vec<Uuid> = ended.iter().map(|n| n.id).collect();
        let settled: HashSet<Uuid> = if ids.is_empty() {
            HashSet::new()
        } else {
            sqlx::query_scalar!(
                "SELECT notice_id FROM notice_expiries WHERE notice_id = ANY($1) AND closed_at IS NOT NULL",
                &ids
            )
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect()
        };
        let notices: Vec<_> = ended
            .into_iter()
            .filter(|n| !settled.contains(&n.id))
            .collect();
        // What each notice published (kind, first and last day), for the office copy's 公示
        // parts; read once per pass, only when a notice ended.
        let published: HashMap<Uuid, junheng_store::notices::NoticeRow> = if notices.is_empty() {
            HashMap::new()
        } else {
            // A row that does not read (an unknown kind) only loses those parts: the
            // expiry is still announced and the notice closed.
            match junheng_store::notices::list_notices(&mut conn, campaign).await {
                Ok(rows) => rows.into_iter().map(|n| (n.id, n)).collect(),
                Err(e) => {
                    tracing::warn!(campaign.id = %campaign, error = %e, "notice parts unavailable");
                    HashMap::new()
                }
            }
        };
        drop(conn);
        for n in notices {
            let mut tx = pool.begin().await?;
            let listed = junheng_store::notices::notice_schools(&mut tx, n.id).await?;
            let names: Vec<String> = listed
                .iter()
                .filter_map(|id| schools.get(id))
                .map(|s| s.name.clone())
                .collect();
            let expires = deadline_zh(n.ends_at, tz);
            let occurrence = |ctx: serde_json::Value| Occurrence {
                campaign_id: campaign,
                kind: Kind::NoticeExpiry,
                key: format!("notice:{}:expiry:{}", n.id, n.ends_at.timestamp()),
                obligation_id: None,
                planned_due_at: None,
                at: n.ends_at,
                tz,
                urgent: self.urgent(Kind::NoticeExpiry),
                ctx,
                attachments: Vec::new(),
                html_hook: None,
                quiet: Some(QuietRules::for_campaign(def)),
                hold_limit: None,
                trace_context: n.trace_context.clone(),
            };
            // The office copy carries the whole list, rendered once per office endpoint. Each
            // listed school's copy names only that school and the list's size, so a notice to
            // N schools renders and stores O(N) text, not the list N times (issue #11).
            let mut office_ctx =
                json!({"notice_title": n.title, "expires": expires, "schools": names});
            if let Some(p) = published.get(&n.id) {
                // The office copy carries what the 公示 carried (core::text::notice, the
                // wording of the public page and the exports).
                use junheng_core::text::notice as wording;
                let first = local_date(p.starts_at, tz);
                office_ctx["heading"] = json!(wording::heading(&p.title));
                office_ctx["basis"] = json!(wording::basis(def, p.kind));
                office_ctx["period"] = json!(wording::period(def, first, p.last_day));
                office_ctx["objection"] = json!(wording::objection(def, p.last_day));
                office_ctx["contacts"] = json!(wording::contacts(def));
                office_ctx["issuing_unit"] = json!(def.publication.issuing_unit);
                office_ctx["signed"] = json!(date_zh(first));
            }
            let heading = office_ctx.get("heading").cloned();
            let office = occurrence(office_ctx);
            let mut rows = outbox::rows_for(
                &self.settings,
                &office,
                &recipients::for_role(&self.settings, Role::Office),
                now,
            )?;
            let mut seen = HashSet::new();
            for id in &listed {
                let Some(s) = schools.get(id) else { continue };
                let targets: Vec<Target> = recipients::for_school(&self.settings, s)
                    .into_iter()
                    .filter(|t| seen.insert((t.recipient.clone(), t.endpoint.clone())))
                    .collect();
                if targets.is_empty() {
                    continue;
                }
                let mut own_ctx = json!({"notice_title": n.title, "expires": expires,
                    "school": s.name, "school_count": names.len()});
                if let Some(h) = &heading {
                    own_ctx["heading"] = h.clone();
                }
                let own = occurrence(own_ctx);
                rows.extend(outbox::rows_for(&self.settings, &own, &targets, now)?);
            }
            report.planned += outbox::insert(&mut tx, &rows, now).await?;
            sqlx::query!(
                "INSERT INTO notice_expiries (notice_id, campaign_id, planned_at) VALUES ($1, $2, $3) ON CONFLICT (notice_id) DO NOTHING",
                n.id,
                campaign,
                now
            )
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;

            let result = match n.closed_at {
                Some(_) => Ok(()),
                None => {
                    self.workflow
                        .close_notice(n.id, &format!("scheduler:close-notice:{}", n.id))
                        .await
                }
            };
            let mut conn = pool.acquire().await?;
            match result {
                Ok(()) => {
                    sqlx::query!("UPDATE notice_expiries SET closed_at = $2, last_error = NULL WHERE notice_id = $1", n.id, n.closed_at.unwrap_or(now))
                        .execute(&mut *conn)
                        .await?;
                    report.notices_closed += 1;
                }
                Err(e) => {
                    match e {
                        WorkflowError::NotConfigured => {
                            tracing::debug!(notice.id = %n.id, "no workflow configured; notice announced but not closed")
                        }
                        ref e => {
                            tracing::warn!(notice.id = %n.id, error = %e, "closing the notice failed; will retry")
                        }
                    }
                    sqlx::query!(
                        "UPDATE notice_expiries SET last_error = $2 WHERE notice_id = $1",
                        n.id,
                        e.to_string()
                    )
                    .execute(&mut *conn)
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Locks (creating when absent) the cursor row of `kind` for this campaign.
    async fn lock_cursor(
        conn: &mut PgConnection,
        campaign: Uuid,
        kind: &str,
        initial: DateTime<Utc>,
    ) -> Result<(Option<DateTime<Utc>>, Cursor), Error> {
        sqlx::query!(
            "INSERT INTO scheduler_cursors (campaign_id, kind, planned_at) VALUES ($1, $2, $3) ON CONFLICT (campaign_id, kind) DO NOTHING",
            campaign,
            kind,
            initial
        )
        .execute(&mut *conn)
        .await?;
        let row = sqlx::query!("SELECT planned_at, event_xid, event_id FROM scheduler_cursors WHERE campaign_id = $1 AND kind = $2 FOR UPDATE", campaign, kind)
            .fetch_one(&mut *conn)
            .await?;
        let cursor = Cursor {
            xid: row.event_xid.and_then(|x| x.parse().ok()).unwrap_or(0),
            id: row.event_id.unwrap_or(0),
        };
        Ok((row.planned_at, cursor))
    }

    /// The office digest at the campaign's `digest_cron`, on working days; missed runs collapse
    /// into the latest one. A scheduler seeing a campaign for the first time starts from `now`
    /// (no digest for days before it was deployed).
    async fn plan_digest(
        &self,
        pool: &PgPool,
        c: &CampaignRow,
        def: &CampaignDefinition,
        schools: &HashMap<Uuid, SchoolInfo>,
        now: DateTime<Utc>,
        report: &mut PlanReport,
    ) -> Result<(), Error> {
        let tz = def.tz();
        let mut tx = pool.begin().await?;
        let (planned_at, _) = Self::lock_cursor(&mut tx, c.id, "digest", now).await?;
        let after = planned_at.unwrap_or(now);
        let Some(at) = schedule::digest_due(&def.reminders.digest_cron, tz, after, now)
            .map_err(|e| Error::Definition(e.to_string()))?
        else {
            tx.commit().await?; // keeps a freshly created cursor
            return Ok(());
        };
        let day = local_date(at, tz);
        if def
            .calendar()
            .is_working_day(day)
            .map_err(|e| Error::Definition(e.to_string()))?
        {
            let horizon = now + chrono::Duration::days(self.settings.planning.digest_horizon_days);
            let items: Vec<serde_json::Value> = open_obligations(&mut tx, c.id)
                .await?
                .into_iter()
                .filter(|o| o.due_at <= horizon && !self.skipped(o.kind))
                .take(50)
                .map(|o| {
                    let mut item = json!({"title": o.subject, "due": deadline_zh(o.due_at, tz)});
                    if let Some(s) = o.school_id.and_then(|id| schools.get(&id)) {
                        item["school"] = json!(s.name);
                    }
                    item
                })
                .collect();
            let occurrence = Occurrence {
                campaign_id: c.id,
                kind: Kind::DailyDigest,
                key: format!("campaign:{}:digest:{}", c.id, at.timestamp()),
                obligation_id: None,
                planned_due_at: None,
                at,
                tz,
                urgent: self.urgent(Kind::DailyDigest),
                ctx: json!({"date": date_zh(day), "items": items}),
                attachments: Vec::new(),
                html_hook: None,
                quiet: Some(QuietRules::for_campaign(def)),
                hold_limit: None,
                trace_context: None,
            };
            let rows = outbox::rows_for(
                &self.settings,
                &occurrence,
                &recipients::for_role(&self.settings, Role::Office),
                now,
            )?;
            report.planned += outbox::insert(&mut tx, &rows, now).await?;
            report.digests += 1;
        }
        sqlx::query!("UPDATE scheduler_cursors SET planned_at = $3, updated_at = now() WHERE campaign_id = $1 AND kind = $2", c.id, "digest", at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Follows the campaign's event stream (gap-free cursor) and summarises each completed
    /// phase for leadership. The cursor moves in the same transaction as the outbox insert.
    async fn plan_phase_summaries(
        &self,
        pool: &PgPool,
        c: &CampaignRow,
        def: &CampaignDefinition,
        now: DateTime<Utc>,
        report: &mut PlanReport,
    ) -> Result<(), Error> {
        const PAGE: i64 = 200;
        loop {
            let mut tx = pool.begin().await?;
            let (_, cursor) = Self::lock_cursor(&mut tx, c.id, "events", c.created_at).await?;
            let events = audit::follow(&mut tx, c.id, cursor, PAGE).await?;
            let Some(last) = events.last().map(|e| e.cursor()) else {
                return Ok(());
            };
            for e in events.iter().filter(|e| e.action == "phase.completed") {
                let phase = e
                    .after
                    .get("kind")
                    .and_then(|k| k.as_str())
                    .unwrap_or("")
                    .to_owned();
                let s = summary::build(&mut tx, c.id, &c.phases, def, &phase, now).await?;
                let hook = |html: String| s.embed_chart(html);
                let occurrence = Occurrence {
                    campaign_id: c.id,
                    kind: Kind::PhaseSummary,
                    key: format!("event:{}:phase_summary", e.id),
                    obligation_id: None,
                    planned_due_at: None,
                    // The completion is the occasion: a summary planned after downtime is late.
                    // (Never later than now: a clock set back must not postpone it.)
                    at: e.occurred_at.min(now),
                    tz: def.tz(),
                    urgent: self.urgent(Kind::PhaseSummary),
                    ctx: s.ctx.clone(),
                    attachments: vec![s.attachment()],
                    html_hook: Some(&hook),
                    quiet: Some(QuietRules::for_campaign(def)),
                    hold_limit: None,
                    // The call that completed the phase: its delivery continues that trace.
                    trace_context: e.trace_context.clone(),
                };
                let rows = outbox::rows_for(
                    &self.settings,
                    &occurrence,
                    &recipients::for_role(&self.settings, Role::Leader),
                    now,
                )?;
                report.planned += outbox::insert(&mut tx, &rows, now).await?;
                report.summaries += 1;
            }
            sqlx::query!(
                "UPDATE scheduler_cursors SET event_xid = $3, event_id = $4, updated_at = now() WHERE campaign_id = $1 AND kind = $2",
                c.id,
                "events",
                last.xid.to_string(),
                last.id
            )
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            if (events.len() as i64) < PAGE {
                return Ok(());
            }
        }
    }
}

/// Every stored campaign whose phases need a calendar year the scheduler has no data for, as
/// the message the planner logs for it (checked at start).
pub async fn calendar_problems(pool: &PgPool, settings: &Settings) -> Result<Vec<String>, Error> {
    let mut conn = pool.acquire().await?;
    let campaigns = junheng_store::campaigns::list(&mut conn).await?;
    Ok(campaigns
        .iter()
        .filter_map(|c| definition(settings, &c.definition).err())
        .map(|e| e.to_string())
        .collect())
}

/// A stored definition rebuilt with the calendar years the scheduler loaded (the shipped files
/// and the calendars directory). A campaign with a phase in a year without data is an error
/// naming the year and the file to add (logged by the planner each pass, and at start), never
/// "every day is a working day".
pub fn definition(
    settings: &Settings,
    stored: &serde_json::Value,
) -> Result<CampaignDefinition, Error> {
    let def = CampaignDefinition::from_canonical_with(stored.clone(), &settings.calendars)
        .map_err(|e| Error::Definition(format!("{e:?}")))?;
    let mut years: Vec<i32> = def
        .phases
        .values()
        .flat_map(|w| w.start.year()..=w.end.year())
        .collect();
    years.sort_unstable();
    years.dedup();
    if let Some(year) = years.into_iter().find(|y| !def.calendar().covers(*y)) {
        return Err(Error::Definition(format!(
            "campaign {}: {}",
            def.code,
            junheng_core::calendar::CalendarError::NoData(year)
        )));
    }
    Ok(def)
}
