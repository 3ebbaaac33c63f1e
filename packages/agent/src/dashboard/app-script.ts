/**
 * The dashboard's page and script, kept as strings so they ship inside the
 * compiled agent (no asset files to locate at run time). The script is a
 * plain ES module for the browser using htm + Preact (`/vendor/htm-preact.js`):
 * it polls the dashboard server (never an agent directly) and renders the
 * cluster: members, services, units, a relation graph, errors with a
 * Resolve button, and for a selected unit its runs (which handlers ran and
 * why) and its latest log lines.
 */

export const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Rhizome dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
  header { background: #1d2330; color: #fff; padding: 10px 18px; display: flex; gap: 24px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  main { display: grid; grid-template-columns: minmax(520px, 3fr) minmax(320px, 2fr); gap: 16px; padding: 16px; }
  section { background: #fff; border-radius: 6px; box-shadow: 0 1px 2px #0002; padding: 10px 14px; min-width: 0; }
  h2 { font-size: 14px; text-transform: uppercase; letter-spacing: .04em; color: #5a6478; margin: 4px 0 8px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eceef2; vertical-align: top; }
  /* A run's error names files by their full paths: let it wrap anywhere rather than widen the page. */
  tr.run td.error { overflow-wrap: anywhere; }
  tr.unit { cursor: pointer; } tr.unit:hover { background: #f0f4ff; } tr.selected { background: #e4ecff; }
  .state { font-weight: 600; } .active, .idle, .alive, .joined { color: #137333; } .error, .down, .failed, .unreachable { color: #c5221f; }
  .blocked, .waiting, .maintenance, .retrying, .running, .pending, .suspect { color: #b06000; }
  .errorbox { border-left: 4px solid #c5221f; background: #fdecea; padding: 6px 10px; margin: 6px 0; }
  button { font: inherit; padding: 2px 10px; cursor: pointer; }
  pre { font: 12px/1.35 ui-monospace, monospace; white-space: pre-wrap; margin: 0; max-height: 320px; overflow: auto; }
  .muted { color: #7a8397; } .banner { background: #fdecea; color: #c5221f; padding: 6px 18px; }
  svg text { font: 12px system-ui, sans-serif; }
</style>
</head>
<body><div id="app">loading…</div><script type="module" src="/app.js"></script></body>
</html>
`;

// An ordinary template literal: \` and \${ are the browser script's own backticks and substitutions.
export const APP_SCRIPT = `
import { html, render, useEffect, useState } from '/vendor/htm-preact.js';

const token = new URLSearchParams(location.search).get('token') ?? '';

async function api(path, init = {}) {
  const res = await fetch('/api' + path, { ...init, headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error ?? 'HTTP ' + res.status);
  return body;
}

/** Calls fn every ms milliseconds (after each answer), while the component lives. */
function usePoll(fn, ms, deps) {
  const [value, setValue] = useState(undefined);
  const [error, setError] = useState(undefined);
  useEffect(() => {
    let live = true;
    let timer;
    const tick = async () => {
      try { const v = await fn(); if (live) { setValue(v); setError(undefined); } }
      catch (e) { if (live) setError(String(e.message ?? e)); }
      if (live) timer = setTimeout(tick, ms);
    };
    tick();
    return () => { live = false; clearTimeout(timer); };
  }, deps);
  return [value, error];
}

const cls = (s) => String(s ?? '').split(/\\s/)[0];

function Graph({ services, relations }) {
  const r = 110, cx = 160, cy = 140;
  const pos = new Map(services.map((s, i) => {
    const a = (2 * Math.PI * i) / Math.max(services.length, 1) - Math.PI / 2;
    return [s.name, services.length === 1 ? [cx, cy] : [cx + r * Math.cos(a), cy + r * Math.sin(a)]];
  }));
  const svc = (ep) => ep.split(':')[0];
  return html\`<svg id="relation-graph" width="320" height="280" viewBox="0 0 320 280">
    \${relations.filter((x) => x.kind !== 'peer').map((x) => {
      const a = pos.get(svc(x.provider)), b = pos.get(svc(x.requirer));
      if (!a || !b) return null;
      return html\`<g class="relation"><line x1=\${a[0]} y1=\${a[1]} x2=\${b[0]} y2=\${b[1]} stroke=\${x.state === 'joined' ? '#137333' : '#b06000'} stroke-width="2" />
        <text x=\${(a[0] + b[0]) / 2} y=\${(a[1] + b[1]) / 2 - 4} text-anchor="middle" fill="#5a6478">\${x.interface}</text></g>\`;
    })}
    \${services.map((s) => {
      const [x, y] = pos.get(s.name);
      const peer = relations.some((rel) => rel.kind === 'peer' && svc(rel.provider) === s.name);
      return html\`<g class="service" data-service=\${s.name}>
        <circle cx=\${x} cy=\${y} r="30" fill="#fff" stroke=\${s.status === 'active' ? '#137333' : s.status === 'error' || s.status === 'down' ? '#c5221f' : '#b06000'} stroke-width=\${peer ? 4 : 2} />
        <text x=\${x} y=\${y - 2} text-anchor="middle">\${s.name}</text>
        <text x=\${x} y=\${y + 13} text-anchor="middle" fill="#5a6478">\${s.up}/\${s.scale}</text></g>\`;
    })}
  </svg>\`;
}

function UnitDetail({ unit }) {
  const [runs, runsError] = usePoll(() => api('/units/' + encodeURIComponent(unit) + '/runs'), 2000, [unit]);
  const [logs, logsError] = usePoll(() => api('/units/' + encodeURIComponent(unit) + '/logs'), 2000, [unit]);
  const list = Array.isArray(runs) ? runs.slice(-15).reverse() : [];
  return html\`<section id="unit-detail" data-unit=\${unit}>
    <h2>\${unit}: runs</h2>
    \${runsError ? html\`<div class="errorbox">\${runsError}</div>\` : null}
    <table><thead><tr><th>run</th><th>outcome</th><th>handlers (why)</th><th>ms</th></tr></thead><tbody>
    \${list.map((r) => html\`<tr class="run"><td>\${r.eventLabel}\${r.batched ? ' +' + r.batched.length : ''}</td>
      <td class=\${r.outcome === 'committed' ? 'active' : 'error'}>\${r.outcome}\${r.error ? ': ' + r.error.message : ''}</td>
      <td>\${(r.steps ?? []).map((s) => html\`<div><b>\${s.handler}</b> <span class="muted">\${(s.because ?? []).join('; ')}</span></div>\`)}</td>
      <td>\${typeof r.durationMs === 'number' ? r.durationMs.toFixed(1) : ''}</td></tr>\`)}
    </tbody></table>
    <h2>\${unit}: log</h2>
    \${logsError ? html\`<div class="errorbox">\${logsError}</div>\` : null}
    <pre id="logs">\${(Array.isArray(logs) ? logs : []).map((l) => new Date(l.time).toISOString().slice(11, 23) + ' ' + (l.msg ?? '')).join('\\n')}</pre>
  </section>\`;
}

function App() {
  const [status, error] = usePoll(() => api('/status'), 1000, []);
  const [selected, setSelected] = useState(undefined);
  const [notice, setNotice] = useState(undefined);
  if (!status) return html\`<header><h1>Rhizome</h1></header>\${error ? html\`<div class="banner">\${error}</div>\` : html\`<p>loading…</p>\`}\`;
  const resolve = async (unit, skip) => {
    try { await api('/units/' + encodeURIComponent(unit) + '/resolve', { method: 'POST', body: JSON.stringify({ skip }) }); setNotice(unit + ': resolve sent'); }
    catch (e) { setNotice(unit + ': ' + e.message); }
  };
  return html\`
    <header><h1>Rhizome\${status.deployment ? ': ' + status.deployment : ''}</h1>
      <span id="members">members \${status.members ? status.members.alive + '/' + status.members.total : '?'}</span>
      <span class="muted">updated \${new Date().toLocaleTimeString()}</span></header>
    \${error ? html\`<div class="banner">\${error} (showing the last answer)</div>\` : null}
    \${notice ? html\`<div class="banner" id="notice">\${notice}</div>\` : null}
    <main>
      <div>
        \${status.errors.length > 0 ? html\`<section id="errors"><h2>Errors</h2>\${status.errors.map((e) => html\`
          <div class="errorbox" data-unit=\${e.unit}><b>\${e.unit}</b>: handler \${e.handler} on \${e.event}, \${e.attempts} attempt(s): \${e.message}
            <div><button class="resolve" data-unit=\${e.unit} onClick=\${() => resolve(e.unit, false)}>Resolve (retry)</button>
            <button class="skip" data-unit=\${e.unit} onClick=\${() => resolve(e.unit, true)}>Skip the event</button></div></div>\`)}</section>\` : null}
        <section id="units"><h2>Units</h2><table><thead><tr><th>unit</th><th>agent</th><th>workload</th><th>address</th><th>machine</th><th>message</th></tr></thead><tbody>
        \${status.units.map((u) => html\`<tr class=\${'unit' + (selected === u.unit ? ' selected' : '')} data-unit=\${u.unit} data-agent=\${u.agent} data-workload=\${u.workload} onClick=\${() => setSelected(u.unit)}>
          <td>\${u.unit}\${u.leader ? '*' : ''}</td><td class=\${'state ' + cls(u.agent)}>\${u.agent}</td><td class=\${'state ' + cls(u.workload)}>\${u.workload}</td>
          <td>\${u.address}</td><td>\${u.machine}</td><td>\${u.message}</td></tr>\`)}
        </tbody></table></section>
        <section id="services"><h2>Services</h2><table><tbody>\${status.services.map((s) => html\`<tr><td>\${s.name}</td><td class="muted">\${s.charm}</td><td class=\${'state ' + cls(s.status)}>\${s.status}</td><td>\${s.up}/\${s.scale}</td><td>\${s.message}</td></tr>\`)}</tbody></table></section>
        \${selected ? html\`<\${UnitDetail} unit=\${selected} />\` : html\`<section class="muted">Select a unit to see its runs and log.</section>\`}
      </div>
      <div>
        <section><h2>Relations</h2><\${Graph} services=\${status.services} relations=\${status.relations} />
          <table><tbody>\${status.relations.map((x) => html\`<tr class="relation-row"><td>\${x.provider}</td><td>\${x.requirer}</td><td class="muted">\${x.interface}</td><td class=\${'state ' + cls(x.state)}>\${x.state}</td></tr>\`)}</tbody></table></section>
        \${status.warnings && status.warnings.length > 0 ? html\`<section><h2>Charm warnings</h2>\${status.warnings.map((w) => html\`<div>\${w.unit}: \${w.message}</div>\`)}</section>\` : null}
      </div>
    </main>\`;
}

const root = document.getElementById('app');
root.textContent = ''; // the page's 'loading…' placeholder
render(html\`<\${App} />\`, root);
`;
