//! The pure half of `verify`'s comparison: given the page texts two read models rendered
//! (see `snapshot.rs`), checksum each side and, where a page's texts differ, merge its rows by
//! key and list the differing rows and columns. No I/O; unit-tested on texts alone.

use std::cmp::Ordering;

use sha2::{Digest, Sha256};

use super::compare::{DifferenceKind, RowDifference};
use super::rows::{ColType, Layout, Value};
use super::snapshot::key_columns;

/// One page of a table as the engine rendered it.
pub(super) struct PageText {
    pub(super) rows: u64,
    /// The rows' JSON arrays in key order, one per line (empty for no row).
    pub(super) text: String,
}

/// Orders two typed keys as the keyset queries do: integers numerically, text by bytes.
pub(super) fn cmp_key(a: &[Value], b: &[Value]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (Value::I64(x), Value::I64(y)) => x.cmp(y),
            (Value::Text(x), Value::Text(y)) => x
                .as_deref()
                .map(str::as_bytes)
                .cmp(&y.as_deref().map(str::as_bytes)),
            (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
            (Value::Time(x), Value::Time(y)) => x.cmp(y),
            _ => Ordering::Equal,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// The smaller of the two sides' next page bounds (`None`: fewer than a page left on that
/// side; both `None`: the last page).
pub(super) fn shared_bound(a: Option<Vec<Value>>, b: Option<Vec<Value>>) -> Option<Vec<Value>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if cmp_key(&a, &b) == Ordering::Greater {
            b
        } else {
            a
        }),
        (a, b) => a.or(b),
    }
}

/// The raw texts of the elements of a flat JSON array: `[1, "a,\"b", null]` gives `1`,
/// `"a,\"b"` and `null`.
fn json_elements(row: &str) -> Vec<&str> {
    let row = row.trim();
    let inner = row
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(row);
    let mut out = Vec::new();
    let (mut start, mut in_string, mut escaped) = (0, false, false);
    // Byte-wise is safe: `"`, `\` and `,` never occur inside a multi-byte UTF-8 sequence.
    for (i, b) in inner.bytes().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b',' {
            out.push(inner[start..i].trim());
            start = i + 1;
        }
    }
    let last = inner[start..].trim();
    if !(out.is_empty() && last.is_empty()) {
        out.push(last);
    }
    out
}

/// A JSON element as a value: `None` for `null`, a string's content, or the literal itself.
fn json_value(element: &str) -> Option<String> {
    if element == "null" {
        None
    } else if element.starts_with('"') {
        Some(serde_json::from_str(element).unwrap_or_else(|_| element.to_owned()))
    } else {
        Some(element.to_owned())
    }
}

/// One key column of a rendered row, ordered as the engines order keys: NULL, then numbers,
/// then text by bytes.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum KeyPart {
    Null,
    Int(i64),
    Text(String),
    Other(String),
}

impl KeyPart {
    fn of(element: &str) -> Self {
        match json_value(element) {
            None => Self::Null,
            Some(s) if element.starts_with('"') => Self::Text(s),
            Some(s) => s.parse().map(Self::Int).unwrap_or(Self::Other(s)),
        }
    }
}

/// One row of a page text, split into its elements.
struct PageRow<'t> {
    text: &'t str,
    values: Vec<&'t str>,
    key: Vec<KeyPart>,
}

fn page_rows<'t>(
    text: &'t str,
    key: &'t [(usize, ColType)],
) -> impl Iterator<Item = PageRow<'t>> + 't {
    text.split('\n').filter(|t| !t.is_empty()).map(|text| {
        let values = json_elements(text);
        let key = key
            .iter()
            .map(|(i, _)| KeyPart::of(values.get(*i).copied().unwrap_or("null")))
            .collect();
        PageRow { text, values, key }
    })
}

/// The row count and running checksum of one side of a table.
#[derive(Default)]
pub(super) struct Checksum {
    rows: u64,
    hasher: Sha256,
}

impl Checksum {
    pub(super) fn add(&mut self, page: &PageText) {
        if page.rows == 0 {
            return;
        }
        // Pages join with the same newline as rows, so the page size does not matter.
        if self.rows > 0 {
            self.hasher.update(b"\n");
        }
        self.hasher.update(page.text.as_bytes());
        self.rows += page.rows;
    }

    pub(super) fn finish(self) -> (u64, String) {
        (self.rows, hex::encode(self.hasher.finalize()))
    }
}

/// The differing rows of one table found so far.
pub(super) struct Differences {
    layout: &'static Layout,
    key: Vec<(usize, ColType)>,
    max_listed: usize,
    pub(super) rows: u64,
    pub(super) listed: Vec<RowDifference>,
}

impl Differences {
    pub(super) fn new(layout: &'static Layout, max_listed: usize) -> Self {
        Self {
            layout,
            key: key_columns(layout),
            max_listed,
            rows: 0,
            listed: Vec::new(),
        }
    }

    fn list(&mut self, d: RowDifference) {
        if self.listed.len() < self.max_listed {
            self.listed.push(d);
        }
    }

    /// Merges the rows of one page's two texts by key (both are in key order).
    pub(super) fn page(&mut self, live: &str, rebuilt: &str) {
        let key = self.key.clone();
        let mut l = page_rows(live, &key).peekable();
        let mut r = page_rows(rebuilt, &key).peekable();
        loop {
            let order = match (l.peek(), r.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(a), Some(b)) => a.key.cmp(&b.key),
            };
            match order {
                Ordering::Equal => {
                    let (a, b) = (l.next().expect("peeked"), r.next().expect("peeked"));
                    if a.text != b.text {
                        self.changed(&a, &b);
                    }
                }
                Ordering::Less => {
                    let a = l.next().expect("peeked");
                    self.one_side(DifferenceKind::OnlyLive, &a);
                }
                Ordering::Greater => {
                    let b = r.next().expect("peeked");
                    self.one_side(DifferenceKind::OnlyRebuilt, &b);
                }
            }
        }
    }

    fn changed(&mut self, a: &PageRow, b: &PageRow) {
        self.rows += 1;
        let key = self.render_key(a);
        let mut listed = false;
        for (i, (column, _)) in self.layout.columns.iter().enumerate() {
            let (x, y) = (a.values.get(i), b.values.get(i));
            if x != y {
                listed = true;
                self.list(RowDifference {
                    key: key.clone(),
                    kind: DifferenceKind::Changed,
                    column: Some((*column).to_owned()),
                    live: x.and_then(|e| json_value(e)),
                    rebuilt: y.and_then(|e| json_value(e)),
                });
            }
        }
        if !listed {
            // Only the shapes differ (a column more or less): show both rows whole.
            self.list(RowDifference {
                key,
                kind: DifferenceKind::Changed,
                column: None,
                live: Some(a.text.to_owned()),
                rebuilt: Some(b.text.to_owned()),
            });
        }
    }

    fn one_side(&mut self, kind: DifferenceKind, row: &PageRow) {
        self.rows += 1;
        let rendered = Some(self.render_row(row));
        let (live, rebuilt) = match kind {
            DifferenceKind::OnlyLive => (rendered, None),
            _ => (None, rendered),
        };
        self.list(RowDifference {
            key: self.render_key(row),
            kind,
            column: None,
            live,
            rebuilt,
        });
    }

    fn render_key(&self, row: &PageRow) -> String {
        self.key
            .iter()
            .map(|(i, _)| {
                let value = row.values.get(*i).and_then(|e| json_value(e));
                format!(
                    "{}={}",
                    self.layout.columns[*i].0,
                    value.as_deref().unwrap_or("NULL")
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn render_row(&self, row: &PageRow) -> String {
        self.layout
            .columns
            .iter()
            .zip(&row.values)
            .map(|((c, _), e)| format!("{c}={}", if *e == "null" { "NULL" } else { e }))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Checksums and diffs one table's pages, on a blocking thread while the next pages are read.
pub(super) struct PageChecker {
    pub(super) live: Checksum,
    pub(super) rebuilt: Checksum,
    pub(super) differences: Differences,
}

impl PageChecker {
    pub(super) fn check(&mut self, live: &PageText, rebuilt: &PageText) {
        if live.text != rebuilt.text {
            self.differences.page(&live.text, &rebuilt.text);
        }
        self.live.add(live);
        self.rebuilt.add(rebuilt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::compare::layout;

    #[test]
    fn typed_keys_order_numbers_numerically_and_text_by_bytes() {
        let k = |n: i64, s: &str| vec![Value::int(n), Value::text(s)];
        assert_eq!(cmp_key(&k(2, "a"), &k(10, "a")), Ordering::Less);
        assert_eq!(cmp_key(&k(1, "Z"), &k(1, "a")), Ordering::Less);
        assert_eq!(cmp_key(&k(1, "b"), &k(1, "b")), Ordering::Equal);
        assert_eq!(
            shared_bound(Some(k(5, "a")), Some(k(3, "z"))),
            Some(k(3, "z"))
        );
        assert_eq!(shared_bound(None, Some(k(3, "z"))), Some(k(3, "z")));
        assert_eq!(shared_bound(None, None), None);
    }

    #[test]
    fn rendered_keys_order_as_the_engines_do() {
        assert!(KeyPart::of("2") < KeyPart::of("10"));
        assert!(KeyPart::of("\"Z\"") < KeyPart::of("\"a\""));
        assert!(KeyPart::of("null") < KeyPart::of("-1"));
        assert!(KeyPart::of("7") < KeyPart::of("\"1\""));
    }

    #[test]
    fn json_rows_split_into_elements_whatever_the_strings_hold() {
        assert_eq!(
            json_elements(r#"[1,"a, \"b\" [c]",null,"",true]"#),
            vec!["1", r#""a, \"b\" [c]""#, "null", "\"\"", "true"]
        );
        assert_eq!(
            json_elements(r#"[1, "x\\", 12.500]"#),
            vec!["1", r#""x\\""#, "12.500"]
        );
        assert_eq!(json_elements("[]"), Vec::<&str>::new());
        assert_eq!(json_value(r#""a\nb""#).as_deref(), Some("a\nb"));
        assert_eq!(json_value("null"), None);
        assert_eq!(json_value(r#""NULL""#).as_deref(), Some("NULL"));
    }

    fn diff(live: &str, rebuilt: &str) -> (u64, Vec<RowDifference>) {
        let mut d = Differences::new(layout("donation_tracking"), 10);
        d.page(live, rebuilt);
        (d.rows, d.listed)
    }

    #[test]
    fn a_page_diff_names_changed_columns_and_rows_on_one_side() {
        let live = "[1,\"c\",\"k\"]\n[2,\"c\",\"x\"]\n[4,\"c\",\"k\"]";
        let rebuilt = "[1,\"c\",\"k\"]\n[2,\"c\",\"k\"]\n[3,\"c\",\"k\"]";
        let (rows, listed) = diff(live, rebuilt);
        assert_eq!(rows, 3);
        assert_eq!(
            listed[0],
            RowDifference {
                key: "id=2".into(),
                kind: DifferenceKind::Changed,
                column: Some("keyword".into()),
                live: Some("x".into()),
                rebuilt: Some("k".into()),
            }
        );
        assert_eq!(
            (listed[1].kind, listed[1].key.as_str()),
            (DifferenceKind::OnlyRebuilt, "id=3")
        );
        assert_eq!(
            listed[1].rebuilt.as_deref(),
            Some(r#"id=3, campaign="c", keyword="k""#)
        );
        assert_eq!(
            (listed[2].kind, listed[2].key.as_str()),
            (DifferenceKind::OnlyLive, "id=4")
        );
    }

    #[test]
    fn a_page_diff_tells_null_from_empty_and_from_the_text_null() {
        let (rows, listed) = diff(
            "[1,null,\"\"]\n[2,\"NULL\",\"a\"]",
            "[1,\"\",\"NULL\"]\n[2,null,\"a\"]",
        );
        assert_eq!(rows, 2);
        let values: Vec<_> = listed
            .iter()
            .map(|d| {
                (
                    d.column.as_deref().unwrap(),
                    d.live.clone(),
                    d.rebuilt.clone(),
                )
            })
            .collect();
        assert_eq!(
            values,
            vec![
                ("campaign", None, Some(String::new())),
                ("keyword", Some(String::new()), Some("NULL".into())),
                ("campaign", Some("NULL".into()), None),
            ]
        );
    }

    #[test]
    fn the_checksum_does_not_depend_on_the_page_size() {
        let page = |rows: u64, text: &str| PageText {
            rows,
            text: text.to_owned(),
        };
        let mut one = Checksum::default();
        one.add(&page(3, "[1]\n[2]\n[3]"));
        let mut three = Checksum::default();
        for p in [page(1, "[1]"), page(0, ""), page(2, "[2]\n[3]")] {
            three.add(&p);
        }
        assert_eq!(one.finish(), three.finish());
    }
}
