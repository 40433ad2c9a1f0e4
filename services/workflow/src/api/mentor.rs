//! MentorService: phase 2 — presentations and practices, panel ratings, the mentor rule, the
//! mentor list and the practice collection.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use junheng_core::effects::ObligationKind;
use junheng_core::mentor::{self, MentorVerdict, PracticeTally, Rating};
use junheng_core::{CaseState, Effect, PhaseKind, Role, SchoolCommand};
use junheng_proto::v1 as pb;
use junheng_proto::v1::mentor_service_server::MentorService;
use junheng_store::PgConnection;
use junheng_store::campaigns::{self, Lock};
use junheng_store::mentor::{self as store, PracticeRow, PresentationRow, SheetRow};
use junheng_store::schools::{self, Filter, SchoolRow};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Shared, begin, reply};
use crate::app::cases;
use crate::convert::{Violations, ts};
use crate::error::{AppError, AppResult};
use crate::state::Loaded;

pub struct MentorApi(pub Shared);

fn rating_from_pb(r: i32) -> Option<Rating> {
    match pb::Rating::try_from(r).ok()? {
        pb::Rating::Excellent => Some(Rating::Excellent),
        pb::Rating::Good => Some(Rating::Good),
        pb::Rating::Fair => Some(Rating::Fair),
        pb::Rating::Poor => Some(Rating::Poor),
        pb::Rating::Unspecified => None,
    }
}

fn tally(practices: &[PracticeRow], sheets: &[SheetRow]) -> Vec<(PracticeRow, PracticeTally)> {
    practices
        .iter()
        .map(|p| {
            let key = p.id.to_string();
            let votes: Vec<bool> = sheets
                .iter()
                .filter_map(|s| s.verdicts.get(&key).and_then(|v| v.as_bool()))
                .collect();
            let accepts = votes.iter().filter(|v| **v).count() as u32;
            (
                p.clone(),
                PracticeTally {
                    indicator: p.indicator.clone(),
                    accepts,
                    rejects: votes.len() as u32 - accepts,
                },
            )
        })
        .collect()
}

fn sheet_ratings(s: &SheetRow) -> BTreeMap<String, Rating> {
    s.ratings
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), Rating::from_code(v.as_str()?)?)))
                .collect()
        })
        .unwrap_or_default()
}

fn practice_to_pb(p: &PracticeRow, t: &PracticeTally, accepted: bool) -> pb::Practice {
    pb::Practice {
        id: p.id.to_string(),
        school_id: p.school_id.to_string(),
        indicator: p.indicator.clone(),
        title: p.title.clone(),
        description: p.description.clone(),
        accepts: t.accepts,
        rejects: t.rejects,
        accepted,
    }
}

async fn presentation_to_pb(
    conn: &mut PgConnection,
    camp: &Loaded,
    school: Uuid,
) -> AppResult<pb::Presentation> {
    let p = store::get_presentation(conn, school).await?;
    let practices = store::practices_of(conn, school).await?;
    let sheets = store::sheets_of(conn, school).await?;
    Ok(pb::Presentation {
        school_id: school.to_string(),
        document_ref: p.document_ref,
        document_sha256: p.document_sha256,
        practices: tally(&practices, &sheets)
            .iter()
            .map(|(p, t)| practice_to_pb(p, t, mentor::practice_accepted(t, &camp.def)))
            .collect(),
        raters: sheets.len() as u32,
        submitted_at: Some(ts(p.submitted_at)),
    })
}

/// The mentor rule for every seed school of a campaign.
pub(crate) async fn proposals(
    conn: &mut PgConnection,
    camp: &Loaded,
) -> AppResult<Vec<(SchoolRow, MentorVerdict)>> {
    let all = schools::list(conn, camp.id(), &Filter::default(), "", i64::MAX).await?;
    let seeds: Vec<SchoolRow> = all
        .into_iter()
        .filter(|s| CaseState::from_code(&s.state).is_some_and(CaseState::is_seed))
        .collect();
    let mut practices: HashMap<Uuid, Vec<PracticeRow>> = HashMap::new();
    for p in store::campaign_practices(conn, camp.id()).await? {
        practices.entry(p.school_id).or_default().push(p);
    }
    let mut sheets: HashMap<Uuid, Vec<SheetRow>> = HashMap::new();
    for s in store::campaign_sheets(conn, camp.id()).await? {
        sheets.entry(s.school_id).or_default().push(s);
    }
    Ok(seeds
        .into_iter()
        .map(|s| {
            let sh = sheets.remove(&s.id).unwrap_or_default();
            let pr = practices.remove(&s.id).unwrap_or_default();
            let tallies: Vec<PracticeTally> = tally(&pr, &sh).into_iter().map(|(_, t)| t).collect();
            let presented = s.state != CaseState::Seed.code();
            let verdict = mentor::evaluate(
                &camp.def,
                presented,
                &sh.iter().map(sheet_ratings).collect::<Vec<_>>(),
                &tallies,
            );
            (s, verdict)
        })
        .collect())
}

fn proposal_to_pb(
    s: &SchoolRow,
    v: &MentorVerdict,
    mentor: bool,
    note: Option<&str>,
) -> pb::MentorProposal {
    pb::MentorProposal {
        school_id: s.id.to_string(),
        school_name: s.name.clone(),
        mentor,
        explanation: match note {
            Some(n) => format!("{}（督导室调整：{n}）", v.explanation),
            None => v.explanation.clone(),
        },
        excellent_indicators: v.excellent.clone(),
        accepted_practice_indicators: v.practice_indicators.clone(),
    }
}

#[tonic::async_trait]
impl MentorService for MentorApi {
    async fn submit_presentation(
        &self,
        req: Request<pb::SubmitPresentationRequest>,
    ) -> Result<Response<pb::Presentation>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let school = v.uuid("school_id", &req.school_id);
                let version = v.version("expected_version", req.expected_version);
                let doc = v.text("document_ref", &req.document_ref, 500);
                let sha = req.document_sha256.trim().to_ascii_lowercase();
                if !(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit())) {
                    v.add(
                        "document_sha256",
                        "must be the document's SHA-256 as 64 hex characters",
                    );
                }
                if req.practices.is_empty() {
                    v.add("practices", "declare at least one replicable practice");
                } else if req.practices.len() > 50 {
                    v.add("practices", "at most 50 practices");
                }
                for (i, p) in req.practices.iter().enumerate() {
                    v.text(&format!("practices[{i}].indicator"), &p.indicator, 64);
                    v.text(&format!("practices[{i}].title"), &p.title, 200);
                    v.text(&format!("practices[{i}].description"), &p.description, 5000);
                }
                v.finish()?;
                if call.actor.role == Role::School && call.actor.school != Some(school) {
                    return Err(AppError::PermissionDenied(
                        "a school may present only for itself".into(),
                    ));
                }
                let mut w = begin!(self.0, call, "SubmitPresentation", req);
                let campaign = self.0.campaign_of(w.conn(), school).await?;
                let camp = self.0.load(w.conn(), campaign, Lock::Share).await?;
                let mut v = Violations::default();
                for (i, p) in req.practices.iter().enumerate() {
                    if camp.def.indicator(p.indicator.trim()).is_none() {
                        v.add(
                            format!("practices[{i}].indicator"),
                            format!("unknown indicator `{}`", p.indicator),
                        );
                    }
                }
                v.finish()?;
                cases::apply(
                    &mut w,
                    &call,
                    &camp,
                    school,
                    version,
                    SchoolCommand::SubmitPresentation,
                    Vec::new(),
                )
                .await?;
                let practices: Vec<PracticeRow> = req
                    .practices
                    .iter()
                    .enumerate()
                    .map(|(i, p)| PracticeRow {
                        id: Uuid::now_v7(),
                        school_id: school,
                        ordinal: i as i32,
                        indicator: p.indicator.trim().into(),
                        title: p.title.trim().into(),
                        description: p.description.trim().into(),
                    })
                    .collect();
                let row = PresentationRow {
                    school_id: school,
                    campaign_id: campaign,
                    document_ref: doc,
                    document_sha256: sha,
                    submitted_at: w.now,
                };
                store::insert_presentation(w.conn(), &row, &practices).await?;
                let resp = presentation_to_pb(w.conn(), &camp, school).await?;
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn rate_presentation(
        &self,
        req: Request<pb::RatePresentationRequest>,
    ) -> Result<Response<pb::Presentation>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                call.require(&[Role::Panel], "rate a presentation")?;
                let mut v = Violations::default();
                let school = v.uuid("school_id", &req.school_id);
                let mut ratings = BTreeMap::new();
                for (i, r) in req.ratings.iter().enumerate() {
                    match rating_from_pb(r.rating) {
                        Some(rt) => {
                            if ratings.insert(r.indicator.trim().to_string(), rt).is_some() {
                                v.add(
                                    format!("ratings[{i}].indicator"),
                                    format!("indicator `{}` rated twice", r.indicator),
                                );
                            }
                        }
                        None => v.add(
                            format!("ratings[{i}].rating"),
                            "must be RATING_EXCELLENT, RATING_GOOD, RATING_FAIR or RATING_POOR",
                        ),
                    }
                }
                let mut verdicts = BTreeMap::new();
                for (i, p) in req.verdicts.iter().enumerate() {
                    let id = v.uuid(&format!("verdicts[{i}].practice_id"), &p.practice_id);
                    if verdicts.insert(id, p.accepted).is_some() {
                        v.add(
                            format!("verdicts[{i}].practice_id"),
                            "practice judged twice",
                        );
                    }
                }
                v.finish()?;
                let mut w = begin!(self.0, call, "RatePresentation", req);
                let campaign = self.0.campaign_of(w.conn(), school).await?;
                let camp = self.0.load(w.conn(), campaign, Lock::Share).await?;
                camp.phases.require_active(
                    PhaseKind::MentorSelection,
                    None,
                    "rate a presentation",
                    w.now,
                    &camp.def,
                )?;
                let row = schools::get_for_update(w.conn(), school).await?;
                if row.state != CaseState::Presented.code() {
                    let label = CaseState::from_code(&row.state).map_or("", |s| s.label());
                    return Err(AppError::FailedPrecondition(format!(
                        "cannot rate a presentation: the school is {label} ({})",
                        row.state
                    )));
                }
                let practices = store::practices_of(w.conn(), school).await?;
                let mut v = Violations::default();
                for ind in &camp.def.indicators {
                    if !ratings.contains_key(&ind.code) {
                        v.add(
                            "ratings",
                            format!("missing indicator `{}` ({})", ind.code, ind.name),
                        );
                    }
                }
                for code in ratings.keys() {
                    if camp.def.indicator(code).is_none() {
                        v.add("ratings", format!("unknown indicator `{code}`"));
                    }
                }
                let declared: BTreeSet<Uuid> = practices.iter().map(|p| p.id).collect();
                for p in &practices {
                    if !verdicts.contains_key(&p.id) {
                        v.add(
                            "verdicts",
                            format!("missing a verdict on practice {} ({})", p.id, p.title),
                        );
                    }
                }
                for id in verdicts.keys() {
                    if !declared.contains(id) {
                        v.add(
                            "verdicts",
                            format!("practice {id} was not declared by this school"),
                        );
                    }
                }
                v.finish()?;
                let sheet = SheetRow {
                    school_id: school,
                    rater: call.actor.id.clone(),
                    ratings: serde_json::to_value(
                        ratings
                            .iter()
                            .map(|(k, r)| (k.clone(), r.code()))
                            .collect::<BTreeMap<_, _>>(),
                    )
                    .map_err(AppError::internal)?,
                    verdicts: serde_json::to_value(
                        verdicts
                            .iter()
                            .map(|(k, a)| (k.to_string(), *a))
                            .collect::<BTreeMap<_, _>>(),
                    )
                    .map_err(AppError::internal)?,
                };
                let now = w.now;
                store::upsert_sheet(w.conn(), campaign, &sheet, now).await?;
                let raters = store::sheets_of(w.conn(), school).await?.len() as u32;
                let mut effects = vec![Effect::event(
                    "presentation.rated",
                    Some(school),
                    serde_json::Value::Null,
                    sheet.ratings.clone(),
                    None,
                )];
                if raters >= camp.def.mentor.min_raters {
                    effects.push(Effect::CloseObligation {
                        kind: ObligationKind::RatePresentation,
                        school: Some(school),
                        key: String::new(),
                    });
                }
                w.record(&call, campaign, &effects).await?;
                let resp = presentation_to_pb(w.conn(), &camp, school).await?;
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn get_presentation(
        &self,
        req: Request<pb::GetPresentationRequest>,
    ) -> Result<Response<pb::Presentation>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let school = v.uuid("school_id", &req.school_id);
                v.finish()?;
                let mut conn = self.0.pool.acquire().await?;
                let campaign = self.0.campaign_of(&mut conn, school).await?;
                let camp = self.0.load(&mut conn, campaign, Lock::None).await?;
                presentation_to_pb(&mut conn, &camp, school).await
            }
            .await,
        )
    }

    async fn propose_mentors(
        &self,
        req: Request<pb::ProposeMentorsRequest>,
    ) -> Result<Response<pb::ProposeMentorsResponse>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let campaign = v.uuid("campaign_id", &req.campaign_id);
                v.finish()?;
                let mut conn = self.0.pool.acquire().await?;
                let camp = self.0.load(&mut conn, campaign, Lock::None).await?;
                let confirmed = camp.row.mentors_confirmed_at.is_some();
                let list = proposals(&mut conn, &camp).await?;
                Ok(pb::ProposeMentorsResponse {
                    proposals: list
                        .iter()
                        .map(|(s, v)| {
                            let mentor = if confirmed {
                                s.state == CaseState::Mentor.code()
                            } else {
                                v.mentor
                            };
                            proposal_to_pb(s, v, mentor, None)
                        })
                        .collect(),
                    confirmed,
                })
            }
            .await,
        )
    }

    async fn confirm_mentors(
        &self,
        req: Request<pb::ConfirmMentorsRequest>,
    ) -> Result<Response<pb::ProposeMentorsResponse>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                call.require(&[Role::Office], "confirm the mentor list")?;
                let mut v = Violations::default();
                let campaign = v.uuid("campaign_id", &req.campaign_id);
                let mut overrides = BTreeMap::new();
                for (i, o) in req.overrides.iter().enumerate() {
                    let id = v.uuid(&format!("overrides[{i}].school_id"), &o.school_id);
                    let reason = v.text(&format!("overrides[{i}].reason"), &o.reason, 2000);
                    if overrides.insert(id, (o.mentor, reason)).is_some() {
                        v.add(
                            format!("overrides[{i}].school_id"),
                            "school overridden twice",
                        );
                    }
                }
                v.finish()?;
                let mut w = begin!(self.0, call, "ConfirmMentors", req);
                let camp = self.0.load(w.conn(), campaign, Lock::Update).await?;
                camp.phases.require_active(
                    PhaseKind::MentorSelection,
                    None,
                    "confirm the mentor list",
                    w.now,
                    &camp.def,
                )?;
                if camp.row.mentors_confirmed_at.is_some() {
                    return Err(AppError::FailedPrecondition(
                        "the mentor list is already confirmed".into(),
                    ));
                }
                let list = proposals(w.conn(), &camp).await?;
                let known: BTreeSet<Uuid> = list.iter().map(|(s, _)| s.id).collect();
                let mut v = Violations::default();
                for (i, id) in overrides.keys().enumerate() {
                    if !known.contains(id) {
                        v.add(
                            format!("overrides[{i}].school_id"),
                            "not a seed school of this campaign",
                        );
                    }
                }
                v.finish()?;
                let mut out = Vec::new();
                let mut mentors = Vec::new();
                for (s, verdict) in &list {
                    let (mentor, note) = match overrides.get(&s.id) {
                        Some((m, reason)) if *m != verdict.mentor => (*m, Some(reason.clone())),
                        _ => (verdict.mentor, None),
                    };
                    let cmd = SchoolCommand::ConfirmMentor {
                        mentor,
                        reason: Some(note.clone().map_or_else(
                            || verdict.explanation.clone(),
                            |n| format!("督导室调整：{n}；{}", verdict.explanation),
                        )),
                    };
                    cases::apply(&mut w, &call, &camp, s.id, 0, cmd, Vec::new()).await?;
                    if mentor {
                        mentors.push(s.id);
                    }
                    out.push(proposal_to_pb(s, verdict, mentor, note.as_deref()));
                }
                let now = w.now;
                campaigns::set_mentors_confirmed(w.conn(), campaign, now).await?;
                let ev = Effect::event(
                    "mentors.confirmed",
                    None,
                    serde_json::Value::Null,
                    serde_json::json!({ "mentors": mentors }),
                    None,
                );
                w.record(&call, campaign, &[ev]).await?;
                let resp = pb::ProposeMentorsResponse {
                    proposals: out,
                    confirmed: true,
                };
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn get_practice_collection(
        &self,
        req: Request<pb::GetPracticeCollectionRequest>,
    ) -> Result<Response<pb::PracticeCollection>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let campaign = v.uuid("campaign_id", &req.campaign_id);
                v.finish()?;
                let mut conn = self.0.pool.acquire().await?;
                let camp = self.0.load(&mut conn, campaign, Lock::None).await?;
                practice_collection(&mut conn, &camp).await.map(|c| c.0)
            }
            .await,
        )
    }
}

/// The practice collection: accepted practices grouped by indicator, as proto and as the
/// spreadsheet document (whose Markdown rendering both share).
pub(crate) async fn practice_collection(
    conn: &mut PgConnection,
    camp: &Loaded,
) -> AppResult<(pb::PracticeCollection, junheng_sheets::PracticeCollection)> {
    let practices = store::campaign_practices(conn, camp.id()).await?;
    let sheets = store::campaign_sheets(conn, camp.id()).await?;
    let names: HashMap<Uuid, String> =
        schools::list(conn, camp.id(), &Filter::default(), "", i64::MAX)
            .await?
            .into_iter()
            .map(|s| (s.id, s.name))
            .collect();
    let mut groups = Vec::new();
    let mut doc = junheng_sheets::PracticeCollection {
        title: format!("{}{}年可复制性经验做法集锦", camp.def.county, camp.def.year),
        groups: Vec::new(),
    };
    for ind in &camp.def.indicators {
        let of_ind: Vec<PracticeRow> = practices
            .iter()
            .filter(|p| p.indicator == ind.code)
            .cloned()
            .collect();
        let mut accepted = Vec::new();
        let mut lines = Vec::new();
        for (p, t) in tally(&of_ind, &sheets) {
            if mentor::practice_accepted(&t, &camp.def) {
                lines.push(junheng_sheets::Practice {
                    school: names.get(&p.school_id).cloned().unwrap_or_default(),
                    name: p.title.clone(),
                    summary: p.description.clone(),
                });
                accepted.push(practice_to_pb(&p, &t, true));
            }
        }
        doc.groups.push(junheng_sheets::PracticeGroup {
            indicator: ind.name.clone(),
            practices: lines,
        });
        groups.push(pb::PracticeGroup {
            indicator: Some(pb::Indicator {
                code: ind.code.clone(),
                name: ind.name.clone(),
            }),
            practices: accepted,
        });
    }
    let markdown = junheng_sheets::practice_collection_markdown(&doc);
    Ok((pb::PracticeCollection { groups, markdown }, doc))
}
