//! Phase 4, acceptance: forming the panel, score sheets (with recusal), publishing the results
//! notice, finalising the results, and the phase's exit criteria.
//!
//! Each decider takes the facts the caller loaded, the command and the context (now, the
//! definition, the phase board) and returns what to store plus the effects, or the rule that
//! refused. The scoring maths itself is in `scoring`.

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{NoticeId, SchoolId};

use crate::effects::{DeadlineRef, Effect, ObligationKind, Owner};
use crate::error::RuleError;
use crate::notice::{self, NoticeKind, NoticeWindow};
use crate::phase_kind::PhaseKind;
use crate::role::Role;
use crate::school::{CaseState, Ctx};
use crate::scoring::{self, AcceptanceResult};

/// Where a panel member comes from. A mentor-school member is recused from that mentor's group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affiliation {
    Department,
    HighSchool,
    MentorSchool(SchoolId),
}

impl Affiliation {
    pub fn code(self) -> &'static str {
        match self {
            Affiliation::Department => "department",
            Affiliation::HighSchool => "high_school",
            Affiliation::MentorSchool(_) => "mentor_school",
        }
    }

    pub fn mentor_school(self) -> Option<SchoolId> {
        match self {
            Affiliation::MentorSchool(s) => Some(s),
            _ => None,
        }
    }

    /// From the stored code and mentor school; None for an unknown code or a mentor-school
    /// member without a school.
    pub fn from_code(code: &str, mentor_school: Option<SchoolId>) -> Option<Self> {
        Some(match code {
            "department" => Affiliation::Department,
            "high_school" => Affiliation::HighSchool,
            "mentor_school" => Affiliation::MentorSchool(mentor_school?),
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelMember {
    /// The actor id of the member's panel token.
    pub actor: String,
    pub name: String,
    pub affiliation: Affiliation,
}

/// What forming the panel needs to know about the campaign.
#[derive(Debug, Clone, Default)]
pub struct PanelFacts {
    /// Those of the proposed members' actors that hold a panel-role token.
    pub panel_actors: BTreeSet<String>,
    /// Those of the named mentor schools that are mentor schools.
    pub mentor_schools: BTreeSet<SchoolId>,
    /// The paired potential schools (id, name), each owed a score sheet.
    pub paired: Vec<(SchoolId, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PanelFormed {
    pub members: Vec<PanelMember>,
    pub effects: Vec<Effect>,
}

/// Forms (or re-forms) the acceptance panel: every member must hold a panel token, every
/// mentor-school member must name a mentor school. Opens a score-sheet obligation per paired
/// school.
pub fn form_panel(
    members: Vec<PanelMember>,
    facts: &PanelFacts,
    ctx: &Ctx<'_>,
) -> Result<PanelFormed, RuleError> {
    ctx.phases.require_active(
        PhaseKind::Acceptance,
        None,
        "form the acceptance panel",
        ctx.now,
        ctx.def,
    )?;
    let mut problems = Vec::new();
    for (i, m) in members.iter().enumerate() {
        if !facts.panel_actors.contains(&m.actor) {
            problems.push((
                format!("members[{i}].actor"),
                format!(
                    "`{}` is not a panel-role actor (issue a ROLE_PANEL token first)",
                    m.actor
                ),
            ));
        }
        if let Some(ms) = m.affiliation.mentor_school()
            && !facts.mentor_schools.contains(&ms)
        {
            problems.push((
                format!("members[{i}].mentor_school_id"),
                "not a mentor school of this campaign".into(),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(RuleError::Invalid(problems));
    }
    let listed: Vec<serde_json::Value> = members
        .iter()
        .map(|m| {
            serde_json::json!({
                "actor": m.actor,
                "name": m.name,
                "affiliation": m.affiliation.code(),
                "mentor_school_id": m.affiliation.mentor_school(),
            })
        })
        .collect();
    let mut effects = vec![Effect::event(
        "panel.formed",
        None,
        serde_json::Value::Null,
        serde_json::json!({ "members": listed }),
        None,
    )];
    let due = ctx.phases.deadline(PhaseKind::Acceptance, ctx.def);
    effects.extend(
        facts
            .paired
            .iter()
            .map(|(id, name)| Effect::OpenObligation {
                kind: ObligationKind::SubmitScores,
                school: Some(*id),
                key: String::new(),
                owner: Owner::Role(Role::Panel),
                deadline: DeadlineRef::Phase(PhaseKind::Acceptance),
                due,
                subject: format!("为{name}评分（提升汇报与现场查验）"),
            }),
    );
    Ok(PanelFormed { members, effects })
}

/// One panel member's scores for one school, as submitted.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmitScores {
    pub school: SchoolId,
    /// The scoring actor.
    pub member: String,
    pub report: f64,
    /// (indicator code, score) as given; checked against the definition here.
    pub onsite: Vec<(String, f64)>,
}

/// What scoring one school needs to know.
#[derive(Debug, Clone)]
pub struct ScoreFacts {
    pub panel: Vec<PanelMember>,
    pub state: CaseState,
    /// The school's mentor school, once paired.
    pub mentor: Option<SchoolId>,
    /// An upheld objection to the results notice reopened the school's scores.
    pub disputed: bool,
    pub results_notice_published: bool,
}

/// A stored score sheet: one member, one school.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreSheet {
    pub school: SchoolId,
    pub member: String,
    pub report: f64,
    pub onsite: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScoresSubmitted {
    pub sheet: ScoreSheet,
    pub effects: Vec<Effect>,
}

/// Accepts a member's sheet for a paired school: only panel members score, a member from the
/// school's mentor school is recused, and after the results notice only disputed schools are
/// re-scored.
pub fn submit_scores(
    cmd: SubmitScores,
    facts: &ScoreFacts,
    ctx: &Ctx<'_>,
) -> Result<ScoresSubmitted, RuleError> {
    let (onsite, problems) = scoring::indicator_scores(ctx.def, "onsite", &cmd.onsite);
    if !problems.is_empty() {
        return Err(RuleError::Invalid(problems));
    }
    ctx.phases.require_active(
        PhaseKind::Acceptance,
        None,
        "score a potential school",
        ctx.now,
        ctx.def,
    )?;
    let Some(member) = facts.panel.iter().find(|m| m.actor == cmd.member) else {
        return Err(RuleError::NotOnPanel);
    };
    if facts.state != CaseState::Paired {
        return Err(RuleError::NotScorable {
            state: facts.state.code(),
        });
    }
    if let Some(ms) = member.affiliation.mentor_school()
        && facts.mentor == Some(ms)
    {
        return Err(RuleError::Recused {
            member: member.name.clone(),
        });
    }
    if facts.results_notice_published && !facts.disputed {
        return Err(RuleError::ScoresLocked);
    }
    let event = Effect::event(
        "scores.submitted",
        Some(cmd.school),
        serde_json::Value::Null,
        serde_json::json!({ "report": cmd.report, "onsite": onsite }),
        None,
    );
    Ok(ScoresSubmitted {
        sheet: ScoreSheet {
            school: cmd.school,
            member: cmd.member,
            report: cmd.report,
            onsite,
        },
        effects: vec![event],
    })
}

/// A paired school with its current aggregate (None while a sheet is missing).
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub school: SchoolId,
    pub name: String,
    pub result: Option<AcceptanceResult>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishResultsNotice {
    /// The new notice's id, chosen by the caller.
    pub notice: NoticeId,
    /// Empty: the definition's default title.
    pub title: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResultsNoticePublished {
    pub notice: NoticeId,
    pub title: String,
    pub window: NoticeWindow,
    /// The schools on the notice, best final score first.
    pub ranking: Vec<SchoolId>,
    /// Every school's result as published.
    pub results: Vec<(SchoolId, Option<AcceptanceResult>)>,
    pub effects: Vec<Effect>,
}

/// Publishes the results notice once every paired school is completely scored; the notice
/// runs the definition's working days and closes the score-sheet obligations.
pub fn publish_results_notice(
    cmd: PublishResultsNotice,
    published: bool,
    standings: &[Scored],
    ctx: &Ctx<'_>,
) -> Result<ResultsNoticePublished, RuleError> {
    ctx.phases.require_active(
        PhaseKind::Acceptance,
        None,
        "publish the results notice",
        ctx.now,
        ctx.def,
    )?;
    if published {
        return Err(RuleError::ResultsNoticePublished);
    }
    let incomplete: Vec<String> = standings
        .iter()
        .filter(|s| s.result.is_none())
        .map(|s| s.name.clone())
        .collect();
    if !incomplete.is_empty() || standings.is_empty() {
        return Err(RuleError::ScoresIncomplete {
            schools: incomplete,
        });
    }
    let window = notice::window(ctx.now, ctx.def)?;
    let title = if cmd.title.is_empty() {
        NoticeKind::Results.default_title(ctx.def)
    } else {
        cmd.title
    };
    let final_score = |s: &Scored| s.result.as_ref().map_or(0.0, |r| r.final_score);
    let mut sorted: Vec<&Scored> = standings.iter().collect();
    sorted.sort_by(|a, b| final_score(b).total_cmp(&final_score(a)));
    let ranking: Vec<SchoolId> = sorted.iter().map(|s| s.school).collect();
    let mut effects = vec![
        Effect::event(
            "notice.published",
            None,
            serde_json::Value::Null,
            serde_json::json!({
                "notice_id": cmd.notice,
                "kind": NoticeKind::Results.code(),
                "title": title,
                "ends_at": window.ends_at,
                "last_day": window.last_day,
                "schools": ranking,
            }),
            None,
        ),
        Effect::OpenObligation {
            kind: ObligationKind::CloseNotice,
            school: None,
            key: cmd.notice.to_string(),
            owner: Owner::Role(Role::Office),
            deadline: DeadlineRef::Fixed,
            due: window.ends_at,
            subject: notice::period_over_subject(&title),
        },
    ];
    effects.extend(ranking.iter().map(|s| Effect::CloseObligation {
        kind: ObligationKind::SubmitScores,
        school: Some(*s),
        key: String::new(),
    }));
    Ok(ResultsNoticePublished {
        notice: cmd.notice,
        title,
        window,
        ranking,
        results: standings
            .iter()
            .map(|s| (s.school, s.result.clone()))
            .collect(),
        effects,
    })
}

/// A school's result as stored with the results notice.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredResult {
    pub result: Option<AcceptanceResult>,
    pub disputed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResultsFinalised {
    /// Every paired school's final result.
    pub results: Vec<(SchoolId, Option<AcceptanceResult>)>,
    pub effects: Vec<Effect>,
}

/// Part of completing the acceptance phase: disputed results are recomputed from the current
/// sheets, every other result stays as published, and all become final.
pub fn finalise_results(
    current: &[Scored],
    stored: &BTreeMap<SchoolId, StoredResult>,
) -> ResultsFinalised {
    let mut results = Vec::new();
    let mut effects = Vec::new();
    for s in current {
        let old = stored.get(&s.school).cloned().unwrap_or_default();
        let result = if old.disputed {
            effects.push(Effect::event(
                "results.recomputed",
                Some(s.school),
                serde_json::to_value(&old.result).expect("serializes"),
                serde_json::to_value(&s.result).expect("serializes"),
                None,
            ));
            s.result.clone()
        } else {
            old.result
        };
        results.push((s.school, result));
    }
    effects.push(Effect::event(
        "results.final",
        None,
        serde_json::Value::Null,
        serde_json::json!({ "schools": results.len() }),
        None,
    ));
    ResultsFinalised { results, effects }
}

/// The acceptance exit criteria (the results notice published, its period over, every
/// objection to it resolved), kept with the other phases' in `exit_criteria`.
pub use crate::exit_criteria::acceptance_items as exit_items;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::CampaignDefinition;
    use crate::phase::{PhaseBoard, PhaseFacts, PhaseStatus, ResultsNoticeFacts};
    use crate::role::Actor;
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;

    const CHANGLE: &str = include_str!("../../../deploy/campaigns/changle-2020.toml");

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn office() -> Actor {
        Actor {
            id: "office".into(),
            role: Role::Office,
            school: None,
        }
    }

    /// A board with phases 1–3 completed and acceptance open since 2020-07-01.
    fn acceptance_open(def: &CampaignDefinition) -> PhaseBoard {
        let mut b = PhaseBoard::new(def);
        let done = PhaseFacts {
            listed_schools: 1,
            mentors_confirmed: true,
            ..Default::default()
        };
        for (p, t) in [
            (PhaseKind::SeedDesignation, "2020-03-02T01:00:00Z"),
            (PhaseKind::MentorSelection, "2020-04-02T01:00:00Z"),
            (PhaseKind::Pairing, "2020-05-02T01:00:00Z"),
        ] {
            b.open(p, &office(), at(t), def).unwrap();
            b.complete(p, &office(), at(t), &done).unwrap();
        }
        b.open(
            PhaseKind::Acceptance,
            &office(),
            at("2020-07-01T01:00:00Z"),
            def,
        )
        .unwrap();
        b
    }

    fn sheet(def: &CampaignDefinition, v: f64) -> Vec<(String, f64)> {
        def.indicators.iter().map(|i| (i.code.clone(), v)).collect()
    }

    fn result(final_score: f64) -> AcceptanceResult {
        AcceptanceResult {
            report: final_score,
            onsite: BTreeMap::new(),
            onsite_mean: final_score,
            final_score,
            passes: BTreeMap::new(),
        }
    }

    const MENTOR: SchoolId = SchoolId::from_u128(100);

    #[test]
    fn a_member_from_the_mentor_school_is_recused() {
        let def = CampaignDefinition::parse(CHANGLE).unwrap();
        let phases = acceptance_open(&def);
        let ctx = Ctx {
            now: at("2020-07-02T01:00:00Z"),
            def: &def,
            phases: &phases,
        };
        let facts = ScoreFacts {
            panel: vec![PanelMember {
                actor: "p".into(),
                name: "王校长".into(),
                affiliation: Affiliation::MentorSchool(MENTOR),
            }],
            state: CaseState::Paired,
            mentor: Some(MENTOR),
            disputed: false,
            results_notice_published: false,
        };
        let cmd = SubmitScores {
            school: SchoolId::from_u128(1),
            member: "p".into(),
            report: 80.0,
            onsite: sheet(&def, 70.0),
        };
        let err = submit_scores(cmd.clone(), &facts, &ctx).unwrap_err();
        assert!(err.is_permission());
        assert!(err.to_string().starts_with("recused: 王校长"), "{err}");
        let other = ScoreFacts {
            mentor: Some(SchoolId::from_u128(101)),
            ..facts
        };
        let ok = submit_scores(cmd, &other, &ctx).unwrap();
        assert_eq!(ok.sheet.onsite.len(), def.indicators.len());
    }

    #[test]
    fn incomplete_scores_name_the_schools() {
        let def = CampaignDefinition::parse(CHANGLE).unwrap();
        let phases = acceptance_open(&def);
        let ctx = Ctx {
            now: at("2020-07-02T01:00:00Z"),
            def: &def,
            phases: &phases,
        };
        let cmd = PublishResultsNotice {
            notice: NoticeId::from_u128(9),
            title: String::new(),
        };
        let standings = [
            Scored {
                school: SchoolId::from_u128(1),
                name: "一小".into(),
                result: None,
            },
            Scored {
                school: SchoolId::from_u128(2),
                name: "二小".into(),
                result: Some(result(70.0)),
            },
        ];
        let err = publish_results_notice(cmd.clone(), false, &standings, &ctx).unwrap_err();
        assert_eq!(err.to_string(), "scores are incomplete for: 一小");
        let err = publish_results_notice(cmd, false, &[], &ctx).unwrap_err();
        assert!(err.to_string().contains("none is paired"), "{err}");
    }

    fn member(i: usize, mentor_of: Option<u128>) -> PanelMember {
        PanelMember {
            actor: format!("m{i}"),
            name: format!("评委{i}"),
            affiliation: match mentor_of {
                Some(m) => Affiliation::MentorSchool(SchoolId::from_u128(m)),
                None if i.is_multiple_of(2) => Affiliation::Department,
                None => Affiliation::HighSchool,
            },
        }
    }

    fn state_of(i: usize) -> CaseState {
        [
            CaseState::Paired,
            CaseState::Potential,
            CaseState::Mentor,
            CaseState::Paired,
        ][i % 4]
    }

    proptest! {
        /// Scoring is accepted exactly when every rule holds, the refusal names the first rule
        /// that failed, and an accepted sheet is the command's, with one audit event.
        #[test]
        fn scores_are_accepted_exactly_when_every_rule_holds(
            on_panel in any::<bool>(),
            member_mentor in proptest::option::of(100u128..103),
            school_mentor in proptest::option::of(100u128..103),
            state in 0usize..4,
            disputed in any::<bool>(),
            published in any::<bool>(),
            day in 0i64..70,
            report in 0.0f64..100.0,
            level in 0.0f64..100.0,
            drop_one in any::<bool>(),
        ) {
            let def = CampaignDefinition::parse(CHANGLE).unwrap();
            let phases = acceptance_open(&def);
            let now = at("2020-07-01T02:00:00Z") + chrono::Duration::days(day);
            let ctx = Ctx { now, def: &def, phases: &phases };
            let mut panel = vec![member(0, None), member(1, None)];
            if on_panel {
                panel.push(PanelMember { actor: "me".into(), ..member(2, member_mentor) });
            }
            let facts = ScoreFacts {
                panel,
                state: state_of(state),
                mentor: school_mentor.map(SchoolId::from_u128),
                disputed,
                results_notice_published: published,
            };
            let mut onsite = sheet(&def, level);
            if drop_one {
                onsite.pop();
            }
            let cmd = SubmitScores { school: SchoolId::from_u128(1), member: "me".into(), report, onsite };
            let active = now < phases.deadline(PhaseKind::Acceptance, &def);
            let recused = on_panel && member_mentor.is_some() && member_mentor == school_mentor;
            let got = submit_scores(cmd.clone(), &facts, &ctx);
            let expected_ok = !drop_one && active && on_panel && state_of(state) == CaseState::Paired
                && !recused && (!published || disputed);
            prop_assert_eq!(got.is_ok(), expected_ok, "{:?}", got);
            match got {
                Ok(d) => {
                    prop_assert_eq!(d.sheet.member.as_str(), "me");
                    prop_assert_eq!(d.sheet.report, report);
                    prop_assert!(d.sheet.onsite.values().all(|v| *v == level));
                    prop_assert_eq!(d.effects.len(), 1);
                }
                Err(e) => {
                    let expected = if drop_one { "invalid" } else if !active { "deadline" }
                        else if !on_panel { "panel" } else if state_of(state) != CaseState::Paired { "paired" }
                        else if recused { "recused" } else { "published" };
                    let shown = e.to_string();
                    prop_assert!(shown.contains(expected), "{} vs {}", shown, expected);
                    prop_assert_eq!(e.is_permission(), !drop_one && active && (!on_panel || (state_of(state) == CaseState::Paired && recused)));
                }
            }
        }

        /// The panel forms exactly when every member holds a panel token and every mentor-school
        /// member names a mentor school; then each paired school is owed a score sheet.
        #[test]
        fn the_panel_forms_exactly_when_every_member_qualifies(
            members in proptest::collection::vec((any::<bool>(), proptest::option::of((100u128..104, any::<bool>()))), 1..6),
            paired in 0usize..5,
        ) {
            let def = CampaignDefinition::parse(CHANGLE).unwrap();
            let phases = acceptance_open(&def);
            let ctx = Ctx { now: at("2020-07-02T01:00:00Z"), def: &def, phases: &phases };
            let mut facts = PanelFacts::default();
            let mut list = Vec::new();
            let mut qualifies = true;
            for (i, (token, mentor)) in members.iter().enumerate() {
                let m = member(i, mentor.map(|(s, _)| s));
                if *token { facts.panel_actors.insert(m.actor.clone()); }
                if let Some((s, is_mentor)) = mentor && *is_mentor { facts.mentor_schools.insert(SchoolId::from_u128(*s)); }
                list.push(m);
            }
            for (token, mentor) in &members {
                let mentor_ok = mentor.is_none_or(|(s, _)| facts.mentor_schools.contains(&SchoolId::from_u128(s)));
                qualifies &= *token && mentor_ok;
            }
            facts.paired = (0..paired).map(|i| (SchoolId::from_u128(i as u128), format!("校{i}"))).collect();
            match form_panel(list.clone(), &facts, &ctx) {
                Ok(d) => {
                    prop_assert!(qualifies);
                    prop_assert_eq!(d.members, list);
                    prop_assert_eq!(d.effects.len(), 1 + paired);
                }
                Err(e) => {
                    prop_assert!(!qualifies);
                    prop_assert!(matches!(e, RuleError::Invalid(_)));
                }
            }
        }

        /// The results notice is published only once and only on complete scores; it ranks every
        /// school, best first, and closes each school's score-sheet obligation.
        #[test]
        fn the_results_notice_ranks_complete_scores(
            scores in proptest::collection::vec(proptest::option::weighted(0.9, 0.0f64..100.0), 0..12),
            published in any::<bool>(),
        ) {
            let def = CampaignDefinition::parse(CHANGLE).unwrap();
            let phases = acceptance_open(&def);
            let ctx = Ctx { now: at("2020-07-02T01:00:00Z"), def: &def, phases: &phases };
            let standings: Vec<Scored> = scores.iter().enumerate().map(|(i, s)| Scored {
                school: SchoolId::from_u128(i as u128),
                name: format!("校{i}"),
                result: s.map(result),
            }).collect();
            let cmd = PublishResultsNotice { notice: NoticeId::from_u128(999), title: String::new() };
            let complete = !standings.is_empty() && standings.iter().all(|s| s.result.is_some());
            match publish_results_notice(cmd, published, &standings, &ctx) {
                Ok(d) => {
                    prop_assert!(!published && complete);
                    let mut ids = d.ranking.clone();
                    ids.sort();
                    prop_assert_eq!(ids, standings.iter().map(|s| s.school).collect::<Vec<_>>());
                    let finals: Vec<f64> = d.ranking.iter().map(|id| standings[id.as_u128() as usize].result.as_ref().unwrap().final_score).collect();
                    prop_assert!(finals.windows(2).all(|w| w[0] >= w[1]));
                    prop_assert_eq!(d.effects.len(), 2 + standings.len());
                    prop_assert_eq!(d.results.len(), standings.len());
                }
                Err(e) => {
                    prop_assert!(published || !complete);
                    let expected = if published { "already published" } else { "incomplete" };
                    prop_assert!(e.to_string().contains(expected));
                }
            }
        }

        /// Finalising keeps every undisputed result as published and recomputes exactly the
        /// disputed ones.
        #[test]
        fn finalising_recomputes_exactly_the_disputed(
            rows in proptest::collection::vec((0.0f64..100.0, 0.0f64..100.0, any::<bool>(), any::<bool>()), 0..12),
        ) {
            let mut stored = BTreeMap::new();
            let mut current = Vec::new();
            for (i, (old, new, disputed, has_row)) in rows.iter().enumerate() {
                let id = SchoolId::from_u128(i as u128);
                current.push(Scored { school: id, name: String::new(), result: Some(result(*new)) });
                if *has_row {
                    stored.insert(id, StoredResult { result: Some(result(*old)), disputed: *disputed });
                }
            }
            let d = finalise_results(&current, &stored);
            prop_assert_eq!(d.results.len(), current.len());
            let mut recomputed = 0;
            for (i, (id, r)) in d.results.iter().enumerate() {
                let (old, new, disputed, has_row) = rows[i];
                let expected = match (has_row, disputed) {
                    (true, true) => { recomputed += 1; Some(result(new)) }
                    (true, false) => Some(result(old)),
                    (false, _) => None,
                };
                prop_assert_eq!(*id, SchoolId::from_u128(i as u128));
                prop_assert_eq!(r.clone(), expected);
            }
            prop_assert_eq!(d.effects.len(), recomputed + 1);
        }

        /// The exit criteria hold exactly when the phase may complete: notice published, its
        /// period over, no objection open. A refused completion leaves the board unchanged.
        #[test]
        fn acceptance_completes_exactly_when_the_exit_criteria_hold(
            published in any::<bool>(),
            ends_in_hours in -200i64..200,
            objections in 0u64..3,
            at_hours in 0i64..24 * 50,
        ) {
            let def = CampaignDefinition::parse(CHANGLE).unwrap();
            let mut phases = acceptance_open(&def);
            let now = at("2020-07-01T02:00:00Z") + chrono::Duration::hours(at_hours);
            let facts = PhaseFacts {
                results_notice: published.then(|| ResultsNoticeFacts {
                    ends_at: now + chrono::Duration::hours(ends_in_hours),
                    last_day: (now + chrono::Duration::hours(ends_in_hours)).date_naive(),
                    open_objections: objections,
                }),
                ..Default::default()
            };
            let open = crate::phase::open_items(PhaseKind::Acceptance, &facts, now);
            let holds = published && ends_in_hours <= 0 && objections == 0;
            prop_assert_eq!(open.is_empty(), holds);
            let before = phases.clone();
            match phases.complete(PhaseKind::Acceptance, &office(), now, &facts) {
                Ok(_) => {
                    prop_assert!(holds);
                    prop_assert_eq!(phases.get(PhaseKind::Acceptance).status, PhaseStatus::Completed);
                }
                Err(e) => {
                    prop_assert!(!holds);
                    prop_assert_eq!(&phases, &before);
                    prop_assert_eq!(e, RuleError::ExitCriteria { phase: PhaseKind::Acceptance, open });
                }
            }
        }
    }
}
