//! The pages' HTTP side for the browser tests: a client that does not follow redirects, the
//! hidden fields of a form, and signing in through the login form. A module of each
//! `tests/pages*.rs` (`#[path]`), so not every test uses every helper.
#![allow(dead_code)]

use reqwest::StatusCode;
use reqwest::redirect::Policy;

/// A client that shows each redirect instead of following it.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("http client")
}

/// The value of the hidden field `name` in a page's form.
pub fn field(html: &str, name: &str) -> String {
    html.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("a {name} field in {html}"))
        .to_string()
}

/// The form's CSRF token.
pub fn csrf(html: &str) -> String {
    field(html, "csrf")
}

/// Signs in with `token` through the login form; returns the session cookie (name=value) and
/// the whole Set-Cookie line.
pub async fn sign_in_set_cookie(c: &reqwest::Client, web: &str, token: &str) -> (String, String) {
    let r = c.get(format!("{web}/login")).send().await.unwrap();
    let login_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    let login_cookie = login_cookie.split(';').next().unwrap().to_string();
    let form = csrf(&r.text().await.unwrap());
    let r = c
        .post(format!("{web}/login"))
        .header("cookie", &login_cookie)
        .form(&[("csrf", form.as_str()), ("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "sign-in");
    let set = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("jh_session="))
        .expect("a session cookie");
    (set.split(';').next().unwrap().to_string(), set)
}

/// Signs in with `token`; returns the session cookie (name=value).
pub async fn sign_in(c: &reqwest::Client, web: &str, token: &str) -> String {
    sign_in_set_cookie(c, web, token).await.0
}
