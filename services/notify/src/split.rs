/// Splits `text` into parts of at most `max_bytes` UTF-8 bytes each.
///
/// Cuts after the last line break that fits, and otherwise at the last character
/// boundary that fits, so concatenating the parts gives back `text` exactly and
/// every part is valid UTF-8. Always returns at least one part (an empty input gives
/// one empty part).
///
/// The limit can only be exceeded when `max_bytes` is smaller than a single
/// character (below 4): that character then forms its own part rather than being
/// cut.
pub fn split_utf8(text: &str, max_bytes: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while rest.len() > max_bytes {
        let mut end = max_bytes;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            // One character wider than the limit: emit it alone instead of looping.
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        } else if let Some(nl) = rest[..end].rfind('\n') {
            end = nl + 1;
        }
        let (head, tail) = rest.split_at(end);
        parts.push(head.to_owned());
        rest = tail;
    }
    if !rest.is_empty() || parts.is_empty() {
        parts.push(rest.to_owned());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_text_is_one_part() {
        assert_eq!(split_utf8("你好", 6), vec!["你好"]);
        assert_eq!(split_utf8("", 10), vec![""]);
    }

    #[test]
    fn prefers_line_breaks() {
        let parts = split_utf8("第一行\n第二行\n第三行", 20);
        assert_eq!(parts, vec!["第一行\n第二行\n", "第三行"]);
    }

    #[test]
    fn never_cuts_a_character() {
        // 7 bytes fit two 3-byte characters, not three.
        assert_eq!(split_utf8("种子校申请", 7), vec!["种子", "校申", "请"]);
    }

    proptest! {
        #[test]
        fn parts_roundtrip_and_fit(
            text in "(\\PC|\n|[a-z ]|[种子校申请截止]){0,300}",
            max in 4usize..64,
        ) {
            let parts = split_utf8(&text, max);
            prop_assert_eq!(parts.concat(), text.clone());
            prop_assert!(!parts.is_empty());
            for p in &parts {
                prop_assert!(p.len() <= max, "part {:?} has {} bytes > {}", p, p.len(), max);
                prop_assert!(std::str::from_utf8(p.as_bytes()).is_ok());
            }
            if text.is_empty() {
                prop_assert_eq!(parts.len(), 1);
            } else {
                prop_assert!(parts.iter().all(|p| !p.is_empty()));
            }
        }
    }
}
