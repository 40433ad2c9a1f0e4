//! Campaign definitions: the TOML a bureau writes for one county and year.
//!
//! Parsing reports *every* problem at once (line, field, reason). A parsed definition is stored
//! with the campaign in canonical form (JSON) with its SHA-256, and running campaigns are always
//! evaluated against that stored copy, never against the file.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::calendar::{Calendars, WorkCalendar};
use crate::phase_kind::PhaseKind;
use crate::time::start_of_day;

/// One problem in a definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based line in the TOML, when known.
    pub line: Option<usize>,
    /// Dotted field path, e.g. `phases.pairing.end`.
    pub field: String,
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}: {}", self.field, self.reason),
            None => write!(f, "{}: {}", self.field, self.reason),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid campaign definition: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct DefinitionError(pub Vec<Problem>);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indicator {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Milestone {
    pub name: String,
    pub label: String,
    pub date: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseWindow {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub milestones: Vec<Milestone>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MentorRule {
    /// Share of panel ratings that must be "excellent" for an indicator to count (1.0 = all).
    pub excellent_share: f64,
    /// Ratings (by appointed phase-2 panel members) needed before a school can be judged at
    /// all; 3 when the definition omits it.
    pub min_raters: u32,
    /// A practice is accepted when strictly more than this share of verdicts accept it.
    pub practice_accept_share: f64,
    /// Distinct indicators that accepted practices must cover.
    pub min_practice_indicators: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scoring {
    pub report_weight: f64,
    pub onsite_weight: f64,
    /// Drop one highest and one lowest score when there are at least this many.
    pub trim_from: u32,
    pub pass_line: f64,
    pub max_near_misses: u32,
    pub near_miss_margin: f64,
    /// Gain over baseline (points) that counts as outstanding progress.
    pub progress_gain: f64,
    /// Alternatively the top share of potential schools by gain.
    pub progress_top_share: f64,
    /// A mentor's group progressed notably when its mean gain reaches this.
    pub contribution_group_gain: f64,
    /// Strong assistance: at least this many logged activities.
    pub contribution_min_activities: u32,
    /// 1+X 八项指标的全方位帮扶: distinct indicators a mentor's logged activities must cover
    /// for 贡献校 (0 = no such condition, as before the value existed).
    #[serde(default)]
    pub contribution_min_indicator_coverage: u32,
    /// Which scores feed the compliance and progress rules (absent = on-site, as before).
    #[serde(default)]
    pub award_basis: AwardBasis,
}

/// Which scores decide the compliance bar and the gain over baseline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AwardBasis {
    /// The on-site indicator scores alone.
    #[default]
    Onsite,
    /// Per indicator, `report_weight × report + onsite_weight × on-site` (the weighted score the
    /// results notice publishes).
    Weighted,
}

impl AwardBasis {
    /// How an award reasoning names its basis.
    pub fn label(self, s: &Scoring) -> String {
        match self {
            AwardBasis::Onsite => "依据现场评估得分".into(),
            AwardBasis::Weighted => format!(
                "依据综合得分（报告{}%＋现场{}%）",
                (s.report_weight * 100.0).round(),
                (s.onsite_weight * 100.0).round()
            ),
        }
    }
}

/// What a seed school that never presented (and so could not be a mentor) is proposed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeedWithoutPresentation {
    /// No award (不予评定).
    #[default]
    None,
    /// 标兵校, like a seed school that presented.
    Model,
    /// 达标校.
    Compliance,
}

/// `[awards]`: award rules beyond the scores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwardRules {
    pub seed_without_presentation: SeedWithoutPresentation,
}

/// `[seed]`: the eligibility review.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeedRules {
    /// 督导室协同相关业务科室: at least one department opinion before the office decides.
    pub require_department_opinion: bool,
}

/// Whom a consequence of an award concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    School,
    Principal,
}

impl Subject {
    pub fn code(self) -> &'static str {
        match self {
            Subject::School => "school",
            Subject::Principal => "principal",
        }
    }
    pub fn from_code(s: &str) -> Option<Self> {
        [Subject::School, Subject::Principal]
            .into_iter()
            .find(|x| x.code() == s)
    }
}

/// 三、结果运用: one consequence a confirmed award class has for the school or its principal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsequenceRule {
    pub class: crate::award_class::AwardClass,
    pub subject: Subject,
    /// A stable code other bureau systems filter on (ASCII snake case).
    pub kind: String,
    pub label: String,
    /// In force until the end of the campaign year (e.g. 年内不得评先树优).
    #[serde(default)]
    pub until_year_end: bool,
}

/// The plan's 三、结果运用, as data.
pub fn plan_consequences() -> Vec<ConsequenceRule> {
    use crate::award_class::AwardClass as A;
    let r = |class, subject, kind: &str, label: &str, until_year_end| ConsequenceRule {
        class,
        subject,
        kind: kind.into(),
        label: label.into(),
        until_year_end,
    };
    vec![
        r(
            A::Contribution,
            Subject::School,
            "teachers_day_commendation",
            "教师节大会集体表彰",
            false,
        ),
        r(
            A::Contribution,
            Subject::Principal,
            "teachers_day_commendation",
            "教师节大会个人表彰",
            false,
        ),
        r(
            A::Contribution,
            Subject::School,
            "evaluation_basis",
            "评先树优重要依据",
            false,
        ),
        r(
            A::Contribution,
            Subject::Principal,
            "evaluation_basis",
            "评先树优重要依据",
            false,
        ),
        r(
            A::Contribution,
            Subject::Principal,
            "rank_assessment_basis",
            "校长职级制考核重要依据",
            false,
        ),
        r(
            A::Contribution,
            Subject::Principal,
            "appointment_basis",
            "选拔任用重要依据",
            false,
        ),
        r(
            A::Contribution,
            Subject::School,
            "title_evaluation_tilt",
            "职称评定适当倾斜",
            false,
        ),
        r(
            A::Progress,
            Subject::School,
            "special_commendation",
            "教师节大会专项表彰",
            false,
        ),
        r(
            A::Progress,
            Subject::Principal,
            "special_commendation",
            "教师节大会专项表彰",
            false,
        ),
        r(
            A::Progress,
            Subject::School,
            "evaluation_basis",
            "评先树优重要依据",
            false,
        ),
        r(
            A::Progress,
            Subject::Principal,
            "evaluation_basis",
            "评先树优重要依据",
            false,
        ),
        r(
            A::Progress,
            Subject::Principal,
            "rank_assessment_basis",
            "校长职级制考核重要依据",
            false,
        ),
        r(
            A::Veto,
            Subject::School,
            "evaluation_barred",
            "年内不得评先树优",
            true,
        ),
        r(
            A::Veto,
            Subject::Principal,
            "evaluation_barred",
            "年内不得评先树优",
            true,
        ),
        r(
            A::Veto,
            Subject::Principal,
            "rank_assessment_flag",
            "校长职级制考核中视情况处理",
            false,
        ),
    ]
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reminders {
    pub offsets_days: Vec<u32>,
    pub morning: NaiveTime,
    pub quiet_start: NaiveTime,
    pub quiet_end: NaiveTime,
    pub digest_cron: String,
}

/// What every published text carries: the campaign's title, who issues it, and how the public
/// reaches the office (公示 落款, 监督电话 …). Defaults are the 2020 Changle plan's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Publication {
    /// The campaign as the plan names it (义务教育优质均衡系列示范校创建).
    pub title: String,
    /// The issuing unit that signs notices (落款).
    pub issuing_unit: String,
    /// The office that runs the campaign and receives objections (督导室).
    pub office: String,
    /// The plan's document number (文号).
    pub document_number: String,
    /// 监督电话.
    pub phone: String,
    /// Postal address for written objections.
    pub address: String,
    /// E-mail for objections.
    pub email: String,
    /// Prefix of the 索引号 a portal shows for each notice.
    pub index_prefix: String,
    /// Award titles as the plan writes them.
    pub awards: AwardTitles,
}

/// The four award classes and the veto, titled as the plan writes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AwardTitles {
    pub contribution: String,
    pub model: String,
    pub progress: String,
    pub compliance: String,
    pub veto: String,
}

impl Default for Publication {
    fn default() -> Self {
        Publication {
            title: "义务教育优质均衡系列示范校创建".into(),
            issuing_unit: "昌乐县教育和体育局".into(),
            office: "昌乐县人民政府教育督导室".into(),
            document_number: "乐教督字〔2020〕2号".into(),
            phone: String::new(),
            address: String::new(),
            email: String::new(),
            index_prefix: String::new(),
            awards: AwardTitles::default(),
        }
    }
}

impl Default for AwardTitles {
    fn default() -> Self {
        AwardTitles {
            contribution: "全县义务教育优质均衡贡献校".into(),
            model: "全县义务教育优质均衡标兵校".into(),
            progress: "全县义务教育优质均衡进步校".into(),
            compliance: "全县义务教育优质均衡达标校".into(),
            veto: "一票否决".into(),
        }
    }
}

/// A validated campaign definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignDefinition {
    pub code: String,
    pub county: String,
    pub county_code: String,
    pub year: i32,
    pub time_zone: String,
    pub phases: BTreeMap<PhaseKind, PhaseWindow>,
    pub indicators: Vec<Indicator>,
    pub notice_working_days: u32,
    /// How many objections one objector (by contact) may file against one notice.
    #[serde(default = "default_max_objections")]
    pub max_objections_per_objector: u32,
    /// Readers may file an objection on the public notice page (`[notice] online_objections`;
    /// off unless the definition says so).
    #[serde(default)]
    pub online_objections: bool,
    pub supplementary_notice: bool,
    pub group_min: u32,
    pub group_max: u32,
    pub mentor: MentorRule,
    pub scoring: Scoring,
    pub reminders: Reminders,
    pub extra_off_days: Vec<NaiveDate>,
    pub extra_working_days: Vec<NaiveDate>,
    /// Absent from definitions stored before it existed: those read as the plan's defaults.
    #[serde(default)]
    pub publication: Publication,
    /// `[awards]`; absent from older stored definitions (read as the defaults).
    #[serde(default)]
    pub awards: AwardRules,
    /// `[seed]`; absent from older stored definitions.
    #[serde(default)]
    pub seed: SeedRules,
    /// `[[consequences]]` (三、结果运用); absent = the plan's.
    #[serde(default = "plan_consequences")]
    pub consequences: Vec<ConsequenceRule>,
    #[serde(skip)]
    calendar: WorkCalendar,
}

impl CampaignDefinition {
    pub fn tz(&self) -> Tz {
        self.time_zone.parse().expect("validated at parse time")
    }

    pub fn calendar(&self) -> &WorkCalendar {
        &self.calendar
    }

    pub fn window(&self, phase: PhaseKind) -> &PhaseWindow {
        &self.phases[&phase]
    }

    /// Exclusive deadline of a last day: the start of the next day, campaign time.
    pub fn deadline_after(&self, last_day: NaiveDate) -> DateTime<Utc> {
        start_of_day(last_day.succ_opt().expect("date in range"), self.tz())
    }

    pub fn milestone(&self, phase: PhaseKind, name: &str) -> Option<&Milestone> {
        self.window(phase)
            .milestones
            .iter()
            .find(|m| m.name == name)
    }

    pub fn indicator(&self, code: &str) -> Option<&Indicator> {
        self.indicators.iter().find(|i| i.code == code)
    }

    /// Canonical JSON (stable field order) and its SHA-256 in hex.
    pub fn canonical(&self) -> (serde_json::Value, String) {
        let value = serde_json::to_value(self).expect("definition serializes");
        let bytes = serde_json::to_vec(&value).expect("json value serializes");
        (value, hex::encode(Sha256::digest(bytes)))
    }

    /// Re-validates a stored canonical definition (the calendar is rebuilt, not stored), with the
    /// shipped calendar years.
    pub fn from_canonical(value: serde_json::Value) -> Result<Self, DefinitionError> {
        Self::from_canonical_with(value, Calendars::shipped())
    }

    /// [`Self::from_canonical`] with the calendar years the service loaded.
    pub fn from_canonical_with(
        value: serde_json::Value,
        years: &Calendars,
    ) -> Result<Self, DefinitionError> {
        let mut def: CampaignDefinition = serde_json::from_value(value).map_err(|e| {
            DefinitionError(vec![Problem {
                line: None,
                field: "definition".into(),
                reason: e.to_string(),
            }])
        })?;
        def.calendar = build_calendar(&def, years);
        Ok(def)
    }

    /// Parses and validates a definition against the shipped calendar years.
    pub fn parse(toml_text: &str) -> Result<Self, DefinitionError> {
        Self::parse_with(toml_text, Calendars::shipped())
    }

    /// [`Self::parse`] with the calendar years the service loaded (shipped and added files): a
    /// phase in a year without data is refused, naming the year and the file to add.
    pub fn parse_with(toml_text: &str, years: &Calendars) -> Result<Self, DefinitionError> {
        let raw: raw::Definition = toml::from_str(toml_text).map_err(|e| {
            let line = e.span().map(|s| line_of(toml_text, s.start));
            DefinitionError(vec![Problem {
                line,
                field: "definition".into(),
                reason: e.message().trim().to_string(),
            }])
        })?;
        let mut v = Validator {
            text: toml_text,
            problems: Vec::new(),
            years,
        };
        let def = v.build(raw);
        match def {
            Some(def) if v.problems.is_empty() => Ok(def),
            _ => Err(DefinitionError(v.problems)),
        }
    }
}

fn default_max_objections() -> u32 {
    3
}

fn build_calendar(def: &CampaignDefinition, years: &Calendars) -> WorkCalendar {
    let mut cal = WorkCalendar::with_years(years.clone());
    for d in &def.extra_off_days {
        cal.set_day(*d, true);
    }
    for d in &def.extra_working_days {
        cal.set_day(*d, false);
    }
    cal
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

mod raw {
    //! The TOML as written, with spans for the values we check beyond their type.
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Definition {
        pub campaign: Campaign,
        #[serde(default)]
        pub calendar: Calendar,
        pub phases: BTreeMap<String, Spanned<Phase>>,
        pub indicators: Spanned<Vec<Indicator>>,
        #[serde(default)]
        pub notice: Notice,
        #[serde(default)]
        pub pairing: Pairing,
        #[serde(default)]
        pub mentor: Mentor,
        #[serde(default)]
        pub scoring: ScoringRaw,
        #[serde(default)]
        pub reminders: RemindersRaw,
        #[serde(default)]
        pub publication: PublicationRaw,
        #[serde(default)]
        pub awards: AwardRules,
        #[serde(default)]
        pub seed: SeedRules,
        #[serde(default)]
        pub consequences: Option<Vec<ConsequenceRule>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct PublicationRaw {
        pub title: Spanned<String>,
        pub issuing_unit: Spanned<String>,
        pub office: Spanned<String>,
        pub document_number: Spanned<String>,
        pub phone: String,
        pub address: String,
        pub email: String,
        pub index_prefix: String,
        pub awards: AwardTitlesRaw,
    }
    impl Default for PublicationRaw {
        fn default() -> Self {
            let d = Publication::default();
            let s = |v: String| Spanned::new(0..0, v);
            PublicationRaw {
                title: s(d.title),
                issuing_unit: s(d.issuing_unit),
                office: s(d.office),
                document_number: s(d.document_number),
                phone: d.phone,
                address: d.address,
                email: d.email,
                index_prefix: d.index_prefix,
                awards: AwardTitlesRaw::default(),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct AwardTitlesRaw {
        pub contribution: Spanned<String>,
        pub model: Spanned<String>,
        pub progress: Spanned<String>,
        pub compliance: Spanned<String>,
        pub veto: Spanned<String>,
    }
    impl Default for AwardTitlesRaw {
        fn default() -> Self {
            let d = AwardTitles::default();
            let s = |v: String| Spanned::new(0..0, v);
            AwardTitlesRaw {
                contribution: s(d.contribution),
                model: s(d.model),
                progress: s(d.progress),
                compliance: s(d.compliance),
                veto: s(d.veto),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Campaign {
        pub code: Spanned<String>,
        pub county: Spanned<String>,
        #[serde(default)]
        pub county_code: Option<Spanned<String>>,
        pub year: Spanned<i32>,
        #[serde(default = "default_tz")]
        pub time_zone: Spanned<String>,
    }

    fn default_tz() -> Spanned<String> {
        Spanned::new(0..0, "Asia/Shanghai".to_string())
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Calendar {
        #[serde(default)]
        pub extra_off_days: Vec<Spanned<String>>,
        #[serde(default)]
        pub extra_working_days: Vec<Spanned<String>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Phase {
        pub start: Spanned<String>,
        pub end: Spanned<String>,
        #[serde(default)]
        pub milestones: Vec<Spanned<MilestoneRaw>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct MilestoneRaw {
        pub name: String,
        pub label: String,
        pub date: Spanned<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Indicator {
        pub code: Spanned<String>,
        pub name: Spanned<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct Notice {
        pub working_days: Spanned<i64>,
        pub supplementary: bool,
        pub max_objections_per_objector: Spanned<i64>,
        pub online_objections: bool,
    }
    impl Default for Notice {
        fn default() -> Self {
            Notice {
                working_days: Spanned::new(0..0, 5),
                supplementary: true,
                max_objections_per_objector: Spanned::new(0..0, 3),
                online_objections: false,
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct Pairing {
        pub group_min: Spanned<i64>,
        pub group_max: Spanned<i64>,
    }
    impl Default for Pairing {
        fn default() -> Self {
            Pairing {
                group_min: Spanned::new(0..0, 1),
                group_max: Spanned::new(0..0, 4),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct Mentor {
        pub excellent_share: Spanned<f64>,
        pub min_raters: Spanned<i64>,
        pub practice_accept_share: Spanned<f64>,
        pub min_practice_indicators: Spanned<i64>,
    }
    impl Default for Mentor {
        fn default() -> Self {
            Mentor {
                excellent_share: Spanned::new(0..0, 1.0),
                min_raters: Spanned::new(0..0, 3),
                practice_accept_share: Spanned::new(0..0, 0.5),
                min_practice_indicators: Spanned::new(0..0, 2),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct ScoringRaw {
        pub report_weight: Spanned<f64>,
        pub onsite_weight: Spanned<f64>,
        pub trim_from: Spanned<i64>,
        pub pass_line: Spanned<f64>,
        pub max_near_misses: Spanned<i64>,
        pub near_miss_margin: Spanned<f64>,
        pub progress_gain: Spanned<f64>,
        pub progress_top_share: Spanned<f64>,
        pub contribution_group_gain: Spanned<f64>,
        pub contribution_min_activities: Spanned<i64>,
        pub contribution_min_indicator_coverage: Spanned<i64>,
        pub award_basis: AwardBasis,
    }
    impl Default for ScoringRaw {
        fn default() -> Self {
            let s = |v: f64| Spanned::new(0..0, v);
            let i = |v: i64| Spanned::new(0..0, v);
            ScoringRaw {
                report_weight: s(0.4),
                onsite_weight: s(0.6),
                trim_from: i(5),
                pass_line: s(60.0),
                max_near_misses: i(1),
                near_miss_margin: s(5.0),
                progress_gain: s(10.0),
                progress_top_share: s(0.2),
                contribution_group_gain: s(8.0),
                contribution_min_activities: i(4),
                contribution_min_indicator_coverage: i(0),
                award_basis: AwardBasis::Onsite,
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct RemindersRaw {
        pub offsets_days: Spanned<Vec<i64>>,
        pub morning: Spanned<String>,
        pub quiet_start: Spanned<String>,
        pub quiet_end: Spanned<String>,
        pub digest_cron: Spanned<String>,
    }
    impl Default for RemindersRaw {
        fn default() -> Self {
            let s = |v: &str| Spanned::new(0..0, v.to_string());
            RemindersRaw {
                offsets_days: Spanned::new(0..0, vec![7, 3, 1, 0]),
                morning: s("08:30"),
                quiet_start: s("21:00"),
                quiet_end: s("08:00"),
                digest_cron: s("0 0 17 * * Mon-Fri"),
            }
        }
    }
}

struct Validator<'a> {
    text: &'a str,
    problems: Vec<Problem>,
    years: &'a Calendars,
}

impl Validator<'_> {
    fn push<T>(&mut self, at: &Spanned<T>, field: impl Into<String>, reason: impl Into<String>) {
        let span = at.span();
        let line = (span.end > 0).then(|| line_of(self.text, span.start));
        self.problems.push(Problem {
            line,
            field: field.into(),
            reason: reason.into(),
        });
    }

    fn date(&mut self, s: &Spanned<String>, field: &str) -> Option<NaiveDate> {
        match NaiveDate::parse_from_str(s.get_ref(), "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                self.push(
                    s,
                    field,
                    format!("`{}` is not a date (YYYY-MM-DD)", s.get_ref()),
                );
                None
            }
        }
    }

    fn time(&mut self, s: &Spanned<String>, field: &str) -> Option<NaiveTime> {
        match NaiveTime::parse_from_str(s.get_ref(), "%H:%M") {
            Ok(t) => Some(t),
            Err(_) => {
                self.push(
                    s,
                    field,
                    format!("`{}` is not a time of day (HH:MM)", s.get_ref()),
                );
                None
            }
        }
    }

    fn share(&mut self, s: &Spanned<f64>, field: &str) -> f64 {
        let v = *s.get_ref();
        if !(0.0..=1.0).contains(&v) {
            self.push(s, field, format!("{v} must be between 0 and 1"));
        }
        v
    }

    fn count(&mut self, s: &Spanned<i64>, field: &str, min: i64, max: i64) -> u32 {
        let v = *s.get_ref();
        if v < min || v > max {
            self.push(s, field, format!("{v} must be between {min} and {max}"));
            return min.max(0) as u32;
        }
        v as u32
    }

    fn nonempty(&mut self, s: &Spanned<String>, field: &str) -> String {
        let v = s.get_ref().trim().to_string();
        if v.is_empty() {
            self.push(s, field, "must not be empty");
        }
        v
    }

    fn publication(&mut self, p: &raw::PublicationRaw) -> Publication {
        let a = &p.awards;
        let email = p.email.trim().to_string();
        if !email.is_empty() && !email.contains('@') {
            self.problems.push(Problem {
                line: None,
                field: "publication.email".into(),
                reason: format!("`{email}` is not an e-mail address"),
            });
        }
        Publication {
            title: self.nonempty(&p.title, "publication.title"),
            issuing_unit: self.nonempty(&p.issuing_unit, "publication.issuing_unit"),
            office: self.nonempty(&p.office, "publication.office"),
            document_number: self.nonempty(&p.document_number, "publication.document_number"),
            phone: p.phone.trim().to_string(),
            address: p.address.trim().to_string(),
            email,
            index_prefix: p.index_prefix.trim().to_string(),
            awards: AwardTitles {
                contribution: self.nonempty(&a.contribution, "publication.awards.contribution"),
                model: self.nonempty(&a.model, "publication.awards.model"),
                progress: self.nonempty(&a.progress, "publication.awards.progress"),
                compliance: self.nonempty(&a.compliance, "publication.awards.compliance"),
                veto: self.nonempty(&a.veto, "publication.awards.veto"),
            },
        }
    }

    fn build(&mut self, raw: raw::Definition) -> Option<CampaignDefinition> {
        let c = &raw.campaign;
        let code = self.nonempty(&c.code, "campaign.code");
        if !code.is_empty()
            && !code
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            self.push(
                &c.code,
                "campaign.code",
                "use ASCII letters, digits, '-' and '_' only",
            );
        }
        let county = self.nonempty(&c.county, "campaign.county");
        let county_code = match &c.county_code {
            Some(cc) => {
                if !(cc.get_ref().len() == 6 && cc.get_ref().chars().all(|ch| ch.is_ascii_digit()))
                {
                    self.push(
                        cc,
                        "campaign.county_code",
                        "must be a 6-digit administrative division code",
                    );
                }
                cc.get_ref().clone()
            }
            None => String::new(),
        };
        let year = *c.year.get_ref();
        if !(2000..=2100).contains(&year) {
            self.push(
                &c.year,
                "campaign.year",
                format!("{year} is not a plausible campaign year"),
            );
        }
        if c.time_zone.get_ref().parse::<Tz>().is_err() {
            self.push(
                &c.time_zone,
                "campaign.time_zone",
                format!("`{}` is not an IANA time zone", c.time_zone.get_ref()),
            );
        }

        let mut phases = BTreeMap::new();
        for (name, phase) in &raw.phases {
            let Some(kind) = PhaseKind::from_code(name) else {
                self.push(
                    phase,
                    format!("phases.{name}"),
                    format!(
                        "unknown phase; expected one of {}",
                        PhaseKind::ALL.map(|p| p.code()).join(", ")
                    ),
                );
                continue;
            };
            let p = phase.get_ref();
            let start = self.date(&p.start, &format!("phases.{name}.start"));
            let end = self.date(&p.end, &format!("phases.{name}.end"));
            let mut milestones = Vec::new();
            for (i, m) in p.milestones.iter().enumerate() {
                let field = format!("phases.{name}.milestones[{i}]");
                let mr = m.get_ref();
                if mr.name.trim().is_empty() || mr.label.trim().is_empty() {
                    self.push(m, &field, "name and label must not be empty");
                }
                if let Some(date) = self.date(&mr.date, &format!("{field}.date")) {
                    if let (Some(s), Some(e)) = (start, end)
                        && (date < s || date > e)
                    {
                        self.push(
                            &mr.date,
                            format!("{field}.date"),
                            format!("{date} is outside the phase window {s}..{e}"),
                        );
                    }
                    milestones.push(Milestone {
                        name: mr.name.trim().into(),
                        label: mr.label.trim().into(),
                        date,
                    });
                }
            }
            if let (Some(s), Some(e)) = (start, end) {
                if e < s {
                    self.push(
                        &p.end,
                        format!("phases.{name}.end"),
                        format!("{e} is before the start {s}"),
                    );
                }
                if chrono::Datelike::year(&s) != year && (2000..=2100).contains(&year) {
                    self.push(
                        &p.start,
                        format!("phases.{name}.start"),
                        format!("{s} is not in the campaign year {year}"),
                    );
                }
                phases.insert(
                    kind,
                    PhaseWindow {
                        start: s,
                        end: e,
                        milestones,
                    },
                );
            }
        }
        for kind in PhaseKind::ALL {
            if !raw.phases.contains_key(kind.code()) {
                self.problems.push(Problem {
                    line: None,
                    field: format!("phases.{}", kind.code()),
                    reason: "missing phase window".into(),
                });
            }
        }
        // Phases are sequential: each window may overlap the previous but not start before it.
        for pair in PhaseKind::ALL.windows(2) {
            if let (Some(a), Some(b)) = (phases.get(&pair[0]), phases.get(&pair[1]))
                && (b.start < a.start || b.end < a.end)
            {
                let at = &raw.phases[pair[1].code()];
                let reason = format!(
                    "window {}..{} must not start or end before the previous phase's {}..{}",
                    b.start, b.end, a.start, a.end
                );
                self.push(at, format!("phases.{}", pair[1].code()), reason);
            }
        }

        let mut indicators = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, ind) in raw.indicators.get_ref().iter().enumerate() {
            let code = self.nonempty(&ind.code, &format!("indicators[{i}].code"));
            let name = self.nonempty(&ind.name, &format!("indicators[{i}].name"));
            if !code.is_empty() && !seen.insert(code.clone()) {
                self.push(
                    &ind.code,
                    format!("indicators[{i}].code"),
                    format!("duplicate indicator code `{code}`"),
                );
            }
            indicators.push(Indicator { code, name });
        }
        if indicators.is_empty() {
            self.push(
                &raw.indicators,
                "indicators",
                "at least one indicator is required",
            );
        }

        let notice_working_days =
            self.count(&raw.notice.working_days, "notice.working_days", 1, 30);
        let max_objections_per_objector = self.count(
            &raw.notice.max_objections_per_objector,
            "notice.max_objections_per_objector",
            1,
            100,
        );
        let group_min = self.count(&raw.pairing.group_min, "pairing.group_min", 1, 50);
        let group_max = self.count(&raw.pairing.group_max, "pairing.group_max", 1, 50);
        if group_max < group_min {
            self.push(
                &raw.pairing.group_max,
                "pairing.group_max",
                format!("{group_max} is below pairing.group_min {group_min}"),
            );
        }
        let m = &raw.mentor;
        let mentor = MentorRule {
            excellent_share: self.share(&m.excellent_share, "mentor.excellent_share"),
            min_raters: self.count(&m.min_raters, "mentor.min_raters", 1, 100),
            practice_accept_share: self
                .share(&m.practice_accept_share, "mentor.practice_accept_share"),
            min_practice_indicators: self.count(
                &m.min_practice_indicators,
                "mentor.min_practice_indicators",
                0,
                100,
            ),
        };
        if mentor.min_practice_indicators as usize > indicators.len() && !indicators.is_empty() {
            self.push(
                &m.min_practice_indicators,
                "mentor.min_practice_indicators",
                format!(
                    "{} exceeds the {} indicators defined",
                    mentor.min_practice_indicators,
                    indicators.len()
                ),
            );
        }
        let s = &raw.scoring;
        let scoring = Scoring {
            report_weight: self.share(&s.report_weight, "scoring.report_weight"),
            onsite_weight: self.share(&s.onsite_weight, "scoring.onsite_weight"),
            trim_from: self.count(&s.trim_from, "scoring.trim_from", 3, 1000),
            pass_line: *s.pass_line.get_ref(),
            max_near_misses: self.count(&s.max_near_misses, "scoring.max_near_misses", 0, 100),
            near_miss_margin: *s.near_miss_margin.get_ref(),
            progress_gain: *s.progress_gain.get_ref(),
            progress_top_share: self.share(&s.progress_top_share, "scoring.progress_top_share"),
            contribution_group_gain: *s.contribution_group_gain.get_ref(),
            contribution_min_activities: self.count(
                &s.contribution_min_activities,
                "scoring.contribution_min_activities",
                0,
                1000,
            ),
            contribution_min_indicator_coverage: self.count(
                &s.contribution_min_indicator_coverage,
                "scoring.contribution_min_indicator_coverage",
                0,
                100,
            ),
            award_basis: s.award_basis,
        };
        if scoring.contribution_min_indicator_coverage as usize > indicators.len()
            && !indicators.is_empty()
        {
            self.push(
                &s.contribution_min_indicator_coverage,
                "scoring.contribution_min_indicator_coverage",
                format!(
                    "{} exceeds the {} indicators defined",
                    scoring.contribution_min_indicator_coverage,
                    indicators.len()
                ),
            );
        }
        if (scoring.report_weight + scoring.onsite_weight - 1.0).abs() > 1e-9 {
            self.push(
                &s.onsite_weight,
                "scoring.onsite_weight",
                format!(
                    "report_weight + onsite_weight must be 1, got {}",
                    scoring.report_weight + scoring.onsite_weight
                ),
            );
        }
        if !(0.0..=100.0).contains(&scoring.pass_line) {
            self.push(
                &s.pass_line,
                "scoring.pass_line",
                "must be between 0 and 100",
            );
        }
        for (v, f) in [
            (&s.near_miss_margin, "scoring.near_miss_margin"),
            (&s.progress_gain, "scoring.progress_gain"),
            (
                &s.contribution_group_gain,
                "scoring.contribution_group_gain",
            ),
        ] {
            if !(0.0..=100.0).contains(v.get_ref()) {
                self.push(v, f, "must be between 0 and 100");
            }
        }

        let r = &raw.reminders;
        let mut offsets = Vec::new();
        for o in r.offsets_days.get_ref() {
            if !(0..=60).contains(o) {
                self.push(
                    &r.offsets_days,
                    "reminders.offsets_days",
                    format!("{o} must be between 0 and 60 days"),
                );
            } else {
                offsets.push(*o as u32);
            }
        }
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        offsets.dedup();
        let morning = self.time(&r.morning, "reminders.morning");
        let quiet_start = self.time(&r.quiet_start, "reminders.quiet_start");
        let quiet_end = self.time(&r.quiet_end, "reminders.quiet_end");
        if r.digest_cron.get_ref().split_whitespace().count() < 6 {
            self.push(
                &r.digest_cron,
                "reminders.digest_cron",
                "expected a 6- or 7-field cron expression (sec min hour day month weekday [year])",
            );
        }

        let mut extra_off_days = Vec::new();
        for (i, d) in raw.calendar.extra_off_days.iter().enumerate() {
            extra_off_days.extend(self.date(d, &format!("calendar.extra_off_days[{i}]")));
        }
        let mut extra_working_days = Vec::new();
        for (i, d) in raw.calendar.extra_working_days.iter().enumerate() {
            extra_working_days.extend(self.date(d, &format!("calendar.extra_working_days[{i}]")));
        }

        let publication = self.publication(&raw.publication);
        let consequences = raw.consequences.clone().unwrap_or_else(plan_consequences);
        for (i, c) in consequences.iter().enumerate() {
            let kind_ok = !c.kind.is_empty()
                && c.kind
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
            if !kind_ok {
                self.problems.push(Problem {
                    line: None,
                    field: format!("consequences[{i}].kind"),
                    reason: format!("`{}` must be ASCII snake case (a-z, 0-9, _)", c.kind),
                });
            }
            if c.label.trim().is_empty() {
                self.problems.push(Problem {
                    line: None,
                    field: format!("consequences[{i}].label"),
                    reason: "must not be empty".into(),
                });
            }
        }

        if !self.problems.is_empty() {
            return None;
        }
        let mut def = CampaignDefinition {
            code,
            county,
            county_code,
            year,
            time_zone: c.time_zone.get_ref().clone(),
            phases,
            indicators,
            notice_working_days,
            max_objections_per_objector,
            online_objections: raw.notice.online_objections,
            supplementary_notice: raw.notice.supplementary,
            group_min,
            group_max,
            mentor,
            scoring,
            reminders: Reminders {
                offsets_days: offsets,
                morning: morning?,
                quiet_start: quiet_start?,
                quiet_end: quiet_end?,
                digest_cron: r.digest_cron.get_ref().clone(),
            },
            extra_off_days,
            extra_working_days,
            publication,
            awards: raw.awards.clone(),
            seed: raw.seed.clone(),
            consequences,
            calendar: WorkCalendar::default(),
        };
        def.calendar = build_calendar(&def, self.years);
        for (kind, w) in &def.phases {
            let (from, to) = (
                chrono::Datelike::year(&w.start),
                chrono::Datelike::year(&w.end),
            );
            for y in from..=to {
                if !def.calendar.covers(y) {
                    let at = &raw.phases[kind.code()];
                    self.push(
                        at,
                        format!("phases.{}", kind.code()),
                        format!(
                            "no working-day calendar data for {y}: add {} (the State Council's holiday schedule for {y})",
                            crate::calendar::file_for(y)
                        ),
                    );
                }
            }
        }
        self.problems.is_empty().then_some(def)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const CHANGLE: &str = include_str!("../../../deploy/campaigns/changle-2020.toml");

    #[test]
    fn the_shipped_changle_definition_parses() {
        let def = CampaignDefinition::parse(CHANGLE).unwrap();
        assert_eq!(def.year, 2020);
        assert_eq!(def.indicators.len(), 8);
        assert_eq!(def.notice_working_days, 5);
        assert_eq!(
            def.window(PhaseKind::SeedDesignation).end.to_string(),
            "2020-04-30"
        );
        // The deadline is the start of 2020-05-01 in Shanghai, i.e. 16:00 UTC the day before.
        let deadline = def.deadline_after(def.window(PhaseKind::SeedDesignation).end);
        assert_eq!(deadline.to_rfc3339(), "2020-04-30T16:00:00+00:00");
    }

    #[test]
    fn online_objections_are_off_unless_the_definition_turns_them_on() {
        assert!(
            CampaignDefinition::parse(CHANGLE)
                .unwrap()
                .online_objections
        );
        let without: String = CHANGLE
            .lines()
            .filter(|l| !l.starts_with("online_objections"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(
            !CampaignDefinition::parse(&without)
                .unwrap()
                .online_objections
        );
    }

    #[test]
    fn publication_values_come_from_the_definition_with_the_plans_defaults() {
        let def = CampaignDefinition::parse(CHANGLE).unwrap();
        assert_eq!(def.publication.document_number, "乐教督字〔2020〕2号");
        assert_eq!(
            def.publication.awards.progress,
            "全县义务教育优质均衡进步校"
        );
        let text = CHANGLE.replace(
            "issuing_unit = \"昌乐县教育和体育局\"",
            "issuing_unit = \" \"",
        );
        let err = CampaignDefinition::parse(&text).unwrap_err();
        assert!(
            err.0
                .iter()
                .any(|p| p.field == "publication.issuing_unit" && p.line.is_some()),
            "{err:?}"
        );
        // A definition stored before `publication` existed reads as the plan's defaults.
        let (mut json, _) = def.canonical();
        json.as_object_mut().unwrap().remove("publication");
        let old = CampaignDefinition::from_canonical(json).unwrap();
        assert_eq!(old.publication, Publication::default());
    }

    #[test]
    fn actor_and_result_rules_come_from_the_definition_with_defaults_for_older_ones() {
        let def = CampaignDefinition::parse(CHANGLE).unwrap();
        assert_eq!(
            def.consequences,
            plan_consequences(),
            "the file states the plan's"
        );
        assert_eq!(def.scoring.award_basis, AwardBasis::Onsite);
        assert_eq!(def.scoring.contribution_min_indicator_coverage, 0);
        assert_eq!(
            def.awards.seed_without_presentation,
            SeedWithoutPresentation::None
        );
        assert!(!def.seed.require_department_opinion);
        let text = CHANGLE
            .replace("award_basis = \"onsite\"", "award_basis = \"weighted\"")
            .replace(
                "require_department_opinion = false",
                "require_department_opinion = true",
            )
            .replace(
                "contribution_min_indicator_coverage = 0",
                "contribution_min_indicator_coverage = 8",
            );
        let changed = CampaignDefinition::parse(&text).unwrap();
        assert_eq!(changed.scoring.award_basis, AwardBasis::Weighted);
        assert!(changed.seed.require_department_opinion);
        assert_eq!(changed.scoring.contribution_min_indicator_coverage, 8);
        let bad = CHANGLE
            .replace(
                "contribution_min_indicator_coverage = 0",
                "contribution_min_indicator_coverage = 9",
            )
            .replace("kind = \"appointment_basis\"", "kind = \"选拔\"");
        let err = CampaignDefinition::parse(&bad).unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|p| p.field.as_str()).collect();
        assert!(
            fields.contains(&"scoring.contribution_min_indicator_coverage"),
            "{fields:?}"
        );
        assert!(fields.contains(&"consequences[5].kind"), "{fields:?}");
        let unknown = CHANGLE.replace("award_basis = \"onsite\"", "award_basis = \"report\"");
        assert!(CampaignDefinition::parse(&unknown).is_err());
        // A definition stored before these values existed reads as the defaults.
        let (mut json, _) = def.canonical();
        let o = json.as_object_mut().unwrap();
        o.remove("awards");
        o.remove("seed");
        o.remove("consequences");
        let sc = o["scoring"].as_object_mut().unwrap();
        sc.remove("award_basis");
        sc.remove("contribution_min_indicator_coverage");
        let old = CampaignDefinition::from_canonical(json).unwrap();
        assert_eq!(old, def);
    }

    #[test]
    fn canonical_form_round_trips_with_a_stable_hash() {
        let def = CampaignDefinition::parse(CHANGLE).unwrap();
        let (json, hash) = def.canonical();
        let back = CampaignDefinition::from_canonical(json).unwrap();
        assert_eq!(back, def);
        assert_eq!(back.canonical().1, hash);
    }

    #[test]
    fn every_problem_is_reported_with_line_and_field() {
        let bad = CHANGLE
            .replace(
                "time_zone = \"Asia/Shanghai\"",
                "time_zone = \"Mars/Olympus\"",
            )
            .replace("end = \"2020-07-31\"", "end = \"2020-02-31\"")
            .replace("working_days = 5", "working_days = 0")
            .replace("report_weight = 0.4", "report_weight = 0.5");
        let err = CampaignDefinition::parse(&bad).unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|p| p.field.as_str()).collect();
        assert!(fields.contains(&"campaign.time_zone"), "{fields:?}");
        assert!(fields.contains(&"phases.pairing.end"), "{fields:?}");
        assert!(fields.contains(&"notice.working_days"), "{fields:?}");
        assert!(fields.contains(&"scoring.onsite_weight"), "{fields:?}");
        let tz = err
            .0
            .iter()
            .find(|p| p.field == "campaign.time_zone")
            .unwrap();
        let expected_line = CHANGLE
            .lines()
            .position(|l| l.starts_with("time_zone"))
            .unwrap()
            + 1;
        assert_eq!(tz.line, Some(expected_line));
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let err = CampaignDefinition::parse("[campaign]\ncode = \n").unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!(err.0[0].line, Some(2));
    }

    #[test]
    fn a_year_without_calendar_data_is_refused() {
        let bad = CHANGLE
            .replace("2020-", "2099-")
            .replace("year = 2020", "year = 2099");
        let err = CampaignDefinition::parse(&bad).unwrap_err();
        assert!(
            err.0.iter().any(|p| p.reason
                == "no working-day calendar data for 2099: add deploy/calendars/2099.toml (the State Council's holiday schedule for 2099)"),
            "{err}"
        );
    }

    #[test]
    fn a_year_with_only_a_data_file_is_accepted_and_counts_its_working_days() {
        let y2031 = crate::calendar::parse_year(
            "year = 2031\n[[holidays]]\nname = \"县庆\"\noff = [\"2031-03-05\", \"2031-03-06\"]\n",
            "2031.toml",
        )
        .unwrap();
        let text = CHANGLE
            .replace("2020-", "2031-")
            .replace("year = 2020", "year = 2031");
        assert!(CampaignDefinition::parse(&text).is_err());
        let mut years = Calendars::shipped().clone();
        years.insert(y2031);
        let def = CampaignDefinition::parse_with(&text, &years).unwrap();
        // Monday 3/3, Tuesday 3/4, Friday 3/7, Monday 3/10, Tuesday 3/11.
        let start = chrono::NaiveDate::from_ymd_opt(2031, 3, 3).unwrap();
        assert_eq!(
            def.calendar().nth_working_day(start, 5).unwrap(),
            chrono::NaiveDate::from_ymd_opt(2031, 3, 11).unwrap()
        );
        // A stored definition is rebuilt with the years the service loaded.
        let (value, _) = def.canonical();
        let stored = CampaignDefinition::from_canonical_with(value, &years).unwrap();
        assert_eq!(
            stored.calendar().nth_working_day(start, 5),
            def.calendar().nth_working_day(start, 5)
        );
    }
}
