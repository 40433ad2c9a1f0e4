//! `scheduler-bench`: the dispatcher's throughput, the raw claim ceiling and the lateness of a
//! burst, in one run, against a fresh database on the server named by DATABASE_URL.
//!
//! 1. **dispatch**: `--messages` due webhook messages, drained by `--workers` claim loops of
//!    the real [`Dispatcher`] (claim with `FOR UPDATE SKIP LOCKED`, Standard-Webhooks signing,
//!    pooled HTTP to an in-process loopback sink, one `delivery_attempts` row per attempt,
//!    batched status updates). Vendor rate limits are off for the sink.
//! 2. **raw claim ceiling**: the same number of rows claimed and marked sent by plain SQL
//!    (`FOR UPDATE SKIP LOCKED`, same batch size and loop count), no HTTP, no attempt rows.
//! 3. **burst**: `--burst` reminders (with open obligations, so the claim re-checks them) all
//!    due at one instant T; lateness = the row's `sent_at` − T (p50/p99/max), and the sink's
//!    receipt time − T alongside.
//!
//! The sink counts every distinct `webhook-id` it saw more than once (`duplicates`) and
//! verifies every signature. The last line is
//! `dispatch per_s=<…> ratio=<per_s ÷ raw claim ceiling> lateness_p99_ms=<…> duplicates=<…>`.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use clap::Parser;
use futures::StreamExt as _;
use hmac::{Hmac, Mac};
use junheng_scheduler::outbox::{self, Kind, NewRow, Payload};
use junheng_scheduler::{Dispatcher, Settings};
use sha2::Sha256;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use uuid::Uuid;

/// glibc's allocator showed up as a sixth of the dispatcher's profile (many small, short-lived
/// buffers per HTTP request across threads); mimalloc handles that pattern far better.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SECRET_B64: &str = "YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldA==";
const CAMPAIGN_TOML: &str = include_str!("../../../../deploy/campaigns/changle-2020.toml");

#[derive(Parser, Debug)]
#[command(about = "junheng scheduler benchmark: dispatch rate, raw claim ceiling, burst lateness")]
struct Args {
    /// Server to create the benchmark database on (needs CREATEDB).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Messages for the throughput and raw-claim phases.
    #[arg(long, default_value_t = 50_000)]
    messages: usize,
    /// Reminders falling due at one instant.
    #[arg(long, default_value_t = 100_000)]
    burst: usize,
    /// Claim loops side by side (dispatch.workers).
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Rows per claim (dispatch.batch_size).
    #[arg(long, default_value_t = 1000)]
    batch_size: i64,
    /// Concurrent HTTP sends per claim loop (dispatch.concurrency).
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// Most results recorded per transaction (dispatch.finish_batch).
    #[arg(long, default_value_t = 500)]
    finish_batch: usize,
    /// Rows due within this many ms are claimed ahead (dispatch.lookahead_ms; the service's
    /// default).
    #[arg(long, default_value_t = 3000)]
    lookahead_ms: u64,
    /// Rows claimed and not yet finished per replica (dispatch.max_in_flight; the service's
    /// default).
    #[arg(long, default_value_t = 20_000)]
    max_in_flight: usize,
    /// Seconds from the start of the burst's last setup step (moving the rows to T and
    /// VACUUM) to the due instant T.
    #[arg(long, default_value_t = 20)]
    lead_secs: u64,
    /// Keep the benchmark database afterwards.
    #[arg(long)]
    keep_db: bool,
}

/// A loopback HTTP/1.1 sink: keep-alive, Content-Length bodies, answers 200 with no body.
#[derive(Default)]
struct Sink {
    /// webhook-id → (times seen, first receipt).
    seen: Mutex<HashMap<String, (u32, DateTime<Utc>)>>,
    requests: AtomicU64,
    bad_signatures: AtomicU64,
}

impl Sink {
    async fn start(expected: usize) -> anyhow::Result<(Arc<Sink>, String)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        // Sized for every id the run sends, so the harness's own cost stays flat.
        let sink = Arc::new(Sink {
            seen: Mutex::new(HashMap::with_capacity(expected)),
            ..Sink::default()
        });
        let s = sink.clone();
        let key = base64::engine::general_purpose::STANDARD.decode(SECRET_B64)?;
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let _ = sock.set_nodelay(true);
                let s = s.clone();
                let key = key.clone();
                tokio::spawn(async move {
                    let _ = s.connection(sock, &key).await;
                });
            }
        });
        Ok((sink, url))
    }

    async fn connection(&self, sock: tokio::net::TcpStream, key: &[u8]) -> std::io::Result<()> {
        let (r, mut w) = sock.into_split();
        let mut r = BufReader::with_capacity(32 * 1024, r);
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let (mut id, mut ts, mut sig, mut len) =
                (String::new(), String::new(), String::new(), 0);
            loop {
                line.clear();
                if r.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                if let Some((name, value)) = l.split_once(':') {
                    let value = value.trim();
                    match name.to_ascii_lowercase().as_str() {
                        "content-length" => len = value.parse().unwrap_or(0),
                        "webhook-id" => id = value.to_owned(),
                        "webhook-timestamp" => ts = value.to_owned(),
                        "webhook-signature" => sig = value.to_owned(),
                        _ => {}
                    }
                }
            }
            let mut body = vec![0u8; len];
            r.read_exact(&mut body).await?;
            let at = Utc::now();
            if !verify(key, &id, &ts, &body, &sig) {
                self.bad_signatures.fetch_add(1, Ordering::Relaxed);
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            self.seen
                .lock()
                .expect("sink map")
                .entry(id)
                .and_modify(|e| e.0 += 1)
                .or_insert((1, at));
            w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await?;
        }
    }

    fn distinct(&self) -> usize {
        self.seen.lock().expect("sink map").len()
    }

    fn duplicates(&self) -> usize {
        self.seen
            .lock()
            .expect("sink map")
            .values()
            .filter(|(n, _)| *n > 1)
            .count()
    }

    fn first_seen(&self, id: &str) -> Option<DateTime<Utc>> {
        self.seen.lock().expect("sink map").get(id).map(|e| e.1)
    }
}

/// Standard Webhooks: `v1,base64(HMAC_SHA256(key, id.ts.body))`, any of space-separated sigs.
fn verify(key: &[u8], id: &str, ts: &str, body: &[u8], header: &str) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    header.split(' ').any(|s| {
        s.strip_prefix("v1,")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .is_some_and(|got| got.as_slice() == expected.as_slice())
    })
}

fn settings(args: &Args, sink_url: &str) -> anyhow::Result<Arc<Settings>> {
    let text = format!(
        r#"
        database_url = "postgres://unused/unused"
        [dispatch]
        batch_size = {}
        lease_secs = 300
        max_attempts = 3
        concurrency = {}
        workers = {}
        finish_batch = {}
        lookahead_ms = {}
        max_in_flight = {}
        rate_limits_enabled = false
        [planning]
        digests_enabled = false
        [endpoints.sink]
        kind = "webhook"
        url = "{sink_url}"
        secret = "whsec_{SECRET_B64}"
        [recipients]
        office = ["sink"]
        schools = ["sink"]
        "#,
        args.batch_size,
        args.concurrency,
        args.workers,
        args.finish_batch,
        args.lookahead_ms,
        args.max_in_flight
    );
    Ok(Arc::new(Settings::from_toml(&text, |_| None)?))
}

fn settings_endpoint(settings: &Settings) -> anyhow::Result<junheng_notify::Endpoint> {
    Ok(settings
        .endpoints
        .get("sink")
        .context("the sink endpoint")?
        .endpoint
        .clone())
}

fn payload(i: usize, title: &str) -> Payload {
    Payload {
        title: format!("{title} {i}"),
        text: format!(
            "【提醒】学校 {i}：请于 2020年4月11日（星期六）0:00 前提交汇报材料。\n还剩 3 天。\n编号见消息 id。"
        ),
        ..Payload::default()
    }
}

async fn queue(
    pool: &PgPool,
    tag: &str,
    n: usize,
    at: DateTime<Utc>,
    campaign: Uuid,
    obligations: Option<(&[Uuid], DateTime<Utc>)>,
) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    for start in (0..n).step_by(5000) {
        let rows: Vec<NewRow> = (start..(start + 5000).min(n))
            .map(|i| NewRow {
                dedupe_key: format!("bench:{tag}:{i}|role:office|sink"),
                campaign_id: campaign,
                kind: if obligations.is_some() {
                    Kind::Reminder
                } else {
                    Kind::DailyDigest
                },
                endpoint: "sink".into(),
                recipient: format!("school:{i}"),
                obligation_id: obligations.map(|(o, _)| o[i]),
                planned_due_at: obligations.map(|(_, due)| due),
                payload: payload(i, "【提醒】提交汇报材料"),
                urgent: false,
                not_before: at,
                held: false,
            })
            .collect();
        outbox::insert(&mut conn, &rows, at).await?;
    }
    Ok(())
}

/// Runs the dispatcher as the service does (`drain` at the wall clock: `workers` claim loops,
/// batches delivered beside the claims) until `stop` is set.
fn spawn_loops(
    d: &Arc<Dispatcher>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<anyhow::Result<u64>>> {
    let d = d.clone();
    let stop = stop.clone();
    vec![tokio::spawn(async move {
        let mut sent = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let r = d.drain(Utc::now(), usize::MAX).await?;
            sent += r.sent as u64;
            if r.claimed == 0 && r.cancelled == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        Ok(sent)
    })]
}

async fn wait_for(sink: &Sink, target: usize, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while sink.distinct() < target {
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out: sink saw {} of {target} messages",
            sink.distinct()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

async fn stop_loops(
    stop: &AtomicBool,
    loops: Vec<tokio::task::JoinHandle<anyhow::Result<u64>>>,
) -> anyhow::Result<()> {
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.await??;
    }
    stop.store(false, Ordering::Relaxed);
    Ok(())
}

async fn raw_claim_ceiling(pool: &PgPool, args: &Args, n: usize) -> anyhow::Result<f64> {
    let t = Instant::now();
    let loops: Vec<_> = (0..args.workers)
        .map(|_| {
            let pool = pool.clone();
            let batch = args.batch_size;
            tokio::spawn(async move {
                let mut done = 0u64;
                loop {
                    let mut tx = pool.begin().await?;
                    let now = Utc::now();
                    let ids: Vec<Uuid> = sqlx::query_scalar(
                        "SELECT id FROM outbox WHERE status IN ('pending', 'held') AND not_before <= $1
                         ORDER BY not_before, id LIMIT $2 FOR UPDATE SKIP LOCKED",
                    )
                    .bind(now)
                    .bind(batch)
                    .fetch_all(&mut *tx)
                    .await?;
                    if ids.is_empty() {
                        tx.commit().await?;
                        return Ok::<_, anyhow::Error>(done);
                    }
                    sqlx::query("UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = $2 WHERE id = ANY($1)")
                        .bind(&ids)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    done += ids.len() as u64;
                }
            })
        })
        .collect();
    let mut total = 0;
    for l in loops {
        total += l.await??;
    }
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(total as usize == n, "raw claim took {total} of {n}");
    Ok(n as f64 / secs)
}

async fn seed_campaign(pool: &PgPool) -> anyhow::Result<Uuid> {
    let def = junheng_core::CampaignDefinition::parse(CAMPAIGN_TOML)
        .map_err(|e| anyhow::anyhow!("campaign definition: {e:?}"))?;
    let (canonical, sha) = def.canonical();
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO campaigns (id, code, county, year, time_zone, definition, definition_sha256, phases, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())",
    )
    .bind(id)
    .bind(&def.code)
    .bind(&def.county)
    .bind(def.year)
    .bind(&def.time_zone)
    .bind(canonical)
    .bind(sha)
    .bind(serde_json::to_value(junheng_core::PhaseBoard::new(&def))?)
    .execute(pool)
    .await?;
    Ok(id)
}

async fn seed_obligations(
    pool: &PgPool,
    campaign: Uuid,
    n: usize,
    due: DateTime<Utc>,
) -> anyhow::Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    for chunk in ids.chunks(10_000) {
        let keys: Vec<String> = chunk.iter().map(|u| u.to_string()).collect();
        sqlx::query(
            "INSERT INTO obligations (id, campaign_id, kind, school_id, key, owner_role, owner_school, deadline_ref, due_at, subject, status, created_at)
             SELECT i, $2, 'submit_presentation', NULL, k, 'school', NULL, 'bench', $3, '提交汇报材料', 'open', now()
             FROM UNNEST($1::uuid[], $4::text[]) AS t(i, k)",
        )
        .bind(chunk)
        .bind(campaign)
        .bind(due)
        .bind(&keys)
        .execute(pool)
        .await?;
    }
    Ok(ids)
}

/// Transactions committed in the benchmark database so far (statistics are flushed by each
/// backend at most once a second, so wait a little before reading a difference).
async fn commits(pool: &PgPool) -> anyhow::Result<i64> {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(pool)
        .await?;
    Ok(sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await?)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();

    // A fresh, migrated database on the given server.
    let base = PgConnectOptions::from_str(&args.database_url).context("DATABASE_URL")?;
    let name = format!("junheng_bench_{}", Uuid::new_v4().simple());
    let mut admin = base.clone().database("postgres").connect().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await?;
    let conns = (args.workers * 2 + 4) as u32;
    let pool = PgPoolOptions::new()
        .max_connections(conns)
        .connect_with(base.clone().database(&name))
        .await?;
    junheng_store::MIGRATOR.run(&pool).await?;
    let server: (String, String) =
        sqlx::query_as("SELECT version(), current_setting('synchronous_commit')")
            .fetch_one(&pool)
            .await?;
    println!(
        "database {name}: {} (synchronous_commit={})",
        server.0, server.1
    );
    println!(
        "settings: workers={} batch_size={} concurrency={} finish_batch={} lookahead_ms={} max_in_flight={} cores={}",
        args.workers,
        args.batch_size,
        args.concurrency,
        args.finish_batch,
        args.lookahead_ms,
        args.max_in_flight,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    let result = run(&args, &pool).await;
    pool.close().await;
    if args.keep_db {
        println!("kept database {name}");
    } else {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await?;
    }
    let line = result?;
    println!("{line}");
    Ok(())
}

async fn run(args: &Args, pool: &PgPool) -> anyhow::Result<String> {
    let (sink, url) = Sink::start(2_000 + 3 * args.messages + args.burst).await?;
    let settings = settings(args, &url)?;
    let settings_for_transport = settings.clone();
    let sender = Arc::new(junheng_notify::Sender::new()?);
    let d = Arc::new(Dispatcher::new(
        pool.clone(),
        settings,
        sender,
        "bench".into(),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let campaign = seed_campaign(pool).await?;
    let n = args.messages;

    // Warm-up: connections to the sink and the database.
    queue(pool, "warm", 2000, Utc::now(), campaign, None).await?;
    let loops = spawn_loops(&d, &stop);
    wait_for(&sink, 2000, Duration::from_secs(60)).await?;
    stop_loops(&stop, loops).await?;

    // 1. Dispatch throughput.
    queue(pool, "tp", n, Utc::now(), campaign, None).await?;
    let commits_before = commits(pool).await?;
    let before = sink.distinct();
    let t = Instant::now();
    let loops = spawn_loops(&d, &stop);
    wait_for(&sink, before + n, Duration::from_secs(600)).await?;
    // Done when every row is recorded as sent, not just received.
    loop {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status <> 'sent'")
            .fetch_one(pool)
            .await?;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    stop_loops(&stop, loops).await?;
    let per_s = n as f64 / secs;
    let transactions = commits(pool).await? - commits_before;
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM delivery_attempts")
        .fetch_one(pool)
        .await?;
    println!(
        "dispatch: {n} messages in {secs:.2} s = {per_s:.0}/s ({attempts} attempt rows for {} messages incl. warm-up, bad signatures {}; {transactions} transactions committed)",
        before + n,
        sink.bad_signatures.load(Ordering::Relaxed)
    );

    // 2. Raw claim ceiling: the same number of rows, claim + mark sent in SQL only.
    queue(pool, "raw", n, Utc::now(), campaign, None).await?;
    let ceiling = raw_claim_ceiling(pool, args, n).await?;
    println!(
        "raw claim ceiling: {ceiling:.0}/s (claim {} rows per transaction with FOR UPDATE SKIP LOCKED + mark sent, {} loops)",
        args.batch_size, args.workers
    );

    // 2b. Transport ceiling: the same signed sends to the same sink through the same
    // `Sender`, as many at a time as the dispatcher allows, with no database at all. No
    // dispatcher can drain faster than this on this machine.
    let ep = settings_endpoint(&settings_for_transport)?;
    let sender = junheng_notify::Sender::new()?;
    let t = Instant::now();
    let results: Vec<bool> = futures::stream::iter(0..n)
        .map(|i| {
            let msg = payload(i, "【提醒】提交汇报材料").into_message(Uuid::now_v7());
            let (sender, ep) = (&sender, &ep);
            async move {
                matches!(
                    sender.send(ep, &msg, Utc::now().timestamp_millis()).await,
                    junheng_notify::Outcome::Delivered { .. }
                )
            }
        })
        .buffer_unordered(args.concurrency * args.workers)
        .collect()
        .await;
    let transport = n as f64 / t.elapsed().as_secs_f64();
    anyhow::ensure!(
        results.iter().all(|ok| *ok),
        "transport ceiling: a send failed"
    );
    println!(
        "transport ceiling: {transport:.0}/s ({n} signed webhook sends, {} at a time, no database)",
        args.concurrency * args.workers
    );

    // 3. Burst: `burst` reminders due at one instant T.
    let m = args.burst;
    let due = Utc::now() + chrono::Duration::days(3);
    let obligations = seed_obligations(pool, campaign, m, due).await?;
    let setup = Instant::now();
    let t_due = Utc::now() + chrono::Duration::seconds(3600);
    queue(pool, "burst", m, t_due, campaign, Some((&obligations, due))).await?;
    sqlx::query("ANALYZE outbox").execute(pool).await?;
    // Move the whole burst to one instant a little ahead, then let the loops wait for it.
    let t_due = Utc::now() + chrono::Duration::seconds(args.lead_secs as i64);
    sqlx::query("UPDATE outbox SET not_before = $1 WHERE dedupe_key LIKE 'bench:burst:%'")
        .bind(t_due)
        .execute(pool)
        .await?;
    sqlx::query("VACUUM ANALYZE outbox").execute(pool).await?;
    let lead = (t_due - Utc::now()).num_milliseconds();
    anyhow::ensure!(
        lead > 0,
        "setup took {:?}: raise --lead-secs",
        setup.elapsed()
    );
    let before = sink.distinct();
    let loops = spawn_loops(&d, &stop);
    // How much of the burst was claimed ahead when it fell due.
    let probe = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let wait = (t_due - Utc::now()).to_std().unwrap_or_default();
            tokio::time::sleep(wait).await;
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM outbox WHERE dedupe_key LIKE 'bench:burst:%' AND status <> 'pending'",
            )
            .fetch_one(&pool)
            .await
        })
    };
    wait_for(&sink, before + m, Duration::from_secs(900)).await?;
    let claimed_by_due = probe.await??;
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox WHERE dedupe_key LIKE 'bench:burst:%' AND status <> 'sent'",
        )
        .fetch_one(pool)
        .await?;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop_loops(&stop, loops).await?;
    let rows: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
        "SELECT id, sent_at FROM outbox WHERE dedupe_key LIKE 'bench:burst:%' AND status = 'sent'",
    )
    .fetch_all(pool)
    .await?;
    anyhow::ensure!(rows.len() == m, "burst: {} of {m} sent", rows.len());
    let mut sent_ms: Vec<f64> = rows
        .iter()
        .map(|(_, at)| (*at - t_due).num_microseconds().unwrap_or(0) as f64 / 1000.0)
        .collect();
    let mut recv_ms: Vec<f64> = rows
        .iter()
        .filter_map(|(id, _)| sink.first_seen(&id.to_string()))
        .map(|at| (at - t_due).num_microseconds().unwrap_or(0) as f64 / 1000.0)
        .collect();
    sent_ms.sort_by(f64::total_cmp);
    recv_ms.sort_by(f64::total_cmp);
    let p99 = percentile(&sent_ms, 99.0);
    println!(
        "burst: {m} reminders due at one instant ({claimed_by_due} claimed ahead by then); lateness to sent min={:.0} ms p50={:.0} ms p99={p99:.0} ms max={:.0} ms; at the sink p50={:.0} ms p99={:.0} ms; drain rate {:.0}/s",
        sent_ms.first().copied().unwrap_or(f64::NAN),
        percentile(&sent_ms, 50.0),
        percentile(&sent_ms, 100.0),
        percentile(&recv_ms, 50.0),
        percentile(&recv_ms, 99.0),
        m as f64 / (percentile(&sent_ms, 100.0) / 1000.0)
    );
    let requests = sink.requests.load(Ordering::Relaxed);
    let duplicates = sink.duplicates();
    println!(
        "sink: {requests} requests, {} distinct ids, {duplicates} ids seen twice or more, {} bad signatures",
        sink.distinct(),
        sink.bad_signatures.load(Ordering::Relaxed)
    );
    anyhow::ensure!(
        sink.bad_signatures.load(Ordering::Relaxed) == 0,
        "the sink rejected signatures"
    );
    Ok(format!(
        "dispatch per_s={per_s:.0} ratio={:.2} lateness_p99_ms={p99:.0} duplicates={duplicates}",
        per_s / ceiling
    ))
}
