//! What a notification is about: the vocabulary the pure `schedule` and
//! the outbox share, importing nothing of the crate, so neither imports the other for it.

use junheng_notify::templates::TemplateKind;

/// What a notification is about; `kind` is also the template name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Reminder,
    Overdue,
    NoticeExpiry,
    PhaseSummary,
    DailyDigest,
}

impl Kind {
    pub fn template(self) -> TemplateKind {
        match self {
            Kind::Reminder => TemplateKind::Reminder,
            Kind::Overdue => TemplateKind::Overdue,
            Kind::NoticeExpiry => TemplateKind::NoticeExpiry,
            Kind::PhaseSummary => TemplateKind::PhaseSummary,
            Kind::DailyDigest => TemplateKind::DailyDigest,
        }
    }
    pub fn code(self) -> &'static str {
        self.template().name()
    }
}
