//! Store-level properties against the real PostgreSQL.

use junheng_core::Effect;
use junheng_store::audit::{self, AuditCtx, Cursor};
use junheng_store::{groups, scores};
use junheng_tests::*;
use uuid::Uuid;

async fn write_event(conn: &mut sqlx::PgConnection, campaign: Uuid, action: &'static str) {
    let ctx = AuditCtx {
        campaign,
        actor: "t".into(),
        role: junheng_core::Role::Office,
        request_id: "r".into(),
        at: chrono::Utc::now(),
        trace_context: None,
    };
    audit::apply(
        conn,
        &ctx,
        &[Effect::event(
            action,
            None,
            serde_json::Value::Null,
            serde_json::Value::Null,
            None,
        )],
    )
    .await
    .unwrap();
}

/// Two writers commit out of order: the reader must not move past the first writer's event
/// before it commits (the gap a plain `id > cursor` reader would leave). Appends to one
/// campaign's chain are serialised, so the first writer takes its (lower) transaction id with
/// a write elsewhere and appends to the campaign only after the second writer committed.
#[tokio::test]
async fn followers_never_skip_an_event_committed_out_of_order() {
    let (pool, _) = fresh_db().await;
    let campaign = Uuid::now_v7();
    let mut a = pool.begin().await.unwrap();
    write_event(&mut a, Uuid::now_v7(), "elsewhere").await; // takes the lower xid
    let mut b = pool.begin().await.unwrap();
    write_event(&mut b, campaign, "second").await;
    b.commit().await.unwrap();

    let mut conn = pool.acquire().await.unwrap();
    let visible = audit::follow(&mut conn, campaign, Cursor::default(), 100)
        .await
        .unwrap();
    assert!(
        visible.is_empty(),
        "the second event must wait for the first transaction: {visible:?}"
    );
    write_event(&mut a, campaign, "first").await; // the higher id, the lower xid
    a.commit().await.unwrap();
    // Visible once every older transaction in the cluster has finished (tests running beside
    // this one may hold one for a moment), so poll briefly instead of assuming an instant.
    let mut visible = Vec::new();
    for _ in 0..100 {
        visible = audit::follow(&mut conn, campaign, Cursor::default(), 100)
            .await
            .unwrap();
        if visible.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        visible
            .iter()
            .map(|e| e.action.as_str())
            .collect::<Vec<_>>(),
        ["first", "second"]
    );
}

#[tokio::test]
async fn the_audit_log_is_append_only() {
    let (pool, _) = fresh_db().await;
    let mut conn = pool.acquire().await.unwrap();
    write_event(&mut conn, Uuid::now_v7(), "x").await;
    for sql in [
        "UPDATE events SET action = 'y'",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let err = sqlx::raw_sql(sql).execute(&mut *conn).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
}

/// A score map is read typed: a stored value that is not `indicator → number` is an error
/// naming its column, not a silently defaulted map (issue #8).
#[tokio::test]
async fn unreadable_score_maps_are_errors_naming_the_column() {
    use junheng_core::CaseState;
    use junheng_core::values::SchoolCode;
    use junheng_store::{StoreError, campaigns, schools};
    let (pool, _) = fresh_db().await;
    let mut conn = pool.acquire().await.unwrap();
    let now = chrono::Utc::now();
    let row = campaigns::CampaignRow {
        id: Uuid::now_v7(),
        code: "scores".into(),
        county: "长乐区".into(),
        year: 2020,
        time_zone: "Asia/Shanghai".into(),
        definition: serde_json::json!({}),
        definition_sha256: "0".repeat(64),
        phases: serde_json::json!([]),
        mentors_confirmed_at: None,
        results_notice_id: None,
        results_final_at: None,
        awards_confirmed_at: None,
        created_at: now,
    };
    campaigns::insert(&mut conn, &row).await.unwrap();
    let campaign = row.campaign_id();
    let school = schools::insert_many(
        &mut conn,
        campaign,
        &[schools::NewSchool {
            code: SchoolCode::parse("3501230001").unwrap(),
            name: "城关小学".into(),
            level: "primary".into(),
            town: "城关镇".into(),
            principal: "王校长".into(),
            contacts: serde_json::json!([]),
        }],
        CaseState::Paired,
        now,
    )
    .await
    .unwrap()[0]
        .id;
    let good: junheng_core::scoring::IndicatorScores = [("I1".to_string(), 80.5)].into();
    groups::upsert_baseline(&mut conn, campaign, school, &good, "t", now)
        .await
        .unwrap();
    assert_eq!(
        groups::baselines(&mut conn, campaign).await.unwrap(),
        vec![(school, good)]
    );
    sqlx::query("UPDATE baselines SET scores = '{\"I1\": \"high\"}' WHERE school_id = $1")
        .bind(school.as_uuid())
        .execute(&mut *conn)
        .await
        .unwrap();
    match groups::baselines(&mut conn, campaign).await {
        Err(StoreError::Corrupt(m)) => assert!(m.contains("baselines.scores"), "{m}"),
        other => panic!("expected a corrupt baseline, got {other:?}"),
    }
    sqlx::query(
        "INSERT INTO acceptance_scores (school_id, member, campaign_id, report, onsite, scored_at) VALUES ($1, 'm', $2, 90, '[1, 2]', now())",
    )
    .bind(school.as_uuid())
    .bind(campaign.as_uuid())
    .execute(&mut *conn)
    .await
    .unwrap();
    match scores::scores_of(&mut conn, school).await {
        Err(StoreError::Corrupt(m)) => assert!(m.contains("acceptance_scores.onsite"), "{m}"),
        other => panic!("expected a corrupt score sheet, got {other:?}"),
    }
}
