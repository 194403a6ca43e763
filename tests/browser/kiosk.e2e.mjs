// The gate-1 screen a traveller reads, in Debian's headless Chromium driven by Playwright
// (playwright-core, never a downloaded browser). Run by tests/tests/kiosk.rs, which starts a
// port with a lane and answers this script's checkpoints (`CHECKPOINT <name>` on stdout, `ok` or
// `fail <why>` back on stdin). The page is the lane's own (`/kiosk`), touched as a traveller
// would: language buttons, then Agree.
//
// Every step saves a screenshot under $SHOTS; any failed expectation throws, and a
// Content-Security-Policy violation or a script error on the page fails the test too.

import { checkpoint, endCheckpoints, expect, launch, shot, t } from './harness.mjs';

const kiosk = process.env.KIOSK_URL; // http://127.0.0.1:<port>/kiosk
const browser = await launch();

const problems = [];
try {
  // A kiosk screen: 1920×1080, touch.
  const ctx = await browser.newContext({ viewport: { width: 1920, height: 1080 }, hasTouch: true });
  const page = await ctx.newPage();
  page.setDefaultTimeout(20000);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });

  // 1. Nothing happening: the face-scan prompt, in the default language (Traditional Chinese).
  const response = await page.goto(kiosk);
  const csp = response.headers()['content-security-policy'] ?? '';
  expect(csp.includes("script-src 'self'") && !csp.includes('unsafe-inline'), `a strict CSP, got "${csp}"`);
  await page.waitForSelector('body[data-code="ready"]');
  expect((await page.getAttribute('html', 'lang')) === 'zh-Hant', 'Traditional Chinese by default');
  const prompt = await page.textContent(t('headline'));
  expect(/太陽眼鏡.*口罩.*帽子/.test(prompt), `the face-scan prompt (sunglasses, mask, hat), got "${prompt}"`);
  expect((await page.textContent(t('reminder'))).includes('旅行證件'), 'the reminder to carry the document');
  const langs = await page.$$eval(`${t('languages')} button`, (bs) => bs.map((b) => b.dataset.lang));
  expect(JSON.stringify(langs) === JSON.stringify(['zh-Hant', 'zh-Hans', 'pt', 'en']), `four languages, got ${langs}`);
  await shot(page, 'ready-zh-Hant', false);

  // 2. An unregistered adult presents a card: the declaration, with Agree and Not now.
  await checkpoint('present');
  await page.waitForSelector('body[data-code="declaration"]');
  const agreeLabel = { 'zh-Hant': '同意', 'zh-Hans': '同意', pt: 'Concordo', en: 'Agree' };
  const declineLabel = { 'zh-Hant': '暫不登記', 'zh-Hans': '暂不登记', pt: 'Agora não', en: 'Not now' };
  const headlines = new Set();
  for (const lang of ['zh-Hans', 'pt', 'en', 'zh-Hant']) {
    await page.tap(`${t('languages')} button[data-lang="${lang}"]`);
    await page.waitForSelector(`html[lang="${lang}"]`);
    await page.waitForSelector(`${t('languages')} button[data-lang="${lang}"][aria-pressed="true"]`);
    const agree = (await page.textContent(t('action-agree'))).trim();
    const decline = (await page.textContent(t('action-decline'))).trim();
    expect(agree === agreeLabel[lang], `${lang}: Agree reads "${agreeLabel[lang]}", got "${agree}"`);
    expect(decline === declineLabel[lang], `${lang}: Not now reads "${declineLabel[lang]}", got "${decline}"`);
    const detail = await page.textContent(t('detail'));
    expect(detail.length > 40, `${lang}: the declaration's text is shown`);
    headlines.add(await page.textContent(t('headline')));
    // Touch targets: at least 2 cm (about 76 CSS px) high.
    const box = await page.locator(t('action-agree')).boundingBox();
    expect(box && box.height >= 76, `${lang}: Agree is a large touch target (${box?.height}px)`);
    await shot(page, `declaration-${lang}`);
  }
  expect(headlines.size === 4, `the declaration in four different languages, got ${[...headlines]}`);

  // 3. The traveller reads it in English and taps Agree: registration complete, gate 1 opens.
  await page.tap(`${t('languages')} button[data-lang="en"]`);
  await page.waitForSelector('html[lang="en"]');
  await page.tap(t('action-agree'));
  await page.waitForSelector('body[data-code="registered"]');
  const done = await page.textContent(t('headline'));
  expect(/Registration complete/.test(done), `"Registration complete", got "${done}"`);
  expect(/gate 2/.test(await page.textContent(t('detail'))), 'told to proceed to gate 2');
  await shot(page, 'registered-en');
  await checkpoint('registered');

  // 4. Nobody steps in; gate 1 closes and the next traveller finds the kiosk's own language.
  await page.waitForSelector('body[data-code="ready"]', { timeout: 30000 });
  await page.waitForSelector('html[lang="zh-Hant"]');
  await shot(page, 'ready-again');

  // 5. The gate-2 screen is a page of its own.
  const two = await ctx.newPage();
  await two.goto(`${kiosk}?gate=2&lang=pt`);
  await two.waitForSelector('html[lang="pt"]');
  await shot(two, 'gate2-pt');

  expect(problems.length === 0, `no errors on the page: ${problems.join('; ')}`);
  console.log('kiosk e2e: all steps passed');
} catch (e) {
  console.log(`FAILED: ${e.stack ?? e}`);
  for (const p of browser.contexts().flatMap((c) => c.pages())) {
    const state = await p
      .evaluate(() => `${document.body.dataset.code}: ${document.querySelector('h2')?.textContent}`)
      .catch(() => 'unreadable');
    console.log(`page ${p.url()} shows ${state}`);
  }
  for (const p of problems) console.log(p);
  process.exitCode = 1;
} finally {
  await browser.close();
  endCheckpoints();
}
