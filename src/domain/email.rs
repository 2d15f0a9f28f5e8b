//! Email addresses as the alert recipients need them: checked once, before they are stored.

/// Longest accepted address, in characters (all ASCII, so bytes too).
pub const ADDRESS_MAX: usize = 254;
/// Longest accepted local part (before the `@`).
pub const LOCAL_PART_MAX: usize = 64;

/// A pragmatic check: one `@`, a non-empty local part, a dotted domain, no spaces or
/// angle brackets, at most [`ADDRESS_MAX`] characters. Mail servers have the final word.
pub fn is_valid(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    address.len() <= ADDRESS_MAX
        && !local.is_empty()
        && local.len() <= LOCAL_PART_MAX
        && !local.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && address.chars().all(|c| {
            c.is_ascii_graphic() && !matches!(c, '<' | '>' | '(' | ')' | ',' | ';' | '"' | '\\')
        })
}

#[cfg(test)]
mod tests {
    use super::is_valid;

    #[test]
    fn ordinary_addresses_are_accepted() {
        for a in [
            "ops@example.com",
            "first.last+tag@sub.example.org",
            "a@b.co",
        ] {
            assert!(is_valid(a), "{a} should be valid");
        }
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for a in [
            "",
            "plain",
            "@example.com",
            "ops@",
            "ops@localhost",
            "ops@@example.com",
            "ops @example.com",
            "<ops@example.com>",
            "ops@example..com",
            "ops@.example.com",
            "a,b@example.com",
        ] {
            assert!(!is_valid(a), "{a:?} should be refused");
        }
    }
}
