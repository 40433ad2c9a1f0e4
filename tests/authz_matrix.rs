//! The authorization matrix, generated from the policy table the server enforces
//! (`junheng_workflow::app::policy::TABLE`): every read RPC × every role × (own school, other
//! school, other campaign, expired token, revoked token), through the real gRPC server. For
//! each cell the expected status code follows from the table entry, and where a projection
//! applies the test looks at what really came back (contacts, objectors' names, other
//! schools' rows, other campaigns), so a table entry the server does not honour fails here.
//! Then the token life cycle: scope on issuing and on mutations, rotation, revocation (also of
//! a running event stream), and what the audit log records of it.

use std::collections::HashSet;

use futures::StreamExt;
use junheng_core::Role;
use junheng_proto::v1 as pb;
use junheng_tests::*;
use junheng_workflow::ClockMode;
use junheng_workflow::app::policy::{ROLES, Rpc, See, TABLE};
use tonic::Code;

const OBJECTOR: &str = "张三";
const CONTACT_DOMAIN: &str = "@schools.changle.example";

fn all_scores(c: &pb::Campaign) -> Vec<pb::IndicatorScore> {
    c.indicators
        .iter()
        .map(|i| pb::IndicatorScore {
            indicator: i.code.clone(),
            score: 88.0,
            note: String::new(),
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    OwnSchool,
    OtherSchool,
    OtherCampaign,
    Expired,
    Revoked,
}

const TARGETS: [Target; 5] = [
    Target::OwnSchool,
    Target::OtherSchool,
    Target::OtherCampaign,
    Target::Expired,
    Target::Revoked,
];

/// What a successful read showed, where the RPC has something to project.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Obs {
    /// Personal data (contacts of the target / of other schools, objectors' names) appeared.
    personal: Option<bool>,
    /// Rows of schools other than the school token's own appeared.
    others: Option<bool>,
    /// The token's own school's contacts appeared (school lists).
    own_contacts: Option<bool>,
    /// Something of the other campaign appeared (campaign-less lists).
    other_campaign: Option<bool>,
}

/// The fixture: campaign A with the own school S0 and other schools, campaign B elsewhere.
struct World {
    a: String,
    b: String,
    s0: String,
    s1: String,
    b0: String,
    notice: String,
    notice_b: String,
}

/// Any id of a school other than the own school S0.
fn others_of(w: &World, ids: impl IntoIterator<Item = String>) -> bool {
    ids.into_iter().any(|s| !s.is_empty() && s != w.s0)
}

fn is_personal(json: &str) -> bool {
    json.contains(OBJECTOR) || json.contains(CONTACT_DOMAIN)
}

/// One read, as `token` asks it for `target`. `Err` is the status code.
async fn probe(app: &App, w: &World, rpc: Rpc, token: &str, target: Target) -> Result<Obs, Code> {
    let camp = if target == Target::OtherCampaign {
        w.b.clone()
    } else {
        w.a.clone()
    };
    let school = match target {
        Target::OtherSchool => w.s1.clone(),
        Target::OtherCampaign => w.b0.clone(),
        _ => w.s0.clone(),
    };
    macro_rules! go {
        ($e:expr) => {
            match $e.await {
                Ok(r) => r.into_inner(),
                // Past the policy, the read itself may find nothing to show yet.
                Err(s) if matches!(s.code(), Code::NotFound | Code::FailedPrecondition) => {
                    return Ok(Obs::default());
                }
                Err(s) => return Err(s.code()),
            }
        };
    }
    let obs = match rpc {
        Rpc::GetCampaign => {
            go!(app
                .campaigns()
                .get_campaign(auth(token, pb::GetCampaignRequest { campaign_id: camp })));
            Obs::default()
        }
        Rpc::ListCampaigns => {
            let r = go!(app
                .campaigns()
                .list_campaigns(auth(token, pb::ListCampaignsRequest {})));
            Obs {
                other_campaign: Some(r.campaigns.iter().any(|c| c.id == w.b)),
                ..Obs::default()
            }
        }
        Rpc::ListAuditEvents => {
            let r = go!(app.campaigns().list_audit_events(auth(
                token,
                pb::ListAuditEventsRequest {
                    campaign_id: camp,
                    page_size: 1000,
                    ..Default::default()
                }
            )));
            Obs {
                personal: Some(
                    r.events
                        .iter()
                        .any(|e| is_personal(&e.before_json) || is_personal(&e.after_json)),
                ),
                others: Some(others_of(w, r.events.iter().map(|e| e.school_id.clone()))),
                ..Obs::default()
            }
        }
        Rpc::FollowEvents => {
            let mut stream = go!(app.campaigns().follow_events(auth(
                token,
                pb::FollowEventsRequest {
                    campaign_id: camp,
                    cursor: String::new(),
                    stop_when_caught_up: true,
                }
            )));
            let mut events = Vec::new();
            while let Some(item) = stream.next().await {
                match item {
                    Ok(ev) => events.push(ev.event.expect("event")),
                    Err(s) => return Err(s.code()),
                }
            }
            Obs {
                personal: Some(
                    events
                        .iter()
                        .any(|e| is_personal(&e.before_json) || is_personal(&e.after_json)),
                ),
                others: Some(others_of(w, events.iter().map(|e| e.school_id.clone()))),
                ..Obs::default()
            }
        }
        Rpc::ListObligations => {
            let r = go!(app.campaigns().list_obligations(auth(
                token,
                pb::ListObligationsRequest {
                    campaign_id: camp,
                    ..Default::default()
                }
            )));
            Obs {
                others: Some(others_of(
                    w,
                    r.obligations.iter().map(|o| {
                        if o.school_id.is_empty() {
                            o.owner.clone()
                        } else {
                            o.school_id.clone()
                        }
                    }),
                )),
                ..Obs::default()
            }
        }
        Rpc::GetSchool => {
            let r = go!(app
                .schools()
                .get_school(auth(token, pb::GetSchoolRequest { school_id: school })));
            Obs {
                personal: Some(!r.contacts.is_empty()),
                ..Obs::default()
            }
        }
        Rpc::ListSchools => {
            let r = go!(app.schools().list_schools(auth(
                token,
                pb::ListSchoolsRequest {
                    campaign_id: camp,
                    page_size: 1000,
                    ..Default::default()
                }
            )));
            Obs {
                personal: Some(
                    r.schools
                        .iter()
                        .any(|s| s.id != w.s0 && !s.contacts.is_empty()),
                ),
                others: Some(others_of(w, r.schools.iter().map(|s| s.id.clone()))),
                own_contacts: Some(
                    r.schools
                        .iter()
                        .any(|s| s.id == w.s0 && !s.contacts.is_empty()),
                ),
                ..Obs::default()
            }
        }
        Rpc::ListApplications => {
            let r = go!(app.seed().list_applications(auth(
                token,
                pb::ListApplicationsRequest { campaign_id: camp }
            )));
            Obs {
                others: Some(others_of(
                    w,
                    r.applications.iter().map(|a| a.school_id.clone()),
                )),
                ..Obs::default()
            }
        }
        Rpc::GetNotice => {
            let notice_id = if target == Target::OtherCampaign {
                w.notice_b.clone()
            } else {
                w.notice.clone()
            };
            let r = go!(app
                .seed()
                .get_notice(auth(token, pb::GetNoticeRequest { notice_id })));
            Obs {
                personal: Some(r.objections.iter().any(|o| o.objector_name == OBJECTOR)),
                ..Obs::default()
            }
        }
        Rpc::ListNotices => {
            let r = go!(app
                .seed()
                .list_notices(auth(token, pb::ListNoticesRequest { campaign_id: camp })));
            Obs {
                personal: Some(
                    r.notices
                        .iter()
                        .flat_map(|n| &n.objections)
                        .any(|o| o.objector_name == OBJECTOR),
                ),
                ..Obs::default()
            }
        }
        Rpc::GetPresentation => {
            go!(app.mentor().get_presentation(auth(
                token,
                pb::GetPresentationRequest { school_id: school }
            )));
            Obs::default()
        }
        Rpc::GetMentorPanel => {
            go!(app
                .mentor()
                .get_mentor_panel(auth(token, pb::GetMentorPanelRequest { campaign_id: camp })));
            Obs::default()
        }
        Rpc::ProposeMentors => {
            go!(app
                .mentor()
                .propose_mentors(auth(token, pb::ProposeMentorsRequest { campaign_id: camp })));
            Obs::default()
        }
        Rpc::GetPracticeCollection => {
            go!(app.mentor().get_practice_collection(auth(
                token,
                pb::GetPracticeCollectionRequest { campaign_id: camp }
            )));
            Obs::default()
        }
        Rpc::ProposePairing => {
            go!(app
                .pairing()
                .propose_pairing(auth(token, pb::ProposePairingRequest { campaign_id: camp })));
            Obs::default()
        }
        Rpc::GetPairing => {
            go!(app
                .pairing()
                .get_pairing(auth(token, pb::GetPairingRequest { campaign_id: camp })));
            Obs::default()
        }
        Rpc::ListAssistance => {
            go!(app.pairing().list_assistance(auth(
                token,
                pb::ListAssistanceRequest {
                    campaign_id: camp,
                    ..Default::default()
                }
            )));
            Obs::default()
        }
        Rpc::GetPanel => {
            go!(app
                .acceptance()
                .get_panel(auth(token, pb::GetPanelRequest { campaign_id: camp })));
            Obs::default()
        }
        Rpc::GetResults => {
            go!(app
                .acceptance()
                .get_results(auth(token, pb::GetResultsRequest { campaign_id: camp })));
            Obs::default()
        }
        Rpc::ProposeAwards => {
            go!(app
                .awards()
                .propose_awards(auth(token, pb::ProposeAwardsRequest { campaign_id: camp })));
            Obs::default()
        }
        Rpc::ListAwards => {
            go!(app.awards().list_awards(auth(
                token,
                pb::ListAwardsRequest {
                    campaign_id: camp,
                    ..Default::default()
                }
            )));
            Obs::default()
        }
        Rpc::ListConsequences => {
            let r = go!(app.awards().list_consequences(auth(
                token,
                pb::ListConsequencesRequest {
                    campaign_id: camp,
                    ..Default::default()
                }
            )));
            Obs {
                other_campaign: Some(r.consequences.iter().any(|c| c.campaign_id == w.b)),
                ..Obs::default()
            }
        }
        Rpc::Export => {
            go!(app.sheets().export(auth(
                token,
                pb::ExportRequest {
                    campaign_id: camp,
                    document: pb::Document::SeedNotice as i32,
                    format: pb::FileFormat::Csv as i32,
                }
            )));
            Obs::default()
        }
        Rpc::ListTokens => {
            let r = go!(app
                .admin()
                .list_tokens(auth(token, pb::ListTokensRequest { include_dead: true })));
            Obs {
                other_campaign: Some(
                    r.tokens
                        .iter()
                        .any(|t| t.county_wide || t.campaign_ids.contains(&w.b)),
                ),
                ..Obs::default()
            }
        }
    };
    Ok(obs)
}

/// What the table entry promises for one cell. `Ok` fields set to `Some` must match the
/// observation wherever the probe measured them.
fn expected(rpc: Rpc, role: Role, see: See, target: Target) -> Result<Obs, Code> {
    use See::*;
    match target {
        Target::Expired | Target::Revoked => return Err(Code::Unauthenticated),
        Target::OtherCampaign => {
            // Campaign-less lists answer, without the other campaign; everything else is
            // refused by scope.
            return match rpc {
                Rpc::ListCampaigns | Rpc::ListTokens if see != Deny => Ok(Obs {
                    other_campaign: Some(false),
                    ..Obs::default()
                }),
                _ => Err(Code::PermissionDenied),
            };
        }
        _ => {}
    }
    let own_target = target == Target::OwnSchool && role == Role::School;
    let single_school = matches!(rpc, Rpc::GetSchool | Rpc::GetPresentation);
    match see {
        Deny | AfterResults => Err(Code::PermissionDenied),
        Own if single_school && !own_target => Err(Code::PermissionDenied),
        All => Ok(Obs {
            personal: Some(true),
            others: Some(true),
            own_contacts: Some(true),
            other_campaign: Some(false),
        }),
        Redacted => Ok(Obs {
            personal: Some(false),
            others: Some(true),
            own_contacts: Some(false),
            other_campaign: Some(false),
        }),
        Own => Ok(Obs {
            personal: Some(single_school && rpc == Rpc::GetSchool),
            others: Some(false),
            own_contacts: None,
            other_campaign: Some(false),
        }),
        OwnElsePublic => Ok(Obs {
            personal: Some(rpc == Rpc::GetSchool && own_target),
            others: Some(true),
            own_contacts: Some(true),
            other_campaign: Some(false),
        }),
    }
}

fn matches(exp: &Obs, got: &Obs) -> bool {
    let ok = |e: Option<bool>, g: Option<bool>| match (e, g) {
        (Some(e), Some(g)) => e == g,
        _ => true,
    };
    ok(exp.personal, got.personal)
        && ok(exp.others, got.others)
        && ok(exp.own_contacts, got.own_contacts)
        && ok(exp.other_campaign, got.other_campaign)
}

fn pb_role(r: Role) -> pb::Role {
    match r {
        Role::Office => pb::Role::Office,
        Role::Department => pb::Role::Department,
        Role::Panel => pb::Role::Panel,
        Role::School => pb::Role::School,
        Role::Leader => pb::Role::Leader,
        Role::Scheduler => pb::Role::Scheduler,
    }
}

async fn world(app: &App) -> (World, pb::Campaign, Vec<pb::School>) {
    let (camp, schools) = changle(app).await;
    let a = camp.id.clone();
    let (s0, s1, s2) = (&schools[0], &schools[1], &schools[2]);
    // Campaign B: another county's campaign with one school.
    let other = CHANGLE_2020.replace("code = \"changle-2020\"", "code = \"other-2020\"");
    let b = app
        .campaigns()
        .create_campaign(auth(
            OFFICE_TOKEN,
            pb::CreateCampaignRequest {
                idempotency_key: key(),
                definition_toml: other,
            },
        ))
        .await
        .expect("campaign B")
        .into_inner()
        .id;
    let b0 = app
        .schools()
        .register_schools(auth(
            OFFICE_TOKEN,
            pb::RegisterSchoolsRequest {
                idempotency_key: key(),
                campaign_id: b.clone(),
                schools: demo_requests().into_iter().take(1).collect(),
            },
        ))
        .await
        .expect("register in B")
        .into_inner()
        .schools[0]
        .id
        .clone();
    app.campaigns()
        .open_phase(auth(
            OFFICE_TOKEN,
            pb::OpenPhaseRequest {
                idempotency_key: key(),
                campaign_id: a.clone(),
                phase: pb::Phase::SeedDesignation as i32,
            },
        ))
        .await
        .expect("open phase 1");
    // S0 and S2 apply for themselves; the department nominates S1, which is noticed and
    // objected to under a real name.
    for s in [s0, s2] {
        let t = app.token("申请校", pb::Role::School, &s.id).await;
        app.seed()
            .submit_application(auth(
                &t,
                pb::SubmitApplicationRequest {
                    idempotency_key: key(),
                    school_id: s.id.clone(),
                    expected_version: 0,
                    self_assessment: all_scores(&camp),
                    statement: "我校申请".into(),
                },
            ))
            .await
            .expect("apply");
    }
    let (dept, _) = app
        .scoped_token("业务科室", pb::Role::Department, "", &[&a], None)
        .await;
    app.seed()
        .nominate(auth(
            &dept,
            pb::NominateRequest {
                idempotency_key: key(),
                school_id: s1.id.clone(),
                expected_version: s1.version,
                basis: "对照评价标准达标".into(),
            },
        ))
        .await
        .expect("nominate");
    let notice = app
        .seed()
        .publish_notice(auth(
            OFFICE_TOKEN,
            pb::PublishNoticeRequest {
                idempotency_key: key(),
                campaign_id: a.clone(),
                kind: pb::NoticeKind::SeedCandidates as i32,
                school_ids: vec![s1.id.clone()],
                title: String::new(),
            },
        ))
        .await
        .expect("notice")
        .into_inner()
        .id;
    app.seed()
        .file_objection(auth(
            &dept,
            pb::FileObjectionRequest {
                idempotency_key: key(),
                notice_id: notice.clone(),
                school_id: s1.id.clone(),
                objector_name: OBJECTOR.into(),
                objector_contact: "13800001111".into(),
                grounds: "办学条件未达标".into(),
                evidence: "doc://evidence/1".into(),
            },
        ))
        .await
        .expect("objection");
    // Campaign B has a notice of its own.
    app.campaigns()
        .open_phase(auth(
            OFFICE_TOKEN,
            pb::OpenPhaseRequest {
                idempotency_key: key(),
                campaign_id: b.clone(),
                phase: pb::Phase::SeedDesignation as i32,
            },
        ))
        .await
        .expect("open phase 1 in B");
    let (dept_b, _) = app
        .scoped_token("业务科室B", pb::Role::Department, "", &[&b], None)
        .await;
    app.seed()
        .nominate(auth(
            &dept_b,
            pb::NominateRequest {
                idempotency_key: key(),
                school_id: b0.clone(),
                expected_version: 0,
                basis: "对照评价标准达标".into(),
            },
        ))
        .await
        .expect("nominate in B");
    let notice_b = app
        .seed()
        .publish_notice(auth(
            OFFICE_TOKEN,
            pb::PublishNoticeRequest {
                idempotency_key: key(),
                campaign_id: b.clone(),
                kind: pb::NoticeKind::SeedCandidates as i32,
                school_ids: vec![b0.clone()],
                title: String::new(),
            },
        ))
        .await
        .expect("notice in B")
        .into_inner()
        .id;
    let w = World {
        a,
        b,
        s0: s0.id.clone(),
        s1: s1.id.clone(),
        b0,
        notice,
        notice_b,
    };
    (w, camp, schools)
}

#[tokio::test]
async fn every_read_rpc_for_every_role_and_target_follows_the_policy_table() {
    let app = App::spawn(ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    })
    .await;
    let (w, _camp, _schools) = world(&app).await;
    // For each role: a live token scoped to campaign A, one that expires tomorrow (the clock
    // then moves two days), and one revoked.
    let tomorrow = at("2020-03-03T09:00:00+08:00");
    let mut tokens = Vec::new();
    for role in ROLES {
        let school = if role == Role::School {
            w.s0.as_str()
        } else {
            ""
        };
        let r = pb_role(role);
        let (live, _) = app.scoped_token("live", r, school, &[&w.a], None).await;
        let (expired, _) = app
            .scoped_token("expiring", r, school, &[&w.a], Some(tomorrow))
            .await;
        let (revoked, id) = app.scoped_token("revoked", r, school, &[&w.a], None).await;
        app.revoke(&id).await;
        tokens.push((role, live, expired, revoked));
    }
    app.advance("2020-03-04T09:00:00+08:00").await;

    let mut failures = Vec::new();
    let mut cells = 0;
    let rpcs: HashSet<Rpc> = TABLE.iter().map(|(r, _)| *r).collect();
    assert_eq!(rpcs.len(), TABLE.len());
    for (rpc, row) in TABLE {
        for (col, (role, live, expired, revoked)) in tokens.iter().enumerate() {
            assert_eq!(ROLES[col], *role);
            let see = row[col];
            for target in TARGETS {
                let token = match target {
                    Target::Expired => expired,
                    Target::Revoked => revoked,
                    _ => live,
                };
                let got = probe(&app, &w, *rpc, token, target).await;
                let want = expected(*rpc, *role, see, target);
                cells += 1;
                let ok = match (&want, &got) {
                    (Err(a), Err(b)) => a == b,
                    (Ok(e), Ok(g)) => matches(e, g),
                    _ => false,
                };
                if !ok {
                    failures.push(format!(
                        "{} as {role} on {target:?} (table: {see:?}): expected {want:?}, got {got:?}",
                        rpc.name()
                    ));
                }
            }
        }
    }
    assert_eq!(cells, TABLE.len() * ROLES.len() * TARGETS.len());
    assert!(
        failures.is_empty(),
        "{} of {cells} cells differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn tokens_act_within_their_scope_and_die_at_once() {
    let app = App::spawn(ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    })
    .await;
    let (w, _camp, schools) = world(&app).await;

    // A campaign-scoped office issues only within its campaign, creates no campaign and no
    // county-wide token.
    let (office_a, office_a_id) = app
        .scoped_token("督导室A", pb::Role::Office, "", &[&w.a], None)
        .await;
    let s = expect_code(
        app.admin()
            .issue_token(auth(
                &office_a,
                pb::IssueTokenRequest {
                    idempotency_key: key(),
                    name: "越权".into(),
                    role: pb::Role::Panel as i32,
                    campaign_ids: vec![w.b.clone()],
                    ..Default::default()
                },
            ))
            .await,
        Code::PermissionDenied,
    );
    assert!(s.message().contains("scope"), "{}", s.message());
    let before = app.snapshot().await;
    expect_code(
        app.campaigns()
            .create_campaign(auth(
                &office_a,
                pb::CreateCampaignRequest {
                    idempotency_key: key(),
                    definition_toml: CHANGLE_2020.replace("changle-2020", "third-2020"),
                },
            ))
            .await,
        Code::PermissionDenied,
    );
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused command changes nothing"
    );
    // Issued without campaign ids, a token inherits the issuer's scope.
    let r = app
        .admin()
        .issue_token(auth(
            &office_a,
            pb::IssueTokenRequest {
                idempotency_key: key(),
                name: "验收组A".into(),
                role: pb::Role::Panel as i32,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let listed = app
        .admin()
        .list_tokens(auth(
            &office_a,
            pb::ListTokensRequest {
                include_dead: false,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .tokens;
    let panel_a = listed
        .iter()
        .find(|t| t.token_id == r.token_id)
        .expect("listed");
    assert_eq!(panel_a.campaign_ids, vec![w.a.clone()]);
    assert!(!panel_a.county_wide && panel_a.live);
    assert_eq!(
        panel_a.issued_by,
        listed
            .iter()
            .find(|t| t.token_id == office_a_id)
            .unwrap()
            .actor
    );
    assert!(
        listed.iter().all(|t| !t.county_wide),
        "the bootstrap token is outside its scope"
    );

    // A department token of campaign B cannot act in campaign A.
    let (dept_b, _) = app
        .scoped_token("业务科室B", pb::Role::Department, "", &[&w.b], None)
        .await;
    let s = expect_code(
        app.seed()
            .nominate(auth(
                &dept_b,
                pb::NominateRequest {
                    idempotency_key: key(),
                    school_id: schools[3].id.clone(),
                    expected_version: schools[3].version,
                    basis: "越权推荐".into(),
                },
            ))
            .await,
        Code::PermissionDenied,
    );
    assert!(s.message().contains("scope"), "{}", s.message());
    // An expiry in the past is refused, naming the field.
    assert_invalid(
        app.admin()
            .issue_token(auth(
                OFFICE_TOKEN,
                pb::IssueTokenRequest {
                    idempotency_key: key(),
                    name: "过期".into(),
                    role: pb::Role::Leader as i32,
                    expires_at: Some(ts(at("2020-01-01T00:00:00+08:00"))),
                    ..Default::default()
                },
            ))
            .await,
        "expires_at",
    );

    // Rotation: the old secret is refused at once, the new one works, the id stays.
    let (leader, leader_id) = app
        .scoped_token("局领导", pb::Role::Leader, "", &[&w.a], None)
        .await;
    let get = |t: String| {
        let app = &app;
        let id = w.a.clone();
        async move {
            app.campaigns()
                .get_campaign(auth(&t, pb::GetCampaignRequest { campaign_id: id }))
                .await
        }
    };
    get(leader.clone()).await.expect("leader reads");
    let rotated = app
        .admin()
        .rotate_token(auth(
            OFFICE_TOKEN,
            pb::RotateTokenRequest {
                idempotency_key: key(),
                token_id: leader_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rotated.info.as_ref().unwrap().token_id, leader_id);
    assert_ne!(rotated.token, leader);
    expect_code(get(leader.clone()).await, Code::Unauthenticated);
    get(rotated.token.clone())
        .await
        .expect("the new secret works");

    // Revocation ends a running event stream and every later call at once.
    let mut stream = app
        .campaigns()
        .follow_events(auth(
            &rotated.token,
            pb::FollowEventsRequest {
                campaign_id: w.a.clone(),
                cursor: String::new(),
                stop_when_caught_up: false,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(stream.next().await.unwrap().is_ok(), "the stream runs");
    let info = app
        .admin()
        .revoke_token(auth(
            OFFICE_TOKEN,
            pb::RevokeTokenRequest {
                idempotency_key: key(),
                token_id: leader_id.clone(),
                reason: "离任".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!info.live && info.revoked_at.is_some());
    let s = expect_code(get(rotated.token.clone()).await, Code::Unauthenticated);
    assert!(s.message().contains("revoked"), "{}", s.message());
    // A new event wakes the stream; it must end with UNAUTHENTICATED, not deliver it.
    app.seed()
        .file_objection(auth(
            OFFICE_TOKEN,
            pb::FileObjectionRequest {
                idempotency_key: key(),
                notice_id: w.notice.clone(),
                school_id: w.s1.clone(),
                objector_name: "李四".into(),
                objector_contact: "13800002222".into(),
                grounds: "材料不实".into(),
                evidence: "doc://evidence/2".into(),
            },
        ))
        .await
        .expect("objection");
    let end = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match stream.next().await {
                Some(Ok(_)) => continue,
                Some(Err(s)) => return Some(s.code()),
                None => return None,
            }
        }
    })
    .await
    .expect("the stream ends");
    assert_eq!(end, Some(Code::Unauthenticated));
    // Outside the issuer's scope a token can be neither revoked nor rotated.
    let (b_token, b_id) = app
        .scoped_token("B校领导", pb::Role::Leader, "", &[&w.b], None)
        .await;
    expect_code(
        app.admin()
            .revoke_token(auth(
                &office_a,
                pb::RevokeTokenRequest {
                    idempotency_key: key(),
                    token_id: b_id,
                    reason: String::new(),
                },
            ))
            .await,
        Code::PermissionDenied,
    );

    // The audit log of campaign A records issue, rotation and revocation with before/after,
    // never a secret.
    let events = app
        .campaigns()
        .list_audit_events(auth(
            OFFICE_TOKEN,
            pb::ListAuditEventsRequest {
                campaign_id: w.a.clone(),
                page_size: 1000,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .events;
    let of_leader: Vec<_> = events
        .iter()
        .filter(|e| e.after_json.contains(&leader_id))
        .collect();
    let actions: Vec<&str> = of_leader.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["token.issued", "token.rotated", "token.revoked"]);
    assert_eq!(of_leader[0].before_json, "null");
    assert!(of_leader[2].before_json.contains("\"revoked_at\":null"));
    assert!(!of_leader[2].after_json.contains("\"revoked_at\":null"));
    assert_eq!(of_leader[2].reason, "离任");
    for e in &events {
        for secret in [&leader, &rotated.token, &office_a, &b_token] {
            assert!(
                !e.before_json.contains(secret.as_str()) && !e.after_json.contains(secret.as_str()),
                "a secret in the audit log: {e:?}"
            );
        }
    }
    // The scheduler's role closes notices and nothing else.
    let (sched, _) = app
        .scoped_token("调度服务", pb::Role::Scheduler, "", &[], None)
        .await;
    expect_code(
        app.seed()
            .nominate(auth(
                &sched,
                pb::NominateRequest {
                    idempotency_key: key(),
                    school_id: schools[4].id.clone(),
                    expected_version: schools[4].version,
                    basis: "x".into(),
                },
            ))
            .await,
        Code::PermissionDenied,
    );
    app.advance("2020-03-09T09:00:00+08:00").await;
    app.seed()
        .close_notice(auth(
            &sched,
            pb::CloseNoticeRequest {
                idempotency_key: key(),
                notice_id: w.notice.clone(),
            },
        ))
        .await
        .expect("the scheduler closes an ended notice");
}
