//! The pages (公示栏, leadership dashboard) through the real server and a real PostgreSQL:
//! over plain HTTP for what a page serves (every public link walked for personal data, sign-in,
//! sign-out, session expiry, CSRF, roles), and in headless Chromium for what a reader sees (the
//! content, no console errors, axe-core with its zh_CN locale finding no serious or critical
//! violation, screenshots under target/screenshots/).

#[path = "pages_http.rs"]
mod web;
#[path = "pages_webdriver.rs"]
mod webdriver;
use web::{client, csrf, sign_in_set_cookie as sign_in};

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use junheng_proto::v1 as pb;
use junheng_tests::*;
use junheng_workflow::ClockMode;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// What a test sets up: the Changle campaign in phase 1 with its candidate notice published
/// and two objections resolved (one upheld, one dismissed) while the notice runs.
struct Season {
    app: App,
    web: String,
    campaign: pb::Campaign,
    schools: Vec<pb::School>,
    notice: pb::Notice,
    leader: String,
    school_token: String,
}

/// Personal data filed with the objections: none of it may appear on a public page.
const OBJECTORS: [(&str, &str); 2] = [
    ("张三丰", "13912345678"),
    ("李四光", "lisi.objector@example.com"),
];
const EVIDENCE: &str = "doc://evidence/confidential-7";

async fn season() -> Season {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (app, web) = App::spawn_with_web(ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    })
    .await;
    let (campaign, schools) = changle(&app).await;
    let dept = app.token("业务科室", pb::Role::Department, "").await;
    let leader = app.token("局领导", pb::Role::Leader, "").await;
    let school_token = app
        .token(&schools[20].name, pb::Role::School, &schools[20].id)
        .await;
    app.campaigns()
        .open_phase(auth(
            OFFICE_TOKEN,
            pb::OpenPhaseRequest {
                idempotency_key: key(),
                campaign_id: campaign.id.clone(),
                phase: pb::Phase::SeedDesignation as i32,
            },
        ))
        .await
        .expect("open phase 1");
    let mut ids = Vec::new();
    for s in &schools[0..6] {
        app.seed()
            .nominate(auth(
                &dept,
                pb::NominateRequest {
                    idempotency_key: key(),
                    school_id: s.id.clone(),
                    expected_version: s.version,
                    basis: "对照评价标准达标".into(),
                },
            ))
            .await
            .expect("nominate");
        ids.push(s.id.clone());
    }
    let notice = app
        .seed()
        .publish_notice(auth(
            OFFICE_TOKEN,
            pb::PublishNoticeRequest {
                idempotency_key: key(),
                campaign_id: campaign.id.clone(),
                kind: pb::NoticeKind::SeedCandidates as i32,
                school_ids: ids.clone(),
                title: String::new(),
            },
        ))
        .await
        .expect("publish notice")
        .into_inner();
    for (i, (name, contact)) in OBJECTORS.iter().enumerate() {
        let o = app
            .seed()
            .file_objection(auth(
                &dept,
                pb::FileObjectionRequest {
                    idempotency_key: key(),
                    notice_id: notice.id.clone(),
                    school_id: ids[i].clone(),
                    objector_name: (*name).into(),
                    objector_contact: (*contact).into(),
                    grounds: "办学条件未达标".into(),
                    evidence: EVIDENCE.into(),
                },
            ))
            .await
            .expect("file objection")
            .into_inner();
        app.seed()
            .resolve_objection(auth(
                OFFICE_TOKEN,
                pb::ResolveObjectionRequest {
                    idempotency_key: key(),
                    objection_id: o.id,
                    upheld: i == 0,
                    reason: "经核查".into(),
                },
            ))
            .await
            .expect("resolve objection");
    }
    Season {
        app,
        web,
        campaign,
        schools,
        notice,
        leader,
        school_token,
    }
}

async fn get(c: &reqwest::Client, url: &str) -> (StatusCode, String) {
    let r = c.get(url).send().await.expect("page answers");
    let status = r.status();
    (status, r.text().await.expect("body"))
}

/// Every same-site link on a page (href="/…").
fn links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|h| h.starts_with('/') && !h.starts_with("//"))
        .map(|h| h.replace("&amp;", "&"))
        .collect()
}

/// Walks every public link from `/` and returns each page's URL and body.
async fn walk(web: &str) -> BTreeMap<String, String> {
    let c = client();
    let mut seen = BTreeMap::new();
    let mut queue = VecDeque::from([String::from("/")]);
    while let Some(path) = queue.pop_front() {
        if seen.contains_key(&path) {
            continue;
        }
        let (status, body) = get(&c, &format!("{web}{path}")).await;
        assert_eq!(status, StatusCode::OK, "public link {path}");
        for l in links(&body) {
            if !seen.contains_key(&l) {
                queue.push_back(l);
            }
        }
        seen.insert(path, body);
    }
    seen
}

/// No objector's name, contact or evidence, no school contact on any public page.
fn assert_nothing_personal(pages: &BTreeMap<String, String>) {
    for (path, body) in pages {
        for (name, contact) in OBJECTORS {
            assert!(!body.contains(name), "{path} shows objector {name}");
            assert!(!body.contains(contact), "{path} shows contact {contact}");
        }
        assert!(!body.contains(EVIDENCE), "{path} shows evidence");
        assert!(
            !body.contains("@schools.changle.example"),
            "{path} shows a school contact"
        );
    }
}

#[tokio::test]
async fn the_public_board_shows_every_part_of_a_notice_and_nothing_personal() {
    let s = season().await;
    let code = &s.campaign.code;
    let c = client();
    let base = format!("{}/campaigns/{code}/notices/{}", s.web, s.notice.id);

    let (status, html) = get(&c, &base).await;
    assert_eq!(status, StatusCode::OK);
    for part in [
        "lang=\"zh-CN\"",
        "关于昌乐县2020年标杆种子校拟定名单的公示",
        "乐教督字〔2020〕2号",
        "公示期：<strong>2020年3月2日至2020年3月6日</strong>",
        "公示中，剩余5个工作日",
        "匿名异议不予受理",
        "监督电话：0536-6212345",
        "通信地址：山东省潍坊市昌乐县教育和体育局督导室",
        "dudaoshi@changle.example.cn",
        "索引号：370725-JTJ-2020-001",
        "发布日期：2020年3月2日",
        "<th scope=\"col\">序号</th>",
    ] {
        assert!(html.contains(part), "the notice lacks {part}");
    }
    for school in &s.schools[0..6] {
        assert!(
            html.contains(&school.name),
            "the list lacks {}",
            school.name
        );
    }
    assert!(
        !html.contains(&s.schools[6].name),
        "a school not on the list is shown"
    );
    assert!(
        !html.contains("公示结果"),
        "no outcome while the notice runs"
    );

    // The machine-readable copies carry the same list as the gRPC API.
    let json: Value = c
        .get(format!("{base}.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: BTreeSet<String> = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["学校名称"].as_str().unwrap().to_string())
        .collect();
    let by_id: BTreeMap<_, _> = s
        .schools
        .iter()
        .map(|x| (x.id.clone(), x.name.clone()))
        .collect();
    let expected: BTreeSet<String> = s
        .notice
        .school_ids
        .iter()
        .map(|id| by_id[id].clone())
        .collect();
    assert_eq!(names, expected);
    assert_eq!(json["period_last_day"], "2020-03-06");
    assert_eq!(json["rows"][0]["序号"], 1);
    let (status, csv) = get(&c, &format!("{base}.csv")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        csv.trim_start_matches('\u{feff}').lines().count(),
        7,
        "{csv}"
    );

    // Not published (an unknown id, or another campaign's code) is 404, never a leak.
    let other = uuid::Uuid::now_v7();
    for url in [
        format!("{}/campaigns/{code}/notices/{other}", s.web),
        format!("{}/campaigns/{code}/notices/{other}.json", s.web),
        format!("{}/campaigns/no-such/notices/{}", s.web, s.notice.id),
        format!("{}/campaigns/{code}/notices/not-an-id", s.web),
    ] {
        assert_eq!(get(&c, &url).await.0, StatusCode::NOT_FOUND, "{url}");
    }
    // Signed-in pages are not public.
    let (status, _) = get(&c, &format!("{}/campaigns/{code}/dashboard", s.web)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    let pages = walk(&s.web).await;
    assert!(pages.contains_key(&format!("/campaigns/{code}/notices/{}", s.notice.id)));
    assert_nothing_personal(&pages);

    // After the period: the outcome in counts, still nothing personal.
    s.app.advance("2020-03-09T09:00:00+08:00").await;
    s.app
        .seed()
        .close_notice(auth(
            OFFICE_TOKEN,
            pb::CloseNoticeRequest {
                idempotency_key: key(),
                notice_id: s.notice.id.clone(),
            },
        ))
        .await
        .expect("close notice");
    let (_, html) = get(&c, &base).await;
    assert!(html.contains("公示期已结束"), "{html}");
    assert!(
        html.contains("公示期内共收到异议2件：经核实成立1件，不成立1件。"),
        "{html}"
    );
    let (_, board) = get(&c, &format!("{}/campaigns/{code}/notices", s.web)).await;
    assert!(board.contains("当前没有正在公示的名单"));
    let pages = walk(&s.web).await;
    assert_nothing_personal(&pages);
}

#[tokio::test]
async fn sign_in_sign_out_expiry_csrf_and_roles() {
    let s = season().await;
    let c = client();
    let dash = format!("{}/campaigns/{}/dashboard", s.web, s.campaign.code);

    // A wrong token is refused; a sign-in form without its CSRF cookie is refused.
    let r = c.get(format!("{}/login", s.web)).send().await.unwrap();
    let form = csrf(&r.text().await.unwrap());
    let r = c
        .post(format!("{}/login", s.web))
        .form(&[("csrf", form.as_str()), ("token", s.leader.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no CSRF cookie");
    assert!(
        r.headers()
            .get_all("set-cookie")
            .iter()
            .all(|v| !v.to_str().unwrap().starts_with("jh_session="))
    );

    let (cookie, set) = sign_in(&c, &s.web, &s.leader).await;
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    assert!(!set.contains("Secure"), "no TLS here: {set}");
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT id_digest FROM web_sessions")
        .fetch_all(&s.app.pool)
        .await
        .unwrap();
    let id = cookie.trim_start_matches("jh_session=");
    assert!(
        stored.len() == 1 && stored[0].len() == 32 && stored[0].as_slice() != id.as_bytes(),
        "only a digest of the session id is stored"
    );

    let page = c.get(&dash).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("阶段进度") && html.contains("确定标杆种子校"));
    let token = csrf(&html);

    // Sign-out refuses a form without the session's CSRF token, then ends the session.
    for bad in ["", "0000"] {
        let r = c
            .post(format!("{}/logout", s.web))
            .header("cookie", &cookie)
            .form(&[("csrf", bad)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "CSRF `{bad}`");
    }
    let still = c.get(&dash).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(
        still.status(),
        StatusCode::OK,
        "a refused sign-out changes nothing"
    );
    let r = c
        .post(format!("{}/logout", s.web))
        .header("cookie", &cookie)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let after = c.get(&dash).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert_eq!(after.headers()["location"], "/login");

    // A session expires after eight hours on the service's clock.
    let (cookie, _) = sign_in(&c, &s.web, &s.leader).await;
    s.app.advance("2020-03-02T16:59:00+08:00").await;
    let r = c.get(&dash).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "7h59m in");
    s.app.advance("2020-03-02T17:00:01+08:00").await;
    let r = c.get(&dash).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "expired after 8 hours");

    // A school signs in but is refused the dashboard; the office reads it.
    let (cookie, _) = sign_in(&c, &s.web, &s.school_token).await;
    let r = c.get(&dash).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(!r.text().await.unwrap().contains("阶段进度"));
    let (cookie, _) = sign_in(&c, &s.web, OFFICE_TOKEN).await;
    let r = c.get(&dash).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // XLSX downloads of the dashboard's tables.
    let r = c
        .get(format!("{dash}?download=by_town"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert!(r.bytes().await.unwrap().starts_with(b"PK"), "an XLSX (zip)");
    let r = c
        .get(format!("{dash}?download=nonsense"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// The shared page check, with the screenshots this test refreshes for the README.
async fn visit(b: &webdriver::Browser, url: &str, shot: &str) -> String {
    webdriver::visit(b, url, shot, &["notice-board", "dashboard"]).await
}

#[tokio::test]
async fn in_a_real_browser_the_pages_read_right_and_the_dashboard_matches_the_api() {
    let s = season().await;
    let code = s.campaign.code.clone();
    // Past the notice's end and not closed: the office's closing is late.
    s.app.advance("2020-03-09T09:00:00+08:00").await;
    let b = webdriver::Browser::start().await;

    let text = visit(&b, &format!("{}/", s.web), "home").await;
    assert!(
        text.contains("公示栏") && text.contains("昌乐县2020年"),
        "{text}"
    );
    let text = visit(
        &b,
        &format!("{}/campaigns/{code}/notices", s.web),
        "notice-board",
    )
    .await;
    assert!(
        text.contains("关于昌乐县2020年标杆种子校拟定名单的公示"),
        "{text}"
    );
    assert!(
        text.contains("公示期：2020年3月2日至2020年3月6日"),
        "{text}"
    );
    let notice_url = format!("{}/campaigns/{code}/notices/{}", s.web, s.notice.id);
    let text = visit(&b, &notice_url, "notice").await;
    for part in [
        "2020年3月2日至2020年3月6日",
        "匿名异议不予受理",
        "监督电话",
        "公示期已结束",
    ] {
        assert!(text.contains(part), "notice lacks {part}: {text}");
    }
    let rows = b
        .execute(
            "return Array.from(document.querySelectorAll('article table tbody tr')).map(tr => tr.cells[2].innerText);",
            json!([]),
        )
        .await;
    let shown: BTreeSet<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let expected: BTreeSet<String> = s.schools[0..6].iter().map(|x| x.name.clone()).collect();
    assert_eq!(shown, expected);

    // Sign in as the leader through the form.
    visit(&b, &format!("{}/login", s.web), "login").await;
    b.sign_in(&s.leader).await;
    let session = b
        .cookies()
        .await
        .into_iter()
        .find(|c| c["name"] == "jh_session")
        .expect("session cookie");
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Strict");
    assert!(b.url().await.ends_with("/dashboard"));
    let text = visit(
        &b,
        &format!("{}/campaigns/{code}/dashboard", s.web),
        "dashboard",
    )
    .await;
    assert!(
        text.contains("阶段进度") && text.contains("逾期事项"),
        "{text}"
    );

    // The dashboard's numbers are the API's for the same token.
    let table = b
        .execute(
            "const t = document.querySelector('#by-town');\
             return { head: Array.from(t.tHead.rows[0].cells).map(c => c.innerText),\
                      rows: Array.from(t.tBodies[0].rows).map(r => Array.from(r.cells).map(c => c.innerText)) };",
            json!([]),
        )
        .await;
    let head: Vec<String> = serde_json::from_value(table["head"].clone()).unwrap();
    let rows: Vec<Vec<String>> = serde_json::from_value(table["rows"].clone()).unwrap();
    let api = s
        .app
        .schools()
        .list_schools(auth(
            &s.leader,
            pb::ListSchoolsRequest {
                campaign_id: s.campaign.id.clone(),
                page_size: 1000,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .schools;
    let level = |l: i32| match pb::SchoolLevel::try_from(l).unwrap() {
        pb::SchoolLevel::Primary => "小学",
        pb::SchoolLevel::Junior => "初中",
        _ => "九年一贯制",
    };
    let mut from_api: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for x in &api {
        *from_api
            .entry((x.town.clone(), level(x.level).into(), x.state_label.clone()))
            .or_default() += 1;
    }
    let mut from_page: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    let mut total = 0;
    for r in &rows {
        for (i, cell) in r.iter().enumerate().skip(2).take(head.len() - 3) {
            let n: usize = cell.parse().unwrap();
            if n > 0 {
                from_page.insert((r[0].clone(), r[1].clone(), head[i].clone()), n);
            }
        }
        total += r.last().unwrap().parse::<usize>().unwrap();
    }
    assert_eq!(from_page, from_api);
    assert_eq!(total, api.len());
    let now = at("2020-03-09T09:00:00+08:00").timestamp();
    let late_api = s
        .app
        .campaigns()
        .list_obligations(auth(
            &s.leader,
            pb::ListObligationsRequest {
                campaign_id: s.campaign.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .obligations
        .into_iter()
        .filter(|o| o.status == "open" && o.due.as_ref().unwrap().seconds < now)
        .count();
    assert!(late_api > 0, "closing the ended notice is late");
    let late_page = b
        .execute(
            "return document.querySelectorAll('#late tbody tr').length;",
            json!([]),
        )
        .await;
    assert_eq!(late_page.as_u64().unwrap() as usize, late_api);
    assert!(text.contains(&format!("其中逾期{late_api}项")), "{text}");
    b.quit().await;
}
