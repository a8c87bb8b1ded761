/* web/app.js - the agents' inbox: sign in with a token (kept in sessionStorage only), the
 * conversation list and history from the REST API (/api/v1), live events and commands
 * over the websocket (subprotocol bayge.v1), reconnecting with backoff and resuming from
 * the last event id seen. Message texts only ever reach the page through textContent. */
(function () {
    'use strict';

    var TOKEN_KEY = 'bayge.token';
    var PAGE = 50;
    var BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
    var TYPING_SEND_MS = 3000;   /* at most one typing command this often */
    var TYPING_SHOW_MS = 5000;   /* a colleague's "typing" shows this long */

    var STATUS = {
        received: '',
        queued: 'В очереди',
        sent: 'Отправлено',
        delivered: 'Доставлено',
        read: 'Прочитано',
        failed: 'Не доставлено'
    };
    var KINDS = {
        image: 'Фото', audio: 'Аудио', video: 'Видео', document: 'Документ',
        sticker: 'Стикер', location: 'Геолокация', contact: 'Контакт', reaction: 'Реакция',
        interactive: 'Ответ на кнопку', unsupported: 'Сообщение этого типа не поддерживается'
    };
    var CHANNELS = {
        whatsapp: 'WhatsApp', telegram: 'Telegram', instagram: 'Instagram', web: 'Сайт'
    };
    var TAGS = { whatsapp: 'WA', telegram: 'TG', instagram: 'IG', web: 'WEB' };
    var AUTHORS = { agent: 'Оператор', ai: 'ИИ-ассистент', system: 'Система' };
    var COLORS = ['#0f766e', '#2563eb', '#7c3aed', '#c2410c', '#0e7490', '#be185d',
        '#4d7c0f', '#9333ea', '#b45309', '#1d4ed8'];

    var $ = function (id) { return document.getElementById(id); };

    /* ---- state ---- */
    var S = {
        token: null,
        claims: null,
        convs: new Map(),      /* id → conversation (+ contact, last_message, channel_kind) */
        contacts: new Map(),   /* id → {id, display_name, phone} */
        kinds: new Map(),      /* channel public id → kind */
        threads: new Map(),    /* conversation id → {msgs: Map, next: cursor, loaded} */
        selected: null,
        filter: 'all',
        query: '',
        listCursor: null,
        listLoading: false,
        listAgain: false,      /* a refresh was asked for while a page was loading */
        eventNow: null,        /* the id of the event being applied (marks what it touched) */
        wantSelect: null,      /* #c=ID of a reload: selected once the list has it */
        ws: null,
        wsOpen: false,         /* authenticated (hello received) */
        lastEventId: null,     /* the last event id applied; resume after it */
        resuming: false,       /* a resume is running: replies wait for its end */
        resumeRef: null,
        attempt: 0,
        retryTimer: null,
        retryAt: 0,
        countdown: null,
        ref: 0,
        pending: new Map(),    /* ref → {resolve, reject} of a command */
        outbox: new Map(),     /* client_id → unsent/unacked reply {client_id, conv, text, ...} */
        mediaLinks: new Map(), /* message id → {url, exp}: signed links of its file */
        typingSent: 0,
        typing: new Map(),     /* conversation id → {user, until} */
        refreshTimer: null
    };

    /* ---- small helpers ---- */
    function el(tag, cls, text) {
        var e = document.createElement(tag);
        if (cls)
            e.className = cls;
        if (text !== undefined && text !== null)
            e.textContent = String(text);
        return e;
    }

    function svg(paths) {
        var NS = 'http://www.w3.org/2000/svg';
        var s = document.createElementNS(NS, 'svg');
        s.setAttribute('viewBox', '0 0 16 12');
        s.setAttribute('aria-hidden', 'true');
        paths.forEach(function (d) {
            var p = document.createElementNS(NS, 'path');
            p.setAttribute('d', d);
            s.appendChild(p);
        });
        return s;
    }

    var ICONS = {
        queued: ['M8 1.5a4.5 4.5 0 1 0 0 9a4.5 4.5 0 1 0 0-9', 'M8 3.5V6l1.8 1.2'],
        sent: ['M3 6.5l2.6 2.6L11 3.5'],
        delivered: ['M1.5 6.5l2.6 2.6L9.5 3.5', 'M7 8.3l.8.8L13.3 3.5'],
        read: ['M1.5 6.5l2.6 2.6L9.5 3.5', 'M7 8.3l.8.8L13.3 3.5'],
        failed: ['M8 1.5v6', 'M8 10v.2']
    };

    function tick(status) {
        var t = el('span', 'tick st-' + status);
        t.title = STATUS[status] || status;
        t.setAttribute('aria-label', t.title);
        if (ICONS[status])
            t.appendChild(svg(ICONS[status]));
        return t;
    }

    function toast(text, bad) {
        var t = el('div', 'toast' + (bad ? ' bad' : ''), text);
        $('toasts').appendChild(t);
        setTimeout(function () { t.remove(); }, bad ? 7000 : 4000);
    }

    function decodeClaims(token) {
        try {
            var p = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
            var json = decodeURIComponent(Array.prototype.map.call(atob(p), function (c) {
                return '%' + ('0' + c.charCodeAt(0).toString(16)).slice(-2);
            }).join(''));
            var c = JSON.parse(json);
            return c && typeof c === 'object' ? c : null;
        } catch (e) {
            return null;
        }
    }

    var fmtTime = new Intl.DateTimeFormat('ru-RU', { hour: '2-digit', minute: '2-digit' });
    var fmtDay = new Intl.DateTimeFormat('ru-RU', { day: 'numeric', month: 'short' });
    var fmtDayYear = new Intl.DateTimeFormat('ru-RU',
        { day: 'numeric', month: 'short', year: 'numeric' });
    var fmtFull = new Intl.DateTimeFormat('ru-RU', { dateStyle: 'long', timeStyle: 'medium' });

    function dayKey(d) { return d.getFullYear() + '-' + d.getMonth() + '-' + d.getDate(); }

    function dayLabel(d) {
        var now = new Date();
        var y = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
        if (dayKey(d) === dayKey(now))
            return 'Сегодня';
        if (dayKey(d) === dayKey(y))
            return 'Вчера';
        return (d.getFullYear() === now.getFullYear() ? fmtDay : fmtDayYear).format(d);
    }

    function shortTime(iso) {
        if (!iso)
            return '';
        var d = new Date(iso);
        return dayKey(d) === dayKey(new Date()) ? fmtTime.format(d) : dayLabel(d);
    }

    function msgDate(m) { return new Date(m.created_at || m.platform_ts || Date.now()); }

    function contactOf(c) {
        return S.contacts.get(c.contact_id) || c.contact || { id: c.contact_id };
    }

    function nameOf(c) {
        var k = contactOf(c);
        return k.display_name || k.phone || 'Контакт #' + c.contact_id;
    }

    /* Two letters of the first two words ("Айгерим Нурланова" → "АН"); a phone → "#". */
    function initials(name) {
        var words = String(name).match(/\p{L}+/gu) || [];
        var s = words.slice(0, 2).map(function (w) { return w.charAt(0); }).join('');
        return s.toUpperCase() || '#';
    }

    function avatar(node, c) {
        node.textContent = initials(nameOf(c));
        node.style.background = COLORS[Number(c.contact_id) % COLORS.length];
    }

    function kindOf(c) { return c.channel_kind || S.kinds.get(c.channel_id) || 'other'; }

    function preview(m) {
        if (!m)
            return '';
        if (m.deleted_at)
            return 'Сообщение удалено';
        if (m.text)
            return m.text;
        return KINDS[m.type] ? '[' + KINDS[m.type] + ']' : '';
    }

    function activity(c) { return c.last_message_at || c.created_at || ''; }

    /* ---- REST ---- */
    function api(path) {
        return fetch(path, {
            headers: { Authorization: 'Bearer ' + S.token, Accept: 'application/json' },
            cache: 'no-store'
        }).then(function (r) {
            return r.json().catch(function () { return {}; }).then(function (body) {
                if (r.status === 401) {
                    signOut('Токен недействителен или истёк. Войдите снова.');
                    throw new Error('unauthorized');
                }
                if (!r.ok) {
                    var msg = body && body.error ? body.error.message : r.statusText;
                    throw new Error(msg || ('HTTP ' + r.status));
                }
                return body;
            });
        });
    }

    /* A conversation from an event (since undefined), or from a REST page requested when
     * since was the last event id: what an event newer than that touched is newer than the
     * page, so the page only fills in what the event did not carry. */
    function absorbConversation(c, since) {
        var old = S.convs.get(c.id) || {};
        var merged = since !== undefined && old.ev > since ? Object.assign({}, c, old)
            : Object.assign({}, old, c);
        if (since === undefined)
            merged.ev = S.eventNow;
        if (c.contact) {
            S.contacts.set(c.contact.id, Object.assign({}, S.contacts.get(c.contact.id),
                c.contact));
        }
        if (c.channel_kind)
            S.kinds.set(c.channel_id, c.channel_kind);
        if (!('last_message' in c) && old.last_message)
            merged.last_message = old.last_message;
        S.convs.set(c.id, merged);
        return merged;
    }

    /* The first page again (after sign-in, or when live events cannot be trusted). */
    function loadList(more) {
        if (S.listLoading && !more)
            S.listAgain = true;
        if (!S.token || S.listLoading || (more && !S.listCursor))
            return Promise.resolve();
        S.listLoading = true;
        var since = S.lastEventId;
        var path = '/api/v1/conversations?limit=' + PAGE +
            (more ? '&before=' + encodeURIComponent(S.listCursor) : '');
        return api(path).then(function (page) {
            page.conversations.forEach(function (c) { absorbConversation(c, since); });
            if (!more || S.listCursor)
                S.listCursor = page.next_cursor;
            renderList();
            if (S.wantSelect !== null && !S.selected) {
                var want = S.wantSelect;
                S.wantSelect = null;
                select(want);
            }
        }).catch(function (e) {
            if (e.message === 'unauthorized')
                return;
            toast('Не удалось загрузить диалоги: ' + e.message, true);
            if (!more)              /* the first page is needed: try again soon */
                S.refreshTimer = setTimeout(function () { loadList(false); }, 3000);
        }).finally(function () {
            S.listLoading = false;
            if (S.listAgain && S.token) {
                S.listAgain = false;
                S.listCursor = null;
                loadList(false);
            }
        });
    }

    function thread(id) {
        var t = S.threads.get(id);
        if (!t) {
            t = { msgs: new Map(), next: null, loaded: false, loading: false, again: false };
            S.threads.set(id, t);
        }
        return t;
    }

    function loadMessages(id, older) {
        var t = thread(id);
        if (t.loading && !older)
            t.again = true;
        if (t.loading || (older && !t.next))
            return Promise.resolve();
        t.loading = true;
        var since = S.lastEventId;
        renderOlder();
        var path = '/api/v1/conversations/' + id + '/messages?limit=' + PAGE +
            (older ? '&before=' + encodeURIComponent(t.next) : '');
        return api(path).then(function (page) {
            page.messages.forEach(function (m) {   /* as absorbConversation */
                var old = t.msgs.get(m.id);
                t.msgs.set(m.id, old && old.ev > since ? Object.assign({}, m, old) : m);
            });
            if (!older || t.next)
                t.next = page.next_cursor;
            t.loaded = true;
        }).catch(function (e) {
            if (e.message !== 'unauthorized')
                toast('Не удалось загрузить переписку: ' + e.message, true);
        }).finally(function () {
            t.loading = false;
            if (S.selected === id)
                renderThread(older ? 'keep' : 'bottom');
            if (t.again && S.threads.get(id) === t) {
                t.again = false;
                loadMessages(id, false);
            }
        });
    }

    /* Everything from the REST API again: a gap in the event ids, or a server without
     * resume. Debounced. */
    function refreshAll() {
        clearTimeout(S.refreshTimer);
        S.refreshTimer = setTimeout(function () {
            S.listCursor = null;
            loadList(false);
            S.threads.forEach(function (t, id) {
                if (id === S.selected)
                    loadMessages(id, false);
                else
                    S.threads.delete(id);
            });
        }, 50);
    }

    /* ---- websocket ---- */
    function wsUrl() {
        return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
    }

    /* state: connecting, online, waiting (a retry is scheduled), offline (retries keep
     * failing); banner: the longer text of the bar above the conversation, when: its
     * countdown. Live regions change only with the state, never every second. */
    function setConn(state, text, banner, when) {
        $('conn').dataset.state = state;
        if ($('conn-text').textContent !== text)
            $('conn-text').textContent = text;
        $('offline').hidden = !banner;
        if (banner && $('offline-text').textContent !== banner)
            $('offline-text').textContent = banner;
        $('offline-in').textContent = when || '';
    }

    function connect() {
        clearTimeout(S.retryTimer);
        clearInterval(S.countdown);
        S.retryTimer = null;
        if (!S.token)
            return;
        if (S.ws) {
            S.ws.onclose = S.ws.onmessage = S.ws.onerror = null;
            try { S.ws.close(); } catch (e) { /* already closed */ }
        }
        setConn('connecting', S.attempt ? 'Переподключение…' : 'Подключение…',
            S.attempt ? 'Связь с сервером потеряна. Переподключаемся…' : null);
        var ws;
        try {
            ws = new WebSocket(wsUrl(), 'bayge.v1');
        } catch (e) {
            scheduleReconnect();
            return;
        }
        S.ws = ws;
        S.wsOpen = false;
        ws.onopen = function () {
            ws.send(JSON.stringify({ type: 'auth', token: S.token }));
        };
        ws.onmessage = function (ev) {
            var f;
            try {
                f = JSON.parse(ev.data);
            } catch (e) {
                return;
            }
            onFrame(f);
        };
        ws.onclose = function (ev) {
            var wasOpen = S.wsOpen;
            S.ws = null;
            S.wsOpen = false;
            S.resuming = false;
            S.pending.forEach(function (p) { p.reject(new Error('connection lost')); });
            S.pending.clear();
            if (ev.code === 1008 && /token/i.test(ev.reason || '') &&
                (!wasOpen || /expired/i.test(ev.reason))) {
                signOut(/expired/i.test(ev.reason)
                    ? 'Срок действия токена истёк. Войдите снова.'
                    : 'Сервер не принял токен. Войдите снова.');
                return;
            }
            scheduleReconnect();
        };
    }

    function scheduleReconnect() {
        if (!S.token)
            return;
        var base = BACKOFF_MS[Math.min(S.attempt, BACKOFF_MS.length - 1)];
        var delay = Math.round(base * (0.8 + Math.random() * 0.4));
        S.attempt++;
        S.retryAt = Date.now() + delay;
        var show = function () {
            var s = Math.max(0, Math.ceil((S.retryAt - Date.now()) / 1000));
            setConn(S.attempt > 4 ? 'offline' : 'waiting', 'Нет связи',
                'Связь с сервером потеряна. Переподключимся сами — ничего не пропадёт.',
                'Следующая попытка через ' + s + ' с.');
        };
        show();
        clearInterval(S.countdown);
        S.countdown = setInterval(show, 500);
        S.retryTimer = setTimeout(connect, delay);
    }

    function command(obj) {
        return new Promise(function (resolve, reject) {
            /* the socket may be closing before its close event arrives */
            if (!S.ws || !S.wsOpen || S.ws.readyState !== WebSocket.OPEN) {
                reject(new Error('нет связи'));
                return;
            }
            obj.ref = ++S.ref;
            S.pending.set(obj.ref, { resolve: resolve, reject: reject });
            S.ws.send(JSON.stringify(obj));
        });
    }

    function onFrame(f) {
        var p;
        switch (f.type) {
        case 'hello':
            S.wsOpen = true;
            S.attempt = 0;
            clearInterval(S.countdown);
            setConn('online', 'В сети');
            var first = S.lastEventId === null;
            if (first) {
                /* the REST snapshot is at least this new; anything after it is replayed */
                S.lastEventId = f.last_event_id;
            } else if (f.last_event_id < S.lastEventId) {
                /* the log is behind what we saw (a restored database): start over */
                S.lastEventId = f.last_event_id;
                refreshAll();
            }
            S.resuming = true;
            command({ type: 'resume', after: S.lastEventId }).then(function () {
                flushOutbox();
            }, function (e) {
                /* a server without resume: take the state from the REST API */
                S.resuming = false;
                if (S.wsOpen) {
                    S.lastEventId = f.last_event_id;
                    if (!first)
                        refreshAll();
                    flushOutbox();
                }
                if (e.code !== 'unknown_command' && S.wsOpen)
                    toast('Не удалось продолжить с места разрыва: ' + e.message, true);
            });
            S.resumeRef = S.ref;
            if (first)
                loadList(false);
            break;
        case 'resumed':
            /* the replay is over (the frame may carry no ref: it answers our resume) */
            S.resuming = false;
            if (typeof f.last_event_id === 'number' && f.last_event_id !== S.lastEventId) {
                if (f.last_event_id < S.lastEventId)
                    refreshAll();
                S.lastEventId = f.last_event_id;
            }
            settle(f.ref !== undefined && f.ref !== null ? f.ref : S.resumeRef, null, f);
            break;
        case 'resync':
            /* the log no longer reaches back to our cursor (retention): the lists are
             * reloaded from the REST API and events go on after last_event_id */
            S.resuming = false;
            S.lastEventId = f.last_event_id;
            dropAll();
            settle(f.ref !== undefined && f.ref !== null ? f.ref : S.resumeRef, null, f);
            break;
        case 'ack':
            settle(f.ref, null, f);
            break;
        case 'error':
            var err = new Error(f.message || f.code || 'ошибка');
            err.code = f.code;
            if (f.ref === undefined || f.ref === null || !S.pending.has(f.ref))
                toast('Сервер: ' + err.message, true);
            settle(f.ref, err);
            break;
        case 'event':
            onEvent(f);
            break;
        default:
            break;
        }
        function settle(ref, e, v) {
            p = S.pending.get(ref);
            if (!p)
                return;
            S.pending.delete(ref);
            if (e)
                p.reject(e);
            else
                p.resolve(v);
        }
    }

    function onEvent(f) {
        if (f.event === 'typing') {
            onTyping(f.data || {});
            return;
        }
        if (typeof f.id === 'number' && S.lastEventId !== null) {
            if (f.id <= S.lastEventId)
                return;             /* seen already (a replay overlapping live) */
            if (f.id > S.lastEventId + 1)
                refreshAll();       /* a gap: never show a partial picture */
            S.lastEventId = f.id;
        }
        var d = f.data || {};
        S.eventNow = typeof f.id === 'number' ? f.id : null;
        switch (f.event) {
        case 'message.created':
        case 'message.updated':
            onMessage(d);
            break;
        case 'message.status':
            onStatus(d);
            break;
        case 'conversation.created':
        case 'conversation.updated':
            absorbConversation(d);
            if (!S.contacts.has(d.contact_id) || !S.kinds.has(d.channel_id))
                refreshAll();       /* a contact or channel we have not seen: fetch it */
            renderList();
            if (S.selected === d.id)
                renderHead();
            break;
        case 'contact.updated':
            S.contacts.set(d.id, Object.assign({}, S.contacts.get(d.id), d));
            renderList();
            if (S.selected && S.convs.get(S.selected).contact_id === d.id)
                renderHead();
            break;
        case 'contact.erased':
            /* the contact's data was erased (privacy request): its conversations go */
            (d.conversation_ids || []).forEach(dropConversation);
            S.contacts.delete(d.contact_id);
            renderList();
            break;
        case 'contact.merge_suggested':
            toast('Похоже, это один и тот же клиент: контакты #' + d.contact_id + ' и #' +
                d.other_contact_id + '.');
            break;
        default:
            break;
        }
    }

    function onMessage(m) {
        var t = S.threads.get(m.conversation_id);
        if (t) {
            t.msgs.set(m.id, Object.assign({}, t.msgs.get(m.id), m, { ev: S.eventNow }));
            /* our own reply, now stored: its pending copy (the same client_id) goes */
            S.outbox.forEach(function (o, cid) {
                if (o.message_id === m.id || (m.client_id === cid &&
                                              o.conv === m.conversation_id))
                    S.outbox.delete(cid);
            });
        }
        var c = S.convs.get(m.conversation_id);
        if (c && (!c.last_message || c.last_message.id <= m.id)) {
            c.last_message = Object.assign({}, c.last_message &&
                c.last_message.id === m.id ? c.last_message : {}, m);
            if (m.created_at && (!c.last_message_at || m.created_at > c.last_message_at))
                c.last_message_at = m.created_at;
            c.ev = S.eventNow;
        } else if (!c) {
            refreshAll();
        }
        if (m.direction === 'in')
            S.typing.delete(m.conversation_id);
        renderList();
        if (S.selected === m.conversation_id) {
            renderThread('follow');
            if (m.direction === 'in' && document.visibilityState === 'visible')
                markRead(m.conversation_id);
        }
    }

    function onStatus(d) {
        var t = S.threads.get(d.conversation_id);
        var m = t && t.msgs.get(d.id);
        if (m) {
            m.status = d.status;
            m.error = d.error || null;
            m.ev = S.eventNow;
        }
        var c = S.convs.get(d.conversation_id);
        if (c && c.last_message && c.last_message.id === d.id) {
            c.last_message.status = d.status;
            c.ev = S.eventNow;
        }
        renderList();
        if (S.selected === d.conversation_id)
            renderThread('keep');
    }

    function onTyping(d) {
        if (!d.conversation_id || (S.claims && d.user === S.claims.sub))
            return;
        S.typing.set(d.conversation_id, { user: d.user, until: Date.now() + TYPING_SHOW_MS });
        renderTyping();
        setTimeout(renderTyping, TYPING_SHOW_MS + 50);
    }

    /* ---- commands ---- */
    function flushOutbox() {
        S.outbox.forEach(function (o) {
            if (!o.sending && !o.message_id && !o.failed)
                sendOne(o);
        });
    }

    function sendOne(o) {
        o.sending = true;
        var cmd = { type: 'send', conversation_id: o.conv, text: o.text, client_id: o.client_id };
        if (o.media_id)
            cmd.media_id = o.media_id;
        command(cmd)
            .then(function (ack) {
                o.sending = false;
                o.message_id = ack.message_id;
                var t = S.threads.get(o.conv);
                if (t && t.msgs.has(ack.message_id))
                    S.outbox.delete(o.client_id);
                if (S.selected === o.conv)
                    renderThread('keep');
            }, function (e) {
                o.sending = false;
                o.message_id = null;     /* a same-text message by someone else */
                if (e.code) {              /* refused by the server: say why */
                    o.failed = e.message;
                    if (S.selected === o.conv)
                        renderThread('keep');
                }                          /* else: resent after the reconnect */
            });
    }

    /* a stored message the platform refused, queued again as new */
    function retryMessage(m) {
        command({ type: 'retry', conversation_id: m.conversation_id, message_id: m.id })
            .catch(function (e) {
                m.error = e.message;
                if (S.selected === m.conversation_id)
                    renderThread('keep');
            });
    }

    function newClientId() {
        if (window.crypto && crypto.randomUUID)
            return crypto.randomUUID();
        return Date.now().toString(36) + Math.random().toString(36).slice(2);
    }

    function submitReply() {
        var box = $('reply');
        var text = box.value.replace(/\s+$/, '');
        if (!text.trim() || !S.selected)
            return;
        var o = { client_id: newClientId(), conv: S.selected, text: text, at: new Date() };
        S.outbox.set(o.client_id, o);
        box.value = '';
        autosize();
        if (S.wsOpen && !S.resuming)
            sendOne(o);
        renderThread('bottom');
    }

    /* A signed, short-lived link to a message's file (an <img> cannot send the token):
     * asked for once and reused until shortly before it expires. */
    function mediaLink(id) {
        var l = S.mediaLinks.get(id);
        if (l && l.exp * 1000 > Date.now() + 30000)
            return Promise.resolve(l.url);
        return fetch('/api/v1/messages/' + id + '/media/link', {
            method: 'POST', headers: { Authorization: 'Bearer ' + S.token }, cache: 'no-store'
        }).then(function (r) {
            return r.json().then(function (body) {
                if (!r.ok)
                    throw new Error((body.error && body.error.message) || r.status);
                S.mediaLinks.set(id, { url: body.url, exp: body.expires_at });
                return body.url;
            });
        });
    }

    function fmtSize(n) {
        if (!n)
            return '';
        return n < 1024 ? n + ' Б' : n < 1048576 ? Math.round(n / 1024) + ' КБ' :
            (n / 1048576).toFixed(1) + ' МБ';
    }

    /* The file of a stored message: an image inline (lazily), anything else a download. */
    function mediaNode(m) {
        var f = m.media;
        var inline = f.kind === 'image' || f.kind === 'sticker';
        if (inline && typeof m.id === 'number') {
            var img = el('img', 'media-img');
            img.alt = f.filename || KINDS[f.kind] || '';
            img.loading = 'lazy';
            mediaLink(m.id).then(function (url) { img.src = url; }, function () {
                img.replaceWith(el('span', 'media-file', 'Файл недоступен'));
            });
            return img;
        }
        var a = el('a', 'media-file', '📎 ' + (f.filename || KINDS[f.kind] || 'файл') +
                   (f.size ? ' · ' + fmtSize(f.size) : ''));
        a.href = '#';
        a.addEventListener('click', function (ev) {
            ev.preventDefault();
            if (typeof m.id !== 'number')
                return;
            mediaLink(m.id).then(function (url) { window.location.assign(url); },
                                 function (e) { toast('Файл недоступен: ' + e.message, true); });
        });
        return a;
    }

    /* The attach button: the file goes up (POST /api/v1/media), then out as a reply with
     * the reply box's text as its caption. */
    function attachFile(file) {
        var conv = S.selected;
        if (!file || !conv)
            return;
        fetch('/api/v1/media?filename=' + encodeURIComponent(file.name), {
            method: 'POST', body: file,
            headers: { Authorization: 'Bearer ' + S.token,
                       'Content-Type': file.type || 'application/octet-stream' }
        }).then(function (r) {
            return r.json().then(function (body) {
                if (!r.ok)
                    throw new Error((body.error && body.error.message) || r.status);
                return body;
            });
        }).then(function (up) {
            var box = $('reply');
            var o = { client_id: newClientId(), conv: conv, text: box.value.trim(),
                      media_id: up.id, at: new Date(),
                      media: { kind: /^image\/(jpeg|png)$/.test(up.mime) ? 'image' : 'document',
                               filename: up.filename, size: up.size, mime: up.mime } };
            box.value = '';
            autosize();
            S.outbox.set(o.client_id, o);
            if (S.wsOpen && !S.resuming)
                sendOne(o);
            renderThread('bottom');
        }, function (e) {
            toast('Файл не отправлен: ' + e.message, true);
        });
    }

    function markRead(id) {
        var c = S.convs.get(id);
        if (!c || !c.unread || !S.wsOpen)
            return;
        c.unread = 0;
        renderList();
        command({ type: 'read', conversation_id: id }).catch(function () { /* next time */ });
    }

    function assignToMe() {
        var id = S.selected;
        command({ type: 'assign', conversation_id: id }).then(function () {
            var c = S.convs.get(id);
            if (c && S.claims)
                c.assignee = S.claims.sub;
            renderHead();
            renderList();
        }, function (e) {
            toast('Не удалось назначить диалог: ' + e.message, true);
        });
    }

    function setMode(mode) {
        var id = S.selected;
        var c = S.convs.get(id);
        if (!c || c.mode === mode)
            return;
        command({ type: 'mode', conversation_id: id, mode: mode }).then(function () {
            c.mode = mode;
            renderHead();
            renderList();
        }, function (e) {
            toast('Не удалось переключить режим: ' + e.message, true);
        });
    }

    function sendTyping() {
        if (!S.selected || !S.wsOpen || Date.now() - S.typingSent < TYPING_SEND_MS)
            return;
        S.typingSent = Date.now();
        command({ type: 'typing', conversation_id: S.selected }).catch(function () { });
    }

    /* ---- rendering: the list ---- */
    function visible(c) {
        var me = S.claims && S.claims.sub;
        if (S.filter === 'mine' && c.assignee !== me)
            return false;
        if (S.filter === 'free' && c.assignee)
            return false;
        if (S.filter === 'unread' && !c.unread)
            return false;
        if (S.query) {
            var k = contactOf(c);
            var hay = ((k.display_name || '') + ' ' + (k.phone || '')).toLowerCase();
            if (hay.indexOf(S.query) < 0 && hay.replace(/\D/g, '').indexOf(S.query) < 0)
                return false;
        }
        return true;
    }

    function sorted() {
        return Array.from(S.convs.values()).sort(function (a, b) {
            var x = activity(a), y = activity(b);
            if (x !== y)
                return x < y ? 1 : -1;
            return b.id - a.id;
        });
    }

    function renderList() {
        var list = $('list');
        var items = sorted().filter(visible);
        var me = S.claims && S.claims.sub;
        var frag = document.createDocumentFragment();
        items.forEach(function (c) {
            var li = el('li', c.id === S.selected ? 'sel' : '');
            li.dataset.id = c.id;
            li.tabIndex = 0;
            li.setAttribute('role', 'button');
            if (c.unread)
                li.classList.add('unread');
            var av = el('div', 'avatar');
            avatar(av, c);
            var name = el('div', 'li-name');
            var kind = kindOf(c);
            var tag = el('span', 'tag tag-' + kind, TAGS[kind] || c.channel_id);
            tag.title = CHANNELS[kind] || c.channel_id;
            name.appendChild(el('span', 'n', nameOf(c)));
            name.appendChild(tag);
            var time = el('div', 'li-time', shortTime(c.last_message_at));
            var last = el('div', 'li-last');
            var lm = c.last_message;
            if (lm && lm.direction === 'out')
                last.appendChild(el('span', 'you', lm.author === 'ai' ? 'ИИ: ' : 'Вы: '));
            last.appendChild(document.createTextNode(preview(lm)));
            var side = el('div', 'li-side');
            if (c.mode === 'ai')
                side.appendChild(el('span', 'tag tag-ai', 'ИИ'));
            if (c.assignee && c.assignee === me) {
                side.appendChild(el('span', 'tag tag-mine', 'мой'));
            } else if (c.assignee) {
                var who = el('span', 'tag tag-taken', c.assignee);
                who.title = 'Ведёт: ' + c.assignee;
                side.appendChild(who);
            }
            if (c.unread)
                side.appendChild(el('span', 'badge', c.unread > 99 ? '99+' : c.unread));
            li.append(av, name, time, last, side);
            frag.appendChild(li);
        });
        /* a live update must not take the keyboard focus away from the list */
        var focused = list.contains(document.activeElement) ? document.activeElement.dataset.id
            : null;
        list.replaceChildren(frag);
        if (focused) {
            var again = list.querySelector('li[data-id="' + focused + '"]');
            if (again)
                again.focus({ preventScroll: true });
        }
        $('list-empty').hidden = items.length > 0 || S.listLoading;
        if (S.convs.size && !items.length)
            $('list-empty').textContent = 'Ничего не найдено.';
        else
            $('list-empty').textContent = 'Диалогов пока нет. Новые сообщения появятся здесь сами.';
        document.title = titleCount() + 'Bayge · Входящие';
    }

    function titleCount() {
        var n = 0;
        S.convs.forEach(function (c) { n += c.unread ? 1 : 0; });
        return n ? '(' + n + ') ' : '';
    }

    /* ---- rendering: the selected conversation ---- */
    function renderHead() {
        var c = S.convs.get(S.selected);
        if (!c)
            return;
        var k = contactOf(c);
        var kind = kindOf(c);
        avatar($('conv-avatar'), c);
        $('conv-name').textContent = nameOf(c);
        var sub = $('conv-sub');
        var tag = el('span', 'tag tag-' + kind, TAGS[kind] || c.channel_id);
        var parts = [k.phone, CHANNELS[kind] ? CHANNELS[kind] + ' · ' + c.channel_id
            : c.channel_id, c.status === 'resolved' ? 'закрыт' : null].filter(Boolean);
        sub.replaceChildren(tag, el('span', '', parts.join(' · ')));
        var me = S.claims && S.claims.sub;
        var a = $('conv-assignee');
        var btn = $('assign');
        if (c.assignee === me) {
            a.textContent = 'Диалог ведёте вы';
            btn.hidden = true;
        } else {
            a.textContent = c.assignee ? 'Ведёт: ' + c.assignee : 'Никто не назначен';
            btn.hidden = false;
            btn.textContent = c.assignee ? 'Забрать себе' : 'Взять себе';
        }
        Array.prototype.forEach.call($('mode').children, function (b) {
            var on = b.dataset.mode === (c.mode || 'human');
            b.classList.toggle('on', on);
            b.setAttribute('aria-pressed', on ? 'true' : 'false');
        });
        $('mode').title = c.mode === 'ai' ? 'Отвечает ИИ-ассистент' : 'Отвечает оператор';
        var why = c.mode === 'human' && HANDOFF[c.handoff_reason];
        $('handoff').hidden = !why;
        $('handoff').textContent = why ? 'ИИ передал диалог: ' + why : '';
    }

    function renderOlder() {
        var box = $('older');
        var t = S.threads.get(S.selected);
        box.replaceChildren();
        if (!t)
            return;
        if (t.loading) {
            box.textContent = 'Загрузка…';
        } else if (t.next) {
            var b = el('button', '', 'Показать более ранние');
            b.type = 'button';
            b.addEventListener('click', function () { loadMessages(S.selected, true); });
            box.appendChild(b);
        } else if (t.loaded) {
            box.textContent = 'Начало переписки';
        }
    }

    // why the assistant handed a conversation to people (conversation.handoff_reason)
    var HANDOFF = {
        customer_asked: 'клиент попросил оператора',
        agent: 'оператор ответил сам',
        assigned: 'оператор взял диалог',
        provider_failed: 'ИИ-сервис не ответил',
        guard_blocked: 'защита данных не пропустила запрос'
    };

    function messageNode(m, opts) {
        var out = m.direction === 'out';
        var li = el('li', 'msg ' + (out ? 'out' : 'in'));
        if (m.author === 'ai')
            li.classList.add('ai');
        if (m.status === 'failed' || opts.failed)
            li.classList.add('failed');
        if (opts.pending)
            li.classList.add('pending');
        li.dataset.id = m.id;
        var bubble = el('div', 'bubble');
        if (m.deleted_at) {
            bubble.appendChild(el('span', 'deleted', 'Сообщение удалено'));
        } else {
            if (m.media)
                bubble.appendChild(mediaNode(m));
            else if (m.type && m.type !== 'text' && KINDS[m.type])
                bubble.appendChild(el('div', 'kind', KINDS[m.type]));
            if (m.text)
                bubble.appendChild(el('span', 'text', m.text));
        }
        if (m.reactions && m.reactions.length) {
            bubble.appendChild(el('div', 'reactions', m.reactions.map(function (r) {
                return typeof r === 'string' ? r : r.emoji || '';
            }).join(' ')));
        }
        var meta = el('div', 'meta');
        if (m.edited_at)
            meta.appendChild(el('span', 'edited', 'изменено'));
        var d = msgDate(m);
        var time = el('time', '', fmtTime.format(d));
        time.dateTime = d.toISOString();
        time.title = fmtFull.format(d);
        meta.appendChild(time);
        if (out)
            meta.appendChild(tick(opts.failed ? 'failed' : m.status || 'queued'));
        bubble.appendChild(meta);
        li.appendChild(bubble);
        var why = opts.failed || (m.status === 'failed' ? m.error || 'ошибка платформы' : null);
        if (why) {
            var w = el('div', 'fail-why', 'Не доставлено: ' + why);
            if (opts.retry) {
                var rb = el('button', '', 'Повторить');
                rb.type = 'button';
                rb.addEventListener('click', opts.retry);
                w.appendChild(rb);
            }
            li.appendChild(w);
        }
        return li;
    }

    function nearBottom(box) {
        return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    }

    /* how: 'bottom' scrolls to the end, 'follow' only if the agent was at the end,
     * 'keep' keeps what is on screen in place (older messages added above). */
    function renderThread(how) {
        var id = S.selected;
        var t = S.threads.get(id);
        var box = $('thread');
        var list = $('messages');
        var wasBottom = nearBottom(box);
        var oldHeight = box.scrollHeight, oldTop = box.scrollTop;
        var frag = document.createDocumentFragment();
        var lastDay = null, lastWho = null;
        var msgs = t ? Array.from(t.msgs.values()).sort(function (a, b) {
            return a.id - b.id;
        }) : [];
        var shown = new Set(msgs.map(function (m) { return m.id; }));
        var pending = [];
        S.outbox.forEach(function (o) {
            if (o.conv === id && !(o.message_id && shown.has(o.message_id)))
                pending.push(o);
        });
        function add(m, opts) {
            var d = msgDate(m);
            if (dayKey(d) !== lastDay) {
                lastDay = dayKey(d);
                lastWho = null;
                frag.appendChild(el('li', 'day', dayLabel(d)));
            }
            var who = m.direction === 'out' ? m.author : 'contact';
            if (who !== lastWho && who !== 'contact' && AUTHORS[who])
                frag.appendChild(el('li', 'who ' + (m.direction === 'out' ? 'msg out' : ''),
                    AUTHORS[who]));
            lastWho = who;
            frag.appendChild(messageNode(m, opts));
        }
        msgs.forEach(function (m) {
            add(m, { retry: m.direction === 'out' && m.status === 'failed'
                ? function () { retryMessage(m); } : null });
        });
        pending.forEach(function (o) {
            add({ id: 'c-' + o.client_id, direction: 'out', author: 'agent',
                type: o.media ? o.media.kind : 'text', media: o.media || null,
                text: o.text, status: 'queued', created_at: o.at.toISOString() }, {
                pending: true,
                failed: o.failed,
                retry: o.failed ? function () {
                    o.failed = null;
                    sendOne(o);
                    renderThread('keep');
                } : null
            });
        });
        list.replaceChildren(frag);
        renderOlder();
        if (how === 'bottom' || (how === 'follow' && wasBottom)) {
            box.scrollTop = box.scrollHeight;
            $('jump').hidden = true;
        } else if (how === 'keep') {
            box.scrollTop = oldTop + (box.scrollHeight - oldHeight);
        } else if (how === 'follow') {
            $('jump').hidden = false;
        }
        renderTyping();
    }

    function renderTyping() {
        var ty = S.typing.get(S.selected);
        var box = $('typing');
        if (ty && ty.until > Date.now()) {
            box.textContent = ty.user + ' печатает…';
            box.hidden = false;
        } else {
            box.hidden = true;
        }
    }

    function select(id) {
        if (!S.convs.has(id))
            return;
        S.selected = id;
        $('placeholder').hidden = true;
        $('conv').hidden = false;
        $('app').classList.add('has-conv');
        $('jump').hidden = true;
        renderHead();
        renderList();
        var t = thread(id);
        renderThread('bottom');
        if (!t.loaded)
            loadMessages(id, false).then(function () { markRead(id); });
        else
            markRead(id);
        if (location.hash !== '#c=' + id)
            history.replaceState(null, '', '#c=' + id);
        $('reply').focus();
    }

    /* A conversation that no longer exists (its contact erased). */
    function dropConversation(id) {
        S.convs.delete(id);
        S.threads.delete(id);
        if (S.selected === id)
            deselect();
    }

    /* Everything shown is forgotten and loaded again (resync). */
    function dropAll() {
        var sel = S.selected;
        S.convs.clear();
        S.threads.clear();
        S.contacts.clear();
        if (sel !== null)
            S.wantSelect = sel;
        S.selected = null;
        $('conv').hidden = true;
        $('placeholder').hidden = false;
        $('app').classList.remove('has-conv');
        S.listCursor = null;
        renderList();
        loadList(false);
    }

    /* Back to the list alone (narrow screens). */
    function deselect() {
        S.selected = null;
        $('conv').hidden = true;
        $('placeholder').hidden = false;
        $('app').classList.remove('has-conv');
        history.replaceState(null, '', location.pathname);
        renderList();
    }

    /* ---- sign in / out ---- */
    function signOut(why) {
        S.token = null;
        sessionStorage.removeItem(TOKEN_KEY);
        clearTimeout(S.retryTimer);
        clearTimeout(S.refreshTimer);
        clearInterval(S.countdown);
        if (S.ws) {
            S.ws.onclose = null;
            S.ws.close();
            S.ws = null;
        }
        S.convs.clear();
        S.threads.clear();
        S.contacts.clear();
        S.outbox.clear();
        S.selected = null;
        S.lastEventId = null;
        $('app').hidden = true;
        $('signin').hidden = false;
        var e = $('signin-error');
        e.textContent = why || '';
        e.hidden = !why;
        $('signin-token').focus();
    }

    function signIn(token, fromForm) {
        token = String(token || '').trim();
        var claims = decodeClaims(token);
        if (!claims || !claims.sub || !claims.tid) {
            if (fromForm)
                signOut('Это не похоже на токен доступа: проверьте, что он скопирован целиком.');
            else
                signOut();
            return;
        }
        if (claims.exp && claims.exp * 1000 <= Date.now()) {
            signOut('Срок действия токена истёк. Попросите новый.');
            return;
        }
        S.token = token;
        S.claims = claims;
        sessionStorage.setItem(TOKEN_KEY, token);
        $('signin').hidden = true;
        $('app').hidden = false;
        $('me').textContent = claims.sub + ' · ' + claims.tid +
            (claims.role === 'admin' ? ' · администратор' : '');
        $('me').title = 'Токен действует до ' + (claims.exp
            ? fmtFull.format(new Date(claims.exp * 1000)) : '—');
        S.attempt = 0;
        S.lastEventId = null;
        renderList();
        connect();
    }

    function autosize() {
        var r = $('reply');
        r.style.height = 'auto';
        r.style.height = Math.min(r.scrollHeight + 2, 160) + 'px';
    }

    function wire() {
        $('signin-form').addEventListener('submit', function (ev) {
            ev.preventDefault();
            signIn($('signin-token').value, true);
        });
        $('signout').addEventListener('click', function () { signOut(); });
        $('list').addEventListener('click', function (ev) {
            var li = ev.target.closest('li[data-id]');
            if (li)
                select(Number(li.dataset.id));
        });
        $('list').addEventListener('keydown', function (ev) {
            var li = ev.target.closest('li[data-id]');
            if (!li)
                return;
            if (ev.key === 'Enter' || ev.key === ' ') {
                ev.preventDefault();
                select(Number(li.dataset.id));
            } else if (ev.key === 'ArrowDown' && li.nextElementSibling) {
                ev.preventDefault();
                li.nextElementSibling.focus();
            } else if (ev.key === 'ArrowUp' && li.previousElementSibling) {
                ev.preventDefault();
                li.previousElementSibling.focus();
            }
        });
        $('list').addEventListener('scroll', function () {
            var l = $('list');
            if (l.scrollHeight - l.scrollTop - l.clientHeight < 200)
                loadList(true);
        });
        $('filters').addEventListener('click', function (ev) {
            var b = ev.target.closest('button[data-filter]');
            if (!b)
                return;
            S.filter = b.dataset.filter;
            Array.prototype.forEach.call($('filters').children, function (x) {
                x.classList.toggle('on', x === b);
                x.setAttribute('aria-pressed', x === b ? 'true' : 'false');
            });
            renderList();
        });
        $('search').addEventListener('input', function () {
            S.query = $('search').value.trim().toLowerCase();
            renderList();
        });
        $('thread').addEventListener('scroll', function () {
            var box = $('thread');
            if (box.scrollTop < 120 && S.selected)
                loadMessages(S.selected, true);
            if (nearBottom(box))
                $('jump').hidden = true;
        });
        $('jump').addEventListener('click', function () {
            $('thread').scrollTop = $('thread').scrollHeight;
            $('jump').hidden = true;
        });
        $('attach').addEventListener('click', function () { $('attach-file').click(); });
        $('attach-file').addEventListener('change', function () {
            attachFile(this.files[0]);
            this.value = '';
        });
        $('composer').addEventListener('submit', function (ev) {
            ev.preventDefault();
            submitReply();
        });
        $('reply').addEventListener('keydown', function (ev) {
            if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
                ev.preventDefault();
                submitReply();
            }
        });
        $('reply').addEventListener('input', function () {
            autosize();
            sendTyping();
        });
        $('back').addEventListener('click', deselect);
        $('assign').addEventListener('click', assignToMe);
        $('mode').addEventListener('click', function (ev) {
            var b = ev.target.closest('button[data-mode]');
            if (b)
                setMode(b.dataset.mode);
        });
        $('reconnect-now').addEventListener('click', function () {
            S.attempt = 0;
            connect();
        });
        window.addEventListener('online', function () {
            if (!S.wsOpen && S.token) {
                S.attempt = 0;
                connect();
            }
        });
        document.addEventListener('visibilitychange', function () {
            if (document.visibilityState === 'visible' && S.selected)
                markRead(S.selected);
        });
        setInterval(function () {
            if (S.claims && S.claims.exp && S.claims.exp * 1000 <= Date.now())
                signOut('Срок действия токена истёк. Войдите снова.');
        }, 15000);
    }

    function start() {
        wire();
        /* #token=... (make run's link): taken once, then removed from the address bar */
        var m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
        if (m) {
            history.replaceState(null, '', location.pathname);
            var token = null;
            try {
                token = decodeURIComponent(m[1]);
            } catch (e) { /* a mangled link: the form says so */ }
            signIn(token, true);
            return;
        }
        var saved = sessionStorage.getItem(TOKEN_KEY);
        var c = /^#c=(\d+)$/.exec(location.hash);
        if (saved) {
            S.wantSelect = c ? Number(c[1]) : null;
            signIn(saved, false);
        } else {
            signOut();
        }
    }

    if (document.readyState === 'loading')
        document.addEventListener('DOMContentLoaded', start);
    else
        start();
}());
