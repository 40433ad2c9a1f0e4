//! The page frame every page shares: `lang="zh-CN"`, a skip link, large type and high
//! contrast for older readers, a print stylesheet, and the sign-out form when signed in.

use axum::http::header;
use axum::response::IntoResponse;
use maud::{DOCTYPE, Markup, html};

/// Who is signed in, for the page header.
pub struct Nav {
    pub who: String,
    pub csrf: String,
    /// The office sees the delivery desk's link.
    pub office: bool,
}

pub fn page(title: &str, nav: Option<&Nav>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " - 均衡 公示栏" }
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/static/site.css";
            }
            body {
                a class="skip" href="#main" { "跳到正文" }
                header class="site" {
                    nav aria-label="网站导航" {
                        a href="/" { "公示栏" }
                        @if let Some(n) = nav {
                            " "
                            a href="/dashboard" { "领导看板" }
                            @if n.office { " " a href="/desk" { "消息投递台" } }
                            span class="who" { "已登录：" (n.who) }
                            form class="inline" method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(n.csrf);
                                button type="submit" { "退出登录" }
                            }
                        } @else {
                            " "
                            a href="/login" { "工作人员登录" }
                        }
                    }
                }
                main id="main" { (body) }
            }
        }
    }
}

const CSS: &str = r#"
html { font-size: 20px; }
body { margin: 0; font-family: "WenQuanYi Micro Hei", "Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", sans-serif;
  line-height: 1.7; color: #111; background: #fff; }
main { max-width: 64rem; margin: 0 auto; padding: 1rem 1.25rem 3rem; }
header.site { background: #8b0000; color: #fff; padding: .6rem 1.25rem; }
header.site a { color: #fff; font-weight: bold; margin-right: 1rem; }
header.site .who { margin: 0 1rem; }
a { color: #0645ad; text-decoration: underline; }
a:focus, button:focus, input:focus, select:focus { outline: 3px solid #ffbf47; outline-offset: 2px; }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 1rem; top: 1rem; background: #fff; color: #000; padding: .5rem; z-index: 10; }
h1 { font-size: 1.8rem; line-height: 1.4; margin: 1rem 0; }
h2 { font-size: 1.4rem; margin: 1.5rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { border: 1px solid #555; padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { background: #eee; }
td.num, th.num { text-align: right; }
.notice h1 { text-align: center; }
.notice .meta { color: #222; border: 1px solid #555; padding: .5rem .75rem; }
.notice .sign { text-align: right; margin-top: 2rem; }
.status { font-weight: bold; }
.open { color: #005a00; }
.ended { color: #333; }
form.inline { display: inline; }
button, input, select { font: inherit; padding: .25rem .6rem; }
button { background: #8b0000; color: #fff; border: 2px solid #8b0000; cursor: pointer; }
label { display: inline-block; margin-right: .5rem; }
.filters { border: 1px solid #555; padding: .5rem .75rem; margin: .5rem 0 1rem; }
.filters label { margin-right: 1rem; }
.warn { color: #8b0000; font-weight: bold; }
.pager a { margin-right: 1rem; }
svg text { font-family: inherit; }
@media print {
  html { font-size: 12pt; }
  header.site, .skip, .noprint, form, .pager { display: none !important; }
  a { color: #000; text-decoration: none; }
  main { max-width: none; padding: 0; }
  th { background: none; }
}
"#;

pub async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        CSS,
    )
}
