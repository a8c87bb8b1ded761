/* web/settings.js - the Settings view of the inbox page, for admins (a token with role
 * admin): the company's channels (list, connect one and show its webhook URL and verify
 * token once, disable and enable, check the credentials), a customer's data (search, export
 * as a download, erase) and the audit log, through the admin API (/api/v1/channels,
 * /api/v1/contacts, /api/v1/audit). Shown beside web/app.js's inbox, sharing only the
 * page and the token app.js keeps in sessionStorage. Every text reaches the page through
 * textContent; field errors come from the server. */
(function () {
    'use strict';

    var TOKEN_KEY = 'bayge.token';
    var KINDS = { whatsapp: 'WhatsApp', telegram: 'Telegram', instagram: 'Instagram',
        web: 'Сайт' };
    var FIELD_INPUTS = { kind: 'ch-kind', id: 'ch-id', name: 'ch-name',
        account_id: 'ch-account', app_secret: 'ch-secret', access_token: 'ch-token' };

    var $ = function (id) { return document.getElementById(id); };
    var auditCursor = null;

    function el(tag, cls, text) {
        var e = document.createElement(tag);
        if (cls)
            e.className = cls;
        if (text !== undefined && text !== null)
            e.textContent = String(text);
        return e;
    }

    function button(text, onclick, cls) {
        var b = el('button', 'btn btn-sm' + (cls ? ' ' + cls : ''), text);
        b.type = 'button';
        b.addEventListener('click', onclick);
        return b;
    }

    function token() {
        return sessionStorage.getItem(TOKEN_KEY);
    }

    /* The token's claims, read for the page's looks only: the server checks every call. */
    function claims() {
        var t = token(), part;
        if (!t || (part = t.split('.')[1]) === undefined)
            return null;
        try {
            var bin = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
            return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, function (ch) {
                return ch.charCodeAt(0);
            })));
        } catch (e) {
            return null;
        }
    }

    /* fetch with the token; resolves to {status, body (parsed JSON or null), response}. */
    function call(method, path, body) {
        var init = { method: method, headers: { Authorization: 'Bearer ' + token() },
            cache: 'no-store' };
        if (body !== undefined) {
            init.headers['Content-Type'] = 'application/json';
            init.body = JSON.stringify(body);
        }
        return fetch(path, init).then(function (r) {
            if (r.status === 204)
                return { status: r.status, body: null, response: r };
            return r.json().then(function (j) {
                return { status: r.status, body: j, response: r };
            }, function () {
                return { status: r.status, body: null, response: r };
            });
        });
    }

    function errorText(res) {
        var e = res.body && res.body.error;
        return e && e.message ? e.message : 'Ошибка ' + res.status;
    }

    function note(id, text, bad) {
        var n = $(id);
        n.textContent = text;
        n.classList.toggle('bad', !!bad);
        n.hidden = !text;
    }

    /* ---- showing the view ---- */

    function open() {
        $('settings').hidden = false;
        $('app').classList.add('in-settings');
        $('open-settings').setAttribute('aria-expanded', 'true');
        select('channels');
        $('settings-title').focus();
    }

    function close() {
        $('settings').hidden = true;
        $('app').classList.remove('in-settings');
        $('open-settings').setAttribute('aria-expanded', 'false');
    }

    function select(tab) {
        var buttons = $('settings-tabs').querySelectorAll('button');
        for (var i = 0; i < buttons.length; i++) {
            var on = buttons[i].getAttribute('data-tab') === tab;
            buttons[i].setAttribute('aria-selected', on ? 'true' : 'false');
            buttons[i].classList.toggle('on', on);
            $('tab-' + buttons[i].getAttribute('data-tab')).hidden = !on;
        }
        if (tab === 'channels')
            loadChannels();
        else if (tab === 'audit')
            loadAudit(true);
        else
            $('contact-q').focus();
    }

    /* The button shows for admins once the inbox is signed in (app.js shows #app). */
    function sync() {
        var c = claims(), shown = !$('app').hidden && c && c.role === 'admin';
        $('open-settings').hidden = !shown;
        if (!shown)
            close();
    }

    /* ---- channels ---- */

    function loadChannels() {
        call('GET', '/api/v1/channels').then(function (res) {
            var body = $('channels');
            if (res.status !== 200) {
                note('channel-note', errorText(res), true);
                return;
            }
            body.textContent = '';
            res.body.channels.forEach(function (ch) {
                var tr = el('tr'), actions = el('td', 'settings-actions');
                tr.setAttribute('data-channel', ch.id);
                var name = el('td');
                name.appendChild(el('div', 'settings-strong', ch.name || ch.id));
                name.appendChild(el('div', 'muted', ch.id));
                tr.appendChild(name);
                tr.appendChild(el('td', null, KINDS[ch.kind] || ch.kind));
                tr.appendChild(el('td', ch.enabled ? 'on' : 'off',
                    ch.enabled ? 'Включён' : 'Отключён'));
                var url = el('td');
                url.appendChild(el('code', null, ch.webhook_url || ''));
                tr.appendChild(url);
                actions.appendChild(button('Проверить', function () { check(ch.id); }));
                actions.appendChild(button(ch.enabled ? 'Отключить' : 'Включить', function () {
                    toggle(ch.id, ch.enabled);
                }));
                tr.appendChild(actions);
                body.appendChild(tr);
            });
        });
    }

    function check(id) {
        note('channel-note', 'Проверяем ' + id + '…');
        call('POST', '/api/v1/channels/' + encodeURIComponent(id) + '/check')
            .then(function (res) {
                if (res.status !== 200)
                    note('channel-note', id + ': ' + errorText(res), true);
                else
                    note('channel-note', id + ': ' + (res.body.ok ? 'всё в порядке. ' : '') +
                        (res.body.message || ''), !res.body.ok);
            });
    }

    function toggle(id, enabled) {
        call('POST', '/api/v1/channels/' + encodeURIComponent(id) +
            (enabled ? '/disable' : '/enable')).then(function (res) {
            note('channel-note', res.status === 200
                ? id + (enabled ? ': отключён' : ': включён') : id + ': ' + errorText(res),
                res.status !== 200);
            loadChannels();
        });
    }

    function clearFieldErrors() {
        Object.keys(FIELD_INPUTS).forEach(function (f) {
            $(FIELD_INPUTS[f]).removeAttribute('aria-invalid');
        });
        $('channel-errors').hidden = true;
        $('channel-errors').textContent = '';
    }

    function create(ev) {
        ev.preventDefault();
        var form = $('channel-form'), body = {};
        Object.keys(FIELD_INPUTS).forEach(function (f) {
            var v = $(FIELD_INPUTS[f]).value.trim();
            if (v !== '')
                body[f] = v;
        });
        clearFieldErrors();
        $('channel-created').hidden = true;
        call('POST', '/api/v1/channels', body).then(function (res) {
            var err = res.body && res.body.error;
            if (res.status === 201) {
                form.reset();
                $('created-url').textContent = res.body.channel.webhook_url || '';
                $('created-token').textContent = res.body.verify_token || '—';
                $('channel-created').hidden = false;
                loadChannels();
                return;
            }
            var list = $('channel-errors');
            if (err && err.fields) {
                Object.keys(err.fields).forEach(function (f) {
                    if (FIELD_INPUTS[f])
                        $(FIELD_INPUTS[f]).setAttribute('aria-invalid', 'true');
                    list.appendChild(el('div', null, f + ': ' + err.fields[f]));
                });
            } else {
                list.textContent = errorText(res);
            }
            list.hidden = false;
        });
    }

    /* ---- contacts ---- */

    function searchContacts(ev) {
        ev.preventDefault();
        var q = $('contact-q').value.trim();
        call('GET', '/api/v1/contacts?limit=50&q=' + encodeURIComponent(q)).then(function (res) {
            var list = $('contacts');
            list.textContent = '';
            if (res.status !== 200) {
                note('contact-note', errorText(res), true);
                return;
            }
            note('contact-note', res.body.contacts.length ? '' : 'Никого не нашли.');
            res.body.contacts.forEach(function (c) {
                var li = el('li', 'settings-row');
                li.setAttribute('data-contact', c.id);
                var who = el('div');
                who.appendChild(el('div', 'settings-strong', c.display_name || 'Без имени'));
                who.appendChild(el('div', 'muted', (c.phone || '') + ' · #' + c.id));
                li.appendChild(who);
                var actions = el('div', 'settings-actions');
                actions.appendChild(button('Выгрузить данные', function () { exportContact(c); }));
                actions.appendChild(button('Удалить данные', function () { erase(c, li); },
                    'btn-danger'));
                li.appendChild(actions);
                list.appendChild(li);
            });
        });
    }

    /* The export as a file download (the right to know what is stored). */
    function exportContact(c) {
        fetch('/api/v1/contacts/' + c.id + '/export?download=1', {
            headers: { Authorization: 'Bearer ' + token() }, cache: 'no-store'
        }).then(function (r) {
            if (!r.ok)
                throw new Error('Ошибка ' + r.status);
            return r.blob();
        }).then(function (blob) {
            var a = el('a');
            a.href = URL.createObjectURL(blob);
            a.download = 'contact-' + c.id + '.json';
            document.body.appendChild(a);
            a.click();
            a.remove();
            setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
            note('contact-note', 'Данные клиента #' + c.id + ' выгружены.');
        }, function (e) {
            note('contact-note', e.message, true);
        });
    }

    /* The erasure (the right to be forgotten): asked once more, then irreversible. */
    function erase(c, li) {
        if (!window.confirm('Удалить все данные клиента ' + (c.display_name || '#' + c.id) +
            ' — сообщения, диалоги, контакты? Это нельзя отменить.'))
            return;
        call('DELETE', '/api/v1/contacts/' + c.id).then(function (res) {
            if (res.status !== 200) {
                note('contact-note', errorText(res), true);
                return;
            }
            li.remove();
            note('contact-note', 'Данные клиента #' + c.id + ' удалены: сообщений ' +
                res.body.erased.messages + ', диалогов ' + res.body.erased.conversations + '.');
        });
    }

    /* ---- audit ---- */

    function loadAudit(fresh) {
        if (fresh) {
            auditCursor = null;
            $('audit').textContent = '';
        }
        call('GET', '/api/v1/audit?limit=50' +
            (auditCursor ? '&before=' + encodeURIComponent(auditCursor) : ''))
            .then(function (res) {
                if (res.status !== 200)
                    return;
                res.body.records.forEach(function (r) {
                    var li = el('li', 'settings-row');
                    var what = el('div');
                    what.appendChild(el('div', 'settings-strong', r.action + ' ' + r.target));
                    what.appendChild(el('div', 'muted', new Date(r.at).toLocaleString('ru-RU') +
                        ' · ' + r.actor + ' (' + r.role + ')' +
                        (r.address ? ' · ' + r.address : '')));
                    li.appendChild(what);
                    $('audit').appendChild(li);
                });
                auditCursor = res.body.next_cursor;
                $('audit-more').hidden = !auditCursor;
            });
    }

    document.addEventListener('DOMContentLoaded', function () {
        $('open-settings').addEventListener('click', open);
        $('close-settings').addEventListener('click', close);
        $('settings-tabs').addEventListener('click', function (ev) {
            var t = ev.target.closest('button[data-tab]');
            if (t)
                select(t.getAttribute('data-tab'));
        });
        $('channel-form').addEventListener('submit', create);
        $('contact-search').addEventListener('submit', searchContacts);
        $('audit-more').addEventListener('click', function () { loadAudit(false); });
        $('settings-title').tabIndex = -1;
        new MutationObserver(sync).observe($('app'), { attributes: true,
            attributeFilter: ['hidden'] });
        sync();
    });
})();
