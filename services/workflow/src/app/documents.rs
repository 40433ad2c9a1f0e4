//! The documents the bureau posts or files (the seed list notice, the mentor list, the practice
//! collection, the results notice, the award and veto lists), built by `junheng-sheets` from
//! the read models. A document exists once what it lists is published or confirmed.

use junheng_core::{CampaignId, NoticeId, SchoolId};
use std::collections::{BTreeMap, HashMap};

use junheng_core::awards::AwardClass;
use junheng_core::notice::NoticeKind;
use junheng_core::text::notice as notice_text;
use junheng_core::{CaseState, RuleError, time};
use junheng_sheets as sheets;
use junheng_store::actors::{self, ConsequenceFilter};
use junheng_store::campaigns::Lock;
use junheng_store::schools::SchoolRow;
use junheng_store::{PgConnection, audit};
use junheng_store::{groups, notices, scores};

use super::all_schools;
use crate::error::AppResult;
use crate::state::{AppState, Loaded};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    SeedNotice,
    MentorList,
    PracticeCollection,
    ResultsNotice,
    AwardList,
    VetoList,
    /// 结果运用: the consequences of the confirmed awards.
    Consequences,
}

impl Document {
    /// The file name's slug.
    pub fn slug(self) -> &'static str {
        match self {
            Document::SeedNotice => "seed-notice",
            Document::MentorList => "mentor-list",
            Document::PracticeCollection => "practices",
            Document::ResultsNotice => "results-notice",
            Document::AwardList => "awards",
            Document::VetoList => "vetoes",
            Document::Consequences => "consequences",
        }
    }
}

pub enum Content {
    Table(sheets::Table),
    /// Offered as Markdown too.
    Practices(sheets::PracticeCollection),
}

pub struct Export {
    /// The campaign's code.
    pub code: String,
    /// County and year, as file names start.
    pub prefix: String,
    pub content: Content,
}

pub fn level(s: &str) -> sheets::Level {
    sheets::Level::parse(s).unwrap_or(sheets::Level::Primary)
}

fn line(s: &SchoolRow) -> sheets::SchoolLine {
    sheets::SchoolLine {
        code: s.code.clone(),
        name: s.name.clone(),
        level: level(&s.level),
        town: s.town.clone(),
        principal: s.principal.clone(),
    }
}

async fn seed_notice(
    conn: &mut PgConnection,
    camp: &Loaded,
    all: &[SchoolRow],
) -> AppResult<sheets::SeedListNotice> {
    let notices: Vec<_> = notices::list_notices(conn, camp.id())
        .await?
        .into_iter()
        .filter(|n| n.kind != NoticeKind::Results)
        .collect();
    let first = notices.first().ok_or(RuleError::SeedNoticeNotPublished)?;
    let tz = camp.def.tz();
    let by_id: HashMap<SchoolId, &SchoolRow> = all.iter().map(|s| (s.id, s)).collect();
    let mut rows = Vec::new();
    for n in &notices {
        for id in notices::notice_school_ids(conn, n.notice_id()).await? {
            if let Some(s) = by_id.get(&id).filter(|s| s.state != CaseState::Removed) {
                rows.push(line(s));
            }
        }
    }
    let ends = notices
        .iter()
        .map(|n| n.last_day)
        .max()
        .unwrap_or(first.last_day);
    Ok(sheets::SeedListNotice {
        title: notice_text::heading(&first.title),
        basis: notice_text::basis(&camp.def, first.kind),
        period: notice_text::period(&camp.def, time::local_date(first.starts_at, tz), ends),
        rows,
        footer: notice_text::footer(&camp.def, time::local_date(first.starts_at, tz), ends),
    })
}

/// The confirmed mentor list: every school the office confirmed as a mentor (overrides
/// included), with the basis recorded at confirmation. Read from the `mentor.confirmed`
/// decisions, not from the schools' states, which the awards replace.
async fn mentor_list(
    conn: &mut PgConnection,
    camp: &Loaded,
    all: &[SchoolRow],
) -> AppResult<sheets::MentorList> {
    if camp.row.mentors_confirmed_at.is_none() {
        return Err(RuleError::MentorsNotConfirmed.into());
    }
    let confirmed: HashMap<SchoolId, String> =
        audit::school_decisions(conn, camp.id(), "mentor.confirmed")
            .await?
            .into_iter()
            .filter(|(_, after, _)| after["state"] == CaseState::Mentor.code())
            .map(|(id, _, reason)| (id, reason.unwrap_or_default()))
            .collect();
    // `all` is in the schools' code order, as every list is.
    let rows = all
        .iter()
        .filter_map(|s| {
            Some(sheets::MentorLine {
                school: line(s),
                rule_explanation: confirmed.get(&s.id)?.clone(),
            })
        })
        .collect();
    Ok(sheets::MentorList {
        title: format!("{}{}年导师型学校名单", camp.def.county, camp.def.year),
        rows,
    })
}

/// The results notice: every school with a stored result (the results the notice published,
/// recomputed where disputed), read from the results and the pairing, not from the schools'
/// states, which the awards replace.
pub(crate) async fn results_notice(
    conn: &mut PgConnection,
    camp: &Loaded,
    all: &[SchoolRow],
) -> AppResult<sheets::ResultsNotice> {
    let id = camp
        .row
        .results_notice_id
        .ok_or(RuleError::ResultsNoticeNotPublished)?;
    let n = notices::get_notice(conn, NoticeId::new(id)).await?;
    let names: BTreeMap<String, String> = camp
        .def
        .indicators
        .iter()
        .map(|i| (i.code.clone(), i.name.clone()))
        .collect();
    let by_id: HashMap<SchoolId, &SchoolRow> = all.iter().map(|s| (s.id, s)).collect();
    let mentor_of: HashMap<SchoolId, SchoolId> = groups::pairing(conn, camp.id())
        .await?
        .into_iter()
        .map(|(m, p)| (p, m))
        .collect();
    let mut rows: Vec<sheets::ResultLine> = scores::results(conn, camp.id())
        .await?
        .into_iter()
        .filter_map(|(school, r, _)| {
            let r = r?;
            let s = by_id.get(&school)?;
            Some(sheets::ResultLine {
                school: s.name.clone(),
                mentor_school: mentor_of
                    .get(&school)
                    .and_then(|m| by_id.get(m))
                    .map(|m| m.name.clone())
                    .unwrap_or_default(),
                report_score: r.report,
                onsite_score: r.onsite_mean,
                final_score: r.final_score,
                passes: r
                    .passes
                    .iter()
                    .map(|(k, v)| (names.get(k).cloned().unwrap_or_else(|| k.clone()), *v))
                    .collect(),
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        b.final_score
            .total_cmp(&a.final_score)
            .then_with(|| a.school.cmp(&b.school))
    });
    Ok(sheets::ResultsNotice {
        title: notice_text::heading(&n.title),
        basis: notice_text::basis(&camp.def, NoticeKind::Results),
        period: notice_text::period(
            &camp.def,
            time::local_date(n.starts_at, camp.def.tz()),
            n.last_day,
        ),
        indicators: camp.def.indicators.iter().map(|i| i.name.clone()).collect(),
        rows,
        footer: notice_text::footer(
            &camp.def,
            time::local_date(n.starts_at, camp.def.tz()),
            n.last_day,
        ),
    })
}

async fn award_lists(
    conn: &mut PgConnection,
    camp: &Loaded,
    all: &[SchoolRow],
    document: Document,
    prefix: &str,
) -> AppResult<sheets::Table> {
    if camp.row.awards_confirmed_at.is_none() {
        return Err(RuleError::AwardsNotConfirmed.into());
    }
    let by_id: HashMap<SchoolId, &SchoolRow> = all.iter().map(|s| (s.id, s)).collect();
    let awards =
        junheng_store::awards::list_awards(conn, Some(camp.id()), None, None, None, None).await?;
    let basis = |a: &junheng_store::awards::AwardListing| {
        if a.override_reason.is_empty() {
            a.reason.clone()
        } else {
            format!("{}（督导室调整：{}）", a.reason, a.override_reason)
        }
    };
    if document == Document::VetoList {
        let rows = awards
            .iter()
            .filter(|a| a.class == AwardClass::Veto.code())
            .map(|a| sheets::VetoLine {
                school: a.school_name.clone(),
                principal: a.principal.clone(),
                reason: basis(a),
            })
            .collect();
        return Ok(sheets::VetoList {
            title: format!("{prefix}年一票否决名单"),
            rows,
        }
        .to_table());
    }
    let rows = awards
        .iter()
        .filter_map(|a| {
            let t = &camp.def.publication.awards;
            let (award, title) = match AwardClass::from_code(&a.class)? {
                AwardClass::Contribution => (sheets::Award::Contribution, &t.contribution),
                AwardClass::Model => (sheets::Award::Model, &t.model),
                AwardClass::Progress => (sheets::Award::Progress, &t.progress),
                AwardClass::Compliance => (sheets::Award::Compliance, &t.compliance),
                AwardClass::Veto | AwardClass::Withheld => return None,
            };
            let s = by_id.get(&a.school_id)?;
            Some(sheets::AwardLine {
                school: a.school_name.clone(),
                level: level(&s.level),
                town: s.town.clone(),
                principal: a.principal.clone(),
                award,
                award_title: title.clone(),
                basis: basis(a),
            })
        })
        .collect();
    Ok(sheets::AwardList {
        title: format!("{prefix}年义务教育学校优质均衡发展提升行动评先树优名单"),
        rows,
    }
    .to_table())
}

/// 结果运用: every consequence of the campaign's confirmed awards, in recording order.
async fn consequence_list(
    conn: &mut PgConnection,
    camp: &Loaded,
    prefix: &str,
) -> AppResult<sheets::ConsequenceList> {
    if camp.row.awards_confirmed_at.is_none() {
        return Err(RuleError::AwardsNotConfirmed.into());
    }
    let filter = ConsequenceFilter {
        campaign: Some(camp.id()),
        ..Default::default()
    };
    let mut rows = Vec::new();
    let mut after = None;
    loop {
        let page = actors::list_consequences(conn, &filter, after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        let full = page.len() == 1000;
        for c in page {
            let class = AwardClass::from_code(&c.class).unwrap_or(AwardClass::Veto);
            rows.push(sheets::ConsequenceLine {
                school: c.school_name,
                school_code: c.school_code,
                principal: c.principal_name.unwrap_or_default(),
                principal_id: c.principal_id.map(|p| p.to_string()).unwrap_or_default(),
                award: junheng_core::awards::title(&camp.def, class),
                subject: match c.subject.as_str() {
                    "principal" => "校长".into(),
                    _ => "学校".into(),
                },
                label: c.label,
                kind: c.kind,
                valid_until: c
                    .valid_until
                    .map(|d| {
                        use chrono::Datelike;
                        format!("{}年{}月{}日", d.year(), d.month(), d.day())
                    })
                    .unwrap_or_default(),
            });
        }
        if !full {
            break;
        }
    }
    Ok(sheets::ConsequenceList {
        title: format!("{prefix}年义务教育优质均衡创建结果运用清单"),
        rows,
    })
}

/// One document of a campaign.
pub async fn export(
    state: &AppState,
    campaign: CampaignId,
    document: Document,
) -> AppResult<Export> {
    let mut conn = state.pool.acquire().await?;
    let camp = state.load(&mut conn, campaign, Lock::None).await?;
    let all = all_schools(&mut conn, campaign).await?;
    let prefix = format!("{}{}", camp.def.county, camp.def.year);
    let content = match document {
        Document::SeedNotice => {
            Content::Table(seed_notice(&mut conn, &camp, &all).await?.to_table())
        }
        Document::MentorList => {
            Content::Table(mentor_list(&mut conn, &camp, &all).await?.to_table())
        }
        Document::PracticeCollection => Content::Practices(
            super::mentor::practice_collection(&mut conn, &camp)
                .await?
                .doc,
        ),
        Document::ResultsNotice => {
            Content::Table(results_notice(&mut conn, &camp, &all).await?.to_table())
        }
        Document::AwardList | Document::VetoList => {
            Content::Table(award_lists(&mut conn, &camp, &all, document, &prefix).await?)
        }
        Document::Consequences => Content::Table(
            consequence_list(&mut conn, &camp, &prefix)
                .await?
                .to_table(),
        ),
    };
    Ok(Export {
        code: camp.row.code.clone(),
        prefix,
        content,
    })
}
