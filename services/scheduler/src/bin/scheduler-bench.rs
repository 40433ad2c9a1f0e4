//! `scheduler-bench`: the dispatcher's throughput **at the service's default settings**, the
//! raw claim ceiling, the transport ceiling and the lateness of a burst, in one run, against a
//! fresh database on the server named by DATABASE_URL and a sink in a separate process.
//!
//! 1. **dispatch**: `--messages` due webhook messages, drained by the real service loop
//!    ([`Dispatcher::run`], woken by the outbox NOTIFY as in the service) at
//!    `DispatchSettings::default()` (claim with `FOR UPDATE SKIP LOCKED`, Standard-Webhooks
//!    signing, pooled HTTP to the sink process, each delivery recorded on its outbox row,
//!    batched status updates). `--tuned` repeats it with the bench's tuned settings, printed
//!    beside it and labelled; the last line is always the defaults.
//! 2. **raw claim ceiling**: the same number of rows claimed and marked sent by plain SQL
//!    (`FOR UPDATE SKIP LOCKED`, the default batch size and loop count), no HTTP, no attempt
//!    rows.
//! 3. **transport ceiling**: the same signed sends to the same sink through the same
//!    `Sender`, as many at a time as the defaults allow to one endpoint, no database.
//! 4. **bound**: min(transport ceiling, raw claim ceiling ÷ row writes per message relative to
//!    the raw claim), the row writes counted from `pg_stat_user_tables` in both phases after
//!    every backend of the pool was made to flush its counters (`pg_stat_force_next_flush()`).
//! 5. **burst**: `--burst` reminders (with open obligations, so the claim re-checks them) all
//!    due at one instant T; lateness = the row's `sent_at` − T (p50/p99/max), and its drain
//!    rate against the sustained rate of 1.
//!
//! The sink (this binary with `--sink`, a child process as a vendor would be) counts every
//! distinct `webhook-id` it saw more than once (`duplicates`) and verifies every signature.
//! The last line is
//! `dispatch per_s=<defaults> ratio=<per_s ÷ transport ceiling> lateness_p99_ms=<burst> duplicates=<n>`.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
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
    database_url: Option<String>,
    /// Run as the sink only (the child process): print its URL, serve until stdin closes.
    #[arg(long)]
    sink: bool,
    /// Also measure the tuned settings below (printed beside the defaults, labelled).
    #[arg(long)]
    tuned: bool,
    /// Messages for the throughput and raw-claim phases.
    #[arg(long, default_value_t = 50_000)]
    messages: usize,
    /// Reminders falling due at one instant.
    #[arg(long, default_value_t = 100_000)]
    burst: usize,
    /// Tuned variant (`--tuned`): claim loops side by side (dispatch.workers).
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Tuned variant: rows per claim (dispatch.batch_size).
    #[arg(long, default_value_t = 1000)]
    batch_size: i64,
    /// Tuned variant: concurrent HTTP sends per claim loop and per endpoint.
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// Tuned variant: most results recorded per transaction (dispatch.finish_batch).
    #[arg(long, default_value_t = 500)]
    finish_batch: usize,
    /// Tuned variant: finishers recording results side by side (dispatch.finishers).
    #[arg(long, default_value_t = 2)]
    finishers: usize,
    /// Tuned variant: rows claimed and not yet recorded (dispatch.max_in_flight).
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
    /// Ids seen more than once, counted as they happen: the harness polls the counts every few
    /// milliseconds, and walking the whole map under its lock each time stalled every request
    /// (the sink spent more CPU per message answering polls than serving sends).
    duplicates: AtomicU64,
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
            if id.is_empty() {
                // The harness asking for the counts: `distinct requests duplicates bad`.
                let stats = format!(
                    "{} {} {} {}",
                    self.distinct(),
                    self.requests.load(Ordering::Relaxed),
                    self.duplicates(),
                    self.bad_signatures.load(Ordering::Relaxed)
                );
                w.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{stats}",
                        stats.len()
                    )
                    .as_bytes(),
                )
                .await?;
                continue;
            }
            let at = Utc::now();
            if !verify(key, &id, &ts, &body, &sig) {
                self.bad_signatures.fetch_add(1, Ordering::Relaxed);
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let times = {
                let mut seen = self.seen.lock().expect("sink map");
                let e = seen.entry(id).or_insert((0, at));
                e.0 += 1;
                e.0
            };
            if times == 2 {
                self.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await?;
        }
    }

    fn distinct(&self) -> usize {
        self.seen.lock().expect("sink map").len()
    }

    fn duplicates(&self) -> usize {
        self.duplicates.load(Ordering::Relaxed) as usize
    }
}

/// The sink as the harness sees it: a child process (`--sink`), asked for its counts over
/// HTTP. Killed when dropped.
struct SinkProcess {
    child: tokio::process::Child,
    url: String,
    /// One keep-alive connection for the harness's questions.
    stats: tokio::sync::Mutex<BufReader<tokio::net::TcpStream>>,
}

#[derive(Debug, Clone, Copy)]
struct SinkStats {
    distinct: usize,
    requests: u64,
    duplicates: usize,
    bad_signatures: u64,
}

impl SinkProcess {
    async fn spawn(expected: usize) -> anyhow::Result<SinkProcess> {
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .arg("--sink")
            .arg("--messages")
            .arg(expected.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the sink process")?;
        let out = child.stdout.take().context("sink stdout")?;
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).await?;
        let url = line.trim().to_owned();
        anyhow::ensure!(url.starts_with("http://"), "sink said {url:?}");
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches("/hook")
            .to_owned();
        let conn = tokio::net::TcpStream::connect(&addr).await?;
        Ok(SinkProcess {
            child,
            url,
            stats: tokio::sync::Mutex::new(BufReader::new(conn)),
        })
    }

    async fn stats(&self) -> anyhow::Result<SinkStats> {
        let mut conn = self.stats.lock().await;
        conn.get_mut()
            .write_all(b"POST /stats HTTP/1.1\r\nhost: sink\r\ncontent-length: 0\r\n\r\n")
            .await?;
        let mut len = 0;
        let mut line = String::new();
        loop {
            line.clear();
            anyhow::ensure!(conn.read_line(&mut line).await? > 0, "sink closed");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.strip_prefix("content-length:") {
                len = v.trim().parse()?;
            }
        }
        let mut body = vec![0u8; len];
        conn.read_exact(&mut body).await?;
        let text = String::from_utf8(body)?;
        let n: Vec<u64> = text
            .split(' ')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("sink stats {text:?}"))?;
        anyhow::ensure!(n.len() == 4, "sink stats {text:?}");
        Ok(SinkStats {
            distinct: n[0] as usize,
            requests: n[1],
            duplicates: n[2] as usize,
            bad_signatures: n[3],
        })
    }

    async fn distinct(&self) -> anyhow::Result<usize> {
        Ok(self.stats().await?.distinct)
    }
}

impl Drop for SinkProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// `--sink`: serve until the parent goes away (stdin closes).
async fn sink_main(expected: usize) -> anyhow::Result<()> {
    let (_sink, url) = Sink::start(expected).await?;
    println!("{url}");
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while stdin.read(&mut buf).await? > 0 {}
    Ok(())
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

/// The settings a run uses: the service's defaults (`tuned = None`), or the bench's tuned
/// ones. Either way the endpoint is the sink, and the vendor rate limits do not apply to a
/// webhook.
fn settings(tuned: Option<&Args>, sink_url: &str) -> anyhow::Result<Arc<Settings>> {
    let dispatch = match tuned {
        None => String::new(),
        Some(args) => format!(
            "batch_size = {}\nconcurrency = {}\nendpoint_concurrency = {}\nworkers = {}\nfinish_batch = {}\nfinishers = {}\nmax_in_flight = {}\n",
            args.batch_size,
            args.concurrency,
            args.concurrency,
            args.workers,
            args.finish_batch,
            args.finishers,
            args.max_in_flight
        ),
    };
    let text = format!(
        r#"
        database_url = "postgres://unused/unused"
        [dispatch]
        {dispatch}
        [planning]
        digests_enabled = false
        [endpoints.sink]
        kind = "webhook"
        url = "{sink_url}"
        secret = "whsec_{SECRET_B64}"
        [recipients]
        office = ["sink"]
        schools = ["sink"]
        "#
    );
    Ok(Arc::new(Settings::from_toml(&text, |_| None)?))
}

fn describe(s: &Settings) -> String {
    let d = &s.dispatch;
    format!(
        "workers={} batch_size={} concurrency={} endpoint_concurrency={} finish_batch={} finishers={} lookahead_ms={} poll_interval_ms={} max_in_flight={}",
        d.workers,
        d.batch_size,
        d.concurrency,
        d.endpoint_concurrency,
        d.finish_batch,
        d.finishers,
        d.lookahead_ms,
        d.poll_interval_ms,
        d.max_in_flight
    )
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
                trace_context: None,
            })
            .collect();
        outbox::insert(&mut conn, &rows, at).await?;
    }
    Ok(())
}

/// The service's dispatcher loop ([`Dispatcher::run`]), woken by the outbox NOTIFY
/// (migration 0009) as in the service, until the returned stop is sent.
struct Running {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn start(d: &Arc<Dispatcher>, pool: &PgPool) -> anyhow::Result<Running> {
    let (stop, rx) = tokio::sync::watch::channel(false);
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener
        .listen(junheng_scheduler::dispatch::OUTBOX_CHANNEL)
        .await?;
    let listening = {
        let d = d.clone();
        let mut rx = rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    n = listener.try_recv() => {
                        if n.is_err() {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        d.wake();
                    }
                    _ = rx.changed() => return,
                }
            }
        })
    };
    let running = {
        let d = d.clone();
        tokio::spawn(async move {
            d.run(rx).await;
        })
    };
    Ok(Running {
        stop,
        tasks: vec![listening, running],
    })
}

impl Running {
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        for t in self.tasks {
            t.await?;
        }
        Ok(())
    }
}

async fn wait_for(sink: &SinkProcess, target: usize, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let seen = sink.distinct().await?;
        if seen >= target {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out: sink saw {seen} of {target} messages"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Makes every backend of the pool publish its pending statistics. PostgreSQL 15 keeps a
/// backend's table and transaction counters in the backend until it flushes them: at the end
/// of a transaction at most once a second, and an idle backend only after up to 10 s
/// (`PGSTAT_IDLE_INTERVAL`). Reading `pg_stat_*` without this missed up to most of another
/// backend's writes. Each connection of the pool (all idle between phases) runs
/// `pg_stat_force_next_flush()`, whose transaction end then flushes before the server answers;
/// the reader then drops its cached snapshot.
async fn flush_stats(pool: &PgPool) -> anyhow::Result<()> {
    let mut held = Vec::new();
    for _ in 0..pool.size() {
        // Every idle connection is handed out once while the others are held; a connection
        // still in use elsewhere (none between phases) is not waited for.
        match tokio::time::timeout(Duration::from_millis(200), pool.acquire()).await {
            Ok(c) => held.push(c?),
            Err(_) => break,
        }
    }
    for c in &mut held {
        sqlx::query("SELECT pg_stat_force_next_flush()")
            .execute(&mut **c)
            .await?;
    }
    // Each later statement is a transaction of its own: it reads the flushed counters.
    drop(held);
    Ok(())
}

/// Row versions written so far in the benchmark database, after every backend of the pool
/// flushed its counters ([`flush_stats`]).
#[derive(Debug, Clone, Copy, Default)]
struct Writes {
    /// Inserts + updates over all tables.
    total: i64,
    /// Updates over all tables, and those of them that were HOT (no index entry written).
    upd: i64,
    hot: i64,
    outbox_upd: i64,
    attempts_ins: i64,
}

impl std::ops::Sub for Writes {
    type Output = Writes;
    fn sub(self, o: Writes) -> Writes {
        Writes {
            total: self.total - o.total,
            upd: self.upd - o.upd,
            hot: self.hot - o.hot,
            outbox_upd: self.outbox_upd - o.outbox_upd,
            attempts_ins: self.attempts_ins - o.attempts_ins,
        }
    }
}

impl Writes {
    fn describe(&self, n: usize) -> String {
        let n = n as f64;
        format!(
            "{:.2} row writes per message: outbox updates {:.2}, delivery_attempts inserts {:.2}, other {:.2}; {:.0}% of updates HOT",
            self.total as f64 / n,
            self.outbox_upd as f64 / n,
            self.attempts_ins as f64 / n,
            (self.total - self.outbox_upd - self.attempts_ins) as f64 / n,
            100.0 * self.hot as f64 / (self.upd.max(1)) as f64
        )
    }
}

async fn row_writes(pool: &PgPool) -> anyhow::Result<Writes> {
    flush_stats(pool).await?;
    let (total, upd, hot, outbox_upd, attempts_ins): (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT COALESCE(sum(n_tup_ins + n_tup_upd), 0)::int8, COALESCE(sum(n_tup_upd), 0)::int8,
                COALESCE(sum(n_tup_hot_upd), 0)::int8,
                COALESCE(sum(n_tup_upd) FILTER (WHERE relname = 'outbox'), 0)::int8,
                COALESCE(sum(n_tup_ins) FILTER (WHERE relname = 'delivery_attempts'), 0)::int8
         FROM pg_stat_user_tables",
    )
    .fetch_one(pool)
    .await?;
    Ok(Writes {
        total,
        upd,
        hot,
        outbox_upd,
        attempts_ins,
    })
}

async fn raw_claim_ceiling(pool: &PgPool, s: &Settings, n: usize) -> anyhow::Result<f64> {
    let t = Instant::now();
    let loops: Vec<_> = (0..s.dispatch.workers)
        .map(|_| {
            let pool = pool.clone();
            let batch = s.dispatch.batch_size;
            tokio::spawn(async move {
                let mut done = 0u64;
                loop {
                    let mut tx = pool.begin().await?;
                    // The dispatcher's own plan settings: a ceiling for the same plans.
                    sqlx::query(junheng_scheduler::dispatch::INDEX_PLANS)
                        .execute(&mut *tx)
                        .await?;
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

/// CPU time (user + system) spent so far by the processes of a run, read from `/proc`: this
/// process (claim loops, sends, finishers), the sink process, PostgreSQL (every process the
/// server lists in `pg_stat_activity`: backends, WAL writer, checkpointer, …; autovacuum
/// workers that ended meanwhile are missed) and the whole machine (to see what else ran).
#[derive(Debug, Clone, Default)]
struct Cpu {
    own: f64,
    sink: f64,
    /// Per PostgreSQL process: a backend that ended within a phase must not subtract its whole
    /// life from the sum.
    pg: HashMap<i32, f64>,
    machine: f64,
}

/// Linux reports `/proc` CPU times in USER_HZ, which is 100 on every architecture it runs on.
const USER_HZ: f64 = 100.0;

fn proc_cpu_secs(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) in parentheses: utime is the
    // 14th field of the line, stime the 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / USER_HZ
}

fn machine_busy_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = stat.lines().next() else {
        return 0.0;
    };
    // user nice system idle iowait irq softirq steal (guest and guest_nice, which follow, are
    // already counted in user and nice): busy = all but idle and iowait.
    let v: Vec<f64> = cpu
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    let busy: f64 = v
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, x)| x)
        .sum();
    busy / USER_HZ
}

async fn cpu(pool: &PgPool, sink: Option<&SinkProcess>) -> anyhow::Result<Cpu> {
    let pids: Vec<i32> = sqlx::query_scalar("SELECT pid FROM pg_stat_activity")
        .fetch_all(pool)
        .await?;
    Ok(Cpu {
        own: proc_cpu_secs("self"),
        sink: sink
            .and_then(|s| s.child.id())
            .map_or(0.0, |pid| proc_cpu_secs(&pid.to_string())),
        pg: pids
            .iter()
            .map(|p| (*p, proc_cpu_secs(&p.to_string())))
            .collect(),
        machine: machine_busy_secs(),
    })
}

impl Cpu {
    /// What was spent between `o` and `self`; a PostgreSQL process that started meanwhile
    /// counts from zero.
    fn sub(self, o: Cpu) -> Cpu {
        let pg = self
            .pg
            .iter()
            .map(|(pid, secs)| (*pid, secs - o.pg.get(pid).copied().unwrap_or(0.0)))
            .collect();
        Cpu {
            own: self.own - o.own,
            sink: self.sink - o.sink,
            pg,
            machine: self.machine - o.machine,
        }
    }

    fn pg_secs(&self) -> f64 {
        self.pg.values().sum()
    }

    /// Microseconds of CPU per message: (ours, sink, PostgreSQL, everything else).
    fn per_message(&self, n: usize) -> (f64, f64, f64, f64) {
        let us = |s: f64| s * 1e6 / n as f64;
        let other = (self.machine - self.own - self.sink - self.pg_secs()).max(0.0);
        (us(self.own), us(self.sink), us(self.pg_secs()), us(other))
    }

    fn describe(&self, n: usize, secs: f64) -> String {
        let (own, sink, pg, other) = self.per_message(n);
        let remote = if self.pg.values().all(|s| *s == 0.0) {
            " (PostgreSQL's processes could not be read: not on this machine? its CPU counts as 0)"
        } else {
            ""
        };
        format!(
            "CPU per message: this process {own:.1} µs, sink {sink:.1} µs, PostgreSQL {pg:.1} µs, other processes {other:.1} µs; machine {:.2} of {} cores busy{remote}",
            self.machine / secs,
            cores()
        )
    }
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
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

/// Transactions committed in the benchmark database so far (after [`flush_stats`]).
async fn commits(pool: &PgPool) -> anyhow::Result<i64> {
    flush_stats(pool).await?;
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
    // The service's own log level, so the dispatcher pays for what it logs when it ships
    // (sqlx's slow-statement warnings about the benchmark's set-up are left out).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx::query=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if args.sink {
        return sink_main(args.messages).await;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();

    // A fresh, migrated database on the given server.
    let url = args
        .database_url
        .as_deref()
        .context("--database-url or DATABASE_URL")?;
    let base = PgConnectOptions::from_str(url).context("DATABASE_URL")?;
    let name = format!("junheng_bench_{}", Uuid::new_v4().simple());
    let mut admin = base.clone().database("postgres").connect().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await?;
    // The service's own pool size (`max_connections`), plus the harness's few.
    let conns = junheng_scheduler::Settings::from_toml("database_url = \"x\"", |_| None)?
        .max_connections
        .max(args.workers as u32 * 2)
        + 4;
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
        "database {name}: {} (synchronous_commit={}); cores={}",
        server.0,
        server.1,
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

/// Phase 1 for one set of settings: `n` due messages drained by the service loop; returns
/// the rate and the row writes per message.
async fn throughput(
    label: &str,
    pool: &PgPool,
    sink: &SinkProcess,
    settings: Arc<Settings>,
    campaign: Uuid,
    n: usize,
) -> anyhow::Result<(f64, f64, Cpu)> {
    println!("{label} settings: {}", describe(&settings));
    let d = Arc::new(Dispatcher::new(
        pool.clone(),
        settings,
        Arc::new(junheng_notify::Sender::new()?),
        "bench".into(),
    ));
    // Warm-up: connections to the sink and the database.
    let before = sink.distinct().await?;
    let running = start(&d, pool).await?;
    queue(
        pool,
        &format!("{label}-warm"),
        2000,
        Utc::now(),
        campaign,
        None,
    )
    .await?;
    wait_for(sink, before + 2000, Duration::from_secs(60)).await?;
    settled(pool).await?;
    running.stop().await?;
    // The backlog is committed first, then the loop starts: it finds it at its first claim.
    queue(pool, &format!("{label}-tp"), n, Utc::now(), campaign, None).await?;
    let writes_before = row_writes(pool).await?;
    let commits_before = commits(pool).await?;
    let before = sink.distinct().await?;
    let cpu_before = cpu(pool, Some(sink)).await?;
    let t = Instant::now();
    let running = start(&d, pool).await?;
    wait_for(sink, before + n, Duration::from_secs(600)).await?;
    // Done when every row is recorded as sent, not just received.
    settled(pool).await?;
    let secs = t.elapsed().as_secs_f64();
    let used = cpu(pool, Some(sink)).await?.sub(cpu_before);
    running.stop().await?;
    let per_s = n as f64 / secs;
    let transactions = commits(pool).await? - commits_before;
    let writes = row_writes(pool).await? - writes_before;
    println!(
        "{label} dispatch: {n} due messages in {secs:.2} s = {per_s:.0}/s ({}; {transactions} transactions committed)",
        writes.describe(n)
    );
    println!("{label} dispatch: {}", used.describe(n, secs));
    Ok((per_s, writes.total as f64 / n as f64, used))
}

async fn settled(pool: &PgPool) -> anyhow::Result<()> {
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox WHERE status <> 'sent' AND dedupe_key NOT LIKE 'bench:burst:%'",
        )
        .fetch_one(pool)
        .await?;
        if left == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn run(args: &Args, pool: &PgPool) -> anyhow::Result<String> {
    let sink = SinkProcess::spawn(8_000 + 3 * args.messages + args.burst).await?;
    let defaults = settings(None, &sink.url)?;
    let campaign = seed_campaign(pool).await?;
    let n = args.messages;

    // 1. Dispatch throughput at the defaults (and, if asked, the tuned settings).
    let (per_s, writes, dispatch_cpu) =
        throughput("defaults", pool, &sink, defaults.clone(), campaign, n).await?;
    if args.tuned {
        let tuned = settings(Some(args), &sink.url)?;
        throughput("TUNED (not shipped)", pool, &sink, tuned, campaign, n).await?;
    }

    // 2. Raw claim ceiling at the defaults: the same number of rows, claim + mark sent in
    // SQL only.
    queue(
        pool,
        "raw",
        n,
        Utc::now() - chrono::Duration::seconds(1),
        campaign,
        None,
    )
    .await?;
    let raw_writes_before = row_writes(pool).await?;
    let cpu_before = cpu(pool, None).await?;
    let ceiling = raw_claim_ceiling(pool, &defaults, n).await?;
    let raw_cpu = cpu(pool, None).await?.sub(cpu_before);
    let raw = row_writes(pool).await? - raw_writes_before;
    let raw_writes = raw.total as f64 / n as f64;
    println!(
        "raw claim ceiling: {ceiling:.0}/s (claim {} rows per transaction with FOR UPDATE SKIP LOCKED + mark sent, {} loops; {})",
        defaults.dispatch.batch_size,
        defaults.dispatch.workers,
        raw.describe(n)
    );
    println!("raw claim: {}", raw_cpu.describe(n, n as f64 / ceiling));

    // 3. Transport ceiling: the same signed sends to the same sink through the same
    // `Sender`, as many at a time as the defaults allow to one endpoint, with no database.
    let ep = settings_endpoint(&defaults)?;
    let sender = junheng_notify::Sender::new()?;
    let at_once = defaults
        .dispatch
        .endpoint_concurrency
        .min(defaults.dispatch.concurrency * defaults.dispatch.workers);
    let cpu_before = cpu(pool, Some(&sink)).await?;
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
        .buffer_unordered(at_once)
        .collect()
        .await;
    let transport = n as f64 / t.elapsed().as_secs_f64();
    let transport_cpu = cpu(pool, Some(&sink)).await?.sub(cpu_before);
    anyhow::ensure!(
        results.iter().all(|ok| *ok),
        "transport ceiling: a send failed"
    );
    println!(
        "transport ceiling: {transport:.0}/s ({n} signed webhook sends, {at_once} at a time, no database)"
    );
    println!(
        "transport: {}",
        transport_cpu.describe(n, n as f64 / transport)
    );
    let factor = (writes / raw_writes.max(0.01)).max(1.0);
    let bound = transport.min(ceiling / factor);
    println!(
        "bound: min(transport {transport:.0}/s, raw claim {ceiling:.0}/s ÷ ({writes:.2} ÷ {raw_writes:.2} row writes per message) = {:.0}/s) = {bound:.0}/s; defaults reach {:.2} × bound, {:.2} × transport",
        ceiling / factor,
        per_s / bound,
        per_s / transport
    );
    // The bound above takes the smaller of two ceilings each measured with the whole machine
    // to itself. The dispatcher needs both kinds of work for every message on the same cores:
    // at most cores ÷ (CPU of one signed send + CPU of its database work) messages a second.
    let (t_own, t_sink, _, _) = transport_cpu.per_message(n);
    let (r_own, _, r_pg, _) = raw_cpu.per_message(n);
    let per_msg_us = t_own + t_sink + factor * (r_own + r_pg);
    let shared = (cores() as f64 * 1e6 / per_msg_us).min(bound);
    let (d_own, d_sink, d_pg, _) = dispatch_cpu.per_message(n);
    println!(
        "shared-cores bound: {} cores ÷ (send {:.1} µs + {factor:.2} × claim {:.1} µs of CPU per message) = {shared:.0}/s; defaults reach {:.2} × it, spending {:.1} µs per message (this process {d_own:.1}, sink {d_sink:.1}, PostgreSQL {d_pg:.1})",
        cores(),
        t_own + t_sink,
        r_own + r_pg,
        per_s / shared,
        d_own + d_sink + d_pg
    );

    // 4. Burst: `burst` reminders due at one instant T, drained by the defaults.
    let m = args.burst;
    let due = Utc::now() + chrono::Duration::days(3);
    let obligations = seed_obligations(pool, campaign, m, due).await?;
    let setup = Instant::now();
    let t_due = Utc::now() + chrono::Duration::seconds(3600);
    queue(pool, "burst", m, t_due, campaign, Some((&obligations, due))).await?;
    sqlx::query("ANALYZE outbox").execute(pool).await?;
    let d = Arc::new(Dispatcher::new(
        pool.clone(),
        defaults.clone(),
        Arc::new(junheng_notify::Sender::new()?),
        "bench".into(),
    ));
    let running = start(&d, pool).await?;
    // Move the whole burst to one instant a little ahead; the loop finds it by its next-due
    // wake-up.
    let t_due = Utc::now() + chrono::Duration::seconds(args.lead_secs as i64);
    sqlx::query("UPDATE outbox SET not_before = $1 WHERE dedupe_key LIKE 'bench:burst:%'")
        .bind(t_due)
        .execute(pool)
        .await?;
    sqlx::query("VACUUM ANALYZE outbox").execute(pool).await?;
    d.wake();
    let lead = (t_due - Utc::now()).num_milliseconds();
    anyhow::ensure!(
        lead > 0,
        "setup took {:?}: raise --lead-secs",
        setup.elapsed()
    );
    let before = sink.distinct().await?;
    let cpu_before = cpu(pool, Some(&sink)).await?;
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
    let burst_cpu = cpu(pool, Some(&sink)).await?.sub(cpu_before);
    running.stop().await?;
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
    sent_ms.sort_by(f64::total_cmp);
    let p99 = percentile(&sent_ms, 99.0);
    let burst_rate = m as f64 / (percentile(&sent_ms, 100.0).max(1.0) / 1000.0);
    println!(
        "burst: {m} reminders due at one instant ({claimed_by_due} claimed ahead by then); lateness to sent min={:.0} ms p50={:.0} ms p99={p99:.0} ms max={:.0} ms; drain rate {burst_rate:.0}/s = {:.2} × the sustained rate",
        sent_ms.first().copied().unwrap_or(f64::NAN),
        percentile(&sent_ms, 50.0),
        percentile(&sent_ms, 100.0),
        burst_rate / per_s
    );
    println!(
        "burst: {} (from the lead-in to the last result)",
        burst_cpu.describe(
            m,
            lead as f64 / 1000.0 + percentile(&sent_ms, 100.0) / 1000.0
        )
    );
    let st = sink.stats().await?;
    println!(
        "sink (separate process): {} requests, {} distinct ids, {} ids seen twice or more, {} bad signatures",
        st.requests, st.distinct, st.duplicates, st.bad_signatures
    );
    anyhow::ensure!(st.bad_signatures == 0, "the sink rejected signatures");
    Ok(format!(
        "dispatch per_s={per_s:.0} ratio={:.2} lateness_p99_ms={p99:.0} duplicates={}",
        per_s / transport,
        st.duplicates
    ))
}
