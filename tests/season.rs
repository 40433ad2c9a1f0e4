//! A whole season for the demo county, March to September, on the simulated clock, through
//! the gRPC API only. The expected award list is worked out by hand below from the scores the
//! test gives, with the shipped Changle 2020 definition (pass line 60, near-miss margin 5 with
//! one near miss allowed, progress at a gain of 10 or the top 20%, contribution at 4 activities
//! and a group mean gain of 8, trimmed mean from 5 scores, weights 40/60).

use std::collections::BTreeMap;

use futures::StreamExt;
use junheng_proto::v1 as pb;
use junheng_tests::*;
use junheng_workflow::ClockMode;
use tonic::Code;

fn scores(c: &pb::Campaign, f: impl Fn(&str) -> f64) -> Vec<pb::IndicatorScore> {
    c.indicators
        .iter()
        .map(|i| pb::IndicatorScore {
            indicator: i.code.clone(),
            score: f(&i.code),
            note: String::new(),
        })
        .collect()
}

/// The on-site level the panel finds at potential school `i` (by code order), per indicator:
/// i % 4 == 0 → 80 everywhere (gain 20: progress); 1 → 65 (gain 5: compliance);
/// 2 → 66 but 57 on 校园文化 (one near miss, allowed: compliance, gain 4.875);
/// 3 → 50 everywhere (far below the line: veto, gain −10).
fn level(i: usize, indicator: &str) -> f64 {
    match i % 4 {
        0 => 80.0,
        1 => 65.0,
        2 if indicator == "culture" => 57.0,
        2 => 66.0,
        _ => 50.0,
    }
}

/// Members' offsets: with five scores the trimmed mean drops −10 and +10; the member
/// affiliated with mentor 0 (offset 0) is recused from its group, leaving −10, 0, 0, +10 whose
/// plain mean is the level too. So every school's on-site score equals its level.
const OFFSETS: [f64; 5] = [-10.0, 0.0, 0.0, 10.0, 0.0];

#[tokio::test]
async fn a_season_from_march_to_september_ends_in_the_expected_award_list() {
    let app = App::spawn(ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    })
    .await;
    let (camp, schools) = changle(&app).await;
    let id = camp.id.clone();
    let o = OFFICE_TOKEN;
    let dept = app.token("业务科室", pb::Role::Department, "").await;
    let leader = app.token("领导", pb::Role::Leader, "").await;
    let phase = |p: pb::Phase| pb::OpenPhaseRequest {
        idempotency_key: key(),
        campaign_id: id.clone(),
        phase: p as i32,
    };
    let complete = |p: pb::Phase| pb::CompletePhaseRequest {
        idempotency_key: key(),
        campaign_id: id.clone(),
        phase: p as i32,
    };

    // March: ten nominated seed candidates, noticed for five working days.
    app.campaigns()
        .open_phase(auth(o, phase(pb::Phase::SeedDesignation)))
        .await
        .unwrap();
    for s in &schools[..10] {
        app.seed()
            .nominate(auth(
                &dept,
                pb::NominateRequest {
                    idempotency_key: key(),
                    school_id: s.id.clone(),
                    expected_version: 0,
                    basis: "达标".into(),
                },
            ))
            .await
            .unwrap();
    }
    // 督导室协同相关业务科室: one potential school applies itself; two departments give their
    // opinions before the office decides, and the (rejecting) decision shows them. The school
    // stays a potential school once the seed list is final.
    let applicant = &schools[12];
    let applicant_token = app
        .token(&applicant.name, pb::Role::School, &applicant.id)
        .await;
    let application = app
        .seed()
        .submit_application(auth(
            &applicant_token,
            pb::SubmitApplicationRequest {
                idempotency_key: key(),
                school_id: applicant.id.clone(),
                expected_version: 0,
                self_assessment: scores(&camp, |_| 88.0),
                statement: "我校各项指标达到标杆标准".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let research = app.token("教研室", pb::Role::Department, "").await;
    for (token, department, agree, reason) in [
        (&dept, "基础教育科", false, "自评分高于督导室掌握的实际水平"),
        (&research, "教研室", true, "教学质量较好"),
    ] {
        app.seed()
            .record_department_opinion(auth(
                token,
                pb::RecordDepartmentOpinionRequest {
                    idempotency_key: key(),
                    application_id: application.id.clone(),
                    department: department.into(),
                    agree,
                    reason: reason.into(),
                },
            ))
            .await
            .unwrap();
    }
    let decided = app
        .seed()
        .review_application(auth(
            o,
            pb::ReviewApplicationRequest {
                idempotency_key: key(),
                application_id: application.id.clone(),
                decision: pb::Decision::Reject as i32,
                reason: "经督导室会同业务科室复核，暂不列入".into(),
                expected_version: 2,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decided.status, "rejected");
    let opinions: Vec<(&str, bool, &str)> = decided
        .department_opinions
        .iter()
        .map(|d| (d.department.as_str(), d.agree, d.reason.as_str()))
        .collect();
    assert_eq!(
        opinions,
        vec![
            ("基础教育科", false, "自评分高于督导室掌握的实际水平"),
            ("教研室", true, "教学质量较好")
        ]
    );

    let seeds: Vec<pb::School> = schools[..10].to_vec();
    let notice = app
        .seed()
        .publish_notice(auth(
            o,
            pb::PublishNoticeRequest {
                idempotency_key: key(),
                campaign_id: id.clone(),
                kind: 1,
                school_ids: seeds.iter().map(|s| s.id.clone()).collect(),
                title: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    // The phase cannot close over the running notice, and says which one and until when.
    let s = expect_code(
        app.campaigns()
            .complete_phase(auth(o, complete(pb::Phase::SeedDesignation)))
            .await,
        Code::FailedPrecondition,
    );
    assert!(
        s.message().contains(&format!(
            "1 个公示期未结束：《{}》至2020年3月6日期满 (notices still running)",
            notice.title
        )),
        "{}",
        s.message()
    );
    app.advance("2020-03-09T09:00:00+08:00").await;
    app.seed()
        .close_notice(auth(
            o,
            pb::CloseNoticeRequest {
                idempotency_key: key(),
                notice_id: notice.id.clone(),
            },
        ))
        .await
        .unwrap();
    app.campaigns()
        .complete_phase(auth(o, complete(pb::Phase::SeedDesignation)))
        .await
        .unwrap();

    // April: nine seeds present practices on two indicators and are rated excellent; the tenth
    // never presents and stays a (non-mentor) seed school.
    app.advance("2020-04-01T09:00:00+08:00").await;
    app.campaigns()
        .open_phase(auth(o, phase(pb::Phase::MentorSelection)))
        .await
        .unwrap();
    let mut seed_tokens = Vec::new();
    for s in &seeds {
        seed_tokens.push(app.token(&s.name, pb::Role::School, &s.id).await);
    }
    // The phase-2 panel (督导室邀请各业务科室和部分高中校长): two departments and two high-school
    // principals; 丁 belongs to seed 0 (its junior section) and is recused from rating it, so
    // seed 0 has exactly mentor.min_raters = 3 ratings and the others 4. Fewer members than
    // min_raters are refused.
    let members = [
        ("评委甲（基础教育科）", pb::Affiliation::Department, ""),
        ("评委乙（教研室）", pb::Affiliation::Department, ""),
        ("评委丙（昌乐一中校长）", pb::Affiliation::HighSchool, ""),
        (
            "评委丁（昌乐二中校长）",
            pb::Affiliation::HighSchool,
            seeds[0].id.as_str(),
        ),
    ];
    let too_few = app
        .admin()
        .issue_token(auth(
            o,
            pb::IssueTokenRequest {
                idempotency_key: key(),
                name: "评委".into(),
                role: pb::Role::Panel as i32,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let s = expect_code(
        app.mentor()
            .form_mentor_panel(auth(
                o,
                pb::FormMentorPanelRequest {
                    idempotency_key: key(),
                    campaign_id: id.clone(),
                    members: vec![pb::MentorPanelMember {
                        actor: too_few.actor.clone(),
                        name: "评委".into(),
                        affiliation: pb::Affiliation::Department as i32,
                        school_id: String::new(),
                    }],
                },
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violations(&s), vec!["members"]);
    assert!(s.message().contains("min_raters = 3"), "{}", s.message());
    let raters = app.mentor_panel(&id, &members).await;
    let panel = app
        .mentor()
        .get_mentor_panel(auth(
            &leader,
            pb::GetMentorPanelRequest {
                campaign_id: id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(panel.members.len(), 4);
    assert_eq!(panel.min_raters, 3);
    assert!(!panel.fixed);
    assert!(
        panel
            .members
            .iter()
            .any(|m| m.name.starts_with("评委丁") && m.school_id == seeds[0].id)
    );
    for (i, s) in seeds.iter().take(9).enumerate() {
        let practices = vec![
            pb::PracticeDeclaration {
                indicator: "teachers".into(),
                title: format!("做法{i}A"),
                description: "说明".into(),
            },
            pb::PracticeDeclaration {
                indicator: "management".into(),
                title: format!("做法{i}B"),
                description: "说明".into(),
            },
        ];
        let p = app
            .mentor()
            .submit_presentation(auth(
                &seed_tokens[i],
                pb::SubmitPresentationRequest {
                    idempotency_key: key(),
                    school_id: s.id.clone(),
                    expected_version: 0,
                    document_ref: "doc".into(),
                    document_sha256: "cd".repeat(32),
                    practices,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        for (m, r) in raters.iter().enumerate() {
            let ratings = camp
                .indicators
                .iter()
                .map(|ind| pb::IndicatorRating {
                    indicator: ind.code.clone(),
                    rating: pb::Rating::Excellent as i32,
                })
                .collect();
            let verdicts = p
                .practices
                .iter()
                .map(|x| pb::PracticeVerdict {
                    practice_id: x.id.clone(),
                    accepted: true,
                })
                .collect();
            let got = app
                .mentor()
                .rate_presentation(auth(
                    r,
                    pb::RatePresentationRequest {
                        idempotency_key: key(),
                        school_id: s.id.clone(),
                        ratings,
                        verdicts,
                    },
                ))
                .await;
            if m == 3 && i == 0 {
                let e = expect_code(got, Code::PermissionDenied);
                assert_eq!(
                    e.message(),
                    "recused: 评委丁（昌乐二中校长） is affiliated with this school and may not rate its presentation (conflict of interest)"
                );
            } else {
                got.unwrap();
            }
        }
        if i == 0 {
            // A panel token the office did not appoint rates nothing; the panel, once rated
            // on, is fixed.
            let e = expect_code(
                app.mentor()
                    .rate_presentation(auth(
                        &too_few.token,
                        pb::RatePresentationRequest {
                            idempotency_key: key(),
                            school_id: s.id.clone(),
                            ratings: vec![],
                            verdicts: vec![],
                        },
                    ))
                    .await,
                Code::PermissionDenied,
            );
            assert!(
                e.message().contains("not on this campaign's phase-2 panel"),
                "{}",
                e.message()
            );
            let e = expect_code(
                app.mentor()
                    .form_mentor_panel(auth(
                        o,
                        pb::FormMentorPanelRequest {
                            idempotency_key: key(),
                            campaign_id: id.clone(),
                            members: panel.members.clone(),
                        },
                    ))
                    .await,
                Code::FailedPrecondition,
            );
            assert_eq!(
                e.message(),
                "the phase-2 panel can no longer be re-formed: 3 rating sheet(s) are already recorded"
            );
        }
    }
    let panel = app
        .mentor()
        .get_mentor_panel(auth(
            &leader,
            pb::GetMentorPanelRequest {
                campaign_id: id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(panel.fixed);
    let proposal = app
        .mentor()
        .propose_mentors(auth(
            &leader,
            pb::ProposeMentorsRequest {
                campaign_id: id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    for p in &proposal.proposals {
        let expected = if p.school_id == seeds[0].id {
            "8 项指标均获评优秀（3 位评委）"
        } else if p.school_id == seeds[9].id {
            "未提交展示汇报材料"
        } else {
            "8 项指标均获评优秀（4 位评委）"
        };
        assert!(p.explanation.contains(expected), "{}", p.explanation);
    }
    app.mentor()
        .confirm_mentors(auth(
            o,
            pb::ConfirmMentorsRequest {
                idempotency_key: key(),
                campaign_id: id.clone(),
                overrides: vec![],
            },
        ))
        .await
        .unwrap();
    app.campaigns()
        .complete_phase(auth(o, complete(pb::Phase::MentorSelection)))
        .await
        .unwrap();
    let mentors: Vec<pb::School> = seeds[..9].to_vec();

    // May: 1+X groups. The proposal is valid; the office sets its own: mentor k (k < 7) takes
    // potentials 4k..4k+3, mentor 7 takes 28, mentor 8 takes 29.
    app.advance("2020-05-06T09:00:00+08:00").await;
    app.campaigns()
        .open_phase(auth(o, phase(pb::Phase::Pairing)))
        .await
        .unwrap();
    let proposal = app
        .pairing()
        .propose_pairing(auth(
            o,
            pb::ProposePairingRequest {
                campaign_id: id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(proposal.groups.len(), 9);
    assert_eq!(
        proposal
            .groups
            .iter()
            .map(|g| g.potential_school_ids.len())
            .sum::<usize>(),
        30
    );
    assert!(
        proposal
            .groups
            .iter()
            .all(|g| (1..=4).contains(&g.potential_school_ids.len()))
    );
    let potentials: Vec<pb::School> = schools[10..].to_vec();
    let group_of = |k: usize| -> Vec<usize> {
        match k {
            0..=6 => (4 * k..4 * k + 4).collect(),
            7 => vec![28],
            _ => vec![29],
        }
    };
    let groups: Vec<pb::PairingGroup> = (0..9)
        .map(|k| pb::PairingGroup {
            mentor_school_id: mentors[k].id.clone(),
            potential_school_ids: group_of(k)
                .iter()
                .map(|i| potentials[*i].id.clone())
                .collect(),
        })
        .collect();
    let mut bad = groups.clone();
    bad[8].potential_school_ids.push(potentials[0].id.clone());
    let s = expect_code(
        app.pairing()
            .set_pairing(auth(
                o,
                pb::SetPairingRequest {
                    idempotency_key: key(),
                    campaign_id: id.clone(),
                    groups: bad,
                },
            ))
            .await,
        Code::InvalidArgument,
    );
    assert!(
        s.message().contains("already in the group"),
        "{}",
        s.message()
    );
    app.pairing()
        .set_pairing(auth(
            o,
            pb::SetPairingRequest {
                idempotency_key: key(),
                campaign_id: id.clone(),
                groups,
            },
        ))
        .await
        .unwrap();
    // The phase cannot complete without baselines.
    let s = expect_code(
        app.campaigns()
            .complete_phase(auth(o, complete(pb::Phase::Pairing)))
            .await,
        Code::FailedPrecondition,
    );
    assert!(
        s.message().contains("30 所潜力校未录入基线分"),
        "{}",
        s.message()
    );
    for p in &potentials {
        app.pairing()
            .record_baseline(auth(
                &dept,
                pb::RecordBaselineRequest {
                    idempotency_key: key(),
                    school_id: p.id.clone(),
                    scores: scores(&camp, |_| 60.0),
                },
            ))
            .await
            .unwrap();
    }
    // A baseline recorded again (the same figures) records the one it replaced as `before`.
    app.pairing()
        .record_baseline(auth(
            &dept,
            pb::RecordBaselineRequest {
                idempotency_key: key(),
                school_id: potentials[0].id.clone(),
                scores: scores(&camp, |_| 60.0),
            },
        ))
        .await
        .unwrap();
    let baselines = befores(&app, "baseline.recorded", &potentials[0].id).await;
    assert_eq!(baselines.len(), 2);
    assert!(
        baselines[0].0.is_null(),
        "the first baseline replaced nothing"
    );
    assert_eq!(
        baselines[1].0, baselines[0].1,
        "before = the baseline replaced"
    );
    // Assistance: mentors 0, 7 and 8 log four activities (strong assistance), the rest one.
    for (k, m) in mentors.iter().enumerate() {
        let n = if [0, 7, 8].contains(&k) { 4 } else { 1 };
        for j in 0..n {
            let req = pb::LogAssistanceRequest {
                idempotency_key: key(),
                mentor_school_id: m.id.clone(),
                potential_school_id: potentials[group_of(k)[j % group_of(k).len()]].id.clone(),
                date: format!("2020-05-0{}", j + 1),
                indicators: vec!["teaching".into()],
                description: "送教上门、同课异构".into(),
                evidence_ref: "doc://activity".into(),
            };
            app.pairing()
                .log_assistance(auth(&seed_tokens[k], req))
                .await
                .unwrap();
        }
    }
    // A mentor logs only for its own group.
    let foreign = pb::LogAssistanceRequest {
        idempotency_key: key(),
        mentor_school_id: mentors[1].id.clone(),
        potential_school_id: potentials[0].id.clone(),
        date: "2020-05-05".into(),
        indicators: vec!["teaching".into()],
        description: "x".into(),
        evidence_ref: String::new(),
    };
    expect_code(
        app.pairing()
            .log_assistance(auth(&seed_tokens[1], foreign))
            .await,
        Code::FailedPrecondition,
    );
    // 1+X 八项指标: the groups show which of the eight indicators their assistance covers.
    let pairing = app
        .pairing()
        .get_pairing(auth(
            &leader,
            pb::GetPairingRequest {
                campaign_id: id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pairing.coverage.len(), 9, "one per group");
    let g0 = pairing
        .coverage
        .iter()
        .find(|g| g.mentor_school_id == mentors[0].id)
        .unwrap();
    assert_eq!(
        (g0.covered_indicators.clone(), g0.indicator_count),
        (vec!["teaching".to_string()], 8)
    );
    app.campaigns()
        .complete_phase(auth(o, complete(pb::Phase::Pairing)))
        .await
        .unwrap();

    // July: five panel members; the fifth belongs to mentor 0 and is recused from its group.
    app.advance("2020-07-02T09:00:00+08:00").await;
    app.campaigns()
        .open_phase(auth(o, phase(pb::Phase::Acceptance)))
        .await
        .unwrap();
    let mut panel = Vec::new();
    let mut members = Vec::new();
    for i in 0..5 {
        let r = app
            .admin()
            .issue_token(auth(
                o,
                pb::IssueTokenRequest {
                    idempotency_key: key(),
                    name: format!("验收组成员{i}"),
                    role: pb::Role::Panel as i32,
                    school_id: String::new(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let (affiliation, mentor_school_id) = if i == 4 {
            (pb::Affiliation::MentorSchool, mentors[0].id.clone())
        } else {
            (
                if i < 2 {
                    pb::Affiliation::Department
                } else {
                    pb::Affiliation::HighSchool
                },
                String::new(),
            )
        };
        members.push(pb::PanelMember {
            actor: r.actor.clone(),
            name: format!("验收组成员{i}"),
            affiliation: affiliation as i32,
            mentor_school_id,
        });
        panel.push(r.token);
    }
    app.acceptance()
        .form_panel(auth(
            o,
            pb::FormPanelRequest {
                idempotency_key: key(),
                campaign_id: id.clone(),
                members,
            },
        ))
        .await
        .unwrap();
    let score_req = |i: usize, m: usize, lvl: &dyn Fn(&str) -> f64| pb::SubmitScoresRequest {
        idempotency_key: key(),
        school_id: potentials[i].id.clone(),
        report_score: 70.0 + OFFSETS[m],
        onsite: scores(&camp, |c| lvl(c) + OFFSETS[m]),
    };
    for (i, _) in potentials.iter().enumerate() {
        for (m, token) in panel.iter().enumerate() {
            let r = app
                .acceptance()
                .submit_scores(auth(token, score_req(i, m, &|c| level(i, c))))
                .await;
            if m == 4 && i < 4 {
                let s = expect_code(r, Code::PermissionDenied);
                assert!(s.message().contains("recused"), "{}", s.message());
            } else {
                r.unwrap();
            }
        }
    }
    let results = app
        .acceptance()
        .get_results(auth(
            &leader,
            pb::GetResultsRequest {
                campaign_id: id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let result_of = |r: &pb::GetResultsResponse, i: usize| {
        r.results
            .iter()
            .find(|x| x.school_id == potentials[i].id)
            .unwrap()
            .clone()
    };
    let r0 = result_of(&results, 0);
    assert_eq!(
        (r0.scorers, r0.report_score, r0.onsite_score),
        (4, 70.0, 80.0),
        "group 0: four scores, no trimming"
    );
    assert_eq!(r0.final_score, 0.4 * 70.0 + 0.6 * 80.0);
    assert_eq!(r0.mentor_school_id, mentors[0].id);
    let r6 = result_of(&results, 6);
    assert_eq!(
        (r6.scorers, r6.onsite_score),
        (5, 64.88),
        "trimmed; (66 × 7 + 57) / 8 = 64.875"
    );
    assert!(r6.failed_indicators == vec!["culture".to_string()]);

    let results_notice = app
        .acceptance()
        .publish_results_notice(auth(
            o,
            pb::PublishResultsNoticeRequest {
                idempotency_key: key(),
                campaign_id: id.clone(),
                title: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(results_notice.school_ids.len(), 30);
    // Thursday 2020-07-02 + 5 working days → the notice ends after Wednesday 07-08.
    assert_eq!(
        results_notice.ends_at.unwrap().seconds,
        at("2020-07-09T00:00:00+08:00").timestamp()
    );
    // An objection to school 3's results is upheld; the panel re-scores it at 66.
    let obj = app
        .seed()
        .file_objection(auth(
            &dept,
            pb::FileObjectionRequest {
                idempotency_key: key(),
                notice_id: results_notice.id.clone(),
                school_id: potentials[3].id.clone(),
                objector_name: "赵六".into(),
                objector_contact: "13900001111".into(),
                grounds: "现场查验漏计材料".into(),
                evidence: "doc://evidence/7".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    expect_code(
        app.acceptance()
            .submit_scores(auth(&panel[0], score_req(5, 0, &|_| 99.0)))
            .await,
        Code::FailedPrecondition,
    );
    app.seed()
        .resolve_objection(auth(
            o,
            pb::ResolveObjectionRequest {
                idempotency_key: key(),
                objection_id: obj.id,
                upheld: true,
                reason: "补充材料属实，重新评分".into(),
            },
        ))
        .await
        .unwrap();
    for (m, token) in panel.iter().enumerate().take(4) {
        app.acceptance()
            .submit_scores(auth(token, score_req(3, m, &|_| 66.0)))
            .await
            .unwrap();
    }
    app.advance("2020-07-10T09:00:00+08:00").await;
    app.seed()
        .close_notice(auth(
            o,
            pb::CloseNoticeRequest {
                idempotency_key: key(),
                notice_id: results_notice.id.clone(),
            },
        ))
        .await
        .unwrap();
    app.campaigns()
        .complete_phase(auth(o, complete(pb::Phase::Acceptance)))
        .await
        .unwrap();
    let final_results = app
        .acceptance()
        .get_results(auth(
            &leader,
            pb::GetResultsRequest {
                campaign_id: id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(final_results.r#final);
    assert_eq!(
        result_of(&final_results, 3).onsite_score,
        66.0,
        "recomputed after the upheld objection"
    );
    assert_eq!(result_of(&final_results, 7).onsite_score, 50.0);

    // September: awards. By hand, with every baseline at 60:
    //   potentials i%4==0 → gain 20 → progress (8: 0,4,…,28)
    //   i%4==1 → gain 5 → compliance; i%4==2 → one near miss, gain 4.875 → compliance
    //   i%4==3 → 50 < 55 → veto, except school 3 (re-scored at 66, gain 6 → compliance)
    //   top 20% = 6 schools, all at gain 20 already, so no extra progress
    //   mentor 0: 4 activities, group gains 20, 5, 4.875, 6 → mean 8.97 ≥ 8 → contribution
    //   mentor 7: 4 activities, group [28] gain 20 → contribution
    //   mentor 8: 4 activities, group [29] gain 5 → model; mentors 1–6: 1 activity → model
    //   seed 9 never presented → no award (awards.seed_without_presentation = "none"), not a
    //   silent 标兵校
    app.advance("2020-09-01T09:00:00+08:00").await;
    app.campaigns()
        .open_phase(auth(o, phase(pb::Phase::Awards)))
        .await
        .unwrap();
    let proposed = app
        .awards()
        .propose_awards(auth(
            &leader,
            pb::ProposeAwardsRequest {
                campaign_id: id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let class_of = |list: &pb::AwardList, s: &pb::School| {
        list.awards
            .iter()
            .find(|a| a.school_id == s.id)
            .unwrap()
            .class
    };
    let mut expected: BTreeMap<String, pb::AwardClass> = BTreeMap::new();
    for (i, p) in potentials.iter().enumerate() {
        let c = match i % 4 {
            0 => pb::AwardClass::Progress,
            3 if i != 3 => pb::AwardClass::Veto,
            _ => pb::AwardClass::Compliance,
        };
        expected.insert(p.id.clone(), c);
    }
    for (k, m) in mentors.iter().enumerate() {
        expected.insert(
            m.id.clone(),
            if k == 0 || k == 7 {
                pb::AwardClass::Contribution
            } else {
                pb::AwardClass::Model
            },
        );
    }
    expected.insert(seeds[9].id.clone(), pb::AwardClass::Withheld);
    assert_eq!(proposed.awards.len(), 40, "exactly one class per school");
    for s in &schools {
        assert_eq!(
            class_of(&proposed, s) as i32,
            expected[&s.id] as i32,
            "{}",
            s.name
        );
    }
    let veto = proposed
        .awards
        .iter()
        .find(|a| a.school_id == potentials[7].id)
        .unwrap();
    assert!(veto.reason.contains("未达合格线 60"), "{}", veto.reason);
    assert!(
        veto.reason.ends_with("依据现场评估得分"),
        "the reasoning names its basis (scoring.award_basis): {}",
        veto.reason
    );
    let unpresented = proposed
        .awards
        .iter()
        .find(|a| a.school_id == seeds[9].id)
        .unwrap();
    assert_eq!(unpresented.class_label, "不予评定");
    assert!(
        unpresented.reason.contains("未参加导师型学校展示评选"),
        "{}",
        unpresented.reason
    );

    // The office promotes school 1 to progress, with a reason; without one it is refused.
    // It also vetoes mentor 8 (proposed 标兵校), with its reason: an office override may veto
    // or withhold any school's award.
    let promote = |reason: &str| pb::ConfirmAwardsRequest {
        idempotency_key: key(),
        campaign_id: id.clone(),
        overrides: vec![
            pb::AwardOverride {
                school_id: potentials[1].id.clone(),
                class: pb::AwardClass::Progress as i32,
                reason: reason.into(),
            },
            pb::AwardOverride {
                school_id: mentors[8].id.clone(),
                class: pb::AwardClass::Veto as i32,
                reason: "帮扶台账弄虚作假".into(),
            },
        ],
    };
    assert_eq!(
        violations(&expect_code(
            app.awards().confirm_awards(auth(o, promote(""))).await,
            Code::InvalidArgument
        )),
        vec!["overrides[0].reason"]
    );
    let confirmed = app
        .awards()
        .confirm_awards(auth(o, promote("疫情期间线上帮扶成效突出")))
        .await
        .unwrap()
        .into_inner();
    assert!(confirmed.confirmed);
    expected.insert(potentials[1].id.clone(), pb::AwardClass::Progress);
    expected.insert(mentors[8].id.clone(), pb::AwardClass::Veto);
    let mut counts: BTreeMap<i32, usize> = BTreeMap::new();
    for a in &confirmed.awards {
        assert_eq!(a.class, expected[&a.school_id] as i32);
        *counts.entry(a.class).or_default() += 1;
    }
    assert_eq!(
        counts,
        BTreeMap::from([
            (pb::AwardClass::Contribution as i32, 2),
            (pb::AwardClass::Model as i32, 6),
            (pb::AwardClass::Progress as i32, 9),
            (pb::AwardClass::Compliance as i32, 15),
            (pb::AwardClass::Veto as i32, 7),
            (pb::AwardClass::Withheld as i32, 1),
        ])
    );

    // The results stay readable after the awards moved every school out of `paired`: the same
    // rows, scores and mentor schools as when phase 4 ended.
    let after_awards = app
        .acceptance()
        .get_results(auth(
            &leader,
            pb::GetResultsRequest {
                campaign_id: id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after_awards, final_results);

    // Other bureau systems read the lists: by year and class, by school, by principal.
    let vetoes = app
        .awards()
        .list_awards(auth(
            &leader,
            pb::ListAwardsRequest {
                year: 2020,
                class: pb::AwardClass::Veto as i32,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .awards;
    assert_eq!(vetoes.len(), 7);
    let mentor_veto = vetoes
        .iter()
        .find(|v| v.school_id == mentors[8].id)
        .unwrap();
    assert_eq!(mentor_veto.override_reason, "帮扶台账弄虚作假");
    assert!(
        vetoes
            .iter()
            .all(|v| !v.principal.is_empty() && v.class_label == "一票否决")
    );
    let by_principal = app
        .awards()
        .list_awards(auth(
            &leader,
            pb::ListAwardsRequest {
                year: 2020,
                principal: potentials[1].principal.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .awards;
    assert!(by_principal.iter().any(
        |a| a.school_id == potentials[1].id && a.override_reason == "疫情期间线上帮扶成效突出"
    ));
    let school = app
        .schools()
        .get_school(auth(
            &leader,
            pb::GetSchoolRequest {
                school_id: potentials[7].id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (school.state.as_str(), school.state_label.as_str()),
        ("vetoed", "一票否决")
    );

    // The bureau's spreadsheets: the veto list as CSV, the award list as XLSX.
    let csv = app
        .sheets()
        .export(auth(
            &leader,
            pb::ExportRequest {
                campaign_id: id.clone(),
                document: pb::Document::VetoList as i32,
                format: pb::FileFormat::Csv as i32,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let text = String::from_utf8(csv.content).unwrap();
    assert!(text.starts_with('\u{feff}'), "a BOM so Excel reads UTF-8");
    assert_eq!(
        text.lines().next().unwrap().trim_start_matches('\u{feff}'),
        "学校名称,校长,否决原因"
    );
    assert_eq!(text.lines().count(), 8);
    let xlsx = app
        .sheets()
        .export(auth(
            &leader,
            pb::ExportRequest {
                campaign_id: id.clone(),
                document: pb::Document::AwardList as i32,
                format: pb::FileFormat::Xlsx as i32,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(xlsx.content.starts_with(b"PK") && xlsx.filename.ends_with(".xlsx"));
    every_export_reads_back(&app, &leader, &id, &seeds, &mentors, &potentials).await;

    // 三、结果运用: every confirmed award's consequences, from the definition, read back by
    // principal id, school, year and kind, page by page.
    let consequences = |q: pb::ListConsequencesRequest| {
        let app = &app;
        let leader = leader.clone();
        async move {
            app.awards()
                .list_consequences(auth(&leader, q))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let vetoed_principal = mentors[8].principal_id.clone();
    assert!(
        !vetoed_principal.is_empty(),
        "a principal is a person with an id"
    );
    let of_principal = consequences(pb::ListConsequencesRequest {
        year: 2020,
        principal_id: vetoed_principal.clone(),
        ..Default::default()
    })
    .await
    .consequences;
    let got: Vec<(&str, &str, &str, &str)> = of_principal
        .iter()
        .map(|c| {
            (
                c.subject.as_str(),
                c.kind.as_str(),
                c.label.as_str(),
                c.valid_until.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "school",
                "evaluation_barred",
                "年内不得评先树优",
                "2020-12-31"
            ),
            (
                "principal",
                "evaluation_barred",
                "年内不得评先树优",
                "2020-12-31"
            ),
            (
                "principal",
                "rank_assessment_flag",
                "校长职级制考核中视情况处理",
                ""
            ),
        ]
    );
    assert!(of_principal.iter().all(|c| c.award_title == "一票否决"
        && c.school_id == mentors[8].id
        && c.principal_name == mentors[8].principal));
    let contribution = consequences(pb::ListConsequencesRequest {
        campaign_id: id.clone(),
        school_id: mentors[0].id.clone(),
        ..Default::default()
    })
    .await
    .consequences;
    assert_eq!(contribution.len(), 7);
    assert!(
        contribution
            .iter()
            .all(|c| c.award_title == "全县义务教育优质均衡贡献校")
    );
    assert!(
        contribution
            .iter()
            .any(|c| c.subject == "principal" && c.label == "教师节大会个人表彰")
    );
    // 2 contribution × 7 + 9 progress × 5 + 7 vetoes × 3; compliance, model and withheld carry
    // none in the plan.
    let mut all = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = consequences(pb::ListConsequencesRequest {
            campaign_id: id.clone(),
            page_size: 50,
            page_token: token.clone(),
            ..Default::default()
        })
        .await;
        pages += 1;
        all.extend(page.consequences);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!((all.len(), pages), (14 + 45 + 21, 2));
    let barred = consequences(pb::ListConsequencesRequest {
        year: 2020,
        kind: "evaluation_barred".into(),
        ..Default::default()
    })
    .await
    .consequences;
    assert_eq!(barred.len(), 14, "7 schools and their 7 principals");
    assert_invalid(
        app.awards()
            .list_consequences(auth(
                &leader,
                pb::ListConsequencesRequest {
                    principal_id: "x".into(),
                    ..Default::default()
                },
            ))
            .await,
        "campaign_id",
    );

    // The vetoed school changes its principal: the veto stays with the person it concerns.
    let changed = app
        .schools()
        .change_principal(auth(
            o,
            pb::ChangePrincipalRequest {
                idempotency_key: key(),
                school_id: mentors[8].id.clone(),
                name: "新校长".into(),
                reason: "工作调动".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(changed.principal, "新校长");
    assert_ne!(changed.principal_id, vetoed_principal);
    let new_one = consequences(pb::ListConsequencesRequest {
        year: 2020,
        principal_id: changed.principal_id.clone(),
        ..Default::default()
    })
    .await
    .consequences;
    assert!(new_one.is_empty(), "the new principal is not barred");
    let old_one = consequences(pb::ListConsequencesRequest {
        year: 2020,
        principal_id: vetoed_principal.clone(),
        ..Default::default()
    })
    .await
    .consequences;
    assert_eq!(old_one.len(), 3);
    assert!(
        old_one
            .iter()
            .all(|c| c.principal_name == mentors[8].principal)
    );

    // Exported for other systems: one row per consequence under its header.
    let csv = app
        .sheets()
        .export(auth(
            &leader,
            pb::ExportRequest {
                campaign_id: id.clone(),
                document: pb::Document::Consequences as i32,
                format: pb::FileFormat::Csv as i32,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let text = String::from_utf8(csv.content).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap().trim_start_matches('\u{feff}'),
        "序号,学校名称,学校代码,校长,校长编号,评定结果,对象,结果运用,类别代码,有效期至"
    );
    assert_eq!(lines.clone().count(), 80);
    assert!(
        lines.any(|l| l.contains(&vetoed_principal)
            && l.contains("年内不得评先树优")
            && l.contains("2020年12月31日")),
        "{text}"
    );

    app.campaigns()
        .complete_phase(auth(o, complete(pb::Phase::Awards)))
        .await
        .unwrap();
    let c = app
        .campaigns()
        .get_campaign(auth(
            &leader,
            pb::GetCampaignRequest {
                campaign_id: id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        c.phases
            .iter()
            .all(|p| p.status == pb::PhaseStatus::Completed as i32)
    );

    // Every step of phases 3–5 is on the event stream.
    let events: Vec<String> = app
        .campaigns()
        .follow_events(auth(
            o,
            pb::FollowEventsRequest {
                campaign_id: id.clone(),
                cursor: String::new(),
                stop_when_caught_up: true,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .map(|e| e.unwrap().event.unwrap().action)
        .collect()
        .await;
    for action in [
        "pairing.set",
        "baseline.recorded",
        "assistance.logged",
        "panel.formed",
        "scores.submitted",
        "results.disputed",
        "results.recomputed",
        "results.final",
        "award.confirmed",
        "awards.confirmed",
        "consequence.recorded",
        "principal.changed",
    ] {
        assert!(events.iter().any(|e| e == action), "missing {action}");
    }
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "consequence.recorded")
            .count(),
        80,
        "an event per consequence"
    );
    assert_eq!(events.iter().filter(|e| *e == "phase.completed").count(), 5);

    // The re-scored sheets of school 3 record the sheets they replaced.
    let sheets = befores(&app, "scores.submitted", &potentials[3].id).await;
    let first = sheets.len() - 4;
    assert!(first >= 4, "{sheets:?}");
    for (before, after) in &sheets[first..] {
        assert!(
            sheets[..first].iter().any(|(_, sheet)| sheet == before),
            "before = the member's first sheet: {before}"
        );
        assert_ne!(before, after);
    }
    assert!(sheets[..first].iter().all(|(b, _)| b.is_null()));
    // Every advance of the clock is in the system chain, with the instant it moved from.
    let clock: Vec<(serde_json::Value, serde_json::Value)> = sqlx::query_as(
        "SELECT before, after FROM events WHERE campaign_id = $1 AND action = 'clock.advanced' ORDER BY chain_seq",
    )
    .bind(uuid::Uuid::nil())
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(clock.len() >= 5, "{clock:?}");
    for w in clock.windows(2) {
        assert_eq!(w[1].0["now"], w[0].1["now"], "before = the previous after");
    }

    // A whole season's chain (Chinese text, floats, every kind of event) verifies, as does
    // the system chain.
    for chain in [id.clone(), uuid::Uuid::nil().to_string()] {
        let v = app
            .campaigns()
            .verify_audit_chain(auth(o, pb::VerifyAuditChainRequest { campaign_id: chain }))
            .await
            .unwrap()
            .into_inner();
        assert!(v.intact, "{:?}", v.first_broken);
        assert!(v.events_checked > 5, "{v:?}");
    }
}

/// (before, after) of a school's events with this action, oldest first.
async fn befores(
    app: &App,
    action: &str,
    school: &str,
) -> Vec<(serde_json::Value, serde_json::Value)> {
    sqlx::query_as(
        "SELECT before, after FROM events WHERE action = $1 AND school_id = $2::uuid ORDER BY id",
    )
    .bind(action)
    .bind(school)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// Every document as an XLSX workbook, read back: all rows as text, title and notes first.
async fn xlsx_rows(
    app: &App,
    token: &str,
    campaign: &str,
    document: pb::Document,
) -> Vec<Vec<String>> {
    use calamine::{Reader, Xlsx};
    let file = app
        .sheets()
        .export(auth(
            token,
            pb::ExportRequest {
                campaign_id: campaign.into(),
                document: document as i32,
                format: pb::FileFormat::Xlsx as i32,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut book: Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(file.content)).unwrap();
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    sheet
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
}

/// A 公示's rows after its header: the list, then one empty row and the footer (how to
/// object, the contacts, the 落款), given by the footer's first cells.
fn list_and_footer(rows: &[Vec<String>]) -> (&[Vec<String>], Vec<String>) {
    let blank = rows
        .iter()
        .rposition(|r| r.iter().all(String::is_empty))
        .expect("an empty row before the footer");
    (
        &rows[..blank],
        rows[blank + 1..].iter().map(|r| r.concat()).collect(),
    )
}

/// The footer a 公示 of the Changle definition carries, published on `published` (2020年3月2日)
/// with its last day `last_day`.
fn changle_footer(published: &str, last_day: &str) -> Vec<String> {
    vec![
        format!(
            "公示期内，如对公示内容有异议，请以书面形式实名向昌乐县人民政府教育督导室反映，写明真实姓名和联系方式，并提供必要的证据材料。截止时间：{last_day}。匿名异议不予受理。"
        ),
        "监督电话：0536-6212345".into(),
        "通信地址：山东省潍坊市昌乐县教育和体育局督导室".into(),
        "电子邮箱：dudaoshi@changle.example.cn".into(),
        "昌乐县教育和体育局".into(),
        published.into(),
    ]
}

/// At the end of the season (awards confirmed, which replace the schools' mentor and seed
/// states), each export lists what was published or confirmed: its title, notes, header row
/// and rows.
async fn every_export_reads_back(
    app: &App,
    token: &str,
    campaign: &str,
    seeds: &[pb::School],
    mentors: &[pb::School],
    potentials: &[pb::School],
) {
    let school_headers = ["序号", "学校代码", "学校名称", "学段", "所属镇街", "校长"];
    let names = |rows: &[Vec<String>], col: usize| -> Vec<String> {
        let mut v: Vec<String> = rows.iter().map(|r| r[col].clone()).collect();
        v.sort();
        v
    };
    let sorted = |schools: &[pb::School]| -> Vec<String> {
        let mut v: Vec<String> = schools.iter().map(|s| s.name.clone()).collect();
        v.sort();
        v
    };

    let notice = xlsx_rows(app, token, campaign, pb::Document::SeedNotice).await;
    assert_eq!(notice[0][0], "关于昌乐县2020年标杆种子校拟定名单的公示");
    assert_eq!(
        notice[1][0],
        "根据《昌乐县2020年义务教育优质均衡系列示范校创建实施方案》（乐教督字〔2020〕2号）要求，经学校申报、昌乐县人民政府教育督导室审核，现将昌乐县2020年标杆种子校拟定名单予以公示。"
    );
    assert_eq!(
        notice[2][0],
        "公示期：2020年3月2日至2020年3月6日（共5个工作日）"
    );
    assert_eq!(notice[3], school_headers);
    let (list, footer) = list_and_footer(&notice[4..]);
    assert_eq!(names(list, 2), sorted(seeds));
    assert_eq!(list[0][0], "1");
    assert_eq!(footer, changle_footer("2020年3月2日", "2020年3月6日"));

    let list = xlsx_rows(app, token, campaign, pb::Document::MentorList).await;
    assert_eq!(list[0][0], "昌乐县2020年导师型学校名单");
    let mut headers = school_headers.to_vec();
    headers.push("认定依据");
    assert_eq!(list[1], headers);
    assert_eq!(
        names(&list[2..], 2),
        sorted(mentors),
        "the confirmed mentors, after awards replaced their states"
    );
    assert!(list[2..].iter().all(|r| !r[6].is_empty()), "{list:?}");

    let practices = xlsx_rows(app, token, campaign, pb::Document::PracticeCollection).await;
    assert_eq!(practices[0][0], "昌乐县2020年可复制性经验做法集锦");
    assert_eq!(practices[1], ["指标", "学校名称", "做法名称", "做法简介"]);
    assert_eq!(
        practices.len() - 2,
        2 * mentors.len(),
        "two accepted practices each"
    );

    let results = xlsx_rows(app, token, campaign, pb::Document::ResultsNotice).await;
    assert_eq!(results[0][0], "关于昌乐县2020年潜力校验收成绩的公示");
    assert_eq!(
        results[1][0],
        "根据《昌乐县2020年义务教育优质均衡系列示范校创建实施方案》（乐教督字〔2020〕2号）要求，经学校申报、昌乐县人民政府教育督导室审核，现将昌乐县2020年潜力校验收成绩（含帮扶的导师学校）予以公示。"
    );
    assert!(
        results[2][0].starts_with("公示期：2020年") && results[2][0].ends_with("（共5个工作日）"),
        "{:?}",
        results[2]
    );
    assert_eq!(
        results[4][..5],
        [
            "学校名称",
            "导师学校",
            "提升汇报得分",
            "现场查验得分",
            "综合得分"
        ]
    );
    let (list, footer) = list_and_footer(&results[5..]);
    assert_eq!(names(list, 0), sorted(potentials));
    // The footer's dates are the period's: 公示期：<published>至<last day>（共5个工作日）.
    let (published, last_day) = results[2][0]
        .strip_prefix("公示期：")
        .and_then(|p| p.strip_suffix("（共5个工作日）"))
        .and_then(|p| p.split_once('至'))
        .unwrap();
    assert_eq!(footer, changle_footer(published, last_day));

    let awards = xlsx_rows(app, token, campaign, pb::Document::AwardList).await;
    assert_eq!(
        awards[0][0],
        "昌乐县2020年义务教育学校优质均衡发展提升行动评先树优名单"
    );
    assert_eq!(
        awards[1],
        ["学校名称", "学段", "所属镇街", "校长", "奖项", "依据"]
    );
    assert_eq!(
        awards.len() - 2,
        32,
        "every school but the seven vetoed and the one withheld"
    );
    // Grouped by class under the plan's titles, in the plan's order.
    let classes: Vec<(String, usize)> = awards[2..].iter().fold(Vec::new(), |mut v, r| {
        match v.last_mut() {
            Some((c, n)) if *c == r[4] => *n += 1,
            _ => v.push((r[4].clone(), 1)),
        }
        v
    });
    assert_eq!(
        classes,
        [
            ("全县义务教育优质均衡贡献校".to_string(), 2),
            ("全县义务教育优质均衡标兵校".to_string(), 6),
            ("全县义务教育优质均衡进步校".to_string(), 9),
            ("全县义务教育优质均衡达标校".to_string(), 15),
        ]
    );

    let vetoes = xlsx_rows(app, token, campaign, pb::Document::VetoList).await;
    assert_eq!(vetoes[0][0], "昌乐县2020年一票否决名单");
    assert_eq!(vetoes[1], ["学校名称", "校长", "否决原因"]);
    assert_eq!(
        vetoes.len() - 2,
        7,
        "six by the rule, mentor 8 by the office"
    );
}
