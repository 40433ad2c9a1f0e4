//! Store-level properties against the real PostgreSQL.

use junheng_core::Effect;
use junheng_store::audit::{self, AuditCtx, Cursor};
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
