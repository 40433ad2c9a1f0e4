//! SpreadsheetService: school import from CSV/XLSX and the documents the bureau posts or
//! files, as XLSX, CSV or Markdown (built by `junheng-sheets`).

use std::collections::{BTreeMap, HashMap};

use junheng_core::awards::AwardClass;
use junheng_core::notice::NoticeKind;
use junheng_core::{CaseState, Role, time};
use junheng_proto::v1 as pb;
use junheng_proto::v1::spreadsheet_service_server::SpreadsheetService;
use junheng_sheets as sheets;
use junheng_store::campaigns::Lock;
use junheng_store::schools::{NewSchool, SchoolRow};
use junheng_store::{PgConnection, phases, seed};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Shared, begin, reply};
use crate::app::all_schools;
use crate::convert::{Violations, school_to_pb};
use crate::error::{AppError, AppResult};
use crate::state::Loaded;

pub struct SpreadsheetApi(pub Shared);

/// 20 MiB: far above a province's school list.
const MAX_IMPORT: usize = 20 << 20;

fn level(s: &str) -> sheets::Level {
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

fn import_error(e: sheets::ImportError) -> AppError {
    match e {
        sheets::ImportError::Rows(rows) => AppError::Invalid(
            rows.into_iter()
                .map(|r| (format!("rows[{}].{}", r.row, r.column), r.reason))
                .collect(),
        ),
        other => AppError::invalid("content", other.to_string()),
    }
}

async fn seed_notice(
    conn: &mut PgConnection,
    camp: &Loaded,
    all: &[SchoolRow],
) -> AppResult<sheets::SeedListNotice> {
    let notices: Vec<_> = seed::list_notices(conn, camp.id())
        .await?
        .into_iter()
        .filter(|n| n.kind != NoticeKind::Results.code())
        .collect();
    let first = notices.first().ok_or_else(|| {
        AppError::FailedPrecondition("no seed list notice has been published yet".into())
    })?;
    let tz = camp.def.tz();
    let by_id: HashMap<Uuid, &SchoolRow> = all.iter().map(|s| (s.id, s)).collect();
    let mut rows = Vec::new();
    for n in &notices {
        for id in seed::notice_schools(conn, n.id).await? {
            if let Some(s) = by_id
                .get(&id)
                .filter(|s| s.state != CaseState::Removed.code())
            {
                rows.push(line(s));
            }
        }
    }
    Ok(sheets::SeedListNotice {
        title: first.title.clone(),
        published: time::local_date(first.starts_at, tz),
        ends: notices
            .iter()
            .map(|n| n.last_day)
            .max()
            .unwrap_or(first.last_day),
        rows,
    })
}

async fn results_notice(
    conn: &mut PgConnection,
    camp: &Loaded,
) -> AppResult<sheets::ResultsNotice> {
    let id = camp.row.results_notice_id.ok_or_else(|| {
        AppError::FailedPrecondition("the results notice has not been published yet".into())
    })?;
    let n = seed::get_notice(conn, id).await?;
    let names: BTreeMap<String, String> = camp
        .def
        .indicators
        .iter()
        .map(|i| (i.code.clone(), i.name.clone()))
        .collect();
    let standings = crate::app::acceptance::standings(conn, camp).await?;
    let stored: HashMap<Uuid, junheng_core::scoring::AcceptanceResult> =
        phases::results(conn, camp.id())
            .await?
            .into_iter()
            .filter_map(|(s, r, _)| Some((s, serde_json::from_value(r).ok()?)))
            .collect();
    let mut rows: Vec<sheets::ResultLine> = standings
        .iter()
        .filter_map(|s| {
            let r = stored.get(&s.school.id)?;
            Some(sheets::ResultLine {
                school: s.school.name.clone(),
                mentor_school: s.mentor.as_ref().map(|m| m.1.clone()).unwrap_or_default(),
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
    rows.sort_by(|a, b| b.final_score.total_cmp(&a.final_score));
    Ok(sheets::ResultsNotice {
        title: n.title,
        published: time::local_date(n.starts_at, camp.def.tz()),
        ends: n.last_day,
        indicators: camp.def.indicators.iter().map(|i| i.name.clone()).collect(),
        rows,
    })
}

#[tonic::async_trait]
impl SpreadsheetService for SpreadsheetApi {
    async fn import_schools(
        &self,
        req: Request<pb::ImportSchoolsRequest>,
    ) -> Result<Response<pb::RegisterSchoolsResponse>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(&call, async {
            call.require(&[Role::Office], "import schools")?;
            let mut v = Violations::default();
            let campaign = v.uuid("campaign_id", &req.campaign_id);
            if req.content.is_empty() {
                v.add("content", "the file is empty");
            } else if req.content.len() > MAX_IMPORT {
                v.add("content", format!("at most {MAX_IMPORT} bytes"));
            }
            let lower = req.filename.to_ascii_lowercase();
            let format = if lower.ends_with(".xlsx") {
                sheets::Format::Xlsx
            } else if lower.ends_with(".csv") {
                sheets::Format::Csv
            } else if lower.ends_with(".xls") {
                v.add("filename", "legacy .xls is not supported; save as .xlsx or CSV UTF-8");
                sheets::Format::Csv
            } else {
                sheets::Format::sniff(&req.content)
            };
            v.finish()?;
            let records = sheets::import_schools(&req.content, format).map_err(import_error)?;
            let rows: Vec<NewSchool> = records
                .into_iter()
                .map(|r| {
                    let contact = serde_json::json!([{ "name": r.contact_name.unwrap_or_default(), "email": r.email.unwrap_or_default(), "mobile": r.mobile.unwrap_or_default(), "robots": [] }]);
                    let has_contact = contact[0]["email"] != "" || contact[0]["mobile"] != "";
                    NewSchool {
                        code: r.code,
                        name: r.name,
                        level: r.level.code().into(),
                        town: r.town,
                        principal: r.principal,
                        contacts: if has_contact { contact } else { serde_json::json!([]) },
                    }
                })
                .collect();
            let mut w = begin!(self.0, call, "ImportSchools", req);
            let inserted = super::school::register(&self.0, &mut w, &call, campaign, &rows).await?;
            let resp = pb::RegisterSchoolsResponse { schools: inserted.iter().map(school_to_pb).collect() };
            w.commit(&resp).await?;
            Ok(resp)
        }
        .await)
    }

    async fn export(
        &self,
        req: Request<pb::ExportRequest>,
    ) -> Result<Response<pb::ExportedFile>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let campaign = v.uuid("campaign_id", &req.campaign_id);
                let document = pb::Document::try_from(req.document)
                    .ok()
                    .filter(|d| *d != pb::Document::Unspecified);
                if document.is_none() {
                    v.add(
                        "document",
                        "must be one of DOCUMENT_SEED_NOTICE … DOCUMENT_VETO_LIST",
                    );
                }
                let format = pb::FileFormat::try_from(req.format)
                    .ok()
                    .filter(|f| *f != pb::FileFormat::Unspecified);
                match format {
                    None => v.add(
                        "format",
                        "must be FILE_FORMAT_XLSX, FILE_FORMAT_CSV or FILE_FORMAT_MARKDOWN",
                    ),
                    Some(pb::FileFormat::Markdown)
                        if document != Some(pb::Document::PracticeCollection) =>
                    {
                        v.add(
                            "format",
                            "Markdown is offered for the practice collection only",
                        )
                    }
                    _ => {}
                }
                v.finish()?;
                let (document, format) = (document.expect("checked"), format.expect("checked"));
                let mut conn = self.0.pool.acquire().await?;
                let camp = self.0.load(&mut conn, campaign, Lock::None).await?;
                let all = all_schools(&mut conn, campaign).await?;
                let prefix = format!("{}{}", camp.def.county, camp.def.year);
                let table = match document {
                    pb::Document::SeedNotice => {
                        seed_notice(&mut conn, &camp, &all).await?.to_table()
                    }
                    pb::Document::MentorList => {
                        if camp.row.mentors_confirmed_at.is_none() {
                            return Err(AppError::FailedPrecondition(
                                "the mentor list is not confirmed yet".into(),
                            ));
                        }
                        let rows = crate::app::mentor::proposals(&mut conn, &camp)
                            .await?
                            .into_iter()
                            .filter(|(_, verdict)| verdict.mentor)
                            .map(|(s, verdict)| sheets::MentorLine {
                                school: line(&s),
                                rule_explanation: verdict.explanation,
                            })
                            .collect();
                        sheets::MentorList {
                            title: format!("{prefix}年导师型学校名单"),
                            rows,
                        }
                        .to_table()
                    }
                    pb::Document::PracticeCollection => {
                        let doc = crate::app::mentor::practice_collection(&mut conn, &camp)
                            .await?
                            .doc;
                        if format == pb::FileFormat::Markdown {
                            let content = sheets::practice_collection_markdown(&doc).into_bytes();
                            return Ok(pb::ExportedFile {
                                filename: format!("{prefix}-practices.md"),
                                content_type: "text/markdown; charset=utf-8".into(),
                                content,
                            });
                        }
                        doc.to_table()
                    }
                    pb::Document::ResultsNotice => {
                        results_notice(&mut conn, &camp).await?.to_table()
                    }
                    pb::Document::AwardList | pb::Document::VetoList => {
                        if camp.row.awards_confirmed_at.is_none() {
                            return Err(AppError::FailedPrecondition(
                                "the award list is not confirmed yet".into(),
                            ));
                        }
                        let by_id: HashMap<Uuid, &SchoolRow> =
                            all.iter().map(|s| (s.id, s)).collect();
                        let awards =
                            phases::list_awards(&mut conn, Some(campaign), None, None, None, None)
                                .await?;
                        let basis = |a: &phases::AwardListing| {
                            if a.override_reason.is_empty() {
                                a.reason.clone()
                            } else {
                                format!("{}（督导室调整：{}）", a.reason, a.override_reason)
                            }
                        };
                        if document == pb::Document::VetoList {
                            let rows = awards
                                .iter()
                                .filter(|a| a.class == AwardClass::Veto.code())
                                .map(|a| sheets::VetoLine {
                                    school: a.school_name.clone(),
                                    principal: a.principal.clone(),
                                    reason: basis(a),
                                })
                                .collect();
                            sheets::VetoList {
                                title: format!("{prefix}年一票否决名单"),
                                rows,
                            }
                            .to_table()
                        } else {
                            let rows = awards
                                .iter()
                                .filter_map(|a| {
                                    let award = match AwardClass::from_code(&a.class)? {
                                        AwardClass::Contribution => sheets::Award::Contribution,
                                        AwardClass::Model => sheets::Award::Model,
                                        AwardClass::Progress => sheets::Award::Progress,
                                        AwardClass::Compliance => sheets::Award::Compliance,
                                        AwardClass::Veto => return None,
                                    };
                                    let s = by_id.get(&a.school_id)?;
                                    Some(sheets::AwardLine {
                                        school: a.school_name.clone(),
                                        level: level(&s.level),
                                        town: s.town.clone(),
                                        principal: a.principal.clone(),
                                        award,
                                        basis: basis(a),
                                    })
                                })
                                .collect();
                            sheets::AwardList {
                                title: format!(
                                    "{prefix}年义务教育学校优质均衡发展提升行动评先树优名单"
                                ),
                                rows,
                            }
                            .to_table()
                        }
                    }
                    pb::Document::Unspecified => unreachable!("checked"),
                };
                let slug = match document {
                    pb::Document::SeedNotice => "seed-notice",
                    pb::Document::MentorList => "mentor-list",
                    pb::Document::PracticeCollection => "practices",
                    pb::Document::ResultsNotice => "results-notice",
                    pb::Document::AwardList => "awards",
                    pb::Document::VetoList => "vetoes",
                    pb::Document::Unspecified => "document",
                };
                Ok(match format {
                    pb::FileFormat::Csv => pb::ExportedFile {
                        filename: format!("{}-{slug}.csv", camp.row.code),
                        content_type: "text/csv; charset=utf-8".into(),
                        content: table.to_csv(),
                    },
                    _ => pb::ExportedFile {
                        filename: format!("{}-{slug}.xlsx", camp.row.code),
                        content_type:
                            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                                .into(),
                        content: table.to_xlsx(),
                    },
                })
            }
            .await,
        )
    }
}
