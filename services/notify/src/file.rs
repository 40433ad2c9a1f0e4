//! The local sink: a newcomer can point an endpoint at a folder and read what would
//! have been sent.

use std::io::ErrorKind;

use crate::endpoint::FileEndpoint;
use crate::message::safe_id;
use crate::{Message, Outcome};

/// Writes `<dir>/<id>.md`. The name has no timestamp so a retry overwrites the same
/// file (idempotent by id); write-then-rename keeps a reader from seeing half a file.
pub(crate) async fn write(ep: &FileEndpoint, msg: &Message) -> Outcome {
    let name = safe_id(&msg.id);
    let path = ep.dir.join(format!("{name}.md"));
    let tmp = ep.dir.join(format!(".{name}.md.tmp"));
    let body = msg.markdown.as_deref().unwrap_or(&msg.text);
    let content = format!(
        "# {}\n\n{}\n\n{}\n",
        msg.display_title(),
        body.trim_end(),
        msg.id_line()
    );
    let result = async {
        tokio::fs::create_dir_all(&ep.dir).await?;
        tokio::fs::write(&tmp, content.as_bytes()).await?;
        tokio::fs::rename(&tmp, &path).await
    }
    .await;
    match result {
        Ok(()) => Outcome::Delivered {
            detail: path.display().to_string(),
        },
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            Outcome::disable(format!("cannot write to {}: {e}", ep.dir.display()))
        }
        Err(e) => Outcome::retry(format!("writing {} failed: {e}", path.display())),
    }
}
