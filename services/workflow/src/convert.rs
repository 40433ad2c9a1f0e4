//! Proto ⇄ domain conversion, in one place. Parsing a request field either yields a domain
//! value or a field violation naming the field.

use chrono::{DateTime, Utc};
use junheng_core::notice::NoticeKind;
use junheng_core::values::{Mobile, SchoolCode};
use junheng_core::{PhaseKind, PhaseStatus, Role};
use junheng_edge::violations::{control_char, echo};
use junheng_proto::v1 as pb;
use junheng_store::objections::ObjectionRow;
use junheng_store::schools::{NewSchool, SchoolRow};
use uuid::Uuid;

use crate::app::notices::NoticeView;
use crate::error::AppResult;

/// Collects field violations so one response can list every problem: the shared checks of
/// `junheng_edge::violations`, plus the workflow's own fields.
#[derive(Default)]
pub struct Violations(junheng_edge::violations::Violations);

impl std::ops::Deref for Violations {
    type Target = junheng_edge::violations::Violations;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Violations {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Violations {
    pub fn phase(&mut self, field: &str, v: i32) -> PhaseKind {
        match pb::Phase::try_from(v).ok().and_then(phase_from_pb) {
            Some(p) => p,
            None => {
                self.add(
                    field,
                    "must be one of PHASE_SEED_DESIGNATION … PHASE_AWARDS",
                );
                PhaseKind::SeedDesignation
            }
        }
    }

    /// A panel's members (the phase-2 mentor panel, the phase-4 acceptance panel): at least
    /// one; each with an actor and a name of at most 100 characters, no actor listed twice.
    /// `fields` gives a member's actor and name; `member` reads the rest of member `i` (its
    /// affiliation, …; fields `members[i].…`) and builds it from the checked actor and name.
    pub fn panel_members<M, T>(
        &mut self,
        members: &[M],
        fields: impl Fn(&M) -> (&str, &str),
        mut member: impl FnMut(&mut Self, usize, &M, String, String) -> T,
    ) -> Vec<T> {
        if members.is_empty() {
            self.add("members", "at least one panel member");
        }
        let mut out = Vec::with_capacity(members.len());
        let mut seen = std::collections::BTreeSet::new();
        for (i, m) in members.iter().enumerate() {
            let (actor, name) = fields(m);
            let actor = self.text(&format!("members[{i}].actor"), actor, 100);
            let name = self.text(&format!("members[{i}].name"), name, 100);
            let fresh = seen.insert(actor.clone());
            out.push(member(self, i, m, actor, name));
            if !fresh {
                self.add(format!("members[{i}].actor"), "listed twice");
            }
        }
        out
    }

    /// A required id of one kind (`CampaignId`, `SchoolId`, …): a violation naming `field`
    /// when it is empty or not a UUID, as [`uuid`](junheng_edge::violations::Violations::uuid).
    pub fn id<T: From<Uuid>>(&mut self, field: &str, s: &str) -> T {
        T::from(self.0.uuid(field, s))
    }

    pub fn finish(self) -> AppResult<()> {
        Ok(self.0.finish()?)
    }
}

pub fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

pub fn from_ts(t: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
}

pub fn phase_from_pb(p: pb::Phase) -> Option<PhaseKind> {
    Some(match p {
        pb::Phase::Unspecified => return None,
        pb::Phase::SeedDesignation => PhaseKind::SeedDesignation,
        pb::Phase::MentorSelection => PhaseKind::MentorSelection,
        pb::Phase::Pairing => PhaseKind::Pairing,
        pb::Phase::Acceptance => PhaseKind::Acceptance,
        pb::Phase::Awards => PhaseKind::Awards,
    })
}

pub fn phase_to_pb(p: PhaseKind) -> pb::Phase {
    match p {
        PhaseKind::SeedDesignation => pb::Phase::SeedDesignation,
        PhaseKind::MentorSelection => pb::Phase::MentorSelection,
        PhaseKind::Pairing => pb::Phase::Pairing,
        PhaseKind::Acceptance => pb::Phase::Acceptance,
        PhaseKind::Awards => pb::Phase::Awards,
    }
}

pub fn phase_status_to_pb(s: PhaseStatus) -> pb::PhaseStatus {
    match s {
        PhaseStatus::NotOpen => pb::PhaseStatus::NotOpen,
        PhaseStatus::Open => pb::PhaseStatus::Open,
        PhaseStatus::Completed => pb::PhaseStatus::Completed,
    }
}

pub fn role_to_pb(r: Role) -> pb::Role {
    match r {
        Role::Office => pb::Role::Office,
        Role::Department => pb::Role::Department,
        Role::Panel => pb::Role::Panel,
        Role::School => pb::Role::School,
        Role::Leader => pb::Role::Leader,
        Role::Scheduler => pb::Role::Scheduler,
    }
}

pub fn role_from_pb(r: pb::Role) -> Option<Role> {
    Some(match r {
        pb::Role::Unspecified => return None,
        pb::Role::Office => Role::Office,
        pb::Role::Department => Role::Department,
        pb::Role::Panel => Role::Panel,
        pb::Role::School => Role::School,
        pb::Role::Leader => Role::Leader,
        pb::Role::Scheduler => Role::Scheduler,
    })
}

pub fn level_from_pb(l: pb::SchoolLevel) -> Option<&'static str> {
    Some(match l {
        pb::SchoolLevel::Unspecified => return None,
        pb::SchoolLevel::Primary => "primary",
        pb::SchoolLevel::Junior => "junior",
        pb::SchoolLevel::NineYear => "nine_year",
    })
}

pub fn level_to_pb(s: &str) -> pb::SchoolLevel {
    match s {
        "primary" => pb::SchoolLevel::Primary,
        "junior" => pb::SchoolLevel::Junior,
        "nine_year" => pb::SchoolLevel::NineYear,
        _ => pb::SchoolLevel::Unspecified,
    }
}

pub fn notice_kind_from_pb(k: pb::NoticeKind) -> Option<NoticeKind> {
    Some(match k {
        pb::NoticeKind::Unspecified => return None,
        pb::NoticeKind::SeedCandidates => NoticeKind::SeedCandidates,
        pb::NoticeKind::SeedSupplementary => NoticeKind::SeedSupplementary,
        pb::NoticeKind::Results => NoticeKind::Results,
    })
}

pub fn notice_kind_to_pb(k: NoticeKind) -> pb::NoticeKind {
    match k {
        NoticeKind::SeedCandidates => pb::NoticeKind::SeedCandidates,
        NoticeKind::SeedSupplementary => pb::NoticeKind::SeedSupplementary,
        NoticeKind::Results => pb::NoticeKind::Results,
    }
}

pub fn contacts_from_json(v: &serde_json::Value) -> Vec<pb::Contact> {
    let s = |c: &serde_json::Value, k: &str| {
        c.get(k)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_string()
    };
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|c| pb::Contact {
                    name: s(c, "name"),
                    email: s(c, "email"),
                    mobile: s(c, "mobile"),
                    robots: c
                        .get("robots")
                        .and_then(|r| r.as_array())
                        .map(|r| {
                            r.iter()
                                .filter_map(|x| x.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn school_to_pb(r: &SchoolRow) -> pb::School {
    pb::School {
        id: r.id.to_string(),
        campaign_id: r.campaign_id.to_string(),
        code: r.code.clone(),
        name: r.name.clone(),
        level: level_to_pb(&r.level) as i32,
        town: r.town.clone(),
        principal: r.principal.clone(),
        contacts: contacts_from_json(&r.contacts),
        state: r.state.code().into(),
        state_label: r.state.label().into(),
        version: r.version,
        principal_id: r.principal_id.to_string(),
    }
}

pub fn objection_to_pb(o: &ObjectionRow) -> pb::Objection {
    pb::Objection {
        id: o.id.to_string(),
        notice_id: o.notice_id.to_string(),
        school_id: o.school_id.to_string(),
        objector_name: o.objector_name.clone(),
        grounds: o.grounds.clone(),
        evidence: o.evidence.clone(),
        status: o.status.code().into(),
        resolution: o.resolution.clone(),
        filed_at: Some(ts(o.filed_at)),
    }
}

/// A notice as shown at `now` (open until its period ends or the office closes it).
pub fn notice_to_pb(v: &NoticeView, now: DateTime<Utc>) -> pb::Notice {
    let n = &v.row;
    let kind = notice_kind_to_pb(n.kind);
    pb::Notice {
        id: n.id.to_string(),
        campaign_id: n.campaign_id.to_string(),
        kind: kind as i32,
        title: n.title.clone(),
        school_ids: v.schools.iter().map(ToString::to_string).collect(),
        starts_at: Some(ts(n.starts_at)),
        ends_at: Some(ts(n.ends_at)),
        status: if n.closed_at.is_some() || now >= n.ends_at {
            "ended".into()
        } else {
            "open".into()
        },
        objections: v.objections.iter().map(objection_to_pb).collect(),
    }
}

/// (indicator, score) pairs as given, for the core to check.
/// Indicator scores as pairs, each indicator code checked as text (`{field}[i].indicator`);
/// whether the codes exist in the campaign's definition the rule core decides.
pub fn indicator_pairs(
    v: &mut Violations,
    field: &str,
    scores: &[pb::IndicatorScore],
) -> Vec<(String, f64)> {
    scores
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let code = v.text(&format!("{field}[{i}].indicator"), &s.indicator, 50);
            v.optional_text(&format!("{field}[{i}].note"), &s.note, 2000);
            (code, s.score)
        })
        .collect()
}

/// The most schools one RegisterSchools (or one import) registers.
pub const MAX_BATCH: usize = 20_000;

/// Checks one registration row, adding violations under `schools[i].…`; the row once its code
/// and level parse (`None` otherwise: the call is refused with the violations anyway).
/// Shared by RegisterSchools and ImportSchools, so an imported row is checked exactly like a
/// registered one. Codes, e-mail addresses and mobile numbers are parsed here, once, and the
/// stored contacts are written from the parsed values.
pub(crate) fn check_school(v: &mut Violations, i: usize, s: &pb::NewSchool) -> Option<NewSchool> {
    let f = |name: &str| format!("schools[{i}].{name}");
    let raw_code = s.code.trim();
    let code = SchoolCode::parse(raw_code);
    if code.is_none() {
        v.add(
            f("code"),
            format!("`{}` is not a 10-digit school code", echo(raw_code)),
        );
    }
    let name = v.text(&f("name"), &s.name, 100);
    let level = pb::SchoolLevel::try_from(s.level)
        .ok()
        .and_then(level_from_pb);
    if level.is_none() {
        v.add(
            f("level"),
            "must be SCHOOL_LEVEL_PRIMARY, SCHOOL_LEVEL_JUNIOR or SCHOOL_LEVEL_NINE_YEAR",
        );
    }
    let town = v.text(&f("town"), &s.town, 50);
    let principal = v.text(&f("principal"), &s.principal, 50);
    let mut contacts = Vec::with_capacity(s.contacts.len());
    for (j, c) in s.contacts.iter().enumerate() {
        let cf = |n: &str| format!("schools[{i}].contacts[{j}].{n}");
        v.optional_text(&cf("name"), &c.name, 50);
        let email = v.email_address(&cf("email"), &c.email);
        let raw_mobile = c.mobile.trim();
        let mobile = if raw_mobile.is_empty() {
            None
        } else {
            let m = Mobile::parse(raw_mobile);
            if m.is_none() {
                v.add(
                    cf("mobile"),
                    format!("`{}` is not an 11-digit mobile number", echo(raw_mobile)),
                );
            }
            m
        };
        if c.email.trim().is_empty() && raw_mobile.is_empty() && c.robots.is_empty() {
            v.add(
                cf("email"),
                "a contact needs an email, a mobile number or a robot",
            );
        }
        for (k, r) in c.robots.iter().enumerate() {
            if r.trim().is_empty() || r.len() > 100 || control_char(r).is_some() {
                v.add(
                    format!("schools[{i}].contacts[{j}].robots[{k}]"),
                    "a robot reference is 1 to 100 characters",
                );
            }
        }
        contacts.push(serde_json::json!({
            "name": c.name.trim(),
            "email": email.as_ref().map_or("", |e| e.as_str()),
            "mobile": mobile.as_ref().map_or("", |m| m.as_str()),
            "robots": c.robots,
        }));
    }
    Some(NewSchool {
        code: code?,
        name,
        level: level?.to_string(),
        town,
        principal,
        contacts: serde_json::Value::Array(contacts),
    })
}
