//! The leadership dashboard after a replayed season: the Changle campaign driven through all
//! five phases over gRPC (awards confirmed), and at each phase's end the dashboard, read over
//! HTTP with a leader's session, shows exactly what the gRPC API returns to the same token —
//! phase progress, schools by state per town and level (per cell, zeros included), what is
//! late and whose it is, the published score distribution (per bin) and the award counts.

#[path = "pages_http.rs"]
mod web;
#[path = "pages_webdriver.rs"]
mod webdriver;
use web::sign_in;

use std::collections::BTreeMap;

use junheng_proto::v1 as pb;
use junheng_tests::*;
use junheng_workflow::ClockMode;
use reqwest::StatusCode;
use reqwest::redirect::Policy;

/// The leader's view of one campaign: over gRPC with the token, over HTTP with its session.
struct Reader {
    app: App,
    web: String,
    http: reqwest::Client,
    cookie: String,
    token: String,
    camp: pb::Campaign,
}

/// Decodes the few entities maud writes.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The text of an element, tags dropped.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    unescape(out.trim())
}

/// The cells between `<open…>` and `</close>` in `html`, in order.
fn cells<'a>(html: &'a str, open: &str, close: &str) -> Vec<&'a str> {
    html.split(open)
        .skip(1)
        .map(|s| {
            let s = &s[s.find('>').map(|i| i + 1).unwrap_or(0)..];
            s.split(close).next().unwrap()
        })
        .collect()
}

/// The table with this id as shown: header cells and body rows, as text.
fn table(html: &str, id: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let start = html
        .find(&format!("<table id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table #{id}"));
    let t = &html[start..];
    let t = &t[..t.find("</table>").unwrap()];
    let head = t.split("<tbody>").next().unwrap();
    let body = t.split("<tbody>").nth(1).unwrap_or("");
    let headers = cells(head, "<th scope=", "</th>")
        .into_iter()
        .map(text)
        .collect();
    let rows = cells(body, "<tr", "</tr>")
        .into_iter()
        .map(|r| cells(r, "<td", "</td>").into_iter().map(text).collect())
        .collect();
    (headers, rows)
}

fn level_label(l: i32) -> &'static str {
    match pb::SchoolLevel::try_from(l).unwrap() {
        pb::SchoolLevel::Primary => "小学",
        pb::SchoolLevel::Junior => "初中",
        _ => "九年一贯制",
    }
}

fn phase_label(p: i32) -> &'static str {
    match pb::Phase::try_from(p).unwrap() {
        pb::Phase::SeedDesignation => "确定标杆种子校",
        pb::Phase::MentorSelection => "遴选导师型学校",
        pb::Phase::Pairing => "1+X 搭对帮扶提升",
        pb::Phase::Acceptance => "验收评估",
        _ => "表彰奖励",
    }
}

fn role_label(r: i32) -> &'static str {
    match pb::Role::try_from(r).unwrap() {
        pb::Role::Office => "督导室",
        pb::Role::Department => "业务科室",
        pb::Role::Panel => "评审专家",
        pb::Role::School => "学校",
        pb::Role::Leader => "局领导",
        _ => "系统",
    }
}

fn status_label(s: i32) -> &'static str {
    match pb::PhaseStatus::try_from(s).unwrap() {
        pb::PhaseStatus::Open => "进行中",
        pb::PhaseStatus::Completed => "已完成",
        _ => "未开始",
    }
}

/// 2020-03-06 → 2020年3月6日.
fn zh_date(d: &str) -> String {
    let d = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
    d.format("%Y年%-m月%-d日").to_string()
}

/// The award classes in the plan's order, with their labels.
const CLASSES: [&str; 6] = [
    "贡献校",
    "标兵校",
    "进步校",
    "达标校",
    "一票否决",
    "不予评定",
];

impl Reader {
    async fn page(&self, query: &str) -> String {
        let url = format!("{}/campaigns/{}/dashboard{query}", self.web, self.camp.code);
        let r = self
            .http
            .get(&url)
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        r.text().await.unwrap()
    }

    async fn schools(&self) -> Vec<pb::School> {
        self.app
            .schools()
            .list_schools(auth(
                &self.token,
                pb::ListSchoolsRequest {
                    campaign_id: self.camp.id.clone(),
                    page_size: 1000,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .schools
    }

    /// Asserts the dashboard shows what the API returns, at service time `now`; returns the
    /// number of late obligations and of published scores (so the season can check it
    /// looked at something).
    async fn dashboard_equals_api(&self, when: &str, now: &str) -> (usize, usize) {
        let html = self.page("").await;
        let now = at(now);

        // Phase progress: status, last day and open items per phase, as GetCampaign says.
        let camp = self
            .app
            .campaigns()
            .get_campaign(auth(
                &self.token,
                pb::GetCampaignRequest {
                    campaign_id: self.camp.id.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let (head, rows) = table(&html, "phases");
        assert_eq!(head, ["阶段", "状态", "截止日期", "未完成事项"], "{when}");
        let api: Vec<Vec<String>> = camp
            .phases
            .iter()
            .map(|p| {
                vec![
                    phase_label(p.phase).to_string(),
                    status_label(p.status).to_string(),
                    zh_date(&p.window_end),
                    p.open_items.len().to_string(),
                ]
            })
            .collect();
        assert_eq!(rows, api, "{when}: phase progress");

        // Schools by state per town and level, every cell (zeros too) and every row's total.
        let schools = self.schools().await;
        let (head, rows) = table(&html, "by-town");
        let mut states: Vec<String> = schools.iter().map(|s| s.state_label.clone()).collect();
        states.sort();
        states.dedup();
        let mut shown_states = head[2..head.len() - 1].to_vec();
        shown_states.sort();
        assert_eq!(shown_states, states, "{when}: the states shown");
        let mut from_page: BTreeMap<(String, String, String), u64> = BTreeMap::new();
        for r in &rows {
            assert_eq!(r.len(), head.len(), "{when}: {r:?}");
            let mut sum = 0;
            for (i, cell) in r.iter().enumerate().take(head.len() - 1).skip(2) {
                let n: u64 = cell.parse().unwrap();
                sum += n;
                from_page.insert((r[0].clone(), r[1].clone(), head[i].clone()), n);
            }
            assert_eq!(r.last().unwrap().parse::<u64>().unwrap(), sum, "{when}");
        }
        let mut from_api: BTreeMap<(String, String, String), u64> = BTreeMap::new();
        for s in &schools {
            for st in &states {
                from_api
                    .entry((s.town.clone(), level_label(s.level).into(), st.clone()))
                    .or_default();
            }
        }
        for s in &schools {
            *from_api
                .get_mut(&(
                    s.town.clone(),
                    level_label(s.level).into(),
                    s.state_label.clone(),
                ))
                .unwrap() += 1;
        }
        assert_eq!(
            from_page, from_api,
            "{when}: schools by state per town/level"
        );
        assert!(
            html.contains(&format!("学校{}所", schools.len())),
            "{when}: the school count"
        );
        // The school list, filtered on the server by each state, counts what ListSchools
        // filtered by that state returns.
        let mut codes: Vec<String> = schools.iter().map(|s| s.state.clone()).collect();
        codes.sort();
        codes.dedup();
        for code in codes {
            let n = self
                .app
                .schools()
                .list_schools(auth(
                    &self.token,
                    pb::ListSchoolsRequest {
                        campaign_id: self.camp.id.clone(),
                        state: code.clone(),
                        page_size: 1000,
                        ..Default::default()
                    },
                ))
                .await
                .unwrap()
                .into_inner()
                .schools
                .len();
            let page = self.page(&format!("?state={code}")).await;
            assert!(
                page.contains(&format!("共{n}所，")),
                "{when}: the list filtered by {code} has {n}"
            );
        }

        // What is late and whose it is: the open obligations past due, as ListObligations.
        let open: Vec<pb::Obligation> = self
            .app
            .campaigns()
            .list_obligations(auth(
                &self.token,
                pb::ListObligationsRequest {
                    campaign_id: self.camp.id.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .obligations
            .into_iter()
            .filter(|o| o.status == "open")
            .collect();
        let mut late: Vec<&pb::Obligation> = open
            .iter()
            .filter(|o| o.due.as_ref().unwrap().seconds < now.timestamp())
            .collect();
        late.sort_by_key(|o| o.due.as_ref().unwrap().seconds);
        let (head, rows) = table(&html, "late");
        assert_eq!(head, ["事项", "责任方", "学校", "应完成时间"]);
        let name: BTreeMap<&str, &str> = schools
            .iter()
            .map(|s| (s.id.as_str(), s.name.as_str()))
            .collect();
        // Asia/Shanghai has kept +08:00 since 1991.
        assert_eq!(self.camp.time_zone, "Asia/Shanghai");
        let tz = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
        let mut shown: Vec<Vec<String>> = rows.clone();
        let mut expected: Vec<Vec<String>> = late
            .iter()
            .map(|o| {
                let due = chrono::DateTime::from_timestamp(o.due.as_ref().unwrap().seconds, 0)
                    .unwrap()
                    .with_timezone(&tz);
                let owner = match name.get(o.owner.as_str()) {
                    Some(school) => school.to_string(),
                    None => role_label(o.owner_role).to_string(),
                };
                vec![
                    o.subject.clone(),
                    owner,
                    name.get(o.school_id.as_str())
                        .copied()
                        .unwrap_or("—")
                        .to_string(),
                    due.format("%Y年%-m月%-d日 %H:%M").to_string(),
                ]
            })
            .collect();
        shown.sort();
        expected.sort();
        assert_eq!(shown, expected, "{when}: what is late");
        assert!(
            html.contains(&format!(
                "未完成事项{}项，其中逾期<strong class=\"warn\">{}</strong>项",
                open.len(),
                late.len()
            )),
            "{when}: the open and late counts"
        );

        // The score distribution, once the results notice is out: per five-point bin.
        let results = self
            .app
            .acceptance()
            .get_results(auth(
                &self.token,
                pb::GetResultsRequest {
                    campaign_id: self.camp.id.clone(),
                },
            ))
            .await;
        let published = html.contains("id=\"hist-title\"");
        let scored = match results {
            Ok(r) if published => {
                let finals: Vec<f64> = r
                    .into_inner()
                    .results
                    .iter()
                    .map(|x| x.final_score)
                    .collect();
                let bins: Vec<String> = (0..10)
                    .filter_map(|i| {
                        let a = 50.0 + 5.0 * i as f64;
                        let n = finals
                            .iter()
                            .filter(|s| **s >= a && (**s < a + 5.0 || (i == 9 && **s <= 100.0)))
                            .count();
                        (n > 0).then(|| format!("{a:.0}–{:.0}分 {n}所", a + 5.0))
                    })
                    .collect();
                let title = text(cells(&html, "<title id=\"hist-title\"", "</title>")[0]);
                assert_eq!(
                    title,
                    format!("综合得分分布：{}", bins.join("，")),
                    "{when}: the score distribution"
                );
                let below = finals.iter().filter(|s| **s < 50.0).count();
                let caption = if below > 0 {
                    format!("共{}所，另有{below}所低于50分", finals.len())
                } else {
                    format!("共{}所）", finals.len())
                };
                assert!(html.contains(&caption), "{when}: {caption}");
                finals.len()
            }
            _ => {
                assert!(
                    html.contains("验收成绩公示发布后显示。"),
                    "{when}: no distribution before the results notice"
                );
                0
            }
        };

        // Award counts per class, as ListAwards for the campaign returns them.
        let awards = self
            .app
            .awards()
            .list_awards(auth(
                &self.token,
                pb::ListAwardsRequest {
                    campaign_id: self.camp.id.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .awards;
        let (head, rows) = table(&html, "awards");
        assert_eq!(head, ["类别", "学校数"]);
        let api: Vec<Vec<String>> = CLASSES
            .iter()
            .map(|c| {
                vec![
                    c.to_string(),
                    awards
                        .iter()
                        .filter(|a| a.class_label == *c)
                        .count()
                        .to_string(),
                ]
            })
            .collect();
        assert_eq!(rows, api, "{when}: award counts");
        assert_eq!(
            rows.iter()
                .map(|r| r[1].parse::<usize>().unwrap())
                .sum::<usize>(),
            awards.len()
        );
        (late.len(), scored)
    }
}

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

/// The on-site level at potential school `i`, as in the season test: 80, 65, 66 with 57 on
/// 校园文化, or 50 (a veto).
fn level(i: usize, indicator: &str) -> f64 {
    match i % 4 {
        0 => 80.0,
        1 => 65.0,
        2 if indicator == "culture" => 57.0,
        2 => 66.0,
        _ => 50.0,
    }
}

/// Phase 2's rating step, in one place: each seed but the last presents two practices and is
/// rated excellent on every indicator by the panel.
async fn rate_mentor_candidates(
    app: &App,
    camp: &pb::Campaign,
    seeds: &[pb::School],
    seed_tokens: &[String],
) {
    // The phase-2 panel the office appoints: three members, the definition's min_raters.
    let raters = app
        .mentor_panel(
            &camp.id,
            &[
                ("评委甲", pb::Affiliation::Department, ""),
                ("评委乙", pb::Affiliation::Department, ""),
                ("评委丙", pb::Affiliation::HighSchool, ""),
            ],
        )
        .await;
    for (i, s) in seeds.iter().enumerate() {
        let practices = ["teachers", "management"]
            .iter()
            .map(|ind| pb::PracticeDeclaration {
                indicator: (*ind).into(),
                title: format!("做法{i}{ind}"),
                description: "说明".into(),
            })
            .collect();
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
        for r in &raters {
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
            app.mentor()
                .rate_presentation(auth(
                    r,
                    pb::RatePresentationRequest {
                        idempotency_key: key(),
                        school_id: s.id.clone(),
                        ratings,
                        verdicts,
                    },
                ))
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn after_a_replayed_season_the_dashboard_shows_what_the_api_returns() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (app, web) = App::spawn_with_web(ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    })
    .await;
    let (camp, schools) = changle(&app).await;
    let id = camp.id.clone();
    let o = OFFICE_TOKEN;
    let dept = app.token("业务科室", pb::Role::Department, "").await;
    let token = app.token("局领导", pb::Role::Leader, "").await;
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let cookie = sign_in(&http, &web, &token).await;
    let mut r = Reader {
        app,
        web,
        http,
        cookie,
        token,
        camp: camp.clone(),
    };
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
    // Sessions last eight hours on the service's clock: sign in again after each jump.
    macro_rules! at_time {
        ($t:expr) => {
            r.app.advance($t).await;
            r.cookie = sign_in(&r.http, &r.web, &r.token).await;
        };
    }
    r.dashboard_equals_api("before phase 1", "2020-03-02T09:00:00+08:00")
        .await;
    let app = &r.app;

    // Phase 1: ten seed candidates noticed; the notice's closing is left late for a day.
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
    let seeds: Vec<pb::School> = schools[..10].to_vec();
    let notice = app
        .seed()
        .publish_notice(auth(
            o,
            pb::PublishNoticeRequest {
                idempotency_key: key(),
                campaign_id: id.clone(),
                kind: pb::NoticeKind::SeedCandidates as i32,
                school_ids: seeds.iter().map(|s| s.id.clone()).collect(),
                title: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    r.dashboard_equals_api("the seed notice running", "2020-03-02T09:00:00+08:00")
        .await;
    at_time!("2020-03-09T09:00:00+08:00");
    let (late, _) = r
        .dashboard_equals_api("the seed notice ended", "2020-03-09T09:00:00+08:00")
        .await;
    assert!(late > 0, "closing the ended notice is late");
    let app = &r.app;
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
    r.dashboard_equals_api("phase 1 completed", "2020-03-09T09:00:00+08:00")
        .await;

    // Phase 2: nine seeds present and are rated; the tenth never presents.
    at_time!("2020-04-01T09:00:00+08:00");
    let app = &r.app;
    app.campaigns()
        .open_phase(auth(o, phase(pb::Phase::MentorSelection)))
        .await
        .unwrap();
    let mut seed_tokens = Vec::new();
    for s in &seeds {
        seed_tokens.push(app.token(&s.name, pb::Role::School, &s.id).await);
    }
    rate_mentor_candidates(app, &camp, &seeds[..9], &seed_tokens).await;
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
    r.dashboard_equals_api("phase 2 completed", "2020-04-01T09:00:00+08:00")
        .await;
    let mentors: Vec<pb::School> = seeds[..9].to_vec();

    // Phase 3: mentor k (k < 7) takes potentials 4k..4k+3, mentor 7 takes 28, mentor 8 29;
    // baselines at 60; mentors 0, 7 and 8 log four activities, the rest one.
    at_time!("2020-05-06T09:00:00+08:00");
    let app = &r.app;
    app.campaigns()
        .open_phase(auth(o, phase(pb::Phase::Pairing)))
        .await
        .unwrap();
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
    app.campaigns()
        .complete_phase(auth(o, complete(pb::Phase::Pairing)))
        .await
        .unwrap();
    r.dashboard_equals_api("phase 3 completed", "2020-05-06T09:00:00+08:00")
        .await;

    // Phase 4: a panel of four scores every potential school; the results are published,
    // noticed and closed.
    at_time!("2020-07-02T09:00:00+08:00");
    let app = &r.app;
    app.campaigns()
        .open_phase(auth(o, phase(pb::Phase::Acceptance)))
        .await
        .unwrap();
    let mut panel = Vec::new();
    let mut members = Vec::new();
    for i in 0..4 {
        let t = app
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
        members.push(pb::PanelMember {
            actor: t.actor.clone(),
            name: format!("验收组成员{i}"),
            affiliation: if i < 2 {
                pb::Affiliation::Department
            } else {
                pb::Affiliation::HighSchool
            } as i32,
            mentor_school_id: String::new(),
        });
        panel.push(t.token);
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
    for (i, p) in potentials.iter().enumerate() {
        for t in &panel {
            app.acceptance()
                .submit_scores(auth(
                    t,
                    pb::SubmitScoresRequest {
                        idempotency_key: key(),
                        school_id: p.id.clone(),
                        report_score: 70.0,
                        onsite: scores(&camp, |c| level(i, c)),
                    },
                ))
                .await
                .unwrap();
        }
    }
    let (_, scored) = r
        .dashboard_equals_api("scored, not yet published", "2020-07-02T09:00:00+08:00")
        .await;
    assert_eq!(scored, 0, "no distribution before the results notice");
    let app = &r.app;
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
    let (_, scored) = r
        .dashboard_equals_api("results noticed", "2020-07-02T09:00:00+08:00")
        .await;
    assert_eq!(scored, 30);
    at_time!("2020-07-10T09:00:00+08:00");
    let app = &r.app;
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
    r.dashboard_equals_api("phase 4 completed", "2020-07-10T09:00:00+08:00")
        .await;

    // Phase 5: awards proposed and confirmed as proposed.
    at_time!("2020-09-01T09:00:00+08:00");
    let app = &r.app;
    app.campaigns()
        .open_phase(auth(o, phase(pb::Phase::Awards)))
        .await
        .unwrap();
    app.awards()
        .propose_awards(auth(
            &r.token,
            pb::ProposeAwardsRequest {
                campaign_id: id.clone(),
            },
        ))
        .await
        .unwrap();
    let confirmed = app
        .awards()
        .confirm_awards(auth(
            o,
            pb::ConfirmAwardsRequest {
                idempotency_key: key(),
                campaign_id: id.clone(),
                overrides: vec![],
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(confirmed.confirmed);
    assert_eq!(confirmed.awards.len(), 40);
    let (_, scored) = r
        .dashboard_equals_api("awards confirmed", "2020-09-01T09:00:00+08:00")
        .await;
    assert_eq!(scored, 30);
    // The end of the season, with the awards phase past its window and left open.
    at_time!("2020-12-01T09:00:00+08:00");
    let (late, _) = r
        .dashboard_equals_api("the season's end", "2020-12-01T09:00:00+08:00")
        .await;
    assert!(
        late > 0,
        "the awards phase, past its window and open, is late"
    );
    let html = r.page("").await;
    let (_, awards) = table(&html, "awards");
    // By hand, as in the season test but with no recusal and no upheld objection: mentor 7
    // (4 activities, group gain 20) contributes; mentor 0's group mean gain is 4.97 < 8.
    let by_hand = [
        ("贡献校", 1),
        ("标兵校", 8),
        ("进步校", 8),
        ("达标校", 15),
        ("一票否决", 7),
        ("不予评定", 1),
    ];
    let by_hand: Vec<Vec<String>> = by_hand
        .iter()
        .map(|(c, n)| vec![c.to_string(), n.to_string()])
        .collect();
    assert_eq!(awards, by_hand);

    // In a real browser: the end-of-season dashboard after signing in through the form, its
    // counts as above, no console errors and no serious axe violation.
    let b = webdriver::Browser::start().await;
    webdriver::visit(&b, &format!("{}/login", r.web), "season-login", &[]).await;
    b.sign_in(&r.token).await;
    assert!(b.url().await.ends_with("/dashboard"));
    assert!(
        b.cookies()
            .await
            .iter()
            .any(|c| c["name"] == "jh_session" && c["httpOnly"] == true),
        "signed in with an HttpOnly session cookie"
    );
    let text = webdriver::visit(
        &b,
        &format!("{}/campaigns/{}/dashboard", r.web, r.camp.code),
        "dashboard-season",
        &["dashboard-season"],
    )
    .await;
    for row in &awards {
        assert!(
            text.contains(&format!("{}\t{}", row[0], row[1])),
            "the browser shows {row:?}: {text}"
        );
    }
    assert!(text.contains(&format!("其中逾期{late}项")), "{text}");
    b.quit().await;
}
