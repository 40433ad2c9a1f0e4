//! The public projections the 公示栏 shows to anyone, without a token: the campaigns, their
//! published notices, each with its list as published, its period in working days and, after
//! the period, the outcome of objections as counts. Read-only; every read asks
//! [`policy::anonymous`] first and passes what it loaded through the same projections as the
//! gRPC reads (`policy::notice`), so no objector's name, contact or evidence and no contact of
//! a school reaches a public page. A notice exists only once published; anything else is
//! `NOT_FOUND`.

use junheng_core::{CampaignId, NoticeId, SchoolId};
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use junheng_core::notice::{NoticeKind, ObjectionStatus};
use junheng_core::{CampaignDefinition, time};
use junheng_sheets as sheets;
use junheng_store::PgConnection;
use junheng_store::campaigns::{self, CampaignRow, Lock};
use junheng_store::notices::NoticeRow;
use uuid::Uuid;

use super::all_schools;
use super::documents::level;
use super::notices;
use super::policy::{self, Rpc};
use crate::error::{AppError, AppResult};
use crate::state::{AppState, Loaded};

/// A campaign as the public board lists it.
pub struct PublicCampaign {
    pub id: CampaignId,
    pub code: String,
    pub county: String,
    pub year: i32,
    pub def: Arc<CampaignDefinition>,
    pub notices: usize,
}

/// Where a notice's period stands at "now".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Running: this many working days left, today included.
    Open {
        working_days_left: u32,
    },
    Ended,
}

/// Objection outcome counts of an ended notice; no personal data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    pub upheld: usize,
    pub dismissed: usize,
    pub open: usize,
}

/// One published notice as the public reads it.
pub struct PublicNotice {
    pub row: NoticeRow,
    pub campaign_code: String,
    pub def: Arc<CampaignDefinition>,
    /// 索引号, when the definition names a prefix.
    pub index_number: String,
    /// 发布日期 (local).
    pub published: NaiveDate,
    pub period: Period,
    /// The list as published (序号 first), the same table the XLSX/CSV documents carry.
    pub table: sheets::Table,
    /// After the period: the objection counts.
    pub outcome: Option<Outcome>,
    pub now: DateTime<Utc>,
    /// The listed schools (id, name), for the online objection form.
    pub schools: Vec<(SchoolId, String)>,
}

impl PublicNotice {
    /// "关于…的公示": the stored title ("…名单公示") in the form a 公示 carries.
    pub fn heading(&self) -> String {
        junheng_core::text::notice::heading(&self.row.title)
    }
}

/// Working days from `from` to `last` inclusive (0 when `from` is after `last`).
pub fn working_days_left(def: &CampaignDefinition, from: NaiveDate, last: NaiveDate) -> u32 {
    let mut n = 0;
    let mut d = from;
    while d <= last {
        if def.calendar().is_working_day(d).unwrap_or(true) {
            n += 1;
        }
        d = d.succ_opt().expect("dates in range");
    }
    n
}

async fn campaign_by_code(
    state: &AppState,
    conn: &mut PgConnection,
    code: &str,
) -> AppResult<Loaded> {
    let row: CampaignRow = campaigns::list(conn)
        .await?
        .into_iter()
        .find(|c| c.code == code)
        .ok_or_else(|| AppError::NotFound(format!("no campaign `{code}`")))?;
    state.load(conn, row.campaign_id(), Lock::None).await
}

/// The campaigns, newest first.
pub async fn campaigns(state: &AppState) -> AppResult<Vec<PublicCampaign>> {
    policy::anonymous(Rpc::ListCampaigns)?;
    let mut conn = state.pool.acquire().await?;
    let mut out = Vec::new();
    for row in campaigns::list(&mut conn).await? {
        let notices = junheng_store::notices::list_notices(&mut conn, row.id)
            .await?
            .len();
        let def = state.definition(&row)?;
        out.push(PublicCampaign {
            id: row.campaign_id(),
            code: row.code,
            county: row.county,
            year: row.year,
            def,
            notices,
        });
    }
    Ok(out)
}

async fn build(
    conn: &mut PgConnection,
    camp: &Loaded,
    row: NoticeRow,
    seq: usize,
    now: DateTime<Utc>,
) -> AppResult<PublicNotice> {
    let see = policy::anonymous(Rpc::GetNotice)?;
    let def = camp.def.clone();
    let tz = def.tz();
    let view = policy::notice(see, notices::view(conn, row).await?);
    let published = time::local_date(view.row.starts_at, tz);
    let table = match view.row.kind {
        NoticeKind::Results => {
            let all = all_schools(conn, camp.id()).await?;
            let mut t = super::documents::results_notice(conn, camp, &all)
                .await?
                .to_table();
            t.headers.insert(0, "序号".into());
            for (i, r) in t.rows.iter_mut().enumerate() {
                r.insert(0, sheets::Cell::Int(i as i64 + 1));
            }
            t
        }
        _ => {
            let all = all_schools(conn, camp.id()).await?;
            let by_id: HashMap<SchoolId, _> = all.iter().map(|s| (s.id, s)).collect();
            let rows = view
                .schools
                .iter()
                .filter_map(|id| by_id.get(id))
                .map(|s| sheets::SchoolLine {
                    code: s.code.clone(),
                    name: s.name.clone(),
                    level: level(&s.level),
                    town: s.town.clone(),
                    principal: s.principal.clone(),
                })
                .collect();
            sheets::SeedListNotice {
                // The page words its own title, basis and period; it reads the rows.
                title: view.row.title.clone(),
                basis: String::new(),
                period: String::new(),
                rows,
                footer: Vec::new(),
            }
            .to_table()
        }
    };
    let names: HashMap<SchoolId, String> = all_schools(conn, camp.id())
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    let schools = view
        .schools
        .iter()
        .filter_map(|id| names.get(id).map(|n| (*id, n.clone())))
        .collect();
    let ended = view.row.closed_at.is_some() || now >= view.row.ends_at;
    let period = if ended {
        Period::Ended
    } else {
        let today = time::local_date(now, tz).max(published);
        Period::Open {
            working_days_left: working_days_left(&def, today, view.row.last_day),
        }
    };
    let outcome = ended.then(|| {
        let mut o = Outcome::default();
        for x in &view.objections {
            match x.status {
                ObjectionStatus::Upheld => o.upheld += 1,
                ObjectionStatus::Dismissed => o.dismissed += 1,
                ObjectionStatus::Open => o.open += 1,
            }
        }
        o
    });
    let index_number = if def.publication.index_prefix.is_empty() {
        String::new()
    } else {
        format!(
            "{}-{}-{:03}",
            def.publication.index_prefix,
            published.format("%Y"),
            seq
        )
    };
    Ok(PublicNotice {
        row: view.row,
        campaign_code: camp.row.code.clone(),
        def,
        index_number,
        published,
        period,
        table,
        outcome,
        now,
        schools,
    })
}

/// A campaign's published notices, newest first.
pub async fn notices(
    state: &AppState,
    code: &str,
) -> AppResult<(PublicCampaign, Vec<PublicNotice>)> {
    policy::anonymous(Rpc::ListNotices)?;
    let mut conn = state.pool.acquire().await?;
    let now = state.now(&mut conn).await?;
    let camp = campaign_by_code(state, &mut conn, code).await?;
    let rows = junheng_store::notices::list_notices(&mut conn, camp.id()).await?;
    let mut out = Vec::new();
    for (i, row) in rows.into_iter().enumerate() {
        out.push(build(&mut conn, &camp, row, i + 1, now).await?);
    }
    out.sort_by_key(|n| std::cmp::Reverse(n.row.starts_at));
    let pc = PublicCampaign {
        id: camp.id(),
        code: camp.row.code.clone(),
        county: camp.row.county.clone(),
        year: camp.row.year,
        def: camp.def.clone(),
        notices: out.len(),
    };
    Ok((pc, out))
}

/// One published notice of the campaign `code`; a notice of another campaign is `NOT_FOUND`.
pub async fn notice(state: &AppState, code: &str, id: NoticeId) -> AppResult<PublicNotice> {
    policy::anonymous(Rpc::GetNotice)?;
    let mut conn = state.pool.acquire().await?;
    let now = state.now(&mut conn).await?;
    let camp = campaign_by_code(state, &mut conn, code).await?;
    let rows = junheng_store::notices::list_notices(&mut conn, camp.id()).await?;
    let (seq, row) = rows
        .into_iter()
        .enumerate()
        .find(|(_, n)| n.notice_id() == id)
        .ok_or_else(|| AppError::NotFound(format!("no published notice {id}")))?;
    build(&mut conn, &camp, row, seq + 1, now).await
}

/// An objection filed on the public notice page (`[notice] online_objections`): the reader's
/// real name and contact, the school and the grounds.
pub struct OnlineObjection {
    pub school: SchoolId,
    pub name: String,
    pub contact: String,
    pub grounds: String,
    pub evidence: String,
    /// The form's one-time token: a form sent twice files one objection.
    pub form_key: String,
}

/// Files an online objection through the same app call as gRPC's FileObjection, in one
/// transaction, audited as the public filer: actor `public:<digest of the reader's address>`
/// (no personal data in the actor), acting for the office that receives objections (the
/// notice names it) and scoped to this campaign only.
pub async fn file_online_objection(
    state: &AppState,
    code: &str,
    notice: NoticeId,
    filer: &str,
    o: OnlineObjection,
) -> AppResult<()> {
    policy::anonymous(Rpc::GetNotice)?;
    let mut conn = state.pool.acquire().await?;
    let camp = campaign_by_code(state, &mut conn, code).await?;
    if !camp.def.online_objections {
        return Err(AppError::NotFound(
            "online objections are off for this campaign".into(),
        ));
    }
    let n = junheng_store::notices::get_notice(&mut conn, notice).await?;
    if n.campaign_id != camp.id() {
        return Err(AppError::NotFound(format!("no published notice {notice}")));
    }
    drop(conn);
    let call = crate::state::Call {
        actor: junheng_core::Actor {
            id: format!("public:{filer}"),
            role: junheng_core::Role::Office,
            school: None,
        },
        scope: junheng_core::Scope::Campaigns(vec![camp.id().as_uuid()]),
        token_id: None,
        request_id: Uuid::new_v4().to_string(),
    };
    let req = junheng_proto::v1::FileObjectionRequest {
        idempotency_key: o.form_key.clone(),
        notice_id: notice.to_string(),
        school_id: o.school.to_string(),
        objector_name: o.name.clone(),
        objector_contact: o.contact.clone(),
        grounds: o.grounds.clone(),
        evidence: o.evidence.clone(),
    };
    let mut w = match state
        .begin::<_, junheng_proto::v1::Objection>(&call, "FileObjection", &o.form_key, &req)
        .await?
    {
        crate::state::Begun::Replay(_) => return Ok(()),
        crate::state::Begun::Fresh(w) => w,
    };
    let cmd = super::seed::FileObjection {
        notice,
        school: o.school,
        objector_name: o.name,
        objector_contact: o.contact,
        grounds: o.grounds,
        evidence: o.evidence,
    };
    let row = super::seed::file_objection(state, &mut w, &call, cmd).await?;
    // What the idempotency record keeps (as gRPC's reply would): the objection's id only.
    let resp = junheng_proto::v1::Objection {
        id: row.id.to_string(),
        ..Default::default()
    };
    w.commit(&resp).await?;
    Ok(())
}
