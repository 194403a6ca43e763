// The supervisor console in Debian's headless Chromium, driven by Playwright (playwright-core,
// never a downloaded browser). Run by tests/tests/console.rs, which starts the port, the lane
// and the console, and answers this script's checkpoints (see tests/src/console.rs):
// `CHECKPOINT <name> [arg]` on stdout, one line back on stdin: `ok` or `fail <why>`.
//
// Every step saves a screenshot under $SHOTS. Any failed expectation throws: the script exits
// non-zero and the Rust test fails with this script's transcript.

import { readFileSync, writeFileSync } from 'node:fs';
import { checkpoint, endCheckpoints, expect, launch, shot, t } from './harness.mjs';

const env = process.env;
const base = env.CONSOLE_URL;
if (!base.startsWith('https://')) throw new Error(`the console is served over HTTPS, got ${base}`);
const port = env.PORT_ID;
const channel = env.CHANNEL; // e.g. testport/passenger/1
const [, hall, laneNo] = channel.split('/');
const idleS = Number(env.SESSION_IDLE_S);

function step(what) {
  console.log(`STEP ${what}`);
}

/** Waits for a form's result (`<name>-result`); an error result fails with its text. */
async function result(page, name, timeout = 30000) {
  const sel = `${t(`${name}-result`)}[data-result="ok"], ${t(`${name}-result`)}[data-result="error"]`;
  const el = await page.waitForSelector(sel, { timeout });
  if ((await el.getAttribute('data-result')) !== 'ok') {
    throw new Error(`${name} failed: ${await el.textContent()}`);
  }
}

const browser = await launch();
const pageErrors = [];

async function newPage() {
  // The console serves HTTPS with the rig's self-signed certificate (its fingerprint is
  // checked by the Rust side); the browser is told to accept it rather than given a CA.
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 }, ignoreHTTPSErrors: true });
  const page = await ctx.newPage();
  page.setDefaultTimeout(20000);
  // A page loaded by the test is used once hydrated (`<html data-hydrated>`, set by the app):
  // before that, a chosen file or a click reaches no handler, and on a loaded machine the wasm
  // can take seconds to start.
  for (const nav of ['goto', 'reload']) {
    const plain = page[nav].bind(page);
    page[nav] = async (...args) => {
      const response = await plain(...args);
      await page.waitForSelector('html[data-hydrated="true"]', { state: 'attached' });
      return response;
    };
  }
  // A script error in a page (a panic in the hydrated app, a broken hydration) fails the test
  // at the end, with the browser console's error lines that explain it.
  page.on('pageerror', (e) => {
    pageErrors.push(e.message);
    console.log(`page error: ${e.message}`);
  });
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    console.log(`browser console error: ${m.text()}`);
    // Pages run under a strict Content-Security-Policy (a nonce for the hydration script, no
    // inline anything else): anything it blocks is a defect.
    if (m.text().includes('Content Security Policy')) pageErrors.push(`CSP: ${m.text()}`);
  });
  // The policy's violations as the page itself sees them (also those not logged).
  await ctx.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`Content Security Policy violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  return page;
}

async function login(page, name, password) {
  await page.goto(`${base}/login`);
  await page.fill(t('login-name'), name);
  await page.fill(t('login-password'), password);
  await Promise.all([page.waitForLoadState('load'), page.click(t('login-submit'))]);
}

/** The CSRF token the page carries (every form has one). */
async function csrfOf(page) {
  return page.locator('input[name="csrf"]').first().inputValue();
}

/** Marks the page, so that a later check can tell it was not reloaded. */
async function mark(page) {
  await page.evaluate(() => {
    window.__clearwayMark = 'still-here';
  });
}
async function notReloaded(page) {
  expect((await page.evaluate(() => window.__clearwayMark)) === 'still-here', 'no full reload');
}

/**
 * Keeps a working user's session in use while the scenario waits on their behalf.
 *
 * The rig's idle time-out is SESSION_IDLE_S (15 s) so that expiry can be tested within a test;
 * a real console's is 15 minutes. A page that only listens to its live stream does not keep its
 * session alive (by design), and on a loaded CI machine a wait for a lane to change mode, or a
 * checkpoint that walks a traveller through the lane, can pass 15 s. So the scenario's working
 * users request a page every 3 s, as a person at the console clicking about would; the
 * session-expiry step uses its own context without this. Returns the function that stops it.
 */
function keepActive(page) {
  const timer = setInterval(() => {
    page.request.get(`${base}/account`, { failOnStatusCode: false, maxRedirects: 0 }).catch(() => {});
  }, 3000);
  return () => clearInterval(timer);
}
const stopKeepingActive = [];

/** Waits until the page's SSE-driven state shows `text` in `selector`. */
async function waitText(page, selector, pattern, timeout = 20000) {
  await page.waitForFunction(
    ([sel, src]) => {
      const el = document.querySelector(sel);
      return !!el && new RegExp(src).test(el.textContent);
    },
    [selector, pattern.source ?? String(pattern)],
    { timeout },
  );
}

try {
  // 1. A wrong password is refused with a clear message.
  step('wrong password');
  const anon = await newPage();
  await anon.goto(`${base}/`);
  expect(anon.url().includes('/login'), 'an anonymous visitor is sent to the login page');
  await shot(anon, 'login');
  await login(anon, 'wong', 'not-the-password');
  await anon.waitForSelector(t('login-error'));
  const wrong = await anon.textContent(t('login-error'));
  expect(/password|name/i.test(wrong), `a clear login error, got "${wrong}"`);
  await shot(anon, 'login-wrong-password');

  // 2. The supervisor sees the ports and the hall live.
  step('supervisor: overview and hall');
  const sup = await newPage();
  await login(sup, 'wong', env.PASSWORD_WONG);
  stopKeepingActive.push(keepActive(sup));
  await sup.waitForSelector(`${t('port-row')}[data-port="${port}"]`);
  await shot(sup, 'ports-overview');
  await sup.goto(`${base}/port/${port}`);
  await sup.waitForSelector(t('hall'));
  await shot(sup, 'port');
  await sup.goto(`${base}/port/${port}/hall/${hall}`);
  const cell = `${t('lane-cell')}[data-channel="${channel}"]`;
  await sup.waitForSelector(cell);
  const cells = await sup.locator(t('lane-cell')).count();
  expect(cells === 48, `48 channels in the passenger hall, got ${cells}`);
  await waitText(sup, `${cell} ${t('lane-step')}`, /idle/);
  // Severity at a glance: by state, in words as well as colour, with a legend.
  await sup.waitForSelector(`${cell}[data-severity="idle"]`);
  const legend = await sup.$$eval(`${t('severity-legend')} li`, (ls) => ls.map((l) => l.dataset.severity));
  expect(
    JSON.stringify(legend) === JSON.stringify(['fault', 'held', 'passage', 'idle', 'not_deployed']),
    `a legend of the five states, got ${legend}`,
  );
  const empty = `${t('lane-cell')}[data-channel="${port}/${hall}/48"]`;
  expect((await sup.getAttribute(empty, 'data-severity')) === 'not_deployed', 'an empty channel is marked not deployed');
  expect(/not deployed/.test(await sup.textContent(`${empty} ${t('lane-severity')}`)), 'and says so in words');
  await mark(sup);
  await checkpoint('walk');
  // The admission reaches the page without a reload.
  await waitText(sup, `${cell} ${t('last-decision')}`, /admitted/, 30000);
  await notReloaded(sup);
  await shot(sup, 'hall-live-admitted');
  await checkpoint('walked');
  await waitText(sup, `${cell} ${t('last-decision')}`, /cleared/, 30000);
  // A clearance is reported with its passage time, never a frame latency it did not have.
  const cleared = await sup.textContent(`${cell} ${t('last-decision')}`);
  expect(/passage \d+\.\d s/.test(cleared) && !/ms after the camera frame/.test(cleared), `the clearance's own numbers, got "${cleared}"`);
  // The clearance counts in the hall's last hour at once (the lane keeps the window).
  await waitText(sup, t('port-status'), /[1-9]\d* clearances in the last hour/);
  // The hall's trend line counts it too, and links the port's Grafana dashboard for the hall.
  await waitText(sup, t('trend-clearances'), /^[1-9]\d* clearances?$/);
  const grafana = await sup.getAttribute(t('grafana-link'), 'href');
  expect(grafana === `https://grafana.test.invalid/d/clearway-port?var-port=${port}&var-hall=${hall}`, `the hall's dashboard link, got ${grafana}`);
  await notReloaded(sup);
  await shot(sup, 'hall-live-cleared');

  // 3. Lock gate 1 from the lane page: acknowledged by the lane, locked at the controller.
  step('supervisor: lock gate 1');
  await sup.goto(`${base}/lane/${port}/${hall}/${laneNo}`);
  await sup.waitForSelector(t('lane-title'));
  await mark(sup);
  // Which way the channel clears travellers, from the port definition (seed 000).
  await waitText(sup, t('direction'), /Macao → Hengqin/);
  // Presentation-attack detection: the test lanes stream photos, so they only observe, and say so.
  await sup.waitForSelector(`${t('pad-mode')}[data-pad="observe"]`);
  await waitText(sup, t('pad-mode'), /observe only/);
  // The cameras, live, once the viewing is recorded with a reason; stills are never cached.
  await sup.fill(t('camera-reason'), 'checking the queue at gate 1');
  await sup.click(t('camera-submit'));
  await sup.waitForSelector(t('camera-viewing'));
  const viewing = await sup.getAttribute(t('camera-viewing'), 'data-seq');
  for (const camera of ['1', '2']) {
    const img = `${t('camera-still')}[data-camera="${camera}"]`;
    await sup.waitForSelector(`${img}[data-loaded="true"]`, { timeout: 20000 });
    const size = await sup.$eval(img, (i) => [i.naturalWidth, i.naturalHeight]);
    expect(size[0] >= 100 && size[1] >= 50, `gate ${camera}'s still is a picture, got ${size}`);
  }
  // The stills keep coming: a later one replaces the first.
  const firstSrc = await sup.getAttribute(`${t('camera-still')}[data-camera="1"]`, 'src');
  await sup.waitForFunction(
    ([sel, src]) => document.querySelector(sel).getAttribute('src') !== src,
    [`${t('camera-still')}[data-camera="1"]`, firstSrc],
  );
  const stillUrl = `${base}/still/${port}/${hall}/${laneNo}/1`;
  const fetched = await sup.request.get(`${stillUrl}?viewing=${viewing}`);
  expect(
    [200, 204].includes(fetched.status()) && fetched.headers()['cache-control'] === 'no-store',
    `a still is never cached, got ${fetched.status()} ${fetched.headers()['cache-control']}`,
  );
  // A still without this user's recorded viewing is refused.
  const unrecorded = await sup.request.get(`${stillUrl}?viewing=0`, { failOnStatusCode: false });
  expect(unrecorded.status() === 403, `a still without a recorded viewing is refused, got ${unrecorded.status()}`);
  await shot(sup, 'lane-cameras');
  await sup.fill(t('override-reason'), 'suspicious bag at the entrance');
  await sup.click(t('override-gate1_lock'));
  await sup.waitForSelector(`${t('order-status')}[data-state="acknowledged"]`, { timeout: 20000 });
  await waitText(sup, `${t('lane-state')} ${t('gate-state')}`, /locked/);
  // "Overrides recorded" shows it live: who, and why.
  const lockRow = `${t('order')}[data-action="gate1_lock"]`;
  await waitText(sup, `${lockRow} ${t('order-reason')}`, /suspicious bag at the entrance/);
  expect(/wong/.test(await sup.textContent(`${lockRow} ${t('order-actor')}`)), 'the order names its supervisor');
  // The reason is cleared after each order, so the next one needs its own.
  expect((await sup.inputValue(t('override-reason'))) === '', 'the reason field is cleared after the order');
  // An override that opens a gate asks first; declining sends nothing.
  expect((await sup.getAttribute(t('override-gate1_open'), 'data-risk')) === 'opens', 'opening a gate is in the confirm group');
  await sup.fill(t('override-reason'), 'checking the confirmation');
  const asked = new Promise((resolve) => {
    sup.once('dialog', async (d) => {
      const message = d.message();
      await d.dismiss();
      resolve(message);
    });
  });
  const before = await sup.getAttribute(t('order-status'), 'data-index');
  await sup.click(t('override-gate1_open'));
  const question = await asked;
  expect(/Gate 1.*open|open.*gate 1/i.test(question) && /audit/.test(question), `a confirmation naming the action, got "${question}"`);
  await sup.waitForTimeout(1000);
  expect((await sup.getAttribute(t('order-status'), 'data-index')) === before, 'a declined confirmation sends no order');
  await notReloaded(sup);
  await shot(sup, 'lane-gate1-locked');
  await checkpoint('gate1-locked');
  // The traveller turned away at the locked gate raises an alarm: it reaches the page's alarm
  // list (announced to screen readers), linked to its lane, and the tab title counts it.
  const lockedAlarm = `${t('alarm')}[data-kind="gate1_locked"][data-channel="${channel}"]`;
  await sup.waitForSelector(lockedAlarm, { timeout: 20000 });
  const alarmHref = await sup.getAttribute(`${lockedAlarm} ${t('alarm-lane')}`, 'href');
  expect(alarmHref === `/lane/${port}/${hall}/${laneNo}`, `the alarm links to its lane, got ${alarmHref}`);
  expect((await sup.getAttribute(t('alarms'), 'aria-live')) === 'polite', 'the alarm list is announced');
  await sup.waitForFunction(() => /^\(\d+\) /.test(document.title), null, { timeout: 10000 });
  // The queue at the top of the page has it too, chimed for it, and acknowledges it right there.
  const queued = `${t('queued-alarm')}[data-kind="gate1_locked"][data-channel="${channel}"]`;
  await sup.waitForSelector(queued);
  expect(Number(await sup.getAttribute(t('alarm-queue'), 'data-chimes')) >= 1, 'a new alarm chimes');
  expect((await sup.getAttribute(t('queued-alarms'), 'aria-live')) === 'assertive', 'the queue is announced');
  await shot(sup, 'lane-alarm-gate1-locked');
  await sup.fill(`${queued} ${t('ack-reason')}`, 'seen; the gate stays locked until the bag is checked');
  await sup.click(`${queued} ${t('ack-submit')}`);
  await sup.waitForSelector(queued, { state: 'detached', timeout: 20000 });
  await sup.waitForSelector(`${lockedAlarm}[data-acked="true"]`, { timeout: 20000 });
  // Muted, the next alarm is silent, and the choice outlives the page.
  await sup.click(t('alarm-mute'));
  expect((await sup.getAttribute(t('alarm-mute'), 'aria-pressed')) === 'true', 'the sound is muted');
  const chimesMuted = await sup.getAttribute(t('alarm-queue'), 'data-chimes');
  await sup.fill(t('override-reason'), 'bag checked, all clear');
  const lockIndex = Number(await sup.getAttribute(t('order-status'), 'data-index'));
  await sup.click(t('override-gate1_unlock'));
  // The new order's own status: a later log index, acknowledged.
  await sup.waitForFunction(
    ([sel, after]) =>
      [...document.querySelectorAll(sel)].some(
        (e) => Number(e.dataset.index) > after && e.dataset.state === 'acknowledged',
      ),
    [t('order-status'), lockIndex],
  );
  await checkpoint('gate1-unlocked');
  // Two people step in together: the channel is held for an officer, and the alarm row has a
  // release right there.
  await checkpoint('hold');
  const heldAlarm = `${t('alarm')}[data-kind="held"][data-channel="${channel}"]`;
  await sup.waitForSelector(heldAlarm, { timeout: 20000 });
  await sup.waitForSelector(`${t('queued-alarm')}[data-kind="held"]`);
  expect(
    (await sup.getAttribute(t('alarm-queue'), 'data-chimes')) === chimesMuted,
    'no chime while muted',
  );
  await sup.waitForSelector(`${t('lane-step')}[data-step="officer"]`);
  await shot(sup, 'lane-held');
  await checkpoint('separated');
  await sup.fill(`${heldAlarm} ${t('release-reason')}`, 'the second traveller went back; one at a time now');
  await sup.click(`${heldAlarm} ${t('release-submit')}`);
  await sup.waitForSelector(`${t('lane-step')}[data-step="idle"]`, { timeout: 20000 });
  await shot(sup, 'lane-released');
  await sup.reload();
  await sup.waitForSelector(`${t('alarm-mute')}[aria-pressed="true"]`);
  await sup.click(t('alarm-mute'));
  // An order without a reason is refused by the server, not only by the form.
  const noReason = await sup.request.post(`${base}/api/lane_override`, {
    form: { csrf: await csrfOf(sup), port, channel, action: 'gate1_lock', reason: '   ' },
    failOnStatusCode: false,
  });
  const noReasonBody = await noReason.text();
  expect(noReason.status() === 422 && /reason/i.test(noReasonBody), `an empty reason is refused with 422, got ${noReason.status()}: ${noReasonBody}`);
  // An order to a channel where no lane is deployed is refused before it reaches the log.
  const undeployed = `${port}/${hall}/48`;
  const nowhere = await sup.request.post(`${base}/api/lane_override`, {
    form: { csrf: await csrfOf(sup), port, channel: undeployed, action: 'gate1_open', reason: 'testing an empty channel' },
    failOnStatusCode: false,
  });
  const nowhereBody = await nowhere.text();
  expect(nowhere.status() === 422 && /no lane is deployed/.test(nowhereBody), `an order to ${undeployed} is refused with 422, got ${nowhere.status()}: ${nowhereBody}`);
  await shot(sup, 'lane-gate1-unlocked');
  // The console in Chinese: the same page, its words translated, its codes unchanged; the choice
  // outlives the page, and English is one click back.
  await Promise.all([sup.waitForURL(`**/lane/${port}/${hall}/${laneNo}`), sup.click(t('language-zh-Hant'))]);
  expect((await sup.getAttribute('html', 'lang')) === 'zh-Hant', 'the page says it is in Chinese');
  await waitText(sup, t('lane-step'), /閒置/);
  expect((await sup.getAttribute(t('lane-step'), 'data-step')) === 'idle', 'codes do not change with the language');
  await shot(sup, 'lane-in-chinese');
  await sup.goto(`${base}/port/${port}/hall/${hall}`);
  await waitText(sup, t('severity-legend'), /待人工處理/);
  await waitText(sup, t('alarm-queue'), /警報/);
  await shot(sup, 'hall-in-chinese');
  await Promise.all([sup.waitForURL(`**/port/${port}/hall/${hall}`), sup.click(t('language-en'))]);
  await waitText(sup, t('severity-legend'), /held for an officer/);

  // 4. The service-desk officer: no overrides (refused on the server), cancellation, consent.
  step('service desk');
  const desk = await newPage();
  await login(desk, 'lee', env.PASSWORD_LEE);
  const deskActive = keepActive(desk);
  const deskLane = await desk.goto(`${base}/lane/${port}/${hall}/${laneNo}`);
  await desk.waitForSelector(`${t('lane-title')}, ${t('error')}`);
  expect(deskLane.status() === 403, `the desk may not open a lane's override page: HTTP ${deskLane.status()}`);
  expect((await desk.locator(t('override-reason')).count()) === 0, 'no override form for the desk');
  await shot(desk, 'desk-lane-refused');
  await desk.goto(`${base}/desk`);
  await desk.waitForSelector(t('find-number'));
  const forged = await desk.request.post(`${base}/api/lane_override`, {
    form: { csrf: await csrfOf(desk), port, channel, action: 'gate1_open', reason: 'let me through' },
    failOnStatusCode: false,
  });
  const forgedBody = await forged.text();
  expect(forged.status() === 403, `a desk officer's override is refused with 403, got ${forged.status()}: ${forgedBody}`);
  const deskStill = await desk.request.get(`${base}/still/${port}/${hall}/${laneNo}/1?viewing=${viewing}`, { failOnStatusCode: false });
  expect(deskStill.status() === 403, `the desk sees no camera, got ${deskStill.status()}`);
  console.log(`forged override refused: ${forged.status()} ${forgedBody.slice(0, 200)}`);
  await shot(desk, 'desk');

  await desk.selectOption(t('find-kind'), { index: 0 });
  await desk.fill(t('find-number'), 'M10000001');
  await desk.click(t('find-submit'));
  await desk.waitForSelector(t('person-id'));
  const person = (await desk.textContent(t('person-id'))).trim();
  expect(/^P\d+$/.test(person), `a person id, got ${person}`);
  await shot(desk, 'desk-found');
  // One task per page: the lookup's own page has no cancellation form; the registration found
  // links to it with the person filled in.
  expect((await desk.locator(t('cancel-person')).count()) === 0, 'the lookup page is only the lookup');
  await desk.click(t('cancel-this'));
  await desk.waitForSelector(`${t('desk-task-cancel')}[aria-current="page"]`);
  expect((await desk.inputValue(t('cancel-person'))) === person, 'the person id comes with the link');
  expect((await desk.locator(t('find-number')).count()) === 0, 'the cancellation page is only the cancellation');
  await desk.fill(t('cancel-reason'), 'the traveller asked at the Qingmao service location');
  // In person (seed 000): the service location and the identity document presented, which must
  // be the registration's own. Another document is refused before anything is written.
  await desk.selectOption(t('cancel-location'), { index: 1 });
  await desk.selectOption(t('cancel-document-kind'), 'mainland_travel_permit_hk_macao');
  const wrongDocument = await desk.request.post(`${base}/api/cancel_registration`, {
    form: {
      csrf: await csrfOf(desk), port, person, service_location: '1',
      document_kind: 'mainland_travel_permit_hk_macao', document_number: 'M10000009',
      guardian_name: '', guardian_document: '', relationship_proof: '', reason: 'wrong card',
    },
    failOnStatusCode: false,
  });
  const wrongBody = await wrongDocument.text();
  expect(
    wrongDocument.status() >= 400 && /not this registration/.test(wrongBody),
    `a cancellation with another document is refused, got ${wrongDocument.status()}: ${wrongBody.slice(0, 200)}`,
  );
  await desk.fill(t('cancel-document-number'), 'M10000001');
  // The irreversible cancellation repeats who and why and waits for a yes.
  const cancelAsked = new Promise((resolve) => {
    desk.once('dialog', async (d) => {
      const message = d.message();
      await d.accept();
      resolve(message);
    });
  });
  await desk.click(t('cancel-submit'));
  const cancelQuestion = await cancelAsked;
  expect(
    cancelQuestion.includes(person) && cancelQuestion.includes('Qingmao') && /cannot be undone/.test(cancelQuestion),
    `the confirmation names the person and the reason, got "${cancelQuestion}"`,
  );
  await desk.waitForSelector(`${t('cancel-progress')}[data-complete="true"]`, { timeout: 30000 });
  await shot(desk, 'desk-cancelled-all-replicas');
  await desk.click(t('desk-task-find'));
  await desk.waitForSelector(t('find-number'));
  expect((await desk.locator(t('person-id')).count()) === 0, 'the stale lookup is cleared after the cancellation');
  await desk.click(t('desk-task-cancel'));
  await desk.waitForSelector(t('cancel-progress'));
  const replicas = await desk.locator(t('replica')).count();
  expect(replicas >= 2, `every replica listed, got ${replicas}`);
  await checkpoint('registration-cancelled');
  // Cancelling the same person again: the desk finds no registration for the document presented
  // and refuses before anything is written.
  const again = await desk.request.post(`${base}/api/cancel_registration`, {
    form: {
      csrf: await csrfOf(desk), port, person, service_location: '1',
      document_kind: 'mainland_travel_permit_hk_macao', document_number: 'M10000001',
      guardian_name: '', guardian_document: '', relationship_proof: '', reason: 'asked twice by mistake',
    },
    failOnStatusCode: false,
  });
  const againBody = await again.text();
  expect(again.status() === 422 && /not this registration/.test(againBody), `a second cancellation is refused at the desk, got ${again.status()}: ${againBody}`);
  // One that reaches the log anyway (an operator's, written while the first was in flight) is
  // refused when it applies: the audit shows the record with its outcome.
  await checkpoint('cancel-again', person);

  // A guardian's consent for a 15-year-old (DOMAIN.md: 14–17 need it).
  const today = new Date(env.TODAY);
  const dob = new Date(today);
  dob.setFullYear(today.getFullYear() - 15);
  const iso = (d) => d.toISOString().slice(0, 10);
  const until = new Date(today);
  until.setFullYear(today.getFullYear() + 5);
  await desk.click(t('desk-task-consent'));
  await desk.fill(t('consent-name'), 'WONG, KA YAN');
  await desk.fill(t('consent-dob'), iso(dob));
  await desk.selectOption(t('consent-category'), { index: 0 });
  await desk.selectOption(t('consent-document-kind'), { index: 0 });
  await desk.fill(t('consent-document-number'), 'M20000015');
  await desk.fill(t('consent-valid-from'), iso(new Date(today.getFullYear() - 1, 0, 2)));
  await desk.fill(t('consent-valid-until'), iso(until));
  await desk.fill(t('consent-guardian-name'), 'WONG, MEI');
  await desk.fill(t('consent-guardian-document'), 'Macao resident identity card 5215299(8)');
  await desk.fill(t('consent-relationship-proof'), 'birth certificate 2011-MO-0042');
  await desk.fill(t('consent-reason'), 'mother present with the birth certificate');
  await desk.click(t('consent-submit'));
  await result(desk, 'consent');
  await shot(desk, 'desk-consent-recorded');
  await desk.click(t('desk-task-find'));
  await desk.fill(t('find-number'), 'M20000015');
  await desk.click(t('find-submit'));
  await waitText(desk, t('guardian-consent'), /WONG, MEI \(Macao resident identity card 5215299\(8\)\)/);
  await shot(desk, 'desk-guardian-consent');

  // Lee's later steps (lock-out, reset, sessions) are about lee's account: nothing else uses it.
  deskActive();

  // 5. The port admin: the audit chain, a new port, its first appliance joining, staged face scan.
  step('port admin');
  const admin = await newPage();
  await login(admin, 'admin', env.PASSWORD_ADMIN);
  stopKeepingActive.push(keepActive(admin));
  await admin.goto(`${base}/audit/${port}`);
  await admin.waitForSelector(t('audit-chain'));
  const chain = await admin.getAttribute(t('audit-chain'), 'data-status');
  const records = await admin.locator(t('audit-record')).count();
  expect(chain === 'ok', `the audit chain verifies, got ${chain}`);
  const actions = await admin.$$eval(t('audit-record'), (rows) => rows.map((r) => r.textContent));
  for (const what of ['camera.view', 'gate1_lock', 'gate1_unlock', 'release', 'cancel', 'guardian_consent']) {
    expect(actions.some((a) => a.includes(what)), `the trail has a ${what} record: ${actions.join(' | ')}`);
  }
  // Consents and cancellations name the person they concern (the consent's target is the port).
  for (const what of ['cancel', 'guardian_consent']) {
    const person = await admin.textContent(`${t('audit-record')}[data-action="${what}"] ${t('audit-person')}`);
    expect(/^P\d{8}$/.test(person.trim()), `the ${what} record names a person, got "${person}"`);
  }
  // The console's seven changes (a camera viewing and an acknowledgement among them), each bound to the console's certificate and its user; the rest of
  // the trail is the test operator's seeding, its second cancellation and the lane node's joining
  // (a declined confirmation, a refused order to an empty channel and the desk's refusal of a
  // second cancellation left no record).
  const byConsole = actions.filter((a) => a.includes('@console')).length;
  expect(byConsole === 7, `exactly the seven console changes audited, got ${byConsole} of ${records}: ${actions.join(' | ')}`);
  // Each record's outcome: the first cancellation applied, the second refused with its code.
  const cancels = await admin.$$eval(`${t('audit-record')}[data-action="cancel"] ${t('audit-outcome')}`, (cs) =>
    cs.map((c) => `${c.dataset.outcome}:${c.dataset.code}`),
  );
  expect(
    JSON.stringify(cancels) === JSON.stringify(['refused:unknown_person', 'applied:']),
    `the cancellations' outcomes, newest first, got ${cancels}`,
  );
  await shot(admin, 'audit');
  // Filters narrow the trail in the page.
  await admin.fill(t('filter-action'), 'cancel');
  await admin.waitForFunction(
    (sel) => [...document.querySelectorAll(sel)].every((r) => r.dataset.action === 'cancel'),
    t('audit-record'),
  );
  const filtered = await admin.locator(t('audit-record')).count();
  expect(filtered >= 1 && filtered < records, `the action filter keeps the cancellations only, got ${filtered} of ${records}`);
  await shot(admin, 'audit-filtered');
  await admin.fill(t('filter-action'), '');

  await admin.goto(`${base}/rollout`);
  await admin.fill(t('port-id'), 'zhuhai-pilot');
  await admin.fill(t('port-name-input'), 'Zhuhai Pilot Port');
  await admin.fill(t('port-halls'), 'passenger | Passenger Hall | 4');
  await admin.fill(t('port-nodes'), `1=${env.NEW_NODE_ADDR}`);
  await admin.fill(t('port-reason'), 'seed 001: new port opening');
  await admin.click(t('port-submit'));
  await result(admin, 'port');
  await admin.click(t('created-port'));
  await admin.waitForSelector(`${t('rollout-selected')}[data-port="zhuhai-pilot"]`);
  // The appliance makes its own key and signing request; only the request is pasted here.
  await checkpoint('csr', 'zhuhai-pilot');
  const csr = readFileSync(`${env.APPLIANCE_DIR}/tls/request.csr`, 'utf8');
  expect(csr.includes('BEGIN CERTIFICATE REQUEST'), 'the appliance made a signing request');
  await admin.fill(t('bundle-node'), '1');
  await admin.fill(t('bundle-addr'), env.NEW_NODE_ADDR);
  await admin.selectOption(t('bundle-role'), 'voter');
  await admin.fill(t('bundle-csr'), csr);
  await admin.fill(t('bundle-reason'), 'first voter appliance');
  await admin.click(t('bundle-submit'));
  await result(admin, 'bundle');
  await admin.reload();
  await admin.waitForSelector(`${t('bundle')}[data-node="1"] ${t('bundle-dir')}`);
  const bundleDir = (await admin.textContent(`${t('bundle')}[data-node="1"] ${t('bundle-dir')}`)).trim();
  await shot(admin, 'rollout-bundle');
  await checkpoint('bundle', bundleDir);
  await admin.fill(t('init-reason'), 'first appliance powered on');
  await admin.click(t('init-submit'));
  await result(admin, 'init', 60000);
  await admin.waitForSelector(`${t('node-row')}[data-node="1"][data-reachable="true"][data-membership="voter"]`, {
    timeout: 60000,
  });
  await shot(admin, 'rollout-node-joined');

  // Staged face scan on the test port: pilot channel, then roll back to card only.
  await admin.goto(`${base}/rollout?port=${port}`);
  await admin.waitForSelector(`${t('rollout-selected')}[data-port="${port}"]`);
  await admin.fill(t('stage-pilot'), `${hall}/${laneNo}`);
  await admin.fill(t('stage-reason'), 'roll back face scan after a camera firmware update');
  await admin.click(t('stage-rollback-submit'));
  await result(admin, 'stage');
  await admin.goto(`${base}/port/${port}/hall/${hall}`);
  await admin.waitForSelector(`${cell}[data-mode="card_only"]`, { timeout: 20000 });
  await shot(admin, 'hall-rolled-back-card-only');
  await admin.goto(`${base}/rollout?port=${port}`);
  await admin.fill(t('stage-pilot'), `${hall}/${laneNo}`);
  await admin.fill(t('stage-reason'), 'pilot channel back on face scan');
  await admin.click(t('stage-pilot-submit'));
  await result(admin, 'stage');
  await admin.goto(`${base}/port/${port}/hall/${hall}`);
  await admin.waitForSelector(`${cell}[data-mode="face_and_card"]`, { timeout: 20000 });

  // A port from its definition file (the file its appliances are provisioned from): previewed,
  // then created.
  await admin.goto(`${base}/rollout`);
  const definition = [
    'id = "macau-lab"',
    'name = "Macau Lab Port"',
    'utc_offset_minutes = 480',
    '[[voter]]',
    'id = 1',
    'addr = "127.0.0.1"',
    '[[hall]]',
    'id = "departure"',
    'name = "Departure Hall"',
    'channels = 6',
    'first_node_id = 101',
    'node_addr = "127.0.1.{n}"',
    '[hall.lane]',
    'camera_gate1 = { name = "gate1", source = "rtsp://127.0.2.{n}:554/g1" }',
    'camera_gate2 = { name = "gate2", source = "rtsp://127.0.2.{n}:554/g2" }',
    'gates = { address = "127.0.2.{n}:502" }',
    'document_reader = { address = "127.0.2.{n}:4001" }',
    'fingerprint_reader = { address = "127.0.2.{n}:4002" }',
    'macao = { base_url = "https://127.0.3.1:8443", ca_cert = "/etc/clearway/authority/macao-ca.pem", client_cert = "/etc/clearway/authority/macao-client.pem", client_key = "/etc/clearway/authority/macao-client.key" }',
    'mainland = { base_url = "https://127.0.3.2:8443", ca_cert = "/etc/clearway/authority/mainland-ca.pem", client_cert = "/etc/clearway/authority/mainland-client.pem", client_key = "/etc/clearway/authority/mainland-client.key" }',
    '',
  ].join('\n');
  // Chosen as a file (read in the browser, previewed at once), as an admin with the file would.
  const definitionFile = `${env.SHOTS}/lab-port.toml`;
  writeFileSync(definitionFile, definition);
  await admin.setInputFiles(t('definition-file'), definitionFile);
  await result(admin, 'definition-preview');
  expect((await admin.inputValue(t('port-definition'))) === definition, 'the chosen file fills the form');
  expect((await admin.getAttribute(t('preview'), 'data-channels')) === '6', 'the preview counts the channels');
  expect((await admin.locator(t('preview-hall')).count()) === 1, 'one hall in the preview');
  await shot(admin, 'rollout-definition-preview');
  await admin.fill(t('definition-reason'), 'lab port from its definition file');
  await admin.click(t('definition-submit'));
  await result(admin, 'definition');
  await admin.goto(`${base}/rollout?port=macau-lab`);
  await admin.waitForSelector(`${t('rollout-selected')}[data-port="macau-lab"]`);
  await shot(admin, 'rollout-port-from-definition');

  // 6. Bad input.
  step('bad input');
  // The supervisor's page sat idle through the desk and rollout steps (its live stream does not
  // keep the session alive), so it signs in again first.
  await login(sup, 'wong', env.PASSWORD_WONG);
  const noCsrf = await sup.request.post(`${base}/api/lane_override`, {
    form: { port, channel, action: 'gate1_lock', reason: 'no token' },
    failOnStatusCode: false,
  });
  const noCsrfBody = await noCsrf.text();
  expect(noCsrf.status() === 403 && /csrf/i.test(noCsrfBody), `missing CSRF → 403, got ${noCsrf.status()}: ${noCsrfBody}`);
  const big = await sup.request.post(`${base}/api/lane_override`, {
    form: { csrf: await csrfOf(admin), port, channel, action: 'gate1_lock', reason: 'x'.repeat(200000) },
    failOnStatusCode: false,
  });
  expect(big.status() === 413, `an oversized form → 413, got ${big.status()}`);
  const unknown = await sup.goto(`${base}/lane/${port}/${hall}/999`);
  expect(unknown.status() === 404, `an unknown lane → 404, got ${unknown.status()}`);
  await sup.waitForSelector(`${t('error')}[data-code="not_found"]`);
  await shot(sup, 'unknown-lane');
  // A session left unused past its idle time-out ends.
  const idle = await newPage();
  await login(idle, 'lee', env.PASSWORD_LEE);
  await idle.goto(`${base}/desk`);
  await idle.waitForSelector(t('find-number'));
  await idle.waitForTimeout((idleS + 2) * 1000);
  await idle.goto(`${base}/desk`);
  await idle.waitForSelector(`${t('login-error')}[data-code="session_expired"]`);
  await shot(idle, 'session-expired');
  // Wrong passwords lock the account.
  for (let i = 0; i < 5; i += 1) {
    await login(anon, 'lee', `wrong-${i}`);
  }
  await login(anon, 'lee', env.PASSWORD_LEE);
  await anon.waitForSelector(t('login-error'));
  const locked = await anon.getAttribute(t('login-error'), 'data-code');
  expect(locked === 'locked_out', `a locked account is refused, got ${locked}`);
  await shot(anon, 'login-locked');

  // 7. Accounts: an admin lifts the pause and resets a password the user must change before
  // anything else; the console's own audit log has each step, its chain intact.
  step('accounts');
  await login(admin, 'admin', env.PASSWORD_ADMIN);
  async function manage(name, action, reason) {
    await admin.goto(`${base}/users`);
    await admin.waitForSelector(t('manage-submit'));
    await admin.selectOption(t('manage-name'), name);
    await admin.selectOption(t('manage-action'), action);
    await admin.fill(t('manage-reason'), reason);
    await admin.click(t('manage-submit'));
    await result(admin, 'manage');
  }
  await manage('lee', 'unlock', 'lee called from the desk, identity checked');
  await login(anon, 'lee', env.PASSWORD_LEE);
  expect(anon.url().endsWith('/desk'), `lee signs in once the pause is lifted, at ${anon.url()}`);
  await manage('lee', 'reset_password', 'lee forgot the password');
  const generated = (await admin.textContent(t('reset-password'))).trim();
  expect(generated.length === 20, `a generated password is shown once, got "${generated}"`);
  await shot(admin, 'users-reset-password');
  await login(anon, 'lee', generated);
  await anon.waitForSelector(t('must-change'));
  expect(anon.url().endsWith('/account'), `a reset password sends lee to the account page, at ${anon.url()}`);
  await shot(anon, 'account-must-change');
  await anon.goto(`${base}/desk`);
  expect(anon.url().endsWith('/account'), 'nothing else until the password is changed');
  await anon.waitForSelector(t('must-change'));
  await anon.fill(t('password-current'), generated);
  await anon.fill(t('password-new'), 'lee chose this new password');
  await anon.fill(t('password-repeat'), 'lee chose this new password');
  await anon.click(t('password-submit'));
  await result(anon, 'password');
  await anon.goto(`${base}/desk`);
  await anon.waitForSelector(t('find-number'));
  await anon.goto(`${base}/account`);
  await anon.waitForSelector(t('session-row'));
  await shot(anon, 'account-sessions');
  await admin.goto(`${base}/console/audit`);
  await admin.waitForSelector(t('audit-chain'));
  const consoleChain = await admin.getAttribute(t('audit-chain'), 'data-status');
  expect(consoleChain === 'ok', `the console's audit chain verifies, got ${consoleChain}`);
  const consoleActions = await admin.$$eval(t('audit-record'), (rows) => rows.map((r) => r.dataset.action));
  for (const what of ['port.create', 'user.unlock', 'user.reset_password', 'user.change_password']) {
    expect(consoleActions.includes(what), `the console's log has ${what}: ${consoleActions.join(' | ')}`);
  }
  await shot(admin, 'console-audit');
  expect(pageErrors.length === 0, `no script error in any page, got: ${pageErrors.join(' | ')}`);
  step('done');
} finally {
  for (const stop of stopKeepingActive) stop();
  await browser.close();
  endCheckpoints();
}
