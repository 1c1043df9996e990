//! Payment reference codes for bank transfer and Sofort: `XW-DAR-E99-X` (wmde.md §3).
//!
//! Two prefix characters (`XW` known donor, `XR` anonymous donor), six random characters and
//! one checksum character, all from the 19-character set `ACDEFKLMNPRTWXYZ349`. The checksum
//! follows WMDE's `doc/transfer_codes.md`: the sum of the hexadecimal digit values of the MD5
//! of the first eight characters, modulo 19, indexes the character set.

use md5::{Digest, Md5};
use rand::Rng;

/// The characters a code is made of (no look-alikes such as `0`/`O` or `5`/`S`).
pub const CHARACTERS: &[u8; 19] = b"ACDEFKLMNPRTWXYZ349";

/// A fresh random code, formatted with dashes.
pub fn generate(anonymous: bool) -> String {
    let prefix = if anonymous { "XR" } else { "XW" };
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

    #[test]
    fn a_changed_character_breaks_the_checksum() {
        let code = generate(false);
        let mut chars: Vec<char> = code.chars().collect();
        chars[4] = if chars[4] == 'A' { 'C' } else { 'A' };
        let altered: String = chars.into_iter().collect();
        // One in 19 alterations keeps the checksum by chance; try the neighbour as well.
        let mut chars2: Vec<char> = code.chars().collect();
        chars2[5] = if chars2[5] == 'A' { 'C' } else { 'A' };
        let altered2: String = chars2.into_iter().collect();
        assert!(!(is_valid(&altered) && is_valid(&altered2)));
    }
}
