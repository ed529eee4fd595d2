//! Helpers for Ceilometer compatibility that several plugins need.

/// Converts a Python `re.sub` replacement (`\1`, `\g<name>`) to the form the
/// `regex` and `fancy-regex` crates take (`${1}`, `${name}`), escaping literal `$`:
/// Ceilometer's pipeline and meter files are written with Python's back-references.
///
/// ```
/// use ceilo_plugin_api::compat::python_replacement;
/// assert_eq!(python_replacement(r"disk.\1.kilobytes"), "disk.${1}.kilobytes");
/// assert_eq!(python_replacement("$5"), "$$5");
/// ```
pub fn python_replacement(py: &str) -> String {
    let mut out = String::with_capacity(py.len());
    let mut chars = py.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut n = String::new();
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        n.push(d);
                        chars.next();
                    }
                    out.push_str(&format!("${{{n}}}"));
                }
                Some('g') => {
                    chars.next();
                    let mut name = String::new();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        for d in chars.by_ref() {
                            if d == '>' {
                                break;
                            }
                            name.push(d);
                        }
                    }
                    out.push_str(&format!("${{{name}}}"));
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            other => out.push(other),
        }
    }
    out
}
