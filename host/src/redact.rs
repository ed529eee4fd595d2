//! Keeping secrets out of logs and messages: passwords in URLs
//! (`amqp://user:pass@…`, `mongodb://…`) are shown as `***`.

/// `scheme://user:secret@host/…` → `scheme://user:***@host/…`; anything else unchanged.
/// Works on text that is not a valid URL too, so a typo never leaks a password.
pub fn mask_url(text: &str) -> String {
    let Some(start) = text.find("://").map(|i| i + 3) else {
        return text.to_owned();
    };
    let rest = &text[start..];
    // The user-info part ends at the last '@' before the path.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return text.to_owned();
    };
    let Some(colon) = rest[..at].find(':') else {
        return text.to_owned();
    };
    format!("{}{}:***{}", &text[..start], &rest[..colon], &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::mask_url;

    #[test]
    fn masks_passwords_only() {
        assert_eq!(
            mask_url("amqp://u:p@h:5672/%2f?x=1"),
            "amqp://u:***@h:5672/%2f?x=1"
        );
        assert_eq!(mask_url("mongodb://a:b:c@h/db"), "mongodb://a:***@h/db");
        assert_eq!(mask_url("amqp://u@h/"), "amqp://u@h/");
        assert_eq!(mask_url("file:///tmp/x"), "file:///tmp/x");
        assert_eq!(mask_url("amqp://u:p@h/path@x"), "amqp://u:***@h/path@x");
        assert_eq!(mask_url("not a url"), "not a url");
    }
}

/// `text` cut to at most `max` characters (with `…` when cut), for quoting a value of
/// any size in a log line or an error message.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

#[cfg(test)]
mod shorten_tests {
    #[test]
    fn cuts_on_characters() {
        assert_eq!(super::shorten("abc", 3), "abc");
        assert_eq!(super::shorten("abcd", 3), "abc…");
        assert_eq!(super::shorten("ééé", 2), "éé…");
    }
}
