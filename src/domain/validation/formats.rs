//! The syntax of bank accounts and email addresses: IBAN (shape, length, mod-97 checksum),
//! BIC and a pragmatic email check.

/// IBAN lengths of common countries; others must be 15 to 34 characters long.
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AT", 20),
    ("BE", 16),
    ("CH", 21),
    ("DE", 22),
    ("ES", 24),
    ("FR", 27),
    ("GB", 22),
    ("IT", 27),
    ("LU", 20),
    ("NL", 18),
];

/// Whether `iban` (spaces allowed, any case) has a valid shape, length and mod-97 checksum.
pub fn iban_is_valid(iban: &str) -> bool {
    let s: String = iban
        .chars()
        .filter(|c| *c != ' ')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let b = s.as_bytes();
    if !(15..=34).contains(&b.len())
        || !b[..2].iter().all(u8::is_ascii_uppercase)
        || !b[2..4].iter().all(u8::is_ascii_digit)
        || !b.iter().all(u8::is_ascii_alphanumeric)
    {
        return false;
    }
    if let Some((_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| c.as_bytes() == &b[..2]) {
        if b.len() != *len {
            return false;
        }
    }
    // Move the first four characters to the end, letters become 10..35, remainder mod 97 is 1.
    let mut rem: u32 = 0;
    for &c in b[4..].iter().chain(&b[..4]) {
        let v = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// Whether `bic` is 4 bank letters, 2 country letters, 2 location characters and an optional
/// 3-character branch.
pub fn bic_is_valid(bic: &str) -> bool {
    let b = bic.as_bytes();
    (b.len() == 8 || b.len() == 11)
        && b[..6].iter().all(u8::is_ascii_uppercase)
        && b[6..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// A pragmatic email syntax check: one local part of at most 64 characters without spaces, an
/// `@`, and a domain of dot-separated labels ending in a top-level domain of 2+ letters.
pub fn email_is_valid(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.chars().count() <= 64
        && !local.contains('@')
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| !c.is_whitespace() && !c.is_control());
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.chars().count() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic));
    local_ok && domain_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iban_checksums_are_verified() {
        assert!(iban_is_valid("DE89370400440532013000"));
        assert!(iban_is_valid("gb82 west 1234 5698 7654 32"));
        assert!(!iban_is_valid("DE89370400440532013001"));
        assert!(!iban_is_valid("DE8937040044053201300"));
        assert!(!iban_is_valid("DE89-3704-0044-0532-0130-00"));
        assert!(!iban_is_valid(""));
        assert!(!iban_is_valid("ÄÖ89370400440532013000"));
    }

    #[test]
    fn bics_have_eight_or_eleven_characters() {
        assert!(bic_is_valid("COBADEFF"));
        assert!(bic_is_valid("COBADEFFXXX"));
        assert!(!bic_is_valid("COBADEF"));
        assert!(!bic_is_valid("cobadeffxxx"));
        assert!(!bic_is_valid("C0BADEFF"));
    }

    #[test]
    fn email_syntax_is_checked() {
        for good in [
            "a@example.org",
            "first.last+tag@sub.example.de",
            "x@bücher.de",
        ] {
            assert!(email_is_valid(good), "{good}");
        }
        for bad in [
            "",
            "a@",
            "@example.org",
            "a b@example.org",
            "a@example",
            "a@-x.org",
            "a@x..org",
            "a@x.o1",
        ] {
            assert!(!email_is_valid(bad), "{bad}");
        }
    }
}
