//! Booleans written as words: the one reading of query strings (`?is_active=yes`),
//! environment variables (`BACKUP_MONITOR_METRICS_REQUIRE_TOKEN=1`) and CSV cells.

/// The words read as `true`, in any case, around any whitespace (pydantic's set).
pub const TRUE_WORDS: [&str; 6] = ["true", "1", "yes", "on", "t", "y"];
/// The words read as `false`, in any case, around any whitespace (pydantic's set).
pub const FALSE_WORDS: [&str; 6] = ["false", "0", "no", "off", "f", "n"];

/// `Some` for one of [`TRUE_WORDS`] or [`FALSE_WORDS`], `None` for anything else
/// (including the empty string).
pub fn parse(s: &str) -> Option<bool> {
    let s = s.trim();
    let is = |words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(s));
    if is(&TRUE_WORDS) {
        Some(true)
    } else if is(&FALSE_WORDS) {
        Some(false)
    } else {
        None
    }
}

/// The accepted words, for error messages: `true/false, 1/0, yes/no, on/off, t/f, y/n`.
pub fn words() -> String {
    TRUE_WORDS
        .iter()
        .zip(FALSE_WORDS)
        .map(|(t, f)| format!("{t}/{f}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_in_any_case_and_padding_is_read() {
        for (words, value) in [(TRUE_WORDS, true), (FALSE_WORDS, false)] {
            for word in words {
                for written in [word.to_owned(), word.to_uppercase(), format!(" {word}\t")] {
                    assert_eq!(parse(&written), Some(value), "{written:?}");
                }
            }
        }
        assert_eq!(parse("False"), Some(false));
        assert_eq!(parse("Yes"), Some(true));
    }

    #[test]
    fn anything_else_is_not_a_boolean() {
        for s in [
            "", " ", "maybe", "2", "-1", "tru", "yess", "nein", "o", "1.0",
        ] {
            assert_eq!(parse(s), None, "{s:?}");
        }
    }

    #[test]
    fn the_words_are_listed_in_pairs() {
        assert_eq!(words(), "true/false, 1/0, yes/no, on/off, t/f, y/n");
    }
}
