//! The `junheng` binary as a process against the real workflow server (free port, real
//! PostgreSQL): what a user types and what they see, including the exit code of each failure.

use std::process::Output;

use junheng_proto::v1 as pb;
use junheng_tests::{App, OFFICE_TOKEN, at, changle};
use junheng_workflow::ClockMode;
use serde_json::Value;

struct Cli<'a> {
    app: &'a App,
}

impl Cli<'_> {
    /// Runs `junheng ARGS` as `token` (the office when None).
    async fn run_as(&self, token: &str, args: &[&str]) -> Output {
        let addr = self.app.server.addr.to_string();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let token = token.to_string();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_junheng"))
                .args(&args)
                .env("JUNHENG_ADDR", addr)
                .env("JUNHENG_TOKEN", token)
                .env_remove("JUNHENG_TOKEN_FILE")
                .env_remove("JUNHENG_CONFIG")
                .env("XDG_CONFIG_HOME", "/nonexistent")
                .output()
                .expect("the binary runs")
        })
        .await
        .unwrap()
    }

    async fn run(&self, args: &[&str]) -> Output {
        self.run_as(OFFICE_TOKEN, args).await
    }

    /// Runs and expects success; returns standard output.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "junheng {args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs a command with no server at all.
fn offline(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_junheng"))
        .args(args)
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .output()
        .expect("the binary runs")
}

#[test]
fn help_completions_and_man_page() {
    let out = offline(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for group in [
        "campaign",
        "school",
        "seed",
        "notice",
        "objection",
        "clock",
        "call",
        "Exit codes",
    ] {
        assert!(help.contains(group), "--help lists {group}: {help}");
    }
    for sub in [
        vec!["info"],
        vec!["campaign", "list"],
        vec!["campaign", "show"],
        vec!["campaign", "open"],
        vec!["campaign", "complete"],
        vec!["school", "list"],
        vec!["school", "show"],
        vec!["seed", "nominate"],
        vec!["notice", "publish"],
        vec!["notice", "list"],
        vec!["notice", "show"],
        vec!["notice", "close"],
        vec!["objection", "file"],
        vec!["objection", "resolve"],
        vec!["clock", "show"],
        vec!["clock", "advance"],
        vec!["events", "follow"],
        vec!["audit", "verify"],
        vec!["export"],
        vec!["import", "schools"],
        vec!["delivery", "list"],
        vec!["endpoint", "list"],
        vec!["endpoint", "enable"],
        vec!["token", "issue"],
        vec!["token", "list"],
        vec!["token", "revoke"],
        vec!["token", "rotate"],
        vec!["call"],
        vec!["completions"],
        vec!["man"],
    ] {
        let mut args = sub.clone();
        args.push("--help");
        let out = offline(&args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("Usage: junheng"), "{args:?}");
    }
    // A usage mistake is exit code 2 and says what is wrong.
    let out = offline(&["campaign", "open", "no-such-phase"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("seed-designation"),
        "{}",
        text(&out.stderr)
    );
    let out = offline(&["completions", "bash"]);
    assert!(out.status.success() && text(&out.stdout).contains("_junheng"));
    let out = offline(&["man"]);
    assert!(out.status.success() && text(&out.stdout).contains(".TH junheng"));
}

#[tokio::test]
async fn a_phase_one_session_with_every_failure_class() {
    let app = App::spawn(ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    })
    .await;
    let (camp, schools) = changle(&app).await;
    let dept = app.token("业务科室", pb::Role::Department, "").await;
    let cli = Cli { app: &app };

    let info = cli.ok(&["info"]).await;
    assert!(
        info.contains("simulated") && info.contains("2020-03-02 09:00"),
        "{info}"
    );

    // Before the phase opens a nomination is refused by the campaign's rules: exit 6.
    let before = app.snapshot().await;
    let out = cli
        .run_as(
            &dept,
            &["seed", "nominate", &schools[0].id, "--basis", "达标"],
        )
        .await;
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("FailedPrecondition"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(app.snapshot().await, before);

    // Tables align Chinese; the deadline reads as a bureau writes it.
    let opened = cli
        .ok(&["campaign", "open", "seed-designation", "--key", "open-1"])
        .await;
    let line = opened
        .lines()
        .find(|l| l.contains("seed-designation"))
        .expect("phase row");
    assert!(
        line.contains("open") && line.contains("2020-04-30 24:00"),
        "{opened}"
    );

    // A dry run shows what would change and changes nothing.
    let before = app.snapshot().await;
    let ids: Vec<&str> = schools[..3].iter().map(|s| s.id.as_str()).collect();
    let mut args = vec!["seed", "nominate"];
    args.extend(&ids);
    args.extend(["--basis", "对照评价标准达标", "--dry-run"]);
    let dry = cli.run_as(&dept, &args).await;
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert_eq!(
        text(&dry.stdout).matches("nominated").count(),
        3,
        "{}",
        text(&dry.stdout)
    );
    assert!(text(&dry.stderr).contains("3 school(s) would be nominated"));
    assert_eq!(app.snapshot().await, before);

    // For real, with a key: running it again replays and changes nothing.
    args.pop();
    args.extend(["--key", "nom"]);
    let first = cli.run_as(&dept, &args).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(text(&first.stdout).matches(" nominated ").count(), 3);
    let after_first = app.snapshot().await;
    let again = cli.run_as(&dept, &args).await;
    assert_eq!(text(&again.stdout), text(&first.stdout));
    assert_eq!(app.snapshot().await, after_first);

    // -o id gives ids for shell variables; -o json the reply with proto field names.
    let mut publish = vec!["notice", "publish", "--kind", "seed-candidates"];
    publish.extend(&ids);
    publish.extend(["-o", "id"]);
    let notice = cli.ok(&publish).await.trim().to_string();
    assert_eq!(notice.len(), 36, "{notice}");
    let json: Value =
        serde_json::from_str(&cli.ok(&["notice", "show", &notice, "-o", "json"]).await)
            .expect("JSON");
    assert_eq!(json["title"], "昌乐县2020年标杆种子校拟定名单公示");
    assert_eq!(json["kind"], "NOTICE_KIND_SEED_CANDIDATES");
    assert_eq!(json["school_ids"].as_array().unwrap().len(), 3);
    assert_eq!(json["campaign_id"], camp.id.as_str());
    let csv = cli.ok(&["notice", "list", "-o", "csv"]).await;
    assert!(
        csv.starts_with("ID,标题,状态,开始,结束,学校数,异议数\n"),
        "{csv}"
    );
    assert!(csv.contains(",2020-03-06 24:00,3,0"), "{csv}");

    // An anonymous objection: exit 3, the field named.
    let before = app.snapshot().await;
    let out = cli
        .run_as(
            &dept,
            &[
                "objection",
                "file",
                "--notice",
                &notice,
                "--school",
                ids[1],
                "--name",
                "",
                "--contact",
                "13800001111",
                "--grounds",
                "不达标",
                "--evidence",
                "照片",
            ],
        )
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("\n  objector_name: "),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(app.snapshot().await, before);

    // Not found: 4. A bad token: 5. A leader may not publish: 5. No server: 7.
    let out = cli
        .run(&["school", "show", "01a231ea-f7e5-76b7-809e-3ee63b75b36d"])
        .await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let out = cli.run_as("jh_wrong", &["campaign", "list"]).await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let leader = app.token("领导", pb::Role::Leader, "").await;
    let out = cli.run_as(&leader, &["notice", "close", &notice]).await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let out = offline(&["--addr", "127.0.0.1:9", "info"]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));

    // Any RPC by name, with grpcurl's JSON; an empty idempotency key is filled in.
    let list = cli.ok(&["call", "--list"]).await;
    for m in [
        "SeedService/Nominate",
        "AwardService/ConfirmAwards",
        "SchedulerService/",
    ] {
        assert!(list.contains(m), "{m} in {list}");
    }
    let body = format!(
        r#"{{"campaign_id":"{}","phase":"PHASE_SEED_DESIGNATION","milestone":"application_deadline","new_last_day":"2020-04-17","reason":"疫情延期"}}"#,
        camp.id
    );
    let extended: Value = serde_json::from_str(
        &cli.ok(&["call", "CampaignService/ExtendDeadline", &body])
            .await,
    )
    .expect("JSON");
    let milestone = &extended["phases"][0]["milestones"][0];
    assert_eq!(milestone["name"], "application_deadline");
    assert_eq!(milestone["deadline"], "2020-04-17T16:00:00Z");
    let out = cli.run(&["call", "SeedService/NoSuchMethod"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("Nominate"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn a_scoped_token_is_issued_listed_rotated_and_revoked() {
    let app = App::spawn(ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    })
    .await;
    let (camp, _) = changle(&app).await;
    let cli = Cli { app: &app };
    let file = std::env::temp_dir().join(format!("junheng-cli-{}.token", std::process::id()));
    let file_s = file.to_str().unwrap();
    let out = cli
        .ok(&[
            "token",
            "issue",
            "--name",
            "验收组成员丙",
            "--role",
            "panel",
            "--campaign",
            &camp.id,
            "--expires-in-days",
            "30",
            "--out",
            file_s,
            "--key",
            "t-1",
        ])
        .await;
    let secret = std::fs::read_to_string(&file).unwrap().trim().to_string();
    std::fs::remove_file(&file).unwrap();
    assert!(secret.starts_with("jh_"));
    assert!(
        !out.contains(&secret),
        "the secret is never printed when a file is given: {out}"
    );
    let id = out.split_whitespace().next().unwrap().to_string();
    // The holder can read the campaign; the list shows it live, scoped, expiring, secret-less.
    let got = cli.run_as(&secret, &["campaign", "list"]).await;
    assert!(got.status.success(), "{}", text(&got.stderr));
    let list: Value =
        serde_json::from_str(&cli.ok(&["token", "list", "-o", "json"]).await).unwrap();
    let row = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["token_id"] == id.as_str())
        .expect("listed")
        .clone();
    assert_eq!(row["campaign_ids"][0], camp.id.as_str());
    assert_eq!(row["live"], true);
    assert_eq!(row["expires_at"], "2020-04-01T01:00:00Z");
    assert!(!list.to_string().contains(&secret));
    let table = cli.ok(&["token", "list"]).await;
    assert!(
        table.contains("验收组成员丙") && table.contains("panel"),
        "{table}"
    );
    // Rotation: the old secret is refused (exit code 5), the new one works.
    let new = cli
        .ok(&["token", "rotate", &id, "--key", "t-2"])
        .await
        .trim()
        .to_string();
    assert_ne!(new, secret);
    assert_eq!(
        cli.run_as(&secret, &["campaign", "list"])
            .await
            .status
            .code(),
        Some(5)
    );
    assert!(
        cli.run_as(&new, &["campaign", "list"])
            .await
            .status
            .success()
    );
    // Revocation: refused from the next call on; listed only with --all.
    cli.ok(&[
        "token",
        "revoke",
        &id,
        "--reason",
        "任务结束",
        "--key",
        "t-3",
    ])
    .await;
    assert_eq!(
        cli.run_as(&new, &["campaign", "list"]).await.status.code(),
        Some(5)
    );
    assert!(!cli.ok(&["token", "list", "-o", "id"]).await.contains(&id));
    assert!(
        cli.ok(&["token", "list", "--all", "-o", "id"])
            .await
            .contains(&id)
    );
}

/// `junheng audit verify`: intact is exit 0; a row the owner rewrote is exit 8, naming it.
#[tokio::test]
async fn audit_verify_names_the_first_broken_link() {
    let app = App::spawn(ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    })
    .await;
    let cli = Cli { app: &app };
    let (camp, _) = changle(&app).await;
    let out = cli.ok(&["audit", "verify", &camp.id, "-o", "json"]).await;
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["intact"], true, "{out}");
    cli.ok(&["audit", "verify", "system"]).await;

    let id: i64 =
        sqlx::query_scalar("SELECT id FROM events WHERE campaign_id = $1::uuid AND chain_seq = 2")
            .bind(&camp.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let mut tx = app.pool.begin().await.unwrap();
    for sql in [
        "ALTER TABLE events DISABLE TRIGGER events_append_only".to_string(),
        format!("UPDATE events SET actor = 'someone-else' WHERE id = {id}"),
        "ALTER TABLE events ENABLE TRIGGER events_append_only".to_string(),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let out = cli.run(&["audit", "verify", &camp.id]).await;
    assert_eq!(out.status.code(), Some(8), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("event {id}")), "{err}");
    assert!(err.contains("does not match its hash"), "{err}");
}
