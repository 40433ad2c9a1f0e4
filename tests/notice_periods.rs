//! Notice periods through the gRPC API: an open notice accepts objections for its whole period
//! even past its phase's deadline, and the phase cannot close over it; a year the release does
//! not ship is created from a bureau's calendar file alone, and its notices count that file's
//! working days.

use junheng_core::calendar::{Calendars, parse_year};
use junheng_proto::v1 as pb;
use junheng_tests::*;
use junheng_workflow::ClockMode;
use tonic::Code;

async fn nominate_and_notice(app: &App, campaign: &str, school: &str) -> pb::Notice {
    let dept = app.token("业务科室", pb::Role::Department, "").await;
    app.campaigns()
        .open_phase(auth(
            OFFICE_TOKEN,
            pb::OpenPhaseRequest {
                idempotency_key: key(),
                campaign_id: campaign.into(),
                phase: pb::Phase::SeedDesignation as i32,
            },
        ))
        .await
        .unwrap();
    app.seed()
        .nominate(auth(
            &dept,
            pb::NominateRequest {
                idempotency_key: key(),
                school_id: school.into(),
                expected_version: 0,
                basis: "达标".into(),
            },
        ))
        .await
        .unwrap();
    app.seed()
        .publish_notice(auth(
            OFFICE_TOKEN,
            pb::PublishNoticeRequest {
                idempotency_key: key(),
                campaign_id: campaign.into(),
                kind: pb::NoticeKind::SeedCandidates as i32,
                school_ids: vec![school.into()],
                title: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

fn complete(campaign: &str) -> pb::CompletePhaseRequest {
    pb::CompletePhaseRequest {
        idempotency_key: key(),
        campaign_id: campaign.into(),
        phase: pb::Phase::SeedDesignation as i32,
    }
}

#[tokio::test]
async fn an_objection_on_the_last_day_of_a_notice_past_the_phase_deadline_is_accepted() {
    // Monday 2020-04-27; phase 1 ends 2020-04-30 24时. Five working days from today: 4/27–4/30,
    // then the Labour Day holiday (5/1–5/5), then 5/6: the notice runs past the phase deadline.
    let app = App::spawn(ClockMode::Simulated {
        start: Some(at("2020-04-27T09:00:00+08:00")),
    })
    .await;
    let (camp, schools) = changle(&app).await;
    let notice = nominate_and_notice(&app, &camp.id, &schools[0].id).await;
    assert_eq!(
        notice.ends_at.unwrap().seconds,
        at("2020-05-07T00:00:00+08:00").timestamp()
    );

    // The last day of the notice, six days after the phase deadline.
    app.advance("2020-05-06T16:00:00+08:00").await;
    let dept = app.token("业务科室", pb::Role::Department, "").await;
    let objection = app
        .seed()
        .file_objection(auth(
            &dept,
            pb::FileObjectionRequest {
                idempotency_key: key(),
                notice_id: notice.id.clone(),
                school_id: schools[0].id.clone(),
                objector_name: "张三".into(),
                objector_contact: "13800001111".into(),
                grounds: "办学条件未达标".into(),
                evidence: "现场照片".into(),
            },
        ))
        .await
        .expect("an open notice accepts objections for its whole period")
        .into_inner();

    // The phase cannot close over the running notice and the open objection.
    let s = expect_code(
        app.campaigns()
            .complete_phase(auth(OFFICE_TOKEN, complete(&camp.id)))
            .await,
        Code::FailedPrecondition,
    );
    assert!(
        s.message().contains("1 个公示期未结束") && s.message().contains("1 件异议待处理"),
        "{}",
        s.message()
    );

    // The office resolves it, still past the phase deadline.
    app.seed()
        .resolve_objection(auth(
            OFFICE_TOKEN,
            pb::ResolveObjectionRequest {
                idempotency_key: key(),
                objection_id: objection.id.clone(),
                upheld: false,
                reason: "经核查不属实".into(),
            },
        ))
        .await
        .expect("its resolution too");

    // The day after the notice: objections are late, the notice closes, the phase completes.
    app.advance("2020-05-07T09:00:00+08:00").await;
    let s = expect_code(
        app.seed()
            .file_objection(auth(
                &dept,
                pb::FileObjectionRequest {
                    idempotency_key: key(),
                    notice_id: notice.id.clone(),
                    school_id: schools[0].id.clone(),
                    objector_name: "李四".into(),
                    objector_contact: "13800002222".into(),
                    grounds: "理由".into(),
                    evidence: "材料".into(),
                },
            ))
            .await,
        Code::FailedPrecondition,
    );
    assert!(
        s.message().contains("notice period ended"),
        "{}",
        s.message()
    );
    app.seed()
        .close_notice(auth(
            OFFICE_TOKEN,
            pb::CloseNoticeRequest {
                idempotency_key: key(),
                notice_id: notice.id.clone(),
            },
        ))
        .await
        .unwrap();
    app.campaigns()
        .complete_phase(auth(OFFICE_TOKEN, complete(&camp.id)))
        .await
        .expect("completing late, once nothing is open");
}

/// A made-up year: 县庆 on Wednesday–Friday 3/5–3/7, Saturday 3/8 worked.
const Y2031: &str = r#"
year = 2031

[[holidays]]
name = "县庆"
off = ["2031-03-05", "2031-03-06", "2031-03-07"]
working = ["2031-03-08"]
"#;

fn definition_2031() -> String {
    CHANGLE_2020
        .replace("2020-", "2031-")
        .replace("year = 2020", "year = 2031")
}

fn create(def: String) -> pb::CreateCampaignRequest {
    pb::CreateCampaignRequest {
        idempotency_key: key(),
        definition_toml: def,
    }
}

#[tokio::test]
async fn a_year_with_only_a_data_file_is_created_and_counts_its_working_days() {
    // Without the file the year is refused, naming it and the file to add.
    let bare = App::spawn(ClockMode::Simulated {
        start: Some(at("2031-03-03T09:00:00+08:00")),
    })
    .await;
    let s = expect_code(
        bare.campaigns()
            .create_campaign(auth(OFFICE_TOKEN, create(definition_2031())))
            .await,
        Code::InvalidArgument,
    );
    assert!(
        violations(&s).contains(&"definition_toml.phases.seed_designation".to_string()),
        "{s:?}"
    );
    assert!(
        s.message()
            .contains("no working-day calendar data for 2031: add deploy/calendars/2031.toml"),
        "{}",
        s.message()
    );

    // The loader the service starts with, reading a bureau's directory.
    let dir = std::env::temp_dir().join(format!("junheng-calendars-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("2031.toml"), Y2031).unwrap();
    let years: Calendars = junheng_workflow::calendars::load(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        years.year(2031),
        Some(&parse_year(Y2031, "2031.toml").unwrap())
    );

    let app = App::spawn_with_calendars(
        ClockMode::Simulated {
            start: Some(at("2031-03-03T09:00:00+08:00")),
        },
        years,
    )
    .await;
    let camp = app
        .campaigns()
        .create_campaign(auth(OFFICE_TOKEN, create(definition_2031())))
        .await
        .expect("a year with only a data file")
        .into_inner();
    let schools = app
        .schools()
        .register_schools(auth(
            OFFICE_TOKEN,
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
    // Monday 3/3, Tuesday 3/4, Saturday 3/8 (worked), Monday 3/10, Tuesday 3/11: the notice's
    // last day is 3/11 (without 县庆 it would be Friday 3/7).
    let notice = nominate_and_notice(&app, &camp.id, &schools[0].id).await;
    assert_eq!(
        notice.ends_at.unwrap().seconds,
        at("2031-03-12T00:00:00+08:00").timestamp()
    );
}

#[tokio::test]
async fn one_objector_files_at_most_three_objections_against_a_notice() {
    let app = App::spawn(ClockMode::Simulated {
        start: Some(at("2020-04-07T09:00:00+08:00")),
    })
    .await;
    let (camp, schools) = changle(&app).await;
    let notice = nominate_and_notice(&app, &camp.id, &schools[0].id).await;
    let dept = app.token("业务科室", pb::Role::Department, "").await;
    let file = |contact: &'static str| {
        let (app, dept, notice, school) = (&app, &dept, notice.id.clone(), schools[0].id.clone());
        async move {
            app.seed()
                .file_objection(auth(
                    dept,
                    pb::FileObjectionRequest {
                        idempotency_key: key(),
                        notice_id: notice,
                        school_id: school,
                        objector_name: "张三".into(),
                        objector_contact: contact.into(),
                        grounds: "办学条件未达标".into(),
                        evidence: "现场照片".into(),
                    },
                ))
                .await
        }
    };
    for _ in 0..3 {
        file("13800001111")
            .await
            .expect("up to three from one objector");
    }
    let before = app.snapshot().await;
    let s = expect_code(file(" 13800001111").await, Code::FailedPrecondition);
    assert!(
        s.message().contains("at most 3 objections"),
        "{}",
        s.message()
    );
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused objection changes nothing"
    );
    // Another objector is not held to the first one's count.
    file("13900002222").await.expect("another objector");
}
