// Drives the reporting service's web console (/console/) in headless Chromium, as an
// administrator and as a reader would use it, and fails on the first thing that is not as
// the console's contract says. Run by tests/tests/console.rs; by hand:
//
//   BASE_URL=http://127.0.0.1:8530 ADMIN_TOKEN=... READER_TOKEN=... UPDATE_ID=<uuid> \
//   GROUP_ID=<uuid> DEADLINE=2030-01-02T03:04 ARTIFACT_DIR=/tmp/console node console.mjs
//
// Optional: COMPUTERS (how many computers the server knows: the compliance chart's numbers
// must add up to it), GROUP_MEMBERS (how many computers GROUP_ID holds), UPDATE_TITLE (a
// search for it must find UPDATE_ID), GROUP_NAME (GROUP_ID's name), TOP_NEEDED (how many
// computers need UPDATE_ID, the most needed update), COMPUTER_ID and COMPUTER_NAME (a computer
// with a failed install: its page must name it and list it), CHROMIUM (the browser, /usr/bin/chromium by default),
// STEP_TIMEOUT_MS (per browser action, 15000 by default).
//
// Prints one line per step; exits 1 with the reason at the first failure.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';

import { chromium } from 'playwright-core';

const env = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (fallback === undefined) {
      console.error(`console.mjs: the environment variable ${name} is required`);
      process.exit(2);
    }
    return fallback;
  }
  return v;
};

const BASE_URL = env('BASE_URL').replace(/\/+$/, '');
const ADMIN_TOKEN = env('ADMIN_TOKEN');
const READER_TOKEN = env('READER_TOKEN');
const UPDATE_ID = env('UPDATE_ID').toLowerCase();
const GROUP_ID = env('GROUP_ID').toLowerCase();
const DEADLINE = env('DEADLINE');
const ARTIFACT_DIR = env('ARTIFACT_DIR');
const COMPUTERS = process.env.COMPUTERS ? Number(process.env.COMPUTERS) : null;
const GROUP_MEMBERS = process.env.GROUP_MEMBERS ? Number(process.env.GROUP_MEMBERS) : null;
const UPDATE_TITLE = process.env.UPDATE_TITLE || null;
const GROUP_NAME = process.env.GROUP_NAME || null;
const TOP_NEEDED = process.env.TOP_NEEDED ? Number(process.env.TOP_NEEDED) : null;
const COMPUTER_ID = process.env.COMPUTER_ID || null;
const COMPUTER_NAME = process.env.COMPUTER_NAME || null;
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const STEP_TIMEOUT = Number(env('STEP_TIMEOUT_MS', '15000'));

if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(DEADLINE)) {
  console.error(`console.mjs: DEADLINE must look like 2030-01-02T03:04 (datetime-local), not ${DEADLINE}`);
  process.exit(2);
}
const [DEADLINE_DATE, DEADLINE_TIME] = DEADLINE.split('T');

const NAV_PATHS = [
  '/console/',
  '/console/computers',
  '/console/updates',
  '/console/groups',
  '/console/sync',
  '/console/downstream',
];

class Failure extends Error {}

function fail(message) {
  throw new Failure(message);
}

function check(condition, message) {
  if (!condition) fail(message);
}

let stepNumber = 0;
let currentStep = '';

async function step(name, body) {
  stepNumber += 1;
  currentStep = name;
  const started = Date.now();
  await body();
  console.log(`ok ${stepNumber} - ${name} (${Date.now() - started} ms)`);
}

// ---------------------------------------------------------------------------------------
// Browser contexts, each with a fresh profile, each page watched for errors.

const profiles = [];
const contexts = [];

/** What went wrong in the pages of a context since the last `assertClean`. */
class Watch {
  constructor(label) {
    this.label = label;
    this.problems = [];
    // Messages the step under way expects (a 401 or 403 page load logs one).
    this.allowed = [];
  }

  note(kind, text) {
    if (this.allowed.some((re) => re.test(text))) return;
    this.problems.push(`${kind}: ${text}`);
  }

  attach(page) {
    page.on('pageerror', (e) => this.note('uncaught exception', `${e.message}\n${e.stack || ''}`));
    page.on('console', (m) => {
      if (m.type() === 'error') {
        const where = m.location()?.url ? ` (${m.location().url}:${m.location().lineNumber})` : '';
        this.note('console error', `${m.text()}${where}`);
      }
    });
    page.on('requestfailed', (r) => {
      this.note('request failed', `${r.method()} ${r.url()}: ${r.failure()?.errorText ?? 'unknown'}`);
    });
    page.on('response', (r) => {
      const req = r.request();
      if (r.status() >= 400 && !req.isNavigationRequest()) {
        this.note('sub-resource error', `${req.method()} ${r.url()} answered ${r.status()}`);
      }
    });
  }

  /** Fails when anything went wrong; a short settle first for late messages. */
  async assertClean(page, what) {
    await page.waitForTimeout(50);
    if (this.problems.length > 0) {
      const list = this.problems.splice(0).join('\n  ');
      fail(`${what}: the ${this.label} browser reported problems:\n  ${list}`);
    }
  }

  /** Runs `body` with messages matching `patterns` tolerated. */
  async tolerating(patterns, body) {
    this.allowed = patterns;
    try {
      return await body();
    } finally {
      this.allowed = [];
    }
  }
}

async function openContext(label, colorScheme) {
  const profile = await mkdtemp(join(tmpdir(), 'wsus-console-profile-'));
  profiles.push(profile);
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      colorScheme,
      viewport: { width: 1280, height: 900 },
      locale: 'en-US',
      timezoneId: 'UTC',
    });
  } catch (e) {
    fail(
      `cannot start Chromium (${CHROMIUM}): ${e.message}\n` +
        'install it with: apt-get install -y --no-install-recommends chromium fonts-liberation',
    );
  }
  contexts.push(context);
  context.setDefaultTimeout(STEP_TIMEOUT);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT);
  const watch = new Watch(label);
  // CSP violations are also reported to the console, but say so plainly.
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(
        `CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`,
      );
    });
  });
  for (const p of context.pages()) watch.attach(p);
  context.on('page', (p) => watch.attach(p));
  const page = context.pages()[0] ?? (await context.newPage());
  return { context, page, watch };
}

// ---------------------------------------------------------------------------------------
// Page helpers.

const url = (path) => `${BASE_URL}${path}`;

const pathOf = (page) => new URL(page.url()).pathname;

/** A form's submit control (a <button> without a type submits too). */
const submit = (form) => `${form} button:not([type]), ${form} [type=submit]`;

/** Submits a form (accepting its confirmation prompt when asked) and checks the POST
 * answered 303 and the page it led to 200, cleanly. */
async function post(session, formSelector, { confirm = false } = {}) {
  const { page } = session;
  if (confirm) page.once('dialog', (d) => d.accept());
  const posted = page.waitForResponse((r) => r.request().method() === 'POST');
  const [landed] = await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    page.locator(submit(formSelector)).first().click(),
  ]);
  const r = await posted;
  check(r.status() === 303, `POST ${r.url()} (${formSelector}) answered ${r.status()}, not 303`);
  check(landed && landed.status() === 200, `after POST ${r.url()}, the page answered ${landed?.status()}`);
  await session.watch.assertClean(page, `POST ${r.url()}`);
}

async function visit(session, path, expectStatus = 200) {
  const response = await session.page.goto(url(path), { waitUntil: 'load' });
  check(response, `GET ${path}: no response`);
  check(
    response.status() === expectStatus,
    `GET ${path} answered ${response.status()}, not ${expectStatus} (landed on ${session.page.url()})`,
  );
  return response;
}

async function one(page, selector, what) {
  const n = await page.locator(selector).count();
  check(n >= 1, `${what}: no ${selector} on ${pathOf(page)}`);
  return page.locator(selector).first();
}

async function absent(page, selector, what) {
  const n = await page.locator(selector).count();
  check(n === 0, `${what}: ${selector} is on ${pathOf(page)} (${n} of them) but must not be`);
}

/** Text of the body rows of a table (rows with at least one td), cell by cell. */
async function tableRows(page, selector) {
  return page.locator(selector).first().evaluate((table) =>
    [...table.querySelectorAll('tr')]
      .filter((tr) => tr.querySelector('td') && !tr.closest('thead') && !tr.closest('tfoot'))
      .map((tr) => [...tr.querySelectorAll('th, td')].map((c) => c.textContent.replace(/\s+/g, ' ').trim())),
  );
}

/** Body rows' hrefs (resolved pathnames) of a table. */
async function tableLinks(page, selector) {
  return page
    .locator(selector)
    .first()
    .evaluate((table) =>
      [...table.querySelectorAll('tr')]
        .filter((tr) => tr.querySelector('td') && !tr.closest('thead'))
        .flatMap((tr) => [...tr.querySelectorAll('a[href]')].map((a) => new URL(a.href).pathname)),
    );
}

/** A plain integer ("1,234", "1 234" and "1234" alike), or null. */
function integer(text) {
  const t = text.replace(/[\s,\u00a0\u202f]/g, '');
  return /^\d+$/.test(t) ? Number(t) : null;
}

/**
 * The numbers of a chart's hidden table: per body row, its label (the first cell) and its
 * count (the first cell, after the label, that is a plain integer). Rows labelled "Total"
 * are left out.
 */
async function chartNumbers(page, id) {
  const container = await one(page, `#${id}`, `chart #${id}`);
  const table = container.locator('table.sr-only');
  check((await table.count()) >= 1, `chart #${id} has no <table class="sr-only"> with its numbers`);
  const hidden = await table.first().evaluate((t) => {
    const r = t.getBoundingClientRect();
    const s = getComputedStyle(t);
    return (
      r.width <= 1 ||
      r.height <= 1 ||
      (s.clip && s.clip !== 'auto') ||
      (s.clipPath && s.clipPath !== 'none') ||
      s.position === 'absolute' && (r.right < 0 || r.bottom < 0)
    );
  });
  check(hidden, `chart #${id}: its table.sr-only is visible on screen (it is for screen readers only)`);
  const rows = await tableRows(page, `#${id} table.sr-only`);
  const numbers = [];
  if (rows.length === 1 && integer(rows[0][0] ?? '') !== null) {
    // One row of numbers and no row header: a column per category (the labels in the head).
    const head = await table.first().evaluate((t) =>
      [...(t.querySelector('thead tr') ?? t.querySelector('tr')).querySelectorAll('th, td')].map((c) =>
        c.textContent.replace(/\s+/g, ' ').trim(),
      ),
    );
    rows[0].forEach((c, i) => {
      const n = integer(c);
      if (n !== null && !/^total$/i.test(head[i] ?? '')) {
        numbers.push({ label: head[i] ?? `column ${i + 1}`, count: n, all: [n] });
      }
    });
    return numbers;
  }
  for (const cells of rows) {
    const label = cells[0] ?? '';
    if (/^total$/i.test(label)) continue;
    const all = cells.slice(1).map(integer).filter((n) => n !== null);
    const count = all[0] ?? integer(label);
    if (count !== null) numbers.push({ label, count, all: all.length > 0 ? all : [count] });
  }
  return numbers;
}

/** The header every page carries: nav, role, logout form, main. */
async function assertFrame(session, role) {
  const { page } = session;
  const nav = await one(page, 'nav#nav', 'the page header');
  const hrefs = await nav.evaluate((n) => [...n.querySelectorAll('a[href]')].map((a) => new URL(a.href).pathname));
  for (const p of NAV_PATHS) {
    check(
      hrefs.some((h) => h === p || h.replace(/\/$/, '') === p.replace(/\/$/, '')),
      `nav#nav on ${pathOf(page)} has no link to ${p} (links: ${hrefs.join(', ')})`,
    );
  }
  const shown = ((await (await one(page, '#role', 'the page header')).textContent()) ?? '').trim().toLowerCase();
  check(shown.includes(role), `#role on ${pathOf(page)} says "${shown}", not "${role}"`);
  await one(page, 'form#logout', 'the page header');
  await one(page, 'main', 'the page');
  const title = (await page.title()).trim();
  check(title.length > 0, `${pathOf(page)} has an empty <title>`);
}

async function login(session, token, role) {
  const { page } = session;
  await visit(session, '/console/login');
  await one(page, 'form#login', 'the login page');
  const field = await one(page, 'form#login input[name=token]', 'the login form');
  check((await field.getAttribute('type')) === 'password', 'the token field is not type=password');
  await field.fill(token);
  const [response] = await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    page.locator(submit('form#login')).first().click(),
  ]);
  check(response && response.status() === 200, `logging in as ${role} ended with ${response?.status()}`);
  check(pathOf(page) === '/console/', `logging in as ${role} led to ${page.url()}, not /console/`);
  const cookies = await session.context.cookies(url('/console/'));
  check(cookies.length > 0, `logging in as ${role} set no cookie`);
  await assertFrame(session, role);
  await session.watch.assertClean(page, `logging in as ${role}`);
}

// ---------------------------------------------------------------------------------------
// The steps.

async function main() {
  await mkdir(ARTIFACT_DIR, { recursive: true });
  const admin = await openContext('administrator', 'light');
  const { page } = admin;
  let groupName = null;

  await step('an unauthenticated visit to /console/ lands on the login page', async () => {
    const response = await page.goto(url('/console/'), { waitUntil: 'load' });
    check(response, 'GET /console/: no response');
    check(
      pathOf(page) === '/console/login',
      `GET /console/ without a session ended on ${page.url()} (${response.status()}), not on /console/login`,
    );
    await one(page, 'form#login', 'the login page');
    await one(page, 'form#login input[name=token]', 'the login form');
    await one(page, submit('form#login'), 'the login form');
    await absent(page, 'nav#nav', 'the login page (no session)');
    await admin.watch.assertClean(page, 'the login page');
  });

  await step('a bad token is refused with 401 and "not a valid token"', async () => {
    await admin.watch.tolerating([/status of 401/], async () => {
      await page.locator('form#login input[name=token]').fill('not-the-token');
      const [response] = await Promise.all([
        page.waitForNavigation({ waitUntil: 'load' }),
        page.locator(submit('form#login')).first().click(),
      ]);
      check(response && response.status() === 401, `a bad token answered ${response?.status()}, not 401`);
      const text = await page.locator('body').innerText();
      check(text.includes('not a valid token'), `the 401 page does not say "not a valid token": ${text.slice(0, 300)}`);
      await admin.watch.assertClean(page, 'the 401 page');
    });
    const response = await page.goto(url('/console/computers'), { waitUntil: 'load' });
    check(pathOf(page) === '/console/login', `GET /console/computers after a bad token ended on ${page.url()}`);
    check(response.status() === 200, `the login page answered ${response.status()}`);
  });

  await step('the administrator logs in', async () => {
    await login(admin, ADMIN_TOKEN, 'admin');
  });

  await step('the overview shows charts with real numbers', async () => {
    await visit(admin, '/console/');
    await assertFrame(admin, 'admin');
    const compliance = await one(page, '#compliance', 'the overview');
    const svg = (await compliance.evaluate((e) => e.tagName.toLowerCase())) === 'svg';
    check(svg || (await compliance.locator('svg').count()) >= 1, '#compliance has no svg chart');
    const numbers = await chartNumbers(page, 'compliance');
    check(numbers.length >= 2, `#compliance's table has ${numbers.length} rows of numbers: ${JSON.stringify(numbers)}`);
    const sum = numbers.reduce((a, n) => a + n.count, 0);
    if (COMPUTERS !== null) {
      check(sum === COMPUTERS, `#compliance's numbers add up to ${sum}, not ${COMPUTERS}: ${JSON.stringify(numbers)}`);
    } else {
      check(sum > 0, `#compliance's numbers are all zero: ${JSON.stringify(numbers)}`);
    }
    const nonZero = numbers.filter((n) => n.count > 0).length;
    check(nonZero >= 2, `#compliance shows only one kind of computer: ${JSON.stringify(numbers)}`);
    for (const id of ['compliance-by-group', 'status-distribution']) {
      await one(page, `#${id}`, 'the overview');
      const values = await chartNumbers(page, id);
      check(
        values.some((n) => n.all.some((x) => x > 0)),
        `#${id}'s numbers are all zero or missing: ${JSON.stringify(values)}`,
      );
    }
    if (GROUP_NAME && GROUP_MEMBERS !== null) {
      const rows = await chartNumbers(page, 'compliance-by-group');
      const row = rows.find((r) => r.label.includes(GROUP_NAME));
      check(row, `#compliance-by-group has no row for "${GROUP_NAME}": ${JSON.stringify(rows)}`);
      check(
        row.all.includes(GROUP_MEMBERS),
        `#compliance-by-group does not count the ${GROUP_MEMBERS} computers of "${GROUP_NAME}": ${JSON.stringify(row)}`,
      );
    }
    for (const id of ['contacts', 'sync-trend']) {
      const chart = await one(page, `#${id}`, 'the overview');
      const drawn = (await chart.locator('svg, table.sr-only').count()) >= 1;
      if (drawn) await chartNumbers(page, id);
    }
    if (COMPUTERS !== null) {
      // Every computer registered in the last hour or two: each counts in the hour it was
      // in contact (in two, if the run crossed an hour).
      const hours = await chartNumbers(page, 'contacts');
      const sum = hours.reduce((a, h) => a + h.count, 0);
      check(sum >= COMPUTERS, `#contacts counts ${sum} contacts; ${COMPUTERS} computers were in contact: ${JSON.stringify(hours)}`);
    }
    const statuses = await chartNumbers(page, 'status-distribution');
    check(
      statuses.filter((n) => n.count > 0).length >= 3,
      `#status-distribution should show installed, needed and failed, it shows: ${JSON.stringify(statuses)}`,
    );
    const topNeeded = await one(page, '#top-needed', 'the overview');
    const tableSel = (await topNeeded.evaluate((e) => e.tagName)) === 'TABLE' ? '#top-needed' : '#top-needed table';
    const top = await tableRows(page, tableSel);
    check(top.length >= 1, '#top-needed has no rows');
    const topLinks = await tableLinks(page, tableSel);
    check(
      topLinks.some((l) => l.startsWith('/console/updates/')),
      `#top-needed rows do not link to updates: ${topLinks.join(', ')}`,
    );
    if (TOP_NEEDED !== null) {
      const first = await page.locator(tableSel).first().evaluate((t) => {
        const tr = [...t.querySelectorAll('tr')].find((r) => r.querySelector('td') && !r.closest('thead'));
        return {
          cells: [...tr.querySelectorAll('th, td')].map((c) => c.textContent.replace(/\s+/g, ' ').trim()),
          links: [...tr.querySelectorAll('a[href]')].map((a) => new URL(a.href).pathname.toLowerCase()),
        };
      });
      check(
        first.links.includes(`/console/updates/${UPDATE_ID}`) ||
          (UPDATE_TITLE && first.cells.some((c) => c.includes(UPDATE_TITLE))),
        `the first row of #top-needed is not ${UPDATE_TITLE ?? UPDATE_ID}: ${JSON.stringify(first)}`,
      );
      check(
        first.cells.some((c) => integer(c) === TOP_NEEDED),
        `the first row of #top-needed does not say ${TOP_NEEDED} computers need it: ${JSON.stringify(first.cells)}`,
      );
    }
    for (const id of ['last-sync', 'downstream', 'contacts', 'sync-trend']) {
      const e = await one(page, `#${id}`, 'the overview');
      const text = ((await e.textContent()) ?? '').trim();
      check(text.length > 0, `#${id} is empty`);
    }
    // This system has no upstream server: the overview says so and schedules nothing.
    const sync = (await (await one(page, '#last-sync', 'the overview')).textContent()) ?? '';
    check(
      sync.includes('No upstream server is set') && !sync.includes('Next:'),
      `#last-sync does not say that no upstream server is set: ${sync}`,
    );
    await admin.watch.assertClean(page, 'the overview');
  });

  await step('every page of the navigation renders', async () => {
    await visit(admin, '/console/');
    const hrefs = await page
      .locator('nav#nav a[href]')
      .evaluateAll((as) => as.map((a) => new URL(a.href).pathname).filter((p) => p.startsWith('/console/')));
    for (const href of [...new Set(hrefs)]) {
      await visit(admin, href);
      await assertFrame(admin, 'admin');
      await admin.watch.assertClean(page, `GET ${href}`);
    }
  });

  await step('the computers list and a computer', async () => {
    await visit(admin, '/console/computers');
    await one(page, 'table#computers', 'the computers page');
    const rows = await tableRows(page, 'table#computers');
    check(rows.length >= 1, 'table#computers has no rows');
    if (COMPUTERS !== null) {
      const least = Math.min(COMPUTERS, 10);
      check(rows.length >= least, `table#computers has ${rows.length} rows; the server knows ${COMPUTERS} computers`);
    }
    const links = (await tableLinks(page, 'table#computers')).filter((l) => /^\/console\/computers\/[^/]+$/.test(l));
    check(links.length >= 1, 'no row of table#computers links to /console/computers/{id}');
    await admin.watch.assertClean(page, 'the computers page');
    for (const sort of ['contact_oldest', 'contact_newest']) {
      await visit(admin, `/console/computers?sort=${sort}`);
      const sorted = await tableRows(page, 'table#computers');
      check(sorted.length === rows.length, `sorted by ${sort}, table#computers has ${sorted.length} rows, not ${rows.length}`);
      await admin.watch.assertClean(page, `the computers page by ${sort}`);
    }
    await visit(admin, links[0]);
    await assertFrame(admin, 'admin');
    const first = decodeURIComponent(links[0].split('/').pop());
    const shown = await one(page, '#computer', 'the computer page');
    check((await shown.innerText()).trim().length > 0, `#computer of ${first} is empty`);
    await one(page, 'table#computer-updates', 'the computer page');
    await admin.watch.assertClean(page, `the page of computer ${first}`);
    if (COMPUTER_ID) {
      await visit(admin, `/console/computers/${encodeURIComponent(COMPUTER_ID)}`);
      await assertFrame(admin, 'admin');
      const text = await (await one(page, '#computer', 'the computer page')).innerText();
      check(text.toLowerCase().includes(COMPUTER_ID.toLowerCase()), `#computer does not show the id ${COMPUTER_ID}`);
      if (COMPUTER_NAME) {
        const all = await page.locator('main').first().innerText();
        check(all.includes(COMPUTER_NAME), `the page of computer ${COMPUTER_ID} does not name ${COMPUTER_NAME}`);
      }
      await one(page, 'table#computer-updates', 'the computer page');
      const statuses = await tableRows(page, 'table#computer-updates');
      check(statuses.length >= 1, `table#computer-updates of ${COMPUTER_ID} has no rows`);
      // The computer the test names had an install fail.
      check(
        statuses.some((cells) => cells.some((c) => /\bfailed\b/i.test(c))),
        `table#computer-updates of ${COMPUTER_ID} shows no failed update: ${JSON.stringify(statuses.slice(0, 5))}`,
      );
      // Its history has the failed install, with the update and the error code.
      const history = await tableRows(page, 'table#computer-history');
      check(
        history.some((cells) => cells.some((c) => /installation failed/i.test(c)) && cells.some((c) => c === '0x80246007')),
        `table#computer-history of ${COMPUTER_ID} has no failed installation with its error: ${JSON.stringify(history.slice(0, 5))}`,
      );
      await admin.watch.assertClean(page, `the page of computer ${COMPUTER_ID}`);
    }
  });

  await step('the updates list, a search and the update to approve', async () => {
    await visit(admin, '/console/updates');
    await one(page, 'table#updates', 'the updates page');
    const rows = await tableRows(page, 'table#updates');
    check(rows.length >= 1, 'table#updates has no rows');
    const links = (await tableLinks(page, 'table#updates')).filter((l) => l.startsWith('/console/updates/'));
    check(links.length >= 1, 'no row of table#updates links to /console/updates/{update_id}');
    if (UPDATE_TITLE) {
      await visit(admin, `/console/updates?q=${encodeURIComponent(UPDATE_TITLE)}`);
      const found = (await tableLinks(page, 'table#updates')).map((l) => l.toLowerCase());
      check(
        found.includes(`/console/updates/${UPDATE_ID}`),
        `searching for "${UPDATE_TITLE}" does not list ${UPDATE_ID} (found ${found.join(', ') || 'nothing'})`,
      );
      const field = page.locator('input[name=q]');
      if ((await field.count()) >= 1) {
        const value = await field.first().inputValue();
        check(value === UPDATE_TITLE, `the search field shows "${value}", not the query`);
      }
    }
    await admin.watch.assertClean(page, 'the updates page');
    await visit(admin, '/console/updates?sort=id');
    check((await tableRows(page, 'table#updates')).length === rows.length, 'sorted by id, table#updates lists another number of updates');
    await admin.watch.assertClean(page, 'the updates page by id');
    await visit(admin, `/console/updates/${UPDATE_ID}`);
    await assertFrame(admin, 'admin');
    const update = await one(page, '#update', 'the update page');
    check((await update.innerText()).toLowerCase().includes(UPDATE_ID), `#update does not show the id ${UPDATE_ID}`);
    if (UPDATE_TITLE) {
      const text = await page.locator('main').first().innerText();
      check(text.includes(UPDATE_TITLE), `the update page does not show the title "${UPDATE_TITLE}"`);
    }
    await one(page, 'table#status-by-group', 'the update page');
    check((await tableRows(page, 'table#status-by-group')).length >= 1, 'table#status-by-group has no rows');
    await one(page, 'table#approvals', 'the update page');
    const form = await one(page, 'form#approve', 'the update page (administrator)');
    check(((await form.getAttribute('method')) ?? '').toLowerCase() === 'post', 'form#approve is not method=post');
    const options = await form
      .locator('select[name=group] option')
      .evaluateAll((os) => os.map((o) => ({ value: o.value.toLowerCase(), text: o.textContent.trim() })));
    const option = options.find((o) => o.value === GROUP_ID);
    check(option, `select[name=group] has no option ${GROUP_ID}: ${JSON.stringify(options)}`);
    if (GROUP_NAME) check(option.text.includes(GROUP_NAME), `the option of ${GROUP_ID} says "${option.text}"`);
    groupName = GROUP_NAME ?? option.text;
    const deadline = await one(page, 'form#approve input[name=deadline]', 'form#approve');
    check((await deadline.getAttribute('type')) === 'datetime-local', 'input[name=deadline] is not datetime-local');
    const csrf = await one(page, 'form#approve input[name=_csrf]', 'form#approve');
    check((await csrf.getAttribute('type')) === 'hidden', 'the _csrf input is not hidden');
    check(((await csrf.getAttribute('value')) ?? '').length >= 16, 'the _csrf token is empty or short');
    await one(page, submit('form#approve'), 'form#approve');
    await one(page, 'form#decline', 'the update page (administrator)');
    await admin.watch.assertClean(page, `the page of update ${UPDATE_ID}`);
  });

  await step('the groups tree and the group', async () => {
    await visit(admin, '/console/groups');
    const tree = await one(page, '#group-tree', 'the groups page');
    const links = await tree.evaluate((t) => [...t.querySelectorAll('a[href]')].map((a) => new URL(a.href).pathname));
    const mine = links.find((l) => l.toLowerCase() === `/console/groups/${GROUP_ID}`);
    check(mine, `#group-tree has no link to /console/groups/${GROUP_ID}: ${links.join(', ')}`);
    if (groupName) {
      check((await tree.innerText()).includes(groupName), `#group-tree does not name the group "${groupName}"`);
    }
    await admin.watch.assertClean(page, 'the groups page');
    await visit(admin, mine);
    await assertFrame(admin, 'admin');
    await one(page, 'table#members', 'the group page');
    const members = await tableRows(page, 'table#members');
    if (GROUP_MEMBERS !== null) {
      check(members.length === GROUP_MEMBERS, `table#members has ${members.length} rows, not ${GROUP_MEMBERS}`);
    } else {
      check(members.length >= 1, 'table#members has no rows');
    }
    await admin.watch.assertClean(page, 'the group page');
  });

  await step('the sync and downstream pages', async () => {
    await visit(admin, '/console/sync');
    await one(page, 'table#sync-history', 'the sync page');
    await one(page, '#sync-progress', 'the sync page');
    await admin.watch.assertClean(page, 'the sync page');
    await visit(admin, '/console/downstream');
    await one(page, 'table#downstream-servers', 'the downstream page');
    await admin.watch.assertClean(page, 'the downstream page');
  });

  await step(`the administrator approves the update for "${groupName}" with a deadline`, async () => {
    const detail = `/console/updates/${UPDATE_ID}`;
    await visit(admin, detail);
    await page.locator('form#approve select[name=group]').selectOption(GROUP_ID);
    // The option values may be spelled in another case than GROUP_ID.
    const picked = (await page.locator('form#approve select[name=group]').inputValue()).toLowerCase();
    check(picked === GROUP_ID, `could not pick group ${GROUP_ID} (picked ${picked})`);
    await page.locator('form#approve input[name=deadline]').fill(DEADLINE);
    const posted = page.waitForResponse((r) => r.request().method() === 'POST');
    const [landed] = await Promise.all([
      page.waitForNavigation({ waitUntil: 'load' }),
      page.locator(submit('form#approve')).first().click(),
    ]);
    const post = await posted;
    check(post.status() === 303, `the approval POST ${post.url()} answered ${post.status()}, not 303`);
    check(landed && landed.status() === 200, `after approving, the page answered ${landed?.status()}`);
    check(pathOf(page).toLowerCase() === detail, `after approving, the browser is on ${page.url()}, not ${detail}`);
    const rows = await page.locator('table#approvals tr').evaluateAll((trs) =>
      trs
        .filter((tr) => tr.querySelector('td'))
        .map((tr) =>
          [
            tr.innerText,
            ...[...tr.querySelectorAll('[datetime]')].map((t) => t.getAttribute('datetime')),
            ...[...tr.querySelectorAll('a[href]')].map((a) => a.getAttribute('href')),
          ].join(' '),
        ),
    );
    const row = rows.find(
      (r) => r.includes(groupName) || r.toLowerCase().includes(GROUP_ID),
    );
    check(row, `table#approvals does not list "${groupName}": ${JSON.stringify(rows)}`);
    check(/install/i.test(row), `the approval of "${groupName}" is not Install: ${row}`);
    check(
      row.includes(DEADLINE_DATE) && row.includes(DEADLINE_TIME),
      `the approval of "${groupName}" does not show the deadline ${DEADLINE}: ${row}`,
    );
    await admin.watch.assertClean(page, 'approving');
  });

  await step('a new group: a computer joins and leaves it, an approval for it is removed, it is deleted', async () => {
    const name = 'Browser ring';
    await visit(admin, '/console/groups');
    await page.locator('form#new-group input[name=name]').fill(name);
    await post(admin, 'form#new-group');
    const groupPath = pathOf(page).toLowerCase();
    check(/^\/console\/groups\/[0-9a-f-]{36}$/.test(groupPath), `creating a group led to ${page.url()}`);
    const newGroup = groupPath.split('/').pop();
    check((await page.locator('main h1').first().innerText()).includes(name), `the new group's page does not name "${name}"`);
    check((await tableRows(page, 'table#members')).length === 0, 'the new group has members already');

    if (COMPUTER_ID) {
      const computer = `/console/computers/${encodeURIComponent(COMPUTER_ID)}`;
      await visit(admin, computer);
      await page.locator('form#join select[name=group]').selectOption(newGroup);
      await post(admin, 'form#join');
      check(pathOf(page).toLowerCase() === computer.toLowerCase(), `joining a group led to ${page.url()}, not ${computer}`);
      check((await page.locator('#computer-groups').innerText()).includes(name), `#computer-groups does not list "${name}"`);
      await writeFile(join(ARTIFACT_DIR, 'computer.png'), await page.screenshot({ fullPage: true }));
      await visit(admin, groupPath);
      const members = (await tableLinks(page, 'table#members')).map((l) => l.toLowerCase());
      check(members.includes(computer.toLowerCase()), `the group's members are ${JSON.stringify(members)}, not ${computer}`);
      await visit(admin, computer);
      await post(admin, `#computer-groups .member:has-text("${name}") form.leave`);
      check(!(await page.locator('#computer-groups').innerText()).includes(name), `the computer is still in "${name}"`);
    }

    const detail = `/console/updates/${UPDATE_ID}`;
    await visit(admin, detail);
    await page.locator('form#approve select[name=group]').selectOption(newGroup);
    await post(admin, 'form#approve');
    check((await page.locator('table#approvals').innerText()).includes(name), `table#approvals does not list "${name}"`);
    await writeFile(join(ARTIFACT_DIR, 'update.png'), await page.screenshot({ fullPage: true }));
    await post(admin, `table#approvals tr:has-text("${name}") form.unapprove`);
    const left = await page.locator('table#approvals').innerText();
    check(!left.includes(name), `the approval for "${name}" is still listed: ${left}`);
    check(left.includes(groupName), `removing one approval removed "${groupName}"'s too: ${left}`);

    await visit(admin, groupPath);
    await post(admin, 'form#delete-group', { confirm: true });
    check(pathOf(page) === '/console/groups', `deleting the group led to ${page.url()}`);
    check(!(await page.locator('#group-tree').innerText()).includes(name), `#group-tree still lists "${name}"`);
  });

  await step('notifications: a channel added, sent a test and removed; the settings changed', async () => {
    const name = 'Browser hook';
    await visit(admin, '/console/notifications');
    await page.locator('form#new-channel input[name=name]').fill(name);
    await page.locator('form#new-channel select[name=kind]').selectOption('webhook');
    // Nothing listens there: the test delivery stays to be tried again, which is what shows.
    await page.locator('form#new-channel input[name=target]').fill('http://127.0.0.1:9/hook/secret-token');
    await page.locator('form#new-channel input[name="event.sync_failed"]').check();
    await page.locator('form#new-channel input[name="event.status_summary"]').check();
    await post(admin, 'form#new-channel');
    check(pathOf(page) === '/console/notifications', `adding a channel led to ${page.url()}`);
    const row = (await tableRows(page, 'table#channels')).find((r) => r[0].includes(name));
    check(row, `table#channels does not list "${name}"`);
    check(row[3] === 'sync_failed, status_summary', `the channel's events are ${row[3]}`);
    check(!row[2].includes('secret-token'), `the webhook's URL is shown whole: ${row[2]}`);
    await post(admin, `table#channels tr:has-text("${name}") form[action$="/test"]`);
    const deliveries = await tableRows(page, 'table#deliveries');
    check(
      deliveries.some((d) => d[1] === 'test' && d[2] === name),
      `table#deliveries has no test for "${name}": ${JSON.stringify(deliveries)}`,
    );
    const settings = 'form#notification-settings';
    await page.locator(`${settings} select[name=every]`).selectOption('week');
    await page.locator(`${settings} input[name=hour]`).fill('6');
    await page.locator(`${settings} select[name=weekday]`).selectOption('5');
    await page.locator(`${settings} select[name=language]`).selectOption('fr');
    await post(admin, settings);
    for (const [field, want] of [['select[name=every]', 'week'], ['input[name=hour]', '6'],
      ['select[name=weekday]', '5'], ['select[name=language]', 'fr']]) {
      const got = await page.locator(`${settings} ${field}`).inputValue();
      check(got === want, `after saving, ${field} shows ${got}, not ${want}`);
    }
    await post(admin, `table#channels tr:has-text("${name}") form[action$="/remove"]`, { confirm: true });
    check(!(await page.locator('table#channels').innerText()).includes(name), `"${name}" is still listed`);
  });

  await step('declining an update and undeclining it', async () => {
    await visit(admin, '/console/updates');
    const detail = `/console/updates/${UPDATE_ID}`;
    const other = (await tableLinks(page, 'table#updates')).find(
      (l) => l.startsWith('/console/updates/') && l.toLowerCase() !== detail,
    );
    check(other, 'table#updates lists no update but the approved one');
    await visit(admin, other);
    await post(admin, 'form#decline', { confirm: true });
    await one(page, 'form#undecline', `the declined update ${other}`);
    await absent(page, 'form#approve', `the declined update ${other}`);
    await visit(admin, `/console/updates?approval=declined`);
    check((await tableLinks(page, 'table#updates')).includes(other), `the declined list does not have ${other}`);
    await visit(admin, other);
    await post(admin, 'form#undecline');
    await one(page, 'form#approve', `the undeclined update ${other}`);
    await absent(page, 'form#undecline', `the undeclined update ${other}`);
  });

  let lightShot;
  await step('a full-page screenshot of the overview (light)', async () => {
    await visit(admin, '/console/');
    lightShot = await page.screenshot({ fullPage: true });
    await writeFile(join(ARTIFACT_DIR, 'overview-light.png'), lightShot);
    await admin.watch.assertClean(page, 'the overview (light)');
  });

  await step('logging out ends the session', async () => {
    const [response] = await Promise.all([
      page.waitForNavigation({ waitUntil: 'load' }),
      page.locator(submit('form#logout')).first().click(),
    ]);
    check(response && response.status() === 200, `logging out ended with ${response?.status()}`);
    check(pathOf(page) === '/console/login', `logging out led to ${page.url()}, not the login page`);
    await page.goto(url('/console/updates'), { waitUntil: 'load' });
    check(pathOf(page) === '/console/login', `after logging out, /console/updates showed ${page.url()}`);
    await admin.watch.assertClean(page, 'logging out');
  });

  await step('a full-page screenshot of the overview (dark)', async () => {
    const dark = await openContext('dark administrator', 'dark');
    await login(dark, ADMIN_TOKEN, 'admin');
    await visit(dark, '/console/');
    const shot = await dark.page.screenshot({ fullPage: true });
    await writeFile(join(ARTIFACT_DIR, 'overview-dark.png'), shot);
    check(!shot.equals(lightShot), 'the overview looks the same in the dark colour scheme as in the light one');
    await dark.watch.assertClean(dark.page, 'the overview (dark)');
    await dark.context.close();
  });

  await step('a reader sees no approval form and cannot approve', async () => {
    const reader = await openContext('reader', 'light');
    await login(reader, READER_TOKEN, 'reader');
    const detail = `/console/updates/${UPDATE_ID}`;
    await visit(reader, detail);
    await assertFrame(reader, 'reader');
    await one(reader.page, '#update', 'the update page (reader)');
    await one(reader.page, 'table#approvals', 'the update page (reader)');
    await absent(reader.page, 'form#approve', 'the update page (reader)');
    await absent(reader.page, 'form#decline', 'the update page (reader)');
    await absent(reader.page, 'form.unapprove', 'the update page (reader)');
    await visit(reader, '/console/groups');
    await absent(reader.page, 'form#new-group', 'the groups page (reader)');
    await visit(reader, '/console/notifications');
    await one(reader.page, 'table#deliveries', 'the notifications page (reader)');
    await absent(reader.page, 'form#new-channel', 'the notifications page (reader)');
    await absent(reader.page, 'form#notification-settings', 'the notifications page (reader)');
    if (COMPUTER_ID) {
      await visit(reader, `/console/computers/${encodeURIComponent(COMPUTER_ID)}`);
      await absent(reader.page, 'form#join', 'the computer page (reader)');
    }
    await visit(reader, detail);
    await reader.watch.assertClean(reader.page, 'the update page (reader)');
    // A form the reader makes: the session's own CSRF token (from the logout form), so
    // only the role can stop it.
    const forged = '2031-05-06T07:08';
    const response = await reader.watch.tolerating([/status of 403/], async () => {
      const [r] = await Promise.all([
        reader.page.waitForNavigation({ waitUntil: 'load' }),
        reader.page.evaluate(
          ({ action, group, deadline }) => {
            const f = document.createElement('form');
            f.method = 'post';
            f.action = action;
            const csrf = document.querySelector('input[name=_csrf]');
            for (const [name, value] of [
              ['group', group],
              ['deadline', deadline],
              ['_csrf', csrf ? csrf.value : ''],
            ]) {
              const i = document.createElement('input');
              i.type = 'hidden';
              i.name = name;
              i.value = value;
              f.append(i);
            }
            document.body.append(f);
            f.submit();
          },
          { action: `${detail}/approve`, group: GROUP_ID, deadline: forged },
        ),
      ]);
      await reader.watch.assertClean(reader.page, 'the forged approval');
      return r;
    });
    check(response && response.status() === 403, `a reader's approval POST answered ${response?.status()}, not 403`);
    await visit(reader, detail);
    const approvals = await reader.page.locator('table#approvals').innerText();
    check(!approvals.includes(forged.split('T')[0]), `the reader's forged approval was stored: ${approvals}`);
    await reader.watch.assertClean(reader.page, 'the update page after the forged approval (reader)');
    await reader.context.close();
  });
}

async function cleanup() {
  for (const c of contexts) await c.close().catch(() => {});
  for (const p of profiles) await rm(p, { recursive: true, force: true }).catch(() => {});
}

const watchdog = setTimeout(() => {
  console.error(`not ok ${stepNumber} - ${currentStep}: gave up after 240 s`);
  process.exit(1);
}, 240_000);

try {
  await main();
  console.log(`console: all ${stepNumber} steps passed`);
  await cleanup();
  clearTimeout(watchdog);
} catch (e) {
  const message = e instanceof Failure ? e.message : `${e.stack || e}`;
  console.error(`not ok ${stepNumber} - ${currentStep}: ${message}`);
  // What the browser showed when it failed.
  for (const c of contexts) {
    for (const p of c.pages()) {
      const shot = join(ARTIFACT_DIR, `failure-${contexts.indexOf(c)}.png`);
      await p.screenshot({ path: shot, fullPage: true }).catch(() => {});
      console.error(`  page ${p.url()} (screenshot: ${shot})`);
    }
  }
  await cleanup();
  clearTimeout(watchdog);
  process.exit(1);
}
