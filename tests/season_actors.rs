//! Issue 12, the actors the plan names: departments give their opinions on self-applications
//! before the office decides (督导室协同相关业务科室), through the gRPC API, on a campaign whose
//! definition requires at least one. The awards' consequences (三、结果运用) and an office veto
//! of a mentor school are replayed in `tests/season.rs`.

use junheng_proto::v1 as pb;
use junheng_tests::*;
use junheng_workflow::ClockMode;
use tonic::Code;

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
async fn departments_give_opinions_before_the_office_decides_when_the_definition_requires_it() {
    let app = App::spawn(ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    })
    .await;
    let toml = CHANGLE_2020.replace(
        "require_department_opinion = false",
        "require_department_opinion = true",
    );
    assert_ne!(toml, CHANGLE_2020, "the shipped file states the value");
    let o = OFFICE_TOKEN;
    let camp = app
        .campaigns()
        .create_campaign(auth(
            o,
            pb::CreateCampaignRequest {
                idempotency_key: key(),
                definition_toml: toml,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let schools = app
        .schools()
        .register_schools(auth(
            o,
            pb::RegisterSchoolsRequest {
                idempotency_key: key(),
                campaign_id: camp.id.clone(),
                schools: demo_requests(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .schools;
    app.campaigns()
        .open_phase(auth(
            o,
            pb::OpenPhaseRequest {
                idempotency_key: key(),
                campaign_id: camp.id.clone(),
                phase: pb::Phase::SeedDesignation as i32,
            },
        ))
        .await
        .unwrap();
    let applicant = &schools[20];
    let school_token = app
        .token(&applicant.name, pb::Role::School, &applicant.id)
        .await;
    let basic = app.token("基础教育科", pb::Role::Department, "").await;
    let research = app.token("教研室", pb::Role::Department, "").await;
    let application = app
        .seed()
        .submit_application(auth(
            &school_token,
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
    assert!(application.department_opinions.is_empty());
    let review = |approve: bool| pb::ReviewApplicationRequest {
        idempotency_key: key(),
        application_id: application.id.clone(),
        decision: if approve {
            pb::Decision::Approve as i32
        } else {
            pb::Decision::Reject as i32
        },
        reason: "经督导室会同业务科室复核".into(),
        expected_version: 2,
    };

    // No opinion yet: the office may not decide, and the refusal names the rule.
    let before = app.snapshot().await;
    let s = expect_code(
        app.seed().review_application(auth(o, review(true))).await,
        Code::FailedPrecondition,
    );
    assert!(
        s.message().contains("seed.require_department_opinion"),
        "{}",
        s.message()
    );
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused decision changes nothing"
    );

    let opinion =
        |department: &str, agree: bool, reason: &str| pb::RecordDepartmentOpinionRequest {
            idempotency_key: key(),
            application_id: application.id.clone(),
            department: department.into(),
            agree,
            reason: reason.into(),
        };
    // Every field is checked at the edge and named; a school gives no opinion.
    let s = expect_code(
        app.seed()
            .record_department_opinion(auth(&basic, opinion(" ", true, "")))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violations(&s), vec!["department", "reason"]);
    let mut bad_id = opinion("基础教育科", true, "同意");
    bad_id.application_id = "nope".into();
    assert_invalid(
        app.seed()
            .record_department_opinion(auth(&basic, bad_id))
            .await,
        "application_id",
    );
    expect_code(
        app.seed()
            .record_department_opinion(auth(&school_token, opinion("本校", true, "同意")))
            .await,
        Code::PermissionDenied,
    );

    // Two departments give opinions; the first changes its mind (audited with before).
    app.seed()
        .record_department_opinion(auth(&basic, opinion("基础教育科", false, "材料不全")))
        .await
        .unwrap();
    app.seed()
        .record_department_opinion(auth(&research, opinion("教研室", true, "教学质量突出")))
        .await
        .unwrap();
    let shown = app
        .seed()
        .record_department_opinion(auth(&basic, opinion("基础教育科", true, "补充材料后同意")))
        .await
        .unwrap()
        .into_inner();
    let ops: Vec<(&str, bool, &str)> = shown
        .department_opinions
        .iter()
        .map(|d| (d.department.as_str(), d.agree, d.reason.as_str()))
        .collect();
    // The simulated clock stood still: opinions of one instant are listed by department.
    assert_eq!(
        ops,
        vec![
            ("基础教育科", true, "补充材料后同意"),
            ("教研室", true, "教学质量突出")
        ]
    );
    let events: Vec<(serde_json::Value, serde_json::Value)> = sqlx::query_as(
        "SELECT before, after FROM events WHERE action = 'application.opinion_recorded' AND school_id = $1::uuid ORDER BY id",
    )
    .bind(&applicant.id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(events.len(), 3);
    assert!(events[0].0.is_null());
    assert_eq!(
        events[2].0["reason"], "材料不全",
        "before = the opinion replaced"
    );
    assert_eq!(events[2].1["reason"], "补充材料后同意");

    // Now the office decides; the decision shows the opinions, and so does the list.
    let decided = app
        .seed()
        .review_application(auth(o, review(true)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decided.status, "approved");
    assert_eq!(decided.department_opinions.len(), 2);
    let listed = app
        .seed()
        .list_applications(auth(
            &research,
            pb::ListApplicationsRequest {
                campaign_id: camp.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.applications[0].department_opinions.len(), 2);
    // After the decision an opinion is too late.
    let s = expect_code(
        app.seed()
            .record_department_opinion(auth(&research, opinion("教研室", false, "迟到的意见")))
            .await,
        Code::FailedPrecondition,
    );
    assert!(s.message().contains("already approved"), "{}", s.message());
}
