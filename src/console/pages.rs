//! The console's HTML, rendered on the server from [`Status`] and the audit timeline: plain
//! HTML with one stylesheet and one script (`console.css`, `console.js`), no build step, every
//! value escaped. Elements carrying a figure have a `data-figure` name, which the script uses
//! to refresh them and the browser test to read them.

use std::fmt::Write as _;

use super::status::{CivishareStatus, ScrubBacklog, Status};
use crate::audit::HistoryEntry;

/// Escapes text for HTML element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `body`.
fn layout(title: &str, viewer: Option<&str>, body: &str) -> String {
    let nav = match viewer {
        Some(name) => format!(
            "<nav><a href=\"/\">Overview</a>\
             <form class=\"lookup\" method=\"get\" action=\"/console/donation\">\
             <label>Donation <input name=\"id\" inputmode=\"numeric\" size=\"10\" required></label>\
             <button>Show history</button></form>\
             <span class=\"who\">signed in as <b>{}</b></span>\
             <form method=\"post\" action=\"/logout\"><button>Sign out</button></form></nav>",
            esc(name)
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · ledger</title><link rel=\"stylesheet\" href=\"/console/console.css\">\
         </head><body><header><h1>Ledger</h1>{nav}</header><main>{body}</main></body></html>",
        esc(title)
    )
}

/// The sign-in form, with why the last attempt failed.
pub fn sign_in(message: Option<&str>) -> String {
    let message = message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(m)))
        .unwrap_or_default();
    layout(
        "Sign in",
        None,
        &format!(
            "<section class=\"sign-in\"><h2>Sign in</h2>{message}\
             <p>Paste a ledger client token with the <code>audit:read</code> scope \
             (<code>donations:read</code> as well to see donors' personal data).</p>\
             <form method=\"post\" action=\"/login\">\
             <label>Token <input type=\"password\" name=\"token\" autocomplete=\"off\" required></label>\
             <button>Sign in</button></form></section>"
        ),
    )
}

fn figure(name: &str, value: impl std::fmt::Display) -> String {
    format!(
        "<span data-figure=\"{}\">{}</span>",
        esc(name),
        esc(&value.to_string())
    )
}

/// The overview.
pub fn overview(viewer: &str, status: &Status) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<section><h2>Projection</h2>\
         <p>Log head {}. Append rate <span data-figure=\"rate.appends\">–</span> events/s, \
         projection rate <span data-figure=\"rate.projection\">–</span> events/s \
         (measured between refreshes).</p>\
         <table id=\"projectors\"><thead><tr><th>Projector</th><th>Checkpoint</th>\
         <th>Lag (positions)</th><th>State</th></tr></thead><tbody>",
        figure("head", status.head)
    );
    for p in &status.projectors {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.name),
            figure(
                &format!("projector.{}.position", p.name),
                p.position.map_or("none".to_owned(), |v| v.to_string())
            ),
            figure(&format!("projector.{}.lag", p.name), p.lag),
            figure(
                &format!("projector.{}.state", p.name),
                if p.stopped { "stopped" } else { "running" }
            ),
        );
    }
    body.push_str(
        "</tbody></table>\
         <figure><svg id=\"chart\" viewBox=\"0 0 600 160\" role=\"img\" \
         aria-label=\"lag and throughput over the last minutes\"></svg>\
         <figcaption><span class=\"lag\">lag</span> <span class=\"appends\">appends/s</span> \
         <span class=\"projection\">projected/s</span></figcaption></figure></section>",
    );

    body.push_str("<section><h2>Read model</h2>");
    match &status.read_model {
        Ok(overview) => {
            let mut table = "";
            for s in &overview.states {
                if s.table != table {
                    if !table.is_empty() {
                        body.push_str("</tbody></table>");
                    }
                    table = s.table;
                    let _ = write!(
                        body,
                        "<h3>{}</h3><table class=\"states\"><thead><tr><th>Column</th>\
                         <th>State</th><th>Rows</th></tr></thead><tbody>",
                        esc(table)
                    );
                }
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                    esc(s.column),
                    esc(&s.value),
                    figure(&format!("{}.{}.{}", s.table, s.column, s.value), s.rows)
                );
            }
            if !table.is_empty() {
                body.push_str("</tbody></table>");
            }
        }
        Err(e) => {
            let _ = write!(
                body,
                "<p class=\"error\" data-figure=\"read_model.error\">The read model cannot be \
                 read: {}</p>",
                esc(e)
            );
        }
    }
    body.push_str("</section>");

    let _ = write!(
        body,
        "<section><h2>Scrubbing</h2><p>Donations eligible, not yet scrubbed: {}. Backlog: {}.</p>\
         <p>Membership applications eligible, not yet scrubbed: {}. Backlog: {}.</p>\
         <p>Address changes eligible, not yet scrubbed: {}. Backlog: {}.</p>\
         <p>Subscriptions eligible, not yet scrubbed: {}. Backlog: {}.</p></section>",
        figure("scrub.eligible", known(status.scrub.eligible)),
        esc(&backlog(&status.scrub)),
        figure(
            "scrub.memberships.eligible",
            known(status.membership_scrub.eligible)
        ),
        esc(&backlog(&status.membership_scrub)),
        figure(
            "scrub.address_changes.eligible",
            known(status.address_change_scrub.eligible)
        ),
        esc(&backlog(&status.address_change_scrub)),
        figure(
            "scrub.subscriptions.eligible",
            known(status.subscription_scrub.eligible)
        ),
        esc(&backlog(&status.subscription_scrub)),
    );

    body.push_str("<section><h2>Sequences</h2><table><thead><tr><th>Sequence</th><th>Current</th></tr></thead><tbody>");
    for (name, current) in &status.sequences.sequences {
        let shown = match current {
            Ok(Some(v)) => v.to_string(),
            Ok(None) => "not started".to_owned(),
            Err(e) => format!("error: {e}"),
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(name),
            figure(&format!("sequence.{name}"), shown)
        );
    }
    let _ = write!(
        body,
        "</tbody></table><p>Allocation collisions since start: {}.</p></section>",
        figure("sequence.collisions", status.sequences.collisions)
    );

    body.push_str("<section><h2>Refusals</h2>");
    if status.refusals.by_reason.is_empty() {
        body.push_str("<p data-figure=\"refusals.none\">No call refused since start.</p>");
    } else {
        body.push_str("<table><thead><tr><th>Method</th><th>Code</th><th>Since start</th></tr></thead><tbody>");
        for (method, code, n) in &status.refusals.by_reason {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                esc(method),
                esc(code),
                figure(&format!("refusals.{method}.{code}"), n)
            );
        }
        body.push_str("</tbody></table><h3>Latest</h3><ul class=\"refusals\">");
        for r in &status.refusals.recent {
            let _ = write!(
                body,
                "<li><time>{}</time> {} {}: {}</li>",
                r.at.format("%Y-%m-%d %H:%M:%S"),
                esc(r.method),
                esc(&r.code),
                esc(&r.reason)
            );
        }
        body.push_str("</ul>");
    }
    body.push_str("</section>");

    let _ = write!(
        body,
        "<section><h2>KurrentDB port</h2><p>Live subscriptions: {}; the furthest behind is {} events behind.</p></section>",
        figure("kurrentdb.subscriptions", status.kurrentdb.subscriptions),
        figure("kurrentdb.max_lag", status.kurrentdb.max_lag),
    );
    civishare(&mut body, &status.civishare);
    body.push_str("<script src=\"/console/console.js\" defer></script>");
    layout("Overview", Some(viewer), &body)
}

/// A count, or `unknown`.
fn known(value: Option<u64>) -> String {
    value.map_or("unknown".to_owned(), |v| v.to_string())
}

/// How long a scrub backlog has waited, in words.
fn backlog(scrub: &ScrubBacklog) -> String {
    match (scrub.eligible, scrub.oldest_age_seconds) {
        (None, _) => "not known yet (the first count runs after the projector has caught up, \
                      or the read model cannot be read)"
            .to_owned(),
        (Some(0), _) => "none".to_owned(),
        (Some(_), Some(seconds)) => format!("the oldest has waited {}", age(seconds)),
        (Some(_), None) => String::new(),
    }
}

/// The CiviShare section: the local node, and per peer its queue and what came from it.
fn civishare(body: &mut String, status: &Result<CivishareStatus, String>) {
    body.push_str("<section class=\"wide\"><h2>CiviShare</h2>");
    let status = match status {
        Ok(status) => status,
        Err(e) => {
            let _ = write!(
                body,
                "<p class=\"error\" data-figure=\"civishare.error\">The CiviShare database \
                 cannot be read: {}</p></section>",
                esc(e)
            );
            return;
        }
    };
    match &status.local_node {
        Some(name) => {
            let _ = write!(
                body,
                "<p>This node: {}.</p>",
                figure("civishare.local_node", name)
            );
        }
        None => body.push_str(
            "<p data-figure=\"civishare.local_node\">This node has no name yet \
             (<code>ledger peer node --name</code>): nothing is shared.</p>",
        ),
    }
    if status.peers.is_empty() {
        body.push_str("<p data-figure=\"civishare.peers\">No peers.</p></section>");
        return;
    }
    body.push_str(
        "<table><thead><tr><th>Peer</th><th>Undelivered</th><th>Oldest undelivered</th>\
         <th>Failed</th><th>Last error</th><th>Received</th></tr></thead><tbody>",
    );
    for p in &status.peers {
        let key = |what: &str| format!("civishare.{}.{what}", p.node);
        let received = p
            .received
            .iter()
            .map(|(status, n)| format!("{}: {}", esc(status), figure(&key(status), n)))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = write!(
            body,
            "<tr><td title=\"{}\">{}</td><td class=\"n\">{}</td><td>{}</td>\
             <td class=\"n\">{}</td><td class=\"error-text\">{}</td><td>{}</td></tr>",
            esc(&p.endpoint),
            esc(&p.node),
            figure(&key("undelivered"), p.undelivered),
            esc(p.oldest_undelivered.as_deref().unwrap_or("")),
            figure(&key("failed"), p.failed),
            esc(p.last_error.as_deref().unwrap_or("")),
            if received.is_empty() {
                "nothing".to_owned()
            } else {
                received
            },
        );
    }
    body.push_str("</tbody></table></section>");
}

/// A duration in seconds, as days, hours and minutes.
fn age(seconds: u64) -> String {
    let (d, h, m) = (seconds / 86_400, seconds / 3_600 % 24, seconds / 60 % 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else {
        format!("{m} min")
    }
}

/// A donation's history timeline: who, when, what.
pub fn donation(
    viewer: &str,
    donation_id: u64,
    entries: &[HistoryEntry],
    personal_shown: bool,
) -> String {
    let mut body = format!("<section><h2>Donation {donation_id}</h2>");
    if !personal_shown {
        body.push_str(
            "<p class=\"note\" data-figure=\"personal.hidden\">Personal data is hidden: your \
             token lacks the <code>donations:read</code> scope.</p>",
        );
    }
    body.push_str("<ol class=\"timeline\" id=\"timeline\">");
    for e in entries {
        let _ = write!(
            body,
            "<li data-event=\"{}\"><div class=\"when\"><time>{}</time> · position {}</div>\
             <div class=\"what\"><b>{}</b> in <code>{}</code></div>\
             <div class=\"who\">by {} <b>{}</b>{}</div>",
            esc(&e.event_type),
            e.occurred_at.format("%Y-%m-%d %H:%M:%S UTC"),
            e.position,
            esc(&e.event_type),
            esc(&e.stream),
            esc(&e.actor_kind),
            esc(&e.actor),
            if e.source.is_empty() {
                String::new()
            } else {
                format!(" via {}", esc(&e.source))
            }
        );
        if !e.changes.is_empty() {
            body.push_str("<table class=\"changes\"><tbody>");
            for c in &e.changes {
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>{}</td><td>→</td><td>{}</td></tr>",
                    esc(&c.field),
                    esc(&c.before),
                    esc(&c.after)
                );
            }
            body.push_str("</tbody></table>");
        }
        body.push_str("</li>");
    }
    body.push_str("</ol></section>");
    layout(&format!("Donation {donation_id}"), Some(viewer), &body)
}

/// A short page saying what went wrong.
pub fn message(viewer: Option<&str>, title: &str, text: &str) -> String {
    layout(
        title,
        viewer,
        &format!(
            "<section><h2>{}</h2><p class=\"error\" role=\"alert\">{}</p></section>",
            esc(title),
            esc(text)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        let page = message(Some("<b>"), "Oops", "<img src=x onerror=1>");
        assert!(!page.contains("<img"));
        assert!(page.contains("&lt;b&gt;"));
    }

    #[test]
    fn ages_read_in_days_hours_or_minutes() {
        assert_eq!(age(59), "0 min");
        assert_eq!(age(3 * 3600 + 120), "3 h 2 min");
        assert_eq!(age(2 * 86_400 + 5 * 3600), "2 d 5 h");
    }
}
