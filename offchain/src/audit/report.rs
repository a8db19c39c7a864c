//! The audit report: a terminal table, JSON, and one self-contained HTML file.

use std::fmt::Write as _;

use super::check::{Audit, PartyTotals, TimelinePoint};
use crate::protocol::NTX_DECIMALS;

/// Settlement-asset units with NTX's 6 decimals (`25000000` → `25.000000`).
pub fn format_units(units: u64) -> String {
    let scale = 10u64.pow(NTX_DECIMALS);
    format!(
        "{}.{:0width$}",
        units / scale,
        units % scale,
        width = NTX_DECIMALS as usize
    )
}

fn short(hex: &str) -> String {
    match hex.char_indices().nth(12) {
        Some((i, _)) => format!("{}…", &hex[..i]),
        None => hex.to_string(),
    }
}

fn short_addr(a: &str) -> String {
    let n = a.chars().count();
    if n <= 28 {
        return a.to_string();
    }
    let head: String = a.chars().take(16).collect();
    let tail: String = a.chars().skip(n - 8).collect();
    format!("{head}…{tail}")
}

/// The report as pretty-printed JSON (amounts in settlement-asset units).
pub fn render_json(audit: &Audit) -> String {
    serde_json::to_string_pretty(audit).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

fn party_rows(out: &mut String, title: &str, parties: &[PartyTotals]) {
    let _ = writeln!(out, "\n{title}");
    let _ = writeln!(
        out,
        "  {:<30} {:>5} {:>16} {:>16} {:>16}",
        "address", "jobs", "paid NTX", "refunded NTX", "locked NTX"
    );
    for p in parties {
        let _ = writeln!(
            out,
            "  {:<30} {:>5} {:>16} {:>16} {:>16}",
            short_addr(&p.address),
            p.jobs,
            format_units(p.paid),
            format_units(p.refunded),
            format_units(p.locked)
        );
    }
}

/// The report as a readable terminal table.
pub fn render_table(audit: &Audit) -> String {
    let mut out = String::new();
    let t = &audit.target;
    let _ = writeln!(
        out,
        "ntx audit: {} deployment {} (escrow {})",
        t.network, t.script_hash, t.escrow_address
    );
    let _ = writeln!(
        out,
        "slots {}..={}: {} transaction(s), {} job(s)",
        audit.from_slot,
        audit.to_slot,
        audit.transactions,
        audit.jobs.len()
    );
    let _ = writeln!(out, "\nJOBS");
    let _ = writeln!(
        out,
        "  {:<14} {:<18} {:>16} {:>6} {:<14} {:<14}",
        "job", "outcome", "NTX", "quorum", "lock tx", "settle tx"
    );
    for j in &audit.jobs {
        let _ = writeln!(
            out,
            "  {:<14} {:<18} {:>16} {:>6} {:<14} {:<14}",
            short(&j.job_id),
            j.outcome.name(),
            format_units(j.amount),
            j.quorum,
            j.lock_tx
                .as_deref()
                .map(short)
                .unwrap_or_else(|| "(before range)".into()),
            j.settle_tx
                .as_deref()
                .map(short)
                .unwrap_or_else(|| "-".into()),
        );
    }
    party_rows(&mut out, "PROVIDERS", &audit.providers);
    party_rows(&mut out, "REQUESTERS", &audit.requesters);
    let all = &audit.totals;
    let _ = writeln!(
        out,
        "\nTOTAL  {} job(s): paid {} NTX, refunded {} NTX, still locked {} NTX",
        all.jobs,
        format_units(all.paid),
        format_units(all.refunded),
        format_units(all.locked)
    );
    if audit.findings.is_empty() {
        let _ = writeln!(out, "\nFINDINGS: none, every rule held");
    } else {
        let _ = writeln!(out, "\nFINDINGS ({})", audit.findings.len());
        for f in &audit.findings {
            let _ = writeln!(
                out,
                "  [{}] job {} tx {}: {}",
                f.rule,
                f.job_id.as_deref().map(short).unwrap_or_else(|| "-".into()),
                f.tx_id.as_deref().unwrap_or("-"),
                f.detail
            );
        }
    }
    for n in &audit.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chart: NTX locked, paid and refunded after each transaction, as step lines.
fn chart(audit: &Audit) -> String {
    let (w, h) = (860.0_f64, 320.0_f64);
    let (left, right, top, bottom) = (80.0, 20.0, 36.0, 50.0);
    let points = &audit.timeline;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="NTX locked, paid and refunded over time">"#
    );
    if points.is_empty() {
        svg.push_str(r#"<text x="20" y="40">No escrow moved funds in this range.</text></svg>"#);
        return svg;
    }
    let t0 = points[0].time_ms as f64;
    let t1 = (audit.now_ms as f64).max(points[points.len() - 1].time_ms as f64);
    let span = if t1 > t0 { t1 - t0 } else { 1.0 };
    let max = points
        .iter()
        .map(|p| p.locked.max(p.paid).max(p.refunded))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let x = |t: f64| left + (t - t0) / span * (w - left - right);
    let y = |v: f64| top + (1.0 - v / max) * (h - top - bottom);
    // Axes and grid.
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let yy = y(v);
        let _ = write!(
            svg,
            r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            w - right,
            left - 6.0,
            yy + 4.0,
            format_units(v.round() as u64)
        );
    }
    let _ = write!(
        svg,
        r##"<line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333"/>"##,
        h - bottom,
        w - right,
        h - bottom
    );
    let first_slot = points[0].slot;
    let _ = write!(
        svg,
        r##"<text x="{left}" y="{:.1}" font-size="11">slot {first_slot}</text><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">slot {}</text><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">time (slots) · amounts in NTX</text>"##,
        h - bottom + 16.0,
        w - right,
        h - bottom + 16.0,
        audit.to_slot,
        (left + w - right) / 2.0,
        h - 8.0
    );
    type Series = (&'static str, &'static str, fn(&TimelinePoint) -> u64);
    let series: [Series; 3] = [
        ("locked", "#d98c00", |p| p.locked),
        ("paid", "#1a7f37", |p| p.paid),
        ("refunded", "#0a58ca", |p| p.refunded),
    ];
    for (k, (name, color, get)) in series.iter().enumerate() {
        let mut d = String::new();
        let mut prev = 0u64;
        for (i, p) in points.iter().enumerate() {
            let xx = x(p.time_ms as f64);
            if i == 0 {
                let _ = write!(d, "{xx:.1},{:.1} ", y(0.0));
            } else {
                let _ = write!(d, "{xx:.1},{:.1} ", y(prev as f64));
            }
            let v = get(p);
            let _ = write!(d, "{xx:.1},{:.1} ", y(v as f64));
            prev = v;
        }
        let _ = write!(d, "{:.1},{:.1}", x(t1), y(prev as f64));
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{d}"><title>{name}</title></polyline>"#
        );
        let lx = left + 10.0 + 110.0 * k as f64;
        let _ = write!(
            svg,
            r#"<rect x="{lx}" y="8" width="12" height="12" fill="{color}"/><text x="{:.1}" y="18" font-size="12">{name}</text>"#,
            lx + 16.0
        );
    }
    svg.push_str("</svg>");
    svg
}

fn party_table(out: &mut String, title: &str, parties: &[PartyTotals]) {
    let _ = write!(
        out,
        "<h2>{title}</h2><table><tr><th>address</th><th>jobs</th><th>paid NTX</th><th>refunded NTX</th><th>locked NTX</th></tr>"
    );
    for p in parties {
        let _ = write!(
            out,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.address),
            p.jobs,
            format_units(p.paid),
            format_units(p.refunded),
            format_units(p.locked)
        );
    }
    out.push_str("</table>");
}

/// The report as one self-contained HTML page (inline CSS and SVG; no
/// scripts, no external resources).
pub fn render_html(audit: &Audit) -> String {
    let t = &audit.target;
    let mut out = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>ntx audit</title><style>\
body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}\
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;font-size:.9em}th{background:#f3f3f3}\
.mono{font-family:ui-monospace,monospace;font-size:.85em}.ok{color:#1a7f37}.bad{color:#b42318}\
</style></head><body>",
    );
    let verdict = if audit.findings.is_empty() {
        "<p class=\"ok\"><strong>No findings: every rule held.</strong></p>".to_string()
    } else {
        format!(
            "<p class=\"bad\"><strong>{} finding(s).</strong></p>",
            audit.findings.len()
        )
    };
    let _ = write!(
        out,
        "<h1>ntx audit</h1><p>{} deployment <span class=\"mono\">{}</span>, escrow address <span class=\"mono\">{}</span>, settlement asset <span class=\"mono\">{}</span>.<br>Slots {} to {}: {} transaction(s), {} job(s).</p>{verdict}",
        esc(&t.network),
        esc(&t.script_hash),
        esc(&t.escrow_address),
        esc(&t.settlement),
        audit.from_slot,
        audit.to_slot,
        audit.transactions,
        audit.jobs.len()
    );
    let all = &audit.totals;
    let _ = write!(
        out,
        "<p>Paid {} NTX, refunded {} NTX, still locked {} NTX.</p><h2>NTX over time</h2>{}",
        format_units(all.paid),
        format_units(all.refunded),
        format_units(all.locked),
        chart(audit)
    );
    if !audit.findings.is_empty() {
        out.push_str("<h2>Findings</h2><table><tr><th>rule</th><th>job</th><th>transaction</th><th>detail</th></tr>");
        for f in &audit.findings {
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
                f.rule,
                esc(f.job_id.as_deref().unwrap_or("-")),
                esc(f.tx_id.as_deref().unwrap_or("-")),
                esc(&f.detail)
            );
        }
        out.push_str("</table>");
    }
    out.push_str("<h2>Jobs</h2><table><tr><th>job</th><th>outcome</th><th>NTX</th><th>quorum</th><th>attestations</th><th>lock tx</th><th>submit tx</th><th>settle tx</th></tr>");
    for j in &audit.jobs {
        let _ = write!(
            out,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td></tr>",
            esc(&short(&j.job_id)),
            j.outcome.name(),
            format_units(j.amount),
            esc(&j.quorum),
            j.attestations,
            esc(&j
                .lock_tx
                .as_deref()
                .map(short)
                .unwrap_or_else(|| "before range".into())),
            esc(&j
                .submit_tx
                .as_deref()
                .map(short)
                .unwrap_or_else(|| "-".into())),
            esc(&j
                .settle_tx
                .as_deref()
                .map(short)
                .unwrap_or_else(|| "-".into())),
        );
    }
    out.push_str("</table>");
    party_table(&mut out, "Providers", &audit.providers);
    party_table(&mut out, "Requesters", &audit.requesters);
    for n in &audit.notes {
        let _ = write!(out, "<p>Note: {}</p>", esc(n));
    }
    out.push_str("</body></html>\n");
    out
}
