//! The curated subcommands of phases 2–5 and of the RPCs the first groups left to `junheng
//! call`: campaign create/extend, school register/change-principal, seed withdraw/apply/review/
//! opinion/applications, mentor, pairing, acceptance, award, audit list, obligation, delivery
//! show/resend/upcoming. Schools may be named by id, by their 10-digit code or by their Chinese
//! name; indicator values are `CODE=VALUE` flags with `--rest` for the others.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::output::{Cell, Col, col};
use crate::{CampaignArg, Ctx, Failure, KeyArg, Phase, SCHOOLS, key};

// ---------------------------------------------------------------------------------------------
// The clap tree.

#[derive(Subcommand, Debug)]
pub enum CampaignMore {
    /// Create a campaign from a definition file (TOML, e.g. deploy/campaigns/changle-2020.toml).
    Create {
        /// The definition (TOML), or `-` for standard input.
        definition: PathBuf,
        #[command(flatten)]
        key: KeyArg,
    },
    /// Move a phase's (or one milestone's) last day later, with a reason (office).
    Extend {
        phase: Phase,
        /// The new last day, YYYY-MM-DD (later than the current one).
        #[arg(long)]
        to: String,
        /// Only this milestone of the phase (its name in the definition).
        #[arg(long, default_value = "")]
        milestone: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        campaign: CampaignArg,
        #[command(flatten)]
        key: KeyArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum SchoolMore {
    /// Register schools (office): one `--school 代码,名称,学段,镇街,校长[,邮箱]` per school;
    /// all or nothing. For a spreadsheet use `junheng import schools`.
    Register {
        /// `code,name,level,town,principal[,email]`; level: primary | junior | nine-year.
        #[arg(long = "school", required = true)]
        schools: Vec<String>,
        /// Show the schools that would be registered and register nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        campaign: CampaignArg,
        #[command(flatten)]
        key: KeyArg,
    },
    /// A new principal for a school (the old one keeps their history).
    ChangePrincipal {
        /// School id, code or name.
        school: String,
        /// The new principal's name.
        #[arg(long)]
        name: String,
        /// Why, e.g. 工作调动.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        campaign: CampaignArg,
        #[command(flatten)]
        key: KeyArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum SeedMore {
    /// Withdraw a nomination (department).
    Withdraw {
        /// School id, code or name.
        school: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        campaign: CampaignArg,
        #[command(flatten)]
        key: KeyArg,
    },
    /// A school applies to be a seed school with its self-assessment (school).
    Apply {
        /// School id, code or name.
        school: String,
        /// Self-assessed score of one indicator, `CODE=SCORE` (repeatable).
        #[arg(long = "score")]
        scores: Vec<String>,
        /// The score of every indicator not given with --score.
        #[arg(long)]
        rest: Option<f64>,
        #[arg(long)]
        statement: String,
        #[command(flatten)]
        campaign: CampaignArg,
        #[command(flatten)]
        key: KeyArg,
    },
    /// Approve or reject a self-application (office).
    Review {
        application: String,
        #[arg(long, conflicts_with = "reject", required_unless_present = "reject")]
        approve: bool,
        #[arg(long)]
        reject: bool,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        key: KeyArg,
    },
    /// A department's opinion on a self-application (one per department).
    Opinion {
        application: String,
        /// The department, e.g. 基础教育科.
        #[arg(long)]
        department: String,
        #[arg(
            long,
            conflicts_with = "disagree",
            required_unless_present = "disagree"
        )]
        agree: bool,
        #[arg(long)]
        disagree: bool,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        key: KeyArg,
    },
    /// The self-applications of a campaign with their status and opinions.
    Applications(CampaignArg),
}

#[derive(Subcommand, Debug)]
pub enum MentorCmd {
    /// A seed school presents its work and declares its practices (school).
    Present {
        /// School id, code or name.
        school: String,
        /// Where the document is, e.g. doc://2020/宝都街道中心小学.pdf.
        #[arg(long)]
        document: String,
        /// The document's SHA-256 (64 hex characters).
        #[arg(long)]
        sha256: String,
        /// One practice, `INDICATOR:TITLE:DESCRIPTION` (repeatable).
        #[arg(long = "practice")]
        practices: Vec<String>,
        #[command(flatten)]
        campaign: CampaignArg,
        #[command(flatten)]
        key: KeyArg,
    },
    /// Rate a presentation (panel): every indicator once, every practice accepted or not.
    Rate {
        /// School id, code or name.
        school: String,
        /// One indicator's rating, `CODE=excellent|good|fair|poor` (repeatable).
        #[arg(long = "rating")]
        ratings: Vec<String>,
        /// The rating of every indicator not given with --rating.
        #[arg(long, value_enum)]
        rest: Option<Rating>,
        /// Reject this practice (id; repeatable); every other declared practice is accepted.
        #[arg(long = "reject")]
        rejects: Vec<String>,
        #[command(flatten)]
        campaign: CampaignArg,
        #[command(flatten)]
        key: KeyArg,
    },
    /// One presentation with its practices and how the raters judged them.
    Show {
        /// School id, code or name.
        school: String,
        #[command(flatten)]
        campaign: CampaignArg,
    },
    /// What the rule proposes: which seed schools become mentor schools, and why.
    Propose(CampaignArg),
    /// Confirm the mentor schools (office), with overrides `SCHOOL=yes|no:REASON`.
    Confirm {
        /// `SCHOOL=yes:REASON` or `SCHOOL=no:REASON` (repeatable; school by id, code or name).
        #[arg(long = "override")]
        overrides: Vec<String>,
        /// Show the proposal that would be confirmed, with a count, and confirm nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        campaign: CampaignArg,
        #[command(flatten)]
        key: KeyArg,
    },
    /// The practice collection (经验做法汇编) by indicator.
    Practices(CampaignArg),
    /// Appoint the phase-2 panel (office), before the first rating:
    /// `--member ACTOR:NAME:AFFILIATION[:SCHOOL]`.
    FormPanel {
        /// `ACTOR:NAME:department|high-school[:SCHOOL]` (repeatable; at least the definition's
        /// `min_raters`); a member who belongs to a campaign school is recused from rating it.
        #[arg(long = "member", required = true)]
        members: Vec<String>,
        #[command(flatten)]
        campaign: CampaignArg,
        #[command(flatten)]
        key: KeyArg,
    },
    /// The phase-2 panel's members.
    Panel(CampaignArg),
}

#[derive(Subcommand, Debug)]
pub enum PairingCmd {
    /// The 1+X groups the service proposes (nothing is stored).
    Propose(CampaignArg),
    /// Set the 1+X groups (office): `--group MENTOR=P1,P2,…` or `--from-proposal`.
    Set {
        /// `MENTOR=POTENTIAL,POTENTIAL,…` (repeatable; schools by id, code or name).
        #[arg(long = "group", required_unless_present = "from_proposal")]
        groups: Vec<String>,
        /// Set the service's own proposal.
        #[arg(long, conflicts_with = "groups")]
        from_proposal: bool,
        /// Show the groups that would be set, with a count, and set nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        campaign: CampaignArg,
        #[command(flatten)]
        key: KeyArg,
    },
    /// The stored groups with the indicators each covers.
    Show(CampaignArg),
    /// A potential school's baseline scores (department).
    Baseline {
        /// School id, code or name.
        school: String,
        /// `CODE=SCORE` (repeatable).
        #[arg(long = "score")]
        scores: Vec<String>,
        /// The score of every indicator not given with --score.
        #[arg(long)]
        rest: Option<f64>,
        #[command(flatten)]
        campaign: CampaignArg,
        #[command(flatten)]
        key: KeyArg,
    },
    /// Log an assistance activity of a mentor school for a potential school (mentor school).
    Assist {
        /// The mentor school (id, code or name).
        #[arg(long)]
        mentor: String,
        /// The potential school helped (id, code or name).
        #[arg(long)]
        potential: String,
        /// The day, YYYY-MM-DD.
        #[arg(long)]
        date: String,
        /// Indicator codes it addressed (repeatable).
        #[arg(long = "indicator", required = true)]
        indicators: Vec<String>,
        #[arg(long)]
        description: String,
        /// A reference to the evidence.
        #[arg(long)]
        evidence: String,
        #[command(flatten)]
        campaign: CampaignArg,
        #[command(flatten)]
        key: KeyArg,
    },
    /// The logged assistance activities.
    Activities {
        /// Only this mentor school's (id, code or name).
        #[arg(long)]
        mentor: Option<String>,
        #[command(flatten)]
        campaign: CampaignArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum AcceptanceCmd {
    /// Form the acceptance panel (office): `--member ACTOR:NAME:AFFILIATION[:MENTOR_SCHOOL]`.
    FormPanel {
        /// `ACTOR:NAME:department|high-school|mentor-school[:MENTOR_SCHOOL]` (repeatable); the
        /// actor is the member's panel token's (see `junheng token list`).
        #[arg(long = "member", required = true)]
        members: Vec<String>,
        #[command(flatten)]
        campaign: CampaignArg,
        #[command(flatten)]
        key: KeyArg,
    },
    /// The panel's members.
    Panel(CampaignArg),
    /// A panel member's scores for a potential school (panel).
    Score {
        /// School id, code or name.
        school: String,
        /// The report's score, 0–100.
        #[arg(long)]
        report: f64,
        /// One indicator's on-site score, `CODE=SCORE` (repeatable).
        #[arg(long = "score")]
        scores: Vec<String>,
        /// The on-site score of every indicator not given with --score.
        #[arg(long)]
        rest: Option<f64>,
        #[command(flatten)]
        campaign: CampaignArg,
        #[command(flatten)]
        key: KeyArg,
    },
    /// The results so far (final once the results notice has ended).
    Results(CampaignArg),
    /// Publish the results notice (office).
    PublishNotice {
        /// Title (default: the definition's).
        #[arg(long, default_value = "")]
        title: String,
        #[command(flatten)]
        campaign: CampaignArg,
        #[command(flatten)]
        key: KeyArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum AwardCmd {
    /// The awards the rules propose, each with its reason.
    Propose(CampaignArg),
    /// Confirm the awards (office), with overrides `SCHOOL=CLASS:REASON`.
    Confirm {
        /// `SCHOOL=contribution|model|progress|compliance|veto|withheld:REASON` (repeatable).
        #[arg(long = "override")]
        overrides: Vec<String>,
        /// Show the awards that would be confirmed, with counts by class, and confirm nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        campaign: CampaignArg,
        #[command(flatten)]
        key: KeyArg,
    },
    /// Confirmed awards, by campaign or year.
    List {
        /// A year instead of a campaign (every campaign of the county that year).
        #[arg(long)]
        year: Option<i32>,
        /// Only this school (id).
        #[arg(long)]
        school: Option<String>,
        /// Only this principal.
        #[arg(long)]
        principal: Option<String>,
        /// Only this class.
        #[arg(long, value_enum)]
        class: Option<AwardClass>,
        #[command(flatten)]
        campaign: CampaignArg,
    },
    /// The consequences (结果运用) the confirmed awards recorded.
    Consequences {
        /// A year instead of a campaign.
        #[arg(long)]
        year: Option<i32>,
        /// Only this school (id).
        #[arg(long)]
        school: Option<String>,
        /// Only this principal (their stable id).
        #[arg(long)]
        principal_id: Option<String>,
        /// Only this kind, e.g. evaluation_barred.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        campaign: CampaignArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditMore {
    /// The audit events of a campaign, oldest first.
    List {
        /// Only this school's (id).
        #[arg(long)]
        school: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        campaign: CampaignArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum ObligationCmd {
    /// What is owed, by whom and by when (open ones unless --all).
    List {
        /// Only this school's (id).
        #[arg(long)]
        school: Option<String>,
        /// Also done and cancelled ones.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        campaign: CampaignArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum DeliveryMore {
    /// One delivery: its attempts and the text as sent.
    Show { id: String },
    /// Send deliveries again (office), e.g. after fixing an address.
    Resend {
        #[arg(required = true)]
        ids: Vec<String>,
        /// Show what would be sent again, with a count, and send nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        key: KeyArg,
    },
    /// The messages the scheduler would send from now until an instant.
    Upcoming {
        /// Until, e.g. 2020-04-30T24:00:00+08:00 is written 2020-05-01T00:00:00+08:00.
        #[arg(long)]
        until: chrono::DateTime<chrono::FixedOffset>,
        #[command(flatten)]
        campaign: CampaignArg,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Rating {
    Excellent,
    Good,
    Fair,
    Poor,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AwardClass {
    Contribution,
    Model,
    Progress,
    Compliance,
    Veto,
    Withheld,
}

// ---------------------------------------------------------------------------------------------
// Columns.

const APPLICATIONS: &[Col] = &[
    col("ID", "id", Cell::Text),
    col("学校", "school_id", Cell::Text),
    col("状态", "status", Cell::Text),
    col("意见数", "department_opinions", Cell::Count),
    col("理由", "reason", Cell::Text),
    col("提交", "submitted_at", Cell::Time),
];
const PRACTICES: &[Col] = &[
    col("ID", "id", Cell::Text),
    col("指标", "indicator", Cell::Text),
    col("做法", "title", Cell::Text),
    col("认可", "accepts", Cell::Text),
    col("不认可", "rejects", Cell::Text),
    col("采纳", "accepted", Cell::Text),
];
const PROPOSALS: &[Col] = &[
    col("ID", "school_id", Cell::Text),
    col("学校", "school_name", Cell::Text),
    col("导师型", "mentor", Cell::Text),
    col("说明", "explanation", Cell::Text),
];
const GROUPS: &[Col] = &[
    col("导师型学校", "mentor_school_id", Cell::Text),
    col("潜力校数", "potential_school_ids", Cell::Count),
    col("潜力校", "potential_school_ids", Cell::Text),
];
const ACTIVITIES: &[Col] = &[
    col("ID", "id", Cell::Text),
    col("导师型学校", "mentor_school_id", Cell::Text),
    col("潜力校", "potential_school_id", Cell::Text),
    col("日期", "date", Cell::Text),
    col("指标", "indicators", Cell::Text),
    col("内容", "description", Cell::Text),
];
const MEMBERS: &[Col] = &[
    col("账号", "actor", Cell::Text),
    col("姓名", "name", Cell::Text),
    col("来源", "affiliation", Cell::Enum("AFFILIATION_")),
    col("所属导师型学校", "mentor_school_id", Cell::Text),
];
const MENTOR_PANEL: &[Col] = &[
    col("账号", "actor", Cell::Text),
    col("姓名", "name", Cell::Text),
    col("来源", "affiliation", Cell::Enum("AFFILIATION_")),
    col("所属学校（回避）", "school_id", Cell::Text),
];
const RESULTS: &[Col] = &[
    col("ID", "school_id", Cell::Text),
    col("学校", "school_name", Cell::Text),
    col("导师型学校", "mentor_school_name", Cell::Text),
    col("评分人数", "scorers", Cell::Text),
    col("报告", "report_score", Cell::Text),
    col("现场", "onsite_score", Cell::Text),
    col("总分", "final_score", Cell::Text),
    col("未达标指标", "failed_indicators", Cell::Text),
];
pub(crate) const AWARDS: &[Col] = &[
    col("ID", "school_id", Cell::Text),
    col("学校", "school_name", Cell::Text),
    col("校长", "principal", Cell::Text),
    col("类别", "class_label", Cell::Text),
    col("理由", "reason", Cell::Text),
    col("调整理由", "override_reason", Cell::Text),
];
const CONSEQUENCES: &[Col] = &[
    col("ID", "id", Cell::Text),
    col("学校", "school_name", Cell::Text),
    col("校长", "principal_name", Cell::Text),
    col("表彰", "award_title", Cell::Text),
    col("对象", "subject", Cell::Text),
    col("结果运用", "label", Cell::Text),
    col("有效至", "valid_until", Cell::Text),
];
const EVENTS: &[Col] = &[
    col("ID", "id", Cell::Text),
    col("时间", "at", Cell::Time),
    col("事项", "action", Cell::Text),
    col("学校", "school_id", Cell::Text),
    col("操作人", "actor", Cell::Text),
    col("角色", "role", Cell::Enum("ROLE_")),
    col("理由", "reason", Cell::Text),
];
const OBLIGATIONS: &[Col] = &[
    col("ID", "id", Cell::Text),
    col("事项", "subject", Cell::Text),
    col("阶段", "phase", Cell::Enum("PHASE_")),
    col("责任方", "owner_role", Cell::Enum("ROLE_")),
    col("学校", "school_id", Cell::Text),
    col("期限", "due", Cell::End),
    col("状态", "status", Cell::Text),
];
pub(crate) const DELIVERIES: &[Col] = &[
    col("ID", "id", Cell::Text),
    col("类别", "kind", Cell::Text),
    col("接收方", "recipient", Cell::Text),
    col("渠道", "endpoint", Cell::Text),
    col("状态", "status", Cell::Text),
    col("次数", "attempts", Cell::Text),
    col("计划", "not_before", Cell::Time),
    col("发送", "sent_at", Cell::Time),
    col("标题", "title", Cell::Text),
    col("错误", "last_error", Cell::Text),
];
const ATTEMPTS: &[Col] = &[
    col("次", "attempt", Cell::Text),
    col("开始", "started_at", Cell::Time),
    col("结果", "outcome", Cell::Text),
    col("详情", "detail", Cell::Text),
];
const UPCOMING: &[Col] = &[
    col("时间", "at", Cell::Time),
    col("类别", "kind", Cell::Text),
    col("接收方", "recipient", Cell::Text),
    col("渠道", "endpoint", Cell::Text),
    col("标题", "title", Cell::Text),
];
const CAMPAIGN: &[Col] = &[
    col("ID", "id", Cell::Text),
    col("代码", "code", Cell::Text),
    col("县", "county", Cell::Text),
    col("年度", "year", Cell::Text),
    col("时区", "time_zone", Cell::Text),
    col("指标数", "indicators", Cell::Count),
];

// ---------------------------------------------------------------------------------------------
// Helpers.

fn usage(msg: impl std::fmt::Display) -> Failure {
    Failure {
        code: 2,
        text: format!("error: {msg}"),
    }
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

/// `KEY=VALUE` → (KEY, VALUE), naming the flag when it does not fit.
fn pair<'a>(flag: &str, s: &'a str) -> Result<(&'a str, &'a str), Failure> {
    s.split_once('=')
        .map(|(k, v)| (k.trim(), v.trim()))
        .ok_or_else(|| usage(format!("{flag} `{s}`: expected KEY=VALUE")))
}

/// A sub-key for one item of a bulk call: `--key K` makes a re-run replay each item.
fn sub_key(k: &KeyArg, item: &str) -> String {
    k.key
        .as_ref()
        .map(|k| format!("{k}-{item}"))
        .unwrap_or_default()
}

impl Ctx {
    /// The campaign's schools, once per command.
    async fn schools_of(&self, campaign: &CampaignArg) -> Result<Vec<Value>, Failure> {
        let id = self.campaign(campaign).await?;
        let mut all = Vec::new();
        let mut page = String::new();
        loop {
            let r = self
                .client
                .call(
                    "SchoolService/ListSchools",
                    json!({ "campaign_id": id, "page_size": 1000, "page_token": page }),
                )
                .await?;
            all.extend(r["schools"].as_array().cloned().unwrap_or_default());
            page = r["next_page_token"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if page.is_empty() {
                return Ok(all);
            }
        }
    }

    /// School ids for what the user typed: ids as they are, codes and names looked up in the
    /// campaign.
    pub(crate) async fn school_ids(
        &self,
        campaign: &CampaignArg,
        names: &[&str],
    ) -> Result<Vec<String>, Failure> {
        if names.iter().all(|n| is_uuid(n)) {
            return Ok(names.iter().map(|n| n.to_string()).collect());
        }
        let schools = self.schools_of(campaign).await?;
        names
            .iter()
            .map(|n| {
                if is_uuid(n) {
                    return Ok(n.to_string());
                }
                let hits: Vec<&Value> = schools
                    .iter()
                    .filter(|s| s["code"] == *n || s["name"] == *n)
                    .collect();
                match hits.as_slice() {
                    [one] => Ok(one["id"].as_str().unwrap_or_default().to_string()),
                    [] => Err(Failure {
                        code: 4,
                        text: format!("error: no school with the id, code or name `{n}`"),
                    }),
                    _ => Err(usage(format!("`{n}` names several schools: give the id"))),
                }
            })
            .collect()
    }

    /// For a table, schools by name instead of id: every `…school_id` string and `…school_ids`
    /// list in `v` (one ListSchools for the lot). JSON, CSV and ids keep the ids, for scripts.
    async fn named(&self, campaign: &CampaignArg, mut v: Value) -> Result<Value, Failure> {
        if self.format != crate::Format::Table {
            return Ok(v);
        }
        let names: HashMap<String, String> = self
            .schools_of(campaign)
            .await?
            .iter()
            .filter_map(|s| Some((s["id"].as_str()?.to_owned(), s["name"].as_str()?.to_owned())))
            .collect();
        fn walk(v: &mut Value, names: &HashMap<String, String>) {
            match v {
                Value::Object(map) => {
                    for (k, x) in map.iter_mut() {
                        let name = |x: &Value| x.as_str().and_then(|id| names.get(id)).cloned();
                        if k.ends_with("school_id") {
                            if let Some(n) = name(x) {
                                *x = Value::String(n);
                            }
                        } else if k.ends_with("school_ids") {
                            for y in x.as_array_mut().into_iter().flatten() {
                                if let Some(n) = name(y) {
                                    *y = Value::String(n);
                                }
                            }
                        } else {
                            walk(x, names);
                        }
                    }
                }
                Value::Array(items) => items.iter_mut().for_each(|x| walk(x, names)),
                _ => {}
            }
        }
        walk(&mut v, &names);
        Ok(v)
    }

    async fn school_id(&self, campaign: &CampaignArg, name: &str) -> Result<String, Failure> {
        Ok(self.school_ids(campaign, &[name]).await?.remove(0))
    }

    /// The campaign's indicator codes, in the definition's order.
    async fn indicators(&self, campaign: &CampaignArg) -> Result<Vec<String>, Failure> {
        let id = self.campaign(campaign).await?;
        let c = self
            .client
            .call("CampaignService/GetCampaign", json!({ "campaign_id": id }))
            .await?;
        Ok(c["indicators"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["code"].as_str().map(String::from))
            .collect())
    }

    /// `IndicatorScore`s from `--score CODE=N` and `--rest N`, in the definition's order.
    async fn scores(
        &self,
        campaign: &CampaignArg,
        given: &[String],
        rest: Option<f64>,
    ) -> Result<Vec<Value>, Failure> {
        let mut by_code = std::collections::BTreeMap::new();
        for s in given {
            let (k, v) = pair("--score", s)?;
            let v: f64 = v
                .parse()
                .map_err(|_| usage(format!("--score `{s}`: `{v}` is not a number")))?;
            by_code.insert(k.to_string(), v);
        }
        let mut out = Vec::new();
        if let Some(rest) = rest {
            for code in self.indicators(campaign).await? {
                let v = by_code.remove(&code).unwrap_or(rest);
                out.push(json!({ "indicator": code, "score": v }));
            }
        }
        // Codes the definition does not know go to the server, which names them.
        out.extend(
            by_code
                .into_iter()
                .map(|(k, v)| json!({ "indicator": k, "score": v })),
        );
        Ok(out)
    }

    fn print_dry_run(&self, reply: &Value, rows: &'static str, cols: &[Col], what: &str) {
        self.print(reply, Some(rows), cols);
        let n = reply[rows].as_array().map_or(0, Vec::len);
        eprintln!("dry run: {n} {what}; nothing was changed");
    }
}

fn read_definition(path: &PathBuf) -> Result<String, Failure> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(anyhow::Error::from)?;
        return Ok(s);
    }
    Ok(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?)
}

fn level(s: &str) -> Result<&'static str, Failure> {
    Ok(match s {
        "primary" | "小学" => "SCHOOL_LEVEL_PRIMARY",
        "junior" | "初中" => "SCHOOL_LEVEL_JUNIOR",
        "nine-year" | "九年一贯制" => "SCHOOL_LEVEL_NINE_YEAR",
        other => {
            return Err(usage(format!(
                "level `{other}`: primary (小学), junior (初中) or nine-year (九年一贯制)"
            )));
        }
    })
}

fn pb_name(prefix: &str, v: impl ValueEnum) -> String {
    crate::enum_name(prefix, v)
}

// ---------------------------------------------------------------------------------------------
// Running them.

pub async fn campaign(ctx: &Ctx, cmd: CampaignMore) -> Result<(), Failure> {
    let c = &ctx.client;
    match cmd {
        CampaignMore::Create { definition, key: k } => {
            let toml = read_definition(&definition)?;
            let r = c
                .call(
                    "CampaignService/CreateCampaign",
                    json!({ "idempotency_key": key(&k), "definition_toml": toml }),
                )
                .await?;
            ctx.print(&r, None, CAMPAIGN);
        }
        CampaignMore::Extend {
            phase,
            to,
            milestone,
            reason,
            campaign,
            key: k,
        } => {
            let id = ctx.campaign(&campaign).await?;
            let body = json!({
                "idempotency_key": key(&k), "campaign_id": id, "phase": phase.pb(),
                "milestone": milestone, "new_last_day": to, "reason": reason,
            });
            let r = c.call("CampaignService/ExtendDeadline", body).await?;
            ctx.print(&r, Some("phases"), crate::PHASES);
        }
    }
    Ok(())
}

pub async fn school(ctx: &Ctx, cmd: SchoolMore) -> Result<(), Failure> {
    let c = &ctx.client;
    match cmd {
        SchoolMore::Register {
            schools,
            dry_run,
            campaign,
            key: k,
        } => {
            let mut rows = Vec::new();
            for s in &schools {
                let f: Vec<&str> = s.split([',', '，']).map(str::trim).collect();
                if f.len() < 5 {
                    return Err(usage(format!(
                        "--school `{s}`: expected code,name,level,town,principal[,email]"
                    )));
                }
                let contacts = match f.get(5) {
                    Some(email) if !email.is_empty() => {
                        vec![json!({ "name": format!("{}（校长）", f[4]), "email": email })]
                    }
                    _ => vec![],
                };
                rows.push(json!({
                    "code": f[0], "name": f[1], "level": level(f[2])?, "town": f[3],
                    "principal": f[4], "contacts": contacts,
                }));
            }
            if dry_run {
                let cols = [
                    col("代码", "code", Cell::Text),
                    col("学校", "name", Cell::Text),
                    col("学段", "level", Cell::Enum("SCHOOL_LEVEL_")),
                    col("所属镇街", "town", Cell::Text),
                    col("校长", "principal", Cell::Text),
                ];
                let plan = json!({ "schools": rows });
                ctx.print_dry_run(&plan, "schools", &cols, "school(s) would be registered");
                return Ok(());
            }
            let id = ctx.campaign(&campaign).await?;
            let r = c
                .call(
                    "SchoolService/RegisterSchools",
                    json!({ "idempotency_key": key(&k), "campaign_id": id, "schools": rows }),
                )
                .await?;
            ctx.print(&r, Some("schools"), SCHOOLS);
        }
        SchoolMore::ChangePrincipal {
            school,
            name,
            reason,
            campaign,
            key: k,
        } => {
            let id = ctx.school_id(&campaign, &school).await?;
            let r = c
                .call(
                    "SchoolService/ChangePrincipal",
                    json!({ "idempotency_key": key(&k), "school_id": id, "name": name, "reason": reason }),
                )
                .await?;
            let cols = [
                col("ID", "id", Cell::Text),
                col("学校", "name", Cell::Text),
                col("校长", "principal", Cell::Text),
                col("校长编号", "principal_id", Cell::Text),
                col("版本", "version", Cell::Text),
            ];
            ctx.print(&r, None, &cols);
        }
    }
    Ok(())
}

pub async fn seed(ctx: &Ctx, cmd: SeedMore) -> Result<(), Failure> {
    let c = &ctx.client;
    match cmd {
        SeedMore::Withdraw {
            school,
            reason,
            campaign,
            key: k,
        } => {
            let id = ctx.school_id(&campaign, &school).await?;
            let r = c
                .call(
                    "SeedService/WithdrawNomination",
                    json!({ "idempotency_key": key(&k), "school_id": id, "reason": reason }),
                )
                .await?;
            ctx.print(&r, None, SCHOOLS);
        }
        SeedMore::Apply {
            school,
            scores,
            rest,
            statement,
            campaign,
            key: k,
        } => {
            let id = ctx.school_id(&campaign, &school).await?;
            let body = json!({
                "idempotency_key": key(&k), "school_id": id,
                "self_assessment": ctx.scores(&campaign, &scores, rest).await?,
                "statement": statement,
            });
            let r = c.call("SeedService/SubmitApplication", body).await?;
            ctx.print(&r, None, APPLICATIONS);
        }
        SeedMore::Review {
            application,
            approve,
            reject: _,
            reason,
            key: k,
        } => {
            let body = json!({
                "idempotency_key": key(&k), "application_id": application,
                "decision": if approve { "DECISION_APPROVE" } else { "DECISION_REJECT" },
                "reason": reason,
            });
            let r = c.call("SeedService/ReviewApplication", body).await?;
            ctx.print(&r, None, APPLICATIONS);
        }
        SeedMore::Opinion {
            application,
            department,
            agree,
            disagree: _,
            reason,
            key: k,
        } => {
            let body = json!({
                "idempotency_key": key(&k), "application_id": application,
                "department": department, "agree": agree, "reason": reason,
            });
            let r = c.call("SeedService/RecordDepartmentOpinion", body).await?;
            ctx.print(&r, None, APPLICATIONS);
            if ctx.format == crate::Format::Table {
                let cols = [
                    col("科室", "department", Cell::Text),
                    col("同意", "agree", Cell::Text),
                    col("理由", "reason", Cell::Text),
                    col("记录时间", "recorded_at", Cell::Time),
                ];
                println!();
                ctx.print(&r, Some("department_opinions"), &cols);
            }
        }
        SeedMore::Applications(campaign) => {
            let id = ctx.campaign(&campaign).await?;
            let r = c
                .call("SeedService/ListApplications", json!({ "campaign_id": id }))
                .await?;
            ctx.print(&r, Some("applications"), APPLICATIONS);
        }
    }
    Ok(())
}

pub async fn mentor(ctx: &Ctx, cmd: MentorCmd) -> Result<(), Failure> {
    let c = &ctx.client;
    match cmd {
        MentorCmd::Present {
            school,
            document,
            sha256,
            practices,
            campaign,
            key: k,
        } => {
            let id = ctx.school_id(&campaign, &school).await?;
            let mut decl = Vec::new();
            for p in &practices {
                let mut f = p.splitn(3, [':', '：']);
                let (Some(ind), Some(title)) = (f.next(), f.next()) else {
                    return Err(usage(format!(
                        "--practice `{p}`: expected INDICATOR:TITLE[:DESCRIPTION]"
                    )));
                };
                decl.push(json!({ "indicator": ind, "title": title, "description": f.next().unwrap_or_default() }));
            }
            let body = json!({
                "idempotency_key": key(&k), "school_id": id, "document_ref": document,
                "document_sha256": sha256, "practices": decl,
            });
            let r = c.call("MentorService/SubmitPresentation", body).await?;
            ctx.print(&r, Some("practices"), PRACTICES);
        }
        MentorCmd::Rate {
            school,
            ratings,
            rest,
            rejects,
            campaign,
            key: k,
        } => {
            let id = ctx.school_id(&campaign, &school).await?;
            let r = rate(ctx, &campaign, &id, &ratings, rest, &rejects, &key(&k)).await?;
            ctx.print(&r, Some("practices"), PRACTICES);
        }
        MentorCmd::Show { school, campaign } => {
            let id = ctx.school_id(&campaign, &school).await?;
            let r = c
                .call("MentorService/GetPresentation", json!({ "school_id": id }))
                .await?;
            if ctx.format == crate::Format::Table {
                println!(
                    "{}  评分人数 {}",
                    r["document_ref"].as_str().unwrap_or_default(),
                    r["raters"]
                );
            }
            ctx.print(&r, Some("practices"), PRACTICES);
        }
        MentorCmd::Propose(campaign) => {
            let id = ctx.campaign(&campaign).await?;
            let r = c
                .call("MentorService/ProposeMentors", json!({ "campaign_id": id }))
                .await?;
            ctx.print(&r, Some("proposals"), PROPOSALS);
        }
        MentorCmd::Confirm {
            overrides,
            dry_run,
            campaign,
            key: k,
        } => {
            let id = ctx.campaign(&campaign).await?;
            let mut list = Vec::new();
            for o in &overrides {
                let (school, rest) = pair("--override", o)?;
                let (yes, reason) = rest.split_once([':', '：']).unwrap_or((rest, ""));
                let mentor = match yes {
                    "yes" | "是" => true,
                    "no" | "否" => false,
                    _ => {
                        return Err(usage(format!(
                            "--override `{o}`: expected SCHOOL=yes|no:REASON"
                        )));
                    }
                };
                let sid = ctx.school_id(&campaign, school).await?;
                list.push(json!({ "school_id": sid, "mentor": mentor, "reason": reason }));
            }
            if dry_run {
                let mut r = c
                    .call("MentorService/ProposeMentors", json!({ "campaign_id": id }))
                    .await?;
                for o in &list {
                    for p in r["proposals"].as_array_mut().into_iter().flatten() {
                        if p["school_id"] == o["school_id"] {
                            p["mentor"] = o["mentor"].clone();
                            p["explanation"] = json!(format!(
                                "（调整）{}",
                                o["reason"].as_str().unwrap_or_default()
                            ));
                        }
                    }
                }
                let n = r["proposals"]
                    .as_array()
                    .map_or(0, |a| a.iter().filter(|p| p["mentor"] == true).count());
                ctx.print(&r, Some("proposals"), PROPOSALS);
                eprintln!(
                    "dry run: {n} of {} seed school(s) would be confirmed as mentor schools; nothing was changed",
                    r["proposals"].as_array().map_or(0, Vec::len)
                );
                return Ok(());
            }
            let r = c
                .call(
                    "MentorService/ConfirmMentors",
                    json!({ "idempotency_key": key(&k), "campaign_id": id, "overrides": list }),
                )
                .await?;
            ctx.print(&r, Some("proposals"), PROPOSALS);
        }
        MentorCmd::FormPanel {
            members,
            campaign,
            key: k,
        } => {
            let id = ctx.campaign(&campaign).await?;
            let list = panel_members(ctx, &campaign, &members, "school_id").await?;
            let r = c
                .call(
                    "MentorService/FormMentorPanel",
                    json!({ "idempotency_key": key(&k), "campaign_id": id, "members": list }),
                )
                .await?;
            ctx.print(&r, Some("members"), MENTOR_PANEL);
        }
        MentorCmd::Panel(campaign) => {
            let id = ctx.campaign(&campaign).await?;
            let r = c
                .call("MentorService/GetMentorPanel", json!({ "campaign_id": id }))
                .await?;
            ctx.print(&r, Some("members"), MENTOR_PANEL);
        }
        MentorCmd::Practices(campaign) => {
            let id = ctx.campaign(&campaign).await?;
            let r = c
                .call(
                    "MentorService/GetPracticeCollection",
                    json!({ "campaign_id": id }),
                )
                .await?;
            if ctx.format == crate::Format::Json {
                ctx.print(&r, None, &[]);
            } else {
                // One row per practice, its indicator's name first.
                let rows: Vec<Value> = r["groups"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|g| {
                        let name = g["indicator"]["name"].clone();
                        g["practices"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                            .into_iter()
                            .map(move |mut p| {
                                p["indicator_name"] = name.clone();
                                p
                            })
                    })
                    .collect();
                let cols = [
                    col("ID", "id", Cell::Text),
                    col("指标", "indicator_name", Cell::Text),
                    col("学校", "school_id", Cell::Text),
                    col("做法", "title", Cell::Text),
                    col("说明", "description", Cell::Text),
                ];
                ctx.print(&json!({ "rows": rows }), Some("rows"), &cols);
            }
        }
    }
    Ok(())
}

/// Rates one presentation. Kept in one place: the phase-2 panel (appointed members, recusal,
/// `min_raters`) may change what a rating needs.
pub(crate) async fn rate(
    ctx: &Ctx,
    campaign: &CampaignArg,
    school_id: &str,
    given: &[String],
    rest: Option<Rating>,
    rejects: &[String],
    idempotency_key: &str,
) -> Result<Value, Failure> {
    let c = &ctx.client;
    let mut by_code = std::collections::BTreeMap::new();
    for g in given {
        let (k, v) = pair("--rating", g)?;
        let r = Rating::from_str(v, true)
            .map_err(|_| usage(format!("--rating `{g}`: excellent, good, fair or poor")))?;
        by_code.insert(k.to_string(), r);
    }
    let mut ratings = Vec::new();
    if let Some(rest) = rest {
        for code in ctx.indicators(campaign).await? {
            let r = by_code.remove(&code).unwrap_or(rest);
            ratings.push(json!({ "indicator": code, "rating": pb_name("RATING_", r) }));
        }
    }
    ratings.extend(
        by_code
            .into_iter()
            .map(|(k, r)| json!({ "indicator": k, "rating": pb_name("RATING_", r) })),
    );
    let p = c
        .call(
            "MentorService/GetPresentation",
            json!({ "school_id": school_id }),
        )
        .await?;
    let verdicts: Vec<Value> = p["practices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| {
            let id = x["id"].as_str().unwrap_or_default();
            json!({ "practice_id": id, "accepted": !rejects.iter().any(|r| r == id) })
        })
        .collect();
    let body = json!({
        "idempotency_key": idempotency_key, "school_id": school_id,
        "ratings": ratings, "verdicts": verdicts,
    });
    Ok(c.call("MentorService/RatePresentation", body).await?)
}

pub async fn pairing(ctx: &Ctx, cmd: PairingCmd) -> Result<(), Failure> {
    let c = &ctx.client;
    match cmd {
        PairingCmd::Propose(campaign) => {
            let id = ctx.campaign(&campaign).await?;
            let r = c
                .call(
                    "PairingService/ProposePairing",
                    json!({ "campaign_id": id }),
                )
                .await?;
            ctx.print(&ctx.named(&campaign, r).await?, Some("groups"), GROUPS);
        }
        PairingCmd::Set {
            groups,
            from_proposal,
            dry_run,
            campaign,
            key: k,
        } => {
            let id = ctx.campaign(&campaign).await?;
            let list = if from_proposal {
                c.call(
                    "PairingService/ProposePairing",
                    json!({ "campaign_id": id }),
                )
                .await?["groups"]
                    .clone()
            } else {
                let mut list = Vec::new();
                for g in &groups {
                    let (m, ps) = pair("--group", g)?;
                    let mut names = vec![m];
                    names.extend(
                        ps.split([',', '，', '、'])
                            .map(str::trim)
                            .filter(|p| !p.is_empty()),
                    );
                    let mut ids = ctx.school_ids(&campaign, &names).await?;
                    let mentor = ids.remove(0);
                    list.push(json!({ "mentor_school_id": mentor, "potential_school_ids": ids }));
                }
                Value::Array(list)
            };
            if dry_run {
                let plan = json!({ "groups": list });
                let potentials: usize = list
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|g| g["potential_school_ids"].as_array().map_or(0, Vec::len))
                    .sum();
                ctx.print(&ctx.named(&campaign, plan).await?, Some("groups"), GROUPS);
                eprintln!(
                    "dry run: {} group(s) with {potentials} potential school(s) would be set; nothing was changed",
                    list.as_array().map_or(0, Vec::len)
                );
                return Ok(());
            }
            let r = c
                .call(
                    "PairingService/SetPairing",
                    json!({ "idempotency_key": key(&k), "campaign_id": id, "groups": list }),
                )
                .await?;
            ctx.print(&ctx.named(&campaign, r).await?, Some("groups"), GROUPS);
        }
        PairingCmd::Show(campaign) => {
            let id = ctx.campaign(&campaign).await?;
            let mut r = c
                .call("PairingService/GetPairing", json!({ "campaign_id": id }))
                .await?;
            if ctx.format != crate::Format::Json {
                // The coverage beside each group.
                let cov = r["coverage"].clone();
                for g in r["groups"].as_array_mut().into_iter().flatten() {
                    if let Some(cv) = cov
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|cv| cv["mentor_school_id"] == g["mentor_school_id"])
                    {
                        g["covered"] = json!(format!(
                            "{}/{}",
                            cv["covered_indicators"].as_array().map_or(0, Vec::len),
                            cv["indicator_count"]
                        ));
                    }
                }
            }
            let cols = [
                col("导师型学校", "mentor_school_id", Cell::Text),
                col("潜力校数", "potential_school_ids", Cell::Count),
                col("覆盖指标", "covered", Cell::Text),
                col("潜力校", "potential_school_ids", Cell::Text),
            ];
            ctx.print(&ctx.named(&campaign, r).await?, Some("groups"), &cols);
        }
        PairingCmd::Baseline {
            school,
            scores,
            rest,
            campaign,
            key: k,
        } => {
            let id = ctx.school_id(&campaign, &school).await?;
            let body = json!({
                "idempotency_key": key(&k), "school_id": id,
                "scores": ctx.scores(&campaign, &scores, rest).await?,
            });
            let r = c.call("PairingService/RecordBaseline", body).await?;
            let cols = [
                col("指标", "indicator", Cell::Text),
                col("得分", "score", Cell::Text),
            ];
            ctx.print(&r, Some("scores"), &cols);
        }
        PairingCmd::Assist {
            mentor,
            potential,
            date,
            indicators,
            description,
            evidence,
            campaign,
            key: k,
        } => {
            let ids = ctx.school_ids(&campaign, &[&mentor, &potential]).await?;
            let body = json!({
                "idempotency_key": key(&k), "mentor_school_id": ids[0],
                "potential_school_id": ids[1], "date": date, "indicators": indicators,
                "description": description, "evidence_ref": evidence,
            });
            let r = c.call("PairingService/LogAssistance", body).await?;
            ctx.print(&ctx.named(&campaign, r).await?, None, ACTIVITIES);
        }
        PairingCmd::Activities { mentor, campaign } => {
            let id = ctx.campaign(&campaign).await?;
            let mentor = match mentor {
                Some(m) => ctx.school_id(&campaign, &m).await?,
                None => String::new(),
            };
            let r = c
                .call(
                    "PairingService/ListAssistance",
                    json!({ "campaign_id": id, "mentor_school_id": mentor }),
                )
                .await?;
            ctx.print(
                &ctx.named(&campaign, r).await?,
                Some("activities"),
                ACTIVITIES,
            );
        }
    }
    Ok(())
}

/// `--member ACTOR:NAME:AFFILIATION[:SCHOOL]` as FormPanel and FormMentorPanel take them; the
/// school (id, code or name) goes in `school_field`.
async fn panel_members(
    ctx: &Ctx,
    campaign: &CampaignArg,
    members: &[String],
    school_field: &str,
) -> Result<Vec<Value>, Failure> {
    let mut list = Vec::new();
    for m in members {
        let f: Vec<&str> = m.split([':', '：']).collect();
        if f.len() < 3 {
            return Err(usage(format!(
                "--member `{m}`: expected ACTOR:NAME:AFFILIATION[:SCHOOL]"
            )));
        }
        // The actor itself holds a colon (`panel:…`).
        let (actor, name, aff, school) = if f[0] == "panel" && f.len() >= 4 {
            (format!("{}:{}", f[0], f[1]), f[2], f[3], f.get(4).copied())
        } else {
            (f[0].to_string(), f[1], f[2], f.get(3).copied())
        };
        let affiliation = match aff {
            "department" | "科室" => "AFFILIATION_DEPARTMENT",
            "high-school" | "高中" => "AFFILIATION_HIGH_SCHOOL",
            "mentor-school" | "导师型学校" => "AFFILIATION_MENTOR_SCHOOL",
            other => {
                return Err(usage(format!(
                    "--member `{m}`: affiliation `{other}` is department, high-school or mentor-school"
                )));
            }
        };
        let school = match school {
            Some(s) if !s.is_empty() => ctx.school_id(campaign, s).await?,
            _ => String::new(),
        };
        let mut member = json!({ "actor": actor, "name": name, "affiliation": affiliation });
        member[school_field] = json!(school);
        list.push(member);
    }
    Ok(list)
}

pub async fn acceptance(ctx: &Ctx, cmd: AcceptanceCmd) -> Result<(), Failure> {
    let c = &ctx.client;
    match cmd {
        AcceptanceCmd::FormPanel {
            members,
            campaign,
            key: k,
        } => {
            let id = ctx.campaign(&campaign).await?;
            let list = panel_members(ctx, &campaign, &members, "mentor_school_id").await?;
            let r = c
                .call(
                    "AcceptanceService/FormPanel",
                    json!({ "idempotency_key": key(&k), "campaign_id": id, "members": list }),
                )
                .await?;
            ctx.print(&r, Some("members"), MEMBERS);
        }
        AcceptanceCmd::Panel(campaign) => {
            let id = ctx.campaign(&campaign).await?;
            let r = c
                .call("AcceptanceService/GetPanel", json!({ "campaign_id": id }))
                .await?;
            ctx.print(&r, Some("members"), MEMBERS);
        }
        AcceptanceCmd::Score {
            school,
            report,
            scores,
            rest,
            campaign,
            key: k,
        } => {
            let id = ctx.school_id(&campaign, &school).await?;
            let body = json!({
                "idempotency_key": key(&k), "school_id": id, "report_score": report,
                "onsite": ctx.scores(&campaign, &scores, rest).await?,
            });
            let r = c.call("AcceptanceService/SubmitScores", body).await?;
            ctx.print(&r, None, RESULTS);
        }
        AcceptanceCmd::Results(campaign) => {
            let id = ctx.campaign(&campaign).await?;
            let r = c
                .call("AcceptanceService/GetResults", json!({ "campaign_id": id }))
                .await?;
            ctx.print(&r, Some("results"), RESULTS);
            if ctx.format == crate::Format::Table {
                println!(
                    "{}",
                    if r["final"] == true {
                        "（最终结果）"
                    } else {
                        "（结果未最终确定）"
                    }
                );
            }
        }
        AcceptanceCmd::PublishNotice {
            title,
            campaign,
            key: k,
        } => {
            let id = ctx.campaign(&campaign).await?;
            let r = c
                .call(
                    "AcceptanceService/PublishResultsNotice",
                    json!({ "idempotency_key": key(&k), "campaign_id": id, "title": title }),
                )
                .await?;
            ctx.print(&r, None, crate::NOTICES);
        }
    }
    Ok(())
}

/// Counts of a list by one field, in first-seen order: `贡献校 2、示范校 6`.
pub(crate) fn counts(rows: &Value, field: &str) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for r in rows.as_array().into_iter().flatten() {
        let k = r[field].as_str().unwrap_or_default().to_string();
        match out.iter_mut().find(|(x, _)| *x == k) {
            Some((_, n)) => *n += 1,
            None => out.push((k, 1)),
        }
    }
    out
}

pub(crate) fn join_counts(c: &[(String, usize)]) -> String {
    c.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join("、")
}

pub async fn award(ctx: &Ctx, cmd: AwardCmd) -> Result<(), Failure> {
    let c = &ctx.client;
    match cmd {
        AwardCmd::Propose(campaign) => {
            let id = ctx.campaign(&campaign).await?;
            let r = c
                .call("AwardService/ProposeAwards", json!({ "campaign_id": id }))
                .await?;
            ctx.print(&r, Some("awards"), AWARDS);
        }
        AwardCmd::Confirm {
            overrides,
            dry_run,
            campaign,
            key: k,
        } => {
            let id = ctx.campaign(&campaign).await?;
            let mut list = Vec::new();
            for o in &overrides {
                let (school, rest) = pair("--override", o)?;
                let (class, reason) = rest.split_once([':', '：']).unwrap_or((rest, ""));
                let class = AwardClass::from_str(class, true).map_err(|_| {
                    usage(format!(
                        "--override `{o}`: class contribution, model, progress, compliance, veto or withheld"
                    ))
                })?;
                let sid = ctx.school_id(&campaign, school).await?;
                list.push(json!({ "school_id": sid, "class": pb_name("AWARD_CLASS_", class), "reason": reason }));
            }
            if dry_run {
                let mut r = c
                    .call("AwardService/ProposeAwards", json!({ "campaign_id": id }))
                    .await?;
                for o in &list {
                    for a in r["awards"].as_array_mut().into_iter().flatten() {
                        if a["school_id"] == o["school_id"] {
                            a["class"] = o["class"].clone();
                            a["class_label"] = o["class"].clone();
                            a["override_reason"] = o["reason"].clone();
                        }
                    }
                }
                ctx.print(&r, Some("awards"), AWARDS);
                eprintln!(
                    "dry run: {} award(s) would be confirmed ({}); nothing was changed",
                    r["awards"].as_array().map_or(0, Vec::len),
                    join_counts(&counts(&r["awards"], "class_label"))
                );
                return Ok(());
            }
            let r = c
                .call(
                    "AwardService/ConfirmAwards",
                    json!({ "idempotency_key": key(&k), "campaign_id": id, "overrides": list }),
                )
                .await?;
            ctx.print(&r, Some("awards"), AWARDS);
        }
        AwardCmd::List {
            year,
            school,
            principal,
            class,
            campaign,
        } => {
            let id = match year {
                Some(_) => String::new(),
                None => ctx.campaign(&campaign).await?,
            };
            let body = json!({
                "campaign_id": id, "year": year.unwrap_or(0),
                "school_id": school.unwrap_or_default(), "principal": principal.unwrap_or_default(),
                "class": class.map(|c| pb_name("AWARD_CLASS_", c)).unwrap_or_else(|| "AWARD_CLASS_UNSPECIFIED".into()),
            });
            let r = c.call("AwardService/ListAwards", body).await?;
            ctx.print(&r, Some("awards"), AWARDS);
        }
        AwardCmd::Consequences {
            year,
            school,
            principal_id,
            kind,
            limit,
            campaign,
        } => {
            let id = match year {
                Some(_) => String::new(),
                None => ctx.campaign(&campaign).await?,
            };
            let body = json!({
                "campaign_id": id, "year": year.unwrap_or(0),
                "school_id": school.unwrap_or_default(), "principal_id": principal_id.unwrap_or_default(),
                "kind": kind.unwrap_or_default(), "page_size": limit,
            });
            let r = c.call("AwardService/ListConsequences", body).await?;
            ctx.print(&r, Some("consequences"), CONSEQUENCES);
        }
    }
    Ok(())
}

pub async fn audit(ctx: &Ctx, cmd: AuditMore) -> Result<(), Failure> {
    let AuditMore::List {
        school,
        limit,
        campaign,
    } = cmd;
    let id = ctx.campaign(&campaign).await?;
    let r = ctx
        .client
        .call(
            "CampaignService/ListAuditEvents",
            json!({ "campaign_id": id, "school_id": school.unwrap_or_default(), "page_size": limit }),
        )
        .await?;
    ctx.print(&r, Some("events"), EVENTS);
    Ok(())
}

pub async fn obligation(ctx: &Ctx, cmd: ObligationCmd) -> Result<(), Failure> {
    let ObligationCmd::List {
        school,
        all,
        campaign,
    } = cmd;
    let id = ctx.campaign(&campaign).await?;
    let r = ctx
        .client
        .call(
            "CampaignService/ListObligations",
            json!({ "campaign_id": id, "school_id": school.unwrap_or_default(), "include_closed": all }),
        )
        .await?;
    ctx.print(&r, Some("obligations"), OBLIGATIONS);
    Ok(())
}

pub async fn delivery(ctx: &Ctx, cmd: DeliveryMore) -> Result<(), Failure> {
    let c = &ctx.client;
    match cmd {
        DeliveryMore::Show { id } => {
            let r = c
                .call("SchedulerService/GetDelivery", json!({ "id": id }))
                .await?;
            if ctx.format == crate::Format::Table {
                let d = json!({ "deliveries": [r["delivery"].clone()] });
                ctx.print(&d, Some("deliveries"), DELIVERIES);
                println!();
                ctx.print(&r, Some("attempts"), ATTEMPTS);
                println!("\n{}", r["text"].as_str().unwrap_or_default());
            } else {
                ctx.print(&r, Some("attempts"), ATTEMPTS);
            }
        }
        DeliveryMore::Resend {
            ids,
            dry_run,
            key: k,
        } => {
            let mut rows = Vec::new();
            for id in &ids {
                if dry_run {
                    let r = c
                        .call("SchedulerService/GetDelivery", json!({ "id": id }))
                        .await?;
                    rows.push(r["delivery"].clone());
                } else {
                    let body = json!({ "idempotency_key": sub_key(&k, id), "id": id });
                    rows.push(c.call("SchedulerService/ResendDelivery", body).await?);
                }
            }
            let reply = json!({ "deliveries": rows });
            if dry_run {
                ctx.print_dry_run(
                    &reply,
                    "deliveries",
                    DELIVERIES,
                    "delivery(ies) would be sent again",
                );
            } else {
                ctx.print(&reply, Some("deliveries"), DELIVERIES);
            }
        }
        DeliveryMore::Upcoming { until, campaign } => {
            let id = ctx.campaign(&campaign).await?;
            let r = c
                .call(
                    "SchedulerService/PreviewUpcoming",
                    json!({ "campaign_id": id, "until": until.to_rfc3339() }),
                )
                .await?;
            ctx.print(&r, Some("messages"), UPCOMING);
        }
    }
    Ok(())
}
