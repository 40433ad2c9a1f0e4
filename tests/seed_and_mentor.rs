//! Phases 1 and 2 for the demo county, through the gRPC API only, on the simulated clock.

use junheng_proto::v1 as pb;
use junheng_tests::*;
use junheng_workflow::ClockMode;
use tonic::Code;

fn phase(c: &pb::Campaign, p: pb::Phase) -> &pb::PhaseInfo {
    c.phases
        .iter()
        .find(|x| x.phase == p as i32)
        .expect("phase present")
}

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

#[tokio::test]
async fn phases_one_and_two_for_the_demo_county() {
    let app = App::spawn(ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    })
    .await;
    let (camp, schools) = changle(&app).await;
    assert_eq!(schools.len(), 40);
    assert_eq!(camp.indicators.len(), 8);
    let id = camp.id.clone();
    let dept = app.token("业务科室", pb::Role::Department, "").await;
    let leader = app.token("领导", pb::Role::Leader, "").await;
    let applicant = &schools[10];
    let late_applicant = &schools[11];
    let applicant_token = app
        .token(&applicant.name, pb::Role::School, &applicant.id)
        .await;
    let late_token = app
        .token(&late_applicant.name, pb::Role::School, &late_applicant.id)
        .await;

    // Before the phase opens, a nomination is refused, naming the phase.
    let nominate = |s: &pb::School, v: i64| pb::NominateRequest {
        idempotency_key: key(),
        school_id: s.id.clone(),
        expected_version: v,
        basis: "对照评价标准达标".into(),
    };
    let s = expect_code(
        app.seed()
            .nominate(auth(&dept, nominate(&schools[0], 0)))
            .await,
        Code::FailedPrecondition,
    );
    assert!(
        s.message().contains("seed_designation") && s.message().contains("not_open"),
        "{}",
        s.message()
    );

    let c = app
        .campaigns()
        .open_phase(auth(
            OFFICE_TOKEN,
            pb::OpenPhaseRequest {
                idempotency_key: key(),
                campaign_id: id.clone(),
                phase: pb::Phase::SeedDesignation as i32,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        phase(&c, pb::Phase::SeedDesignation).status,
        pb::PhaseStatus::Open as i32
    );

    // Departments nominate six schools; a school may not nominate; a leader may not either.
    expect_code(
        app.seed()
            .nominate(auth(&applicant_token, nominate(&schools[0], 0)))
            .await,
        Code::PermissionDenied,
    );
    expect_code(
        app.seed()
            .nominate(auth(&leader, nominate(&schools[0], 0)))
            .await,
        Code::PermissionDenied,
    );
    let mut nominated = Vec::new();
    for s in &schools[0..6] {
        let r = app
            .seed()
            .nominate(auth(&dept, nominate(s, s.version)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.state, "nominated");
        assert_eq!(r.version, s.version + 1);
        nominated.push(r);
    }
    // The same request again returns the same answer and changes nothing; the same key with a
    // different request is refused.
    let req = nominate(&schools[6], 1);
    let first = app
        .seed()
        .nominate(auth(&dept, req.clone()))
        .await
        .unwrap()
        .into_inner();
    let before = app.snapshot().await;
    let again = app
        .seed()
        .nominate(auth(&dept, req.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, again);
    assert_eq!(app.snapshot().await, before);
    let mut other = req.clone();
    other.basis = "另一个理由".into();
    expect_code(
        app.seed().nominate(auth(&dept, other)).await,
        Code::AlreadyExists,
    );
    // A stale version is refused with the current one in the message.
    let s = expect_code(
        app.seed()
            .withdraw_nomination(auth(
                &dept,
                pb::WithdrawNominationRequest {
                    idempotency_key: key(),
                    school_id: schools[6].id.clone(),
                    expected_version: 1,
                    reason: "重复推荐".into(),
                },
            ))
            .await,
        Code::Aborted,
    );
    assert!(s.message().contains("version 2"), "{}", s.message());
    let w = app
        .seed()
        .withdraw_nomination(auth(
            &dept,
            pb::WithdrawNominationRequest {
                idempotency_key: key(),
                school_id: schools[6].id.clone(),
                expected_version: 2,
                reason: "重复推荐".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(w.state, "enrolled");

    // A self-application must score every indicator; a bad one changes nothing.
    let mut partial = all_scores(&camp);
    partial.pop();
    let before = app.snapshot().await;
    let s = expect_code(
        app.seed()
            .submit_application(auth(
                &applicant_token,
                pb::SubmitApplicationRequest {
                    idempotency_key: key(),
                    school_id: applicant.id.clone(),
                    expected_version: 0,
                    self_assessment: partial,
                    statement: "申请".into(),
                },
            ))
            .await,
        Code::InvalidArgument,
    );
    assert!(
        violations(&s).contains(&"self_assessment".to_string()),
        "{:?}",
        violations(&s)
    );
    assert_eq!(app.snapshot().await, before);
    // A school applies only for itself.
    expect_code(
        app.seed()
            .submit_application(auth(
                &applicant_token,
                pb::SubmitApplicationRequest {
                    idempotency_key: key(),
                    school_id: late_applicant.id.clone(),
                    expected_version: 0,
                    self_assessment: all_scores(&camp),
                    statement: "申请".into(),
                },
            ))
            .await,
        Code::PermissionDenied,
    );
    let application = app
        .seed()
        .submit_application(auth(
            &applicant_token,
            pb::SubmitApplicationRequest {
                idempotency_key: key(),
                school_id: applicant.id.clone(),
                expected_version: 0,
                self_assessment: all_scores(&camp),
                statement: "我校各项指标达到标杆标准".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(application.status, "pending");

    // The office publishes the candidate list: 5 working days from Monday 2020-03-02.
    let ids: Vec<String> = nominated.iter().map(|s| s.id.clone()).collect();
    let notice = app
        .seed()
        .publish_notice(auth(
            OFFICE_TOKEN,
            pb::PublishNoticeRequest {
                idempotency_key: key(),
                campaign_id: id.clone(),
                kind: pb::NoticeKind::SeedCandidates as i32,
                school_ids: ids.clone(),
                title: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        notice.ends_at.as_ref().unwrap().seconds,
        at("2020-03-07T00:00:00+08:00").timestamp()
    );
    assert_eq!(notice.title, "昌乐县2020年标杆种子校拟定名单公示");
    assert_eq!(notice.status, "open");

    // Objections: anonymous ones are refused; a founded one removes the school; another is dismissed.
    let objection = |school: &str, name: &str| pb::FileObjectionRequest {
        idempotency_key: key(),
        notice_id: notice.id.clone(),
        school_id: school.into(),
        objector_name: name.into(),
        objector_contact: "13800001111".into(),
        grounds: "办学条件未达标".into(),
        evidence: "doc://evidence/1".into(),
    };
    let s = expect_code(
        app.seed()
            .file_objection(auth(&dept, objection(&ids[0], "")))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violations(&s), vec!["objector_name"]);
    let upheld = app
        .seed()
        .file_objection(auth(&dept, objection(&ids[0], "张三")))
        .await
        .unwrap()
        .into_inner();
    let dismissed = app
        .seed()
        .file_objection(auth(&dept, objection(&ids[1], "李四")))
        .await
        .unwrap()
        .into_inner();
    app.seed()
        .resolve_objection(auth(
            OFFICE_TOKEN,
            pb::ResolveObjectionRequest {
                idempotency_key: key(),
                objection_id: upheld.id.clone(),
                upheld: true,
                reason: "经核查属实".into(),
            },
        ))
        .await
        .unwrap();
    app.seed()
        .resolve_objection(auth(
            OFFICE_TOKEN,
            pb::ResolveObjectionRequest {
                idempotency_key: key(),
                objection_id: dismissed.id.clone(),
                upheld: false,
                reason: "经核查不属实".into(),
            },
        ))
        .await
        .unwrap();
    let removed = app
        .schools()
        .get_school(auth(
            &leader,
            pb::GetSchoolRequest {
                school_id: ids[0].clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (removed.state.as_str(), removed.state_label.as_str()),
        ("removed", "因异议成立移出名单")
    );

    // The office approves the application and gives it a supplementary notice.
    let reviewed = app
        .seed()
        .review_application(auth(
            OFFICE_TOKEN,
            pb::ReviewApplicationRequest {
                idempotency_key: key(),
                application_id: application.id.clone(),
                decision: pb::Decision::Approve as i32,
                reason: "复核通过".into(),
                expected_version: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reviewed.status, "approved");
    let supplementary = app
        .seed()
        .publish_notice(auth(
            OFFICE_TOKEN,
            pb::PublishNoticeRequest {
                idempotency_key: key(),
                campaign_id: id.clone(),
                kind: pb::NoticeKind::SeedSupplementary as i32,
                school_ids: vec![applicant.id.clone()],
                title: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();

    // The phase cannot complete while notices run; the refusal lists what is open.
    let s = expect_code(
        app.campaigns()
            .complete_phase(auth(
                OFFICE_TOKEN,
                pb::CompletePhaseRequest {
                    idempotency_key: key(),
                    campaign_id: id.clone(),
                    phase: pb::Phase::SeedDesignation as i32,
                },
            ))
            .await,
        Code::FailedPrecondition,
    );
    assert!(s.message().contains("公示期未结束"), "{}", s.message());
    // Closing a notice early is refused.
    expect_code(
        app.seed()
            .close_notice(auth(
                OFFICE_TOKEN,
                pb::CloseNoticeRequest {
                    idempotency_key: key(),
                    notice_id: notice.id.clone(),
                },
            ))
            .await,
        Code::FailedPrecondition,
    );

    // After the application milestone (2020-04-10), applying is refused, naming it.
    app.advance("2020-04-11T10:00:00+08:00").await;
    let s = expect_code(
        app.seed()
            .submit_application(auth(
                &late_token,
                pb::SubmitApplicationRequest {
                    idempotency_key: key(),
                    school_id: late_applicant.id.clone(),
                    expected_version: 0,
                    self_assessment: all_scores(&camp),
                    statement: "申请".into(),
                },
            ))
            .await,
        Code::FailedPrecondition,
    );
    assert!(
        s.message().contains("application_deadline") && s.message().contains("2020-04-10 24:00"),
        "{}",
        s.message()
    );
    // Late objections are refused.
    expect_code(
        app.seed()
            .file_objection(auth(&dept, objection(&ids[2], "王五")))
            .await,
        Code::FailedPrecondition,
    );

    for n in [&notice, &supplementary] {
        let closed = app
            .seed()
            .close_notice(auth(
                OFFICE_TOKEN,
                pb::CloseNoticeRequest {
                    idempotency_key: key(),
                    notice_id: n.id.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(closed.status, "ended");
    }
    let c = app
        .campaigns()
        .complete_phase(auth(
            OFFICE_TOKEN,
            pb::CompletePhaseRequest {
                idempotency_key: key(),
                campaign_id: id.clone(),
                phase: pb::Phase::SeedDesignation as i32,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        phase(&c, pb::Phase::SeedDesignation).status,
        pb::PhaseStatus::Completed as i32
    );
    let list = |state: &str| pb::ListSchoolsRequest {
        campaign_id: id.clone(),
        state: state.into(),
        page_size: 1000,
        ..Default::default()
    };
    let seeds = app
        .schools()
        .list_schools(auth(&leader, list("seed")))
        .await
        .unwrap()
        .into_inner()
        .schools;
    let mut seed_ids: Vec<&str> = seeds.iter().map(|s| s.id.as_str()).collect();
    seed_ids.sort();
    let mut expected: Vec<&str> = ids[1..]
        .iter()
        .map(String::as_str)
        .chain([applicant.id.as_str()])
        .collect();
    expected.sort();
    assert_eq!(
        seed_ids, expected,
        "the five nominees left after the upheld objection plus the approved applicant"
    );
    let potential = app
        .schools()
        .list_schools(auth(&leader, list("potential")))
        .await
        .unwrap()
        .into_inner()
        .schools;
    assert_eq!(potential.len(), 34);

    // Phase 2: each seed school has a presentation obligation.
    app.campaigns()
        .open_phase(auth(
            OFFICE_TOKEN,
            pb::OpenPhaseRequest {
                idempotency_key: key(),
                campaign_id: id.clone(),
                phase: pb::Phase::MentorSelection as i32,
            },
        ))
        .await
        .unwrap();
    let obligations = app
        .campaigns()
        .list_obligations(auth(
            &leader,
            pb::ListObligationsRequest {
                campaign_id: id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .obligations;
    assert_eq!(
        obligations
            .iter()
            .filter(|o| o.kind == "submit_presentation")
            .count(),
        6
    );

    // The office appoints the phase-2 panel: two departments and a high-school principal, as
    // many as mentor.min_raters (3).
    let raters = app
        .mentor_panel(
            &id,
            &[
                ("评议组甲", pb::Affiliation::Department, ""),
                ("评议组乙", pb::Affiliation::Department, ""),
                ("评议组丙", pb::Affiliation::HighSchool, ""),
            ],
        )
        .await;
    let mut tokens = Vec::new();
    for s in &seeds {
        tokens.push(app.token(&s.name, pb::Role::School, &s.id).await);
    }
    // Seeds 0 and 1 declare practices on two indicators; seed 2 only on one; seed 3 on two but
    // one is rejected; seed 4 will get a "good"; seed 5 never presents.
    let practice = |ind: &str, t: &str| pb::PracticeDeclaration {
        indicator: ind.into(),
        title: t.into(),
        description: format!("{t}的具体做法"),
    };
    let plans = [
        vec![
            practice("teachers", "青蓝工程"),
            practice("culture", "书香校园"),
        ],
        vec![
            practice("teaching", "小组合作学习"),
            practice("management", "扁平化管理"),
        ],
        vec![
            practice("teachers", "名师工作室"),
            practice("teachers", "教研共同体"),
        ],
        vec![
            practice("students", "五育并举"),
            practice("recognition", "家校共育"),
        ],
        vec![
            practice("mechanism", "全员育人导师制"),
            practice("culture", "传统文化进校园"),
        ],
    ];
    let mut presentations = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        let p = app
            .mentor()
            .submit_presentation(auth(
                &tokens[i],
                pb::SubmitPresentationRequest {
                    idempotency_key: key(),
                    school_id: seeds[i].id.clone(),
                    expected_version: 0,
                    document_ref: format!("doc://presentations/{i}.pdf"),
                    document_sha256: "ab".repeat(32),
                    practices: plan.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        presentations.push(p);
    }
    let ratings = |r: pb::Rating| -> Vec<pb::IndicatorRating> {
        camp.indicators
            .iter()
            .map(|i| pb::IndicatorRating {
                indicator: i.code.clone(),
                rating: r as i32,
            })
            .collect()
    };
    for (i, p) in presentations.iter().enumerate() {
        for (m, token) in raters.iter().enumerate() {
            let mut rs = ratings(pb::Rating::Excellent);
            if i == 4 && m == 1 {
                rs[3].rating = pb::Rating::Good as i32;
            }
            let verdicts = p
                .practices
                .iter()
                .enumerate()
                .map(|(k, pr)| pb::PracticeVerdict {
                    practice_id: pr.id.clone(),
                    accepted: !(i == 3 && k == 1),
                })
                .collect();
            app.mentor()
                .rate_presentation(auth(
                    token,
                    pb::RatePresentationRequest {
                        idempotency_key: key(),
                        school_id: seeds[i].id.clone(),
                        ratings: rs,
                        verdicts,
                    },
                ))
                .await
                .unwrap();
        }
    }

    // The deadline passes with the list unconfirmed: refused, then extended with a reason.
    app.advance("2020-06-01T09:00:00+08:00").await;
    let confirm = || pb::ConfirmMentorsRequest {
        idempotency_key: key(),
        campaign_id: id.clone(),
        overrides: vec![],
    };
    let s = expect_code(
        app.mentor()
            .confirm_mentors(auth(OFFICE_TOKEN, confirm()))
            .await,
        Code::FailedPrecondition,
    );
    assert!(
        s.message().contains("2020-05-31 24:00") && s.message().contains("mentor_selection"),
        "{}",
        s.message()
    );
    let c = app
        .campaigns()
        .get_campaign(auth(
            &leader,
            pb::GetCampaignRequest {
                campaign_id: id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(phase(&c, pb::Phase::MentorSelection).overdue);
    expect_code(
        app.campaigns()
            .extend_deadline(auth(
                OFFICE_TOKEN,
                pb::ExtendDeadlineRequest {
                    idempotency_key: key(),
                    campaign_id: id.clone(),
                    phase: pb::Phase::MentorSelection as i32,
                    milestone: String::new(),
                    new_last_day: "2020-06-10".into(),
                    reason: String::new(),
                },
            ))
            .await,
        Code::InvalidArgument,
    );
    let c = app
        .campaigns()
        .extend_deadline(auth(
            OFFICE_TOKEN,
            pb::ExtendDeadlineRequest {
                idempotency_key: key(),
                campaign_id: id.clone(),
                phase: pb::Phase::MentorSelection as i32,
                milestone: String::new(),
                new_last_day: "2020-06-10".into(),
                reason: "疫情影响，展示汇报延期".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        phase(&c, pb::Phase::MentorSelection).window_end,
        "2020-06-10"
    );
    assert!(!phase(&c, pb::Phase::MentorSelection).overdue);

    let proposal = app
        .mentor()
        .propose_mentors(auth(
            &leader,
            pb::ProposeMentorsRequest {
                campaign_id: id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mentor_of = |r: &pb::ProposeMentorsResponse, s: &pb::School| {
        r.proposals
            .iter()
            .find(|p| p.school_id == s.id)
            .unwrap()
            .clone()
    };
    assert!(mentor_of(&proposal, &seeds[0]).mentor);
    assert!(mentor_of(&proposal, &seeds[1]).mentor);
    assert!(
        !mentor_of(&proposal, &seeds[2]).mentor,
        "practices on one indicator only"
    );
    assert!(
        mentor_of(&proposal, &seeds[2])
            .explanation
            .contains("覆盖 1 项指标")
    );
    assert!(
        !mentor_of(&proposal, &seeds[3]).mentor,
        "one practice rejected"
    );
    assert!(
        mentor_of(&proposal, &seeds[4])
            .explanation
            .contains("教学质量（2/3优秀）"),
        "{}",
        mentor_of(&proposal, &seeds[4]).explanation
    );
    assert!(!mentor_of(&proposal, &seeds[5]).mentor);

    // The office confirms, promoting seed 3 with a reason; an override without one is refused.
    let bad = pb::ConfirmMentorsRequest {
        idempotency_key: key(),
        campaign_id: id.clone(),
        overrides: vec![pb::MentorOverride {
            school_id: seeds[3].id.clone(),
            mentor: true,
            reason: String::new(),
        }],
    };
    let s = expect_code(
        app.mentor().confirm_mentors(auth(OFFICE_TOKEN, bad)).await,
        Code::InvalidArgument,
    );
    assert_eq!(violations(&s), vec!["overrides[0].reason"]);
    let good = pb::ConfirmMentorsRequest {
        idempotency_key: key(),
        campaign_id: id.clone(),
        overrides: vec![pb::MentorOverride {
            school_id: seeds[3].id.clone(),
            mentor: true,
            reason: "家校共育做法经复议认可".into(),
        }],
    };
    let confirmed = app
        .mentor()
        .confirm_mentors(auth(OFFICE_TOKEN, good))
        .await
        .unwrap()
        .into_inner();
    assert!(confirmed.confirmed);
    let mentors = app
        .schools()
        .list_schools(auth(&leader, list("mentor")))
        .await
        .unwrap()
        .into_inner()
        .schools;
    let mut got: Vec<&str> = mentors.iter().map(|s| s.id.as_str()).collect();
    got.sort();
    let mut want = vec![
        seeds[0].id.as_str(),
        seeds[1].id.as_str(),
        seeds[3].id.as_str(),
    ];
    want.sort();
    assert_eq!(got, want);

    // The mentor-list export lists the confirmed mentors, the office's promotion included,
    // with the basis recorded at confirmation.
    let csv = app
        .sheets()
        .export(auth(
            &leader,
            pb::ExportRequest {
                campaign_id: id.clone(),
                document: pb::Document::MentorList as i32,
                format: pb::FileFormat::Csv as i32,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let text = String::from_utf8(csv.content).unwrap();
    let rows: Vec<Vec<&str>> = text
        .trim_start_matches('\u{feff}')
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let mut listed: Vec<&str> = rows.iter().map(|r| r[2]).collect();
    listed.sort();
    let mut names = vec![
        seeds[0].name.as_str(),
        seeds[1].name.as_str(),
        seeds[3].name.as_str(),
    ];
    names.sort();
    assert_eq!(listed, names, "{text}");
    let promoted = rows.iter().find(|r| r[2] == seeds[3].name).unwrap();
    assert!(
        promoted[6].starts_with("督导室调整：家校共育做法经复议认可；"),
        "{text}"
    );

    let collection = app
        .mentor()
        .get_practice_collection(auth(
            &leader,
            pb::GetPracticeCollectionRequest {
                campaign_id: id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let teachers = collection
        .groups
        .iter()
        .find(|g| g.indicator.as_ref().unwrap().code == "teachers")
        .unwrap();
    assert_eq!(teachers.practices.len(), 3);
    assert!(
        collection.markdown.contains("## 教师专业成长") && collection.markdown.contains("青蓝工程")
    );
    assert!(
        !collection.markdown.contains("### 家校共育"),
        "the rejected practice is not in the collection"
    );

    let c = app
        .campaigns()
        .complete_phase(auth(
            OFFICE_TOKEN,
            pb::CompletePhaseRequest {
                idempotency_key: key(),
                campaign_id: id.clone(),
                phase: pb::Phase::MentorSelection as i32,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        phase(&c, pb::Phase::MentorSelection).status,
        pb::PhaseStatus::Completed as i32
    );

    // The audit trail of the removed school tells its story, with who and why.
    let audit = app
        .campaigns()
        .list_audit_events(auth(
            &leader,
            pb::ListAuditEventsRequest {
                campaign_id: id.clone(),
                school_id: ids[0].clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .events;
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "school.registered",
            "school.nominated",
            "school.listed",
            "objection.filed",
            "school.removed",
            "school.role_assigned"
        ]
    );
    let removal = &audit[4];
    assert_eq!(removal.reason, "经核查属实");
    assert_eq!(removal.role, pb::Role::Office as i32);
    assert!(removal.before_json.contains("listed") && removal.after_json.contains("removed"));
    let ext = app
        .campaigns()
        .list_audit_events(auth(
            &leader,
            pb::ListAuditEventsRequest {
                campaign_id: id.clone(),
                page_size: 1000,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(
        ext.iter()
            .any(|e| e.action == "deadline.extended" && e.reason == "疫情影响，展示汇报延期")
    );
}
