// tests/browser/webchat.mjs - drives Debian's /usr/bin/chromium (npm playwright-core, never a
// downloaded browser) for tests/integration/test_webchat_browser.py: a visitor's page (the
// demo shop on its own origin, embedding /widget.js) and an agent's inbox page, in two
// browser contexts (two people). One JSON command a line on stdin, one JSON answer a line
// on stdout ({"ok":true,...} or {"ok":false,"error":"..."}), as inbox.mjs.
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const WAIT_MS = 20000;
const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const problems = [];
function watch(page, who) {
    page.setDefaultTimeout(WAIT_MS);
    page.on('pageerror', (e) => problems.push(who + ' pageerror: ' + e.message));
    page.on('console', (m) => {
        if (m.type() === 'error')
            problems.push(who + ' console: ' + m.text());
    });
    page.on('dialog', (d) => { problems.push(who + ' dialog: ' + d.message()); d.dismiss(); });
}
const visitorCtx = await browser.newContext({ locale: 'ru-RU', viewport: { width: 1280, height: 800 } });
const agentCtx = await browser.newContext({ locale: 'ru-RU', viewport: { width: 1360, height: 820 } });
const visitor = await visitorCtx.newPage();
const agent = await agentCtx.newPage();
watch(visitor, 'visitor');
watch(agent, 'agent');

const vmsg = (author) => 'bayge-chat .msg' + (author ? '.' + author : '');

const actions = {
    async shop({ url, width, height }) {
        if (width)
            await visitor.setViewportSize({ width, height });
        await visitor.goto(url, { waitUntil: 'domcontentloaded' });
        await visitor.locator('bayge-chat button.launcher').waitFor({ state: 'visible' });
        return {};
    },
    async launcher() {
        const b = visitor.locator('bayge-chat button.launcher');
        await b.focus();
        await visitor.keyboard.press('Enter');   // keyboard-usable
        // busy until the session's answer (settings applied, or refused)
        await visitor.locator('bayge-chat .panel:not([aria-busy])').waitFor({ state: 'visible' });
        return { label: await b.getAttribute('aria-label'),
                 expanded: await b.getAttribute('aria-expanded'),
                 title: await visitor.locator('bayge-chat header h2').textContent() };
    },
    async vsend({ text }) {
        await visitor.locator('bayge-chat textarea').fill(text);
        await visitor.locator('bayge-chat textarea').press('Enter');
        return {};
    },
    async vwait({ text, author, timeout }) {
        await visitor.locator(vmsg(author), { hasText: text }).first().waitFor({
            state: 'visible', timeout: timeout || WAIT_MS });
        return {};
    },
    async vwait_status({ visible, timeout }) {
        await visitor.locator('bayge-chat .status').waitFor({
            state: visible ? 'visible' : 'hidden', timeout: timeout || WAIT_MS });
        return {};
    },
    async vmessages() {
        return { texts: await visitor.locator(vmsg()).evaluateAll((ns) => ns.map((n) => ({
            cls: n.className, text: n.childNodes[1] ? n.childNodes[1].textContent : '',
            html: n.innerHTML.includes('<script') || n.innerHTML.includes('<b>') ||
                n.innerHTML.includes('<i>') })) ) };
    },
    async vreload() {
        await visitor.reload({ waitUntil: 'domcontentloaded' });
        await visitor.locator('bayge-chat button.launcher').waitFor({ state: 'visible' });
        return {};
    },
    async vscreenshot({ path }) {
        await visitor.screenshot({ path });
        return {};
    },
    async vpanel_box() {
        return { box: await visitor.locator('bayge-chat .panel').boundingBox(),
                 send: await visitor.locator('bayge-chat form button').isVisible(),
                 vw: visitor.viewportSize().width };
    },
    async vstatus() {
        const s = visitor.locator('bayge-chat .status');
        return { visible: await s.isVisible(), text: await s.textContent() };
    },
    async inbox({ url }) {
        await agent.goto(url, { waitUntil: 'domcontentloaded' });
        await agent.locator('#conn[data-state="online"]').waitFor({ state: 'attached' });
        return {};
    },
    async aselect({ tag }) {
        const li = agent.locator('#list li', { hasText: tag }).first();
        await li.waitFor({ state: 'visible' });
        const text = await li.innerText();
        await li.click();
        await agent.locator('#conv').waitFor({ state: 'visible' });
        return { text };
    },
    async await_msg({ text }) {
        const m = agent.locator('#messages li.msg', { hasText: text }).first();
        await m.waitFor({ state: 'visible' });
        return { html: await m.innerHTML() };
    },
    async areply({ text }) {
        await agent.locator('#reply').fill(text);
        await agent.locator('#reply').press('Enter');
        return {};
    },
    async problems() {
        return { problems };
    },
    async quit() {
        setTimeout(async () => { await browser.close(); process.exit(0); }, 10);
        return {};
    },
};

process.stdout.write(JSON.stringify({ ready: true, version: browser.version() }) + '\n');
const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
    let cmd;
    try {
        cmd = JSON.parse(line);
        const f = actions[cmd.do];
        if (!f)
            throw new Error('unknown action ' + cmd.do);
        const r = await f(cmd);
        process.stdout.write(JSON.stringify({ ok: true, ...r }) + '\n');
    } catch (e) {
        process.stdout.write(JSON.stringify({ ok: false, error: String(e && e.message || e) }) + '\n');
    }
}
