//! The notice read model: a notice with its schools and objections.

use junheng_store::PgConnection;
use junheng_store::seed::{self, NoticeRow, ObjectionRow};
use uuid::Uuid;

use crate::error::AppResult;

pub struct NoticeView {
    pub row: NoticeRow,
    pub schools: Vec<Uuid>,
    pub objections: Vec<ObjectionRow>,
}

pub async fn view(conn: &mut PgConnection, row: NoticeRow) -> AppResult<NoticeView> {
    let schools = seed::notice_schools(conn, row.id).await?;
    let objections = seed::notice_objections(conn, row.id).await?;
    Ok(NoticeView {
        row,
        schools,
        objections,
    })
}
