//! Whether this run is CI, where a test that lacks its server fails instead of skipping.
#![allow(dead_code)] // each test crate that includes it uses part of it

/// Whether a `CI` value means CI: anything but unset, empty, `false` or `0` (`CI=true`,
/// `CI=1`, `CI=yes` all count).
pub fn means_ci(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Whether this run is CI (the `CI` environment variable, by [`means_ci`]).
pub fn is_ci() -> bool {
    means_ci(std::env::var("CI").ok().as_deref())
}

/// Says loudly that `what` is skipped because its server is missing; under CI, fails.
pub fn skip_or_fail(what: &str) {
    if is_ci() {
        panic!("{what} (CI: a missing server is a failure, not a skip)");
    }
    eprintln!("\n*** SKIPPED: {what} ***\n");
}

#[cfg(test)]
mod tests {
    #[test]
    fn any_ci_value_but_empty_false_or_0_means_ci() {
        for v in ["true", "1", "yes", "TRUE"] {
            assert!(super::means_ci(Some(v)), "{v}");
        }
        for v in [None, Some(""), Some("false"), Some("0")] {
            assert!(!super::means_ci(v), "{v:?}");
        }
    }
}
