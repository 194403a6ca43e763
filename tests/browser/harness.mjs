// What every browser script shares: the checkpoint conversation with the Rust test that runs it
// (`CHECKPOINT <name> [arg]` on stdout, one line back on stdin: `ok` or `fail <why>`; see
// tests/src/console.rs, `Browser`), numbered screenshots under $SHOTS, expectations that throw,
// and Debian's Chromium (never a downloaded browser).

import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const stdin = createInterface({ input: process.stdin });
const answers = stdin[Symbol.asyncIterator]();

/** Tells the Rust side to act or check, and waits for its answer. */
export async function checkpoint(name, arg = '') {
  console.log(`CHECKPOINT ${name} ${arg}`.trimEnd());
  const { value, done } = await answers.next();
  if (done || !value.startsWith('ok')) {
    throw new Error(`checkpoint ${name}: ${done ? 'no answer' : value}`);
  }
}

/** Stops listening for answers (the script can then exit). */
export function endCheckpoints() {
  stdin.close();
}

let shots = 0;
/** Saves a numbered screenshot of `page` under $SHOTS. */
export async function shot(page, name, fullPage = true) {
  shots += 1;
  const file = `${process.env.SHOTS}/${String(shots).padStart(2, '0')}-${name}.png`;
  await page.screenshot({ path: file, fullPage });
  console.log(`screenshot ${file}`);
}

export function expect(cond, what) {
  if (!cond) throw new Error(`expected: ${what}`);
}

/** The selector of an element marked `data-test="<name>"`. */
export const t = (name) => `[data-test="${name}"]`;

/** Debian's headless Chromium. */
export function launch() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}
