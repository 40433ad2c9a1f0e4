//! The curated groups of phases 2–5 and `junheng demo season`, as processes against the real
//! servers: a demo-mode workflow (the demo county and its tokens, the simulated clock) and the
//! scheduler beside it writing notifications as files.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use junheng_tests::{OFFICE_TOKEN, at, fresh_db};
use junheng_workflow::{ClockMode, ServeOptions};
use serde_json::Value;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn junheng(env: &[(&str, String)], args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_junheng"));
    cmd.args(args)
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .env_remove("JUNHENG_TOKEN")
        .env_remove("JUNHENG_TOKEN_FILE")
        .env_remove("JUNHENG_CONFIG")
        .env_remove("JUNHENG_DATA");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary runs")
}

/// Every command of the clap tree, found by walking `--help`'s command lists.
fn walk(path: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut args = path.clone();
    args.push("--help".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = junheng(&[], &args);
    assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
    let help = text(&o.stdout);
    assert!(help.contains("Usage: junheng"), "{args:?}: {help}");
    out.push(path.clone());
    let Some(list) = help.split("Commands:\n").nth(1) else {
        return;
    };
    for line in list.lines() {
        if !line.starts_with("  ") || line.trim().is_empty() {
            break;
        }
        let name = line.split_whitespace().next().unwrap_or_default();
        if name == "help" {
            continue;
        }
        let mut p = path.clone();
        p.push(name.to_string());
        walk(p, out);
    }
}

#[test]
fn every_command_of_the_tree_has_help_and_is_in_the_completions_and_man_page() {
    let mut all = Vec::new();
    walk(vec![], &mut all);
    for group in [
        "mentor",
        "pairing",
        "acceptance",
        "award",
        "obligation",
        "demo",
    ] {
        assert!(
            all.iter().any(|p| p == &[group.to_string()]),
            "{group} in {all:?}"
        );
    }
    for leaf in [
        "mentor present",
        "mentor rate",
        "mentor confirm",
        "pairing set",
        "pairing assist",
        "acceptance form-panel",
        "acceptance score",
        "award confirm",
        "award consequences",
        "audit list",
        "obligation list",
        "delivery show",
        "delivery resend",
        "delivery upcoming",
        "campaign create",
        "campaign extend",
        "school register",
        "school change-principal",
        "seed withdraw",
        "seed apply",
        "seed review",
        "seed opinion",
        "seed applications",
        "demo season",
    ] {
        assert!(all.iter().any(|p| p.join(" ") == leaf), "{leaf} in {all:?}");
    }
    assert!(all.len() > 70, "{} commands", all.len());
    let bash = text(&junheng(&[], &["completions", "bash"]).stdout);
    for p in &all {
        if let Some(last) = p.last() {
            assert!(bash.contains(last.as_str()), "bash completions know {last}");
        }
    }
    let man = text(&junheng(&[], &["man"]).stdout);
    for group in [
        "mentor",
        "pairing",
        "acceptance",
        "award",
        "obligation",
        "demo",
    ] {
        assert!(
            man.contains(&format!("junheng\\-{group}")) || man.contains(group),
            "man: {group}"
        );
    }
}

/// A demo like `deploy/scripts/run.sh` in-process: demo county, tokens file, simulated clock
/// from 2020-03-02 09:00, the scheduler planning and writing files to DIR/outbox.
struct Demo {
    data: PathBuf,
    env: Vec<(&'static str, String)>,
}

async fn demo() -> Demo {
    let (pool, db) = fresh_db().await;
    junheng_workflow::bootstrap::ensure_office_token(&pool, Some(OFFICE_TOKEN))
        .await
        .expect("office token");
    let start = at("2020-03-02T09:00:00+08:00");
    let tokens = junheng_workflow::bootstrap::load_demo(&pool, start)
        .await
        .expect("demo loads")
        .expect("first load");
    let data = std::env::temp_dir().join(format!("junheng-cli-demo-{}", uuid_like()));
    std::fs::create_dir_all(data.join("outbox")).unwrap();
    std::fs::write(data.join("demo-tokens.txt"), tokens).unwrap();
    let mut options = ServeOptions::local(ClockMode::Simulated { start: Some(start) });
    options.demo = true;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let p = pool.clone();
    tokio::spawn(async move {
        junheng_workflow::serve(p, options, listener, std::future::pending())
            .await
            .expect("workflow serves")
    });
    let settings = junheng_scheduler::Settings::from_toml(
        &format!(
            r#"
            database_url = "postgres://unused/unused"
            clock = "simulated"
            [planning]
            skip_kinds = ["close_notice"]
            [endpoints.outbox-files]
            kind = "file"
            dir = "{}"
            [recipients]
            office = ["outbox-files"]
            leadership = ["outbox-files"]
            department = ["outbox-files"]
            "#,
            data.join("outbox").display()
        ),
        |_| None,
    )
    .expect("settings");
    let settings = Arc::new(settings);
    let sched = junheng_scheduler::grpc::start(pool.clone(), settings.clone(), "127.0.0.1:0")
        .await
        .expect("scheduler serves");
    let scheduler_url = sched.url();
    std::mem::forget(sched);
    // The scheduler's loop is not Send: it gets a thread and a runtime (and a pool) of its own.
    drop(pool);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let admin = std::env::var("DATABASE_URL").expect("DATABASE_URL");
            let opts = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&admin)
                .expect("DATABASE_URL parses")
                .database(&db);
            let pool = sqlx::PgPool::connect_with(opts)
                .await
                .expect("scheduler pool");
            let s = junheng_scheduler::Scheduler::new(
                pool,
                settings,
                Arc::new(junheng_scheduler::NoWorkflow),
            )
            .expect("scheduler");
            let _ = s.run(std::future::pending()).await;
        })
    });
    Demo {
        env: vec![
            ("JUNHENG_ADDR", addr.to_string()),
            ("JUNHENG_SCHEDULER_ADDR", scheduler_url),
            ("JUNHENG_TOKEN", OFFICE_TOKEN.to_string()),
        ],
        data,
    }
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

impl Demo {
    async fn run(&self, args: &[&str]) -> Output {
        let env = self.env.clone();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.clone())).collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            junheng(&env, &args)
        })
        .await
        .unwrap()
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "junheng {args:?}: {}{}",
            text(&out.stderr),
            text(&out.stdout)
        );
        text(&out.stdout)
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a).await).expect("JSON")
    }

    fn data(&self) -> &Path {
        &self.data
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_season_replays_the_year_and_every_group_reads_it_back() {
    let d = demo().await;
    let data = d.data().display().to_string();

    // Without a terminal: one line per step, then the awards and where notifications went.
    let out = d.ok(&["demo", "season", "--data", &data]).await;
    assert!(out.contains("[ 1/20] 阶段一"), "{out}");
    assert!(out.contains("[20/20] 通知"), "{out}");
    assert!(!out.contains('\r'), "no bar without a terminal: {out}");
    let awards_line = out
        .lines()
        .find(|l| l.starts_with("表彰："))
        .unwrap_or_else(|| panic!("{out}"));
    // Worked out as in tests/season.rs: 9 mentors (2 contribution, 7 model), the seed that
    // never presented withheld, 30 potentials by level (8 progress, 15 compliance, 7 veto).
    assert_eq!(
        awards_line,
        "表彰：40 所学校（进步校 8、达标校 15、一票否决 7、标兵校 7、贡献校 2、不予评定 1）",
        "{out}"
    );
    let notices_line = out
        .lines()
        .find(|l| l.starts_with("通知："))
        .unwrap_or_else(|| panic!("{out}"));
    let n: usize = notices_line
        .trim_start_matches("通知：")
        .trim_end_matches(" 条")
        .parse()
        .unwrap_or_else(|_| panic!("{out}"));
    assert!(n > 0, "{out}");
    assert!(out.contains("按渠道：outbox-files"), "{out}");
    assert!(out.contains("按类别："), "{out}");
    assert!(
        out.contains(&format!("文件渠道的通知在 {data}/outbox")),
        "{out}"
    );

    // The awards, as the office lists them: the classes add up to the 40 printed.
    let awards = d.json(&["award", "list"]).await;
    let list = awards["awards"].as_array().unwrap();
    assert_eq!(list.len(), 40);
    let table = d.ok(&["award", "list"]).await;
    for a in list {
        let label = a["class_label"].as_str().unwrap();
        assert!(awards_line.contains(label), "{label} in {awards_line}");
        assert!(table.contains(label));
    }
    let dry = d.run(&["award", "confirm", "--dry-run"]).await;
    assert!(
        text(&dry.stderr).contains("dry run: 40 award(s) would be confirmed"),
        "{}",
        text(&dry.stderr)
    );

    // Phase 2: one mentor school's presentation (named by its Chinese name), the practices.
    let pairing = d.json(&["pairing", "show"]).await;
    let mentor_id = pairing["groups"][0]["mentor_school_id"]
        .as_str()
        .unwrap()
        .to_string();
    let school = d.json(&["school", "show", &mentor_id]).await;
    let first = school["name"].as_str().unwrap().to_string();
    let shown = d.ok(&["mentor", "show", &first]).await;
    assert!(
        shown.contains("做法1") && shown.contains("评分人数 3"),
        "{shown}"
    );
    let practices = d.ok(&["mentor", "practices"]).await;
    assert_eq!(practices.lines().count(), 1 + 18, "{practices}");
    assert!(practices.contains("教师专业成长"), "{practices}");

    // Phase 3: the groups and the activities.
    let groups = d.ok(&["pairing", "show"]).await;
    assert_eq!(groups.lines().count(), 1 + 9, "{groups}");
    // A dry run of setting a group, the mentor by name and its potentials by code.
    let p0 = &pairing["groups"][0]["potential_school_ids"];
    let mut codes = Vec::new();
    for p in p0.as_array().unwrap().iter().take(2) {
        let s = d.json(&["school", "show", p.as_str().unwrap()]).await;
        codes.push(s["code"].as_str().unwrap().to_string());
    }
    let group = format!("{first}={}", codes.join(","));
    let dry = d
        .run(&["pairing", "set", "--group", &group, "--dry-run"])
        .await;
    assert!(
        text(&dry.stderr).contains("dry run: 1 group(s) with 2 potential school(s) would be set"),
        "{}",
        text(&dry.stderr)
    );
    // The table names the schools (JSON keeps the ids).
    assert!(
        text(&dry.stdout).contains(&first) && !text(&dry.stdout).contains(&mentor_id),
        "{}",
        text(&dry.stdout)
    );
    let acts = d.json(&["pairing", "activities", "--mentor", &first]).await;
    assert_eq!(acts["activities"].as_array().unwrap().len(), 4);

    // Phase 4: the panel and the final results.
    let panel = d.ok(&["acceptance", "panel"]).await;
    assert!(
        panel.contains("验收组成员甲（演示）") && panel.contains("high-school"),
        "{panel}"
    );
    let leader = std::fs::read_to_string(d.data().join("demo-tokens.txt"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("leader"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap()
        .to_string();
    let mut as_leader = Demo {
        data: d.data.clone(),
        env: d.env.clone(),
    };
    as_leader.env.retain(|(k, _)| *k != "JUNHENG_TOKEN");
    as_leader.env.push(("JUNHENG_TOKEN", leader));
    let results = as_leader.ok(&["acceptance", "results"]).await;
    assert!(results.contains("（最终结果）"), "{results}");
    // (After the awards GetResults lists no rows any more: reported, not asserted here.)

    // Phase 5's consequences, obligations, the audit trail.
    let cons = d.ok(&["award", "consequences"]).await;
    assert!(
        cons.contains("结果运用") && cons.contains("教师节大会集体表彰"),
        "{cons}"
    );
    let obligations = d.ok(&["obligation", "list", "--all"]).await;
    assert!(obligations.contains("done"), "{obligations}");
    let events = d.ok(&["audit", "list", "--limit", "3"]).await;
    assert!(events.contains("campaign.created"), "{events}");

    // Deliveries: one shown with its text, a resend as a dry run.
    let list = d.json(&["delivery", "list"]).await;
    let first_delivery = list["deliveries"][0]["id"].as_str().unwrap().to_string();
    let shown = d.ok(&["delivery", "show", &first_delivery]).await;
    assert!(shown.contains(&first_delivery), "{shown}");
    let dry = d
        .run(&["delivery", "resend", &first_delivery, "--dry-run"])
        .await;
    assert!(
        text(&dry.stderr).contains("dry run: 1 delivery(ies) would be sent again"),
        "{}",
        text(&dry.stderr)
    );
    let upcoming = d
        .ok(&[
            "delivery",
            "upcoming",
            "--until",
            "2020-12-31T00:00:00+08:00",
        ])
        .await;
    assert!(
        upcoming.trim_start().starts_with("时间") && upcoming.contains("每日汇总"),
        "{upcoming}"
    );

    // A school's new principal, named by the school's Chinese name.
    let school = list_school(&d).await;
    let changed = d
        .ok(&[
            "school",
            "change-principal",
            &school,
            "--name",
            "孙新任",
            "--reason",
            "工作调动",
        ])
        .await;
    assert!(changed.contains("孙新任"), "{changed}");
    let dry = d
        .run(&[
            "school",
            "register",
            "--dry-run",
            "--school",
            "3707299999,昌乐县演示新校,primary,宝都街道,赵校长",
        ])
        .await;
    assert!(text(&dry.stdout).contains("昌乐县演示新校"));
    assert!(text(&dry.stderr).contains("dry run: 1 school(s) would be registered"));

    // The season is over: a phase cannot be extended any more (exit 6), and a second replay
    // is refused with what to do.
    let again = d.run(&["demo", "season", "--data", &data]).await;
    assert_eq!(again.status.code(), Some(6), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains("rm -rf .data"),
        "{}",
        text(&again.stderr)
    );
    let ext = d
        .run(&[
            "campaign",
            "extend",
            "awards",
            "--to",
            "2020-10-30",
            "--reason",
            "延期",
        ])
        .await;
    assert_eq!(ext.status.code(), Some(6), "{}", text(&ext.stderr));
    let _ = std::fs::remove_dir_all(d.data());
}

async fn list_school(d: &Demo) -> String {
    let s = d.json(&["school", "list", "--limit", "1"]).await;
    s["schools"][0]["name"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn demo_season_refuses_a_server_that_is_not_a_demo() {
    let app = junheng_tests::App::spawn(ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    })
    .await;
    let env = [
        ("JUNHENG_ADDR", app.server.addr.to_string()),
        ("JUNHENG_TOKEN", OFFICE_TOKEN.to_string()),
    ];
    let out = tokio::task::spawn_blocking(move || junheng(&env, &["demo", "season"]))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("not a demo")
            && text(&out.stderr).contains("deploy/scripts/run.sh"),
        "{}",
        text(&out.stderr)
    );
}

/// Runs commands as the demo's actors and keeps what a user would have seen, for the notes
/// (written to $JUNHENG_CLI_SESSION when set).
struct Session<'a> {
    d: &'a Demo,
    log: String,
    tokens: Vec<(String, String)>,
}

impl Session<'_> {
    fn token(&self, role: &str) -> String {
        self.tokens
            .iter()
            .find(|(r, _)| r == role)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| panic!("a {role} token"))
    }

    /// As `who` (a role of the demo tokens, or `office`); `shown` records it in the session.
    async fn run(&mut self, who: &str, shown: bool, args: &[&str]) -> String {
        let mut env = self.d.env.clone();
        if who != "office" {
            let t = if who.len() > 20 {
                who.to_string()
            } else {
                self.token(who)
            };
            env.retain(|(k, _)| *k != "JUNHENG_TOKEN");
            env.push(("JUNHENG_TOKEN", t));
        }
        let a: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let out = tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.clone())).collect();
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            junheng(&env, &a)
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "junheng {args:?}: {}",
            text(&out.stderr)
        );
        if shown {
            let quoted: Vec<String> = args
                .iter()
                .map(|a| {
                    if a.contains([' ', '=', ',', '（']) || a.is_empty() {
                        format!("'{a}'")
                    } else {
                        a.to_string()
                    }
                })
                .collect();
            let role = if who.len() > 20 { "school" } else { who };
            self.log.push_str(&format!(
                "$ JUNHENG_TOKEN=$({role}) junheng {}\n{}{}\n",
                quoted.join(" "),
                text(&out.stdout),
                text(&out.stderr)
            ));
        }
        text(&out.stdout)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phases_one_to_three_by_the_curated_commands_as_the_demo_actors() {
    let d = demo().await;
    let tokens = std::fs::read_to_string(d.data().join("demo-tokens.txt"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() >= 3).then(|| (w[0].to_string(), w[w.len() - 1].to_string()))
        })
        .collect();
    let mut s = Session {
        d: &d,
        log: String::new(),
        tokens,
    };
    let list: Value = serde_json::from_str(
        &s.run(
            "office",
            false,
            &["school", "list", "-o", "json", "--limit", "1000"],
        )
        .await,
    )
    .unwrap();
    let mut schools: Vec<Value> = list["schools"].as_array().unwrap().clone();
    schools.sort_by(|a, b| a["code"].as_str().cmp(&b["code"].as_str()));
    let name = |i: usize| schools[i]["name"].as_str().unwrap().to_string();
    let code = |i: usize| schools[i]["code"].as_str().unwrap().to_string();

    // Phase 1: ten seeds nominated by code, a self-application with a department's opinion.
    s.run("office", false, &["campaign", "open", "seed-designation"])
        .await;
    let codes: Vec<String> = (0..10).map(code).collect();
    let mut args = vec!["seed", "nominate", "--basis", "达标"];
    args.extend(codes.iter().map(String::as_str));
    s.run("department", false, &args).await;
    let id10 = schools[10]["id"].as_str().unwrap().to_string();
    let t10 = s
        .run(
            "office",
            false,
            &[
                "token",
                "issue",
                "--name",
                &name(10),
                "--role",
                "school",
                "--school",
                &id10,
            ],
        )
        .await
        .trim()
        .to_string();
    let app_out = s
        .run(
            &t10,
            false,
            &[
                "seed",
                "apply",
                &name(10),
                "--rest",
                "70",
                "--statement",
                "申请",
                "-o",
                "id",
            ],
        )
        .await;
    let application = app_out.trim().to_string();
    let opinion = s
        .run(
            "department",
            false,
            &[
                "seed",
                "opinion",
                &application,
                "--department",
                "基础教育科",
                "--disagree",
                "--reason",
                "师资不足",
            ],
        )
        .await;
    assert!(
        opinion.contains("基础教育科") && opinion.contains("师资不足"),
        "{opinion}"
    );
    let reviewed = s
        .run(
            "office",
            false,
            &[
                "seed",
                "review",
                &application,
                "--reject",
                "--reason",
                "未达标",
            ],
        )
        .await;
    assert!(reviewed.contains("rejected"), "{reviewed}");
    let mut args = vec!["notice", "publish", "--kind", "seed-candidates", "-o", "id"];
    let ids: Vec<String> = (0..10)
        .map(|i| schools[i]["id"].as_str().unwrap().to_string())
        .collect();
    args.extend(ids.iter().map(String::as_str));
    let notice = s.run("office", false, &args).await.trim().to_string();
    s.run(
        "office",
        false,
        &["clock", "advance", "2020-03-09T09:00:00+08:00"],
    )
    .await;
    s.run("office", false, &["notice", "close", &notice]).await;
    s.run(
        "office",
        false,
        &["campaign", "complete", "seed-designation"],
    )
    .await;

    // Phase 2: nine present (school tokens issued by the office), the panel rates them.
    s.run(
        "office",
        false,
        &["clock", "advance", "2020-04-01T09:00:00+08:00"],
    )
    .await;
    s.run("office", false, &["campaign", "open", "mentor-selection"])
        .await;
    // The office appoints the phase-2 panel: the demo's three panel members (min_raters = 3).
    let listed: Value = serde_json::from_str(
        &s.run("office", false, &["token", "list", "-o", "json"])
            .await,
    )
    .unwrap();
    let members: Vec<String> = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["role"] == "ROLE_PANEL")
        .map(|t| {
            format!(
                "{}:{}:department",
                t["actor"].as_str().unwrap(),
                t["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(members.len(), 3, "{listed}");
    let mut form = vec!["mentor", "form-panel"];
    for m in &members {
        form.extend(["--member", m.as_str()]);
    }
    let panel = s.run("office", true, &form).await;
    assert_eq!(panel.matches("department").count(), 3, "{panel}");
    assert_eq!(s.run("office", false, &["mentor", "panel"]).await, panel);
    let panel_tokens: Vec<String> = s
        .tokens
        .iter()
        .filter(|(r, _)| r == "panel")
        .map(|(_, t)| t.clone())
        .collect();
    let mut seed_tokens = Vec::new();
    for (i, id) in ids.iter().enumerate().take(9) {
        let t = s
            .run(
                "office",
                false,
                &[
                    "token",
                    "issue",
                    "--name",
                    &name(i),
                    "--role",
                    "school",
                    "--school",
                    id,
                ],
            )
            .await
            .trim()
            .to_string();
        let shown = s
            .run(
                &t,
                i == 0,
                &[
                    "mentor",
                    "present",
                    &name(i),
                    "--document",
                    "doc://汇报材料.pdf",
                    "--sha256",
                    &"ab".repeat(32),
                    "--practice",
                    "teachers:青蓝工程:师徒结对",
                    "--practice",
                    "management:扁平化管理:级部负责制",
                ],
            )
            .await;
        assert!(shown.contains("青蓝工程"), "{shown}");
        for (j, t) in panel_tokens.iter().enumerate() {
            s.run(
                t,
                i == 0 && j == 0,
                &["mentor", "rate", &code(i), "--rest", "excellent"],
            )
            .await;
        }
        seed_tokens.push(t);
    }
    let dry = s
        .run("office", true, &["mentor", "confirm", "--dry-run"])
        .await;
    assert_eq!(dry.matches("true").count(), 9, "{dry}");
    s.run("office", false, &["mentor", "confirm"]).await;
    s.run(
        "office",
        false,
        &["campaign", "complete", "mentor-selection"],
    )
    .await;

    // Phase 3, the session for the notes: groups, baselines, assistance, completion.
    s.run(
        "office",
        true,
        &["clock", "advance", "2020-05-06T09:00:00+08:00"],
    )
    .await;
    s.run("office", true, &["campaign", "open", "pairing"])
        .await;
    s.run(
        "office",
        true,
        &["pairing", "set", "--from-proposal", "--dry-run"],
    )
    .await;
    let set = s
        .run("office", true, &["pairing", "set", "--from-proposal"])
        .await;
    assert_eq!(set.lines().count(), 1 + 9, "{set}");
    for i in 10..schools.len() {
        s.run(
            "department",
            i == 10,
            &[
                "pairing",
                "baseline",
                &code(i),
                "--rest",
                "60",
                "--score",
                "culture=55",
            ],
        )
        .await;
    }
    let groups: Value = serde_json::from_str(
        &s.run("office", false, &["pairing", "show", "-o", "json"])
            .await,
    )
    .unwrap();
    let g0 = &groups["groups"][0];
    let mentor = g0["mentor_school_id"].as_str().unwrap();
    let k = ids.iter().position(|x| x == mentor).unwrap();
    let potential = g0["potential_school_ids"][0].as_str().unwrap();
    for day in 1..=4 {
        let date = format!("2020-05-0{day}");
        s.run(
            &seed_tokens[k].clone(),
            day == 1,
            &[
                "pairing",
                "assist",
                "--mentor",
                &name(k),
                "--potential",
                potential,
                "--date",
                &date,
                "--indicator",
                "teaching",
                "--indicator",
                "culture",
                "--description",
                "送教上门、同课异构",
                "--evidence",
                "doc://活动记录",
            ],
        )
        .await;
    }
    let acts = s
        .run(
            "office",
            true,
            &["pairing", "activities", "--mentor", &name(k)],
        )
        .await;
    assert_eq!(acts.lines().count(), 1 + 4, "{acts}");
    assert_eq!(
        acts.matches(name(k).as_str()).count(),
        4,
        "the table names the mentor school, not its id: {acts}"
    );
    let shown = s.run("office", true, &["pairing", "show"]).await;
    assert!(
        shown.contains(name(k).as_str()),
        "the groups by school name: {shown}"
    );
    assert!(
        shown.contains("2/8"),
        "the first group covers teaching and culture: {shown}"
    );
    let done = s
        .run("office", true, &["campaign", "complete", "pairing"])
        .await;
    assert!(
        done.contains("pairing") && done.contains("completed"),
        "{done}"
    );
    s.run("office", true, &["obligation", "list"]).await;
    if let Ok(path) = std::env::var("JUNHENG_CLI_SESSION") {
        std::fs::write(path, &s.log).unwrap();
    }
    let _ = std::fs::remove_dir_all(d.data());
}
