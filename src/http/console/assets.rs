//! The console's stylesheet and its one script, embedded in the binary (no
//! CDN, no build step; they change only with recflow itself, so browsers
//! may cache them for an hour).

use axum::http::header;
use axum::response::{IntoResponse, Response};

const CSS: &str = r#"
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: #fff; }
header.top { display: flex; align-items: center; gap: 24px; padding: 8px 20px; background: #24292f; color: #fff; }
header.top a { color: #fff; text-decoration: none; }
header.top nav a { margin-right: 16px; opacity: .85; }
header.top nav a:hover { opacity: 1; text-decoration: underline; }
.brand { font-weight: 700; font-size: 16px; }
.who { margin-left: auto; display: flex; gap: 12px; align-items: center; }
.role { font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #57606a; }
.role[data-role=admin] { background: #1a7f37; }
main { padding: 16px 24px 48px; max-width: 1400px; }
h1 { font-size: 22px; margin: 8px 0 12px; }
h2 { font-size: 17px; margin: 24px 0 8px; }
a { color: var(--accent); }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 10px; text-align: left; vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; color: #000; border: 1px solid rgba(0,0,0,.15); }
.muted { color: var(--muted); }
.error { color: #cf222e; }
.notice { background: #dafbe1; border: 1px solid #4ac26b; padding: 8px 12px; border-radius: 6px; }
form.inline { display: inline; }
button, input[type=submit] { font: inherit; padding: 4px 12px; border-radius: 6px; border: 1px solid var(--line); background: var(--bg); cursor: pointer; }
button.primary { background: #1f883d; color: #fff; border-color: #1a7f37; }
button.danger { background: #cf222e; color: #fff; border-color: #a40e26; }
a.button { display: inline-block; padding: 4px 12px; border-radius: 6px; text-decoration: none; border: 1px solid var(--line); }
a.button.danger { background: #cf222e; color: #fff; border-color: #a40e26; }
button.link { background: none; border: none; color: #fff; padding: 0; text-decoration: underline; }
input, select, textarea { font: inherit; padding: 4px 8px; border: 1px solid var(--line); border-radius: 6px; }
label { display: block; margin: 8px 0 2px; font-weight: 600; }
.field-help { color: var(--muted); font-size: 12px; }
pre.log { background: #0d1117; color: #e6edf3; padding: 12px; border-radius: 6px; overflow: auto; max-height: 70vh; white-space: pre-wrap; word-break: break-word; font: 12px/1.5 ui-monospace, SFMono-Regular, Menlo, monospace; }
pre.json { background: var(--bg); padding: 12px; border-radius: 6px; overflow: auto; max-height: 40vh; font-size: 12px; }
.grid td.cell { padding: 2px; border: none; }
.grid a.sq { display: block; width: 18px; height: 18px; border-radius: 3px; border: 1px solid rgba(0,0,0,.2); }
.grid th.run { writing-mode: vertical-rl; transform: rotate(180deg); font-weight: 400; font-size: 11px; padding: 4px 2px; border: none; background: none; }
.cards { display: flex; flex-wrap: wrap; gap: 16px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; }
.row { display: flex; gap: 12px; align-items: end; flex-wrap: wrap; }
.scroll { overflow-x: auto; }
body.login { display: grid; place-items: center; min-height: 100vh; background: var(--bg); }
form.login { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 24px 28px; width: 380px; }
form.login input { width: 100%; }
form.login button { margin-top: 12px; width: 100%; }
"#;

const JS: &str = r#"
// The live tail of a running step's log: new text arrives as server-sent
// events and is appended as text (never as HTML).
for (const el of document.querySelectorAll('[data-tail]')) {
  const status = document.getElementById('tail-status');
  const events = new EventSource(el.dataset.tail);
  events.addEventListener('log', (e) => {
    el.textContent += e.data + '\n';
    el.scrollTop = el.scrollHeight;
  });
  events.addEventListener('end', (e) => {
    events.close();
    if (status) { status.textContent = 'ended: ' + e.data; status.dataset.status = e.data; }
  });
}
// Pages of runs still going refresh themselves until the run ends.
const refresh = document.querySelector('[data-refresh]');
if (refresh) { setTimeout(() => window.location.reload(), Number(refresh.dataset.refresh)); }
"#;

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        body,
    )
        .into_response()
}

pub async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

pub async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}
