//! Bad recipients never stop a channel (issue #10, item 3): rows already in the outbox (as an
//! old release could have queued them, inserted here as the database owner, past every edge
//! check) with a recipient the mailer refuses — an address lettre cannot parse, one the real
//! SMTP server (aiosmtpd) refuses at RCPT with 501 or 550 — each die alone with the reason,
//! while the other messages on the same SMTP endpoint are sent and the endpoint stays enabled.

mod common;

use std::sync::Arc;

use common::*;
use junheng_scheduler::Dispatcher;
use junheng_scheduler::outbox::{self, Kind, NewRow, Payload};

fn mail_to(campaign: uuid::Uuid, i: usize, to: &str, at: chrono::DateTime<chrono::Utc>) -> NewRow {
    NewRow {
        dedupe_key: format!("bad-recipient:{i}|school|mail"),
        campaign_id: campaign,
        kind: Kind::Reminder,
        endpoint: "mail".into(),
        recipient: format!("school:{i}"),
        obligation_id: None,
        planned_due_at: None,
        payload: Payload {
            title: format!("提醒 {i}"),
            text: format!("第 {i} 条"),
            to: Some(vec![to.to_owned()]),
            ..Payload::default()
        },
        urgent: false,
        not_before: at,
        held: false,
        trace_context: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_recipient_fails_its_message_and_never_the_endpoint() {
    let db = TestDb::new().await;
    let smtp = Aiosmtpd::start();
    let campaign = seed_campaign(&db.pool).await;
    let t0 = local(2020, 4, 9, 9, 0);
    let recipients = [
        "s1@schools.changle.example",
        "not an address@@",
        "s3@schools.changle.example",
        "fail501r@schools.changle.example",
        "fail550@schools.changle.example",
        "s6@schools.changle.example",
    ];
    let rows: Vec<NewRow> = recipients
        .iter()
        .enumerate()
        .map(|(i, to)| mail_to(campaign, i, to, t0))
        .collect();
    let mut conn = db.pool.acquire().await.unwrap();
    outbox::insert(&mut conn, &rows, t0).await.unwrap();
    drop(conn);

    let settings = settings("http://127.0.0.1:9/hook", &smtp.toml("mail"));
    let d = Dispatcher::new(
        db.pool.clone(),
        settings,
        Arc::new(junheng_notify::Sender::new().unwrap()),
        "bad-recipient-test".into(),
    );
    let report = d.drain(t0, 5).await.unwrap();
    assert_eq!(report.sent, 3, "{report:?}");
    assert_eq!(smtp.wait_for(3).len(), 3);

    let by_key: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT dedupe_key, status, last_error FROM outbox WHERE endpoint = 'mail' ORDER BY dedupe_key",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(by_key.len(), 6);
    for (i, to) in recipients.iter().enumerate() {
        let (_, status, error) = &by_key[i];
        if to.starts_with('s') {
            assert_eq!(status, "sent", "{to}: {error:?}");
        } else {
            assert_eq!(status, "dead", "{to}: {error:?}");
            let error = error.as_deref().unwrap_or_default();
            assert!(error.starts_with("permanent"), "{to}: {error}");
        }
    }
    assert!(
        by_key[1]
            .2
            .as_deref()
            .unwrap_or_default()
            .contains("invalid recipient"),
        "{:?}",
        by_key[1]
    );
    assert!(
        by_key[3].2.as_deref().unwrap_or_default().contains("501"),
        "{:?}",
        by_key[3]
    );
    let disabled: i64 = sqlx::query_scalar("SELECT count(*) FROM endpoint_states")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(disabled, 0, "the shared SMTP endpoint stays enabled");

    // A later message on the same endpoint goes out as usual.
    let later = t0 + chrono::Duration::minutes(1);
    let mut conn = db.pool.acquire().await.unwrap();
    outbox::insert(
        &mut conn,
        &[mail_to(campaign, 9, "s9@schools.changle.example", later)],
        later,
    )
    .await
    .unwrap();
    drop(conn);
    assert_eq!(d.drain(later, 5).await.unwrap().sent, 1);
    assert_eq!(smtp.wait_for(4).len(), 4);
}
