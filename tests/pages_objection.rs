//! The online 公示 objection form (`[notice] online_objections`, on in the shipped Changle
//! definition): through the real pages server and a real PostgreSQL. A reader files with real
//! name and contact (CSRF double-submit), it becomes an objection the office resolves over
//! gRPC, audited as the public filer; anonymous forms, forms without the CSRF cookie, too many
//! forms from one address and forms after the period are refused; nothing filed is echoed.

#[path = "pages_webdriver.rs"]
mod webdriver;

use junheng_proto::v1 as pb;
use junheng_tests::*;
use junheng_workflow::ClockMode;
use reqwest::StatusCode;
use reqwest::redirect::Policy;

const NAME: &str = "王实名";
const CONTACT: &str = "13700001234";

struct Notice {
    app: App,
    url: String,
    schools: Vec<pb::School>,
    http: reqwest::Client,
}

async fn running_notice() -> Notice {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (app, web) = App::spawn_with_web(ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    })
    .await;
    let (campaign, schools) = changle(&app).await;
    let dept = app.token("业务科室", pb::Role::Department, "").await;
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
        .unwrap();
    for s in &schools[..3] {
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
    let notice = app
        .seed()
        .publish_notice(auth(
            OFFICE_TOKEN,
            pb::PublishNoticeRequest {
                idempotency_key: key(),
                campaign_id: campaign.id.clone(),
                kind: pb::NoticeKind::SeedCandidates as i32,
                school_ids: schools[..3].iter().map(|s| s.id.clone()).collect(),
                title: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let url = format!("{web}/campaigns/{}/notices/{}", campaign.code, notice.id);
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    Notice {
        app,
        url,
        schools,
        http,
    }
}

impl Notice {
    /// Opens the notice page: its form's CSRF field and the cookie that goes with it.
    async fn form(&self) -> (String, String, String) {
        let r = self.http.get(&self.url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let set = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|v| v.starts_with("jh_objection_csrf="))
            .expect("the form's CSRF cookie");
        for attr in ["HttpOnly", "SameSite=Strict"] {
            assert!(set.contains(attr), "{set}");
        }
        let html = r.text().await.unwrap();
        let csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("a CSRF field")
            .to_string();
        (csrf, set.split(';').next().unwrap().to_string(), html)
    }

    async fn post(&self, cookie: Option<&str>, fields: &[(&str, &str)]) -> (StatusCode, String) {
        let mut r = self
            .http
            .post(format!("{}/objection", self.url))
            .form(fields);
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        let r = r.send().await.unwrap();
        let s = r.status();
        (s, r.text().await.unwrap())
    }

    async fn objections(&self) -> Vec<(String, String, String)> {
        sqlx::query_as("SELECT objector_name, objector_contact, filed_by FROM objections")
            .fetch_all(&self.app.pool)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_reader_files_an_objection_on_the_notice_page_and_the_office_resolves_it() {
    let n = running_notice().await;
    let (csrf, cookie, html) = n.form().await;
    assert!(html.contains("在线提出异议") && html.contains("匿名异议不予受理"));
    let school = n.schools[1].id.clone();
    let full = |csrf: &str| {
        vec![
            ("csrf", csrf.to_string()),
            ("school", school.clone()),
            ("name", NAME.to_string()),
            ("contact", CONTACT.to_string()),
            ("grounds", "该校办学条件未达标".to_string()),
            ("evidence", "现场照片三张，可当面提供".to_string()),
        ]
    };

    // No CSRF cookie, or a wrong token: refused, nothing filed.
    let body = full(&csrf);
    let pairs: Vec<(&str, &str)> = body.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, _) = n.post(None, &pairs).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let wrong = full("0000");
    let pairs: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, _) = n.post(Some(&cookie), &pairs).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Anonymous (no name, no contact): refused with the fields named.
    let (csrf2, cookie2, _) = n.form().await;
    let (s, page) = n
        .post(
            Some(&cookie2),
            &[
                ("csrf", &csrf2),
                ("school", &school),
                ("name", " "),
                ("contact", ""),
                ("grounds", "匿名举报"),
                ("evidence", "照片"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("匿名异议不予受理") && page.contains("name") && page.contains("contact"),
        "{page}"
    );
    assert!(n.objections().await.is_empty());

    // With real name and contact: received, nothing of it echoed.
    let pairs: Vec<(&str, &str)> = body.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, page) = n.post(Some(&cookie), &pairs).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("异议已收到"), "{page}");
    assert!(!page.contains(NAME) && !page.contains(CONTACT), "{page}");
    // The same form sent again files nothing more.
    let (s, _) = n.post(Some(&cookie), &pairs).await;
    assert_eq!(s, StatusCode::OK);
    let filed = n.objections().await;
    assert_eq!(filed.len(), 1, "{filed:?}");
    assert_eq!((filed[0].0.as_str(), filed[0].1.as_str()), (NAME, CONTACT));
    assert!(filed[0].2.starts_with("public:"), "{:?}", filed[0].2);
    // The actor names the form (a digest of its random key), nothing about the address.
    use sha2::Digest as _;
    assert_eq!(
        filed[0].2,
        format!(
            "public:{}",
            hex::encode(&sha2::Sha256::digest(csrf.as_bytes())[..8])
        )
    );
    // Audited with the public filer as actor, through the same event as gRPC's.
    let (actor, role): (String, String) = sqlx::query_as(
        "SELECT actor, role FROM events WHERE action = 'objection.filed' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&n.app.pool)
    .await
    .unwrap();
    assert_eq!(actor, filed[0].2);
    assert_eq!(role, "office");
    // No public page shows it.
    let notice = n
        .http
        .get(&n.url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!notice.contains(NAME) && !notice.contains(CONTACT));

    // The office resolves it over gRPC.
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM objections")
        .fetch_one(&n.app.pool)
        .await
        .unwrap();
    n.app
        .seed()
        .resolve_objection(auth(
            OFFICE_TOKEN,
            pb::ResolveObjectionRequest {
                idempotency_key: key(),
                objection_id: id.to_string(),
                upheld: false,
                reason: "经核查不属实".into(),
            },
        ))
        .await
        .expect("the office resolves the online objection");

    // After the period: no form, and a form sent anyway is refused with the last day named.
    n.app.advance("2020-03-09T09:00:00+08:00").await;
    let (csrf3, cookie3) = {
        let r = n.http.get(&n.url).send().await.unwrap();
        assert!(
            r.headers()
                .get_all("set-cookie")
                .iter()
                .all(|v| !v.to_str().unwrap().starts_with("jh_objection_csrf=")),
            "no form after the period"
        );
        let html = r.text().await.unwrap();
        assert!(!html.contains("在线提出异议"));
        (csrf.clone(), cookie.clone())
    };
    let (s, page) = n
        .post(
            Some(&cookie3),
            &[
                ("csrf", &csrf3),
                ("school", &school),
                ("name", NAME),
                ("contact", "13700009999"),
                ("grounds", "迟到的异议"),
                ("evidence", "照片"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(page.contains("公示期已于2020年3月6日结束"), "{page}");
    assert_eq!(n.objections().await.len(), 1);
}

#[tokio::test]
async fn one_address_may_send_five_forms_an_hour() {
    let n = running_notice().await;
    let school = n.schools[0].id.clone();
    // Refused forms (a missing name, grounds over 5,000 characters) use none of the allowance,
    // and file nothing.
    let long = "异".repeat(5001);
    for (name, grounds, named) in [("", "异议", "name"), (NAME, long.as_str(), "grounds")] {
        let (csrf, cookie, _) = n.form().await;
        let (s, page) = n
            .post(
                Some(&cookie),
                &[
                    ("csrf", &csrf),
                    ("school", &school),
                    ("name", name),
                    ("contact", "13700000009"),
                    ("grounds", grounds),
                    ("evidence", "照片"),
                ],
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{page}");
        assert!(page.contains(named), "{page}");
    }
    assert!(n.objections().await.is_empty());
    let mut statuses = vec![];
    for i in 0..6 {
        let (csrf, cookie, _) = n.form().await;
        let contact = format!("1370000000{i}");
        let (s, _) = n
            .post(
                Some(&cookie),
                &[
                    ("csrf", &csrf),
                    ("school", &school),
                    ("name", NAME),
                    ("contact", &contact),
                    ("grounds", "异议"),
                    ("evidence", "照片"),
                ],
            )
            .await;
        statuses.push(s);
    }
    assert_eq!(statuses[..5], [StatusCode::OK; 5]);
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(n.objections().await.len(), 5);
}

#[tokio::test]
async fn in_a_real_browser_the_form_reads_right_and_axe_finds_nothing_serious() {
    let n = running_notice().await;
    let b = webdriver::Browser::start().await;
    let text = webdriver::visit(&b, &n.url, "notice-objection-form", &[]).await;
    for part in ["在线提出异议", "真实姓名（必填）", "匿名异议不予受理"] {
        assert!(text.contains(part), "{part}: {text}");
    }
    b.type_into("#name", NAME).await;
    b.type_into("#contact", CONTACT).await;
    b.type_into("#grounds", "该校办学条件未达标").await;
    b.type_into("#evidence", "现场照片").await;
    b.click("form.objection button[type=submit]").await;
    // The form posts to its notice's objection address (times out with the address reached).
    b.wait_for_url("/objection").await;
    let text = b.text().await;
    assert!(text.contains("异议已收到"), "{text}");
    assert!(!text.contains(NAME) && !text.contains(CONTACT), "{text}");
    assert!(
        b.cookies().await.iter().all(|c| c["name"] != "jh_session"),
        "no session: the public files without signing in"
    );
    assert_eq!(n.objections().await.len(), 1);
    b.quit().await;
}
