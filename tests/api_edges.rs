//! The edges of the API: every RPC refuses malformed input with field details and changes
//! nothing; authentication; roles; idempotency under concurrency; the event stream; health,
//! reflection and the clock mode.

use futures::StreamExt;
use junheng_proto::v1 as pb;
use junheng_tests::*;
use junheng_workflow::ClockMode;
use tonic::Code;

#[tokio::test]
async fn every_rpc_refuses_malformed_requests_and_changes_nothing() {
    let app = App::spawn(ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    })
    .await;
    let (camp, schools) = changle(&app).await;
    let id = camp.id.clone();
    let o = OFFICE_TOKEN;
    let panel = app.token("验收组", pb::Role::Panel, "").await;
    let before = app.snapshot().await;
    let k = key;

    let mut bad_toml = CHANGLE_2020.replace("working_days = 5", "working_days = 0");
    bad_toml = bad_toml.replace("code = \"changle-2020\"", "code = \"changle 2020!\"");
    let s = expect_code(
        app.campaigns()
            .create_campaign(auth(
                o,
                pb::CreateCampaignRequest {
                    idempotency_key: k(),
                    definition_toml: bad_toml,
                },
            ))
            .await,
        Code::InvalidArgument,
    );
    let f = violations(&s);
    assert!(
        f.contains(&"definition_toml.notice.working_days".into())
            && f.contains(&"definition_toml.campaign.code".into()),
        "{f:?}"
    );
    assert!(s.message().contains("line "), "{}", s.message());
    assert_invalid(
        app.campaigns()
            .create_campaign(auth(
                o,
                pb::CreateCampaignRequest {
                    idempotency_key: String::new(),
                    definition_toml: CHANGLE_2020.into(),
                },
            ))
            .await,
        "idempotency_key",
    );
    assert_invalid(
        app.campaigns()
            .get_campaign(auth(
                o,
                pb::GetCampaignRequest {
                    campaign_id: "nope".into(),
                },
            ))
            .await,
        "campaign_id",
    );
    assert_invalid(
        app.campaigns()
            .open_phase(auth(
                o,
                pb::OpenPhaseRequest {
                    idempotency_key: k(),
                    campaign_id: id.clone(),
                    phase: 0,
                },
            ))
            .await,
        "phase",
    );
    assert_invalid(
        app.campaigns()
            .complete_phase(auth(
                o,
                pb::CompletePhaseRequest {
                    idempotency_key: k(),
                    campaign_id: String::new(),
                    phase: 1,
                },
            ))
            .await,
        "campaign_id",
    );
    assert_invalid(
        app.campaigns()
            .extend_deadline(auth(
                o,
                pb::ExtendDeadlineRequest {
                    idempotency_key: k(),
                    campaign_id: id.clone(),
                    phase: 1,
                    milestone: String::new(),
                    new_last_day: "2020-13-01".into(),
                    reason: "r".into(),
                },
            ))
            .await,
        "new_last_day",
    );
    assert_invalid(
        app.campaigns()
            .extend_deadline(auth(
                o,
                pb::ExtendDeadlineRequest {
                    idempotency_key: k(),
                    campaign_id: id.clone(),
                    phase: 1,
                    milestone: "nope".into(),
                    new_last_day: "2020-04-20".into(),
                    reason: "r".into(),
                },
            ))
            .await,
        "milestone",
    );
    assert_invalid(
        app.campaigns()
            .list_audit_events(auth(
                o,
                pb::ListAuditEventsRequest {
                    campaign_id: id.clone(),
                    page_size: 5000,
                    ..Default::default()
                },
            ))
            .await,
        "page_size",
    );
    assert_invalid(
        app.campaigns()
            .follow_events(auth(
                o,
                pb::FollowEventsRequest {
                    campaign_id: id.clone(),
                    cursor: "garbage".into(),
                    stop_when_caught_up: true,
                },
            ))
            .await,
        "cursor",
    );
    assert_invalid(
        app.campaigns()
            .list_obligations(auth(
                o,
                pb::ListObligationsRequest {
                    campaign_id: id.clone(),
                    school_id: "x".into(),
                    include_closed: false,
                },
            ))
            .await,
        "school_id",
    );
    assert_invalid(
        app.admin()
            .advance_clock(auth(
                o,
                pb::AdvanceClockRequest {
                    idempotency_key: k(),
                    to: None,
                },
            ))
            .await,
        "to",
    );
    assert_invalid(
        app.admin()
            .issue_token(auth(
                o,
                pb::IssueTokenRequest {
                    idempotency_key: k(),
                    name: "x".into(),
                    role: 0,
                    school_id: String::new(),
                    ..Default::default()
                },
            ))
            .await,
        "role",
    );
    assert_invalid(
        app.admin()
            .issue_token(auth(
                o,
                pb::IssueTokenRequest {
                    idempotency_key: k(),
                    name: "x".into(),
                    role: pb::Role::School as i32,
                    school_id: String::new(),
                    ..Default::default()
                },
            ))
            .await,
        "school_id",
    );
    let mut rows = demo_requests();
    rows.truncate(2);
    rows[0].code = "12345".into();
    rows[1].contacts[0].email = "not-an-email".into();
    let s = expect_code(
        app.schools()
            .register_schools(auth(
                o,
                pb::RegisterSchoolsRequest {
                    idempotency_key: k(),
                    campaign_id: id.clone(),
                    schools: rows,
                },
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violations(&s),
        vec!["schools[0].code", "schools[1].contacts[0].email"]
    );
    // A batch with one already-registered code stores none of the batch.
    let mut dup = demo_requests();
    dup.truncate(1);
    let fresh = pb::NewSchool {
        code: "3707259999".into(),
        ..dup[0].clone()
    };
    expect_code(
        app.schools()
            .register_schools(auth(
                o,
                pb::RegisterSchoolsRequest {
                    idempotency_key: k(),
                    campaign_id: id.clone(),
                    schools: vec![fresh, dup[0].clone()],
                },
            ))
            .await,
        Code::AlreadyExists,
    );
    assert_invalid(
        app.schools()
            .get_school(auth(
                o,
                pb::GetSchoolRequest {
                    school_id: "1".into(),
                },
            ))
            .await,
        "school_id",
    );
    assert_invalid(
        app.schools()
            .list_schools(auth(
                o,
                pb::ListSchoolsRequest {
                    campaign_id: id.clone(),
                    state: "flying".into(),
                    ..Default::default()
                },
            ))
            .await,
        "state",
    );
    let s0 = schools[0].id.clone();
    assert_invalid(
        app.seed()
            .nominate(auth(
                o,
                pb::NominateRequest {
                    idempotency_key: k(),
                    school_id: s0.clone(),
                    expected_version: 0,
                    basis: "  ".into(),
                },
            ))
            .await,
        "basis",
    );
    assert_invalid(
        app.seed()
            .withdraw_nomination(auth(
                o,
                pb::WithdrawNominationRequest {
                    idempotency_key: k(),
                    school_id: s0.clone(),
                    expected_version: -1,
                    reason: "r".into(),
                },
            ))
            .await,
        "expected_version",
    );
    assert_invalid(
        app.seed()
            .submit_application(auth(
                o,
                pb::SubmitApplicationRequest {
                    idempotency_key: k(),
                    school_id: s0.clone(),
                    expected_version: 0,
                    self_assessment: vec![pb::IndicatorScore {
                        indicator: "teachers".into(),
                        score: 140.0,
                        note: String::new(),
                    }],
                    statement: "s".into(),
                },
            ))
            .await,
        "self_assessment[0].score",
    );
    assert_invalid(
        app.seed()
            .review_application(auth(
                o,
                pb::ReviewApplicationRequest {
                    idempotency_key: k(),
                    application_id: uuid::Uuid::new_v4().to_string(),
                    decision: 0,
                    reason: "r".into(),
                    expected_version: 0,
                },
            ))
            .await,
        "decision",
    );
    assert_invalid(
        app.seed()
            .list_applications(auth(
                o,
                pb::ListApplicationsRequest {
                    campaign_id: "x".into(),
                },
            ))
            .await,
        "campaign_id",
    );
    assert_invalid(
        app.seed()
            .publish_notice(auth(
                o,
                pb::PublishNoticeRequest {
                    idempotency_key: k(),
                    campaign_id: id.clone(),
                    kind: 1,
                    school_ids: vec![s0.clone(), s0.clone()],
                    title: String::new(),
                },
            ))
            .await,
        "school_ids[1]",
    );
    assert_invalid(
        app.seed()
            .publish_notice(auth(
                o,
                pb::PublishNoticeRequest {
                    idempotency_key: k(),
                    campaign_id: id.clone(),
                    kind: pb::NoticeKind::Results as i32,
                    school_ids: vec![s0.clone()],
                    title: String::new(),
                },
            ))
            .await,
        "kind",
    );
    assert_invalid(
        app.seed()
            .get_notice(auth(
                o,
                pb::GetNoticeRequest {
                    notice_id: String::new(),
                },
            ))
            .await,
        "notice_id",
    );
    assert_invalid(
        app.seed()
            .list_notices(auth(
                o,
                pb::ListNoticesRequest {
                    campaign_id: String::new(),
                },
            ))
            .await,
        "campaign_id",
    );
    assert_invalid(
        app.seed()
            .file_objection(auth(
                o,
                pb::FileObjectionRequest {
                    idempotency_key: k(),
                    notice_id: uuid::Uuid::new_v4().to_string(),
                    school_id: s0.clone(),
                    objector_name: "张三".into(),
                    objector_contact: String::new(),
                    grounds: "g".into(),
                    evidence: "e".into(),
                },
            ))
            .await,
        "objector_contact",
    );
    assert_invalid(
        app.seed()
            .resolve_objection(auth(
                o,
                pb::ResolveObjectionRequest {
                    idempotency_key: k(),
                    objection_id: uuid::Uuid::new_v4().to_string(),
                    upheld: true,
                    reason: String::new(),
                },
            ))
            .await,
        "reason",
    );
    assert_invalid(
        app.seed()
            .close_notice(auth(
                o,
                pb::CloseNoticeRequest {
                    idempotency_key: k(),
                    notice_id: "n".into(),
                },
            ))
            .await,
        "notice_id",
    );
    assert_invalid(
        app.mentor()
            .submit_presentation(auth(
                o,
                pb::SubmitPresentationRequest {
                    idempotency_key: k(),
                    school_id: s0.clone(),
                    expected_version: 0,
                    document_ref: "doc".into(),
                    document_sha256: "xyz".into(),
                    practices: vec![],
                },
            ))
            .await,
        "document_sha256",
    );
    assert_invalid(
        app.mentor()
            .rate_presentation(auth(
                &panel,
                pb::RatePresentationRequest {
                    idempotency_key: k(),
                    school_id: s0.clone(),
                    ratings: vec![pb::IndicatorRating {
                        indicator: "teachers".into(),
                        rating: 0,
                    }],
                    verdicts: vec![],
                },
            ))
            .await,
        "ratings[0].rating",
    );
    let s = expect_code(
        app.mentor()
            .form_mentor_panel(auth(
                o,
                pb::FormMentorPanelRequest {
                    idempotency_key: k(),
                    campaign_id: "c".into(),
                    members: vec![pb::MentorPanelMember {
                        actor: "panel-1".into(),
                        name: " ".into(),
                        affiliation: pb::Affiliation::MentorSchool as i32,
                        school_id: "s".into(),
                    }],
                },
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violations(&s),
        vec![
            "campaign_id",
            "members[0].name",
            "members[0].affiliation",
            "members[0].school_id"
        ]
    );
    assert_invalid(
        app.mentor()
            .get_presentation(auth(
                o,
                pb::GetPresentationRequest {
                    school_id: "?".into(),
                },
            ))
            .await,
        "school_id",
    );
    assert_invalid(
        app.mentor()
            .propose_mentors(auth(
                o,
                pb::ProposeMentorsRequest {
                    campaign_id: "?".into(),
                },
            ))
            .await,
        "campaign_id",
    );
    assert_invalid(
        app.mentor()
            .confirm_mentors(auth(
                o,
                pb::ConfirmMentorsRequest {
                    idempotency_key: k(),
                    campaign_id: id.clone(),
                    overrides: vec![pb::MentorOverride {
                        school_id: "bad".into(),
                        mentor: true,
                        reason: "r".into(),
                    }],
                },
            ))
            .await,
        "overrides[0].school_id",
    );
    assert_invalid(
        app.mentor()
            .get_practice_collection(auth(
                o,
                pb::GetPracticeCollectionRequest {
                    campaign_id: String::new(),
                },
            ))
            .await,
        "campaign_id",
    );

    assert_eq!(
        app.snapshot().await,
        before,
        "refused calls changed nothing"
    );
}

#[tokio::test]
async fn authentication_roles_and_concurrent_idempotency() {
    let app = App::spawn(ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    })
    .await;
    let (camp, schools) = changle(&app).await;
    let req = pb::GetCampaignRequest {
        campaign_id: camp.id.clone(),
    };
    let s = expect_code(
        app.campaigns()
            .get_campaign(tonic::Request::new(req.clone()))
            .await,
        Code::Unauthenticated,
    );
    assert!(s.message().contains("authorization"));
    expect_code(
        app.campaigns()
            .get_campaign(auth("jh_not_a_token", req.clone()))
            .await,
        Code::Unauthenticated,
    );
    let leader = app.token("领导", pb::Role::Leader, "").await;
    app.campaigns()
        .get_campaign(auth(&leader, req))
        .await
        .unwrap();
    let open = pb::OpenPhaseRequest {
        idempotency_key: key(),
        campaign_id: camp.id.clone(),
        phase: 1,
    };
    expect_code(
        app.campaigns()
            .open_phase(auth(&leader, open.clone()))
            .await,
        Code::PermissionDenied,
    );
    app.campaigns()
        .open_phase(auth(OFFICE_TOKEN, open))
        .await
        .unwrap();

    // Ten concurrent identical nominations with one key: one effect, ten identical answers.
    let dept = app.token("业务科室", pb::Role::Department, "").await;
    let req = pb::NominateRequest {
        idempotency_key: key(),
        school_id: schools[0].id.clone(),
        expected_version: 0,
        basis: "达标".into(),
    };
    let events_before = app.count("events").await;
    let calls = (0..10).map(|_| {
        let mut c = app.seed();
        let r = auth(&dept, req.clone());
        async move { c.nominate(r).await.map(|r| r.into_inner()) }
    });
    let results: Vec<_> = futures::future::join_all(calls).await;
    let first = results[0].as_ref().expect("nominated").clone();
    for r in &results {
        assert_eq!(r.as_ref().expect("same answer"), &first);
    }
    assert_eq!(first.version, 2);
    assert_eq!(app.count("events").await, events_before + 1);

    // The simulated clock is visible; the real-clock server refuses to move it.
    let info = app
        .admin()
        .get_server_info(pb::GetServerInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.clock_mode, "simulated");
    assert!(
        !info.demo,
        "a server started without --demo is not labelled a demo"
    );
    assert_eq!(
        info.now.unwrap().seconds,
        at("2020-03-02T09:00:00+08:00").timestamp()
    );
    let real = App::spawn(ClockMode::Real).await;
    assert_eq!(
        real.admin()
            .get_server_info(pb::GetServerInfoRequest {})
            .await
            .unwrap()
            .into_inner()
            .clock_mode,
        "real"
    );
    let s = expect_code(
        real.admin()
            .advance_clock(auth(
                OFFICE_TOKEN,
                pb::AdvanceClockRequest {
                    idempotency_key: key(),
                    to: Some(ts(at("2030-01-01T00:00:00Z"))),
                },
            ))
            .await,
        Code::FailedPrecondition,
    );
    assert!(s.message().contains("simulated"));
    // Health reports the services and the clock mode.
    let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel.clone());
    for svc in ["junheng.v1.SeedService", "junheng.clock.simulated"] {
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: svc.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{svc}"
        );
    }
    for svc in ["junheng.clock.real", "junheng.demo"] {
        expect_code(
            health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: svc.into(),
                })
                .await,
            Code::NotFound,
        );
    }
}

#[tokio::test]
async fn the_event_stream_resumes_from_a_cursor_without_gaps() {
    let app = App::spawn(ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    })
    .await;
    let (camp, schools) = changle(&app).await;
    let follow = |cursor: String| pb::FollowEventsRequest {
        campaign_id: camp.id.clone(),
        cursor,
        stop_when_caught_up: true,
    };
    let all: Vec<pb::CampaignEvent> = app
        .campaigns()
        .follow_events(auth(OFFICE_TOKEN, follow(String::new())))
        .await
        .unwrap()
        .into_inner()
        .map(|e| e.unwrap())
        .collect()
        .await;
    assert_eq!(all.len(), 41, "campaign.created and 40 school.registered");
    assert_eq!(all[0].event.as_ref().unwrap().action, "campaign.created");
    // Resume from the middle: exactly the rest, in order.
    let rest: Vec<pb::CampaignEvent> = app
        .campaigns()
        .follow_events(auth(OFFICE_TOKEN, follow(all[19].cursor.clone())))
        .await
        .unwrap()
        .into_inner()
        .map(|e| e.unwrap())
        .collect()
        .await;
    assert_eq!(
        rest.iter().map(|e| e.cursor.clone()).collect::<Vec<_>>(),
        all[20..]
            .iter()
            .map(|e| e.cursor.clone())
            .collect::<Vec<_>>()
    );

    // A live follower sees events written while it waits, from many concurrent writers.
    let mut live = app
        .campaigns()
        .follow_events(auth(
            OFFICE_TOKEN,
            pb::FollowEventsRequest {
                campaign_id: camp.id.clone(),
                cursor: all.last().unwrap().cursor.clone(),
                stop_when_caught_up: false,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    app.campaigns()
        .open_phase(auth(
            OFFICE_TOKEN,
            pb::OpenPhaseRequest {
                idempotency_key: key(),
                campaign_id: camp.id.clone(),
                phase: 1,
            },
        ))
        .await
        .unwrap();
    let dept = app.token("业务科室", pb::Role::Department, "").await;
    let calls = schools.iter().take(20).map(|s| {
        let mut c = app.seed();
        let r = auth(
            &dept,
            pb::NominateRequest {
                idempotency_key: key(),
                school_id: s.id.clone(),
                expected_version: 0,
                basis: "达标".into(),
            },
        );
        async move { c.nominate(r).await.unwrap() }
    });
    futures::future::join_all(calls).await;
    let mut seen = Vec::new();
    while seen.len() < 21 {
        let ev = tokio::time::timeout(std::time::Duration::from_secs(10), live.next())
            .await
            .expect("event arrives")
            .unwrap()
            .unwrap();
        seen.push(ev.event.unwrap().action);
    }
    assert_eq!(seen[0], "phase.opened");
    assert_eq!(seen.iter().filter(|a| *a == "school.nominated").count(), 20);
}
