// tests/browser/inbox.mjs - drives Debian's /usr/bin/chromium (npm playwright-core, never
// a downloaded browser) through the inbox page for tests/integration/test_browser.py.
// One JSON command a line on stdin ({"do":"signin","token":...}), one JSON answer a line on
// stdout ({"ok":true,...} or {"ok":false,"error":"..."}); the Python side owns the servers
// and the deadlines. Every wait here has its own timeout too, so a stuck page fails loudly.
// Usage: node inbox.mjs USER_DATA_DIR
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const WAIT_MS = 20000;
const userDataDir = process.argv[2];
if (!userDataDir) {
    process.stderr.write('usage: node inbox.mjs USER_DATA_DIR\n');
    process.exit(2);
}

const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1360, height: 820 },
    locale: 'ru-RU',
    timezoneId: 'Asia/Almaty',
});
const page = context.pages()[0] || await context.newPage();
page.setDefaultTimeout(WAIT_MS);
const problems = [];   // page errors, console errors (CSP violations show up here)
page.on('pageerror', (e) => problems.push('pageerror: ' + e.message));
page.on('console', (m) => {
    if (m.type() === 'error')
        problems.push('console: ' + m.text());
});

// Every websocket frame the page got and sent, parsed (for asserting resume and replay).
const frames = { received: [], sent: [] };
page.on('websocket', (ws) => {
    const keep = (list) => (f) => {
        try {
            list.push(JSON.parse(f.payload));
        } catch (e) {
            list.push({ unparsed: String(f.payload).slice(0, 200) });
        }
    };
    ws.on('framereceived', keep(frames.received));
    ws.on('framesent', keep(frames.sent));
});

// Requests to a held path: fetched from the server at once, given to the page on release
// (the answer is older than what happens meanwhile).
const held = [];
let heldPath = null;
let onHeld = () => {};
const holdMatch = (u) => u.pathname === heldPath;
async function holdRoute(route) {
    held.push({ route, response: await route.fetch() });
    onHeld();
}

const msgSel = (dir) => '#messages li.msg' + (dir ? '.' + dir : '') + ':not(.who)';

const actions = {
    async open({ url }) {
        await page.goto(url, { waitUntil: 'domcontentloaded' });
        return { url: page.url() };
    },
    async signin({ token }) {
        await page.locator('#signin-token').fill(token);
        await page.locator('#signin-form button[type=submit]').click();
        await page.locator('#app').waitFor({ state: 'visible' });
        return {};
    },
    async signin_expect_error({ token }) {
        await page.locator('#signin-token').fill(token);
        await page.locator('#signin-form button[type=submit]').click();
        await page.locator('#signin-error').waitFor({ state: 'visible' });
        await page.locator('#signin').waitFor({ state: 'visible' });
        return { text: await page.locator('#signin-error').textContent() };
    },
    async wait_visible({ selector }) {
        await page.locator(selector).first().waitFor({ state: 'visible' });
        return {};
    },
    async wait_conn({ state }) {
        await page.locator(`#conn[data-state="${state}"]`).waitFor({ state: 'attached' });
        return { text: await page.locator('#conn-text').textContent() };
    },
    async conn() {
        return {
            state: await page.locator('#conn').getAttribute('data-state'),
            text: await page.locator('#conn-text').textContent(),
            banner: await page.locator('#offline').isVisible(),
        };
    },
    async wait_conversation({ name }) {
        const li = page.locator('#list li', { hasText: name }).first();
        await li.waitFor({ state: 'visible' });
        return { text: await li.innerText() };
    },
    async select({ name }) {
        await page.locator('#list li', { hasText: name }).first().click();
        await page.locator('#conv').waitFor({ state: 'visible' });
        return { title: await page.locator('#conv-name').textContent() };
    },
    async wait_message({ text, direction }) {
        const m = page.locator(msgSel(direction)).filter({
            has: page.locator('.text', { hasText: text }),
        }).first();
        await m.waitFor({ state: 'visible' });
        return { text: await m.innerText() };
    },
    // An outgoing message stored by the server (no longer the page's pending copy), with
    // the tick of status (any tick when status is absent).
    async wait_stored({ text, status }) {
        const m = page.locator(msgSel('out') + ':not(.pending)').filter({
            has: page.locator('.text', { hasText: text }),
        }).filter({ has: page.locator('.tick' + (status ? '.st-' + status : '')) }).first();
        await m.waitFor({ state: 'visible' });
        return { status: await m.locator('.tick').getAttribute('class') };
    },
    async reply({ text }) {
        await page.locator('#reply').fill(text);
        await page.locator('#reply').press('Enter');
        return {};
    },
    async type({ selector, text }) {
        await page.locator(selector).pressSequentially(text, { delay: 10 });
        return {};
    },
    async focus({ selector }) {
        await page.locator(selector).first().focus();
        return {};
    },
    async press({ key }) {
        await page.keyboard.press(key);
        return {};
    },
    // What has the keyboard focus: its id, and its text.
    async active() {
        return await page.evaluate(() => ({
            id: document.activeElement.id,
            text: document.activeElement.innerText || '',
        }));
    },
    // From now on, the most bubbles ever on screen at once with this text (watched()).
    async watch({ text }) {
        await page.evaluate((t) => {
            const count = () => Array.from(document.querySelectorAll('#messages .text'))
                .filter((n) => n.textContent === t).length;
            window.hubtMost = count();
            new MutationObserver(() => {
                window.hubtMost = Math.max(window.hubtMost, count());
            }).observe(document.getElementById('messages'), { childList: true, subtree: true });
        }, text);
        return {};
    },
    async watched() {
        return { most: await page.evaluate(() => window.hubtMost) };
    },
    async clear({ selector }) {
        await page.locator(selector).fill('');
        return {};
    },
    async click({ selector }) {
        await page.locator(selector).first().click();
        return {};
    },
    async fill({ selector, value }) {
        await page.locator(selector).first().fill(value);
        return {};
    },
    async text({ selector }) {
        const l = page.locator(selector).first();
        await l.waitFor({ state: 'visible' });
        return { text: await l.innerText() };
    },
    // Clicks selector and returns the file it made the page download.
    async download({ selector }) {
        const [d] = await Promise.all([page.waitForEvent('download'),
            page.locator(selector).first().click()]);
        return { name: d.suggestedFilename(), body: readFileSync(await d.path(), 'utf8') };
    },
    // The page's next confirm() is answered yes.
    async confirm_next() {
        page.once('dialog', (d) => d.accept());
        return {};
    },
    async wait_text({ selector, text }) {
        await page.locator(selector, { hasText: text }).first().waitFor({ state: 'visible' });
        return {};
    },
    async messages() {
        const items = await page.locator(msgSel()).evaluateAll((ns) => ns.map((n) => ({
            direction: n.classList.contains('out') ? 'out' : 'in',
            pending: n.classList.contains('pending'),
            text: (n.querySelector('.text') || {}).textContent || '',
        })));
        return { items };
    },
    async list() {
        const items = await page.locator('#list li').evaluateAll((ns) => ns.map((n) => ({
            name: n.querySelector('.li-name .n').textContent,
            last: n.querySelector('.li-last').textContent,
            unread: (n.querySelector('.badge') || {}).textContent || '',
        })));
        return { items };
    },
    // Scrolls the thread to its top (older messages load) or the list to its bottom
    // (more conversations load) until the count of what selector matches reaches n.
    async scroll_until({ box, to, selector, n }) {
        await page.waitForFunction(([b, top, sel, want]) => {
            const e = document.querySelector(b);
            e.scrollTop = top ? 0 : e.scrollHeight;
            return document.querySelectorAll(sel).length >= want;
        }, [box, to === 'top', selector, n], { polling: 100 });
        return { n: await page.locator(selector).count() };
    },
    async hold({ path }) {
        heldPath = path;
        await page.route(holdMatch, holdRoute);
        return {};
    },
    // Waits until n requests are held.
    async wait_held({ n }) {
        if (held.length < n) {
            await new Promise((resolve, reject) => {
                const t = setTimeout(() => reject(new Error(`${held.length} of ${n} ` +
                    `requests to ${heldPath} held`)), WAIT_MS);
                onHeld = () => {
                    if (held.length >= n) {
                        clearTimeout(t);
                        resolve();
                    }
                };
            });
        }
        onHeld = () => {};
        return { n: held.length };
    },
    // Gives the held answers to the page; with stop, later requests pass.
    async release({ stop }) {
        for (const h of held.splice(0))
            await h.route.fulfill({ response: h.response });
        if (stop)
            await page.unroute(holdMatch, holdRoute);
        return {};
    },
    async count({ selector }) {
        return { n: await page.locator(selector).count() };
    },
    // A mark in the page's memory: gone if the page reloads.
    async mark() {
        await page.evaluate(() => { window.hubtMark = true; });
        return {};
    },
    async marked() {
        return { marked: await page.evaluate(() => window.hubtMark === true) };
    },
    async frames() {
        return { received: frames.received.map(strip), sent: frames.sent.map(strip) };
    },
    async storage() {
        return await page.evaluate(() => ({
            token: sessionStorage.getItem('bayge.token'),
            local: Object.keys(localStorage).length,
            hash: location.hash,
            search: location.search,
        }));
    },
    async viewport({ width, height }) {
        await page.setViewportSize({ width, height });
        return {};
    },
    async screenshot({ path }) {
        await page.screenshot({ path, fullPage: false });
        return { path };
    },
    async problems() {
        return { problems };
    },
    async quit() {
        await context.close();
        return {};
    },
};

// The auth frame's token never goes back to the test's log.
function strip(f) {
    return f && f.type === 'auth' ? { type: 'auth' } : f;
}

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const rl = createInterface({ input: process.stdin });
out({ ok: true, ready: true, version: context.browser()?.version() ?? null });
for await (const line of rl) {
    let cmd;
    try {
        cmd = JSON.parse(line);
    } catch (e) {
        out({ ok: false, error: 'bad command line: ' + e.message });
        continue;
    }
    const fn = actions[cmd.do];
    if (!fn) {
        out({ ok: false, error: 'unknown action ' + cmd.do });
        continue;
    }
    try {
        out(Object.assign({ ok: true }, await fn(cmd)));
    } catch (e) {
        out({ ok: false, error: String(e && e.message || e).slice(0, 4000) });
    }
    if (cmd.do === 'quit')
        break;
}
rl.close();
