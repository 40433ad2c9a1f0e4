//! The generated bad-input test: a foreign client that knows the API only from its descriptors.
//!
//! Both servers run for real (the workflow and the scheduler, one PostgreSQL). Walking the
//! encoded `FileDescriptorSet` in `junheng-proto`, every unary and server-streaming RPC of
//! every service, and every string field of its request (nested messages and repeated strings
//! included), is called through a dynamic codec with an otherwise valid-looking request (random
//! UUIDs for ids) and that one field set to
//!
//! - a value with a NUL byte,
//! - an over-long value (100,000 characters),
//! - for ids, codes, dates, tokens and keys (by field name), a malformed value.
//!
//! Every call must answer `INVALID_ARGUMENT` with a field violation naming that field, never
//! `INTERNAL`; no reply may be bigger than a few KiB; and the row count of every table is the
//! same afterwards. A new RPC or field is covered without editing this test.

use bytes::{Buf, BufMut};
use junheng_proto::v1 as pb;
use junheng_tests::*;
use junheng_workflow::ClockMode;
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    Value,
};
use std::sync::Arc;
use tonic::Code;
use tonic::client::Grpc;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// Passes encoded protobuf bytes through tonic unchanged.
#[derive(Debug, Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n).to_vec()))
    }
}

/// The scheduler serves this service; the workflow every other one.
const SCHEDULER_SERVICE: &str = "junheng.v1.SchedulerService";

/// How deep the walk goes into nested messages.
const MAX_DEPTH: usize = 4;

/// The biggest reply (message plus details) a refused call may send.
const MAX_REPLY_BYTES: usize = 4096;

/// Ids, codes, dates, tokens and keys: fields with a syntax of their own.
fn is_structured(name: &str) -> bool {
    name == "id"
        || name.ends_with("_id")
        || name.ends_with("_ids")
        || name == "code"
        || name.ends_with("_code")
        || name.contains("date")
        || name.ends_with("_day")
        || name.contains("token")
        || name.contains("cursor")
        || name == "idempotency_key"
        || name.ends_with("_at")
}

/// A plausible valid value for a string field, by its name.
fn plausible(name: &str) -> String {
    if name == "id" || name.ends_with("_id") || name.ends_with("_ids") {
        uuid::Uuid::new_v4().to_string()
    } else if name == "idempotency_key" {
        key()
    } else if name.contains("token") || name.contains("cursor") {
        String::new()
    } else if name.contains("date") || name.ends_with("_day") {
        "2020-05-15".into()
    } else if name.contains("sha256") {
        "0".repeat(64)
    } else if name == "code" || name.ends_with("_code") {
        "3707250001".into()
    } else if name.contains("email") {
        "someone@schools.changle.example".into()
    } else if name.contains("mobile") {
        "13800000000".into()
    } else {
        "测试".into()
    }
}

/// A malformed value for a structured field.
fn malformed(name: &str) -> &'static str {
    if name.contains("cursor") {
        "1.-5"
    } else if name.contains("token") {
        "-5"
    } else if name.contains("date") || name.ends_with("_day") {
        "2020-5-15"
    } else if name == "idempotency_key" {
        "has spaces in it"
    } else if name == "code" || name.ends_with("_code") {
        "37072500X1"
    } else if name.ends_with("_at") {
        "yesterday"
    } else {
        "not-a-uuid"
    }
}

fn is_well_known(m: &MessageDescriptor) -> bool {
    m.full_name().starts_with("google.protobuf.")
}

/// A valid-looking request: strings by name, the first non-zero value of every enum, nested
/// messages filled in (one element in repeated fields), numbers and bytes left at zero.
fn baseline(desc: &MessageDescriptor, depth: usize) -> DynamicMessage {
    let mut m = DynamicMessage::new(desc.clone());
    if depth > MAX_DEPTH || is_well_known(desc) {
        return m;
    }
    for f in desc.fields() {
        // One member of each oneof is enough (setting another would clear it).
        if let Some(o) = f.containing_oneof()
            && o.fields().next().map(|x| x.number()) != Some(f.number())
        {
            continue;
        }
        let v = match f.kind() {
            Kind::String => Value::String(plausible(f.name())),
            Kind::Enum(e) => match e.values().find(|v| v.number() != 0) {
                Some(v) => Value::EnumNumber(v.number()),
                None => continue,
            },
            Kind::Message(md) if md.full_name() == "google.protobuf.Timestamp" => {
                // 2020-04-01 00:00 UTC: inside the demo campaign, after the simulated start.
                let mut t = DynamicMessage::new(md.clone());
                t.set_field_by_name("seconds", Value::I64(1_585_699_200));
                Value::Message(t)
            }
            Kind::Message(md) if is_well_known(&md) => continue,
            Kind::Message(md) => {
                if f.is_map() {
                    continue;
                }
                Value::Message(baseline(&md, depth + 1))
            }
            _ => continue,
        };
        if f.is_list() {
            m.set_field(&f, Value::List(vec![v]));
        } else {
            m.set_field(&f, v);
        }
    }
    m
}

/// Every string field reachable from a request: its path (`schools[0].contacts[0].email`) and
/// the chain of fields leading to it.
fn string_fields(
    desc: &MessageDescriptor,
    prefix: &str,
    chain: &[FieldDescriptor],
    depth: usize,
    out: &mut Vec<(String, Vec<FieldDescriptor>)>,
) {
    if depth > MAX_DEPTH || is_well_known(desc) {
        return;
    }
    for f in desc.fields() {
        if f.is_map() {
            continue;
        }
        let mut c = chain.to_vec();
        c.push(f.clone());
        let name = if f.is_list() {
            format!("{prefix}{}[0]", f.name())
        } else {
            format!("{prefix}{}", f.name())
        };
        match f.kind() {
            Kind::String => out.push((name, c)),
            Kind::Message(md) => string_fields(&md, &format!("{name}."), &c, depth + 1, out),
            _ => {}
        }
    }
}

/// Sets the string at the end of `chain` (creating every message on the way, first elements of
/// repeated fields) to `value`.
fn set_path(m: &mut DynamicMessage, chain: &[FieldDescriptor], value: &str) {
    let f = &chain[0];
    if chain.len() == 1 {
        let v = Value::String(value.to_owned());
        if f.is_list() {
            m.set_field(f, Value::List(vec![v]));
        } else {
            m.set_field(f, v);
        }
        return;
    }
    let Kind::Message(md) = f.kind() else {
        unreachable!("only messages lead to a string")
    };
    if f.is_list() {
        let mut list = match m.get_field(f).into_owned() {
            Value::List(l) if !l.is_empty() => l,
            _ => vec![Value::Message(DynamicMessage::new(md.clone()))],
        };
        if let Value::Message(inner) = &mut list[0] {
            set_path(inner, &chain[1..], value);
        }
        m.set_field(f, Value::List(list));
    } else {
        let mut inner = match m.get_field(f).into_owned() {
            Value::Message(x) => x,
            _ => DynamicMessage::new(md.clone()),
        };
        set_path(&mut inner, &chain[1..], value);
        m.set_field(f, Value::Message(inner));
    }
}

/// Whether a violation's field names the field at `path`: the path itself (with or without
/// indices), or its last component.
fn names_field(violation: &str, path: &str) -> bool {
    let strip = |s: &str| {
        let mut out = String::new();
        let mut skip = false;
        for c in s.chars() {
            match c {
                '[' => skip = true,
                ']' => skip = false,
                _ if !skip => out.push(c),
                _ => {}
            }
        }
        out
    };
    let (v, p) = (strip(violation), strip(path));
    violation == path
        || v == p
        || v.ends_with(&format!(".{p}"))
        || v.starts_with(&format!("{p}."))
        || p.ends_with(&format!(".{v}"))
}

async fn call(
    channel: Channel,
    method: &MethodDescriptor,
    token: &str,
    body: Vec<u8>,
) -> Result<(), tonic::Status> {
    let mut grpc = Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path: http::uri::PathAndQuery =
        format!("/{}/{}", method.parent_service().full_name(), method.name())
            .parse()
            .expect("path");
    let mut req = tonic::Request::new(body);
    req.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).expect("ascii"),
    );
    if method.is_server_streaming() {
        let mut s = grpc.server_streaming(req, path, Raw).await?.into_inner();
        // A refused stream may answer with headers first and the status as the first item; an
        // accepted one may stay open without a message, which is an acceptance too.
        match tokio::time::timeout(std::time::Duration::from_secs(3), s.message()).await {
            Ok(r) => r.map(|_| ()),
            Err(_) => Ok(()),
        }
    } else {
        grpc.unary(req, path, Raw).await.map(|_| ())
    }
}

/// Row counts of every table of the service's schema.
async fn table_counts(pool: &sqlx::PgPool) -> Vec<(String, i64)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
         ORDER BY table_name",
    )
    .fetch_all(pool)
    .await
    .expect("tables");
    let mut out = Vec::new();
    for t in tables {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM \"{t}\"")))
                .fetch_one(pool)
                .await
                .expect("count");
        out.push((t, n));
    }
    out
}

fn scheduler_settings() -> Arc<junheng_scheduler::config::Settings> {
    let text = r#"
        database_url = "postgres://unused/unused"
        [endpoints.hook]
        kind = "webhook"
        url = "http://127.0.0.1:9/hook"
        secret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="
        [recipients]
        office = ["hook"]
        leadership = ["hook"]
        schools = ["hook"]
    "#;
    let mut s = junheng_scheduler::config::Settings::from_toml(text, |_| None).expect("settings");
    s.clock = junheng_scheduler::ClockMode::Simulated { start: None };
    Arc::new(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_string_field_of_every_request_refuses_bad_input() {
    let app = App::spawn(ClockMode::Simulated {
        start: Some(at("2020-03-01T09:00:00+08:00")),
    })
    .await;
    // A campaign exists, so calls that would find one still reach the same validation.
    let _ = changle(&app).await;
    let scheduler =
        junheng_scheduler::grpc::start(app.pool.clone(), scheduler_settings(), "127.0.0.1:0")
            .await
            .expect("scheduler starts");
    let scheduler_channel = Channel::from_shared(scheduler.url())
        .expect("url")
        .connect()
        .await
        .expect("connect to the scheduler");

    // One token per role: a call the office may not make (a panel's score sheet) is made by
    // the first role that may, so validation is reached.
    let school: uuid::Uuid = sqlx::query_scalar("SELECT id FROM schools LIMIT 1")
        .fetch_one(&app.pool)
        .await
        .expect("a school");
    let mut tokens = vec![OFFICE_TOKEN.to_owned()];
    for (name, role, school) in [
        ("科室", pb::Role::Department, String::new()),
        ("评审", pb::Role::Panel, String::new()),
        ("领导", pb::Role::Leader, String::new()),
        ("学校", pb::Role::School, school.to_string()),
        ("调度", pb::Role::Scheduler, String::new()),
    ] {
        tokens.push(app.token(name, role, &school).await);
    }

    let pool = DescriptorPool::decode(junheng_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
    let before = table_counts(&app.pool).await;
    let long = "x".repeat(100_000);
    let mut failures = Vec::new();
    let (mut rpcs, mut calls) = (0, 0);
    for service in pool.services() {
        if !service.full_name().starts_with("junheng.") {
            continue;
        }
        let channel = if service.full_name() == SCHEDULER_SERVICE {
            scheduler_channel.clone()
        } else {
            app.channel.clone()
        };
        for method in service.methods() {
            if method.is_client_streaming() {
                continue;
            }
            rpcs += 1;
            let rpc = format!("{}/{}", service.name(), method.name());
            let input = method.input();
            let mut fields = Vec::new();
            string_fields(&input, "", &[], 0, &mut fields);
            // The baseline is calibrated on the way: a field of it the server finds invalid
            // (a conditional field the guesses by name got wrong) is cleared for the next
            // calls, and a role the server turns away gives way to the next role. Every call
            // carries one bad value, so none of them can succeed by calibration.
            let mut base = baseline(&input, 0);
            let mut token = 0;
            for (path, chain) in &fields {
                let name = chain.last().expect("a field").name().to_owned();
                let mut cases = vec![
                    ("NUL", format!("长乐{}一中", '\0')),
                    ("over-long", long.clone()),
                ];
                if is_structured(&name) {
                    cases.push(("malformed", malformed(&name).to_owned()));
                }
                for (case, value) in cases {
                    let mut attempt = 0;
                    let outcome = loop {
                        attempt += 1;
                        let mut req = base.clone();
                        set_path(&mut req, chain, &value);
                        calls += 1;
                        let r = call(
                            channel.clone(),
                            &method,
                            &tokens[token],
                            req.encode_to_vec(),
                        )
                        .await;
                        let s = match r {
                            Ok(()) => break Err(format!("{rpc} {path} ({case}): accepted")),
                            Err(s) => s,
                        };
                        if s.code() == Code::PermissionDenied && token + 1 < tokens.len() {
                            token += 1;
                            continue;
                        }
                        let named: Vec<String> = s
                            .get_details_bad_request()
                            .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
                            .unwrap_or_default();
                        if s.code() == Code::InvalidArgument
                            && !named.iter().any(|f| names_field(f, path))
                            && attempt < 4
                        {
                            let mut cleared = false;
                            for f in &named {
                                if let Some((_, c)) = fields.iter().find(|(p, _)| names_field(f, p))
                                {
                                    set_path(&mut base, c, "");
                                    cleared = true;
                                }
                            }
                            if cleared {
                                continue;
                            }
                        }
                        break Ok((s, named));
                    };
                    let (s, named) = match outcome {
                        Ok(x) => x,
                        Err(f) => {
                            failures.push(f);
                            continue;
                        }
                    };
                    let size = s.message().len() + s.details().len();
                    if s.code() != Code::InvalidArgument {
                        failures.push(format!(
                            "{rpc} {path} ({case}): {:?} {}",
                            s.code(),
                            junheng_edge::violations::echo(s.message())
                        ));
                    } else if !(named.iter().any(|f| names_field(f, path))
                        || (named.is_empty() && s.message().contains(name.as_str())))
                    {
                        failures.push(format!(
                            "{rpc} {path} ({case}): violations {named:?} do not name it ({})",
                            junheng_edge::violations::echo(s.message())
                        ));
                    }
                    if size > MAX_REPLY_BYTES {
                        failures.push(format!("{rpc} {path} ({case}): reply of {size} bytes"));
                    }
                }
            }
        }
    }
    let after = table_counts(&app.pool).await;
    let changed: Vec<_> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b != a)
        .map(|(b, a)| format!("{}: {} → {}", b.0, b.1, a.1))
        .collect();
    assert!(
        rpcs >= 50 && calls > 300,
        "the walk found {rpcs} RPCs and made {calls} calls: the descriptors were not walked"
    );
    assert!(
        failures.is_empty(),
        "{} of {calls} calls were not refused as they should be:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        changed.is_empty(),
        "refused calls changed rows: {changed:?}"
    );
}

/// The test's own checks: a violation names a field by its path or its last component.
#[test]
fn names_field_matches_paths() {
    assert!(names_field("schools[0].name", "schools[0].name"));
    assert!(names_field("schools.name", "schools[0].name"));
    assert!(names_field("name", "name"));
    assert!(names_field("name", "school.name"));
    assert!(names_field("definition_toml.phases", "definition_toml"));
    assert!(!names_field("campaign_id", "name"));
    assert!(!names_field("schools[0].town", "schools[0].name"));
    assert!(is_structured("campaign_id") && is_structured("page_token"));
    assert!(!is_structured("name"));
}

/// The checks the descriptor walk cannot reach by string fields alone: the clock's bounds (a
/// timestamp), an e-mail address lettre refuses, a date without zero padding, a negative page
/// token — each refused naming its field, changing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_addresses_dates_and_page_tokens_are_bounded() {
    let app = App::spawn(ClockMode::Simulated {
        start: Some(at("2020-03-01T09:00:00+08:00")),
    })
    .await;
    let (campaign, schools) = changle(&app).await;
    let before = app.snapshot().await;
    let advance = |to: chrono::DateTime<chrono::Utc>| pb::AdvanceClockRequest {
        idempotency_key: key(),
        to: Some(ts(to)),
    };
    let year_10000 = chrono::NaiveDate::from_ymd_opt(10000, 1, 2)
        .expect("a date")
        .and_hms_opt(0, 0, 0)
        .expect("a time")
        .and_utc();
    // 10000-01-02 is past 2020 + 2; so is 2023-01-02 (the bound is on UTC years); backwards
    // is refused too.
    for to in [
        year_10000,
        at("2023-01-02T00:00:00+08:00"),
        at("2020-02-01T00:00:00+08:00"),
    ] {
        assert_invalid(
            app.admin()
                .advance_clock(auth(OFFICE_TOKEN, advance(to)))
                .await,
            "to",
        );
    }
    // Within the bound it moves (and that is the only change below).
    app.admin()
        .advance_clock(auth(OFFICE_TOKEN, advance(at("2022-12-31T12:00:00+08:00"))))
        .await
        .expect("within the campaign years plus two");
    let after_clock = app.snapshot().await;

    let mut school = demo_requests().remove(0);
    school.code = "3707259999".into();
    school.contacts[0].email = "wang@@schools.changle.example".into();
    assert_invalid(
        app.schools()
            .register_schools(auth(
                OFFICE_TOKEN,
                pb::RegisterSchoolsRequest {
                    idempotency_key: key(),
                    campaign_id: campaign.id.clone(),
                    schools: vec![school],
                },
            ))
            .await,
        "schools[0].contacts[0].email",
    );
    assert_invalid(
        app.pairing()
            .log_assistance(auth(
                OFFICE_TOKEN,
                pb::LogAssistanceRequest {
                    idempotency_key: key(),
                    mentor_school_id: schools[0].id.clone(),
                    potential_school_id: schools[1].id.clone(),
                    date: "2020-5-15".into(),
                    indicators: vec!["A1".into()],
                    description: "送教".into(),
                    evidence_ref: String::new(),
                },
            ))
            .await,
        "date",
    );
    assert_invalid(
        app.campaigns()
            .list_audit_events(auth(
                OFFICE_TOKEN,
                pb::ListAuditEventsRequest {
                    campaign_id: campaign.id.clone(),
                    page_token: "-5".into(),
                    ..Default::default()
                },
            ))
            .await,
        "page_token",
    );
    assert_eq!(app.snapshot().await, after_clock);
    assert_ne!(before, after_clock, "the clock's move is audited");
}
