//! `junheng-bench planning`: what the scheduler's planner costs for a results notice to many
//! schools, at several sizes, so its growth with the rows it writes can be read off (issue #11:
//! a notice to N schools used to render and store its list of N names in each of its N rows).
//!
//! Per size: a fresh database, `--campaigns` campaigns of N listed schools with one ended
//! notice each, and one planning pass (`Planner::plan`) timed; then the rows it wrote and the
//! bytes they hold. The last line compares the time per row at the largest size with the
//! smallest: about 1 means linear.

use std::sync::Arc;
use std::time::Instant;

use anyhow::ensure;
use chrono::{DateTime, TimeZone, Utc};
use junheng_core::{CampaignDefinition, PhaseBoard};
use junheng_scheduler::{NoWorkflow, Planner, Settings};
use uuid::Uuid;

#[derive(clap::Args, Debug)]
pub struct PlanningArgs {
    /// Admin URL of a PostgreSQL server where the benchmark may create databases.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Schools per notice, one measurement each.
    #[arg(long, value_delimiter = ',', default_value = "250,1000")]
    schools: Vec<usize>,
    /// Campaigns, each with one notice to that many schools.
    #[arg(long, default_value_t = 4)]
    campaigns: usize,
}

fn local(m: u32, d: u32, h: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(2020, m, d, h, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
}

struct Measured {
    schools: usize,
    secs: f64,
    rows: i64,
    bytes: i64,
}

pub async fn run(args: PlanningArgs) -> anyhow::Result<()> {
    ensure!(
        !args.schools.is_empty() && args.campaigns >= 1,
        "--schools, --campaigns"
    );
    let dir = std::env::temp_dir().join(format!("jh-planning-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let settings = Arc::new(Settings::from_toml(
        &format!(
            r#"database_url = "postgres://unused/unused"
[planning]
digests_enabled = false
[endpoints.files]
kind = "file"
dir = "{}"
[recipients]
office = ["files"]
schools = ["files"]
"#,
            dir.display()
        ),
        |_| None,
    )?);
    println!(
        "planning: one ended notice per campaign, {} campaigns, each school and the office told",
        args.campaigns
    );
    println!(
        "{:>8} {:>8} {:>9} {:>10} {:>12} {:>10}",
        "schools", "rows", "secs", "µs/row", "payload MB", "bytes/row"
    );
    let mut all = Vec::new();
    for &n in &args.schools {
        let m = one_size(&args.database_url, &settings, n, args.campaigns).await?;
        println!(
            "{:>8} {:>8} {:>9.3} {:>10.1} {:>12.2} {:>10.0}",
            m.schools,
            m.rows,
            m.secs,
            m.secs * 1e6 / m.rows as f64,
            m.bytes as f64 / 1e6,
            m.bytes as f64 / m.rows as f64
        );
        all.push(m);
    }
    let _ = std::fs::remove_dir_all(&dir);
    if let (Some(small), Some(large)) = (
        all.iter().min_by_key(|m| m.schools),
        all.iter().max_by_key(|m| m.schools),
    ) && large.schools > small.schools
    {
        let per = |m: &Measured| m.secs / m.rows as f64;
        let bytes = |m: &Measured| m.bytes as f64 / m.rows as f64;
        println!(
            "planning small={} large={} time_per_row_growth={:.2} bytes_per_row_growth={:.2}",
            small.schools,
            large.schools,
            per(large) / per(small),
            bytes(large) / bytes(small)
        );
    }
    Ok(())
}

async fn one_size(
    admin: &str,
    settings: &Arc<Settings>,
    n: usize,
    campaigns: usize,
) -> anyhow::Result<Measured> {
    let url = crate::season::create_db(admin).await?;
    let pool = junheng_store::connect(&url, 4, junheng_store::DEFAULT_ACQUIRE_TIMEOUT).await?;
    let def = CampaignDefinition::parse(junheng_workflow::bootstrap::CHANGLE_2020)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let (canonical, sha) = def.canonical();
    for k in 0..campaigns {
        let campaign = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO campaigns (id, code, county, year, time_zone, definition, definition_sha256, phases, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(campaign)
        .bind(format!("plan-{k}"))
        .bind(&def.county)
        .bind(def.year)
        .bind(&def.time_zone)
        .bind(&canonical)
        .bind(&sha)
        .bind(serde_json::to_value(PhaseBoard::new(&def))?)
        .bind(local(2, 1, 0))
        .execute(&pool)
        .await?;
        let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
        let codes: Vec<String> = (0..n).map(|i| format!("{k:02}{i:08}")).collect();
        let names: Vec<String> = (0..n).map(|i| format!("基准{k}校{i}")).collect();
        sqlx::query(
            "INSERT INTO schools (id, campaign_id, code, name, level, town, principal, contacts, state, created_at, updated_at)
             SELECT i, $1, c, nm, 'primary', '宝城街道', '王校长', '[]'::jsonb, 'listed', $2, $2
             FROM UNNEST($3::uuid[], $4::text[], $5::text[]) AS t(i, c, nm)",
        )
        .bind(campaign)
        .bind(local(2, 1, 0))
        .bind(&ids)
        .bind(&codes)
        .bind(&names)
        .execute(&pool)
        .await?;
        let notice = Uuid::now_v7();
        sqlx::query("INSERT INTO notices (id, campaign_id, kind, title, starts_at, ends_at, last_day, created_at) VALUES ($1, $2, 'results', '验收结果公示', $3, $4, '2020-07-09', $3)")
            .bind(notice)
            .bind(campaign)
            .bind(local(7, 3, 9))
            .bind(local(7, 10, 9))
            .execute(&pool)
            .await?;
        let ordinals: Vec<i32> = (1..=n as i32).collect();
        sqlx::query(
            "INSERT INTO notice_schools (notice_id, school_id, ordinal) SELECT $1, s, o FROM UNNEST($2::uuid[], $3::int[]) AS t(s, o)",
        )
        .bind(notice)
        .bind(&ids)
        .bind(&ordinals)
        .execute(&pool)
        .await?;
    }
    let planner = Planner::new(settings.clone(), Arc::new(NoWorkflow));
    let t = Instant::now();
    let report = planner.plan(&pool, local(7, 10, 10)).await?;
    let secs = t.elapsed().as_secs_f64();
    ensure!(
        report.errors.is_empty(),
        "planning failed: {:?}",
        report.errors
    );
    let (rows, bytes): (i64, i64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(octet_length(payload::text)), 0)::bigint FROM outbox",
    )
    .fetch_one(&pool)
    .await?;
    ensure!(
        rows == (campaigns * (n + 1)) as i64,
        "{rows} rows for {campaigns} notices to {n} schools and the office"
    );
    pool.close().await;
    Ok(Measured {
        schools: n,
        secs,
        rows,
        bytes,
    })
}
