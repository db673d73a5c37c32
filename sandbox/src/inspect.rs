//! What the tests that look into stored items share: whether an item's text names an id.

/// Whether `needle` occurs in `text` with no letter or digit either side. Contact ids are short numbers (1001,
/// 2001, ...): as plain substrings they turn up by chance inside another visitor's random hex id
/// ("visitor-41001a1e…") or a millisecond timestamp, which name no contact, and an erasure check then took an item
/// it rightly left for one of the erased contact's.
pub fn mentions(text: &str, needle: &str) -> bool {
    let alphanumeric = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    text.match_indices(needle).any(|(start, _)| {
        !alphanumeric(text[..start].chars().next_back())
            && !alphanumeric(text[start + needle.len()..].chars().next())
    })
}

#[cfg(test)]
mod tests {
    use super::mentions;

    #[test]
    fn a_needle_is_mentioned_only_as_a_whole_token() {
        assert!(mentions(r#""pk": S("CONTACT#1001")"#, "1001"));
        assert!(mentions(r#"N("1001")"#, "1001"));
        assert!(!mentions(r#"S("visitor-41001a1e9c79")"#, "1001"));
        assert!(!mentions(r#"N("1796510012345")"#, "1001"));
        assert!(mentions(
            r#"S("visitor-41001a1e9c79"), S("CONTACT#1001")"#,
            "1001"
        ));
        assert!(mentions(r#"body: S("a late secret")"#, "a late secret"));
        assert!(mentions(r#"S("visitor-a")"#, "visitor-a"));
        assert!(!mentions(r#"S("visitor-ab")"#, "visitor-a"));
    }
}
