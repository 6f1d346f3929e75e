// The officer's touch screen: sign-in, the day's orders, an order, and the whole visit on it.
// Plain ES module, no framework: state in S, each screen a function that builds its <main>.
// Every visible string comes from i18n/<lang>.json (t); the API's own messages (visit-start
// reasons, capture feedback) come from the daemon, in both languages.

const API = '/api/v1';
const POLL_MS = 2000; // the status bar's summary
const USE_MS = 20000; // a touch calls /auth/me (a use: keeps the sign-in) at most this often
const PANEL_NOTE_MS = 4000; // how long what a panel button did stays said
const LOCALES = { id: 'id-ID', en: 'en-GB' };
const LANGS = ['id', 'en'];
const DEVICE_LOOK = {
  ready: ['ok', '✓'],
  busy: ['busy', '◔'],
  disconnected: ['bad', '✕'],
  error: ['bad', '⚠'],
};

const S = {
  lang: 'id',
  cat: {}, // the catalogues, by language
  msgs: null, // GET /messages
  officer: null, // signed in when set
  pickedLang: null, // a language tapped on the sign-in screen, for the officer signing in next
  gen: 0, // sign-in generation: a late 401 of an ended sign-in is ignored
  summary: null,
  orders: [],
  ordersError: null,
  order: null,
  visit: null,
  screen: null,
  signin: { nip: '', pin: '', field: 'nip', msg: null, busy: false },
  start: { busy: false, error: null },
  lastUse: 0,
  timer: null,
  events: null,
  eventsAt: 0,
  polling: false,
  again: false,
  live: {}, // the running capture: session, last assessment, press image, ink
  dialog: null, // {kind: 'except'|'outcome'|'redo', ...}
  visitBusy: false,
  visitError: null,
  diag: null, // the technician's page: its tab, the last run, the history, a guided test
};

// --- helpers ---------------------------------------------------------------------------

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) if (kid != null && kid !== false) e.append(kid);
  return e;
}

const has = (key) => key in (S.cat[S.lang] || {});

function t(key, vars) {
  const text = S.cat[S.lang]?.[key] ?? S.cat.id?.[key] ?? key;
  return vars ? text.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? vars[k] : m)) : text;
}

const icon = (sym) => el('span', { class: 'ico', 'aria-hidden': 'true' }, sym);

// The API's own message (a visit-start reason, an error code it names) in the page's language.
function apiText(code, message) {
  const own = message?.[S.lang] ?? S.msgs?.reasons?.[code]?.[S.lang];
  if (own) return own;
  if (code === 'network') return t('error.network');
  return has('error.' + code) ? t('error.' + code) : t('error.other', { code });
}

// A refusal said to a technician: the catalogue's words for its code first. The daemon's
// reasons a visit cannot start (GET /api/v1/messages) share some codes (visit_active) but
// speak to the officer who would start one.
function techText(code) {
  return has('error.' + code) ? t('error.' + code) : apiText(code, null);
}

async function api(path, { method = 'GET', body, signin = false, timeout = 15000 } = {}) {
  const init = {
    method,
    headers: { Accept: 'application/json' },
    cache: 'no-store',
    signal: AbortSignal.timeout(timeout),
  };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  const gen = S.gen;
  let res;
  try {
    res = await fetch(API + path, init);
  } catch {
    return { ok: false, status: 0, data: { error: 'network' } };
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = {};
  }
  if (res.status === 401 && !signin && S.officer && gen === S.gen) locked('signin.idle');
  return { ok: res.ok, status: res.status, data: data || {} };
}

// --- time, in the kit's timezone ---------------------------------------------------------

const kitZone = () => S.summary?.kit?.timezone;

// [Date, timeZone] to format: the kit's zone; without it, an ISO time's own offset.
function zoned(when) {
  const zone = kitZone();
  if (zone || typeof when !== 'string') return [new Date(when), zone];
  const m = /(?:Z|([+-])(\d\d):?(\d\d))$/.exec(when);
  if (!m) return [new Date(when), undefined];
  const offset = m[1] ? (m[1] === '-' ? -1 : 1) * (m[2] * 60 + +m[3]) : 0;
  return [new Date(Date.parse(when) + offset * 60000), 'UTC'];
}

function fmt(when, opts) {
  const [date, timeZone] = zoned(when);
  try {
    return new Intl.DateTimeFormat(LOCALES[S.lang], { ...opts, timeZone }).format(date);
  } catch {
    return new Intl.DateTimeFormat(LOCALES[S.lang], opts).format(date);
  }
}

const HM = { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
const time = (when) => fmt(when, HM);

// A moment's calendar and clock fields (`opts`) in the zone it is shown in, by type.
function partsOf(when, opts) {
  const [date, timeZone] = zoned(when);
  let format;
  try {
    format = new Intl.DateTimeFormat('en', { ...opts, timeZone });
  } catch {
    format = new Intl.DateTimeFormat('en', opts);
  }
  const p = {};
  for (const x of format.formatToParts(date)) p[x.type] = x.value;
  return p;
}

function ymd(when) {
  const p = partsOf(when, { year: 'numeric', month: '2-digit', day: '2-digit' });
  return `${p.year}-${p.month}-${p.day}`;
}

const today = () => ymd(kitDate());

// Minutes past midnight now, on the kit's clock in its zone.
function minutesNow() {
  const p = partsOf(kitDate(), HM);
  return +p.hour * 60 + +p.minute;
}

// A new appointment as the officer reads it: its day (`opts`), then its hours.
const appointmentText = (r, opts) => `${dayText(ymd(r.start), opts)}, ${time(r.start)}–${time(r.end)}`;

function dayText(yyyymmdd, opts = { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' }) {
  const d = new Date(yyyymmdd + 'T00:00:00Z');
  if (isNaN(d)) return yyyymmdd;
  return new Intl.DateTimeFormat(LOCALES[S.lang], { ...opts, timeZone: 'UTC' }).format(d);
}

// "09.00–10.00" (its date first when not today); null without appointment.
function windowText(order) {
  const a = order.appointment;
  if (!a?.start) return null;
  const span = a.end ? `${time(a.start)}–${time(a.end)}` : time(a.start);
  const day = ymd(a.start);
  return day === today()
    ? span
    : `${dayText(day, { weekday: 'short', day: 'numeric', month: 'short' })}, ${span}`;
}

function bytesText(n) {
  const [v, unit] = n >= 1e9 ? [n / 1e9, 'GB'] : [n / 1e6, 'MB'];
  return `${new Intl.NumberFormat(LOCALES[S.lang], { maximumFractionDigits: v < 10 ? 1 : 0 }).format(v)} ${unit}`;
}

const phoneText = (p) => String(p || '').replace(/(\d{4})(?=\d{3})/g, '$1 ');

// --- signing in and out; watching the kit ------------------------------------------------

// `picked`: a language tapped on the sign-in screen before this sign-in, which is the
// officer's choice now (kept by the kit), not undone by the one saved for them before.
async function signedIn(officer, picked = null) {
  S.officer = officer;
  S.gen += 1;
  S.pickedLang = null;
  if (picked && picked !== officer.language) await keepLanguage(picked);
  const lang = picked || officer.language;
  if (LANGS.includes(lang)) S.lang = lang;
  S.signin = { nip: '', pin: '', field: 'nip', msg: null, busy: false };
  S.lastUse = Date.now();
  if (!S.msgs) loadMessages();
  watch();
  await refresh();
  // Back to the visit left open (an auto-lock, a restart of the daemon): the work goes on
  // where it was, with what must be taken again marked.
  // (The orders first: the visit's heading is its applicant's name.)
  if (S.summary?.visit) return (await fetchOrders()) && openVisit(S.summary.visit.id);
  // A technician comes to the kit to look at it: their page first (the orders are one tap away).
  if (isTechnician()) return openTech();
  await openOrders();
}

// The sign-in ended (auto-lock, sign-out): back to sign-in with the message (after an
// auto-lock the NIP is kept: the same officer goes on with the visit).
function locked(msg, keepNip = true) {
  const nip = (keepNip && S.officer?.nip) || '';
  unwatch();
  S.officer = null;
  S.gen += 1;
  S.summary = null;
  S.visit = null;
  stopLive();
  S.diag = null;
  S.order = null;
  S.signin = { nip, pin: '', field: nip ? 'pin' : 'nip', msg, busy: false };
  S.pickedLang = null;
  show('signin');
}

function watch() {
  unwatch();
  S.timer = setInterval(refresh, POLL_MS);
  openEvents();
}

// `afresh`: the page's earlier stream ended (a restart, a refusal) and this one starts with
// the live events; what came between is asked of the kit once it is open.
function openEvents(afresh = false) {
  S.eventsAt = Date.now();
  try {
    S.events = new EventSource(API + '/events');
    if (afresh) S.events.addEventListener('open', missedEvents, { once: true });
    S.events.addEventListener('gap', missedEvents);
    S.events.addEventListener('device', refresh);
    S.events.addEventListener('visit', (e) => {
      refresh();
      onVisitEvent(e);
    });
    for (const type of ['assessment', 'ink', 'end'])
      S.events.addEventListener(type, (e) => onLiveEvent(type, e));
    S.events.addEventListener('panel', onPanelEvent);
    S.events.addEventListener('order_withdrawn', onOrderWithdrawn);
    S.events.addEventListener('guided', onGuidedEvent);
  } catch {
    S.events = null;
  }
}

// Events the page never got: the stream came back after the kit had stopped keeping them (it
// says `gap`), or was opened afresh. A capture's end among them would leave "Menunggu..." up
// until the officer tapped: the running session, the visit and the list are asked again.
async function missedEvents() {
  refresh();
  if (S.screen === 'orders' && !S.start?.busy) openOrders();
  if (S.live.session) await catchUp(S.live.session);
  reloadVisit();
}

function unwatch() {
  clearInterval(S.timer);
  S.timer = null;
  S.events?.close();
  S.events = null;
}

async function refresh() {
  if (!S.officer) return;
  if (S.polling) return void (S.again = true);
  S.polling = true;
  const gen = S.gen;
  const r = await api('/summary');
  S.polling = false;
  if (S.again) {
    S.again = false;
    setTimeout(refresh);
  }
  if (!r.ok || !S.officer || gen !== S.gen) return;
  S.summary = r.data;
  // The kit's clock may be corrected by an offset the browser's own clock does not have.
  const kitNow = Date.parse(r.data?.clock?.now || '');
  S.clockOffset = Number.isNaN(kitNow) ? 0 : kitNow - Date.now();
  // A stream the server ended (restart) comes back; one refused is tried again now and then.
  if (S.events?.readyState === 2 && Date.now() - S.eventsAt > 30000) openEvents(true);
  updateDynamic();
  recheckGuided();
}

async function loadMessages() {
  const r = await api('/messages');
  if (r.ok) {
    S.msgs = r.data;
    updateDynamic();
  }
}

// A touch is a use: it keeps the sign-in alive (the summary's polling does not).
function used() {
  if (S.officer && Date.now() - S.lastUse >= USE_MS) {
    S.lastUse = Date.now();
    api('/auth/me');
  }
}

async function setLang(lang) {
  if (!LANGS.includes(lang)) return;
  // Signed out, a tap is the next officer's choice even on the language already shown.
  if (!S.officer) S.pickedLang = lang;
  if (lang === S.lang) return;
  if (S.officer && !(await keepLanguage(lang))) return;
  S.lang = lang;
  render();
}

// The signed-in officer's language from now on, kept by the kit; whether it took it.
async function keepLanguage(lang) {
  const r = await api('/auth/language', { method: 'POST', body: { language: lang } });
  if (r.ok) S.officer = { ...S.officer, ...(r.data.officer || r.data) };
  return r.ok;
}

async function signOut() {
  // A guided test is not left holding the panel or the pad for whoever comes next.
  if (S.diag?.guided?.state === 'running') await cancelGuided();
  unwatch();
  S.gen += 1; // the 401s of requests under way are not an auto-lock
  await api('/auth/signout', { method: 'POST', signin: true });
  if (S.officer) locked('signin.signed_out', false);
}

// --- rendering ---------------------------------------------------------------------------

function show(screen) {
  if (screen !== 'visit') stopLive();
  S.screen = screen;
  render();
}

function render() {
  document.documentElement.lang = S.lang;
  document.title = t('app.title');
  document.body.classList.toggle('in', !!S.officer);
  renderBar();
  const main = SCREENS[S.screen]();
  main.dataset.screen = S.screen;
  document.querySelector('main').replaceWith(main);
  updateDynamic();
}

// The parts that follow the summary, each rebuilt only when what it shows changed (a
// button rebuilt under a finger would lose its tap).
const shown = new WeakMap();

function part(id, inputs, build) {
  const node = document.getElementById(id);
  const key = JSON.stringify([S.lang, inputs]);
  if (!node || shown.get(node) === key) return;
  shown.set(node, key);
  // (A part built of several pieces may leave one out: null or false, never shown as text.)
  node.replaceChildren(...[].concat(build()).filter((kid) => kid != null && kid !== false));
}

function updateDynamic() {
  const s = S.summary || {};
  part('bar-status', [s.devices, s.outbox, s.disk, s.battery], () => statusChips(S.summary));
  part('bar-clock', [s.clock?.confirmed, s.clock?.went_back, s.kit, time(kitDate())], () =>
    clockChip(S.summary),
  );
  const reasons = S.msgs ? 1 : 0;
  if (S.screen === 'order') part('dyn', [s.visit, s.others_visit, s.visit_start, S.start, reasons], startPanel);
  if (S.screen === 'orders') {
    part('dyn', [s.visit?.id, s.others_visit, s.ended_by_others, S.orders.length, S.start], () => [
      ...endedByOthers(),
      activeBanner(),
    ]);
  }
  if (S.screen === 'visit') part('vdev', [s.devices, S.visit?.current, S.live.failed], deviceTrouble);
  if (S.screen === 'tech') part('tech-body', techKey(), techBody);
}

function renderBar() {
  const bar = $('header[data-testid="status-bar"]');
  const who = S.officer
    ? el('span', { class: 'who', 'data-testid': 'officer' }, t('bar.officer', { name: S.officer.name }))
    : el('span', { class: 'who' }, t('app.title'));
  const langs = el(
    'div',
    { class: 'langs', role: 'group', 'aria-label': t('lang.group') },
    LANGS.map((l) =>
      el(
        'button',
        {
          type: 'button',
          lang: l,
          'data-lang': l,
          'aria-pressed': String(l === S.lang),
          onclick: () => setLang(l),
        },
        t('lang.' + l),
      ),
    ),
  );
  const top = el(
    'div',
    { class: 'bar-top' },
    who,
    S.officer && el('span', { id: 'bar-clock', class: 'chip', 'data-testid': 'clock' }),
    langs,
    S.officer &&
      el(
        'button',
        { type: 'button', class: 'signout', 'data-testid': 'signout', onclick: signOut },
        t('bar.signout'),
      ),
  );
  const status =
    S.officer && el('div', { id: 'bar-status', class: 'bar-status', 'data-testid': 'status-line' });
  bar.replaceChildren(top, status || '');
}

function chip(kind, sym, text, attrs) {
  return el('span', { class: 'chip ' + kind, ...attrs }, sym && icon(sym), text);
}

function deviceName(d) {
  return has('dev.' + d.kind) ? t('dev.' + d.kind) : has('dev.' + d.id) ? t('dev.' + d.id) : d.id;
}

function statusChips(s) {
  if (!s) return [];
  const out = [];
  const devices = el('span', { class: 'devices', role: 'group', 'aria-label': t('bar.devices') });
  for (const d of s.devices || []) {
    const status = DEVICE_LOOK[d.status] ? d.status : d.ready ? 'ready' : 'error';
    const [kind, sym] = DEVICE_LOOK[status];
    devices.append(
      chip(kind, sym, `${deviceName(d)}: ${t('device.' + status)}`, {
        'data-device': d.id,
        'data-status': status,
      }),
    );
  }
  out.push(devices);
  if (s.outbox) {
    const n = s.outbox.waiting ?? 0;
    out.push(chip(n ? 'info' : 'plain', null, t('bar.outbox', { n }), { 'data-testid': 'outbox' }));
  }
  if (s.disk) {
    const low = s.disk.enough === false;
    const text = t(low ? 'bar.disk_low' : 'bar.disk', { free: bytesText(s.disk.free_bytes ?? 0) });
    out.push(chip(low ? 'bad' : 'plain', low ? '⚠' : null, text, { 'data-testid': 'disk' }));
  }
  if (s.battery) {
    const { percent: pct, charging } = s.battery;
    const low = pct < 20 && !charging;
    const text = t(charging ? 'bar.battery_charging' : 'bar.battery', { pct });
    out.push(chip(low ? 'bad' : 'plain', low ? '⚠' : null, text, { 'data-testid': 'battery' }));
  }
  return out;
}

// The kit's time: the browser's plus the offset the last summary showed.
const kitDate = () => new Date(Date.now() + (S.clockOffset || 0));

function clockChip(s) {
  const now = time(kitDate());
  if (!s?.clock) return [now];
  const ok = s.clock.confirmed;
  const back = !ok && s.clock.went_back;
  const clock = $('#bar-clock');
  clock.className = 'chip ' + (ok ? 'plain' : back ? 'bad' : 'warn');
  clock.dataset.confirmed = String(!!ok);
  clock.dataset.wentBack = String(!!back);
  const words = ok ? 'bar.clock_ok' : back ? 'bar.clock_went_back' : 'bar.clock_unconfirmed';
  return [icon(ok ? '✓' : '⚠'), t(words, { time: now })];
}

// --- sign-in -----------------------------------------------------------------------------

const MAX = { nip: 18, pin: 6 };

function signinScreen() {
  const f = S.signin;
  const field = (name) =>
    el(
      'div',
      { class: 'field' },
      el('label', { for: name }, t('signin.' + name)),
      el('input', {
        id: name,
        'data-testid': name,
        type: name === 'pin' ? 'password' : 'text',
        readonly: true,
        inputmode: 'none',
        autocomplete: 'off',
        class: f.field === name ? 'on' : null,
        'aria-describedby': name + '-count',
        onclick: () => pick(name),
      }),
      el('span', { id: name + '-count', class: 'count' }),
    );
  const keys = ['1', '2', '3', '4', '5', '6', '7', '8', '9', 'clear', '0', 'erase'].map((k) => {
    const label = k === 'clear' ? t('key.clear') : k === 'erase' ? [icon('⌫'), t('key.erase')] : k;
    return el('button', { type: 'button', class: 'key', 'data-key': k, onclick: () => press(k) }, label);
  });
  const main = el(
    'main',
    { class: 'signin' },
    el(
      'div',
      { class: 'signin-form' },
      el('h1', {}, t('signin.title')),
      field('nip'),
      field('pin'),
      el('p', { class: 'msg', role: 'alert', 'data-testid': 'signin-message', id: 'signin-msg' }),
      el(
        'button',
        {
          type: 'button',
          class: 'big primary',
          'data-testid': 'signin-submit',
          id: 'signin-submit',
          onclick: submit,
        },
        t('signin.submit'),
      ),
    ),
    el('div', { class: 'keypad', role: 'group', 'aria-label': t('signin.keypad') }, keys),
  );
  queueMicrotask(fillSignin);
  return main;
}

// The fields, counts, message and button from S.signin (without rebuilding the screen).
function fillSignin() {
  const f = S.signin;
  for (const name of ['nip', 'pin']) {
    const input = document.getElementById(name);
    if (!input) return;
    input.value = f[name];
    input.classList.toggle('on', f.field === name);
    document.getElementById(name + '-count').textContent = t('signin.count', {
      n: f[name].length,
      max: MAX[name],
    });
  }
  const msg = $('#signin-msg');
  msg.textContent = f.msg ? t(f.msg) : '';
  // Wrong PINs typed here for this NIP, and how many lock it: said before the lock comes.
  // How many wrong PINs in a row lock an account (the kit's count per NIP is not shown: the
  // answer is the same for every NIP, so that it tells nothing of which exist).
  if (f.msg === 'signin.wrong' && f.lockAfter)
    msg.append(el('span', { class: 'said', 'data-testid': 'signin-tries' }, t('signin.tries', { max: f.lockAfter })));
  msg.className = 'msg ' + (f.msg === 'signin.idle' || f.msg === 'signin.signed_out' ? 'info' : 'warn');
  if (f.msg) msg.dataset.msg = f.msg;
  else delete msg.dataset.msg;
  const btn = $('#signin-submit');
  btn.disabled = f.busy;
  btn.textContent = t(f.busy ? 'signin.checking' : 'signin.submit');
}

function pick(name) {
  S.signin.field = name;
  fillSignin();
}

function press(key) {
  const f = S.signin;
  const v = f[f.field];
  if (key === 'erase') f[f.field] = v.slice(0, -1);
  else if (key === 'clear') f[f.field] = '';
  else if (v.length < MAX[f.field]) {
    f[f.field] = v + key;
    if (f.field === 'nip' && f.nip.length === MAX.nip && f.pin.length < MAX.pin) f.field = 'pin';
  }
  fillSignin();
}

async function submit() {
  const f = S.signin;
  if (f.busy) return;
  if (f.nip.length !== MAX.nip || f.pin.length !== MAX.pin) {
    f.msg = 'signin.incomplete';
    f.field = f.nip.length !== MAX.nip ? 'nip' : 'pin';
    return fillSignin();
  }
  f.busy = true;
  fillSignin();
  const r = await api('/auth/signin', { method: 'POST', body: { nip: f.nip, pin: f.pin }, signin: true });
  f.busy = false;
  if (r.ok) return signedIn(r.data.officer, S.pickedLang);
  const msgs = { 401: 'signin.wrong', 423: 'signin.locked', 400: 'signin.incomplete', 0: 'error.network' };
  f.msg = msgs[r.status] || 'error.network';
  if (r.status === 401) f.lockAfter = r.data?.max_pin_failures || null;
  f.pin = '';
  f.field = 'pin';
  fillSignin();
}

function onKey(e) {
  if (S.screen !== 'signin' || e.ctrlKey || e.altKey || e.metaKey) return;
  if (/^\d$/.test(e.key)) press(e.key);
  else if (e.key === 'Backspace') press('erase');
  else if (e.key === 'Enter' && !(e.target instanceof HTMLButtonElement)) submit();
  else return;
  e.preventDefault();
}

// --- orders ------------------------------------------------------------------------------

// The day's orders into S.orders; false when the sign-in ended meanwhile.
async function fetchOrders() {
  const day = kitZone() ? '?day=' + today() : '';
  const r = await api('/orders' + day);
  if (!S.officer) return false;
  S.orders = r.ok ? (Array.isArray(r.data) ? r.data : r.data.orders || []) : S.orders;
  S.ordersError = r.ok ? null : apiText(r.data.error, null);
  return true;
}

async function openOrders() {
  if (!(await fetchOrders())) return;
  S.start = { busy: false, error: null };
  show('orders');
}

function badge(category) {
  const c = has('cat.' + category) ? category : 'lainnya';
  return el('span', { class: 'badge cat-' + c, 'data-category': category }, t('cat.' + c));
}

function companionText(o) {
  const c = o.companion;
  if (!c?.name) return t('order.none');
  return c.relation ? `${c.name} (${c.relation})` : c.name;
}

function ordersScreen() {
  const groups = { today: [], other: [], none: [] };
  const now = today();
  for (const o of S.orders)
    groups[!o.appointment?.start ? 'none' : ymd(o.appointment.start) === now ? 'today' : 'other'].push(o);
  const n = S.orders.length;
  const head = el(
    'div',
    { class: 'head' },
    el(
      'div',
      { class: 'titles' },
      el('h1', {}, t('orders.title')),
      el('span', { class: 'sub' }, t('orders.today', { date: dayText(now) })),
      ' · ',
      el(
        'span',
        { class: 'sub', 'data-testid': 'orders-count' },
        n === 1 ? t('orders.count_one') : t('orders.count', { n }),
      ),
    ),
    isTechnician() &&
      el(
        'button',
        { type: 'button', class: 'quiet', 'data-testid': 'tech-open', onclick: () => openTech() },
        icon('⚙'),
        t('tech.open'),
      ),
    el(
      'button',
      { type: 'button', class: 'quiet', 'data-testid': 'orders-reload', onclick: openOrders },
      icon('↻'),
      t('orders.reload'),
    ),
  );
  const list = el('div', {
    class: 'scroll',
    tabindex: '0',
    'aria-label': t('orders.title'),
    'data-testid': 'orders-list',
  });
  if (S.ordersError)
    list.append(
      el(
        'p',
        { class: 'msg warn', role: 'alert', 'data-testid': 'orders-error' },
        `${t('orders.error')} ${S.ordersError}`,
      ),
    );
  else if (!n) list.append(el('p', { class: 'empty', 'data-testid': 'orders-empty' }, t('orders.empty')));
  for (const [g, orders] of Object.entries(groups)) {
    if (!orders.length) continue;
    list.append(
      el('h2', { 'data-group': g }, t('orders.group_' + g)),
      el(
        'ul',
        { class: 'cards' },
        orders.map((o) => el('li', {}, orderCard(o))),
      ),
    );
  }
  return el('main', { class: 'orders' }, head, el('div', { id: 'dyn' }), list);
}

function orderCard(o) {
  const a = o.address || {};
  const win = windowText(o);
  return el(
    'button',
    {
      type: 'button',
      class: 'card cat-' + o.category,
      'data-testid': 'order-card',
      'data-order-id': o.order_id,
      onclick: () => openOrder(o),
    },
    el(
      'span',
      { class: 'c-top' },
      el('span', { class: 'c-name' }, o.name),
      badge(o.category),
      el('span', { class: 'c-time' + (win ? '' : ' none') }, win || t('orders.group_none')),
    ),
    el('span', { class: 'c-line' }, el('b', {}, t('order.needs') + ': '), o.needs || t('order.none')),
    el(
      'span',
      { class: 'c-line' },
      el('b', {}, t('order.companion') + ': '),
      companionText(o),
      o.companion?.phone ? ` · ${phoneText(o.companion.phone)}` : '',
    ),
    el('span', { class: 'c-line' }, [a.street, a.kelurahan].filter(Boolean).join(', ')),
  );
}

function activeBanner() {
  const v = S.summary?.visit;
  if (!v) return othersBanner();
  const o = S.orders.find((x) => x.order_id === v.order_id);
  return el(
    'div',
    { class: 'banner', 'data-testid': 'active-visit' },
    el('span', {}, icon('⚠'), t('orders.active', { name: o ? o.name : v.order_id })),
    el(
      'button',
      { type: 'button', class: 'primary', 'data-testid': 'continue-visit', onclick: () => openVisit(v.id) },
      t('order.continue'),
    ),
    S.start.error &&
      el('p', { class: 'msg warn', role: 'alert', 'data-testid': 'start-error' }, S.start.error),
  );
}

// The officer's own visits that someone else ended today (a supervisor at this screen, say):
// signing in, the officer finds the visit gone, and is told by whom, when and how.
function endedByOthers() {
  return (S.summary?.ended_by_others || []).map((e) => {
    const o = S.orders.find((x) => x.order_id === e.order_id);
    const r = e.reschedule;
    const when = r && appointmentText(r, { day: 'numeric', month: 'long' });
    return el(
      'div',
      { class: 'banner', role: 'status', 'data-testid': 'ended-by-other', 'data-visit-id': e.id },
      el(
        'span',
        {},
        icon('⚠'),
        t('orders.ended_by_other', {
          // The order's personal fields are erased as its visit ends: its id, unless rescheduled.
          name: o ? o.name : t('orders.order_ref', { id: e.order_id }),
          // No officer: given on the kit's own socket (kitctl), with no sign-in behind it.
          by: e.by.nip === 'system' ? t('orders.by_system') : e.by.name || e.by.nip,
          time: time(e.ended_at),
          outcome: t('outcome.' + e.code),
        }),
        when ? ` ${t('ended.rescheduled', { when })}` : '',
        e.note ? ` ${t('outcome.note')}: ${e.note}` : '',
      ),
    );
  });
}

// Another officer's visit is open: whose, and a way to end it (that officer could also sign
// in and continue it; only they can seal it).
function othersBanner() {
  const v = S.summary?.others_visit;
  if (!v) return '';
  const o = S.orders.find((x) => x.order_id === v.order_id);
  return el(
    'div',
    { class: 'banner', 'data-testid': 'others-visit' },
    el(
      'span',
      {},
      icon('⚠'),
      t('orders.others_visit', { name: o ? o.name : v.order_id, officer: v.officer.name || v.officer.nip }),
    ),
    el(
      'button',
      { type: 'button', 'data-testid': 'end-others-visit', onclick: () => openVisit(v.id, true) },
      t('orders.end_others_visit'),
    ),
  );
}

// --- one order ---------------------------------------------------------------------------

function openOrder(order) {
  S.order = order;
  S.start = { busy: false, error: null };
  S.dialog = null;
  S.visitError = null;
  show('order');
}

function addressText(a = {}) {
  return [
    a.street,
    a.rt || a.rw ? t('addr.rt_rw', { rt: a.rt || '-', rw: a.rw || '-' }) : null,
    a.kelurahan && t('addr.kel', { v: a.kelurahan }),
    a.kecamatan && t('addr.kec', { v: a.kecamatan }),
    a.kabupaten_kota,
  ]
    .filter(Boolean)
    .join(', ');
}

function birthText(bd) {
  if (!bd) return t('order.none');
  const [y, m, d] = bd.split('-').map(Number);
  const [ty, tm, td] = today().split('-').map(Number);
  const age = ty - y - (tm < m || (tm === m && td < d) ? 1 : 0);
  return `${dayText(bd, { day: 'numeric', month: 'long', year: 'numeric' })} (${t('order.age', { n: age })})`;
}

function orderScreen() {
  const o = S.order;
  const facts = [
    ['order.appointment', windowText(o) || t('orders.group_none'), 'big-num'],
    ['order.needs', o.needs || t('order.none')],
    ['order.companion', companionText(o)],
    ['order.companion_phone', o.companion?.phone ? phoneText(o.companion.phone) : t('order.none'), 'big-num'],
    ['order.address', addressText(o.address)],
    ['order.birth', birthText(o.birth_date)],
    ['order.sex', has('sex.' + o.sex) ? t('sex.' + o.sex) : o.sex || t('order.none')],
    ['order.nik', o.nik, 'num'],
    ['order.kk', o.kk, 'num'],
    ['order.kind', has('kind.' + o.kind) ? t('kind.' + o.kind) : o.kind],
    ['order.id', o.order_id, 'num'],
  ];
  const dl = el('dl', { class: 'facts', 'data-testid': 'order-facts' });
  for (const [key, value, cls] of facts)
    dl.append(el('dt', {}, t(key)), el('dd', { class: cls, 'data-field': key.slice(6) }, value ?? ''));
  return el(
    'main',
    { class: 'order' },
    el(
      'div',
      { class: 'head' },
      el(
        'button',
        { type: 'button', class: 'quiet', 'data-testid': 'back', onclick: openOrders },
        icon('←'),
        t('order.back'),
      ),
      el('h1', {}, o.name),
      badge(o.category),
    ),
    el(
      'div',
      { class: 'cols' },
      el('div', { class: 'scroll', tabindex: '0', 'aria-label': t('order.details') }, dl),
      el('div', { id: 'dyn', class: 'side' }),
    ),
    S.dialog?.kind === 'door' && outcomeDialog({ state: 'door', order_id: o.order_id }),
  );
}

function startPanel() {
  const s = S.summary;
  const v = s?.visit;
  const box = el('div', { class: 'panel', 'data-testid': 'start-panel' });
  if (v) {
    box.append(
      el(
        'button',
        { type: 'button', class: 'big go', 'data-testid': 'continue-visit', onclick: () => openVisit(v.id) },
        t('order.continue'),
      ),
    );
    if (v.order_id !== S.order.order_id)
      box.append(el('p', { class: 'msg info' }, t('order.other_visit', { id: v.order_id })));
  } else {
    const vs = s?.visit_start;
    const possible = !!vs?.possible;
    box.append(
      el(
        'button',
        {
          type: 'button',
          class: 'big go',
          'data-testid': 'start-visit',
          disabled: !possible || S.start.busy,
          'aria-describedby': 'start-why',
          onclick: startVisit,
        },
        t(S.start.busy ? 'order.starting' : 'order.start'),
      ),
    );
    const why = el('div', { id: 'start-why', class: 'why', 'data-testid': 'start-reasons' });
    if (!vs) why.append(el('p', {}, t('order.checking')));
    else if (possible) why.append(el('p', { class: 'msg ok' }, icon('✓'), t('order.ready')));
    else
      why.append(
        el('p', {}, t('order.cannot_start')),
        el(
          'ul',
          {},
          (vs.reasons || []).map((r) =>
            el('li', { 'data-reason': r.code, 'data-device': r.device }, apiText(r.code, r.message)),
          ),
        ),
      );
    box.append(why);
    if (s?.others_visit)
      box.append(
        el(
          'button',
          { type: 'button', 'data-testid': 'end-others-visit', onclick: () => openVisit(s.others_visit.id, true) },
          t('orders.end_others_visit'),
        ),
      );
  }
  // Nobody at home, or the family asks for another day: said without a visit, so without the
  // devices a visit needs (a reader unplugged must not keep the order open), and while another
  // order's visit waits. This order's own running visit gives its outcome itself.
  const id = S.order.order_id;
  if (s && s.visit?.order_id !== id && s.others_visit?.order_id !== id)
    box.append(
      el(
        'button',
        {
          type: 'button',
          class: 'quiet',
          'data-testid': 'door-outcome',
          disabled: S.start.busy,
          onclick: () => openDialog({ kind: 'door' }),
        },
        t('order.door_outcome'),
      ),
    );
  if (S.start.error)
    box.append(el('p', { class: 'msg warn', role: 'alert', 'data-testid': 'start-error' }, S.start.error));
  // The pre-visit check refused the visit: what failed, each with what to do.
  if (S.start.checks?.length)
    box.append(
      el(
        'ul',
        { class: 'msg warn', 'data-testid': 'precheck-failed' },
        S.start.checks.map((c) => el('li', { 'data-check': c.id }, apiText(c.id, c.message))),
      ),
    );
  return box;
}

async function startVisit() {
  if (S.start.busy) return;
  S.start = { busy: true, error: null };
  updateDynamic();
  const r = await api('/visits', { method: 'POST', body: { order_id: S.order.order_id } });
  S.start = {
    busy: false,
    error: r.ok ? null : apiText(r.data.error, null),
    checks: !r.ok && r.data.error === 'precheck_failed' ? r.data.checks : null,
  };
  if (!S.officer) return;
  if (r.ok) {
    // The pre-visit check's warnings, shown on the visit's first screen.
    S.precheck = { visit: r.data.id, findings: r.data.precheck?.findings || [] };
    S.visit = r.data;
    S.dialog = null;
    S.visitError = null;
    show('visit');
  } else updateDynamic();
  refresh();
}

// --- the visit: identity, capture, exceptions, signature, review, outcome -----------------

// What each kind of item may be excepted for (the visit's own reason codes).
const EXCEPTION_REASONS = {
  finger: ['amputated', 'bandaged', 'unable_to_print', 'cannot_position'],
  thumbprint: ['amputated', 'bandaged', 'unable_to_print', 'cannot_position'],
  iris: ['missing', 'blind_or_diseased', 'cannot_open'],
  signature: ['cannot_sign'],
};
const OUTCOMES = ['not_home', 'refused', 'unable', 'rescheduled', 'cancelled'];
const NEEDS_NOTE = ['unable', 'cancelled'];
// A session ended by one of its limits with nothing kept: what the screen says instead of coaching.
const LIMITS = { time_limit: 'timed_out', attempt_limit: 'attempts_out' };
const WAITING_NOTE_MS = 2000; // an action's answer slower than this is said to be awaited
const NOTE_MAX = 1000; // characters: the daemon's limit (visit_machine.MAX_OUTCOME_NOTE)
const OPEN = ['identity', 'capturing', 'review', 'ending'];
const ITEM_DEVICE = { finger: 'fingerprint', thumbprint: 'fingerprint', iris: 'iris_camera', signature: 'signature' };
const MODALITY = { finger: 'fingerprint', thumbprint: 'fingerprint', iris: 'iris', signature: 'signature' };
// Each item's standing as a symbol too (never only a colour).
const MARK = { pending: '○', capturing: '◉', captured: '✓', forced: '!', excepted: '✕', to_retake: '↻' };

const kindOf = (item) => item.split(':')[0];
const itemOf = (v, name) => v.items.find((i) => i.item === name);

function itemName(v, name) {
  const kind = kindOf(name);
  if (kind === 'finger') return t('finger.' + name.split(':')[1]);
  if (kind === 'iris') return t('eye.' + name.split(':')[1]);
  if (kind === 'thumbprint') return t('item.thumbprint', { finger: t('finger.' + itemOf(v, name).finger) });
  return t('item.signature');
}

const scoreText = (n) =>
  n == null ? '–' : new Intl.NumberFormat(LOCALES[S.lang], { maximumFractionDigits: 1 }).format(n);

// `ending`: opened to give its outcome (another officer's visit, ended from this sign-in).
async function openVisit(id, ending = false) {
  const r = await api('/visits/' + encodeURIComponent(id));
  if (!S.officer) return;
  if (r.ok) {
    S.visit = r.data;
    S.dialog = ending || S.visit.state === 'ending' ? { kind: 'outcome' } : null;
    S.visitError = null;
    followSession(r.data); // a session running (or over) before the page came back to it
    return show('visit');
  }
  S.start = { busy: false, error: apiText(r.data.error, null) };
  updateDynamic();
}

// The visit as the daemon has it now, and the screen redrawn if what it shows changed.
// Answers are applied in the order asked: a late answer to an older question never
// overwrites a newer one. While an action is under way its own answer comes first.
async function reloadVisit() {
  const v = S.visit;
  if (!v || S.screen !== 'visit') return;
  if (S.visitBusy) return void (S.visitStale = true);
  const seq = (S.visitSeq = (S.visitSeq || 0) + 1);
  const r = await api('/visits/' + encodeURIComponent(v.id));
  if (!r.ok || S.screen !== 'visit' || S.visit?.id !== v.id || seq < (S.visitShown || 0)) return;
  if (S.visitBusy) return void (S.visitStale = true);
  S.visitShown = seq;
  setVisit(r.data);
  if (S.visitError?.network) {
    S.visitError = null; // the kit answers again
    show('visit');
  }
}

function setVisit(v) {
  const before = S.visit;
  S.visit = v;
  if (v.state === 'ending' && !S.dialog) {
    S.dialog = { kind: 'outcome' };
    S.visitError = null; // opened by the kit's Cancel: no earlier refusal is the outcome's
  }
  // "Keep it without a pass?" asked of a best that has since passed, or of an item done
  // meanwhile, asks nothing any more.
  const asked = S.dialog?.kind === 'force' && itemOf(v, S.dialog.item);
  const moot = S.dialog?.kind === 'force' && (!asked || asked.status !== 'capturing' || asked.passed);
  if (moot) S.dialog = null;
  followSession(v);
  // Rebuilt only when what the screen is made of changes: the running item's score and
  // feedback are patched in place (they change with every frame).
  const items = (x) =>
    (x?.items || []).map((i) => [i.item, i.status, i.exception?.reason, i.status === 'capturing' ? null : i.score]);
  const key = (x) =>
    JSON.stringify([x?.state, x?.current, items(x), x?.bundle, x?.outcome, x?.resumed, x?.order_withdrawn]);
  if (moot || key(before) !== key(v) || S.screen !== 'visit') show('visit');
  else fillLive();
}

function onVisitEvent(e) {
  let data;
  try {
    data = JSON.parse(e.data);
  } catch {
    return;
  }
  if (S.visit && data.visit === S.visit.id) reloadVisit();
}

// A withdrawn order leaves the day's list at once; its running visit, if any, learns of it
// by its own visit event (and shows it: withdrawnNote).
function onOrderWithdrawn() {
  refresh();
  if (S.screen === 'orders' && !S.start?.busy) openOrders();
}

// The kit's Skip button asks for the item's exception reasons: the screen opens them (the
// officer still picks one and confirms it here).
function onPanelEvent(e) {
  let d;
  try {
    d = JSON.parse(e.data);
  } catch {
    return;
  }
  if (!S.officer) return;
  panelNote(d);
  const v = S.visit;
  if (S.screen !== 'visit' || !v || d.visit !== v.id) return;
  if (d.action === 'exception_reasons' && d.item && itemOf(v, d.item))
    openDialog({ kind: 'except', item: d.item, reason: null, step: 'pick' });
}

// What a button of the panel did (or that it means nothing now), said for a few seconds
// outside the screen's own content: the officer pressed it without looking at the screen.
function panelNote(d) {
  let note = document.querySelector('[data-testid="panel-note"]');
  if (!note) {
    note = el('p', { class: 'msg info panel-note', role: 'status', 'data-testid': 'panel-note' });
    document.body.append(note);
  }
  const button = t('panel.button.' + d.button);
  const key = d.outcome === 'failed' ? 'panel.failed' : 'panel.did.' + d.action;
  note.textContent = t(S.cat.id?.[key] ? key : 'panel.did.other', { button });
  note.dataset.action = d.action;
  note.hidden = false;
  clearTimeout(S.panelTimer);
  S.panelTimer = setTimeout(() => {
    note.hidden = true;
  }, PANEL_NOTE_MS);
}

// --- the running capture: events, the press image, the iris preview, the ink --------------

// The current item's session, while it is capturing: its events, its press, its preview.
function followSession(v) {
  const cur = v.current && itemOf(v, v.current);
  const sid = cur?.status === 'capturing' ? cur.session_id : null;
  if (sid !== S.live.session) startLive(v, sid);
}

function startLive(v, sid) {
  stopLive();
  const cur = sid && itemOf(v, v.current);
  S.live = { session: sid, item: cur?.item, kind: cur ? kindOf(cur.item) : null, ink: [], drawn: 0 };
  if (cur && S.live.kind === 'iris') irisStream();
  if (cur) catchUp(sid);
}

// The session may have ended before the page followed it: over in a few quick presses before
// the visit naming it reached the page, or while the page was closed or reloading. Its end
// event is then gone by; the session's own state says it, asked once.
async function catchUp(sid) {
  const r = await api(`/sessions/${encodeURIComponent(sid)}`);
  if (!r.ok || S.live.session !== sid || r.data.state === 'running') return;
  const best = r.data.result;
  if (S.live.score == null && best) Object.assign(S.live, { score: best.score, feedback: best.feedback, frame: best.frame });
  liveEnded({ outcome: r.data.state, ended_by: r.data.ended_by });
}

// A session's end, said by its event or found by catchUp (whichever comes first; once).
function liveEnded(d) {
  if (S.live.ended) return;
  S.live.ended = true;
  const limit = LIMITS[d.ended_by];
  if (d.outcome === 'failed' && !limit) {
    // The device failed under the session (ended_by device).
    S.live.failed = true;
    fillLive();
    updateDynamic();
  } else if (d.outcome === 'failed') {
    // The time ran out with nothing at all to judge (no finger, no pen): not a device fault.
    S.live.limit = 'nothing_in_time';
    fillLive();
  } else if (d.outcome === 'forced' && limit && S.live.kind !== 'signature') {
    // The time or attempt limit came before the kit kept a capture (not the officer's own
    // Terima): coaching on would be for nothing.
    S.live.limit = limit;
    fillLive();
  }
  reloadVisit();
}

function stopLive() {
  S.live.abort?.abort();
  if (S.live.url) URL.revokeObjectURL(S.live.url);
  if (S.live.irisUrl) URL.revokeObjectURL(S.live.irisUrl);
  S.live = {};
}

function onLiveEvent(type, e) {
  if (S.screen !== 'visit' || !S.live.session) return;
  let d;
  try {
    d = JSON.parse(e.data);
  } catch {
    return;
  }
  if (d.session !== S.live.session) return;
  if (type === 'assessment') {
    Object.assign(S.live, {
      score: d.score,
      passed: d.passed,
      feedback: d.feedback,
      passes: d.passes,
      needed: d.passes_needed,
      frame: d.frame,
      at: performance.now(),
    });
    fillLive();
    if (S.live.kind === 'finger' || S.live.kind === 'thumbprint') loadPress(d.frame);
  } else if (type === 'ink') {
    S.live.pad = d;
    S.live.ink.length = d.from;
    S.live.ink.push(...d.points);
    drawInk();
  } else if (type === 'end') liveEnded(d);
}

// The latest press, fetched when its assessment arrives; kept in memory only (a blob URL).
async function loadPress(frame) {
  const sid = S.live.session;
  if (S.live.pressBusy) return void (S.live.pressAgain = frame);
  S.live.pressBusy = true;
  try {
    const res = await fetch(`${API}/sessions/${sid}/press`, { cache: 'no-store' });
    if (res.ok && S.live.session === sid) {
      const url = URL.createObjectURL(await res.blob());
      const img = document.getElementById('press-img');
      if (S.live.url) URL.revokeObjectURL(S.live.url);
      S.live.url = url;
      if (img) {
        img.src = url;
        img.dataset.press = res.headers.get('X-Kit-Press') || '';
      }
    }
  } catch {
    // the next press brings the next image
  }
  if (S.live.session !== sid) return;
  S.live.pressBusy = false;
  if (S.live.pressAgain != null) {
    const again = S.live.pressAgain;
    S.live.pressAgain = null;
    loadPress(again);
  }
}

// The iris camera's MJPEG, read part by part (each one a blob URL in memory, never a file).
async function irisStream() {
  const abort = new AbortController();
  S.live.abort = abort;
  S.live.irisFrames = 0;
  const enc = new TextEncoder();
  const sep = enc.encode('\r\n\r\n');
  let buf = new Uint8Array(0);
  const find = (a, pat, from = 0) => {
    outer: for (let i = from; i <= a.length - pat.length; i++) {
      for (let j = 0; j < pat.length; j++) if (a[i + j] !== pat[j]) continue outer;
      return i;
    }
    return -1;
  };
  try {
    const res = await fetch(API + '/stream/iris.mjpg', { cache: 'no-store', signal: abort.signal });
    if (!res.ok || !res.body) return;
    const reader = res.body.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      const joined = new Uint8Array(buf.length + value.length);
      joined.set(buf);
      joined.set(value, buf.length);
      buf = joined;
      for (;;) {
        const end = find(buf, sep);
        if (end < 0) break;
        const head = new TextDecoder().decode(buf.subarray(0, end));
        const m = /Content-Length:\s*(\d+)/i.exec(head);
        const len = m ? +m[1] : -1;
        if (len < 0 || buf.length < end + 4 + len) break;
        showIris(buf.slice(end + 4, end + 4 + len));
        buf = buf.slice(end + 4 + len);
      }
    }
  } catch {
    // aborted (the item ended) or the stream broke: the device chip says why
  }
}

function showIris(jpeg) {
  const img = document.getElementById('iris-img');
  if (!img) return;
  const url = URL.createObjectURL(new Blob([jpeg], { type: 'image/jpeg' }));
  const old = S.live.irisUrl;
  S.live.irisUrl = url;
  img.onload = () => {
    // Decoded and shown: counted for the benchmark's frames per second.
    S.live.irisShown = (S.live.irisShown || 0) + 1;
    img.dataset.shown = String(S.live.irisShown);
  };
  img.dataset.shown = String(S.live.irisShown || 0);
  img.src = url;
  S.live.irisFrames += 1;
  img.dataset.frames = String(S.live.irisFrames);
  if (old) setTimeout(() => URL.revokeObjectURL(old), 1000);
}

function drawInk() {
  const canvas = document.getElementById('ink');
  const pad = S.live.pad;
  if (!canvas || !pad) return;
  const box = canvas.getBoundingClientRect();
  if (canvas.width !== Math.round(box.width) || canvas.height !== Math.round(box.height)) {
    canvas.width = Math.round(box.width);
    canvas.height = Math.round(box.height);
    S.live.drawn = 0;
  }
  const scale = Math.min(canvas.width / pad.max_x, canvas.height / pad.max_y);
  const ox = (canvas.width - pad.max_x * scale) / 2;
  const oy = (canvas.height - pad.max_y * scale) / 2;
  const ctx = canvas.getContext('2d');
  if (S.live.drawn === 0) ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = '#0b2f57';
  ctx.lineCap = 'round';
  const ink = S.live.ink;
  for (let i = Math.max(1, S.live.drawn); i < ink.length; i++) {
    const [x0, y0, , t0] = ink[i - 1];
    const [x1, y1, p1, t1] = ink[i];
    if (!t0 || !t1) continue;
    ctx.lineWidth = 1.5 + 3 * (p1 / (pad.max_pressure || 1));
    ctx.beginPath();
    ctx.moveTo(ox + x0 * scale, oy + y0 * scale);
    ctx.lineTo(ox + x1 * scale, oy + y1 * scale);
    ctx.stroke();
  }
  S.live.drawn = ink.length;
  canvas.dataset.points = String(ink.length);
  canvas.dataset.drawnAt = String(Date.now());
}

// The feedback, score, meter and progress, patched in place (no rebuild under a finger).
function fillLive() {
  const msg = document.getElementById('live-msg');
  if (!msg) return;
  const L = S.live;
  const v = S.visit;
  const cur = v.current && itemOf(v, v.current);
  const score = L.score ?? cur?.score ?? null;
  let text;
  let tone = 'info';
  let code = '';
  if (L.failed) {
    text = t('capture.failed');
    tone = 'warn';
    code = 'failed';
  } else if (L.limit) {
    // The buttons' own names: a signature's are "Clear, sign again" and "Accept signature".
    const accept = t(L.kind === 'signature' ? 'action.accept_signature' : 'action.accept');
    text = t('capture.' + L.limit, { retry: itemAction(cur), accept });
    tone = 'warn';
    code = L.limit;
  } else if (!L.session) text = t(cur?.status === 'to_retake' ? 'capture.retake' : 'capture.ready');
  else if (L.feedback?.length) {
    code = L.feedback[0];
    text = S.msgs?.feedback?.[MODALITY[L.kind]]?.[code]?.[S.lang] || t('capture.adjust');
    tone = 'warn';
  } else if (L.passed && L.needed) {
    text = t('capture.hold', { n: L.passes, m: L.needed });
    tone = 'ok';
    code = 'hold';
  } else if (L.passed) {
    text = t(L.kind === 'signature' ? 'capture.sign_ok' : 'capture.good');
    tone = 'ok';
    code = 'good';
  } else text = t(L.kind === 'signature' ? 'capture.sign_now' : 'capture.waiting');
  msg.textContent = text;
  msg.className = 'live-msg ' + tone;
  msg.dataset.code = code;
  msg.dataset.frame = String(L.frame ?? ''); // which assessment it says (tests, benchmark)
  const sc = document.getElementById('live-score');
  sc.textContent = t('capture.score', { score: scoreText(score) });
  const meter = document.getElementById('live-meter');
  meter.value = score ?? 0;
  const accept = document.getElementById('act-accept');
  if (accept) accept.disabled = S.visitBusy || (score == null && !L.passed);
}

// --- actions ---------------------------------------------------------------------------

// What the daemon said of a refused visit action, in the officer's words first and, when it
// says more than the code (which field, which item), in its own English words second.
function visitRefusal(data) {
  const text = apiText(data?.error, null);
  const said = typeof data?.message === 'string' && data.error !== 'network' ? data.message : null;
  return { text, said, code: data?.error, network: data?.error === 'network' };
}

function refusalNote(testid) {
  const e = S.visitError;
  return (
    e &&
    el(
      'p',
      { class: 'msg warn', role: 'alert', 'data-testid': testid },
      e.text,
      e.said && el('span', { class: 'said', lang: 'en' }, e.said),
    )
  );
}

// An answer that is slow to come (a kit that hangs) is said at once, not after the timeout:
// after WAITING_NOTE_MS, while `still()`, a note goes after the element `at()` finds.
function waitingNote(at, still) {
  const timer = setTimeout(() => {
    const place = at();
    if (!place || !still() || document.querySelector('[data-testid="visit-waiting"]')) return;
    place.after(el('p', { class: 'msg info', role: 'status', 'data-testid': 'visit-waiting' }, t('visit.waiting')));
  }, WAITING_NOTE_MS);
  return {
    done: () => {
      clearTimeout(timer);
      document.querySelector('[data-testid="visit-waiting"]')?.remove();
    },
  };
}

// One action the officer waits on: S.visitBusy while the kit answers, the `buttons` greyed,
// the waiting note after `noteAt()` if the answer is slow (while `still()`); the answer.
async function busyPost(url, body, buttons, noteAt, still) {
  S.visitBusy = true;
  S.visitError = null;
  document.querySelectorAll(buttons).forEach((b) => (b.disabled = true));
  const slow = waitingNote(noteAt, () => S.visitBusy && still());
  const r = await api(url, { method: 'POST', body });
  slow.done();
  S.visitBusy = false;
  return r;
}

async function visitAct(path, body, onDone) {
  if (S.visitBusy) return null;
  const v = S.visit;
  S.visitStale = false;
  const seq = (S.visitSeq = (S.visitSeq || 0) + 1);
  const r = await busyPost(
    `/visits/${encodeURIComponent(v.id)}/${path}`,
    body,
    'main.visit button.act',
    () => document.querySelector('main.visit #vdev'),
    () => S.visitSeq === seq,
  );
  if (!S.officer || S.visit?.id !== v.id) return null;
  if (r.ok) {
    if (/\/(start|retry)$/.test(path)) S.live.session = null; // a new session: start afresh
    if (onDone) onDone(r.data);
    S.visitShown = seq;
    setVisit(r.data);
    show('visit');
    // What changed while the action was under way (a capture is quick) is asked for now.
    if (S.visitStale) reloadVisit();
    return r.data;
  }
  S.visitError = visitRefusal(r.data);
  // A kit that did not answer would keep the officer waiting again for the reload's own timeout.
  if (!S.visitError.network) await reloadVisit();
  show('visit');
  return null;
}

function deviceOf(item) {
  const kind = ITEM_DEVICE[kindOf(item)];
  return (S.summary?.devices || []).find((d) => d.kind === kind || d.id === kind);
}

// A device gone mid-capture: which one and what to do; the visit is kept.
function deviceTrouble() {
  const v = S.visit;
  if (!v || v.state !== 'capturing' || !v.current) return '';
  const d = deviceOf(v.current);
  const gone = d && d.status !== 'ready' && d.status !== 'busy';
  // Starting again is not offered while the device is away.
  for (const id of ['act-start', 'act-retry']) {
    const b = document.getElementById(id);
    if (b) b.disabled = !!gone || S.visitBusy;
  }
  if (!gone && !S.live.failed) return '';
  const name = d ? deviceName(d) : t('dev.' + ITEM_DEVICE[kindOf(v.current)]);
  return el(
    'p',
    { class: 'msg warn', role: 'alert', 'data-testid': 'device-trouble', 'data-device': d?.id },
    icon('⚠'),
    t(gone ? 'capture.device_gone' : 'capture.device_failed', { device: name, action: itemAction(itemOf(v, v.current)) }),
  );
}

// --- the screen --------------------------------------------------------------------------

function visitOrder(v) {
  return S.orders.find((x) => x.order_id === v.order_id) || (S.order?.order_id === v.order_id ? S.order : null);
}

function visitScreen() {
  const v = S.visit;
  const o = visitOrder(v);
  const head = el(
    'div',
    { class: 'head vhead' },
    el(
      'button',
      { type: 'button', class: 'quiet', 'data-testid': 'back', onclick: openOrders },
      icon('←'),
      t('visit.back'),
    ),
    el(
      'div',
      { class: 'titles' },
      el('h1', {}, o ? o.name : t('visit.title')),
      el(
        'span',
        { class: 'sub', 'data-testid': 'visit-facts' },
        `${has('state.' + v.state) ? t('state.' + v.state) : v.state} · `,
        el('span', { class: 'num', 'aria-label': `${t('visit.id')} ${v.id}` }, v.id),
      ),
    ),
    OPEN.includes(v.state) &&
      el(
        'button',
        { type: 'button', class: 'quiet', 'data-testid': 'end-visit', onclick: () => openDialog({ kind: 'outcome' }) },
        t('visit.end'),
      ),
  );
  const body =
    {
      identity: identityView,
      capturing: captureView,
      review: reviewView,
      ending: reviewOrCapture,
      finished: finishedView,
      ended: endedView,
    }[v.state] || finishedView;
  const main = el(
    'main',
    { class: 'visit', 'data-visit-id': v.id, 'data-state': v.state },
    head,
    el('div', { id: 'vdev' }),
    !S.dialog && refusalNote('visit-error'),
    withdrawnNote(v),
    precheckNote(v),
    resumedNote(v),
    body(v),
  );
  if (S.dialog)
    main.append({ except: exceptDialog, redo: redoDialog, force: forceDialog }[S.dialog.kind]?.(v) || outcomeDialog(v));
  queueMicrotask(() => {
    fillLive();
    if (S.live.ink?.length) {
      S.live.drawn = 0;
      drawInk();
    }
    if (S.live.url) {
      const img = document.getElementById('press-img');
      if (img) img.src = S.live.url;
    }
    if (S.live.irisUrl) {
      const img = document.getElementById('iris-img');
      if (img) img.src = S.live.irisUrl;
    }
  });
  return main;
}

function reviewOrCapture(v) {
  return v.items.every((i) => ['captured', 'forced', 'excepted'].includes(i.status)) ? reviewView(v) : captureView(v);
}

// The office withdrew the order while the visit runs (a field laptop's withdrawal): said at
// once, in words; the officer may still finish, and the office decides.
function withdrawnNote(v) {
  if (!v.order_withdrawn || !OPEN.includes(v.state)) return null;
  return el(
    'p',
    { class: 'msg warn', role: 'alert', 'data-testid': 'order-withdrawn' },
    icon('⚠'),
    t('visit.order_withdrawn'),
  );
}

// What the pre-visit check warned of (the clock not confirmed, a warm CPU, a dirty sensor):
// shown while the officer records who is present, before any capture.
function precheckNote(v) {
  const found = S.precheck?.visit === v.id ? S.precheck.findings : [];
  if (!found.length || v.state !== 'identity') return null;
  return el(
    'div',
    { class: 'msg warn', 'data-testid': 'precheck-warnings' },
    el('p', {}, icon('⚠'), t('visit.precheck_warnings')),
    el(
      'ul',
      {},
      found.map((c) => el('li', { 'data-check': c.id }, apiText(c.id, c.message))),
    ),
  );
}

// After a restart: which items must be taken again, and why.
function resumedNote(v) {
  if (!v.resumed || !OPEN.includes(v.state)) return null;
  // Only what the restart took: an item a Cancel interrupted is to retake too, for that reason.
  const lost = (i) => (i.history?.at(-1)?.ended ?? 'restart') === 'restart';
  const again = v.items.filter((i) => i.status === 'to_retake' && lost(i));
  if (!again.length) return null;
  return el(
    'p',
    { class: 'msg info', role: 'status', 'data-testid': 'resumed' },
    icon('↻'),
    t('visit.resumed', { n: again.length, items: again.map((i) => itemName(v, i.item)).join(', ') }),
  );
}

// --- identity and consent -----------------------------------------------------------------

function identityView(v) {
  const o = visitOrder(v) || {};
  const guardianNeeded = v.category === 'odgj';
  if (S.identity?.vid !== v.id) S.identity = null;
  const f = (S.identity ||= {
    vid: v.id,
    applicant: true,
    companion: !!o.companion?.name,
    consent: guardianNeeded ? 'guardian' : 'applicant',
    gname: o.companion?.name || '',
    grel: o.companion?.relation || '',
  });
  if (guardianNeeded) f.consent = 'guardian';
  const toggle = (key, label, testid) =>
    el(
      'button',
      {
        type: 'button',
        class: 'choice',
        role: 'checkbox',
        'aria-checked': String(!!f[key]),
        'data-testid': testid,
        onclick: () => {
          f[key] = !f[key];
          show('visit');
        },
      },
      icon(f[key] ? '☑' : '☐'),
      label,
    );
  const consent = (who) =>
    el(
      'button',
      {
        type: 'button',
        class: 'choice',
        role: 'radio',
        'aria-checked': String(f.consent === who),
        disabled: guardianNeeded && who === 'applicant',
        'data-consent': who,
        onclick: () => {
          f.consent = who;
          show('visit');
        },
      },
      icon(f.consent === who ? '◉' : '○'),
      t('identity.consent_' + who),
    );
  const input = (key, label, id) =>
    el(
      'div',
      { class: 'tfield' },
      el('label', { for: id }, label),
      el('input', {
        id,
        type: 'text',
        value: f[key],
        autocomplete: 'off',
        oninput: (e) => {
          f[key] = e.target.value;
          // Typing does not rebuild the form (it would lose the caret): the button follows here.
          if (go) go.disabled = !ready();
        },
      }),
    );
  let go = null;
  const present = el(
    'fieldset',
    {},
    el('legend', {}, t('identity.present')),
    toggle('applicant', `${o.name || t('visit.applicant')} (${t('identity.applicant')})`, 'present-applicant'),
    o.companion?.name &&
      toggle('companion', `${o.companion.name} (${o.companion.relation || t('order.companion')})`, 'present-companion'),
  );
  const who = el(
    'fieldset',
    { role: 'radiogroup', 'aria-label': t('identity.consent') },
    el('legend', {}, t('identity.consent')),
    consent('applicant'),
    consent('guardian'),
    guardianNeeded && el('p', { class: 'msg info' }, t('identity.guardian_needed')),
  );
  const guardian =
    f.consent === 'guardian' &&
    el(
      'fieldset',
      {},
      el('legend', {}, t('identity.guardian')),
      input('gname', t('identity.guardian_name'), 'guardian-name'),
      input('grel', t('identity.guardian_relation'), 'guardian-relation'),
    );
  const submit = () => {
    const present = [];
    if (f.applicant) present.push(o.name || v.order_id);
    if (f.companion && o.companion?.name) present.push(o.companion.name);
    const body = { present, consent_by: f.consent };
    if (f.consent === 'guardian') body.guardian = { name: f.gname.trim(), relation: f.grel.trim() };
    visitAct('identity', body).then((r) => r && (S.identity = null));
  };
  const ready = () =>
    !!((f.applicant || f.companion) && (f.consent !== 'guardian' || (f.gname.trim() && f.grel.trim())));
  go = el(
    'button',
    { type: 'button', class: 'big go act', 'data-testid': 'identity-submit', disabled: !ready(), onclick: submit },
    t('identity.submit'),
  );
  // The button stays in sight below the form, which scrolls on a small screen.
  return el(
    'div',
    { class: 'review' },
    el(
      'div',
      { class: 'scroll identity', tabindex: '0', 'aria-label': t('identity.title') },
      el('h2', {}, t('identity.title')),
      present,
      who,
      guardian,
    ),
    go,
  );
}

// --- capture ------------------------------------------------------------------------------

function mark(v, i) {
  const cur = v.current === i.item;
  const status = i.status;
  return el(
    'li',
    {
      class: `mark st-${status}${cur ? ' cur' : ''}`,
      'data-item': i.item,
      'data-status': status,
      'aria-current': cur ? 'step' : null,
    },
    el('span', { class: 'sym', 'aria-hidden': 'true' }, MARK[status] || '?'),
    el('span', { class: 'mname', 'aria-hidden': 'true' }, shortName(v, i.item)),
    el('span', { class: 'sr' }, `${itemName(v, i.item)}: ${t('status.' + status)}`),
  );
}

// On the diagrams, under their hand's or the eyes' heading: the short name.
function shortName(v, name) {
  const [kind, which] = name.split(':');
  if (kind === 'finger') return t('short.finger.' + (((+which - 1) % 5) + 1));
  if (kind === 'iris') return t('short.eye.' + which);
  return itemName(v, name);
}

function diagrams(v) {
  const fingers = (from) =>
    el(
      'ul',
      { class: 'hand', 'aria-label': t(from === 1 ? 'diagram.right_hand' : 'diagram.left_hand') },
      [0, 1, 2, 3, 4].map((n) => mark(v, itemOf(v, `finger:${from + n}`))),
    );
  const hands = el(
    'div',
    { class: 'diagram', 'data-testid': 'hand-diagram' },
    el('div', { class: 'dcol' }, el('span', { class: 'dhead' }, t('diagram.right_hand')), fingers(1)),
    el('div', { class: 'dcol' }, el('span', { class: 'dhead' }, t('diagram.left_hand')), fingers(6)),
  );
  const eyes = el(
    'div',
    { class: 'dcol' },
    el('span', { class: 'dhead' }, t('diagram.eyes')),
    el(
      'ul',
      { class: 'eyes', 'data-testid': 'eye-diagram', 'aria-label': t('diagram.eyes') },
      ['iris:right', 'iris:left'].map((n) => mark(v, itemOf(v, n))),
    ),
  );
  const rest = el(
    'ul',
    { class: 'eyes', 'aria-label': t('item.signature') },
    v.items.filter((i) => ['signature', 'thumbprint'].includes(i.item)).map((i) => mark(v, i)),
  );
  return el('div', { class: 'diagrams' }, hands, eyes, rest);
}

// The words of the button that starts the item again: Retry (Clear for a signature) while it
// runs, Start (Retake for one to take again) otherwise; the device banner names the same.
function itemAction(cur) {
  if (cur?.status === 'capturing') return t(kindOf(cur.item) === 'signature' ? 'action.clear' : 'action.retry');
  return t(cur?.status === 'to_retake' ? 'action.retake' : 'action.start');
}

function captureView(v) {
  const cur = v.current && itemOf(v, v.current);
  if (!cur) return el('div', {}, diagrams(v));
  const kind = kindOf(cur.item);
  const running = cur.status === 'capturing';
  const d = deviceOf(cur.item);
  const deviceOk = !d || d.status === 'ready' || d.status === 'busy';
  let view;
  if (kind === 'iris')
    view = running
      ? el('img', { id: 'iris-img', class: 'view', alt: t('capture.iris_alt', { item: itemName(v, cur.item) }) })
      : el('div', { class: 'view empty-view' }, icon('◎'));
  else if (kind === 'signature')
    view = el('canvas', {
      id: 'ink',
      class: 'view ink',
      role: 'img',
      'aria-label': t('capture.ink_alt'),
    });
  else
    view = el('img', {
      id: 'press-img',
      class: 'view',
      alt: t('capture.press_alt', { item: itemName(v, cur.item) }),
    });
  const buttons = [];
  const btn = (id, cls, label, onclick, disabled) =>
    el('button', { type: 'button', class: 'act ' + cls, id: 'act-' + id, 'data-action': id, onclick, disabled }, label);
  if (!running)
    buttons.push(
      btn('start', 'go', itemAction(cur), () =>
        visitAct(`items/${cur.item}/start`),
        !deviceOk,
      ),
    );
  else {
    buttons.push(
      btn('retry', '', itemAction(cur), () =>
        visitAct(`items/${cur.item}/retry`),
        !deviceOk,
      ),
      btn(
        'accept',
        'go',
        t(kind === 'signature' ? 'action.accept_signature' : 'action.accept'),
        () => {
          // The item as the kit has it now: its best may have passed since the screen drew it.
          const now = itemOf(S.visit, cur.item);
          if (now?.passed === false) openDialog({ kind: 'force', item: cur.item });
          else visitAct(`items/${cur.item}/accept`);
        },
        cur.score == null,
      ),
    );
  }
  buttons.push(
    btn('except', 'warnb', t(kind === 'signature' ? 'action.cannot_sign' : 'action.except'), () =>
      openDialog({ kind: 'except', item: cur.item, reason: null, step: 'pick' }),
    ),
  );
  return el(
    'div',
    { class: 'capture', 'data-item': cur.item },
    diagrams(v),
    el(
      'section',
      { class: 'live', 'aria-labelledby': 'live-title' },
      el('h2', { id: 'live-title', 'data-testid': 'item-title' }, itemName(v, cur.item)),
      el('p', { id: 'live-msg', class: 'live-msg', role: 'status', 'aria-live': 'polite', 'data-testid': 'feedback' }),
      el(
        'div',
        { class: 'scoreline' },
        el('span', { id: 'live-score', 'data-testid': 'score' }),
        el('meter', {
          id: 'live-meter',
          min: '0',
          max: '100',
          low: '40',
          high: '60',
          optimum: '100',
          'aria-label': t('capture.quality'),
        }),
      ),
      view,
      el('div', { class: 'actions', role: 'group', 'aria-label': t('capture.actions') }, buttons),
    ),
  );
}

// --- dialogs ------------------------------------------------------------------------------

function openDialog(d) {
  S.dialog = d;
  S.visitError = null; // a refusal shown in a dialog is the dialog's own, not an earlier action's
  show(d.kind === 'door' ? 'order' : 'visit');
}

function closeDialog() {
  const door = S.dialog?.kind === 'door';
  S.dialog = null;
  if (door) return show('order');
  if (S.visit?.state === 'ending' || !ownVisit(S.visit)) return openOrders();
  show('visit');
}

const ownVisit = (v) => !!v && v.officer === S.officer?.nip;

// An outcome said at the door (the order's own action, no visit started): the ended visit
// the kit answers is shown as any ended visit.
async function doorOutcome(body) {
  if (S.visitBusy) return;
  const order = S.order;
  // Every button, its Cancel too: a tap meanwhile would hide what the kit answers.
  const r = await busyPost(
    `/orders/${encodeURIComponent(order.order_id)}/outcome`,
    body,
    '[data-testid="outcome-dialog"] button',
    () => document.querySelector('[data-testid="outcome-dialog"] h2'),
    () => true,
  );
  if (!S.officer || S.screen !== 'order' || S.order !== order) return;
  if (r.ok) {
    S.dialog = null;
    S.visit = r.data;
    show('visit');
    refresh();
    return;
  }
  S.visitError = visitRefusal(r.data);
  show('order');
  refresh(); // a visit begun meanwhile, an order withdrawn: the panel says it
}

function dialog(id, title, ...kids) {
  return el(
    'div',
    { class: 'overlay' },
    el(
      'div',
      { class: 'dialog', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': id + '-title', 'data-testid': id },
      el('h2', { id: id + '-title' }, title),
      ...kids,
    ),
  );
}

// A question before an action that loses or flags a capture: `key` names its words
// (key.title, key.text, key.keep, key.confirm), `path` the visit action the confirm takes.
function askFirst(v, key, path) {
  const item = itemName(v, S.dialog.item);
  return dialog(
    key + '-dialog',
    t(key + '.title', { item }),
    el('p', { class: 'msg warn' }, t(key + '.text', { item })),
    el(
      'div',
      { class: 'actions' },
      el('button', { type: 'button', 'data-testid': key + '-keep', onclick: closeDialog }, t(key + '.keep')),
      el(
        'button',
        {
          type: 'button',
          class: 'primary act',
          'data-testid': key + '-confirm',
          onclick: () => {
            S.dialog = null;
            visitAct(path);
          },
        },
        t(key + '.confirm'),
      ),
    ),
  );
}

const redoDialog = (v) => askFirst(v, 'redo', `items/${S.dialog.item}/start`);
// A best that did not pass is kept only when the officer says so (flagged forced for the office).
const forceDialog = (v) => askFirst(v, 'force', `items/${S.dialog.item}/accept`);

function exceptDialog(v) {
  const d = S.dialog;
  const name = itemName(v, d.item);
  const reasons = EXCEPTION_REASONS[kindOf(d.item)];
  if (d.step === 'confirm')
    return dialog(
      'except-dialog',
      t('except.confirm_title'),
      el(
        'p',
        { class: 'msg warn', 'data-testid': 'except-summary' },
        t('except.confirm_text', { item: name, reason: t('reason.' + d.reason) }),
      ),
      el(
        'div',
        { class: 'actions' },
        el('button', { type: 'button', onclick: () => openDialog({ ...d, step: 'pick' }) }, t('dialog.back')),
        el(
          'button',
          {
            type: 'button',
            class: 'warnb act',
            'data-testid': 'except-confirm',
            onclick: () => {
              S.dialog = null;
              visitAct(`items/${d.item}/except`, { reason: d.reason, confirm: true });
            },
          },
          t('except.confirm'),
        ),
      ),
    );
  return dialog(
    'except-dialog',
    t('except.title', { item: name }),
    el(
      'div',
      { class: 'choices', role: 'radiogroup', 'aria-label': t('except.reason') },
      reasons.map((r) =>
        el(
          'button',
          {
            type: 'button',
            class: 'choice',
            role: 'radio',
            'aria-checked': String(d.reason === r),
            'data-reason': r,
            onclick: () => openDialog({ ...d, reason: r }),
          },
          icon(d.reason === r ? '◉' : '○'),
          t('reason.' + r),
        ),
      ),
    ),
    el(
      'div',
      { class: 'actions' },
      el('button', { type: 'button', onclick: closeDialog }, t('dialog.cancel')),
      el(
        'button',
        {
          type: 'button',
          class: 'primary',
          'data-testid': 'except-next',
          disabled: !d.reason,
          onclick: () => openDialog({ ...d, step: 'confirm' }),
        },
        t('dialog.next'),
      ),
    ),
  );
}

// The kit's zone's UTC offset at a wall time on a day there, as "+08:00".
function zoneOffset(day, hm) {
  const zone = kitZone() || 'UTC';
  const guess = new Date(`${day}T${hm}:00Z`);
  const name = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' })
    .formatToParts(guess)
    .find((p) => p.type === 'timeZoneName')?.value;
  const m = /GMT([+-]\d\d):?(\d\d)?/.exec(name || '');
  return m ? `${m[1]}:${m[2] || '00'}` : '+00:00';
}

// The day `n` days after `day` (both YYYY-MM-DD).
function dayAfter(day, n) {
  const [y, mo, da] = day.split('-').map(Number);
  return new Date(Date.UTC(y, mo - 1, da + n)).toISOString().slice(0, 10);
}

const LAST_START = 23 * 60 + 30; // the day's last half hour an appointment may start at
const LAST_END = 23 * 60 + 59;

function outcomeDialog(v) {
  const d = S.dialog;
  if (!d.date) {
    const tomorrow = dayAfter(today(), 1);
    Object.assign(d, { code: d.code || null, note: d.note || '', date: tomorrow, from: '09:00', to: '10:00' });
  }
  const needsNote = NEEDS_NOTE.includes(d.code);
  const resched = d.code === 'rescheduled';
  const bad = resched && !(d.date && d.from && d.to && d.to > d.from);
  const ok = d.code && (!needsNote || d.note.trim()) && !bad;
  const note = el(
    'div',
    { class: 'tfield' },
    el('label', { for: 'outcome-note' }, t(needsNote ? 'outcome.note_needed' : 'outcome.note')),
    el(
      'textarea',
      {
        id: 'outcome-note',
        maxlength: String(NOTE_MAX),
        oninput: (e) => {
          d.note = e.target.value;
          const b = document.querySelector('[data-testid="outcome-submit"]');
          if (b) b.disabled = !(d.code && (!NEEDS_NOTE.includes(d.code) || d.note.trim()) && !bad);
        },
      },
      d.note,
    ),
  );
  // A stepper instead of the browser's own pickers: 24-hour times in the page's language,
  // the day in words, targets for a finger, and nothing that opens outside the page.
  const step = (key, label, text, change) =>
    el(
      'div',
      { class: 'stepper', role: 'group', 'aria-label': label, 'data-step': key },
      el('span', { class: 'slabel', 'aria-hidden': 'true' }, label),
      el(
        'button',
        { type: 'button', 'aria-label': t('outcome.earlier', { what: label }), onclick: () => change(-1) },
        '−',
      ),
      el('output', { class: 'svalue', 'data-testid': 'resched-' + key, 'aria-live': 'polite' }, text),
      el(
        'button',
        { type: 'button', 'aria-label': t('outcome.later_step', { what: label }), onclick: () => change(1) },
        '+',
      ),
    );
  const minutes = (hm) => +hm.slice(0, 2) * 60 + +hm.slice(3);
  const hhmm = (m) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  // A family may ask for later the same day: today offers the half hours still to come.
  const firstStart = (day) => (day === today() ? Math.floor(minutesNow() / 30) * 30 + 30 : 0);
  // A dialog left open past the time it offered (the kit refuses a start already past, and
  // the steppers offer nothing before it) moves on to the first time still to come.
  const ahead = (() => {
    const now = firstStart(today());
    if (d.date > today() || (d.date === today() && minutes(d.from) >= now)) return null;
    return now <= LAST_START ? { date: today(), from: now } : { date: dayAfter(today(), 1), from: 9 * 60 };
  })();
  if (ahead) {
    // As long as the officer made it, on the same day; an hour on another.
    const length = ahead.date === d.date ? minutes(d.to) - minutes(d.from) : 60;
    Object.assign(d, { date: ahead.date, from: hhmm(ahead.from), to: hhmm(Math.min(ahead.from + length, LAST_END)) });
  }
  const moveDay = (n) => {
    const next = dayAfter(d.date, n);
    const first = firstStart(next);
    if (next < today() || first > LAST_START) return;
    const moved = { ...d, date: next };
    if (minutes(d.from) < first) {
      Object.assign(moved, { from: hhmm(first), to: hhmm(Math.min(first + 60, LAST_END)) });
    }
    openDialog(moved);
  };
  const moveTime = (key, n) => {
    const was = minutes(d[key]);
    // Half-hour steps; the day's last end is 23.59, and a step down from it is 23.30.
    let m = n > 0 ? Math.floor(was / 30) * 30 + 30 : Math.ceil(was / 30) * 30 - 30;
    if (key === 'to' && m > LAST_START && was < LAST_END) m = LAST_END;
    if (m < (key === 'from' ? firstStart(d.date) : 0) || m > (key === 'to' ? LAST_END : LAST_START)) return;
    // The end never goes to or before the start (Simpan would grey out with no word why).
    if (key === 'to' && m <= minutes(d.from)) return;
    const next = { ...d, [key]: hhmm(m) };
    if (key === 'from' && minutes(next.to) <= m) next.to = hhmm(Math.min(m + 60, LAST_END));
    openDialog(next);
  };
  const wall = (hm) => (S.lang === 'id' ? hm.replace(':', '.') : hm);
  const submit = () => {
    const body = { code: d.code };
    if (d.note.trim()) body.note = d.note.trim();
    if (resched)
      body.reschedule = {
        start: `${d.date}T${d.from}:00${zoneOffset(d.date, d.from)}`,
        end: `${d.date}T${d.to}:00${zoneOffset(d.date, d.to)}`,
      };
    // The dialog stays, with what was chosen and typed, until the kit takes the outcome.
    if (v.state === 'door') doorOutcome(body);
    else visitAct('outcome', body, () => (S.dialog = null));
  };
  // A start already past is said beside the times it moved, scrolled into view: below the
  // dialog's body it left the times out of sight on an 800 x 480 screen.
  const past = resched && S.visitError?.code === 'appointment_past';
  if (past) {
    requestAnimationFrame(() =>
      document.querySelector('[data-testid="outcome-dialog"] fieldset.when')?.scrollIntoView({ block: 'start' }),
    );
  }
  return dialog(
    'outcome-dialog',
    t(v.state === 'door' ? 'outcome.door_title' : 'outcome.title'),
    el(
      'div',
      { class: 'dscroll' },
      v.state === 'door' && el('p', { class: 'msg info' }, t('outcome.door_text')),
      v.state !== 'door' &&
        !ownVisit(v) &&
        el('p', { class: 'msg warn', 'data-testid': 'outcome-others' }, t('outcome.others_text')),
      el(
        'div',
        { class: 'choices', role: 'radiogroup', 'aria-label': t('outcome.title') },
        OUTCOMES.map((c) =>
          el(
            'button',
            {
              type: 'button',
              class: 'choice',
              role: 'radio',
              'aria-checked': String(d.code === c),
              'data-outcome': c,
              onclick: () => openDialog({ ...d, code: c }),
            },
            icon(d.code === c ? '◉' : '○'),
            t('outcome.' + c),
          ),
        ),
      ),
      resched &&
        el(
          'fieldset',
          { class: 'when' },
          el('legend', {}, t('outcome.when', { zone: kitZone() || 'UTC' })),
          past && refusalNote('outcome-error'),
          step(
            'date',
            t('outcome.date'),
            dayText(d.date, { weekday: 'short', day: 'numeric', month: 'long', year: 'numeric' }),
            moveDay,
          ),
          step('from', t('outcome.from'), wall(d.from), (n) => moveTime('from', n)),
          step('to', t('outcome.to'), wall(d.to), (n) => moveTime('to', n)),
        ),
      note,
    ),
    !past && refusalNote('outcome-error'),
    el(
      'div',
      { class: 'actions' },
      el(
        'button',
        { type: 'button', 'data-testid': 'outcome-close', onclick: closeDialog },
        t(v.state === 'ending' ? 'outcome.later' : 'dialog.cancel'),
      ),
      // The kit's Cancel held by mistake: back to the work, nothing captured lost (the visit's
      // own officer only: its bundle carries their signature).
      v.state === 'ending' &&
        ownVisit(v) &&
        el(
          'button',
          {
            type: 'button',
            class: 'act',
            'data-testid': 'outcome-carry-on',
            onclick: () => visitAct('carry-on', undefined, () => (S.dialog = null)),
          },
          t('outcome.carry_on'),
        ),
      el(
        'button',
        { type: 'button', class: 'primary act', 'data-testid': 'outcome-submit', disabled: !ok, onclick: submit },
        t('outcome.submit'),
      ),
    ),
  );
}

// --- review, finished, ended ----------------------------------------------------------------

function reviewView(v) {
  const rows = v.items.map((i) => {
    const ex = i.exception;
    const flags = [];
    if (i.status === 'forced') flags.push(t('review.forced'));
    if (ex) flags.push(t('reason.' + ex.reason));
    return el(
      'li',
      { class: `rrow st-${i.status}`, 'data-item': i.item, 'data-status': i.status },
      el('span', { class: 'sym', 'aria-hidden': 'true' }, MARK[i.status] || '?'),
      el('span', { class: 'rname' }, itemName(v, i.item)),
      el('span', { class: 'rstat' }, t('status.' + i.status), flags.length ? ` · ${flags.join(' · ')}` : ''),
      el('span', { class: 'rscore num', 'data-testid': 'item-score' }, i.score == null ? '' : scoreText(i.score)),
      v.state === 'review' &&
        el(
          'button',
          {
            type: 'button',
            class: 'act',
            'data-action': 'reopen',
            'aria-label': t('review.reopen_item', { item: itemName(v, i.item) }),
            // A kept capture is dropped when its item starts again: asked first.
            onclick: () =>
              i.status === 'captured' || i.status === 'forced'
                ? openDialog({ kind: 'redo', item: i.item })
                : visitAct(`items/${i.item}/start`),
          },
          t('review.reopen'),
        ),
    );
  });
  return el(
    'div',
    { class: 'review' },
    el(
      'ul',
      { class: 'scroll rlist', tabindex: '0', 'aria-label': t('review.title'), 'data-testid': 'review-list' },
      rows,
    ),
    v.state === 'review' &&
      el(
        'button',
        {
          type: 'button',
          class: 'big go act',
          'data-testid': 'finish',
          onclick: () => visitAct('finish'),
        },
        t(S.visitBusy ? 'review.sealing' : 'review.finish'),
      ),
  );
}

function finishedView(v) {
  return el(
    'div',
    { class: 'scroll done', tabindex: '0', 'aria-label': t('state.finished') },
    el('p', { class: 'msg ok big-msg', role: 'status', 'data-testid': 'finished' }, icon('✓'), t('finished.text')),
    v.bundle
      ? el('p', { 'data-testid': 'bundle' }, t('finished.bundle'), ' ', el('b', { class: 'num' }, v.bundle.id))
      : el('p', {}, t('finished.no_bundle')),
    el('button', { type: 'button', class: 'big primary', onclick: openOrders }, t('visit.back')),
  );
}

function endedView(v) {
  const o = v.outcome || {};
  const r = o.reschedule;
  return el(
    'div',
    { class: 'scroll done', tabindex: '0', 'aria-label': t('state.ended') },
    el(
      'p',
      { class: 'msg info big-msg', role: 'status', 'data-testid': 'ended' },
      t('ended.text', { outcome: t('outcome.' + o.code) }),
    ),
    r &&
      el(
        'p',
        { 'data-testid': 'rescheduled' },
        t('ended.rescheduled', {
          when: appointmentText(r, { weekday: 'long', day: 'numeric', month: 'long' }),
        }),
      ),
    o.note && el('p', {}, `${t('outcome.note')}: ${o.note}`),
    el('button', { type: 'button', class: 'big primary', onclick: openOrders }, t('visit.back')),
  );
}

// --- the technician's page: the checks, their history, the guided tests ----------------------

// Worst first: what to fix comes before what is fine. Each status has a symbol, not only a colour.
const DIAG_ORDER = ['failed', 'warning', 'not_available', 'ok'];
const DIAG_MARK = { failed: '✕', warning: '⚠', not_available: '–', ok: '✓' };
const TECH_TABS = ['checks', 'history', 'guided'];
const HISTORY_LIMIT = 20;
const DIAG_TIMEOUT_MS = 120000; // a full run is ~6 s; every check has its own limit of at most 10 s
const GUIDED_MARK = { waiting: '○', done: '✓', failed: '✕', skipped: '–' };
const GUIDED_TESTS = ['panel', 'pad'];

const isTechnician = () => S.officer?.role === 'technician';

function openTech(tab) {
  S.diag ||= {
    tab: 'checks',
    run: null, // the run shown: the last one run here, or one opened from the history
    busy: null, // {quick, since} while a run is under way
    error: null,
    runs: null, // the history's last runs, newest first
    runsError: null,
    trend: null, // {check, findings (oldest first), error}
    guided: null, // the guided test's state, as the daemon has it
    gBusy: false,
    gError: null,
    gEarly: [], // the test's events that came before its start was answered
    ink: [], // the pad test's pen points, [x, y, pressure, tip] in the pad's units
    pad: null, // the pad's extent, as its points came
    drawn: 0, // how many of the points are on the canvas
  };
  if (tab) S.diag.tab = tab;
  show('tech');
  if (S.diag.tab === 'history' && !S.diag.trend) loadRuns();
  if (S.diag.tab === 'guided' && !S.diag.guided) findRunningGuided();
}

function techTab(tab) {
  S.diag.tab = tab;
  if (tab === 'history') S.diag.trend = null;
  openTech();
}

// Said to a screen reader (the visible page shows it its own way).
function techSay(text) {
  const live = document.getElementById('tech-live');
  if (live) live.textContent = text;
}

function techScreen() {
  const D = S.diag;
  const tabs = el(
    'div',
    { class: 'tabs', role: 'tablist', 'aria-label': t('tech.sections') },
    TECH_TABS.map((tab) =>
      el(
        'button',
        {
          type: 'button',
          role: 'tab',
          id: 'tab-' + tab,
          'data-tab': tab,
          'aria-selected': String(D.tab === tab),
          'aria-controls': 'tech-body',
          onclick: () => techTab(tab),
        },
        t('tech.tab.' + tab),
      ),
    ),
  );
  return el(
    'main',
    { class: 'tech' },
    el(
      'div',
      { class: 'head' },
      el('h1', { class: 'sr' }, t('tech.title')),
      tabs,
      el('button', { type: 'button', class: 'quiet', 'data-testid': 'tech-orders', onclick: leaveTech }, t('tech.orders')),
    ),
    el('p', { id: 'tech-live', class: 'sr', role: 'status', 'aria-live': 'polite', 'data-testid': 'tech-live' }),
    el('div', { id: 'tech-body', class: 'tbody', role: 'tabpanel', 'aria-labelledby': 'tab-' + D.tab }),
  );
}

async function leaveTech() {
  const g = S.diag?.guided;
  if (g?.state === 'running') await cancelGuided();
  openOrders();
}

// What the page's body is made of: it is rebuilt only when one of these changes.
function techKey() {
  const D = S.diag;
  const g = D.guided && guidedShape(D.guided);
  const trend = D.trend && [D.trend.check, D.trend.findings?.map((f) => f.run_id), D.trend.error];
  return [D.tab, D.run?.run_id, !!D.busy, D.error, D.runs?.map((r) => r.run_id), D.runsError, trend, g, D.gBusy, D.gError];
}

function techBody() {
  const body = document.getElementById('tech-body');
  body.setAttribute('aria-busy', String(!!S.diag.busy));
  const view = { checks: checksView, history: historyView, guided: guidedView }[S.diag.tab]();
  if (S.diag.tab === 'guided') queueMicrotask(drawPad);
  return view;
}

// --- the checks

function numText(n) {
  const a = Math.abs(n);
  const opts =
    a > 0 && a < 1
      ? { maximumSignificantDigits: 2 } // a linearity of 0.0012 is not 0
      : { maximumFractionDigits: a >= 100 || Number.isInteger(n) ? 0 : a >= 10 ? 1 : 2 };
  return new Intl.NumberFormat(LOCALES[S.lang], opts).format(n);
}

// A value as short as it can be read: numbers in the page's language, bytes in MB/GB.
function valueText(v, key = '') {
  if (v == null) return '–';
  if (typeof v === 'boolean') return t(v ? 'diag.yes' : 'diag.no');
  if (typeof v === 'number') return /bytes$/.test(key) && v >= 1e6 ? bytesText(v) : numText(v);
  if (typeof v === 'string') {
    if (ISO_TIME.test(v) && !Number.isNaN(Date.parse(v))) return whenText(v);
    return v.length > 40 ? v.slice(0, 39) + '…' : v;
  }
  if (Array.isArray(v))
    return v.length <= 4 && v.every((x) => x == null || typeof x !== 'object')
      ? v.map((x) => valueText(x)).join(', ') || '–'
      : `[${v.length}]`;
  const entries = Object.entries(v);
  const shown = entries.slice(0, 3).map(([k, x]) => `${k} ${x && typeof x === 'object' ? '…' : valueText(x, k)}`);
  return `{${shown.join(', ')}${entries.length > 3 ? ', …' : ''}}`;
}

function valuesText(values) {
  const entries = Object.entries(values || {});
  const shown = entries.slice(0, 8).map(([k, v]) => `${k} ${valueText(v, k)}`);
  if (entries.length > 8) shown.push(t('diag.more', { n: entries.length - 8 }));
  return shown.join(' · ');
}

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d/;
const HMS = { ...HM, second: '2-digit' };

// A run's time in the kit's zone, to the second (runs come minutes apart); its day when not today.
function whenText(iso) {
  const hms = fmt(iso, HMS);
  return ymd(iso) === today() ? hms : `${dayText(ymd(iso), { day: 'numeric', month: 'short' })} ${hms}`;
}

function statusText(status) {
  return has('diag.status.' + status) ? t('diag.status.' + status) : status;
}

// Quick, full, or a guided test's finding (stored as a run of its one check).
const runKind = (run) => t(run.guided_id ? 'diag.kind_guided' : run.quick ? 'diag.kind_quick' : 'diag.kind_full');

function countsView(counts = {}) {
  const n = (st) => counts[st] ?? 0;
  return el(
    'span',
    { class: 'counts num', 'data-testid': 'diag-counts' },
    el('span', { 'aria-hidden': 'true' }, DIAG_ORDER.map((st) => `${DIAG_MARK[st]}${n(st)}`).join(' ')),
    el(
      'span',
      { class: 'sr' },
      t('diag.counts', { failed: n('failed'), warning: n('warning'), not_available: n('not_available'), ok: n('ok') }),
    ),
  );
}

function checksView() {
  const D = S.diag;
  const run = (quick) =>
    el(
      'button',
      {
        type: 'button',
        class: 'act ' + (quick ? 'primary' : 'go'),
        'data-testid': quick ? 'diag-run-quick' : 'diag-run-full',
        disabled: !!D.busy,
        onclick: () => runChecks(quick),
      },
      t(quick ? 'diag.run_quick' : 'diag.run_full'),
    );
  const out = [el('div', { class: 'actions' }, run(true), run(false))];
  if (D.busy) {
    const s = Math.floor((Date.now() - D.busy.since) / 1000);
    out.push(
      el(
        'div',
        { class: 'dbusy', 'data-testid': 'diag-busy', 'data-quick': String(D.busy.quick) },
        el('span', { class: 'spinner', 'aria-hidden': 'true' }),
        el('span', { class: 'dbusy-text' }, t(D.busy.quick ? 'diag.running_quick' : 'diag.running_full')),
        el('span', { id: 'diag-elapsed', class: 'num' }, t('diag.elapsed', { s })),
      ),
    );
    return out;
  }
  if (D.error) out.push(el('p', { class: 'msg warn', role: 'alert', 'data-testid': 'diag-error' }, D.error));
  if (!D.run) {
    out.push(el('p', { class: 'empty', 'data-testid': 'diag-none' }, t('diag.none')));
    return out;
  }
  out.push(runSummary(D.run), findingsView(D.run));
  return out;
}

function runSummary(run) {
  return el(
    'p',
    {
      class: 'dsum d-' + run.status,
      'data-testid': 'diag-summary',
      'data-status': run.status,
      'data-run-id': run.run_id,
      'data-quick': String(!!run.quick),
    },
    el('b', {}, icon(DIAG_MARK[run.status] || '?'), statusText(run.status)),
    ` · ${runKind(run)} · ${whenText(run.started_at)} · `,
    t('diag.seconds', { s: numText(run.duration_s ?? 0) }),
    ' · ',
    countsView(run.counts),
    run.stored === false && el('span', { class: 'dwarn', 'data-testid': 'diag-not-stored' }, ` · ${t('diag.not_stored')}`),
  );
}

// The findings, failed first, then warnings, not available and ok; each group in the daemon's order.
function findingsView(run) {
  const groups = DIAG_ORDER.map((st) => [st, (run.checks || []).filter((c) => c.status === st)]);
  return el(
    'div',
    { class: 'scroll', tabindex: '0', 'aria-label': t('diag.findings'), 'data-testid': 'diag-checks' },
    groups
      .filter(([, checks]) => checks.length)
      .map(([st, checks]) =>
        el(
          'section',
          { class: 'dgroup', 'data-group': st, 'aria-labelledby': 'dg-' + st },
          el('h2', { id: 'dg-' + st }, icon(DIAG_MARK[st]), `${statusText(st)} (${checks.length})`),
          el('ul', { class: 'dlist' }, checks.map(checkRow)),
        ),
      ),
  );
}

function checkRow(c) {
  const msg = c.message && (c.message[S.lang] ?? c.message.id);
  const values = valuesText(c.values);
  return el(
    'li',
    { class: 'dcheck d-' + c.status, 'data-check': c.id, 'data-status': c.status },
    el(
      'div',
      { class: 'dline' },
      el('span', { class: 'sym', 'aria-hidden': 'true' }, DIAG_MARK[c.status] || '?'),
      el('span', { class: 'dname' }, c.id, el('span', { class: 'sr' }, `: ${statusText(c.status)}`)),
      el(
        'button',
        {
          type: 'button',
          class: 'dtrend',
          'data-action': 'trend',
          'aria-label': t('diag.trend_of', { check: c.id }),
          onclick: () => openTrend(c.id),
        },
        t('diag.trend'),
      ),
    ),
    msg && el('p', { class: 'dmsg', 'data-testid': 'diag-message' }, msg),
    values && el('p', { class: 'dvals', 'data-testid': 'diag-values' }, values),
  );
}

async function runChecks(quick) {
  const D = S.diag;
  if (D.busy) return;
  D.busy = { quick, since: Date.now() };
  D.error = null;
  updateDynamic();
  techSay(t(quick ? 'diag.running_quick' : 'diag.running_full'));
  const tick = setInterval(() => {
    const shown = document.getElementById('diag-elapsed');
    if (shown && D.busy) shown.textContent = t('diag.elapsed', { s: Math.floor((Date.now() - D.busy.since) / 1000) });
  }, 500);
  const r = await api('/diagnostics' + (quick ? '?quick=1' : ''), { timeout: DIAG_TIMEOUT_MS });
  clearInterval(tick);
  if (S.diag !== D) return; // signed out meanwhile
  D.busy = null;
  if (r.ok) {
    D.run = r.data;
    D.runs = null; // the history has one more
    techSay(t('diag.done', { status: statusText(r.data.status) }));
  } else {
    D.error = apiText(r.data.error, null);
    techSay(D.error);
  }
  updateDynamic();
}

// --- the history: the last runs, one check's trend

async function loadRuns() {
  const D = S.diag;
  const r = await api(`/diagnostics/history?limit=${HISTORY_LIMIT}`);
  if (S.diag !== D) return;
  D.runs = r.ok ? r.data.runs || [] : D.runs;
  D.runsError = r.ok ? null : apiText(r.data.error, null);
  updateDynamic();
}

function openRun(run) {
  Object.assign(S.diag, { run, error: null, tab: 'checks' });
  openTech();
}

async function openTrend(check) {
  const D = S.diag;
  D.tab = 'history';
  D.trend = { check, findings: null, error: null };
  openTech();
  const r = await api(`/diagnostics/history?limit=${HISTORY_LIMIT}&check=${encodeURIComponent(check)}`);
  if (S.diag !== D || D.trend?.check !== check) return;
  D.trend = { check, findings: r.ok ? r.data.findings || [] : null, error: r.ok ? null : apiText(r.data.error, null) };
  updateDynamic();
}

function closeTrend() {
  S.diag.trend = null;
  if (!S.diag.runs) loadRuns();
  updateDynamic();
}

function historyView() {
  const D = S.diag;
  if (D.trend) return trendView(D.trend);
  if (D.runsError) return el('p', { class: 'msg warn', role: 'alert', 'data-testid': 'hist-error' }, D.runsError);
  if (!D.runs) return el('p', { class: 'empty' }, t('hist.loading'));
  if (!D.runs.length) return el('p', { class: 'empty', 'data-testid': 'hist-empty' }, t('hist.empty'));
  return [
    el('h2', { class: 'thead' }, t('hist.title', { n: D.runs.length })),
    el(
      'ul',
      { class: 'scroll hlist', tabindex: '0', 'aria-label': t('hist.title', { n: D.runs.length }), 'data-testid': 'diag-runs' },
      D.runs.map((run) =>
        el(
          'li',
          { 'data-run-id': run.run_id, 'data-status': run.status },
          el(
            'button',
            { type: 'button', class: 'hrun d-' + run.status, 'data-action': 'open-run', onclick: () => openRun(run) },
            el('span', { class: 'sym', 'aria-hidden': 'true' }, DIAG_MARK[run.status] || '?'),
            el('span', { class: 'htime num' }, whenText(run.started_at)),
            el('span', { class: 'hkind' }, runKind(run)),
            el('span', { class: 'hstat' }, statusText(run.status)),
            countsView(run.counts),
          ),
        ),
      ),
    ),
  ];
}

// The values that are numbers in the check's findings (the ones a trend can draw).
function numericKeys(findings) {
  const seen = new Map();
  for (const f of findings)
    for (const [k, v] of Object.entries(f.values || {}))
      if (typeof v === 'number' && Number.isFinite(v)) seen.set(k, (seen.get(k) || 0) + 1);
  return [...seen.keys()];
}

// One value over the runs, oldest left: a small line, its last value in words beside it.
function sparkline(key, series) {
  const W = 120;
  const H = 30;
  const nums = series.map((v) => (typeof v === 'number' && Number.isFinite(v) ? v : null));
  const known = nums.filter((v) => v != null);
  const [min, max, last] = [Math.min(...known), Math.max(...known), known[known.length - 1]];
  const span = max - min || 1;
  const step = nums.length > 1 ? W / (nums.length - 1) : 0;
  const xy = (v, i) => [i * step, H - 4 - ((v - min) / span) * (H - 8)];
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  const attrs = (node, a) => Object.entries(a).forEach(([k, v]) => node.setAttribute(k, String(v)));
  attrs(svg, {
    viewBox: `-4 0 ${W + 8} ${H}`,
    width: W + 8,
    height: H,
    role: 'img',
    'aria-label': t('trend.spark', {
      key,
      min: valueText(min, key),
      max: valueText(max, key),
      last: valueText(last, key),
    }),
  });
  const line = document.createElementNS(NS, 'polyline');
  const points = nums.map((v, i) => (v == null ? null : xy(v, i).map((n) => n.toFixed(1)).join(','))).filter(Boolean);
  attrs(line, { points: points.join(' '), fill: 'none', stroke: '#0b4f91', 'stroke-width': 2 });
  const dot = document.createElementNS(NS, 'circle');
  const [cx, cy] = xy(last, nums.lastIndexOf(last));
  attrs(dot, { cx, cy, r: 3.5, fill: '#111' });
  svg.append(line, dot);
  return el(
    'figure',
    { class: 'spark', 'data-key': key },
    svg,
    el('figcaption', { 'aria-hidden': 'true' }, `${key} ${valueText(last, key)}`),
  );
}

function trendView(T) {
  const head = el(
    'div',
    { class: 'head' },
    el('button', { type: 'button', 'data-testid': 'trend-back', onclick: closeTrend }, icon('←'), t('trend.back')),
    el('h2', { class: 'thead', 'data-testid': 'trend-title' }, t('trend.title', { check: T.check })),
  );
  if (T.error) return [head, el('p', { class: 'msg warn', role: 'alert', 'data-testid': 'trend-error' }, T.error)];
  if (!T.findings) return [head, el('p', { class: 'empty' }, t('hist.loading'))];
  if (!T.findings.length) return [head, el('p', { class: 'empty', 'data-testid': 'trend-empty' }, t('trend.empty'))];
  const f = T.findings; // oldest first
  const strip = el(
    'ol',
    { class: 'tstrip', 'aria-label': t('trend.statuses'), 'data-testid': 'trend-strip' },
    f.map((x) =>
      el(
        'li',
        { class: 'd-' + x.status, 'data-status': x.status },
        el('span', { 'aria-hidden': 'true' }, DIAG_MARK[x.status] || '?'),
        el('span', { class: 'sr' }, `${whenText(x.started_at)}: ${statusText(x.status)}`),
      ),
    ),
  );
  const sparks = numericKeys(f)
    .slice(0, 3)
    .map((k) => sparkline(k, f.map((x) => x.values?.[k])));
  const list = el(
    'ol',
    { class: 'scroll tlist', tabindex: '0', 'aria-label': t('trend.list'), 'data-testid': 'trend-list' },
    [...f].reverse().map((x) =>
      el(
        'li',
        { class: 'd-' + x.status, 'data-run-id': x.run_id, 'data-status': x.status },
        el('span', { class: 'sym', 'aria-hidden': 'true' }, DIAG_MARK[x.status] || '?'),
        el('span', { class: 'htime num' }, whenText(x.started_at)),
        el('span', { class: 'hstat' }, statusText(x.status)),
        el('span', { class: 'dvals' }, valuesText(x.values)),
      ),
    ),
  );
  return [
    head,
    el('div', { class: 'trow', 'data-testid': 'trend-chart' }, el('span', { class: 'sub' }, t('trend.old_new')), strip, sparks),
    el('p', { class: 'sub tnote' }, t('trend.newest_first')),
    list,
  ];
}

// --- the guided tests: the screen asks, the technician acts, the kit watches

// The daemon's own words for a step, in the page's language.
const words = (w) => (w ? (w[S.lang] ?? w.id ?? '') : '');

// Whatever of a guided test's state the page is built from: not the pen's new points (an
// event's `ink`), which are drawn on the canvas as they come, without a rebuild.
function guidedShape(g) {
  const steps = (g.steps || []).map((s) => [s.id, s.kind, s.status, s.prompt, s.values]);
  return [g.guided_id, g.test, g.state, g.current, steps, g.finding];
}

// How far a test has come: a late answer or event never takes the page back.
function guidedProgress(g) {
  return (g.steps || []).filter((s) => s.status !== 'waiting').length + (g.state === 'running' ? 0 : 1000);
}

// The test's state from an answer or a `guided` event (which may carry the pen's new points).
function setGuided(g, fresh = false) {
  const D = S.diag;
  const before = D.guided;
  if (!fresh && (!before || before.guided_id !== g.guided_id)) return;
  if (g.ink) takeInk(g.ink);
  if (!fresh && guidedProgress(g) < guidedProgress(before)) return;
  const { ink, ...state } = g;
  D.guided = state;
  const cur = g.state === 'running' && (g.steps || []).find((s) => s.id === g.current);
  if (fresh || g.current !== before?.current || g.state !== before?.state)
    techSay(cur ? words(cur.prompt) : t('guided.state.' + g.state));
  updateDynamic();
  drawPad();
}

// A test left running (the page reloaded, the kiosk restarted) is found again, to carry on
// or cancel: it holds its device until it ends.
async function findRunningGuided() {
  const D = S.diag;
  const r = await api('/diagnostics/guided');
  if (S.diag !== D || D.guided || D.gBusy || !r.ok || !r.data?.running) return;
  setGuided(r.data.running, true);
}

async function startGuided(test) {
  const D = S.diag;
  if (D.gBusy) return;
  Object.assign(D, { gBusy: true, gError: null, ink: [], pad: null, drawn: 0, gEarly: [] });
  updateDynamic();
  const r = await api('/diagnostics/guided', { method: 'POST', body: { test } });
  if (S.diag !== D) return;
  D.gBusy = false;
  if (r.ok) {
    setGuided(r.data, true);
    replayEarlyGuided(D, r.data.guided_id);
  } else D.gError = techText(r.data.error);
  updateDynamic();
}

async function guidedAct(path, init) {
  const D = S.diag;
  const g = D.guided;
  if (!g || D.gBusy) return;
  D.gBusy = true;
  D.gError = null;
  updateDynamic();
  const r = await api(`/diagnostics/guided/${encodeURIComponent(g.guided_id)}${path}`, init);
  if (S.diag !== D) return;
  D.gBusy = false;
  if (r.ok) setGuided(r.data);
  else D.gError = techText(r.data.error);
  updateDynamic();
}

const confirmStep = (seen) =>
  guidedAct('/confirm', { method: 'POST', body: { step: S.diag.guided.current, seen } });
const cancelGuided = () => guidedAct('', { method: 'DELETE' });

function onGuidedEvent(e) {
  let d;
  try {
    d = JSON.parse(e.data);
  } catch {
    return;
  }
  if (S.diag?.gBusy && !S.diag.guided) S.diag.gEarly.push(d);
  else if (S.diag?.guided) setGuided(d);
}

// Between the start's request and its answer the test's first events may already come (the
// technician pressed a button at once): they are kept and replayed on the answer, not lost.
function replayEarlyGuided(D, id) {
  const early = D.gEarly.filter((g) => g.guided_id === id);
  D.gEarly = [];
  for (const g of early) setGuided(g);
}

// An event lost on the way (a stream dropped, a slow screen) would leave a step looking
// unmet; while a test runs the screen also asks for its state with the status bar's poll.
async function recheckGuided() {
  const D = S.diag;
  const g = D?.guided;
  if (!g || g.state !== 'running' || D.gBusy) return;
  const r = await api(`/diagnostics/guided/${encodeURIComponent(g.guided_id)}`);
  if (r.ok && S.diag === D) setGuided(r.data);
}

function guidedView() {
  const D = S.diag;
  const g = D.guided;
  const error = D.gError && el('p', { class: 'msg warn', role: 'alert', 'data-testid': 'guided-error' }, D.gError);
  if (!g)
    return [
      el('p', { class: 'gintro' }, t('guided.intro')),
      el(
        'div',
        { class: 'gstart' },
        GUIDED_TESTS.map((test) =>
          el(
            'button',
            {
              type: 'button',
              class: 'big primary',
              'data-testid': 'guided-start-' + test,
              disabled: D.gBusy,
              onclick: () => startGuided(test),
            },
            t('guided.test.' + test),
          ),
        ),
      ),
      error,
    ];
  const running = g.state === 'running';
  const cur = running ? (g.steps || []).find((s) => s.id === g.current) : null;
  const steps = el(
    'ol',
    { class: 'gsteps', tabindex: '0', 'aria-label': t('guided.steps'), 'data-testid': 'guided-steps' },
    (g.steps || []).map((s) => {
      const now = cur?.id === s.id;
      return el(
        'li',
        {
          class: 'g-' + s.status + (now ? ' cur' : ''),
          'data-step': s.id,
          'data-kind': s.kind,
          'data-status': s.status,
          'aria-current': now ? 'step' : null,
        },
        el('span', { class: 'sym', 'aria-hidden': 'true' }, now ? '◉' : GUIDED_MARK[s.status] || '?'),
        el('span', { class: 'gname' }, words(s.prompt)),
        el('span', { class: 'sr' }, `: ${t('guided.step.' + (has('guided.step.' + s.status) ? s.status : 'waiting'))}`),
      );
    }),
  );
  const main = el('div', { class: 'gmain' }, el('h2', { class: 'thead' }, t('guided.test.' + g.test)));
  if (cur) {
    main.append(
      el(
        'p',
        { class: 'gprompt', 'data-testid': 'guided-prompt', 'data-step': cur.id, 'data-kind': cur.kind },
        words(cur.prompt),
      ),
    );
    // What the step has seen so far (a wrong button, a near miss), the target's zone aside.
    const { zone, limit, min_length_mm, ...seen } = cur.values || {};
    const said = valuesText(seen);
    if (said) main.append(el('p', { class: 'dvals', 'data-testid': 'guided-seen' }, said));
    if (cur.kind === 'confirm') {
      const heard = /buzz|beep|sound|tone/i.test(cur.id);
      main.append(
        el(
          'div',
          { class: 'gyesno', role: 'group', 'aria-label': words(cur.prompt) },
          el(
            'button',
            { type: 'button', class: 'go', 'data-testid': 'guided-yes', disabled: D.gBusy, onclick: () => confirmStep(true) },
            icon('✓'),
            t(heard ? 'guided.yes_heard' : 'guided.yes_lit'),
          ),
          el(
            'button',
            { type: 'button', class: 'warnb', 'data-testid': 'guided-no', disabled: D.gBusy, onclick: () => confirmStep(false) },
            icon('✕'),
            t('guided.no'),
          ),
        ),
      );
    }
  } else if (!running) {
    const tone = g.state === 'passed' ? 'ok' : g.state === 'cancelled' ? 'info' : 'warn';
    const f = g.finding;
    // The steps are on the left already: what the test measured, without them.
    const { state, steps: _, ...measured } = f?.values || {};
    const values = valuesText(measured);
    const parts = [
      el(
        'p',
        { class: `msg big-msg ${tone}`, 'data-testid': 'guided-result', 'data-state': g.state },
        icon(g.state === 'passed' ? '✓' : g.state === 'cancelled' ? '–' : '✕'),
        has('guided.state.' + g.state) ? t('guided.state.' + g.state) : g.state,
      ),
      f?.message && el('p', { class: 'dmsg', 'data-testid': 'guided-message' }, words(f.message)),
      values && el('p', { class: 'dvals', 'data-testid': 'guided-values' }, values),
    ];
    main.append(...parts.filter(Boolean));
  }
  if (g.test === 'pad' && (running || D.ink.length))
    main.append(
      el('canvas', { id: 'gpad', class: 'gpad', role: 'img', 'aria-label': t('guided.pad_alt'), 'data-testid': 'guided-pad' }),
    );
  main.append(
    error || '',
    el(
      'div',
      { class: 'actions' },
      running
        ? el('button', { type: 'button', class: 'warnb', 'data-testid': 'guided-cancel', disabled: D.gBusy, onclick: cancelGuided }, t('guided.cancel'))
        : el(
            'button',
            {
              type: 'button',
              class: 'primary',
              'data-testid': 'guided-done',
              onclick: () => {
                Object.assign(D, { guided: null, gError: null, ink: [], pad: null, drawn: 0 });
                updateDynamic();
              },
            },
            t('guided.done'),
          ),
    ),
  );
  return el('div', { class: 'guided', 'data-state': g.state, 'data-test': g.test }, steps, main);
}

// --- the pad test's canvas: the pen's points as they come, and the targets to touch

window.addEventListener('resize', () => S.screen === 'tech' && drawPad());

function takeInk(ink) {
  const D = S.diag;
  D.pad = { max_x: ink.max_x, max_y: ink.max_y, max_pressure: ink.max_pressure };
  D.ink.push(...(ink.points || []));
}

// The pad's extent: the pen's (from its points), else the bottom-right corner's target zone.
function padExtent(g) {
  const D = S.diag;
  if (D.pad?.max_x && D.pad?.max_y) return D.pad;
  const zones = (g?.steps || []).map((s) => s.values?.zone).filter(Boolean);
  if (!zones.length) return null;
  return { max_x: Math.max(...zones.map((z) => z.x_max)), max_y: Math.max(...zones.map((z) => z.y_max)) };
}

// The pad on the canvas: its outline, each corner's target (the one to touch now strong, the
// touched ones ticked), the line to draw, and the pen's points; new points are added to what
// is drawn, everything is drawn again when the canvas is new or resized.
function drawPad() {
  const D = S.diag;
  const canvas = document.getElementById('gpad');
  const g = D?.guided;
  const pad = padExtent(g);
  if (!canvas || !pad) return;
  const box = canvas.getBoundingClientRect();
  const [w, h] = [Math.round(box.width), Math.round(box.height)];
  if (!w || !h) return;
  const fresh = canvas.width !== w || canvas.height !== h || canvas.dataset.drawn !== 'yes';
  if (fresh) {
    canvas.width = w;
    canvas.height = h;
    D.drawn = 0;
  }
  const scale = Math.min((w - 8) / pad.max_x, (h - 8) / pad.max_y);
  const ox = (w - pad.max_x * scale) / 2;
  const oy = (h - pad.max_y * scale) / 2;
  const X = (x) => ox + x * scale;
  const Y = (y) => oy + y * scale;
  const ctx = canvas.getContext('2d');
  if (D.drawn === 0) {
    ctx.clearRect(0, 0, w, h);
    ctx.lineWidth = 2;
    ctx.strokeStyle = '#6b7580';
    ctx.strokeRect(X(0), Y(0), pad.max_x * scale, pad.max_y * scale);
    const running = g.state === 'running';
    let n = 0;
    for (const s of g.steps || []) {
      const z = s.values?.zone;
      if (s.kind === 'touch' && z) {
        n += 1;
        const now = running && s.id === g.current;
        const look =
          s.status === 'done'
            ? ['#d7f0dd', '#146c2e']
            : s.status === 'failed'
              ? ['#ffe0e0', '#c4001a']
              : now
                ? ['#fff0c2', '#8a6d00']
                : ['#f4f6f8', '#8a939c'];
        ctx.fillStyle = look[0];
        ctx.strokeStyle = look[1];
        ctx.lineWidth = now ? 4 : 2;
        const [x0, y0, zw, zh] = [X(z.x_min), Y(z.y_min), (z.x_max - z.x_min) * scale, (z.y_max - z.y_min) * scale];
        ctx.fillRect(x0, y0, zw, zh);
        ctx.strokeRect(x0, y0, zw, zh);
        ctx.fillStyle = look[1];
        ctx.font = `bold ${Math.max(14, Math.round(Math.min(zw, zh) * 0.6))}px sans-serif`;
        ctx.textAlign = 'center';
        ctx.textBaseline = 'middle';
        ctx.fillText(s.status === 'done' ? '✓' : String(n), x0 + zw / 2, y0 + zh / 2);
      }
      if (s.kind === 'draw' && running && s.id === g.current) {
        // The line asked for: top left to bottom right, a tenth in from the corners.
        ctx.setLineDash([10, 8]);
        ctx.strokeStyle = '#0b4f91';
        ctx.lineWidth = 2;
        ctx.beginPath();
        ctx.moveTo(X(pad.max_x * 0.1), Y(pad.max_y * 0.1));
        ctx.lineTo(X(pad.max_x * 0.9), Y(pad.max_y * 0.9));
        ctx.stroke();
        ctx.setLineDash([]);
      }
    }
  }
  ctx.strokeStyle = '#111';
  ctx.lineCap = 'round';
  const ink = D.ink;
  for (let i = Math.max(1, D.drawn); i < ink.length; i++) {
    const [x0, y0, , t0] = ink[i - 1];
    const [x1, y1, p1, t1] = ink[i];
    if (!t0 || !t1) continue;
    ctx.lineWidth = 2 + 3 * (p1 / (D.pad?.max_pressure || 1));
    ctx.beginPath();
    ctx.moveTo(X(x0), Y(y0));
    ctx.lineTo(X(x1), Y(y1));
    ctx.stroke();
  }
  // Where the pen came down: a dot (a tap is only that).
  for (let i = Math.max(0, D.drawn); i < ink.length; i++) {
    const [x, y, , tip] = ink[i];
    if (tip && !ink[i - 1]?.[3]) {
      ctx.fillStyle = '#111';
      ctx.beginPath();
      ctx.arc(X(x), Y(y), 4, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
  D.drawn = ink.length;
  canvas.dataset.drawn = 'yes';
  canvas.dataset.points = String(ink.length);
}

const SCREENS = {
  signin: signinScreen,
  orders: ordersScreen,
  order: orderScreen,
  visit: visitScreen,
  tech: techScreen,
};

// --- start -------------------------------------------------------------------------------

async function boot() {
  const load = (l) => fetch(new URL(`i18n/${l}.json`, import.meta.url)).then((r) => r.json());
  [S.cat.id, S.cat.en] = await Promise.all(LANGS.map(load));
  document.addEventListener('pointerdown', used, { capture: true, passive: true });
  document.addEventListener('keydown', used, { capture: true, passive: true });
  document.addEventListener('keydown', onKey);
  loadMessages();
  const r = await api('/auth/me');
  if (r.ok && r.data.officer) await signedIn(r.data.officer);
  else show('signin');
}

boot();
