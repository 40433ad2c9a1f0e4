//! Planning against a real PostgreSQL: reminders, re-check at send time, extension,
//! overdue, notice expiry, quiet hours, digest and the phase summary. Time is always explicit.

mod common;

use std::sync::Arc;

use common::*;
use junheng_scheduler::{NoWorkflow, Scheduler, SignClock};
use serde_json::json;

async fn scheduler(
    db: &TestDb,
    settings: Arc<junheng_scheduler::Settings>,
    wf: Arc<dyn junheng_scheduler::Workflow>,
) -> Scheduler {
    Scheduler::new(db.pool.clone(), settings, wf)
        .unwrap()
        .with_sign_clock(SignClock::Tick)
}

/// Waits until every event is past the snapshot horizon. Followers read an event only once no
/// older transaction runs anywhere in the cluster, and the other tests run beside this one, so
/// a tick right after inserting an event could otherwise miss it (only delay it: the next tick
/// would see it).
async fn events_visible(pool: &sqlx::PgPool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !sqlx::query_scalar::<_, Option<bool>>(
        "SELECT bool_and(xid < pg_snapshot_xmin(pg_current_snapshot())) FROM events",
    )
    .fetch_one(pool)
    .await
    .unwrap()
    .unwrap_or(true)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "events never became visible"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn titles(r: &[Received]) -> Vec<String> {
    r.iter()
        .map(|x| x.body["title"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn reminders_fall_at_the_offsets_and_only_for_open_obligations() {
    let db = TestDb::new().await;
    let sink = webhook_sink().await;
    let campaign = seed_campaign(&db.pool).await;
    let school = add_school(
        &db.pool,
        campaign,
        "3707250001",
        "昌乐二中",
        "enrolled",
        json!([]),
    )
    .await;
    let done_school = add_school(
        &db.pool,
        campaign,
        "3707250002",
        "宝城小学",
        "enrolled",
        json!([]),
    )
    .await;
    // Deadline: end of 2020-04-10 (a Friday), i.e. 2020-04-11 00:00 local.
    let due = local(2020, 4, 11, 0, 0);
    let open = add_obligation(
        &db.pool,
        campaign,
        Obl {
            kind: "submit_presentation",
            school: Some(school),
            owner_role: "school",
            owner_school: Some(school),
            due,
            subject: "提交汇报材料",
            created: local(2020, 3, 1, 0, 0),
        },
    )
    .await;
    let done = add_obligation(
        &db.pool,
        campaign,
        Obl {
            kind: "submit_presentation",
            school: Some(done_school),
            owner_role: "school",
            owner_school: Some(done_school),
            due,
            subject: "提交汇报材料",
            created: local(2020, 3, 1, 0, 0),
        },
    )
    .await;
    sqlx::query("UPDATE obligations SET status = 'done', closed_at = $2 WHERE id = $1")
        .bind(done)
        .bind(local(2020, 3, 20, 0, 0))
        .execute(&db.pool)
        .await
        .unwrap();

    let s = scheduler(
        &db,
        settings(&format!("{}/hook", sink.uri()), ""),
        Arc::new(NoWorkflow),
    )
    .await;
    // Before the 7-day occasion (04-03 08:30): nothing.
    let r = s.tick(local(2020, 4, 3, 8, 29)).await.unwrap();
    assert_eq!(r.plan.planned, 0);
    // 7 days before the last day, in the morning.
    let r = s.tick(local(2020, 4, 3, 8, 30)).await.unwrap();
    assert_eq!((r.plan.planned, r.dispatch.sent), (1, 1), "{r:?}");
    // Ticking again (or from another replica) plans nothing new.
    let r = s.tick(local(2020, 4, 3, 12, 0)).await.unwrap();
    assert_eq!((r.plan.planned, r.dispatch.sent), (0, 0));
    s.tick(local(2020, 4, 7, 8, 30)).await.unwrap();
    s.tick(local(2020, 4, 9, 8, 30)).await.unwrap();
    s.tick(local(2020, 4, 10, 8, 30)).await.unwrap();
    let got = received(&sink).await;
    assert_eq!(
        titles(&got),
        vec![
            "【提醒】提交汇报材料距截止还有7天",
            "【提醒】提交汇报材料距截止还有3天",
            "【提醒】提交汇报材料距截止还有1天",
            "【提醒】提交汇报材料今日截止"
        ]
    );
    assert!(
        got[3].body["text"]
            .as_str()
            .unwrap()
            .contains("您负责的“提交汇报材料”今日截止（2020年4月10日24时）。"),
        "the morning of the last day: {}",
        got[3].body
    );
    assert!(
        got[0].body["text"]
            .as_str()
            .unwrap()
            .contains("2020年4月10日24时"),
        "{}",
        got[0].body
    );
    let rows = outbox_rows(&db.pool).await;
    assert!(
        rows.iter().all(|r| r.2 == format!("school:{school}")),
        "only the open obligation's owner: {rows:?}"
    );
    let _ = open;
}

#[tokio::test]
async fn done_work_is_not_reminded_even_when_already_queued() {
    let db = TestDb::new().await;
    let sink = webhook_sink().await;
    let campaign = seed_campaign(&db.pool).await;
    let school = add_school(
        &db.pool,
        campaign,
        "3707250001",
        "昌乐二中",
        "enrolled",
        json!([]),
    )
    .await;
    let ob = add_obligation(
        &db.pool,
        campaign,
        Obl {
            kind: "submit_presentation",
            school: Some(school),
            owner_role: "school",
            owner_school: Some(school),
            due: local(2020, 4, 11, 0, 0),
            subject: "提交汇报材料",
            created: local(2020, 3, 1, 0, 0),
        },
    )
    .await;
    let settings = settings(&format!("{}/hook", sink.uri()), "");
    let planner = junheng_scheduler::Planner::new(settings.clone(), Arc::new(NoWorkflow));
    let now = local(2020, 4, 9, 8, 30);
    assert_eq!(planner.plan(&db.pool, now).await.unwrap().planned, 1);
    // The school submits between planning and sending.
    sqlx::query("UPDATE obligations SET status = 'done', closed_at = $2 WHERE id = $1")
        .bind(ob)
        .bind(now)
        .execute(&db.pool)
        .await
        .unwrap();
    let s = scheduler(&db, settings, Arc::new(NoWorkflow)).await;
    let r = s.dispatcher().drain(now, 5).await.unwrap();
    assert_eq!((r.sent, r.cancelled), (0, 1));
    assert!(received(&sink).await.is_empty());
    let rows = outbox_rows(&db.pool).await;
    assert_eq!(rows[0].4, "cancelled");
    assert_eq!(rows[0].6.as_deref(), Some("obligation is done"));
}

#[tokio::test]
async fn an_extension_cancels_stale_reminders_and_replans() {
    let db = TestDb::new().await;
    let sink = webhook_sink().await;
    let campaign = seed_campaign(&db.pool).await;
    let school = add_school(
        &db.pool,
        campaign,
        "3707250001",
        "昌乐二中",
        "enrolled",
        json!([]),
    )
    .await;
    let ob = add_obligation(
        &db.pool,
        campaign,
        Obl {
            kind: "submit_presentation",
            school: Some(school),
            owner_role: "school",
            owner_school: Some(school),
            due: local(2020, 4, 11, 0, 0),
            subject: "提交汇报材料",
            created: local(2020, 3, 1, 0, 0),
        },
    )
    .await;
    let settings = settings(&format!("{}/hook", sink.uri()), "");
    let planner = junheng_scheduler::Planner::new(settings.clone(), Arc::new(NoWorkflow));
    let s = scheduler(&db, settings, Arc::new(NoWorkflow)).await;
    // The 1-day reminder is queued, then the office extends the deadline to the end of 04-20.
    planner
        .plan(&db.pool, local(2020, 4, 9, 8, 30))
        .await
        .unwrap();
    sqlx::query("UPDATE obligations SET due_at = $2 WHERE id = $1")
        .bind(ob)
        .bind(local(2020, 4, 21, 0, 0))
        .execute(&db.pool)
        .await
        .unwrap();
    let r = s.tick(local(2020, 4, 9, 8, 31)).await.unwrap();
    assert_eq!(
        (r.dispatch.sent, r.dispatch.cancelled, r.plan.planned),
        (0, 1, 0),
        "{r:?}"
    );
    // New occasions follow the new deadline: 7 days before 04-20 is 04-13.
    let r = s.tick(local(2020, 4, 13, 8, 30)).await.unwrap();
    assert_eq!((r.plan.planned, r.dispatch.sent), (1, 1));
    let got = received(&sink).await;
    assert_eq!(titles(&got), vec!["【提醒】提交汇报材料距截止还有7天"]);
    assert!(
        got[0].body["text"]
            .as_str()
            .unwrap()
            .contains("2020年4月20日24时")
    );
    let rows = outbox_rows(&db.pool).await;
    assert_eq!(rows[0].6.as_deref(), Some("deadline moved; re-planned"));
}

#[tokio::test]
async fn overdue_tells_the_owner_and_the_office_once_and_respects_quiet_hours() {
    let db = TestDb::new().await;
    let sink = webhook_sink().await;
    let campaign = seed_campaign(&db.pool).await;
    let school = add_school(
        &db.pool,
        campaign,
        "3707250001",
        "昌乐二中",
        "enrolled",
        json!([]),
    )
    .await;
    // Last day Wednesday 2020-04-08; due Thursday 00:00, which is inside quiet hours.
    let due = local(2020, 4, 9, 0, 0);
    add_obligation(
        &db.pool,
        campaign,
        Obl {
            kind: "submit_presentation",
            school: Some(school),
            owner_role: "school",
            owner_school: Some(school),
            due,
            subject: "提交汇报材料",
            created: local(2020, 4, 8, 9, 0),
        },
    )
    .await;
    let s = scheduler(
        &db,
        settings(&format!("{}/hook", sink.uri()), ""),
        Arc::new(NoWorkflow),
    )
    .await;
    let r = s.tick(local(2020, 4, 9, 0, 5)).await.unwrap();
    assert_eq!(
        (r.plan.planned, r.dispatch.sent),
        (2, 0),
        "held until 08:00: {r:?}"
    );
    assert!(outbox_rows(&db.pool).await.iter().all(|r| r.4 == "held"));
    let r = s.tick(local(2020, 4, 9, 8, 0)).await.unwrap();
    assert_eq!(r.dispatch.sent, 2);
    let r = s.tick(local(2020, 4, 10, 9, 0)).await.unwrap();
    assert_eq!(
        (r.plan.planned, r.dispatch.sent),
        (0, 0),
        "overdue is sent once per deadline"
    );
    let rows = outbox_rows(&db.pool).await;
    let mut recipients: Vec<_> = rows.iter().map(|r| (r.1.as_str(), r.2.clone())).collect();
    recipients.sort();
    assert_eq!(
        recipients,
        vec![
            ("overdue", "role:office".to_string()),
            ("overdue", format!("school:{school}"))
        ]
    );
    let got = received(&sink).await;
    let mut t = titles(&got);
    t.sort();
    assert_eq!(
        t,
        [
            "【逾期】提交汇报材料超过截止时间1天", // to the school
            "【逾期】昌乐二中的提交汇报材料超过截止时间1天", // to the office
        ]
    );
}

#[tokio::test]
async fn quiet_hours_hold_a_chat_message_but_not_an_email() {
    let db = TestDb::new().await;
    let sink = webhook_sink().await;
    // The real SMTP server (aiosmtpd), as in the notify crate's tests.
    let smtp = Aiosmtpd::start();
    let campaign = seed_campaign(&db.pool).await;
    add_obligation(
        &db.pool,
        campaign,
        Obl {
            kind: "review_application",
            school: None,
            owner_role: "office",
            owner_school: None,
            due: local(2020, 4, 9, 0, 0),
            subject: "审核自主申报",
            created: local(2020, 4, 1, 0, 0),
        },
    )
    .await;
    let extra = format!(
        "{}\n[recipients]\noffice = [\"hook\", \"mail\"]\n",
        smtp.toml("mail")
    );
    let s = scheduler(
        &db,
        settings(&format!("{}/hook", sink.uri()), &extra),
        Arc::new(NoWorkflow),
    )
    .await;
    // The overdue message falls at 00:00, inside quiet hours, on both channels.
    let r = s.tick(local(2020, 4, 9, 0, 30)).await.unwrap();
    assert_eq!((r.plan.planned, r.dispatch.sent), (2, 1), "{r:?}");
    assert!(received(&sink).await.is_empty(), "chat waits");
    let mails = smtp.wait_for(1);
    assert_eq!(mails.len(), 1, "e-mail goes out in quiet hours");

    // Decode what the real server stored: the RFC 2047 subject and both parts.
    let raw = &mails[0];
    let raw_text = String::from_utf8_lossy(raw);
    assert!(raw_text.contains("Subject: =?utf-8?"), "{raw_text}");
    let parsed = mail_parser::MessageParser::default().parse(raw).unwrap();
    assert_eq!(
        parsed.subject(),
        Some("【逾期】审核自主申报超过截止时间1天")
    );
    let text = parsed.body_text(0).unwrap().replace("\r\n", "\n");
    assert!(
        text.contains("您负责的“审核自主申报”已于2020年4月8日24时截止，目前已逾期1天。"),
        "{text}"
    );
    let html = parsed.body_html(0).unwrap();
    assert!(
        html.contains("您负责的“<b>审核自主申报</b>”已于2020年4月8日24时截止"),
        "{html}"
    );
    assert!(raw_text.contains("multipart/alternative"), "{raw_text}");
    let mail_row = outbox_rows(&db.pool)
        .await
        .into_iter()
        .find(|r| r.3 == "mail")
        .unwrap();
    assert_eq!(
        parsed.message_id(),
        Some(format!("{}@junheng.example", mail_row.0).as_str()),
        "the outbox id is the Message-ID"
    );

    let r = s.tick(local(2020, 4, 9, 8, 0)).await.unwrap();
    assert_eq!(r.dispatch.sent, 1);
    assert_eq!(received(&sink).await.len(), 1);
}

#[tokio::test]
async fn notice_expiry_tells_office_and_schools_and_closes_through_the_workflow() {
    let db = TestDb::new().await;
    let sink = webhook_sink().await;
    let campaign = seed_campaign(&db.pool).await;
    let a = add_school(
        &db.pool,
        campaign,
        "3707250001",
        "昌乐二中",
        "listed",
        json!([]),
    )
    .await;
    let b = add_school(
        &db.pool,
        campaign,
        "3707250002",
        "宝城小学",
        "listed",
        json!([]),
    )
    .await;
    let notice = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO notices (id, campaign_id, kind, title, starts_at, ends_at, last_day, created_at) VALUES ($1, $2, 'candidates', '标杆种子校候选名单公示', $3, $4, '2020-04-14', $3)")
        .bind(notice)
        .bind(campaign)
        .bind(local(2020, 4, 8, 9, 0))
        .bind(local(2020, 4, 15, 0, 0))
        .execute(&db.pool)
        .await
        .unwrap();
    for (i, s) in [a, b].iter().enumerate() {
        sqlx::query(
            "INSERT INTO notice_schools (notice_id, school_id, ordinal) VALUES ($1, $2, $3)",
        )
        .bind(notice)
        .bind(s)
        .bind(i as i32 + 1)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    let wf = Arc::new(FakeWorkflow {
        fail_first: std::sync::Mutex::new(1),
        ..Default::default()
    });
    let s = scheduler(
        &db,
        settings(&format!("{}/hook", sink.uri()), ""),
        wf.clone(),
    )
    .await;
    assert_eq!(
        s.tick(local(2020, 4, 14, 23, 59))
            .await
            .unwrap()
            .plan
            .planned,
        0
    );
    // Ends at 00:00: announced (held to 08:00 for chat); the first close attempt fails.
    let r = s.tick(local(2020, 4, 15, 0, 1)).await.unwrap();
    assert_eq!((r.plan.planned, r.plan.notices_closed), (3, 0));
    let err: Option<String> =
        sqlx::query_scalar("SELECT last_error FROM notice_expiries WHERE notice_id = $1")
            .bind(notice)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(err.unwrap().contains("Unavailable"));
    // Next tick retries the close, plans nothing twice.
    let r = s.tick(local(2020, 4, 15, 8, 0)).await.unwrap();
    assert_eq!(
        (r.plan.planned, r.plan.notices_closed, r.dispatch.sent),
        (0, 1, 3)
    );
    let r = s.tick(local(2020, 4, 15, 9, 0)).await.unwrap();
    assert_eq!(r.plan.notices_closed, 0);
    let calls = wf.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    assert!(
        calls
            .iter()
            .all(|(id, key)| *id == notice && key == &format!("scheduler:close-notice:{notice}"))
    );
    let got = received(&sink).await;
    assert_eq!(got.len(), 3);
    let texts: Vec<(String, String)> =
        sqlx::query_as("SELECT recipient, payload->>'text' FROM outbox ORDER BY recipient")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    for (recipient, text) in &texts {
        if recipient == "role:office" {
            assert!(
                text.contains("1. 昌乐二中") && text.contains("2. 宝城小学"),
                "{text}"
            );
        } else {
            let own = if *recipient == format!("school:{a}") {
                "昌乐二中"
            } else {
                "宝城小学"
            };
            assert!(
                text.contains(&format!("{own}在名单中（名单共2所学校）")),
                "{text}"
            );
        }
    }
    let mut recipients: Vec<String> = outbox_rows(&db.pool)
        .await
        .into_iter()
        .map(|r| r.2)
        .collect();
    recipients.sort();
    let mut want = vec![
        "role:office".to_string(),
        format!("school:{a}"),
        format!("school:{b}"),
    ];
    want.sort();
    assert_eq!(recipients, want);
}

/// One notice to 500 schools: the list is rendered and stored once (in the office copy), each
/// school's row is small and names that school, and every school is sent its own message. (The
/// planning cost at two sizes is measured by `junheng-bench planning`, not timed here.)
#[tokio::test]
async fn a_notice_to_500_schools_stores_its_list_once_and_tells_every_school() {
    const N: usize = 500;
    let db = TestDb::new().await;
    let sink = webhook_sink().await;
    let campaign = seed_campaign(&db.pool).await;
    let notice = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO notices (id, campaign_id, kind, title, starts_at, ends_at, last_day, created_at) VALUES ($1, $2, 'candidates', '标杆种子校候选名单公示', $3, $4, '2020-04-14', $3)")
        .bind(notice)
        .bind(campaign)
        .bind(local(2020, 4, 8, 9, 0))
        .bind(local(2020, 4, 15, 9, 0))
        .execute(&db.pool)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..N {
        let id = add_school(
            &db.pool,
            campaign,
            &format!("37072{i:05}"),
            &format!("测试学校{i:03}号"),
            "listed",
            json!([]),
        )
        .await;
        sqlx::query(
            "INSERT INTO notice_schools (notice_id, school_id, ordinal) VALUES ($1, $2, $3)",
        )
        .bind(notice)
        .bind(id)
        .bind(i as i32 + 1)
        .execute(&db.pool)
        .await
        .unwrap();
        ids.push(id);
    }
    let s = scheduler(
        &db,
        settings(&format!("{}/hook", sink.uri()), ""),
        Arc::new(FakeWorkflow::default()),
    )
    .await;
    // 09:01 on a working day: nothing is held; planned and sent in one tick.
    let r = s.tick(local(2020, 4, 15, 9, 1)).await.unwrap();
    assert_eq!(r.plan.planned, N as u64 + 1);
    assert_eq!(r.dispatch.sent as usize, N + 1);

    let rows: Vec<(String, String, String, i32)> = sqlx::query_as(
        "SELECT recipient, status, payload::text, octet_length(payload::text) FROM outbox",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), N + 1);
    let office: Vec<_> = rows.iter().filter(|r| r.0 == "role:office").collect();
    assert_eq!(office.len(), 1);
    for i in 0..N {
        let name = format!("测试学校{i:03}号");
        assert!(office[0].2.contains(&name), "the office copy lists {name}");
        // The name appears in the office copy and in that school's own row, nowhere else.
        let holding = rows.iter().filter(|r| r.2.contains(&name)).count();
        assert_eq!(holding, 2, "{name} is stored in {holding} rows");
    }
    let mut total = 0;
    for (i, id) in ids.iter().enumerate() {
        let recipient = format!("school:{id}");
        let own: Vec<_> = rows.iter().filter(|r| r.0 == recipient).collect();
        assert_eq!(own.len(), 1, "{recipient}");
        let (_, status, payload, bytes) = own[0];
        assert_eq!(status, "sent");
        assert!(
            payload.contains(&format!("测试学校{i:03}号在名单中（名单共{N}所学校）")),
            "{payload}"
        );
        assert!(*bytes < 2_000, "a school's row holds {bytes} bytes");
        total += *bytes as i64;
    }
    assert!(
        total < 2 * office[0].3 as i64 * 10,
        "the school rows together ({total} bytes) are of the order of the one list, not N of it"
    );
    let got = received(&sink).await;
    assert_eq!(got.len(), N + 1);
    let distinct: std::collections::HashSet<&str> = got.iter().map(|g| g.id.as_str()).collect();
    assert_eq!(distinct.len(), N + 1, "each message once");
}

#[tokio::test]
async fn daily_digest_runs_on_the_cron_in_campaign_time_and_collapses_missed_runs() {
    let db = TestDb::new().await;
    let sink = webhook_sink().await;
    let campaign = seed_campaign(&db.pool).await;
    add_obligation(
        &db.pool,
        campaign,
        Obl {
            kind: "review_application",
            school: None,
            owner_role: "office",
            owner_school: None,
            due: local(2020, 4, 16, 0, 0),
            subject: "审核自主申报",
            created: local(2020, 4, 1, 0, 0),
        },
    )
    .await;
    let s = scheduler(
        &db,
        settings(
            &format!("{}/hook", sink.uri()),
            "[planning]\ndigests_enabled = true\n",
        ),
        Arc::new(NoWorkflow),
    )
    .await;
    // The first tick starts the digest schedule: nothing for the days before.
    let r = s.tick(local(2020, 4, 9, 16, 0)).await.unwrap();
    assert_eq!(r.plan.digests, 0);
    let r = s.tick(local(2020, 4, 9, 17, 0)).await.unwrap();
    assert_eq!(r.plan.digests, 1);
    assert_eq!(
        s.tick(local(2020, 4, 9, 17, 5)).await.unwrap().plan.digests,
        0
    );
    // Down Friday to Tuesday evening: Friday's, Monday's and Tuesday's collapse into one.
    assert_eq!(
        s.tick(local(2020, 4, 14, 18, 0))
            .await
            .unwrap()
            .plan
            .digests,
        1
    );
    let got = received(&sink).await;
    let digests: Vec<_> = got
        .iter()
        .filter(|r| {
            r.body["title"]
                .as_str()
                .unwrap()
                .starts_with("【每日汇总】")
        })
        .collect();
    assert_eq!(digests.len(), 2);
    assert_eq!(
        digests[0].body["title"],
        "【每日汇总】2020年4月9日共1项待办"
    );
    assert_eq!(
        digests[1].body["title"],
        "【每日汇总】2020年4月14日共1项待办"
    );
}

#[tokio::test]
async fn phase_completion_sends_leadership_a_summary_with_chart_and_table() {
    let db = TestDb::new().await;
    let sink = webhook_sink().await;
    let smtp = SmtpSink::start().await;
    let campaign = seed_campaign(&db.pool).await;
    add_school(
        &db.pool,
        campaign,
        "3707250001",
        "昌乐二中",
        "seed",
        json!([]),
    )
    .await;
    let baocheng = add_school(
        &db.pool,
        campaign,
        "3707250002",
        "宝城小学",
        "potential",
        json!([]),
    )
    .await;
    let zhuliu = add_school(
        &db.pool,
        campaign,
        "3707250003",
        "朱刘小学",
        "potential",
        json!([]),
    )
    .await;
    // Scores of two phases: baselines (each school's mean over its indicators: 65 and 53) and
    // acceptance results (final scores 80.5 and 61.25).
    for (school, baseline, final_score) in [
        (
            baocheng,
            json!({"teachers": 60.0, "management": 70.0}),
            80.5,
        ),
        (zhuliu, json!({"teachers": 50.0, "management": 56.0}), 61.25),
    ] {
        sqlx::query(
            "INSERT INTO baselines (school_id, campaign_id, scores, recorded_by, recorded_at)
             VALUES ($1, $2, $3, 'dept-1', $4)",
        )
        .bind(school)
        .bind(campaign)
        .bind(baseline)
        .bind(local(2020, 4, 1, 10, 0))
        .execute(&db.pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO results (school_id, campaign_id, result, computed_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(school)
        .bind(campaign)
        .bind(json!({"report": 80.0, "onsite": {}, "onsite_mean": 80.0, "final_score": final_score, "passes": {}}))
        .bind(local(2020, 4, 1, 10, 0))
        .execute(&db.pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO events (campaign_id, actor, role, action, before, after, request_id, occurred_at)
         VALUES ($1, 'office-1', 'office', 'phase.completed', '{}', $2, 'req-1', $3)",
    )
    .bind(campaign)
    .bind(json!({"kind": "seed_designation", "status": "completed", "last_day": "2020-04-30", "milestones": {}, "opened_at": null, "completed_at": null}))
    .bind(local(2020, 4, 30, 10, 0))
    .execute(&db.pool)
    .await
    .unwrap();
    events_visible(&db.pool).await;
    let extra = format!(
        "{}\n[recipients]\noffice = [\"hook\"]\nleadership = [\"hook\", \"mail\"]\n",
        smtp.toml("mail")
    );
    let s = scheduler(
        &db,
        settings(&format!("{}/hook", sink.uri()), &extra),
        Arc::new(NoWorkflow),
    )
    .await;
    let r = s.tick(local(2020, 4, 30, 10, 5)).await.unwrap();
    assert_eq!((r.plan.summaries, r.dispatch.sent), (1, 2), "{r:?}");
    assert_eq!(
        s.tick(local(2020, 4, 30, 10, 6))
            .await
            .unwrap()
            .plan
            .summaries,
        0,
        "the cursor moved"
    );
    let chat = received(&sink)
        .await
        .into_iter()
        .find(|r| {
            r.body["title"]
                .as_str()
                .unwrap()
                .starts_with("【阶段小结】")
        })
        .expect("chat summary");
    let md = chat.body["markdown"].as_str().unwrap();
    assert!(md.contains("| 状态 | 学校数 |"), "{md}");
    assert!(
        md.contains(
            "**评分统计**\n- 结对帮扶阶段基线分：共2所学校，平均59分，最低53分，最高65分\n- 验收评估阶段综合得分：共2所学校，平均70.88分，最低61.25分，最高80.5分\n"
        ),
        "{md}"
    );
    assert!(
        md.contains("| 潜力校 | 2 |") || md.contains("| 潜力学校 | 2 |") || md.contains(" | 2 |"),
        "{md}"
    );
    let mail = smtp.messages().pop().expect("summary e-mail");
    assert!(mail.contains("Content-Type: image/png"), "chart attached");
    assert!(mail.contains("multipart/related"), "inline chart");
    assert!(
        mail.contains("Content-ID: <phase-summary-counts>"),
        "{}",
        &mail[..mail.len().min(3000)]
    );
}

/// Catch-up after downtime: overdue notices and phase summaries are sent late, and say so.
/// The scheduler ticks on Wednesday 10:00, is down for a day, and ticks on Thursday 10:00.
#[tokio::test]
async fn messages_sent_late_after_downtime_say_so_and_on_time_ones_do_not() {
    let db = TestDb::new().await;
    let sink = webhook_sink().await;
    let campaign = seed_campaign(&db.pool).await;
    add_school(
        &db.pool,
        campaign,
        "3707250001",
        "昌乐二中",
        "seed",
        json!([]),
    )
    .await;
    // Both owned by the office, opened after the reminder morning: one overdue message each.
    for (kind, subject, due) in [
        ("complete_phase", "确认督导名单", local(2020, 4, 8, 10, 0)), // due as it ticks
        (
            "review_application",
            "审核自主申报",
            local(2020, 4, 8, 12, 0),
        ), // due while down
    ] {
        add_obligation(
            &db.pool,
            campaign,
            Obl {
                kind,
                school: None,
                owner_role: "office",
                owner_school: None,
                due,
                subject,
                created: local(2020, 4, 8, 9, 0),
            },
        )
        .await;
    }
    let s = scheduler(
        &db,
        settings(&format!("{}/hook", sink.uri()), ""),
        Arc::new(NoWorkflow),
    )
    .await;
    let r = s.tick(local(2020, 4, 8, 10, 0)).await.unwrap();
    assert_eq!((r.plan.planned, r.dispatch.sent), (1, 1), "{r:?}");
    // While the scheduler is down, the office completes phase 1 (Wednesday 14:00).
    sqlx::query(
        "INSERT INTO events (campaign_id, actor, role, action, before, after, request_id, occurred_at)
         VALUES ($1, 'office-1', 'office', 'phase.completed', '{}', $2, 'req-1', $3)",
    )
    .bind(campaign)
    .bind(json!({"kind": "seed_designation", "status": "completed", "last_day": "2020-04-30", "milestones": {}, "opened_at": null, "completed_at": null}))
    .bind(local(2020, 4, 8, 14, 0))
    .execute(&db.pool)
    .await
    .unwrap();
    events_visible(&db.pool).await;
    let r = s.tick(local(2020, 4, 9, 10, 0)).await.unwrap();
    assert_eq!(
        (r.plan.planned, r.plan.summaries, r.dispatch.sent),
        (2, 1, 2),
        "{r:?}"
    );

    let got = received(&sink).await;
    assert_eq!(got.len(), 3);
    let by_title = |prefix: &str| {
        got.iter()
            .find(|m| m.body["title"].as_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("no message starting with {prefix}: {got:?}"))
    };
    let part = |m: &Received, f: &str| m.body[f].as_str().unwrap().to_owned();

    // On time: no mark anywhere.
    let on_time = by_title("【逾期】确认督导名单");
    assert_eq!(
        part(on_time, "title"),
        "【逾期】确认督导名单超过截止时间1天"
    );
    assert!(
        !on_time.body.to_string().contains("补发"),
        "{}",
        on_time.body
    );

    // The overdue notice due Wednesday 12:00, planned a day later.
    let overdue = by_title("【逾期】审核自主申报");
    assert_eq!(
        part(overdue, "title"),
        "【逾期】审核自主申报超过截止时间1天（补发）"
    );
    let note = "原定于2020年4月8日12:00发送，因系统停机延后补发。";
    assert!(
        part(overdue, "text").starts_with(&format!("{note}\n县教育局督导室：\n您负责的")),
        "{}",
        overdue.body
    );
    assert!(
        part(overdue, "markdown").starts_with(&format!("> {note}\n\n")),
        "{}",
        overdue.body
    );

    // The summary of the phase completed Wednesday 14:00.
    let summary = by_title("【阶段小结】");
    assert!(
        part(summary, "title").ends_with("「确定标杆种子校」（补发）"),
        "{}",
        summary.body
    );
    assert!(
        part(summary, "text").starts_with("原定于2020年4月8日14:00发送，因系统停机延后补发。\n"),
        "{}",
        summary.body
    );
}

#[tokio::test]
async fn preview_lists_what_will_be_sent_and_when() {
    let db = TestDb::new().await;
    let campaign = seed_campaign(&db.pool).await;
    let school = add_school(
        &db.pool,
        campaign,
        "3707250001",
        "昌乐二中",
        "enrolled",
        json!([]),
    )
    .await;
    add_obligation(
        &db.pool,
        campaign,
        Obl {
            kind: "submit_presentation",
            school: Some(school),
            owner_role: "school",
            owner_school: Some(school),
            due: local(2020, 4, 11, 0, 0),
            subject: "提交汇报材料",
            created: local(2020, 3, 1, 0, 0),
        },
    )
    .await;
    let settings = settings(
        "http://127.0.0.1:9/hook",
        "[planning]\ndigests_enabled = true\n",
    );
    let items = junheng_scheduler::api::preview(
        &db.pool,
        &settings,
        campaign,
        local(2020, 4, 6, 0, 0),
        local(2020, 4, 11, 0, 0),
    )
    .await
    .unwrap();
    let seen: Vec<(String, String)> = items
        .iter()
        .map(|i| {
            (
                i.at.with_timezone(&chrono_tz::Asia::Shanghai)
                    .format("%m-%d %H:%M")
                    .to_string(),
                i.kind.clone(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("04-07 08:30", "reminder"),
        ("04-07 17:00", "daily_digest"),
        ("04-08 17:00", "daily_digest"),
        ("04-09 08:30", "reminder"),
        ("04-09 17:00", "daily_digest"),
        ("04-10 08:30", "reminder"),
        ("04-10 17:00", "daily_digest"),
        // Due Saturday 00:00: the chat overdue waits for Monday morning.
        ("04-13 08:00", "overdue"),
        ("04-13 08:00", "overdue"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(seen, want, "{items:#?}");
}
