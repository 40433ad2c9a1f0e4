//! First start: the bootstrap office token and the demo county.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use junheng_core::{CampaignDefinition, CaseState, Effect, PhaseBoard, Role};
use junheng_store::audit::{self, AuditCtx};
use junheng_store::campaigns::{self, CampaignRow};
use junheng_store::schools::{self, NewSchool};
use junheng_store::tokens::{self, TokenRow};
use junheng_store::{PgConnection, PgPool};
use uuid::Uuid;

use crate::app::admin::new_token;

/// The shipped Changle 2020 definition.
pub const CHANGLE_2020: &str = include_str!("../../../deploy/campaigns/changle-2020.toml");

/// Changle's eight township-level units (NBS division codes 370725001…116).
pub const TOWNS: [&str; 8] = [
    "宝都街道",
    "宝城街道",
    "朱刘街道",
    "五图街道",
    "乔官镇",
    "鄌郚镇",
    "红河镇",
    "营丘镇",
];

/// Creates the scheduler's own token (role `scheduler`, county-wide: it closes ended notices
/// of every campaign and nothing else) unless `fixed` is already stored; returns the secret.
pub async fn ensure_scheduler_token(pool: &PgPool, fixed: Option<&str>) -> anyhow::Result<String> {
    let mut conn = pool.acquire().await?;
    let token = match fixed {
        Some(t) if tokens::find(&mut conn, t).await?.is_some() => return Ok(t.to_string()),
        Some(t) => t.to_string(),
        None => new_token(),
    };
    tokens::insert(
        &mut conn,
        &token,
        &TokenRow {
            actor: format!("scheduler:{}", Uuid::now_v7().simple()),
            name: "调度服务".into(),
            role: Role::Scheduler.code().into(),
            issued_by: Some("system:bootstrap".into()),
            ..TokenRow::default()
        },
    )
    .await?;
    Ok(token)
}

/// Creates an office token when none exists. Returns it (shown once) or None.
pub async fn ensure_office_token(
    pool: &PgPool,
    fixed: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let mut conn = pool.acquire().await?;
    if let Some(t) = fixed {
        if tokens::find(&mut conn, t).await?.is_none() {
            tokens::insert(
                &mut conn,
                t,
                &TokenRow {
                    actor: "office:bootstrap".into(),
                    name: "督导室（初始令牌）".into(),
                    role: "office".into(),
                    ..TokenRow::default()
                },
            )
            .await?;
        }
        return Ok(Some(t.to_string()));
    }
    if tokens::count_office(&mut conn).await? > 0 {
        return Ok(None);
    }
    let token = new_token();
    tokens::insert(
        &mut conn,
        &token,
        &TokenRow {
            actor: "office:bootstrap".into(),
            name: "督导室（初始令牌）".into(),
            role: "office".into(),
            ..TokenRow::default()
        },
    )
    .await?;
    Ok(Some(token))
}

/// The demo schools: about 40 fictional schools spread over Changle's 8 real towns.
/// The names are patterned and the codes invented — the data set is fictional.
pub fn demo_schools() -> Vec<NewSchool> {
    let mut out = Vec::new();
    let mut n = 0;
    let mut add = |name: String, level: &str, town: &str, principal: String| {
        n += 1;
        let code = format!("37072{n:05}");
        out.push(NewSchool {
            contacts: serde_json::json!([{ "name": format!("{principal}（校长）"), "email": format!("s{code}@schools.changle.example"), "mobile": "", "robots": [] }]),
            code: junheng_core::values::SchoolCode::parse(&code).expect("a demo code is 10 digits"),
            name,
            level: level.to_string(),
            town: town.to_string(),
            principal,
        });
    };
    let surnames = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"];
    let given = [
        "建国", "秀兰", "志强", "海燕", "立新", "春梅", "文博", "晓东",
    ];
    let mut who = 0usize;
    let mut principal = || {
        who += 1;
        format!(
            "{}{}",
            surnames[who % surnames.len()],
            given[(who / surnames.len() + who) % given.len()]
        )
    };
    for (i, town) in TOWNS.iter().enumerate() {
        add(
            format!("昌乐县{town}中心小学"),
            "primary",
            town,
            principal(),
        );
        add(
            format!("昌乐县{town}第二小学"),
            "primary",
            town,
            principal(),
        );
        add(
            format!("昌乐县{town}第三小学"),
            "primary",
            town,
            principal(),
        );
        add(format!("昌乐县{town}初级中学"), "junior", town, principal());
        if i % 2 == 0 {
            add(
                format!("昌乐县{town}九年一贯制学校"),
                "nine_year",
                town,
                principal(),
            );
        }
    }
    add(
        "昌乐县实验小学（示例）".into(),
        "primary",
        "宝都街道",
        principal(),
    );
    add(
        "昌乐县实验中学（示例）".into(),
        "junior",
        "宝都街道",
        principal(),
    );
    add(
        "昌乐县宝城街道第四小学".into(),
        "primary",
        "宝城街道",
        principal(),
    );
    add(
        "昌乐县朱刘街道第四小学".into(),
        "primary",
        "朱刘街道",
        principal(),
    );
    out
}

async fn insert_token(
    conn: &mut PgConnection,
    out: &mut String,
    label: &str,
    role: &str,
    school: Option<Uuid>,
    campaign: Uuid,
) -> anyhow::Result<()> {
    let token = new_token();
    let actor = format!("{role}:{}", Uuid::now_v7().simple());
    tokens::insert(
        conn,
        &token,
        &TokenRow {
            actor,
            name: label.into(),
            role: role.into(),
            school_id: school,
            campaigns: Some(vec![campaign]),
            issued_by: Some("system:demo".into()),
            demo: true,
            ..TokenRow::default()
        },
    )
    .await?;
    writeln!(out, "{role:<10} {label:<28} {token}")?;
    Ok(())
}

/// Loads the Changle 2020 campaign with the demo schools unless a campaign with its code
/// exists. Returns a printable list of demo tokens when it loaded something.
pub async fn load_demo(pool: &PgPool, now: DateTime<Utc>) -> anyhow::Result<Option<String>> {
    let def = CampaignDefinition::parse(CHANGLE_2020).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut tx = pool.begin().await?;
    if campaigns::list(&mut tx)
        .await?
        .iter()
        .any(|c| c.code == def.code)
    {
        return Ok(None);
    }
    let (canonical, sha) = def.canonical();
    let id = Uuid::now_v7();
    campaigns::insert(
        &mut tx,
        &CampaignRow {
            id,
            code: def.code.clone(),
            county: def.county.clone(),
            year: def.year,
            time_zone: def.time_zone.clone(),
            definition: canonical,
            definition_sha256: sha,
            phases: serde_json::to_value(PhaseBoard::new(&def))?,
            mentors_confirmed_at: None,
            results_notice_id: None,
            results_final_at: None,
            awards_confirmed_at: None,
            created_at: now,
        },
    )
    .await?;
    let rows = schools::insert_many(
        &mut tx,
        junheng_core::CampaignId::new(id),
        &demo_schools(),
        CaseState::Enrolled,
        now,
    )
    .await?;
    let ctx = AuditCtx {
        campaign: id,
        actor: "system:demo".into(),
        role: Role::Office,
        request_id: "demo-load".into(),
        at: now,
        trace_context: None,
    };
    let mut effects = vec![Effect::event(
        "campaign.created",
        None,
        serde_json::Value::Null,
        serde_json::json!({ "code": def.code, "demo": true }),
        None,
    )];
    effects.extend(rows.iter().map(|r| {
        Effect::event(
            "school.registered",
            Some(r.id),
            serde_json::Value::Null,
            serde_json::json!({ "code": r.code, "name": r.name, "state": r.state }),
            None,
        )
    }));
    audit::apply(&mut tx, &ctx, &effects).await?;
    let mut out = format!(
        "campaign  {} ({} {}), id {id}\n",
        def.code, def.county, def.year
    );
    insert_token(
        &mut tx,
        &mut out,
        "业务科室（演示）",
        "department",
        None,
        id,
    )
    .await?;
    insert_token(&mut tx, &mut out, "验收组成员甲（演示）", "panel", None, id).await?;
    insert_token(&mut tx, &mut out, "验收组成员乙（演示）", "panel", None, id).await?;
    // Three: the phase-2 panel needs mentor.min_raters (3) appointed members.
    insert_token(&mut tx, &mut out, "验收组成员丙（演示）", "panel", None, id).await?;
    insert_token(
        &mut tx,
        &mut out,
        "县教育局领导（演示）",
        "leader",
        None,
        id,
    )
    .await?;
    for r in rows.iter().take(3) {
        insert_token(
            &mut tx,
            &mut out,
            &r.name,
            "school",
            Some(r.id.as_uuid()),
            id,
        )
        .await?;
    }
    writeln!(
        out,
        "schools   {} fictional demo schools over {} towns; school ids via SchoolService.ListSchools",
        rows.len(),
        TOWNS.len()
    )?;
    tx.commit().await?;
    Ok(Some(out))
}
