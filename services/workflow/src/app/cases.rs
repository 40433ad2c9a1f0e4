//! Applying a school command: lock, check the version, decide, persist state and effects.

use junheng_core::Effect;
use junheng_core::SchoolId;
use junheng_core::school::{self, Ctx, SchoolCase, SchoolCommand};
use junheng_store::schools::{self, SchoolRow};

use crate::error::{AppError, AppResult};
use crate::state::{Call, Loaded, Work};

pub fn case_of(row: &SchoolRow) -> SchoolCase {
    SchoolCase {
        id: row.id,
        name: row.name.clone(),
        state: row.state,
        version: row.version,
    }
}

/// Locks the school, checks `expected_version` (0 = don't check), applies `cmd` and persists
/// the new state with the decision's effects plus `extra` effects. Returns the updated row.
pub async fn apply(
    w: &mut Work,
    call: &Call,
    camp: &Loaded,
    school_id: SchoolId,
    expected_version: i64,
    cmd: SchoolCommand,
    extra: Vec<Effect>,
) -> AppResult<SchoolRow> {
    let mut row = schools::get_for_update(w.conn(), school_id).await?;
    if row.campaign_id != camp.id() {
        return Err(AppError::NotFound(format!(
            "school {school_id} not found in campaign {}",
            camp.id()
        )));
    }
    if expected_version != 0 && expected_version != row.version {
        return Err(AppError::Aborted(format!(
            "version conflict: the school case is at version {} ({}), the request expected {expected_version}; re-read and retry",
            row.version,
            row.state.code()
        )));
    }
    let case = case_of(&row);
    let ctx = Ctx {
        now: w.now,
        def: &camp.def,
        phases: &camp.phases,
    };
    let t = school::decide(&case, &cmd, &call.actor, &ctx)?;
    let now = w.now;
    row.version = schools::set_state(w.conn(), row.id, row.version, t.to, now).await?;
    row.state = t.to;
    let mut effects = t.effects;
    effects.extend(extra);
    w.record(call, camp.id(), &effects).await?;
    Ok(row)
}
