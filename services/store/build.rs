// `sqlx::migrate!` embeds the migrations at compile time but cannot tell cargo that a new file
// appeared; this makes adding a migration rebuild the crate (as sqlx's documentation advises).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
