//! Demo tokens are refused when the server runs with `JUNHENG_ENV=production`; other tokens
//! are not. A test binary of its own, because it sets the environment of the process.

use junheng_proto::v1 as pb;
use junheng_tests::*;
use junheng_workflow::ClockMode;
use tonic::Code;

#[tokio::test]
async fn demo_tokens_are_refused_in_production() {
    // SAFETY: the only test in this binary, on tokio's single-threaded test runtime: no other
    // thread reads the environment while it is set.
    unsafe { std::env::set_var("JUNHENG_ENV", "production") };
    let app = App::spawn(ClockMode::Real).await;
    let list = junheng_workflow::bootstrap::load_demo(&app.pool, at("2020-03-02T09:00:00+08:00"))
        .await
        .expect("demo loads")
        .expect("a token list");
    let leader = list
        .lines()
        .find(|l| l.starts_with("leader"))
        .and_then(|l| l.split_whitespace().last())
        .expect("a demo leader token")
        .to_string();
    let s = expect_code(
        app.campaigns()
            .list_campaigns(auth(&leader, pb::ListCampaignsRequest {}))
            .await,
        Code::Unauthenticated,
    );
    assert!(s.message().contains("production"), "{}", s.message());
    app.campaigns()
        .list_campaigns(auth(OFFICE_TOKEN, pb::ListCampaignsRequest {}))
        .await
        .expect("a non-demo token works");
}
