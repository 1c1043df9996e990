//! Payment reference codes for bank transfer and Sofort: `XW-DAR-E99-X` (wmde.md §3).
//!
//! Two prefix characters (`XW` known donor, `XR` anonymous donor, `XM` membership fee), six random characters and
//! one checksum character, all from the 19-character set `ACDEFKLMNPRTWXYZ349`. The checksum
//! follows WMDE's `doc/transfer_codes.md`: the sum of the hexadecimal digit values of the MD5
//! of the first eight characters, modulo 19, indexes the character set.

use md5::{Digest, Md5};
use rand::Rng;

/// The characters a code is made of (no look-alikes such as `0`/`O` or `5`/`S`).
pub const CHARACTERS: &[u8; 19] = b"ACDEFKLMNPRTWXYZ349";

/// A fresh random code, formatted with dashes.
pub fn generate(anonymous: bool) -> String {
    with_prefix(if anonymous { "XR" } else { "XW" })
}

/// A fresh random code with a two-character prefix from [`CHARACTERS`] (`XM` for membership
/// fees paid by bank transfer).
pub fn with_prefix(prefix: &str) -> String {
    let mut rng = rand::thread_rng();
    let code: String = (0..6)
        .map(|_| char::from(CHARACTERS[rng.gen_range(0..CHARACTERS.len())]))
        .collect();
    let check = checksum(&format!("{prefix}{code}"));
    format!("{prefix}-{}-{}-{check}", &code[..3], &code[3..])
}

/// The checksum character of the first eight characters of a code.
pub fn checksum(first_eight: &str) -> char {
    let digest = hex::encode(Md5::digest(first_eight.as_bytes()));
    let sum: u32 = digest.chars().filter_map(|c| c.to_digit(16)).sum();
    char::from(CHARACTERS[(sum % 19) as usize])
}

/// Whether `code` (dashes and other separators allowed) is nine valid characters with a
/// matching checksum.
pub fn is_valid(code: &str) -> bool {
    let clean: String = code
        .chars()
        .filter(|c| c.is_ascii() && CHARACTERS.contains(&(*c as u8)))
        .collect();
    clean.len() == 9 && clean[8..].starts_with(checksum(&clean[..8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_have_the_documented_shape_and_a_valid_checksum() {
        for anonymous in [false, true] {
            let code = generate(anonymous);
            assert_eq!(code.len(), 12, "{code}");
            assert!(code.starts_with(if anonymous { "XR-" } else { "XW-" }));
            assert_eq!(code.matches('-').count(), 3);
            assert!(is_valid(&code), "{code}");
        }
    }

    /// Known answers, computed independently (Python's `hashlib.md5` over the documented
    /// rule): the sum of the MD5's hex digits modulo 19 indexes `ACDEFKLMNPRTWXYZ349`.
    #[test]
    fn checksums_match_known_answers() {
        for (first_eight, expected) in [
            ("XWDARE99", 'T'),
            ("XRDARE99", '9'),
            ("XWACDEFK", '4'),
            ("XW349ZYX", '4'),
            ("XWCARE99", '9'),
            ("XWDAREA9", 'W'),
        ] {
            assert_eq!(checksum(first_eight), expected, "{first_eight}");
        }
        assert!(is_valid("XW-DAR-E99-T"));
        assert!(
            !is_valid("xw dar e99 t"),
            "lower case is not the character set"
        );
        // The documentation's format example is not a valid code.
        assert!(!is_valid("XW-DAR-E99-X"));
    }

    #[test]
    fn a_changed_character_breaks_the_checksum() {
        // One change in 19 keeps the checksum by chance (of the 108 single changes of
        // XWDARE99's six code characters, 5 do: XWDERE99, XWDPRE99, XWDARW99, XWDAREC9,
        // XWDAREW9); these do not.
        for altered in [
            "XW-CAR-E99-T",
            "XW-DAR-EA9-T",
            "XR-DAR-E99-T",
            "XW-DAR-E99-9",
        ] {
            assert!(!is_valid(altered), "{altered}");
        }
        let base = "XWDARE99";
        let kept = (2..8)
            .flat_map(|i| {
                CHARACTERS
                    .iter()
                    .filter(move |c| **c != base.as_bytes()[i])
                    .map(move |c| {
                        let mut s = base.as_bytes().to_vec();
                        s[i] = *c;
                        String::from_utf8(s).unwrap()
                    })
            })
            .filter(|s| checksum(s) == 'T')
            .collect::<Vec<_>>();
        assert_eq!(
            kept,
            ["XWDERE99", "XWDPRE99", "XWDARW99", "XWDAREC9", "XWDAREW9"]
        );
    }

    #[test]
    fn many_generated_codes_all_validate() {
        for i in 0..2_000 {
            assert!(is_valid(&generate(i % 2 == 0)));
        }
    }
}
