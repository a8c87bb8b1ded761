/* web/widget.js - the website chat widget of Bayge Hub (channel kind web). A site embeds it
 * with one tag:
 *   <script src="https://hub.example.kz/widget.js" data-channel="acme-web" async></script>
 * optionally with data-user-id and data-user-hash (HMAC-SHA256 of the user id with the
 * channel's identity secret) for a signed-in user. No dependencies, no build step, nothing
 * fetched but the hub's own session endpoint and websocket. Everything lives in an open
 * shadow root (the site's CSS cannot reach in, ours cannot reach out); styles are a
 * constructed stylesheet (allowed by a strict CSP), every text is set as text, never markup.
 * Protocol: README "Website chat". */
(function () {
	"use strict";

	var script = document.currentScript ||
		document.querySelector("script[data-channel][src*='widget.js']");
	if (!script || !script.getAttribute("data-channel") || window.__baygeWidget)
		return;
	window.__baygeWidget = true;

	var HUB = new URL(script.src, location.href).origin;
	var CHANNEL = script.getAttribute("data-channel");
	var USER_ID = script.getAttribute("data-user-id");
	var USER_HASH = script.getAttribute("data-user-hash");
	var KEY = "bayge.webchat." + CHANNEL + (USER_ID ? ".u." + USER_ID : "");

	var TEXTS = {
		en: { open: "Open the chat", close: "Close the chat", title: "Chat with us",
		      placeholder: "Write a message…", send: "Send", label: "Your message",
		      offline: "No connection. We will send your messages when it is back.",
		      typing: "typing…", you: "You", agent: "Support", ai: "Assistant",
		      name: "Your name", phone: "Phone", start: "Start the chat",
		      prechat: "Tell us how to reach you", sent: "sent", seen: "seen",
		      failed: "not sent", refused: "The chat is not available on this page.",
		      log: "Messages", newmsg: "New message" },
		ru: { open: "Открыть чат", close: "Закрыть чат", title: "Напишите нам",
		      placeholder: "Напишите сообщение…", send: "Отправить", label: "Ваше сообщение",
		      offline: "Нет связи. Сообщения отправятся, когда она появится.",
		      typing: "печатает…", you: "Вы", agent: "Поддержка", ai: "Ассистент",
		      name: "Ваше имя", phone: "Телефон", start: "Начать чат",
		      prechat: "Как с вами связаться", sent: "отправлено", seen: "прочитано",
		      failed: "не отправлено", refused: "Чат недоступен на этой странице.",
		      log: "Сообщения", newmsg: "Новое сообщение" },
		kk: { open: "Чатты ашу", close: "Чатты жабу", title: "Бізге жазыңыз",
		      placeholder: "Хабарлама жазыңыз…", send: "Жіберу", label: "Сіздің хабарламаңыз",
		      offline: "Байланыс жоқ. Хабарламалар байланыс қалпына келгенде жіберіледі.",
		      typing: "жазып жатыр…", you: "Сіз", agent: "Қолдау", ai: "Көмекші",
		      name: "Атыңыз", phone: "Телефон", start: "Чатты бастау",
		      prechat: "Сізбен қалай байланысамыз", sent: "жіберілді", seen: "оқылды",
		      failed: "жіберілмеді", refused: "Бұл бетте чат қолжетімсіз.",
		      log: "Хабарламалар", newmsg: "Жаңа хабарлама" }
	};
	var LANG = (function () {
		var list = navigator.languages || [navigator.language || "en"];
		for (var i = 0; i < list.length; i++) {
			var l = String(list[i]).toLowerCase().slice(0, 2);
			if (TEXTS[l])
				return l;
		}
		return "en";
	})();
	var T = TEXTS[LANG];

	var CSS = [
		":host{all:initial}",
		"*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}",
		".launcher{position:fixed;right:16px;bottom:16px;z-index:2147483646;width:56px;height:56px;",
		"border-radius:50%;border:0;background:var(--c);color:#fff;cursor:pointer;",
		"box-shadow:0 4px 14px rgba(0,0,0,.25);display:flex;align-items:center;justify-content:center}",
		".launcher:focus-visible,button:focus-visible,textarea:focus-visible,input:focus-visible",
		"{outline:3px solid #ffbf47;outline-offset:2px}",
		".launcher svg{width:28px;height:28px;fill:currentColor}",
		".badge{position:absolute;top:-2px;right:-2px;min-width:20px;height:20px;border-radius:10px;",
		"background:#d4351c;color:#fff;font-size:12px;line-height:20px;text-align:center;padding:0 5px}",
		".panel{position:fixed;right:16px;bottom:84px;z-index:2147483647;width:370px;",
		"max-width:calc(100vw - 16px);height:540px;max-height:calc(100vh - 100px);background:#fff;",
		"color:#1b1b1b;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.3);display:flex;",
		"flex-direction:column;overflow:hidden;font-size:15px}",
		".panel[hidden]{display:none}",
		"@media (max-width:480px){.panel{right:0;bottom:0;width:100vw;max-width:100vw;height:100%;",
		"max-height:100%;border-radius:0}}",
		"header{background:var(--c);color:#fff;padding:12px 14px;display:flex;align-items:center;gap:8px}",
		"header h2{margin:0;font-size:16px;font-weight:600;flex:1;overflow:hidden;text-overflow:ellipsis}",
		"header button{background:transparent;border:0;color:#fff;font-size:22px;line-height:1;",
		"cursor:pointer;width:36px;height:36px;border-radius:6px}",
		".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;",
		"background:#f4f5f7}",
		".msg{max-width:85%;padding:8px 11px;border-radius:12px;white-space:pre-wrap;",
		"overflow-wrap:anywhere;line-height:1.35}",
		".msg.visitor{align-self:flex-end;background:var(--c);color:#fff;border-bottom-right-radius:3px}",
		".msg.agent,.msg.ai,.msg.system,.msg.greeting{align-self:flex-start;background:#fff;",
		"border:1px solid #dde1e6;border-bottom-left-radius:3px}",
		".who{display:block;font-size:11px;opacity:.75;margin-bottom:2px}",
		".meta{display:block;font-size:11px;opacity:.75;margin-top:2px;text-align:right}",
		".status{padding:6px 12px;font-size:13px;background:#fff4e5;color:#5c3c00}",
		".status[hidden],.typing[hidden]{display:none}",
		".typing{padding:0 14px 6px;font-size:12px;color:#505a5f;background:#f4f5f7}",
		"form{display:flex;gap:8px;padding:10px;border-top:1px solid #dde1e6;background:#fff}",
		"form.pre{flex-direction:column;padding:14px}",
		"label.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}",
		"textarea,input{flex:1;font-size:15px;padding:8px 10px;border:1px solid #8a949c;",
		"border-radius:8px;resize:none;min-height:40px;max-height:120px;color:#1b1b1b;background:#fff}",
		"form button{border:0;border-radius:8px;background:var(--c);color:#fff;padding:0 14px;",
		"min-height:40px;font-size:15px;cursor:pointer}",
		"form.pre label{font-size:13px;display:flex;flex-direction:column;gap:4px}"
	].join("");

	function el(tag, attrs, text) {
		var e = document.createElement(tag);
		for (var k in attrs || {})
			e.setAttribute(k, attrs[k]);
		if (text != null)
			e.textContent = text;
		return e;
	}

	function pick(texts) {
		if (!texts)
			return null;
		return texts[LANG] || texts.en || texts.ru || texts.kk || null;
	}

	function store(get, val) {
		try {
			if (get)
				return JSON.parse(localStorage.getItem(KEY) || "null");
			localStorage.setItem(KEY, JSON.stringify(val));
		} catch (e) { /* storage off: this page's session only */ }
		return null;
	}

	var saved = store(true) || {};
	/* an undefined custom element: no site rule for div or span matches it, and its own
	 * inline !important declarations beat the site's rules */
	var host = el("bayge-chat", { "data-channel": CHANNEL });
	host.style.setProperty("all", "initial", "important");
	host.style.setProperty("display", "block", "important");
	var root = host.attachShadow({ mode: "open" });
	if (root.adoptedStyleSheets !== undefined && window.CSSStyleSheet) {
		var sheet = new CSSStyleSheet();
		sheet.replaceSync(CSS);
		root.adoptedStyleSheets = [sheet];
	}

	var launcher = el("button", { "class": "launcher", type: "button", "aria-label": T.open,
				      "aria-expanded": "false", "aria-controls": "bayge-panel" });
	(function () { /* no innerHTML anywhere: a page with Trusted Types allows it too */
		var ns = "http://www.w3.org/2000/svg";
		var svg = document.createElementNS(ns, "svg");
		var path = document.createElementNS(ns, "path");
		svg.setAttribute("viewBox", "0 0 24 24");
		svg.setAttribute("aria-hidden", "true");
		path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z");
		svg.appendChild(path);
		launcher.appendChild(svg);
	})();
	var badge = el("span", { "class": "badge", hidden: "" });
	launcher.appendChild(badge);
	var panel = el("div", { "class": "panel", id: "bayge-panel", role: "dialog",
				"aria-modal": "false", "aria-busy": "true", hidden: "" });
	var header = el("header");
	var title = el("h2", { id: "bayge-title" }, T.title);
	var closeBtn = el("button", { type: "button", "aria-label": T.close }, "×");
	header.appendChild(title);
	header.appendChild(closeBtn);
	panel.setAttribute("aria-labelledby", "bayge-title");
	var status = el("div", { "class": "status", role: "status", hidden: "" });
	var log = el("div", { "class": "log", role: "log", "aria-live": "polite",
			      "aria-label": T.log, tabindex: "0" });
	var typing = el("div", { "class": "typing", hidden: "" }, T.typing);
	var form = el("form", { novalidate: "" });
	var label = el("label", { "class": "sr", "for": "bayge-text" }, T.label);
	var input = el("textarea", { id: "bayge-text", rows: "1", placeholder: T.placeholder,
				     maxlength: "2000" });
	var sendBtn = el("button", { type: "submit" }, T.send);
	form.appendChild(label);
	form.appendChild(input);
	form.appendChild(sendBtn);
	[header, status, log, typing, form].forEach(function (x) { panel.appendChild(x); });
	root.appendChild(launcher);
	root.appendChild(panel);

	var settings = null, token = saved.token || null, sock = null, cursor = null;
	var msgs = {}, nodes = {}, pending = saved.pending || [], seq = 0, backoff = 1000;
	var started = false, unread = 0, typingTimer = null, lastTyping = 0, refused = false;
	var maxAgentId = 0, readSent = 0;

	function setColor(c) {
		host.style.setProperty("--c", c || "#1f5fbf");
	}
	setColor(null);

	function save() {
		store(false, { token: token, pending: pending, prechat: saved.prechat });
	}

	function showStatus(text) {
		status.textContent = text || "";
		if (text)
			status.removeAttribute("hidden");
		else
			status.setAttribute("hidden", "");
	}

	function bubble(m) {
		var kind = m.author === "visitor" ? "visitor" : (m.author || "agent");
		var n = el("div", { "class": "msg " + kind });
		var who = el("span", { "class": "who" },
			     kind === "visitor" ? T.you : kind === "ai" ? T.ai : T.agent);
		n.appendChild(who);
		n.appendChild(document.createTextNode(m.text == null ? "—" : String(m.text)));
		if (kind === "visitor")
			n.appendChild(el("span", { "class": "meta" }, ""));
		return n;
	}

	function setMeta(n, text) {
		var meta = n.querySelector(".meta");
		if (meta)
			meta.textContent = text;
	}

	function scrollDown() {
		log.scrollTop = log.scrollHeight;
	}

	/* a message from the hub: new, or a change of one shown (edit, status) */
	function showMessage(m) {
		var key = m.id ? "id:" + m.id : null;
		var local = m.client_id ? "c:" + m.client_id : null;
		var n = (key && nodes[key]) || (local && nodes[local]);
		if (!n && m.author === "visitor" && !m.client_id) {
			/* our own send seen live before its ack: the oldest unbound one of that text */
			for (var i = 0; i < pending.length; i++) {
				var p = pending[i];
				if (!p.id && p.text === m.text && nodes["c:" + p.client_id]) {
					n = nodes["c:" + p.client_id];
					p.id = m.id;
					break;
				}
			}
		}
		if (n) {
			var fresh = bubble(m);
			if (m.author === "visitor")
				setMeta(fresh, n.querySelector(".meta") ?
					n.querySelector(".meta").textContent || T.sent : T.sent);
			log.replaceChild(fresh, n);
			n = fresh;
		} else {
			n = bubble(m);
			if (m.author === "visitor")
				setMeta(n, T.sent);
			log.appendChild(n);
			if (m.author !== "visitor" && panel.hasAttribute("hidden")) {
				unread++;
				badge.textContent = String(unread);
				badge.removeAttribute("hidden");
				launcher.setAttribute("aria-label", T.open + " (" + unread + ")");
			}
		}
		if (key)
			nodes[key] = n;
		if (local)
			nodes[local] = n;
		msgs[m.id] = m;
		if (m.author !== "visitor" && m.id > maxAgentId)
			maxAgentId = m.id;
		scrollDown();
		markRead();
	}

	function markRead() {
		if (panel.hasAttribute("hidden") || document.hidden || maxAgentId <= readSent ||
		    !sock || sock.readyState !== 1)
			return;
		readSent = maxAgentId;
		sock.send(JSON.stringify({ type: "read", id: maxAgentId }));
	}

	function wsUrl() {
		return HUB.replace(/^http/, "ws") + "/ws/visitor/" + encodeURIComponent(CHANNEL);
	}

	function flushPending() {
		pending.forEach(function (p) {
			if (!p.acked && sock && sock.readyState === 1)
				sock.send(JSON.stringify({ type: "send", client_id: p.client_id,
							   text: p.text }));
		});
	}

	function connect() {
		if (refused || !token)
			return;
		sock = new WebSocket(wsUrl(), "bayge.visitor.v1");
		sock.onopen = function () {
			var auth = { type: "auth", token: token };
			if (cursor != null)
				auth.after = cursor;
			sock.send(JSON.stringify(auth));
		};
		sock.onmessage = function (e) {
			var f;
			try { f = JSON.parse(e.data); } catch (x) { return; }
			if (f.cursor != null && f.type !== "ready" && (cursor == null || f.cursor > cursor) &&
			    cursor != null)
				cursor = f.cursor;
			switch (f.type) {
			case "ready":
				cursor = f.cursor;
				backoff = 1000;
				showStatus(null);
				flushPending();
				markRead();
				break;
			case "message":
				showMessage(f.message);
				break;
			case "status":
				if (msgs[f.id])
					msgs[f.id].status = f.status;
				break;
			case "seen":
				Object.keys(nodes).forEach(function (k) {
					if (k.slice(0, 2) === "c:")
						setMeta(nodes[k], T.seen);
				});
				break;
			case "typing":
				typing.removeAttribute("hidden");
				clearTimeout(typingTimer);
				typingTimer = setTimeout(function () { typing.setAttribute("hidden", ""); }, 4000);
				break;
			case "ack":
				pending.forEach(function (p) {
					if (p.client_id === f.client_id) {
						p.acked = true;
						if (f.id && !nodes["id:" + f.id])
							nodes["id:" + f.id] = nodes["c:" + p.client_id];
					}
				});
				pending = pending.filter(function (p) { return !p.acked; });
				save();
				break;
			case "error":
				if (f.client_id) {
					pending = pending.filter(function (p) { return p.client_id !== f.client_id; });
					save();
					if (nodes["c:" + f.client_id])
						setMeta(nodes["c:" + f.client_id], T.failed + ": " + f.message);
				}
				break;
			}
		};
		sock.onclose = function (e) {
			sock = null;
			if (e.code === 1008 && e.reason !== "auth timeout") {
				/* the token is refused (the channel's secret changed): a new visitor;
				 * (an auth frame that came too late, on a slow link, is no refusal) */
				token = null;
				save();
				if (++seq > 3) {
					refused = true;
					showStatus(T.refused);
					return;
				}
				start(true);
				return;
			}
			showStatus(pick(settings && settings.offline) || T.offline);
			setTimeout(connect, backoff);
			backoff = Math.min(backoff * 2, 30000);
		};
	}

	function session(extra, done) {
		var body = {};
		if (USER_ID) {
			body.user_id = USER_ID;
			body.user_hash = USER_HASH || "";
		} else if (token) {
			body.token = token;
		}
		for (var k in extra || {})
			body[k] = extra[k];
		fetch(HUB + "/webchat/" + encodeURIComponent(CHANNEL) + "/session", {
			method: "POST", mode: "cors", credentials: "omit",
			headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
		}).then(function (r) {
			return r.json().then(function (j) { return { ok: r.ok, status: r.status, j: j }; });
		}).then(function (r) {
			if (!r.ok) {
				if (r.status === 401 && token && !USER_ID) {
					token = null;
					save();
					return session(extra, done);
				}
				refused = true;
				panel.removeAttribute("aria-busy");
				showStatus(T.refused);
				return;
			}
			token = r.j.token;
			settings = r.j.settings || {};
			save();
			done();
		}).catch(function () {
			showStatus(pick(settings && settings.offline) || T.offline);
			setTimeout(function () { session(extra, done); }, backoff);
			backoff = Math.min(backoff * 2, 30000);
		});
	}

	function applySettings() {
		panel.removeAttribute("aria-busy");
		setColor(settings.color);
		title.textContent = pick(settings.title) || T.title;
		var g = pick(settings.greeting);
		if (g && !log.querySelector(".greeting")) {
			var n = el("div", { "class": "msg greeting" });
			n.appendChild(el("span", { "class": "who" }, T.agent));
			n.appendChild(document.createTextNode(g));
			log.insertBefore(n, log.firstChild);
		}
	}

	function prechatForm(then) {
		var f = el("form", { "class": "pre" });
		var h = el("p", {}, T.prechat);
		var ln = el("label", {}, T.name);
		var name = el("input", { type: "text", autocomplete: "name", maxlength: "100" });
		var lp = el("label", {}, T.phone);
		var phone = el("input", { type: "tel", autocomplete: "tel", maxlength: "32" });
		var go = el("button", { type: "submit" }, T.start);
		ln.appendChild(name);
		lp.appendChild(phone);
		[h, ln, lp, go].forEach(function (x) { f.appendChild(x); });
		form.setAttribute("hidden", "");
		panel.insertBefore(f, form);
		name.focus();
		f.addEventListener("submit", function (e) {
			e.preventDefault();
			var extra = {};
			if (name.value.trim())
				extra.name = name.value.trim();
			if (phone.value.trim())
				extra.phone = phone.value.trim();
			session(extra, function () {
				saved.prechat = true;
				save();
				panel.removeChild(f);
				form.removeAttribute("hidden");
				input.focus();
				then();
			});
		});
	}

	function start(again) {
		if (started && !again)
			return;
		started = true;
		session(null, function () {
			applySettings();
			if (settings.prechat && !saved.prechat && !USER_ID && !panel.hasAttribute("hidden"))
				prechatForm(connect);
			else
				connect();
		});
	}

	function open() {
		panel.removeAttribute("hidden");
		launcher.setAttribute("aria-expanded", "true");
		unread = 0;
		badge.setAttribute("hidden", "");
		launcher.setAttribute("aria-label", T.close);
		start(false);
		input.focus();
		scrollDown();
		markRead();
	}

	function close() {
		panel.setAttribute("hidden", "");
		launcher.setAttribute("aria-expanded", "false");
		launcher.setAttribute("aria-label", T.open);
		launcher.focus();
	}

	launcher.addEventListener("click", function () {
		if (panel.hasAttribute("hidden"))
			open();
		else
			close();
	});
	closeBtn.addEventListener("click", close);
	panel.addEventListener("keydown", function (e) {
		if (e.key === "Escape")
			close();
	});
	input.addEventListener("keydown", function (e) {
		if (e.key === "Enter" && !e.shiftKey) {
			e.preventDefault();
			form.requestSubmit ? form.requestSubmit() : sendNow();
		}
	});
	input.addEventListener("input", function () {
		var now = Date.now();
		if (sock && sock.readyState === 1 && now - lastTyping > 2000) {
			lastTyping = now;
			sock.send(JSON.stringify({ type: "typing" }));
		}
	});
	document.addEventListener("visibilitychange", markRead);

	function sendNow() {
		var text = input.value.replace(/^\s+|\s+$/g, "");
		if (!text)
			return;
		var id = Date.now().toString(36) + Math.random().toString(36).slice(2, 10);
		var p = { client_id: id, text: text };
		pending.push(p);
		save();
		var n = bubble({ author: "visitor", text: text });
		setMeta(n, "…");
		nodes["c:" + id] = n;
		log.appendChild(n);
		scrollDown();
		input.value = "";
		if (sock && sock.readyState === 1)
			sock.send(JSON.stringify({ type: "send", client_id: id, text: text }));
	}

	form.addEventListener("submit", function (e) {
		e.preventDefault();
		sendNow();
	});

	function mount() {
		document.body.appendChild(host);
		/* a returning visitor (or one with unsent messages) is connected at once: their
		 * answers arrive with the panel closed (the badge counts them) */
		if (token || USER_ID)
			start(false);
	}
	if (document.body)
		mount();
	else
		document.addEventListener("DOMContentLoaded", mount);
})();
