//! Upgrades (issue #13 item 6): the current migrations apply to a database that an earlier
//! release's migrations created and that holds data, the data survives unchanged, and the
//! current code works on the upgraded schema.
//!
//! Two starting points, each in its own database:
//!
//! - **the previous landed release** (commit [`PREVIOUS_RELEASE`]): its migration files *as they
//!   were released* (`git show`), so editing a released migration fails here (sqlx refuses a
//!   changed checksum) as it would in production. Skipped, with a note, when git or that commit is
//!   not available (a tarball or a shallow clone).
//! - **one migration back**: every current file except the newest, so the newest migration is
//!   always applied to data even while it is still unreleased.
//!
//! The data is real: a scratch database (fully migrated) gets the Changle campaign, its 40
//! schools, tokens and an opened phase through the API; every table the old schema has is
//! copied into the old database (its columns only), plus scheduler rows. After the upgrade every
//! old column of every old row must be unchanged, the audit log still append-only, and the
//! current server must read the campaign and write through the API.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use futures::StreamExt as _;
use junheng_proto::v1 as pb;
use junheng_proto::v1::admin_service_client::AdminServiceClient;
use junheng_proto::v1::campaign_service_client::CampaignServiceClient;
use junheng_proto::v1::school_service_client::SchoolServiceClient;
use junheng_proto::v1::seed_service_client::SeedServiceClient;
use junheng_store::PgPool;
use junheng_tests::{App, OFFICE_TOKEN, at, auth, changle, key};
use junheng_workflow::ClockMode;
use serde_json::Value;
use sqlx::migrate::Migrator;
use tonic::transport::Channel;

/// The last landed release; its migrations are the starting point of the first upgrade.
const PREVIOUS_RELEASE: &str = "0078e54";
const MIGRATIONS: &str = "services/store/migrations";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The current migration files, sorted (sqlx orders by version, the number before `_`).
fn current_migrations() -> Vec<(String, String)> {
    let dir = workspace().join(MIGRATIONS);
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("read the migrations directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).expect("read migration"))
        })
        .collect();
    files.sort();
    files
}

/// The previous release's migration files with their released contents, or why not.
fn released_migrations() -> Result<Vec<(String, String)>, String> {
    let git = |args: &[&str]| -> Result<String, String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(workspace())
            .args(args)
            .output()
            .map_err(|e| format!("git not runnable: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let listing = git(&[
        "ls-tree",
        "--name-only",
        PREVIOUS_RELEASE,
        &format!("{MIGRATIONS}/"),
    ])?;
    let mut files = Vec::new();
    for path in listing.lines().filter(|l| l.ends_with(".sql")) {
        let name = path.rsplit('/').next().unwrap().to_string();
        files.push((name, git(&["show", &format!("{PREVIOUS_RELEASE}:{path}")])?));
    }
    if files.is_empty() {
        return Err(format!("no migrations at {PREVIOUS_RELEASE}"));
    }
    files.sort();
    Ok(files)
}

/// An empty database in the test server.
async fn empty_db() -> PgPool {
    let admin = std::env::var("DATABASE_URL").expect("DATABASE_URL (the test command sets it)");
    let name = format!("jh_upgrade_{}", uuid::Uuid::new_v4().simple());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let opts = sqlx::postgres::PgConnectOptions::from_str(&admin)
        .expect("DATABASE_URL parses")
        .database(&name);
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect_with(opts)
        .await
        .expect("connect to the new database")
}

/// Applies exactly these migration files (written to a temporary directory).
async fn apply(pool: &PgPool, files: &[(String, String)]) {
    let dir = std::env::temp_dir().join(format!("jh-migrations-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, sql) in files {
        std::fs::write(dir.join(name), sql).unwrap();
    }
    let migrator = Migrator::new(dir.clone())
        .await
        .expect("old migrations load");
    migrator.run(pool).await.expect("old migrations apply");
    std::fs::remove_dir_all(&dir).ok();
}

/// Table → its columns, in the public schema (tables only: a view holds no rows to copy).
async fn columns(pool: &PgPool) -> BTreeMap<String, BTreeSet<String>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.table_name::text, c.column_name::text
         FROM information_schema.columns c
         JOIN information_schema.tables t USING (table_schema, table_name)
         WHERE c.table_schema = 'public' AND c.table_name <> '_sqlx_migrations'
           AND t.table_type = 'BASE TABLE'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (t, c) in rows {
        out.entry(t).or_default().insert(c);
    }
    out
}

/// Every row of every listed table, as JSON with only the listed columns, sorted.
async fn snapshot(
    pool: &PgPool,
    tables: &BTreeMap<String, BTreeSet<String>>,
) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for (table, cols) in tables {
        let rows: Vec<Value> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT to_jsonb(t) FROM {table} t"
        )))
        .fetch_all(pool)
        .await
        .unwrap();
        let mut rows: Vec<String> = rows
            .into_iter()
            .map(|mut r| {
                r.as_object_mut().unwrap().retain(|k, _| cols.contains(k));
                r.to_string()
            })
            .collect();
        rows.sort();
        out.insert(table.clone(), rows);
    }
    out
}

/// A scratch database at the current schema with a campaign in progress, made through the API.
async fn scratch() -> (App, String) {
    let app = App::spawn(ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    })
    .await;
    let (camp, schools) = changle(&app).await;
    assert_eq!(schools.len(), 40);
    app.token("业务科室", pb::Role::Department, "").await;
    app.token(&schools[0].name, pb::Role::School, &schools[0].id)
        .await;
    app.campaigns()
        .open_phase(auth(
            OFFICE_TOKEN,
            pb::OpenPhaseRequest {
                idempotency_key: key(),
                campaign_id: camp.id.clone(),
                phase: pb::Phase::SeedDesignation as i32,
            },
        ))
        .await
        .expect("open phase 1");
    (app, camp.id)
}

/// Copies every table the old database has from the scratch database (old columns only).
async fn copy_data(from: &PgPool, to: &PgPool, tables: &BTreeMap<String, BTreeSet<String>>) {
    let mut conn = to.acquire().await.unwrap();
    // Rows arrive in any order: foreign keys and triggers are not checked while copying.
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut *conn)
        .await
        .unwrap();
    let mut source = from.acquire().await.unwrap();
    for (table, cols) in tables {
        // COPY in PostgreSQL's text format: every type (jsonb `null`, xid8, bytea, arrays) as is.
        let cols = cols.iter().cloned().collect::<Vec<_>>().join(", ");
        let mut out = source
            .copy_out_raw(&format!("COPY (SELECT {cols} FROM {table}) TO STDOUT"))
            .await
            .unwrap_or_else(|e| panic!("copy {table} out: {e}"));
        let mut data = Vec::new();
        while let Some(chunk) = out.next().await {
            data.extend_from_slice(&chunk.unwrap());
        }
        drop(out);
        let mut copy_in = conn
            .copy_in_raw(&format!("COPY {table} ({cols}) FROM STDIN"))
            .await
            .unwrap_or_else(|e| panic!("copy {table} in: {e}"));
        copy_in.send(data).await.unwrap();
        copy_in
            .finish()
            .await
            .unwrap_or_else(|e| panic!("copy {table} in: {e}"));
    }
    sqlx::query("SET session_replication_role = DEFAULT")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("SELECT setval('events_id_seq', (SELECT max(id) FROM events))")
        .execute(&mut *conn)
        .await
        .unwrap();
}

/// Scheduler rows as the old release wrote them (the tables exist since 0002).
async fn scheduler_rows(pool: &PgPool, campaign: &str) {
    let campaign = uuid::Uuid::parse_str(campaign).unwrap();
    let sent = uuid::Uuid::new_v4();
    let pending = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO outbox (id, dedupe_key, campaign_id, kind, endpoint, recipient, payload,
                             not_before, status, attempts, created_at, sent_at)
         VALUES ($1, 'summary:seed_designation:office:mail', $3, 'phase_summary', 'mail',
                 'role:office', '{\"title\": \"阶段小结\"}', '2020-03-02T01:00:00Z', 'sent', 1,
                 '2020-03-02T01:00:00Z', '2020-03-02T01:00:02Z'),
                ($2, 'reminder:x:2020-03-05:school:mail', $3, 'reminder', 'mail',
                 'role:office', '{\"title\": \"提醒\"}', '2020-03-05T00:30:00Z', 'pending', 0,
                 '2020-03-02T01:00:00Z', NULL)",
    )
    .bind(sent)
    .bind(pending)
    .bind(campaign)
    .execute(pool)
    .await
    .expect("outbox rows");
    sqlx::query(
        "INSERT INTO delivery_attempts (outbox_id, attempt, worker, started_at, finished_at, outcome, detail)
         VALUES ($1, 1, 'scheduler-1', '2020-03-02T01:00:01Z', '2020-03-02T01:00:02Z', 'delivered', '250 OK')",
    )
    .bind(sent)
    .execute(pool)
    .await
    .expect("attempt row");
    sqlx::query(
        "INSERT INTO scheduler_cursors (campaign_id, kind, event_xid, event_id, planned_at)
         VALUES ($1, 'events', '1', 1, '2020-03-02T01:00:00Z')",
    )
    .bind(campaign)
    .execute(pool)
    .await
    .expect("cursor row");
}

/// Starts from `old`, upgrades with the current migrator and checks everything.
async fn upgrade_from(label: &str, old: &[(String, String)], scratch: &App, campaign: &str) {
    let all = current_migrations();
    let pool = empty_db().await;
    apply(&pool, old).await;
    let old_tables = columns(&pool).await;
    for t in ["campaigns", "schools", "events", "tokens", "outbox"] {
        assert!(
            old_tables.contains_key(t),
            "{label}: the old schema has no {t}"
        );
    }
    copy_data(&scratch.pool, &pool, &old_tables).await;
    scheduler_rows(&pool, campaign).await;
    let before = snapshot(&pool, &old_tables).await;
    assert_eq!(before["schools"].len(), 40, "{label}: schools copied");

    junheng_store::MIGRATOR
        .run(&pool)
        .await
        .unwrap_or_else(|e| panic!("{label}: the current migrations refuse the old database: {e}"));
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        applied as usize,
        all.len(),
        "{label}: every migration applied"
    );

    // Append-only: every old column of every old row is as it was; no table disappeared.
    let after = snapshot(&pool, &old_tables).await;
    for (table, rows) in &before {
        let now = &after[table];
        if let Some(changed) = rows.iter().find(|r| !now.contains(r)) {
            panic!(
                "{label}: the upgrade changed rows of {table} ({} before, {} after); \
                 this one is gone or changed:\n{changed}",
                rows.len(),
                now.len()
            );
        }
        // Rows a migration adds (seed data) are allowed; old rows must all be there, unchanged.
    }
    let new_tables = columns(&pool).await;
    for (table, cols) in &old_tables {
        let now = new_tables
            .get(table)
            .unwrap_or_else(|| panic!("{label}: the upgrade dropped table {table}"));
        let gone: Vec<_> = cols.difference(now).collect();
        assert!(
            gone.is_empty(),
            "{label}: the upgrade dropped {table}.{gone:?}"
        );
    }
    // A delivery the old release recorded as an attempt row reads once through the log (0023).
    let log: Vec<(i32, String, String)> = sqlx::query_as(
        "SELECT l.attempt, l.worker, l.outcome FROM delivery_log l JOIN outbox o ON o.id = l.outbox_id
         WHERE o.dedupe_key = 'summary:seed_designation:office:mail'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        log,
        [(1, "scheduler-1".to_owned(), "delivered".to_owned())],
        "{label}: the old attempt is in the delivery log"
    );
    let refused = sqlx::query("UPDATE events SET actor = 'x'")
        .execute(&pool)
        .await;
    assert!(
        refused.is_err(),
        "{label}: the audit log is still append-only"
    );
    // The events written before the chain existed were chained from the genesis (0008).
    let id = uuid::Uuid::parse_str(campaign).unwrap();
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE campaign_id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let chain = junheng_store::audit::verify(&mut conn, id).await.unwrap();
    assert_eq!(chain.broken, None, "{label}: the upgraded chain verifies");
    assert_eq!(chain.checked, events, "{label}: every old event is chained");
    assert!(events > 0, "{label}: old events were copied");
    drop(conn);

    // The current code on the upgraded schema: reads the old campaign and writes through it.
    let server = junheng_workflow::spawn(
        pool.clone(),
        ClockMode::Simulated {
            start: Some(at("2020-03-02T09:00:00+08:00")),
        },
    )
    .await
    .expect("the current server starts on the upgraded database");
    let channel = Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let listed = SchoolServiceClient::new(channel.clone())
        .list_schools(auth(
            OFFICE_TOKEN,
            pb::ListSchoolsRequest {
                campaign_id: campaign.into(),
                page_size: 1000,
                ..Default::default()
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{label}: list schools after the upgrade: {e}"))
        .into_inner()
        .schools;
    assert_eq!(listed.len(), 40, "{label}: the old schools are served");
    let camp = CampaignServiceClient::new(channel.clone())
        .get_campaign(auth(
            OFFICE_TOKEN,
            pb::GetCampaignRequest {
                campaign_id: campaign.into(),
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{label}: get campaign after the upgrade: {e}"))
        .into_inner();
    assert_eq!(camp.id, campaign);
    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    let dept = AdminServiceClient::new(channel.clone())
        .issue_token(auth(
            OFFICE_TOKEN,
            pb::IssueTokenRequest {
                idempotency_key: key(),
                name: "升级后的业务科室".into(),
                role: pb::Role::Department as i32,
                school_id: String::new(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{label}: issue a token after the upgrade: {e}"))
        .into_inner()
        .token;
    AdminServiceClient::new(channel.clone())
        .advance_clock(auth(
            OFFICE_TOKEN,
            pb::AdvanceClockRequest {
                idempotency_key: key(),
                to: Some(junheng_tests::ts(at("2020-03-03T09:00:00+08:00"))),
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{label}: advance the clock after the upgrade: {e}"));
    // A school command in the campaign the old release opened: state, audit, obligations.
    let nominated = SeedServiceClient::new(channel)
        .nominate(auth(
            &dept,
            pb::NominateRequest {
                idempotency_key: key(),
                school_id: listed[0].id.clone(),
                expected_version: listed[0].version,
                basis: "对照评价标准达标".into(),
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{label}: nominate after the upgrade: {e}"))
        .into_inner();
    assert_eq!(nominated.id, listed[0].id);
    assert_ne!(
        nominated.state, listed[0].state,
        "{label}: the nomination moved the school"
    );
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        events_after > events_before,
        "{label}: writes after the upgrade are audited"
    );
    // The scheduler's newest statuses and tables are there for the old rows.
    sqlx::query("UPDATE outbox SET status = 'parked' WHERE status = 'pending'")
        .execute(&pool)
        .await
        .unwrap_or_else(|e| panic!("{label}: the current outbox statuses: {e}"));
    server.shutdown().await.expect("server stops");
}

#[tokio::test]
async fn current_migrations_upgrade_a_database_with_data() {
    let all = current_migrations();
    assert!(all.len() >= 2, "at least two migrations");
    let (app, campaign) = scratch().await;

    match released_migrations() {
        Ok(released) => {
            // Append-only: the released files are still there, unchanged (sqlx would refuse a
            // changed checksum below too; this says which file).
            for (name, sql) in &released {
                let now = all.iter().find(|(n, _)| n == name);
                assert!(now.is_some(), "released migration {name} was removed");
                assert!(
                    now.is_some_and(|(_, s)| s == sql),
                    "released migration {name} was edited; add a new file instead"
                );
            }
            let label = format!(
                "from {PREVIOUS_RELEASE} ({} of {} migrations)",
                released.len(),
                all.len()
            );
            upgrade_from(&label, &released, &app, &campaign).await;
        }
        Err(why) => eprintln!(
            "note: skipping the upgrade from {PREVIOUS_RELEASE} (its migrations are not available: {why}); \
             the one-migration-back upgrade still runs"
        ),
    }
    let back = &all[..all.len() - 1];
    let label = format!("one migration back (without {})", all[all.len() - 1].0);
    upgrade_from(&label, back, &app, &campaign).await;
}
