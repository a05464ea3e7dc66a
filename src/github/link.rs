//! GitHub's `Link` header (RFC 8288): the `next` page of a REST listing.

/// The URL with `rel="next"` in a Link header, if any.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let mut pieces = part.split(';');
        let target = pieces.next()?.trim();
        let url = target.strip_prefix('<')?.strip_suffix('>')?;
        let is_next = pieces.any(|p| {
            let p = p.trim();
            p.strip_prefix("rel=")
                .map(|v| v.trim_matches('"').split_whitespace().any(|r| r == "next"))
                .unwrap_or(false)
        });
        is_next.then(|| url.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_next_among_githubs_relations() {
        let h = r#"<https://api.github.com/repositories/1/pulls?page=2>; rel="next", <https://api.github.com/repositories/1/pulls?page=9>; rel="last""#;
        assert_eq!(
            next_link(h).as_deref(),
            Some("https://api.github.com/repositories/1/pulls?page=2")
        );
        let last_page = r#"<https://x/?page=1>; rel="first", <https://x/?page=8>; rel="prev""#;
        assert_eq!(next_link(last_page), None);
        assert_eq!(next_link(""), None);
        assert_eq!(next_link("garbage; rel=next"), None);
    }

    proptest! {
        #[test]
        fn round_trips_any_next_url(path in "[a-z0-9/]{1,30}", page in 1u32..10_000) {
            let url = format!("https://h/{path}?page={page}");
            let h = format!(r#"<https://h/first>; rel="first", <{url}>; rel="next", <https://h/last>; rel="last""#);
            prop_assert_eq!(next_link(&h), Some(url));
        }

        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = next_link(&s);
        }
    }
}
