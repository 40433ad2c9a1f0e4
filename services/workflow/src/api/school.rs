//! SchoolService: registration (all-or-nothing), reads, filtered paged lists. Parses, calls
//! `app::schools`, maps to proto.

use junheng_core::{CampaignId, SchoolId};
use std::collections::HashMap;

use junheng_core::values::SchoolCode;
use junheng_core::{CaseState, Role};
use junheng_proto::v1 as pb;
use junheng_proto::v1::school_service_server::SchoolService;
use junheng_store::schools::Filter;
use tonic::{Request, Response, Status};

use super::{Shared, begin, reply};
use crate::app::policy::{self, Rpc};
use crate::app::schools as app;
use junheng_edge::violations::echo;

use crate::convert::{MAX_BATCH, Violations, check_school, level_from_pb, school_to_pb};

pub struct SchoolApi(pub Shared);

#[tonic::async_trait]
impl SchoolService for SchoolApi {
    async fn change_principal(
        &self,
        req: Request<pb::ChangePrincipalRequest>,
    ) -> Result<Response<pb::School>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                call.require(&[Role::Office], "change a school's principal")?;
                let mut v = Violations::default();
                let school = v.id::<SchoolId>("school_id", &req.school_id);
                let name = v.text("name", &req.name, 50);
                let reason = v.text("reason", &req.reason, 2000);
                v.finish()?;
                let mut w = begin!(self.0, call, "ChangePrincipal", req);
                let row =
                    app::change_principal(&self.0, &mut w, &call, school, name, reason).await?;
                let resp = school_to_pb(&row);
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn register_schools(
        &self,
        req: Request<pb::RegisterSchoolsRequest>,
    ) -> Result<Response<pb::RegisterSchoolsResponse>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                call.require(&[Role::Office], "register schools")?;
                let mut v = Violations::default();
                let campaign = v.id::<CampaignId>("campaign_id", &req.campaign_id);
                if req.schools.is_empty() {
                    v.add("schools", "at least one school");
                } else if req.schools.len() > MAX_BATCH {
                    v.add("schools", format!("at most {MAX_BATCH} schools per call"));
                }
                let mut seen: HashMap<String, usize> = HashMap::new();
                let mut rows = Vec::with_capacity(req.schools.len());
                for (i, s) in req.schools.iter().enumerate() {
                    let row = check_school(&mut v, i, s);
                    let code = s.code.trim();
                    if let Some(first) = seen.insert(code.to_owned(), i) {
                        v.add(
                            format!("schools[{i}].code"),
                            format!("duplicate of schools[{first}].code `{code}`"),
                        );
                    }
                    rows.extend(row);
                }
                v.finish()?;
                let mut w = begin!(self.0, call, "RegisterSchools", req);
                let inserted = app::register(&self.0, &mut w, &call, campaign, &rows).await?;
                let resp = pb::RegisterSchoolsResponse {
                    schools: inserted.iter().map(school_to_pb).collect(),
                };
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn get_school(
        &self,
        req: Request<pb::GetSchoolRequest>,
    ) -> Result<Response<pb::School>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let id = v.id::<SchoolId>("school_id", &req.school_id);
                v.finish()?;
                let row = app::school(&self.0, id).await?;
                let see = policy::read(&call, Rpc::GetSchool, Some(row.campaign_id))?;
                Ok(school_to_pb(&policy::school(&call, see, row)?))
            }
            .await,
        )
    }

    async fn list_schools(
        &self,
        req: Request<pb::ListSchoolsRequest>,
    ) -> Result<Response<pb::ListSchoolsResponse>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let campaign = v.id::<CampaignId>("campaign_id", &req.campaign_id);
                let size = match req.page_size {
                    0 => 100,
                    n @ 1..=1000 => i64::from(n),
                    _ => {
                        v.add("page_size", "at most 1000");
                        0
                    }
                };
                let level = match pb::SchoolLevel::try_from(req.level) {
                    Ok(pb::SchoolLevel::Unspecified) => None,
                    Ok(l) => level_from_pb(l).map(String::from),
                    Err(_) => {
                        v.add("level", "unknown level");
                        None
                    }
                };
                let state = CaseState::from_code(&req.state);
                if !req.state.is_empty() && state.is_none() {
                    v.add(
                        "state",
                        format!(
                            "unknown state `{}`; one of {}",
                            echo(&req.state),
                            CaseState::ALL.map(|s| s.code()).join(", ")
                        ),
                    );
                }
                if !req.page_token.is_empty() && SchoolCode::parse(&req.page_token).is_none() {
                    v.add("page_token", "not a token returned by this call");
                }
                let town = v.optional_text("town", &req.town, 50);
                v.finish()?;
                let filter = Filter {
                    town: (!town.is_empty()).then_some(town),
                    level,
                    state,
                };
                let see = policy::read(&call, Rpc::ListSchools, Some(campaign))?;
                let rows = app::list(&self.0, campaign, &filter, &req.page_token, size).await?;
                let next = if rows.len() as i64 == size {
                    rows.last().map(|r| r.code.clone()).unwrap_or_default()
                } else {
                    String::new()
                };
                let rows = policy::schools(&call, see, rows);
                Ok(pb::ListSchoolsResponse {
                    schools: rows.iter().map(school_to_pb).collect(),
                    next_page_token: next,
                })
            }
            .await,
        )
    }
}
