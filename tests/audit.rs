//! The audit trail proves itself: the hash chain per campaign (migration 0008), verified
//! through the real server after an owner tampers with it, and the runtime role that may only
//! INSERT and SELECT on the audit table.

use std::str::FromStr;

use junheng_core::Effect;
use junheng_proto::v1 as pb;
use junheng_store::audit::{self, AuditCtx};
use junheng_tests::*;
use junheng_workflow::ClockMode;
use tonic::Code;
use uuid::Uuid;

fn sim() -> ClockMode {
    ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    }
}

async fn verify(app: &App, campaign: &str) -> pb::VerifyAuditChainResponse {
    app.campaigns()
        .verify_audit_chain(auth(
            OFFICE_TOKEN,
            pb::VerifyAuditChainRequest {
                campaign_id: campaign.into(),
            },
        ))
        .await
        .expect("verify")
        .into_inner()
}

/// Runs SQL as the owner with the append-only trigger off, as a tamperer with the owner's
/// password could.
async fn as_owner_without_trigger(app: &App, sql: &str) {
    let mut tx = app.pool.begin().await.unwrap();
    for s in [
        "ALTER TABLE events DISABLE TRIGGER events_append_only",
        sql,
        "ALTER TABLE events ENABLE TRIGGER events_append_only",
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(s.to_string()))
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    tx.commit().await.unwrap();
}

async fn event_at(app: &App, campaign: Uuid, seq: i64) -> i64 {
    sqlx::query_scalar("SELECT id FROM events WHERE campaign_id = $1 AND chain_seq = $2")
        .bind(campaign)
        .bind(seq)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_tampered_row_is_named_as_the_first_broken_link() {
    let app = App::spawn(sim()).await;
    let (camp, _) = changle(&app).await;
    let id = Uuid::parse_str(&camp.id).unwrap();
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE campaign_id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(total >= 3, "the campaign and its schools were audited");
    let v = verify(&app, &camp.id).await;
    assert!(v.intact, "{:?}", v.first_broken);
    assert_eq!(v.events_checked, total);
    assert_eq!(v.last_hash.len(), 64);

    // The owner rewrites the `before` of the second event.
    let second = event_at(&app, id, 2).await;
    as_owner_without_trigger(
        &app,
        &format!("UPDATE events SET before = '{{\"forged\": true}}' WHERE id = {second}"),
    )
    .await;
    let v = verify(&app, &camp.id).await;
    assert!(!v.intact);
    let b = v.first_broken.expect("a broken link");
    assert_eq!(b.event_id, second, "{b:?}");
    assert_eq!(b.chain_seq, 2);
    assert!(
        b.problem.contains("does not match its hash"),
        "{}",
        b.problem
    );
    assert_eq!(v.events_checked, 2);

    // A cleverer owner also recomputes that row's hash: the next event no longer links to it.
    as_owner_without_trigger(
        &app,
        &format!("UPDATE events SET hash = junheng_audit_hash(events) WHERE id = {second}"),
    )
    .await;
    let v = verify(&app, &camp.id).await;
    let b = v.first_broken.expect("a broken link");
    assert_eq!(b.event_id, event_at(&app, id, 3).await, "{b:?}");
    assert!(b.problem.contains("prev_hash"), "{}", b.problem);

    // The verifier is the office's.
    let leader = app.token("领导", pb::Role::Leader, "").await;
    expect_code(
        app.campaigns()
            .verify_audit_chain(auth(
                &leader,
                pb::VerifyAuditChainRequest {
                    campaign_id: camp.id.clone(),
                },
            ))
            .await,
        Code::PermissionDenied,
    );
    expect_code(
        app.campaigns()
            .verify_audit_chain(auth(
                OFFICE_TOKEN,
                pb::VerifyAuditChainRequest {
                    campaign_id: Uuid::now_v7().to_string(),
                },
            ))
            .await,
        Code::NotFound,
    );
    assert_invalid(
        app.campaigns()
            .verify_audit_chain(auth(
                OFFICE_TOKEN,
                pb::VerifyAuditChainRequest {
                    campaign_id: "nope".into(),
                },
            ))
            .await,
        "campaign_id",
    );
}

#[tokio::test]
async fn deleted_events_are_found_in_the_middle_and_at_the_end() {
    let app = App::spawn(sim()).await;
    for day in ["03", "04", "05", "06"] {
        app.advance(&format!("2020-03-{day}T09:00:00+08:00")).await;
    }
    let system = Uuid::nil();
    let v = verify(&app, &system.to_string()).await;
    assert!(v.intact, "{:?}", v.first_broken);
    assert_eq!(v.events_checked, 4);

    // The last event removed: every remaining link holds, but the chain head knows more.
    let last = event_at(&app, system, 4).await;
    as_owner_without_trigger(&app, &format!("DELETE FROM events WHERE id = {last}")).await;
    let v = verify(&app, &system.to_string()).await;
    let b = v.first_broken.expect("a broken link");
    assert_eq!(b.event_id, 0, "the fault is at the head: {b:?}");
    assert!(b.problem.contains("missing at the end"), "{}", b.problem);

    // One removed from the middle: the event after the gap is named.
    let second = event_at(&app, system, 2).await;
    let third = event_at(&app, system, 3).await;
    as_owner_without_trigger(&app, &format!("DELETE FROM events WHERE id = {second}")).await;
    let b = verify(&app, &system.to_string())
        .await
        .first_broken
        .expect("a broken link");
    assert_eq!(b.event_id, third, "{b:?}");
    assert!(b.problem.contains("missing"), "{}", b.problem);
}

/// Many transactions appending to one campaign at once: one chain, no fork, no gap.
#[tokio::test]
async fn concurrent_appends_never_fork_the_chain() {
    let (pool, _) = fresh_db().await;
    let campaign = Uuid::now_v7();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..5 {
                let mut tx = pool.begin().await.unwrap();
                let ctx = AuditCtx {
                    campaign,
                    actor: format!("writer-{t}"),
                    role: junheng_core::Role::Office,
                    request_id: format!("r-{t}-{i}"),
                    at: chrono::Utc::now(),
                    trace_context: None,
                };
                let ev = |n: i32| {
                    Effect::event(
                        "test.appended",
                        None,
                        serde_json::Value::Null,
                        serde_json::json!({ "writer": t, "n": n, "名": "测试" }),
                        None,
                    )
                };
                audit::apply(&mut tx, &ctx, &[ev(i), ev(i + 100)])
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut conn = pool.acquire().await.unwrap();
    let r = audit::verify(&mut conn, campaign).await.unwrap();
    assert_eq!(r.broken, None);
    assert_eq!(r.checked, 160);
    let seqs: Vec<i64> = sqlx::query_scalar(
        "SELECT chain_seq FROM events WHERE campaign_id = $1 ORDER BY chain_seq",
    )
    .bind(campaign)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(seqs, (1..=160).collect::<Vec<_>>());
}

/// The verifier's hash (Rust) and the trigger's (SQL) agree on awkward content.
#[tokio::test]
async fn the_verifier_and_the_trigger_hash_alike() {
    let (pool, _) = fresh_db().await;
    let campaign = Uuid::now_v7();
    let mut conn = pool.acquire().await.unwrap();
    let ctx = AuditCtx {
        campaign,
        actor: "office:甲".into(),
        role: junheng_core::Role::Office,
        request_id: "r\n-1".into(),
        at: at("2020-03-02T09:00:00.123456789+08:00"),
        trace_context: None,
    };
    audit::apply(
        &mut conn,
        &ctx,
        &[Effect::event(
            "odd",
            Some(junheng_core::SchoolId::now_v7()),
            serde_json::json!({ "z": 1, "a": [0.1, 1e300, -0.0, "\u{1}\"引号\\"], "中": null }),
            serde_json::json!(3.0),
            Some("理由\t1:2".into()),
        )],
    )
    .await
    .unwrap();
    let r = audit::verify(&mut conn, campaign).await.unwrap();
    assert_eq!(r.broken, None, "{r:?}");
    assert_eq!(r.checked, 1);
}

/// A login role granted as the services' runtime role in `db`.
async fn runtime_role(db: &str) -> (String, sqlx::PgPool) {
    let admin = std::env::var("DATABASE_URL").unwrap();
    let role = format!("jh_rt_{}", Uuid::new_v4().simple());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'rt'"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    let mut opts = sqlx::postgres::PgConnectOptions::from_str(&admin).unwrap();
    opts = opts.database(db);
    let owner = sqlx::PgPool::connect_with(opts.clone()).await.unwrap();
    junheng_store::grant_runtime(&owner, &role).await.unwrap();
    let rt = sqlx::postgres::PgPoolOptions::new()
        .max_connections(20)
        .connect_with(opts.username(&role).password("rt"))
        .await
        .unwrap();
    (role, rt)
}

#[tokio::test]
async fn the_runtime_role_runs_the_service_but_cannot_change_the_audit_log() {
    let (owner, db) = fresh_db().await;
    let (_, rt) = runtime_role(&db).await;
    // The whole service works as the runtime role.
    junheng_workflow::bootstrap::ensure_office_token(&rt, Some(OFFICE_TOKEN))
        .await
        .unwrap();
    let server = junheng_workflow::spawn(rt.clone(), sim()).await.unwrap();
    let channel = tonic::transport::Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let app = App {
        server,
        pool: owner,
        channel,
    };
    let (camp, _) = changle(&app).await;
    app.advance("2020-03-03T09:00:00+08:00").await;
    assert!(verify(&app, &camp.id).await.intact);

    let mut conn = rt.acquire().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut *conn)
        .await
        .expect("the runtime role reads the audit log");
    assert!(n > 0);
    // It reads every view (the scheduler's delivery log among them), as the owner does.
    let views: Vec<String> = sqlx::query_scalar(
        "SELECT viewname::text FROM pg_views WHERE schemaname = current_schema()",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert!(views.contains(&"delivery_log".to_owned()), "{views:?}");
    for v in &views {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SELECT * FROM {v} LIMIT 1")))
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("the runtime role reads the view {v}: {e}"));
    }
    for sql in [
        "UPDATE events SET action = 'forged'",
        "DELETE FROM events",
        "TRUNCATE events",
        "ALTER TABLE events DISABLE TRIGGER events_append_only",
        "ALTER TABLE events ADD COLUMN forged text",
        "DROP TRIGGER events_append_only ON events",
        "DROP TRIGGER events_chain ON events",
        "DROP TABLE events",
        "UPDATE audit_chain_heads SET seq = 0",
        "DELETE FROM audit_chain_heads",
        "CREATE TRIGGER forged BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION events_are_append_only()",
        "CREATE OR REPLACE FUNCTION junheng_audit_hash(e events) RETURNS text LANGUAGE sql AS $$ SELECT 'x' $$",
    ] {
        let err = sqlx::raw_sql(sql).execute(&mut *conn).await.expect_err(sql);
        let code = err
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.to_string());
        assert_eq!(
            code.as_deref(),
            Some("42501"),
            "{sql}: refused for lack of privilege, not for another reason: {err}"
        );
    }
    // Nothing changed: the chain still verifies.
    assert!(verify(&app, &camp.id).await.intact);
    assert!(verify(&app, &Uuid::nil().to_string()).await.intact);
}
