//! SpreadsheetService: school import from CSV/XLSX and the documents the bureau posts or
//! files, as XLSX, CSV or Markdown (built by `junheng-sheets` in `app::documents`). Parses,
//! calls the app, renders the file.

use junheng_core::CampaignId;
use junheng_core::Role;
use junheng_proto::v1 as pb;
use junheng_proto::v1::spreadsheet_service_server::SpreadsheetService;
use junheng_sheets as sheets;
use junheng_store::schools::NewSchool;
use tonic::{Request, Response, Status};

use super::{Shared, begin, reply};
use crate::app::documents::{self, Content, Document};
use crate::app::policy::{self, Rpc};
use junheng_edge::violations::{control_char, echo};

use crate::convert::{Violations, school_to_pb};
use crate::error::AppError;

pub struct SpreadsheetApi(pub Shared);

/// 20 MiB: far above a province's school list. The service's decoding limit
/// ([`MAX_IMPORT_MESSAGE`]) leaves room for the other fields, so a file up to this size reaches
/// the handler and one above it is refused naming `content` and this limit.
pub const MAX_IMPORT: usize = 20 << 20;
/// SpreadsheetService's `max_decoding_message_size`: [`MAX_IMPORT`] plus 1 MiB; a message
/// above it is RESOURCE_EXHAUSTED from tonic before any handler runs.
pub const MAX_IMPORT_MESSAGE: usize = MAX_IMPORT + (1 << 20);

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

/// What the file's cells must satisfy beyond the sheet parser's checks, as for RegisterSchools:
/// no control characters, and e-mail addresses the mailer accepts. Reported on `content`, naming
/// the school code and the data row (1 = the first row under the header).
fn check_records(records: &[sheets::SchoolRecord]) -> Result<(), AppError> {
    let mut v = Violations::default();
    for (i, r) in records.iter().enumerate() {
        let at = format!("school {} (data row {})", echo(&r.code), i + 1);
        let cells = [
            ("name", Some(&r.name)),
            ("town", Some(&r.town)),
            ("principal", Some(&r.principal)),
            ("contact name", r.contact_name.as_ref()),
            ("mobile", r.mobile.as_ref()),
        ];
        for (what, cell) in cells {
            if let Some(c) = cell.and_then(|c| control_char(c)) {
                v.add(
                    "content",
                    format!(
                        "{at}: the {what} contains the control character {}",
                        c.escape_unicode()
                    ),
                );
            }
        }
        if let Some(email) = &r.email {
            let mut one = junheng_edge::violations::Violations::default();
            one.email("content", email);
            for (_, reason) in one.0 {
                v.add("content", format!("{at}: email {reason}"));
            }
        }
    }
    v.finish()?;
    Ok(())
}

#[tonic::async_trait]
impl SpreadsheetService for SpreadsheetApi {
    async fn import_schools(
        &self,
        req: Request<pb::ImportSchoolsRequest>,
    ) -> Result<Response<pb::RegisterSchoolsResponse>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                call.require(&[Role::Office], "import schools")?;
                let mut v = Violations::default();
                v.idempotency_key("idempotency_key", &req.idempotency_key);
                let campaign = v.id::<CampaignId>("campaign_id", &req.campaign_id);
                if req.content.is_empty() {
                    v.add("content", "the file is empty");
                } else if req.content.len() > MAX_IMPORT {
                    v.add("content", format!("at most {MAX_IMPORT} bytes"));
                }
                let lower = v
                    .optional_text("filename", &req.filename, 255)
                    .to_ascii_lowercase();
                let format = if lower.ends_with(".xlsx") {
                    sheets::Format::Xlsx
                } else if lower.ends_with(".csv") {
                    sheets::Format::Csv
                } else if lower.ends_with(".xls") {
                    v.add(
                        "filename",
                        "legacy .xls is not supported; save as .xlsx or CSV UTF-8",
                    );
                    sheets::Format::Csv
                } else {
                    sheets::Format::sniff(&req.content)
                };
                v.finish()?;
                // Parsing is CPU work on untrusted bytes: off the async runtime.
                let content = req.content.clone();
                let records =
                    tokio::task::spawn_blocking(move || sheets::import_schools(&content, format))
                        .await
                        .map_err(AppError::internal)?
                        .map_err(import_error)?;
                check_records(&records)?;
                // The same checks as RegisterSchools, field by field (`schools[i]` is the i-th school
                // of the file), and its batch limit.
                let mut v = Violations::default();
                if records.len() > crate::convert::MAX_BATCH {
                    v.add(
                        "content",
                        format!("at most {} schools per import", crate::convert::MAX_BATCH),
                    );
                }
                let rows: Vec<NewSchool> = records
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, r)| {
                        let has_contact = r.email.is_some() || r.mobile.is_some();
                        let school = pb::NewSchool {
                            code: r.code,
                            name: r.name,
                            level: crate::convert::level_to_pb(r.level.code()) as i32,
                            town: r.town,
                            principal: r.principal,
                            contacts: if has_contact {
                                vec![pb::Contact {
                                    name: r.contact_name.unwrap_or_default(),
                                    email: r.email.unwrap_or_default(),
                                    mobile: r.mobile.unwrap_or_default(),
                                    ..Default::default()
                                }]
                            } else {
                                Vec::new()
                            },
                        };
                        crate::convert::check_school(&mut v, i, &school)
                    })
                    .collect();
                v.finish()?;
                let mut w = begin!(self.0, call, "ImportSchools", req);
                let inserted =
                    crate::app::schools::register(&self.0, &mut w, &call, campaign, &rows).await?;
                let resp = pb::RegisterSchoolsResponse {
                    schools: inserted.iter().map(school_to_pb).collect(),
                };
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
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
                let campaign = v.id::<CampaignId>("campaign_id", &req.campaign_id);
                let document = pb::Document::try_from(req.document)
                    .ok()
                    .filter(|d| *d != pb::Document::Unspecified);
                if document.is_none() {
                    v.add(
                        "document",
                        "must be one of DOCUMENT_SEED_NOTICE … DOCUMENT_CONSEQUENCES",
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
                let document = match document {
                    pb::Document::SeedNotice => Document::SeedNotice,
                    pb::Document::MentorList => Document::MentorList,
                    pb::Document::PracticeCollection => Document::PracticeCollection,
                    pb::Document::ResultsNotice => Document::ResultsNotice,
                    pb::Document::AwardList => Document::AwardList,
                    pb::Document::VetoList => Document::VetoList,
                    pb::Document::Consequences => Document::Consequences,
                    pb::Document::Unspecified => unreachable!("checked"),
                };
                let see = policy::read(&call, Rpc::Export, Some(campaign))?;
                if document == Document::ResultsNotice {
                    // Results before their notice: office and leader only, as GetResults.
                    let see = policy::see(Rpc::GetResults, call.actor.role);
                    let published =
                        crate::app::campaign::results_published(&self.0, campaign).await?;
                    policy::gate_results(&call, see, published)?;
                }
                let _ = see;
                let export = documents::export(&self.0, campaign, document).await?;
                let table = match export.content {
                    Content::Practices(doc) if format == pb::FileFormat::Markdown => {
                        return Ok(pb::ExportedFile {
                            filename: format!("{}-practices.md", export.prefix),
                            content_type: "text/markdown; charset=utf-8".into(),
                            content: sheets::practice_collection_markdown(&doc).into_bytes(),
                        });
                    }
                    Content::Practices(doc) => doc.to_table(),
                    Content::Table(t) => t,
                };
                let slug = document.slug();
                Ok(match format {
                    pb::FileFormat::Csv => pb::ExportedFile {
                        filename: format!("{}-{slug}.csv", export.code),
                        content_type: "text/csv; charset=utf-8".into(),
                        content: table.to_csv(),
                    },
                    _ => pb::ExportedFile {
                        filename: format!("{}-{slug}.xlsx", export.code),
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
