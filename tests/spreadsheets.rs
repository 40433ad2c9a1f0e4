//! Phases 3–5 and spreadsheet RPCs at the edge: malformed requests and wrong roles are refused
//! and change nothing; imports are all-or-nothing with row-level errors; GBK CSV imports.

use junheng_proto::v1 as pb;
use junheng_tests::*;
use junheng_workflow::ClockMode;
use tonic::Code;

#[tokio::test]
async fn new_rpcs_refuse_malformed_requests_and_wrong_roles_and_change_nothing() {
    let app = App::spawn(ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    })
    .await;
    let (camp, schools) = changle(&app).await;
    let id = camp.id.clone();
    let o = OFFICE_TOKEN;
    let panel = app.token("评委", pb::Role::Panel, "").await;
    let leader = app.token("领导", pb::Role::Leader, "").await;
    let s0 = schools[0].id.clone();
    let before = app.snapshot().await;

    assert_invalid(
        app.pairing()
            .propose_pairing(auth(
                o,
                pb::ProposePairingRequest {
                    campaign_id: "x".into(),
                },
            ))
            .await,
        "campaign_id",
    );
    assert_invalid(
        app.pairing()
            .set_pairing(auth(
                o,
                pb::SetPairingRequest {
                    idempotency_key: key(),
                    campaign_id: id.clone(),
                    groups: vec![pb::PairingGroup {
                        mentor_school_id: "m".into(),
                        potential_school_ids: vec![],
                    }],
                },
            ))
            .await,
        "groups[0].mentor_school_id",
    );
    assert_invalid(
        app.pairing()
            .get_pairing(auth(
                o,
                pb::GetPairingRequest {
                    campaign_id: String::new(),
                },
            ))
            .await,
        "campaign_id",
    );
    assert_invalid(
        app.pairing()
            .record_baseline(auth(
                o,
                pb::RecordBaselineRequest {
                    idempotency_key: key(),
                    school_id: s0.clone(),
                    scores: vec![],
                },
            ))
            .await,
        "scores",
    );
    assert_invalid(
        app.pairing()
            .log_assistance(auth(
                o,
                pb::LogAssistanceRequest {
                    idempotency_key: key(),
                    mentor_school_id: s0.clone(),
                    potential_school_id: s0.clone(),
                    date: "2020-02-30".into(),
                    indicators: vec!["teaching".into()],
                    description: "d".into(),
                    evidence_ref: String::new(),
                },
            ))
            .await,
        "date",
    );
    assert_invalid(
        app.pairing()
            .list_assistance(auth(
                o,
                pb::ListAssistanceRequest {
                    campaign_id: id.clone(),
                    mentor_school_id: "?".into(),
                },
            ))
            .await,
        "mentor_school_id",
    );
    assert_invalid(
        app.acceptance()
            .form_panel(auth(
                o,
                pb::FormPanelRequest {
                    idempotency_key: key(),
                    campaign_id: id.clone(),
                    members: vec![pb::PanelMember {
                        actor: "a".into(),
                        name: "n".into(),
                        affiliation: 0,
                        mentor_school_id: String::new(),
                    }],
                },
            ))
            .await,
        "members[0].affiliation",
    );
    assert_invalid(
        app.acceptance()
            .get_panel(auth(
                o,
                pb::GetPanelRequest {
                    campaign_id: "?".into(),
                },
            ))
            .await,
        "campaign_id",
    );
    assert_invalid(
        app.acceptance()
            .submit_scores(auth(
                &panel,
                pb::SubmitScoresRequest {
                    idempotency_key: key(),
                    school_id: s0.clone(),
                    report_score: -1.0,
                    onsite: vec![],
                },
            ))
            .await,
        "report_score",
    );
    assert_invalid(
        app.acceptance()
            .get_results(auth(
                o,
                pb::GetResultsRequest {
                    campaign_id: String::new(),
                },
            ))
            .await,
        "campaign_id",
    );
    assert_invalid(
        app.acceptance()
            .publish_results_notice(auth(
                o,
                pb::PublishResultsNoticeRequest {
                    idempotency_key: key(),
                    campaign_id: "?".into(),
                    title: String::new(),
                },
            ))
            .await,
        "campaign_id",
    );
    assert_invalid(
        app.awards()
            .propose_awards(auth(
                o,
                pb::ProposeAwardsRequest {
                    campaign_id: "?".into(),
                },
            ))
            .await,
        "campaign_id",
    );
    assert_invalid(
        app.awards()
            .confirm_awards(auth(
                o,
                pb::ConfirmAwardsRequest {
                    idempotency_key: key(),
                    campaign_id: id.clone(),
                    overrides: vec![pb::AwardOverride {
                        school_id: s0.clone(),
                        class: 0,
                        reason: "r".into(),
                    }],
                },
            ))
            .await,
        "overrides[0].class",
    );
    assert_invalid(
        app.awards()
            .list_awards(auth(o, pb::ListAwardsRequest::default()))
            .await,
        "campaign_id",
    );
    assert_invalid(
        app.sheets()
            .import_schools(auth(
                o,
                pb::ImportSchoolsRequest {
                    idempotency_key: key(),
                    campaign_id: id.clone(),
                    filename: "x.csv".into(),
                    content: vec![],
                },
            ))
            .await,
        "content",
    );
    assert_invalid(
        app.sheets()
            .export(auth(
                o,
                pb::ExportRequest {
                    campaign_id: id.clone(),
                    document: pb::Document::AwardList as i32,
                    format: pb::FileFormat::Markdown as i32,
                },
            ))
            .await,
        "format",
    );

    // Wrong roles.
    expect_code(
        app.pairing()
            .set_pairing(auth(
                &leader,
                pb::SetPairingRequest {
                    idempotency_key: key(),
                    campaign_id: id.clone(),
                    groups: vec![],
                },
            ))
            .await,
        Code::PermissionDenied,
    );
    expect_code(
        app.acceptance()
            .submit_scores(auth(
                o,
                pb::SubmitScoresRequest {
                    idempotency_key: key(),
                    school_id: s0.clone(),
                    report_score: 80.0,
                    onsite: vec![],
                },
            ))
            .await,
        Code::PermissionDenied,
    );
    expect_code(
        app.awards()
            .confirm_awards(auth(
                &panel,
                pb::ConfirmAwardsRequest {
                    idempotency_key: key(),
                    campaign_id: id.clone(),
                    overrides: vec![],
                },
            ))
            .await,
        Code::PermissionDenied,
    );
    expect_code(
        app.sheets()
            .import_schools(auth(
                &leader,
                pb::ImportSchoolsRequest {
                    idempotency_key: key(),
                    campaign_id: id.clone(),
                    filename: "x.csv".into(),
                    content: b"x".to_vec(),
                },
            ))
            .await,
        Code::PermissionDenied,
    );
    // Outside their phase: refused naming it.
    let s = expect_code(
        app.pairing()
            .propose_pairing(auth(
                o,
                pb::ProposePairingRequest {
                    campaign_id: id.clone(),
                },
            ))
            .await,
        Code::FailedPrecondition,
    );
    assert!(s.message().contains("mentor"), "{}", s.message());
    let s = expect_code(
        app.awards()
            .propose_awards(auth(
                o,
                pb::ProposeAwardsRequest {
                    campaign_id: id.clone(),
                },
            ))
            .await,
        Code::FailedPrecondition,
    );
    assert!(s.message().contains("acceptance"), "{}", s.message());

    assert_eq!(
        app.snapshot().await,
        before,
        "refused calls changed nothing"
    );
}

const HEADER: &str = "学校代码,学校名称,学段,所属镇街,校长,联系人,电子邮箱,手机号\n";

#[tokio::test]
async fn school_import_is_all_or_nothing_and_reads_gbk() {
    let app = App::spawn(ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    })
    .await;
    let (camp, _) = changle(&app).await;
    let import = |filename: &str, content: Vec<u8>| pb::ImportSchoolsRequest {
        idempotency_key: key(),
        campaign_id: camp.id.clone(),
        filename: filename.into(),
        content,
    };

    // Broken rows: every problem is reported with its spreadsheet row and column; nothing stored.
    let bad = format!(
        "{HEADER}3707259001,昌乐县营丘镇第五小学,小学,营丘镇,孙立,孙立,a@b.cn,13800000000\n12345,坏代码学校,小学,营丘镇,王,,,\n3707259003,高中部,高中,营丘镇,李,,,\n3707259001,重复学校,小学,营丘镇,赵,,,\n"
    );
    let before = app.snapshot().await;
    let s = expect_code(
        app.sheets()
            .import_schools(auth(OFFICE_TOKEN, import("schools.csv", bad.into_bytes())))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violations(&s),
        vec!["rows[3].学校代码", "rows[4].学段", "rows[5].学校代码"]
    );
    let wrong_header = "代码,名称\n1,2\n".as_bytes().to_vec();
    let s = expect_code(
        app.sheets()
            .import_schools(auth(OFFICE_TOKEN, import("schools.csv", wrong_header)))
            .await,
        Code::InvalidArgument,
    );
    assert!(s.message().contains("学校代码"), "{}", s.message());
    let latin1 = b"\xe9\xe8\xe0,\xff\xfe\n".to_vec();
    let s = expect_code(
        app.sheets()
            .import_schools(auth(OFFICE_TOKEN, import("schools.csv", latin1)))
            .await,
        Code::InvalidArgument,
    );
    assert!(
        s.message().contains("neither UTF-8 nor GBK"),
        "{}",
        s.message()
    );
    assert_eq!(app.snapshot().await, before);

    // What Excel in a Chinese locale writes: GBK.
    let good = format!(
        "{HEADER}3707259001,昌乐县营丘镇第五小学,小学,营丘镇,孙立,孙立,a@b.cn,13800000000\n3707259002,昌乐县红河镇第五小学,九年一贯制,红河镇,周敏,,,\n"
    );
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(&good);
    assert!(!unmappable);
    let r = app
        .sheets()
        .import_schools(auth(OFFICE_TOKEN, import("学校名单.csv", gbk.into_owned())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.schools.len(), 2);
    assert_eq!(r.schools[0].name, "昌乐县营丘镇第五小学");
    assert_eq!(r.schools[1].level, pb::SchoolLevel::NineYear as i32);
    assert_eq!(r.schools[0].contacts[0].mobile, "13800000000");
}
