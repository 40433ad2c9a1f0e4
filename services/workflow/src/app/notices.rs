//! The notice read model: a notice with its schools and objections.

use junheng_core::SchoolId;
use junheng_store::PgConnection;
use junheng_store::notices::NoticeRow;
use junheng_store::objections::ObjectionRow;
use junheng_store::{notices, objections};

use crate::error::AppResult;

pub struct NoticeView {
    pub row: NoticeRow,
    pub schools: Vec<SchoolId>,
    pub objections: Vec<ObjectionRow>,
}

pub async fn view(conn: &mut PgConnection, row: NoticeRow) -> AppResult<NoticeView> {
    let schools = notices::notice_school_ids(conn, row.notice_id()).await?;
    let objections = objections::notice_objections(conn, row.notice_id()).await?;
    Ok(NoticeView {
        row,
        schools,
        objections,
    })
}
