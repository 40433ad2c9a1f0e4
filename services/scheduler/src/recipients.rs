//! Who receives a notification, on which endpoints. Pure: configuration and school contacts in,
//! delivery targets out.

use junheng_core::Role;
use serde::Deserialize;
use uuid::Uuid;

use crate::config::Settings;

/// One delivery target: a recipient on one endpoint. `(recipient, endpoint)` is half of the
/// outbox dedupe key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `role:office`, `role:leader`, `school:<uuid>`, …
    pub recipient: String,
    /// Shown in the message ("王校长" / "县督导室").
    pub display: String,
    pub endpoint: String,
    /// Replaces the SMTP endpoint's `to` (school e-mail).
    pub to: Option<Vec<String>>,
    pub mention_mobiles: Vec<String>,
}

/// A contact stored in `schools.contacts`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Contact {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub mobile: String,
    #[serde(default)]
    pub robots: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SchoolInfo {
    pub id: Uuid,
    pub name: String,
    pub contacts: Vec<Contact>,
}

impl SchoolInfo {
    pub fn new(id: Uuid, name: String, contacts: &serde_json::Value) -> Self {
        // Malformed contacts must not stop the office's reminders: treat them as none.
        let contacts = serde_json::from_value(contacts.clone()).unwrap_or_default();
        Self { id, name, contacts }
    }
}

/// How a message names everyone holding `role`.
pub fn role_display(role: Role) -> &'static str {
    match role {
        Role::Office => "县教育局督导室",
        Role::Leader => "局领导",
        Role::Department => "业务科室",
        Role::Panel => "验收组",
        Role::School => "学校",
        Role::Scheduler => "相关人员",
    }
}

/// Targets for everyone holding `role` (the configured `recipients`; schools are reached one
/// by one through [`for_school`], so `school` has no role-wide targets).
pub fn for_role(settings: &Settings, role: Role) -> Vec<Target> {
    let list = match role {
        Role::Office => &settings.recipients.office,
        Role::Leader => &settings.recipients.leadership,
        Role::Department => &settings.recipients.department,
        Role::Panel => &settings.recipients.panel,
        Role::School | Role::Scheduler => return Vec::new(),
    };
    list.iter()
        .map(|ep| Target {
            recipient: format!("role:{role}"),
            display: role_display(role).into(),
            endpoint: ep.clone(),
            to: None,
            mention_mobiles: Vec::new(),
        })
        .collect()
}

/// Targets for one school: its contacts' robots (mentioning the contacts' mobiles), one e-mail
/// to all its contacts' addresses, and the endpoints every school receives on.
pub fn for_school(settings: &Settings, school: &SchoolInfo) -> Vec<Target> {
    let recipient = format!("school:{}", school.id);
    let display = school
        .contacts
        .iter()
        .find(|c| !c.name.is_empty())
        .map(|c| format!("{}（{}）", school.name, c.name))
        .unwrap_or_else(|| school.name.clone());
    let mut out: Vec<Target> = Vec::new();
    let mut push = |endpoint: &str, mobile: Option<&str>| {
        if let Some(t) = out.iter_mut().find(|t| t.endpoint == endpoint) {
            if let Some(m) = mobile.filter(|m| !m.is_empty())
                && !t.mention_mobiles.iter().any(|x| x == m)
            {
                t.mention_mobiles.push(m.to_owned());
            }
            return;
        }
        out.push(Target {
            recipient: recipient.clone(),
            display: display.clone(),
            endpoint: endpoint.to_owned(),
            to: None,
            mention_mobiles: mobile
                .filter(|m| !m.is_empty())
                .map(|m| vec![m.to_owned()])
                .unwrap_or_default(),
        });
    };
    for c in &school.contacts {
        for robot in &c.robots {
            // An unknown robot name is a data problem in the school record, not a reason to fail.
            if settings.endpoints.get(robot).is_some_and(|e| e.is_chat()) {
                push(robot, Some(&c.mobile));
            } else {
                tracing::warn!(school.id = %school.id, robot = %robot, "school contact names an unknown chat endpoint");
            }
        }
    }
    for ep in &settings.recipients.schools {
        push(ep, None);
    }
    if let Some(mail) = &settings.recipients.school_email {
        let emails: Vec<String> = school
            .contacts
            .iter()
            .map(|c| c.email.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect();
        if !emails.is_empty() {
            out.retain(|t| &t.endpoint != mail);
            out.push(Target {
                recipient: recipient.clone(),
                display: display.clone(),
                endpoint: mail.clone(),
                to: Some(emails),
                mention_mobiles: Vec::new(),
            });
        }
    }
    out
}

/// Targets for an obligation's owner.
pub fn for_owner(
    settings: &Settings,
    owner_role: Role,
    owner_school: Option<&SchoolInfo>,
) -> Vec<Target> {
    match (owner_role, owner_school) {
        (Role::School, Some(s)) => for_school(settings, s),
        (role, _) => for_role(settings, role),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schools_get_robots_mentions_email_and_defaults() {
        let s = Settings::from_toml(
            r#"
            database_url = "postgres://x/y"
            [endpoints.files]
            kind = "file"
            dir = "/tmp/x"
            [endpoints.wecom-a]
            kind = "wecom"
            key = "k"
            [endpoints.mail]
            kind = "smtp"
            host = "localhost"
            from = "jy@example.cn"
            to = ["placeholder@example.cn"]
            message_id_domain = "example.cn"
            [recipients]
            office = ["files", "mail"]
            schools = ["files"]
            school_email = "mail"
            "#,
            |_| None,
        )
        .unwrap();
        let school = SchoolInfo::new(
            Uuid::nil(),
            "昌乐二中".into(),
            &json!([
                {"name": "王校长", "email": "wang@example.cn", "mobile": "13800000001", "robots": ["wecom-a", "missing"]},
                {"name": "李主任", "email": "li@example.cn", "mobile": "13800000002", "robots": ["wecom-a"]}
            ]),
        );
        let t = for_school(&s, &school);
        assert_eq!(t.len(), 3, "{t:?}");
        assert_eq!(t[0].endpoint, "wecom-a");
        assert_eq!(t[0].mention_mobiles, vec!["13800000001", "13800000002"]);
        assert_eq!(t[0].display, "昌乐二中（王校长）");
        assert_eq!(t[1].endpoint, "files");
        assert_eq!(t[2].endpoint, "mail");
        assert_eq!(
            t[2].to.as_deref(),
            Some(&["wang@example.cn".to_string(), "li@example.cn".to_string()][..])
        );
        let office = for_role(&s, Role::Office);
        assert_eq!(
            office
                .iter()
                .map(|t| t.endpoint.as_str())
                .collect::<Vec<_>>(),
            vec!["files", "mail"]
        );
        assert!(
            office
                .iter()
                .all(|t| t.recipient == "role:office" && t.to.is_none())
        );
    }
}
