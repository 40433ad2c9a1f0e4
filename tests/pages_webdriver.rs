//! A small W3C WebDriver client for the browser tests: Debian's `chromedriver` driving headless
//! Chromium with the flags TOOLING.md names and a fresh profile directory. Plain JSON over HTTP
//! (reqwest), so the tests need no WebDriver crate.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

pub struct Browser {
    http: reqwest::Client,
    base: String,
    driver: Child,
    profile: std::path::PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

impl Browser {
    pub async fn start() -> Browser {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
            "the browser tests need Debian's chromium and chromium-driver (deploy/scripts/test.sh installs them: apt-get install chromium chromium-driver fonts-wqy-microhei)"
        );
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("http client");
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if http
                .get(format!("{base}/status"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = std::env::temp_dir().join(format!("jh-chromium-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&profile).expect("profile dir");
        let mut b = Browser {
            http,
            base,
            driver,
            profile,
        };
        let caps = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:loggingPrefs": { "browser": "ALL" },
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--window-size=1280,1600",
                        format!("--user-data-dir={}", b.profile.display()),
                    ]
                }
            }}
        });
        let r = b.raw("POST", "/session", Some(caps)).await;
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_string();
        b.base = format!("{}/session/{id}", b.base);
        b.cmd(
            "POST",
            "/timeouts",
            json!({ "script": 60000, "pageLoad": 60000 }),
        )
        .await;
        b
    }

    async fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or(json!({}))),
        };
        let r = req.send().await.expect("WebDriver answers");
        r.json().await.expect("WebDriver JSON")
    }

    async fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let v = self.raw(method, path, Some(body)).await;
        if let Some(e) = v["value"]["error"].as_str() {
            panic!("WebDriver {method} {path}: {e}: {}", v["value"]["message"]);
        }
        v["value"].clone()
    }

    /// Ends the session (Chromium exits with it).
    pub async fn quit(self) {
        let _ = self.raw("DELETE", "", None).await;
    }

    pub async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url })).await;
    }

    pub async fn url(&self) -> String {
        self.raw("GET", "/url", None).await["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": args }),
        )
        .await
    }

    pub async fn execute_async(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/async",
            json!({ "script": script, "args": args }),
        )
        .await
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.execute("return document.body.innerText;", json!([]))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                "POST",
                "/element",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(|v| v.as_str())
            .expect("element id")
            .to_string()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd("POST", &format!("/element/{e}/click"), json!({}))
            .await;
    }

    /// Signs in through the login form on the current page and waits until the browser has
    /// followed the redirect to the dashboard, so the next navigation cannot race the login's.
    #[allow(dead_code)] // a module of every browser test; not every one signs in
    pub async fn sign_in(&self, token: &str) {
        self.type_into("#token", token).await;
        self.click("button[type=submit]").await;
        self.wait_for_url("/dashboard").await;
    }

    /// Waits until the browser's address ends with `suffix`: a click that submits a form
    /// returns before the browser has followed it, so reading the page at once can race it.
    #[allow(dead_code)] // a module of every browser test; not every one submits a form
    pub async fn wait_for_url(&self, suffix: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while !self.url().await.ends_with(suffix) {
            assert!(
                std::time::Instant::now() < deadline,
                "the browser did not reach …{suffix}: {}",
                self.url().await
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let v = self.cmd("GET", "/screenshot", json!({})).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64"))
            .expect("PNG");
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    /// The browser console since the last call (chromedriver's log endpoint).
    pub async fn console(&self) -> Vec<Value> {
        self.cmd("POST", "/se/log", json!({ "type": "browser" }))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn cookies(&self) -> Vec<Value> {
        self.cmd("GET", "/cookie", json!({}))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// axe-core with its zh_CN locale, injected into the page: the serious and critical violations.
pub async fn axe(b: &Browser) -> Vec<Value> {
    let dir = std::env::var("JUNHENG_AXE_DIR").unwrap_or_else(|_| {
        format!(
            "{}/.cache/junheng/axe",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let root = std::path::Path::new(&dir).join("node_modules/axe-core");
    let src = std::fs::read_to_string(root.join("axe.min.js")).unwrap_or_else(|e| {
        panic!(
            "axe-core not found under {dir} ({e}); deploy/scripts/test.sh installs it (npm install --prefix {dir} axe-core@4)"
        )
    });
    let locale: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("locales/zh_CN.json")).unwrap())
            .unwrap();
    let script = format!(
        "{src}\n;const done = arguments[arguments.length - 1];\
         window.axe.configure({{ locale: arguments[0] }});\
         window.axe.run(document, {{ resultTypes: ['violations'] }})\
           .then(r => done({{ passes: r.passes.length, violations: r.violations.map(v => ({{ id: v.id,\
              impact: v.impact, help: v.help, targets: v.nodes.slice(0, 3).map(n => n.target.join(' ')) }})) }}))\
           .catch(e => done({{ passes: 0, violations: [{{ id: 'axe-error', impact: 'critical', help: String(e) }}] }}));"
    );
    let v = b.execute_async(&script, json!([locale])).await;
    assert!(
        v["passes"].as_u64().unwrap_or(0) > 10,
        "axe-core ran no rules: {v}"
    );
    v["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| matches!(x["impact"].as_str(), Some("serious" | "critical")))
        .cloned()
        .collect()
}

/// Loads `url`, saves a screenshot under target/screenshots (and, with
/// JUNHENG_UPDATE_SCREENSHOTS=1, under deploy/screenshots when `shot` is one of `committed`:
/// refreshed on request, never by an ordinary run), checks there are no console errors and no
/// serious axe violations, and returns the page's text.
pub async fn visit(b: &Browser, url: &str, shot: &str, committed: &[&str]) -> String {
    b.goto(url).await;
    let text = b.text().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    b.screenshot(&dir.join(format!("{shot}.png"))).await;
    if std::env::var("JUNHENG_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1")
        && committed.contains(&shot)
    {
        let to = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/screenshots");
        std::fs::create_dir_all(&to).unwrap();
        std::fs::copy(
            dir.join(format!("{shot}.png")),
            to.join(format!("{shot}.png")),
        )
        .unwrap();
    }
    let errors: Vec<_> = b
        .console()
        .await
        .into_iter()
        .filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING")
        .collect();
    assert!(errors.is_empty(), "{url}: console: {errors:?}");
    let violations = axe(b).await;
    assert!(violations.is_empty(), "{url}: axe: {violations:#?}");
    text
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
