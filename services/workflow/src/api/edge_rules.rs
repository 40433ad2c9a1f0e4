//! The edge stays an edge (issue #8): a handler parses, makes one app call and maps to proto.
//! Checked on the source so a handler that reaches for SQL, builds effects, raises a rule's
//! refusal or imports another handler fails the build's tests.

const HANDLERS: [(&str, &str); 9] = [
    ("acceptance", include_str!("acceptance.rs")),
    ("admin", include_str!("admin.rs")),
    ("award", include_str!("award.rs")),
    ("campaign", include_str!("campaign.rs")),
    ("mentor", include_str!("mentor.rs")),
    ("pairing", include_str!("pairing.rs")),
    ("school", include_str!("school.rs")),
    ("seed", include_str!("seed.rs")),
    ("sheets", include_str!("sheets.rs")),
];

#[test]
fn handlers_do_no_io_build_no_effects_and_raise_no_rule_refusals() {
    let forbidden = [
        "sqlx",
        ".conn()",
        "pool.acquire",
        "Effect::",
        "RuleError",
        "FailedPrecondition",
        "require_active",
    ];
    for (name, src) in HANDLERS {
        for f in forbidden {
            assert!(!src.contains(f), "api/{name}.rs contains `{f}`");
        }
    }
}

#[test]
fn no_handler_imports_another() {
    for (name, src) in HANDLERS {
        for (other, _) in HANDLERS {
            for pattern in [
                format!("super::{other}::"),
                format!("api::{other}::"),
                format!("super::{other};"),
            ] {
                assert!(
                    !src.contains(&pattern),
                    "api/{name}.rs imports api/{other}.rs (`{pattern}`)"
                );
            }
        }
    }
}
