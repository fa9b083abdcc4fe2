// The review app in a real browser (driven by tests/ui_e2e.rs): Debian's headless Chromium,
// driven by playwright-core, does what a clinician does after the EHR launches fhirscribe:
// log in and consent at the authorization server, read the patient banner, upload the
// recording, wait for the review page, click a note sentence (its evidence is highlighted and
// the audio seeks to it), edit that sentence, remove a condition, sign. It checks both pages
// with axe-core, notes any Content-Security-Policy violation, takes screenshots, and prints one
// JSON line of what it saw; the Rust test judges it and checks the EHR.
//
// Env: LAUNCH_URL (the EHR launch URL), AUDIO (file to upload), EDIT_TEXT, SHOTS_DIR (optional:
// write encounter.png, review.png, review-tablet.png there), CHROMIUM (default /usr/bin/chromium).
import fs from 'node:fs';
import path from 'node:path';
import { load, packageDir } from './deps.mjs';

const fail = (m) => { console.error(`ui-e2e: ${m}`); process.exit(2); };
const need = (k) => process.env[k] || fail(`${k} is required`);
const LAUNCH = need('LAUNCH_URL');
const AUDIO = need('AUDIO');
const EDIT_TEXT = need('EDIT_TEXT');
const SHOTS = process.env.SHOTS_DIR;
const { chromium } = await load('playwright-core');
const axeSource = fs.readFileSync(path.join(packageDir('axe-core'), 'axe.min.js'), 'utf8');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // This machine's network is closed: no background connections (they fail many at a time).
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required',
    // The browser recorder's microphone: Chromium's fake device (a beep), no permission prompt.
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'],
});
const out = { consoleErrors: [], csp: [] };
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const t = m.text();
    if (/Content Security Policy/i.test(t)) out.csp.push(t); else out.consoleErrors.push(t);
  });

  // axe-core's serious and critical violations of the page as it is now (WCAG 2.x A/AA rules).
  const axe = async () => {
    if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(axeSource);
    const r = await page.evaluate(() => window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
      resultTypes: ['violations'],
    }));
    return r.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  };

  // The launch: the authorization server's login and consent pages, then the encounter page.
  await page.goto(LAUNCH);
  for (let i = 0; i < 8 && !/\/app$/.test(new URL(page.url()).pathname); i++) {
    const login = page.locator('input[name="login"]');
    if (await login.count()) {
      await login.fill('alice');
      const pw = page.locator('input[name="password"]');
      if (await pw.count()) await pw.fill('any');
    }
    await Promise.all([page.waitForNavigation(), page.locator('button[type="submit"], [type="submit"]').first().click()]);
  }
  out.encounterUrl = page.url();
  out.banner = (await page.locator('.banner').innerText()).replace(/\s+/g, ' ');
  out.axeEncounter = await axe();
  if (SHOTS) await page.screenshot({ path: path.join(SHOTS, 'encounter.png') });

  // Upload the recording (two channels: clinician on channel 0) and wait for the review page.
  await page.setInputFiles('#audio', AUDIO);
  await page.check('#two-channel');
  await Promise.all([
    page.waitForURL(/\/app\/review\//, { timeout: 600000 }),
    page.click('#upload-form button[type="submit"]'),
  ]);
  await page.waitForLoadState('load');
  out.reviewUrl = page.url();

  // A note sentence with evidence: click it; its segments light up and the audio seeks there.
  const sentence = page.locator('.sentence-row .sentence:not([data-evidence=""])').first();
  const row = sentence.locator('xpath=..');
  out.sentenceId = await row.getAttribute('data-id');
  out.evidence = ((await sentence.getAttribute('data-evidence')) || '').split(' ').filter(Boolean);
  out.evidenceBegins = await page.evaluate((ids) => ids.map((id) => parseFloat(document.getElementById('seg-' + id)?.dataset.begin)), out.evidence);
  await sentence.click();
  await page.waitForFunction(() => { const a = document.getElementById('audio-player'); return a && a.readyState >= 1; }, null, { timeout: 10000 }).catch(() => {});
  await page.waitForTimeout(300);
  out.highlighted = await page.evaluate(() => [...document.querySelectorAll('.segment.highlight')].map((s) => s.id.slice(4)));
  out.audioTime = await page.evaluate(() => document.getElementById('audio-player').currentTime);
  out.highlightedInView = await page.evaluate(() => {
    const s = document.querySelector('.segment.highlight'); if (!s) return false;
    const r = s.getBoundingClientRect(); return r.bottom > 0 && r.top < window.innerHeight;
  });

  // Edit that sentence (saved at once), then remove one condition from what goes to the chart.
  await row.locator('.edit').click();
  await row.locator('textarea').fill(EDIT_TEXT);
  await row.locator('.save').click();
  await page.waitForFunction(() => document.getElementById('review-status').textContent === 'Saved.');
  out.editedText = await row.locator('.sentence').innerText();
  const condition = page.locator('.item', { has: page.locator('.kind', { hasText: 'Condition' }) }).first();
  out.removedKey = await condition.getAttribute('data-key');
  await condition.locator('.item-toggle').click();
  await page.waitForFunction((k) => document.querySelector(`.item[data-key="${k}"]`).classList.contains('removed'), out.removedKey);
  await page.reload();
  out.editSurvivedReload = (await page.locator(`#row-${out.sentenceId} .sentence`).innerText()) === EDIT_TEXT;
  out.axeReview = await axe();
  // Entity highlights cover whole words (spans are end-inclusive in HealthScribe's format).
  out.marks = await page.evaluate(() => document.querySelectorAll('.segment mark.ent').length);
  out.marksCutMidWord = await page.evaluate(() => [...document.querySelectorAll('.segment mark.ent')]
    .filter((m) => /^[A-Za-z0-9]/.test(m.nextSibling?.textContent || '')).map((m) => m.textContent));
  if (SHOTS) {
    await page.locator(`#row-${out.sentenceId} .sentence`).click();
    await page.waitForTimeout(200);
    await page.screenshot({ path: path.join(SHOTS, 'review.png') });
    await page.setViewportSize({ width: 820, height: 1180 });
    await page.screenshot({ path: path.join(SHOTS, 'review-tablet.png') });
    await page.setViewportSize({ width: 1280, height: 800 });
  }

  // Sign: the page reloads with what was written to the chart.
  await Promise.all([page.waitForNavigation({ timeout: 60000 }), page.click('#sign')]);
  out.written = await page.locator('#written a').evaluateAll((as) => as.map((a) => a.textContent));
  out.signedText = await page.locator('#signed').innerText();
  if (SHOTS) {
    await page.locator('#s-h').scrollIntoViewIfNeeded();
    await page.evaluate(() => document.getElementById('s-h').scrollIntoView({ block: 'start' }));
    await page.screenshot({ path: path.join(SHOTS, 'signed.png') });
  }
  out.axeSigned = await axe();

  // Back on the encounter page: record 2 s in the browser; the recording is uploaded as a new
  // job of the same encounter (the fake microphone only beeps, so its note is empty).
  await page.goto(new URL('/app', page.url()).toString());
  // Note what the recorder hands to the upload (the request body of a Blob is not visible
  // to the driver).
  await page.evaluate(() => {
    const upload = window.fhirscribeUpload;
    window.fhirscribeUpload = async (blob, two) => {
      const head = new DataView(await blob.slice(0, 44).arrayBuffer());
      const tag = (o) => String.fromCharCode(...[0, 1, 2, 3].map((i) => head.getUint8(o + i)));
      window.recorded = { bytes: blob.size, riff: tag(0) + '/' + tag(8), sampleRate: head.getUint32(24, true),
        channels: head.getUint16(22, true), bits: head.getUint16(34, true) };
      return upload(blob, two);
    };
  });
  await page.click('#rec-start');
  await page.waitForFunction(() => !document.getElementById('rec-stop').disabled);
  await page.waitForTimeout(2200);
  out.recLevel = await page.evaluate(() => document.getElementById('rec-level').value);
  out.recTime = await page.locator('#rec-time').innerText();
  const [upload] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === '/app/jobs' && r.request().method() === 'POST', { timeout: 60000 }),
    page.click('#rec-stop'),
  ]);
  out.recUpload = { status: upload.status(), ...(await page.evaluate(() => window.recorded)) };
} catch (e) {
  out.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
