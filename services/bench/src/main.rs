//! `junheng-bench [transitions]`: school-case transitions per second through the real gRPC
//! server at 1, 8 and 32 concurrent clients on distinct schools, next to the raw-SQL ceiling:
//! the same statements the service commits per transition, issued directly with sqlx.
//!
//! Each worker owns its schools and alternates Nominate / WithdrawNomination, so every call is
//! a real transition (state change, version bump, audit event, idempotency record).
//!
//! `junheng-bench season`: a whole season (phases 1–5) replayed at 1,000 and 10,000 schools
//! against the release `junheng-workflow` binary (and the scheduler) as separate processes;
//! see `season.rs`.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use junheng_proto::v1 as pb;
use junheng_proto::v1::seed_service_client::SeedServiceClient;
use junheng_workflow::ClockMode;
use sqlx::PgPool;
use tonic::transport::Channel;
use uuid::Uuid;

/// The workflow binary's allocator, since `transitions` runs the server in this process: a call
/// allocates many small, short-lived buffers across threads (HTTP/2 frames, protobuf, JSON),
/// a pattern glibc's allocator handles poorly.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod planning;
mod season;

/// Benchmarks. Without a subcommand: `transitions` (with its flags).
#[derive(Parser, Debug)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    transitions: TransitionsArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// School-case transitions per second, service vs raw SQL (the default).
    Transitions(TransitionsArgs),
    /// A whole season replayed at several sizes, services as separate processes.
    Season(season::SeasonArgs),
    /// The scheduler's planning cost for a notice to many schools, at several sizes.
    Planning(planning::PlanningArgs),
}

#[derive(clap::Args, Debug)]
struct TransitionsArgs {
    /// Admin URL of a PostgreSQL server where the benchmark may create a database.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrency levels.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    clients: Vec<usize>,
}

const OFFICE: &str = "bench-office-token";

struct Stats {
    per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn stats(mut lat: Vec<Duration>, elapsed: Duration) -> Stats {
    lat.sort();
    let q = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    Stats {
        per_s: lat.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: q(0.50),
        p99_ms: q(0.99),
    }
}

async fn fresh_db(admin: &str) -> anyhow::Result<PgPool> {
    let name = format!("jh_bench_{}", Uuid::new_v4().simple());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(admin).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    let opts: sqlx::postgres::PgConnectOptions = admin.parse()?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(40)
        .connect_with(opts.database(&name))
        .await?;
    junheng_store::MIGRATOR.run(&pool).await?;
    Ok(pool)
}

fn auth<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    r
}

/// The demo campaign with phase 1 open and `n` schools; returns (campaign id, school ids, department token).
async fn setup(channel: &Channel, n: usize) -> anyhow::Result<(Uuid, Vec<Uuid>, String)> {
    let mut campaigns =
        junheng_proto::v1::campaign_service_client::CampaignServiceClient::new(channel.clone());
    let c = campaigns
        .create_campaign(auth(
            pb::CreateCampaignRequest {
                idempotency_key: Uuid::new_v4().to_string(),
                definition_toml: junheng_workflow::bootstrap::CHANGLE_2020.into(),
            },
            OFFICE,
        ))
        .await?
        .into_inner();
    let schools: Vec<pb::NewSchool> = (0..n)
        .map(|i| pb::NewSchool {
            code: format!("{:010}", 3_707_000_000u64 + i as u64),
            name: format!("基准测试学校{i}"),
            level: pb::SchoolLevel::Primary as i32,
            town: junheng_workflow::bootstrap::TOWNS[i % 8].into(),
            principal: "校长".into(),
            contacts: vec![],
        })
        .collect();
    let mut reg =
        junheng_proto::v1::school_service_client::SchoolServiceClient::new(channel.clone());
    let rows = reg
        .register_schools(auth(
            pb::RegisterSchoolsRequest {
                idempotency_key: Uuid::new_v4().to_string(),
                campaign_id: c.id.clone(),
                schools,
            },
            OFFICE,
        ))
        .await?
        .into_inner()
        .schools;
    campaigns
        .open_phase(auth(
            pb::OpenPhaseRequest {
                idempotency_key: Uuid::new_v4().to_string(),
                campaign_id: c.id.clone(),
                phase: pb::Phase::SeedDesignation as i32,
            },
            OFFICE,
        ))
        .await?;
    let mut admin =
        junheng_proto::v1::admin_service_client::AdminServiceClient::new(channel.clone());
    let dept = admin
        .issue_token(auth(
            pb::IssueTokenRequest {
                idempotency_key: Uuid::new_v4().to_string(),
                name: "bench".into(),
                role: pb::Role::Department as i32,
                school_id: String::new(),
                ..Default::default()
            },
            OFFICE,
        ))
        .await?
        .into_inner()
        .token;
    Ok((
        c.id.parse()?,
        rows.iter().map(|s| s.id.parse().expect("uuid")).collect(),
        dept,
    ))
}

/// One gRPC worker: alternate nominate / withdraw on its own schools until the deadline.
async fn grpc_worker(
    channel: Channel,
    token: String,
    schools: Vec<Uuid>,
    until: Instant,
) -> anyhow::Result<Vec<Duration>> {
    let mut client = SeedServiceClient::new(channel);
    let mut lat = Vec::new();
    let mut round = 0usize;
    while Instant::now() < until {
        for s in &schools {
            let t = Instant::now();
            if round.is_multiple_of(2) {
                client
                    .nominate(auth(
                        pb::NominateRequest {
                            idempotency_key: Uuid::new_v4().to_string(),
                            school_id: s.to_string(),
                            expected_version: 0,
                            basis: "基准".into(),
                        },
                        &token,
                    ))
                    .await?;
            } else {
                client
                    .withdraw_nomination(auth(
                        pb::WithdrawNominationRequest {
                            idempotency_key: Uuid::new_v4().to_string(),
                            school_id: s.to_string(),
                            expected_version: 0,
                            reason: "基准".into(),
                        },
                        &token,
                    ))
                    .await?;
            }
            lat.push(t.elapsed());
        }
        round += 1;
    }
    Ok(lat)
}

/// One raw-SQL worker: the statements the service runs per transition, nothing else.
async fn raw_worker(
    pool: PgPool,
    campaign: Uuid,
    schools: Vec<Uuid>,
    until: Instant,
) -> anyhow::Result<Vec<Duration>> {
    let mut lat = Vec::new();
    let mut round = 0usize;
    let start: DateTime<Utc> = "2020-03-02T01:00:00Z".parse()?;
    while Instant::now() < until {
        for s in &schools {
            let t = Instant::now();
            let (from, to) = if round.is_multiple_of(2) {
                ("enrolled", "nominated")
            } else {
                ("nominated", "enrolled")
            };
            let key = Uuid::new_v4().to_string();
            let mut tx = pool.begin().await?;
            sqlx::query("INSERT INTO idempotency_keys (actor, key, method, fingerprint) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                .bind("raw")
                .bind(&key)
                .bind("Nominate")
                .bind(vec![0u8; 32])
                .execute(&mut *tx)
                .await?;
            let _now: Option<DateTime<Utc>> = sqlx::query_scalar("SELECT simulated_now FROM clock")
                .fetch_optional(&mut *tx)
                .await?;
            let _c: (serde_json::Value, serde_json::Value) = sqlx::query_as(
                "SELECT definition, phases FROM campaigns WHERE id = $1 FOR KEY SHARE",
            )
            .bind(campaign)
            .fetch_one(&mut *tx)
            .await?;
            let (state, version): (String, i64) =
                sqlx::query_as("SELECT state, version FROM schools WHERE id = $1 FOR UPDATE")
                    .bind(s)
                    .fetch_one(&mut *tx)
                    .await?;
            anyhow::ensure!(state == from, "unexpected state {state}");
            sqlx::query("UPDATE schools SET state = $3, version = version + 1, updated_at = $4 WHERE id = $1 AND version = $2")
                .bind(s)
                .bind(version)
                .bind(to)
                .bind(start)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO events (campaign_id, school_id, actor, role, action, before, after, reason, request_id, occurred_at)
                 SELECT $1, s, 'raw', 'department', a, b, af, r, $2, $3 FROM UNNEST($4::uuid[], $5::text[], $6::jsonb[], $7::jsonb[], $8::text[]) AS t(s, a, b, af, r)",
            )
            .bind(campaign)
            .bind(&key)
            .bind(start)
            .bind(vec![Some(*s)])
            .bind(vec!["school.nominated".to_string()])
            .bind(vec![serde_json::json!({ "state": from, "version": version })])
            .bind(vec![serde_json::json!({ "state": to, "version": version + 1 })])
            .bind(vec![Some("基准".to_string())])
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE idempotency_keys SET response = $3 WHERE actor = $1 AND key = $2")
                .bind("raw")
                .bind(&key)
                .bind(vec![0u8; 200])
                .execute(&mut *tx)
                .await?;
            sqlx::query("SELECT pg_notify('junheng_events', $1)")
                .bind(campaign.to_string())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            lat.push(t.elapsed());
        }
        round += 1;
    }
    Ok(lat)
}

async fn run_level<F, Fut>(
    clients: usize,
    seconds: u64,
    schools: &[Uuid],
    make: F,
) -> anyhow::Result<Stats>
where
    F: Fn(Vec<Uuid>, Instant) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Vec<Duration>>> + Send + 'static,
{
    let per = schools.len() / clients;
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|i| tokio::spawn(make(schools[i * per..(i + 1) * per].to_vec(), until)))
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(stats(all, start.elapsed()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => transitions(cli.transitions).await,
        Some(Command::Transitions(args)) => transitions(args).await,
        Some(Command::Season(args)) => season::run(args).await,
        Some(Command::Planning(args)) => planning::run(args).await,
    }
}

async fn transitions(args: TransitionsArgs) -> anyhow::Result<()> {
    // Each level gets schools of its own, 64 per client, all starting enrolled: a worker
    // always finishes its round, so the states a level leaves behind differ per worker.
    anyhow::ensure!(!args.clients.is_empty(), "--clients");
    let n_schools: usize = args.clients.iter().map(|c| 64 * c.max(&1)).sum();

    // The service under test, on a free port, simulated clock fixed inside phase 1.
    let svc_pool = fresh_db(&args.database_url).await?;
    junheng_workflow::bootstrap::ensure_office_token(&svc_pool, Some(OFFICE)).await?;
    let server = junheng_workflow::spawn(
        svc_pool.clone(),
        ClockMode::Simulated {
            start: Some("2020-03-02T09:00:00+08:00".parse()?),
        },
    )
    .await?;
    let channel = Channel::from_shared(server.url())?.connect().await?;
    let (_, svc_schools, dept) = setup(&channel, n_schools).await?;

    // The ceiling, on its own database with the same schema and data shape.
    let raw_pool = fresh_db(&args.database_url).await?;
    junheng_workflow::bootstrap::ensure_office_token(&raw_pool, Some(OFFICE)).await?;
    let raw_server = junheng_workflow::spawn(
        raw_pool.clone(),
        ClockMode::Simulated {
            start: Some("2020-03-02T09:00:00+08:00".parse()?),
        },
    )
    .await?;
    let raw_channel = Channel::from_shared(raw_server.url())?.connect().await?;
    let (raw_campaign, raw_schools, _) = setup(&raw_channel, n_schools).await?;
    raw_server.shutdown().await?;

    println!(
        "transitions: {n_schools} schools, {}s per level, durable PostgreSQL (fsync on)",
        args.seconds
    );
    println!(
        "{:>8} {:>12} {:>9} {:>9} {:>12} {:>9} {:>9} {:>7}",
        "clients", "raw tx/s", "raw p50", "raw p99", "service/s", "svc p50", "svc p99", "ratio"
    );
    let mut last = None;
    let mut offset = 0;
    for &clients in &args.clients {
        let level = offset..offset + 64 * clients.max(1);
        offset = level.end;
        let (raw_schools, svc_schools) = (&raw_schools[level.clone()], &svc_schools[level]);
        let pool = raw_pool.clone();
        let raw = run_level(clients, args.seconds, raw_schools, move |s, until| {
            raw_worker(pool.clone(), raw_campaign, s, until)
        })
        .await?;
        let ch = channel.clone();
        let token = dept.clone();
        let svc = run_level(clients, args.seconds, svc_schools, move |s, until| {
            grpc_worker(ch.clone(), token.clone(), s, until)
        })
        .await?;
        let ratio = svc.per_s / raw.per_s;
        println!(
            "{clients:>8} {:>12.0} {:>7.2}ms {:>7.2}ms {:>12.0} {:>7.2}ms {:>7.2}ms {:>7.2}",
            raw.per_s, raw.p50_ms, raw.p99_ms, svc.per_s, svc.p50_ms, svc.p99_ms, ratio
        );
        last = Some((ratio, svc.p99_ms));
    }
    server.shutdown().await?;
    let (ratio, p99) = last.context("no level measured")?;
    println!("transitions ratio={ratio:.2} p99_ms={p99:.1}");
    Ok(())
}
