//! Java `.properties` text: the format of `namesrv.properties`, of UPDATE_NAMESRV_CONFIG
//! bodies and of GET_NAMESRV_CONFIG answers.
//!
//! Reading follows `java.util.Properties.load`: `#` and `!` start comment lines; a key ends
//! at the first unescaped `=`, `:` or whitespace; whitespace around the separator is skipped;
//! a line ending in an odd number of backslashes continues on the next line (whose leading
//! whitespace is dropped); `\t`, `\n`, `\r`, `\f` and `\uXXXX` are unescaped and any other
//! escaped character stands for itself. Writing follows `MixAll.properties2String`: one
//! `key=value` line per entry, sorted by key, nothing escaped.

use std::collections::BTreeMap;

/// The entries of `text`, in file order (a repeated key appears twice; the last one wins
/// when applied).
pub fn parse(text: &str) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    let mut lines = text.lines();
    while let Some(first) = lines.next() {
        let first = first.trim_start_matches([' ', '\t', '\u{c}']);
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = String::from(first);
        while ends_with_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some(next) => logical.push_str(next.trim_start_matches([' ', '\t', '\u{c}'])),
                None => break,
            }
        }
        entries.push(split_entry(&logical));
    }
    entries
}

/// `key=value` lines sorted by key, as Java's `properties2String(properties, true)`.
pub fn format(entries: &BTreeMap<String, String>) -> String {
    let mut text = String::new();
    for (key, value) in entries {
        text.push_str(key);
        text.push('=');
        text.push_str(value);
        text.push('\n');
    }
    text
}

/// True when the line ends in an odd number of backslashes.
fn ends_with_continuation(line: &str) -> bool {
    line.chars().rev().take_while(|&ch| ch == '\\').count() % 2 == 1
}

fn split_entry(line: &str) -> (String, String) {
    let mut chars = line.chars().peekable();
    let mut raw_key = String::new();
    let mut escaped = false;
    while let Some(&ch) = chars.peek() {
        if !escaped && (ch == '=' || ch == ':' || ch.is_whitespace()) {
            break;
        }
        escaped = !escaped && ch == '\\';
        raw_key.push(ch);
        chars.next();
    }
    while chars.peek().is_some_and(|ch| *ch == ' ' || *ch == '\t' || *ch == '\u{c}') {
        chars.next();
    }
    if chars.peek().is_some_and(|ch| *ch == '=' || *ch == ':') {
        chars.next();
    }
    while chars.peek().is_some_and(|ch| *ch == ' ' || *ch == '\t' || *ch == '\u{c}') {
        chars.next();
    }
    let raw_value: String = chars.collect();
    (unescape(&raw_key), unescape(&raw_value))
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                // Java throws on a malformed \u escape; keep the text instead of failing.
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(decoded) if hex.len() == 4 => out.push(decoded),
                    _ => {
                        out.push_str("\\u");
                        out.push_str(&hex);
                    }
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text)
    }

    fn pair(key: &str, value: &str) -> (String, String) {
        (key.to_owned(), value.to_owned())
    }

    #[test]
    fn separators_comments_and_whitespace() {
        let text = "# comment\n! also\n\n  listenPort = 9877\nkvConfigPath:/tmp/kv.json\n\
                    orderMessageEnable true\nempty=\nbare\n";
        assert_eq!(
            pairs(text),
            vec![
                pair("listenPort", "9877"),
                pair("kvConfigPath", "/tmp/kv.json"),
                pair("orderMessageEnable", "true"),
                pair("empty", ""),
                pair("bare", ""),
            ]
        );
    }

    #[test]
    fn continuation_lines_and_escapes() {
        let text = "key = one \\\n    two\\\\\nesc\\=aped=a\\tb\\u0041\\z\r\nwin=dows\r\n";
        assert_eq!(
            pairs(text),
            vec![pair("key", "one two\\"), pair("esc=aped", "a\tbAz"), pair("win", "dows")]
        );
    }

    #[test]
    fn malformed_unicode_escape_is_kept() {
        assert_eq!(pairs("k=\\u12"), vec![pair("k", "\\u12")]);
        assert_eq!(pairs("k=\\"), vec![pair("k", "")]);
    }

    #[test]
    fn format_sorts_and_round_trips() {
        let entries =
            BTreeMap::from([("b".to_owned(), "2".to_owned()), ("a".to_owned(), "/x/y".to_owned())]);
        let text = format(&entries);
        assert_eq!(text, "a=/x/y\nb=2\n");
        assert_eq!(parse(&text).into_iter().collect::<BTreeMap<_, _>>(), entries);
    }
}
