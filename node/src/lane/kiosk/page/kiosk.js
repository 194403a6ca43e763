// The gate screen: shows what the lane's procedure shows at this gate, in the traveller's
// language, and sends the declaration's taps. Everything is set with textContent (no HTML
// from the server), and the lane's answer is polled a few times a second.
'use strict';

const params = new URLSearchParams(location.search);
const gate = params.get('gate') === '2' ? 2 : 1;
const defaultLang = params.get('lang') || '';
let lang = defaultLang;
let lastCode = null;
let shown = '';

const $ = (name) => document.querySelector(`[data-test="${name}"]`);

function button(label, attrs, onTap) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  for (const [k, v] of Object.entries(attrs)) b.setAttribute(k, v);
  b.addEventListener('click', onTap);
  return b;
}

async function tap(action, el) {
  el.disabled = true;
  try {
    await fetch(action.path, { method: 'POST' });
  } finally {
    refresh();
  }
}

function render(v) {
  // A new passage starts in the kiosk's own language again.
  if (v.code === 'ready' && lastCode !== null && lastCode !== 'ready') lang = defaultLang;
  lastCode = v.code;
  const key = JSON.stringify(v);
  if (key === shown) return;
  shown = key;
  document.documentElement.lang = v.lang;
  document.title = v.title;
  document.body.dataset.tone = v.tone;
  document.body.dataset.code = v.code;
  $('title').textContent = v.title;
  $('headline').textContent = v.headline;
  $('detail').textContent = v.detail || '';
  $('reminder').textContent = v.reminder;
  const nav = $('languages');
  nav.setAttribute('aria-label', v.choose_language);
  nav.replaceChildren(
    ...v.languages.map((l) =>
      button(l.name, { lang: l.tag, 'data-lang': l.tag, 'aria-pressed': String(l.tag === v.lang) }, () => {
        lang = l.tag;
        refresh();
      }),
    ),
  );
  const actions = $('actions');
  actions.replaceChildren(
    ...v.actions.map((a) => {
      const b = button(a.label, { 'data-action': a.id, 'data-test': `action-${a.id}` }, () => tap(a, b));
      return b;
    }),
  );
}

let inFlight = false;
async function refresh() {
  if (inFlight) return;
  inFlight = true;
  try {
    const q = new URLSearchParams({ gate: String(gate) });
    if (lang) q.set('lang', lang);
    const r = await fetch(`/kiosk/screen?${q}`, { cache: 'no-store' });
    if (r.ok) render(await r.json());
  } catch (_) {
    // The lane is restarting: keep showing the last screen and try again.
  } finally {
    inFlight = false;
  }
}

refresh();
setInterval(refresh, 300);
