//! `junheng demo season`: against the demo county (`deploy/scripts/run.sh`: simulated clock,
//! demo tokens in `.data/demo-tokens.txt`, the office token in `.data/office-token.txt`),
//! replays a whole season, March to September, through the API: the department nominates ten
//! seed schools, nine present and are rated excellent, the 1+X groups are the service's
//! proposal, the panel scores every potential school, the leader proposes and the office
//! confirms the awards. At the end: the awards by class and where the notifications went.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::{Value, json};

use crate::groups::{Rating, counts, join_counts};
use crate::rpc::Client;
use crate::{CampaignArg, Ctx, Failure};

#[derive(Subcommand, Debug)]
pub enum DemoCmd {
    /// Replay a whole season (phases 1–5) on the simulated clock of a fresh demo
    /// (`deploy/scripts/run.sh`), with a progress bar, then print the awards and where the
    /// notifications went.
    Season {
        /// The run command's data directory: demo-tokens.txt, office-token.txt, outbox/.
        #[arg(long, env = "JUNHENG_DATA", default_value = ".data")]
        data: PathBuf,
        /// Where the scheduler writes notifications as files (default: DATA/outbox).
        #[arg(long)]
        outbox: Option<PathBuf>,
        /// How long to wait at the end for the scheduler to send what the season caused.
        #[arg(long, default_value_t = 10)]
        settle_secs: u64,
    },
}

const SEEDS: usize = 10;
const STEPS: usize = 20;

/// The demo's actors, from the tokens file the server wrote on first start.
struct Actors {
    office: Client,
    department: Client,
    leader: Client,
    panel: Vec<(String, Client)>,
}

fn read_demo_tokens(path: &Path) -> anyhow::Result<Vec<(String, String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading the demo tokens {} (start the demo with deploy/scripts/run.sh, or pass --data)",
            path.display()
        )
    })?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                [role, label @ .., token]
                    if ["department", "panel", "leader", "school"].contains(role)
                        && !label.is_empty() =>
                {
                    Some((role.to_string(), label.join(" "), token.to_string()))
                }
                _ => None,
            }
        })
        .collect())
}

/// One line per step, or a bar when standard output is a terminal.
struct Progress {
    step: usize,
    bar: bool,
}

impl Progress {
    fn next(&mut self, what: &str) {
        self.step += 1;
        if self.bar {
            let width = 30;
            let done = self.step * width / STEPS;
            print!(
                "\r\x1b[2K[{}{}] {:>2}/{STEPS} {what}",
                "#".repeat(done),
                "-".repeat(width - done),
                self.step
            );
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
        } else {
            println!("[{:>2}/{STEPS}] {what}", self.step);
        }
    }

    fn finish(&self) {
        if self.bar {
            println!();
        }
    }
}

fn refuse(text: String) -> Failure {
    Failure { code: 6, text }
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x["id"].as_str().map(String::from))
        .collect()
}

pub async fn run(ctx: &Ctx, cmd: DemoCmd) -> Result<(), Failure> {
    let DemoCmd::Season {
        data,
        outbox,
        settle_secs,
    } = cmd;
    let c = &ctx.client;
    let info = c.call("AdminService/GetServerInfo", json!({})).await?;
    if info["demo"] != true || info["clock_mode"] != "simulated" {
        return Err(refuse(format!(
            "error: the server at this address is not a demo on the simulated clock (demo: {}, clock: {}); \
             `junheng demo season` replays a season only against deploy/scripts/run.sh",
            info["demo"], info["clock_mode"]
        )));
    }
    let tokens = read_demo_tokens(&data.join("demo-tokens.txt"))?;
    let office = if c.has_token() {
        c.with_token(c.token_string())
    } else {
        c.with_token(crate::read_token(&data.join("office-token.txt"))?)
    };
    let by_role = |role: &str| -> Vec<(String, String)> {
        tokens
            .iter()
            .filter(|(r, _, _)| r == role)
            .map(|(_, l, t)| (l.clone(), t.clone()))
            .collect()
    };
    let one = |role: &str| -> Result<Client, Failure> {
        by_role(role)
            .into_iter()
            .next()
            .map(|(_, t)| c.with_token(t))
            .ok_or_else(|| anyhow::anyhow!("the demo tokens file holds no {role} token").into())
    };
    let actors = Actors {
        department: one("department")?,
        leader: one("leader")?,
        panel: by_role("panel")
            .into_iter()
            .map(|(l, t)| (l, c.with_token(t)))
            .collect(),
        office,
    };
    let o = &actors.office;
    let id = ctx.campaign(&CampaignArg { campaign: None }).await?;
    let camp = o
        .call("CampaignService/GetCampaign", json!({ "campaign_id": id }))
        .await?;
    let status = |i: usize| {
        camp["phases"][i]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    if status(0) == "PHASE_STATUS_COMPLETED" || (1..5).any(|i| status(i) != "PHASE_STATUS_NOT_OPEN")
    {
        return Err(refuse(
            "error: the demo campaign is past phase 1; a season replays only on a fresh demo: \
             stop deploy/scripts/run.sh, `rm -rf .data`, and start it again"
                .into(),
        ));
    }
    let notices = o
        .call("SeedService/ListNotices", json!({ "campaign_id": id }))
        .await?;
    if notices["notices"].as_array().is_some_and(|a| !a.is_empty()) {
        return Err(refuse(
            "error: phase 1 of the demo campaign already has a notice; a season replays only on a \
             fresh demo: stop deploy/scripts/run.sh, `rm -rf .data`, and start it again"
                .into(),
        ));
    }
    let indicators: Vec<String> = camp["indicators"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["code"].as_str().map(String::from))
        .collect();
    let mut schools: Vec<Value> = o
        .call(
            "SchoolService/ListSchools",
            json!({ "campaign_id": id, "page_size": 1000 }),
        )
        .await?["schools"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    schools.sort_by(|a, b| a["code"].as_str().cmp(&b["code"].as_str()));
    if schools.len() <= SEEDS {
        return Err(refuse(format!(
            "error: the demo campaign has {} schools; a season needs more than {SEEDS}",
            schools.len()
        )));
    }
    let seeds: Vec<Value> = schools[..SEEDS].to_vec();
    let seed_ids = ids(&json!(seeds));
    let potentials: Vec<String> = ids(&json!(schools[SEEDS..]));

    let mut p = Progress {
        step: 0,
        bar: std::io::stdout().is_terminal() && ctx.format == crate::Format::Table,
    };
    let now = || async {
        let i = o.call("AdminService/GetServerInfo", json!({})).await?;
        Ok::<_, Failure>(
            chrono::DateTime::parse_from_rfc3339(i["now"].as_str().unwrap_or_default())
                .map_err(|e| anyhow::anyhow!("the server's clock: {e}"))?,
        )
    };
    let advance = |to: &'static str| async move {
        let to = chrono::DateTime::parse_from_rfc3339(to).expect("a valid instant");
        if now().await? < to {
            o.call(
                "AdminService/AdvanceClock",
                json!({ "to": to.to_rfc3339() }),
            )
            .await?;
        }
        Ok::<_, Failure>(())
    };
    let phase = |method: &'static str, phase: &'static str| {
        let id = id.clone();
        async move {
            o.call(
                &format!("CampaignService/{method}"),
                json!({ "campaign_id": id, "phase": phase }),
            )
            .await?;
            Ok::<_, Failure>(())
        }
    };
    let scores = |f: &dyn Fn(&str) -> f64| -> Vec<Value> {
        indicators
            .iter()
            .map(|i| json!({ "indicator": i, "score": f(i) }))
            .collect()
    };

    // Phase 1, March.
    p.next("阶段一：开启“确定标杆种子校”");
    if status(0) == "PHASE_STATUS_NOT_OPEN" {
        phase("OpenPhase", "PHASE_SEED_DESIGNATION").await?;
    }
    p.next(&format!("阶段一：业务科室提名 {SEEDS} 所种子校候选"));
    for s in &seed_ids {
        let school = actors
            .department
            .call("SchoolService/GetSchool", json!({ "school_id": s }))
            .await?;
        if school["state"] == "nominated" {
            continue;
        }
        actors
            .department
            .call(
                "SeedService/Nominate",
                json!({ "school_id": s, "basis": "办学条件、师资队伍、教育质量达到标杆标准（演示）" }),
            )
            .await?;
    }
    p.next("阶段一：发布拟定名单公示");
    let notice = o
        .call(
            "SeedService/PublishNotice",
            json!({ "campaign_id": id, "kind": "NOTICE_KIND_SEED_CANDIDATES", "school_ids": seed_ids }),
        )
        .await?;
    p.next("时钟：2020-03-09 09:00（公示期满）");
    advance("2020-03-09T09:00:00+08:00").await?;
    p.next("阶段一：结束公示，完成阶段");
    close_notice(o, notice["id"].as_str().unwrap_or_default()).await?;
    phase("CompletePhase", "PHASE_SEED_DESIGNATION").await?;

    // Phase 2, April: nine seeds present; the tenth never does.
    p.next("时钟：2020-04-01 09:00；开启“遴选导师型学校”");
    advance("2020-04-01T09:00:00+08:00").await?;
    phase("OpenPhase", "PHASE_MENTOR_SELECTION").await?;
    p.next(&format!("阶段二：{} 所种子校汇报展示", SEEDS - 1));
    let demo_schools = tokens
        .iter()
        .filter(|(r, _, _)| r == "school")
        .map(|(_, l, t)| (l.clone(), t.clone()))
        .collect::<Vec<_>>();
    let mut seed_clients = Vec::new();
    for (i, s) in seeds.iter().enumerate() {
        let sid = s["id"].as_str().unwrap_or_default();
        let name = s["name"].as_str().unwrap_or_default();
        let client = match demo_schools.iter().find(|(l, _)| l == name) {
            Some((_, t)) => c.with_token(t.clone()),
            None => c.with_token(issue(o, name, "ROLE_SCHOOL", sid).await?.0),
        };
        if i < SEEDS - 1 {
            let practices = ["teachers", "management"]
                .iter()
                .enumerate()
                .map(|(j, ind)| json!({ "indicator": ind, "title": format!("{name}做法{}", j + 1), "description": "演示：做法说明" }))
                .collect::<Vec<_>>();
            client
                .call(
                    "MentorService/SubmitPresentation",
                    json!({
                        "school_id": sid, "document_ref": format!("doc://demo/{}", s["code"].as_str().unwrap_or_default()),
                        "document_sha256": "cd".repeat(32), "practices": practices,
                    }),
                )
                .await?;
        }
        seed_clients.push((sid.to_string(), client));
    }
    p.next("阶段二：评委评议汇报");
    let raters = raters(c, o, &actors.panel).await?;
    o.call(
        "MentorService/FormMentorPanel",
        json!({ "campaign_id": id, "members": panel_members(&raters) }),
    )
    .await?;
    for sid in seed_ids.iter().take(SEEDS - 1) {
        rate_excellent(ctx, &raters, sid).await?;
    }
    p.next("阶段二：确认导师型学校，完成阶段");
    o.call(
        "MentorService/ConfirmMentors",
        json!({ "campaign_id": id, "overrides": [] }),
    )
    .await?;
    phase("CompletePhase", "PHASE_MENTOR_SELECTION").await?;

    // Phase 3, May.
    p.next("时钟：2020-05-06 09:00；开启“1+X结对”，确定分组");
    advance("2020-05-06T09:00:00+08:00").await?;
    phase("OpenPhase", "PHASE_PAIRING").await?;
    let groups = o
        .call(
            "PairingService/ProposePairing",
            json!({ "campaign_id": id }),
        )
        .await?["groups"]
        .clone();
    o.call(
        "PairingService/SetPairing",
        json!({ "campaign_id": id, "groups": groups }),
    )
    .await?;
    p.next(&format!("阶段三：{} 所潜力校基线测评", potentials.len()));
    for s in &potentials {
        actors
            .department
            .call(
                "PairingService/RecordBaseline",
                json!({ "school_id": s, "scores": scores(&|_| 60.0) }),
            )
            .await?;
    }
    p.next("阶段三：导师型学校记录帮扶活动");
    for g in groups.as_array().into_iter().flatten() {
        let mentor = g["mentor_school_id"].as_str().unwrap_or_default();
        let ps = ids_of(&g["potential_school_ids"]);
        let Some((_, client)) = seed_clients.iter().find(|(s, _)| s == mentor) else {
            continue;
        };
        if ps.is_empty() {
            continue;
        }
        for j in 0..4 {
            client
                .call(
                    "PairingService/LogAssistance",
                    json!({
                        "mentor_school_id": mentor, "potential_school_id": ps[j % ps.len()],
                        "date": format!("2020-05-0{}", j + 1), "indicators": ["teaching"],
                        "description": "送教上门、同课异构（演示）", "evidence_ref": "doc://demo/activity",
                    }),
                )
                .await?;
        }
    }
    p.next("阶段三：完成阶段");
    phase("CompletePhase", "PHASE_PAIRING").await?;

    // Phase 4, July.
    p.next("时钟：2020-07-02 09:00；开启“验收评估”，组建验收组");
    advance("2020-07-02T09:00:00+08:00").await?;
    phase("OpenPhase", "PHASE_ACCEPTANCE").await?;
    o.call(
        "AcceptanceService/FormPanel",
        json!({ "campaign_id": id, "members": panel_members(&raters) }),
    )
    .await?;
    p.next(&format!(
        "阶段四：验收组 {} 人为 {} 所潜力校评分",
        raters.len(),
        potentials.len()
    ));
    for (i, s) in potentials.iter().enumerate() {
        for (_, _, client) in &raters {
            client
                .call(
                    "AcceptanceService/SubmitScores",
                    json!({ "school_id": s, "report_score": 70.0, "onsite": scores(&|ind| level(i, ind)) }),
                )
                .await?;
        }
    }
    p.next("阶段四：发布验收结果公示");
    let notice = o
        .call(
            "AcceptanceService/PublishResultsNotice",
            json!({ "campaign_id": id }),
        )
        .await?;
    p.next("时钟：2020-07-10 09:00；结束公示，完成阶段");
    advance("2020-07-10T09:00:00+08:00").await?;
    close_notice(o, notice["id"].as_str().unwrap_or_default()).await?;
    phase("CompletePhase", "PHASE_ACCEPTANCE").await?;

    // Phase 5, September.
    p.next("时钟：2020-09-01 09:00；开启“评选表彰”，领导审阅建议名单");
    advance("2020-09-01T09:00:00+08:00").await?;
    phase("OpenPhase", "PHASE_AWARDS").await?;
    actors
        .leader
        .call("AwardService/ProposeAwards", json!({ "campaign_id": id }))
        .await?;
    p.next("阶段五：确认表彰，完成阶段");
    let awards = o
        .call(
            "AwardService/ConfirmAwards",
            json!({ "campaign_id": id, "overrides": [] }),
        )
        .await?;
    phase("CompletePhase", "PHASE_AWARDS").await?;

    p.next("通知：等待调度服务发送");
    let deliveries = settle(c, &id, settle_secs).await;
    p.finish();

    // The summary.
    let list = &awards["awards"];
    println!(
        "表彰：{} 所学校（{}）",
        list.as_array().map_or(0, Vec::len),
        join_counts(&counts(list, "class_label"))
    );
    match deliveries {
        Ok(d) => {
            println!("通知：{} 条", d.len());
            let d = Value::Array(d);
            println!("  按渠道：{}", join_counts(&counts(&d, "endpoint")));
            println!("  按类别：{}", join_counts(&counts(&d, "kind")));
            println!("  按状态：{}", join_counts(&counts(&d, "status")));
        }
        Err(e) => println!(
            "通知：调度服务不可用（{}）",
            e.text.lines().next().unwrap_or_default()
        ),
    }
    let outbox = outbox.unwrap_or_else(|| data.join("outbox"));
    match std::fs::read_dir(&outbox) {
        Ok(dir) => println!(
            "  文件渠道的通知在 {}（{} 个文件）",
            outbox.display(),
            dir.filter_map(Result::ok).count()
        ),
        Err(_) => println!("  （未找到文件渠道目录 {}）", outbox.display()),
    }
    Ok(())
}

fn ids_of(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(String::from))
        .collect()
}

/// The on-site level the panel finds at potential school `i`, as in tests/season.rs: 80
/// everywhere (progress), 65 (compliance), 66 with 57 on 校园文化 (one near miss), 50 (veto).
fn level(i: usize, indicator: &str) -> f64 {
    match i % 4 {
        0 => 80.0,
        1 => 65.0,
        2 if indicator == "culture" => 57.0,
        2 => 66.0,
        _ => 50.0,
    }
}

async fn close_notice(o: &Client, notice: &str) -> Result<(), Failure> {
    let n = o
        .call("SeedService/GetNotice", json!({ "notice_id": notice }))
        .await?;
    // The scheduler may have closed it already.
    if n["status"] != "ended" {
        match o
            .call("SeedService/CloseNotice", json!({ "notice_id": notice }))
            .await
        {
            Ok(_) => {}
            Err(crate::rpc::CallError::Status(s))
                if s.code() == tonic::Code::FailedPrecondition =>
            {
                let n = o
                    .call("SeedService/GetNotice", json!({ "notice_id": notice }))
                    .await?;
                if n["status"] != "ended" {
                    return Err(crate::rpc::CallError::Status(s).into());
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

async fn issue(
    o: &Client,
    name: &str,
    role: &str,
    school: &str,
) -> Result<(String, String), Failure> {
    let r = o
        .call(
            "AdminService/IssueToken",
            json!({ "name": name, "role": role, "school_id": school }),
        )
        .await?;
    Ok((
        r["token"].as_str().unwrap_or_default().to_string(),
        r["actor"].as_str().unwrap_or_default().to_string(),
    ))
}

/// The raters of phase 2 and the panel of phase 4: the demo's panel members, with more issued
/// by the office when the demo has fewer than three (each panel needs at least three).
/// (actor, name, client)
async fn raters(
    c: &Client,
    o: &Client,
    panel: &[(String, Client)],
) -> Result<Vec<(String, String, Client)>, Failure> {
    const AT_LEAST: usize = 3;
    let listed = o
        .call("AdminService/ListTokens", json!({ "include_dead": false }))
        .await?;
    let mut out = Vec::new();
    for (name, client) in panel {
        let actor = listed["tokens"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["name"] == *name.as_str())
            .and_then(|t| t["actor"].as_str())
            .unwrap_or_default()
            .to_string();
        out.push((actor, name.clone(), c.with_token(client.token_string())));
    }
    for n in out.len()..AT_LEAST {
        let name = format!("评委{}（演示）", n + 1);
        let (token, actor) = issue(o, &name, "ROLE_PANEL", "").await?;
        out.push((actor, name, c.with_token(token)));
    }
    Ok(out)
}

/// The members of a panel as FormPanel and FormMentorPanel take them: the first two from a
/// bureau department, the rest high-school principals; none belongs to a campaign school.
fn panel_members(raters: &[(String, String, Client)]) -> Vec<Value> {
    raters
        .iter()
        .enumerate()
        .map(|(m, (actor, name, _))| {
            json!({
                "actor": actor, "name": name,
                "affiliation": if m < 2 { "AFFILIATION_DEPARTMENT" } else { "AFFILIATION_HIGH_SCHOOL" },
            })
        })
        .collect()
}

/// Phase 2's ratings: every rater rates every indicator excellent and accepts every practice.
/// The one place to change when the phase-2 panel changes (appointed members, recusal,
/// `min_raters`).
async fn rate_excellent(
    ctx: &Ctx,
    raters: &[(String, String, Client)],
    school: &str,
) -> Result<(), Failure> {
    for (_, _, client) in raters {
        let as_rater = Ctx {
            client: client.with_token(client.token_string()),
            format: ctx.format,
            tz: ctx.tz,
        };
        crate::groups::rate(
            &as_rater,
            &CampaignArg { campaign: None },
            school,
            &[],
            Some(Rating::Excellent),
            &[],
            "",
        )
        .await?;
    }
    Ok(())
}

/// Waits until the scheduler's deliveries stop changing (or the time is up) and returns them.
async fn settle(c: &Client, campaign: &str, secs: u64) -> Result<Vec<Value>, Failure> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let mut last: Option<Vec<(String, String)>> = None;
    loop {
        let all = list_deliveries(c, campaign).await?;
        let shape: Vec<(String, String)> = all
            .iter()
            .map(|d| {
                (
                    d["id"].as_str().unwrap_or_default().to_string(),
                    d["status"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let busy = all.iter().any(|d| d["status"] == "sending");
        if (!busy && last.as_ref() == Some(&shape)) || std::time::Instant::now() >= deadline {
            return Ok(all);
        }
        last = Some(shape);
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

async fn list_deliveries(c: &Client, campaign: &str) -> Result<Vec<Value>, Failure> {
    let mut out = Vec::new();
    let mut page = String::new();
    loop {
        let r = c
            .call(
                "SchedulerService/ListDeliveries",
                json!({ "campaign_id": campaign, "page_size": 1000, "page_token": page }),
            )
            .await?;
        out.extend(r["deliveries"].as_array().cloned().unwrap_or_default());
        page = r["next_page_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if page.is_empty() {
            return Ok(out);
        }
    }
}
