"""tests/support/stream.py - a steady stream of signed WhatsApp webhooks that behaves like
the platform: each webhook is POSTed until it gets 200, again after any other answer (503
while the database is away) or a failed connection, a short pause between tries. Every
attempt is recorded (start, end, status) so a test can check what was acknowledged, when
503s happened, and count retries. Used by the failover test and `make chaos`."""
import os
import threading
import time

from . import httpc, whatsapp

RETRY_PAUSE = 0.1


class Webhook:
    def __init__(self, wamid, body, signature):
        self.wamid = wamid
        self.body = body
        self.signature = signature
        self.attempts = []   # (t_start, t_end, status); status None: no HTTP answer
        self.acked = None    # time of the 200

    @property
    def first_sent(self):
        return self.attempts[0][0] if self.attempts else None


class WebhookStream:
    """senders threads, each sending one webhook at a time to ports (round robin) for
    channel ch (a hubd config channel: id, account_id, app_secret). contacts: how many
    senders (wa_id) the messages come from; interval: pause after each acknowledged one."""

    def __init__(self, ports, ch, senders=2, contacts=5, interval=0.01, timeout=5.0):
        self.ports = list(ports)
        self.ch = ch
        self.nsenders = senders
        self.contacts = ["7701%07d" % (1000000 + i) for i in range(contacts)]
        self.interval = interval
        self.timeout = timeout
        self.hooks = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.give_up = None
        self.threads = []
        self.n = 0

    def _new(self):
        with self.lock:
            self.n += 1
            n = self.n
        text = "chaos %d %s" % (n, os.urandom(4).hex())
        body, wamid = whatsapp.text_body(self.ch["account_id"], text,
                                         wa_id=self.contacts[n % len(self.contacts)])
        h = Webhook(wamid, body, whatsapp.sign(body, self.ch["app_secret"]))
        with self.lock:
            self.hooks.append(h)
        return h

    def _post(self, h, port):
        t0 = time.monotonic()
        try:
            r = httpc.request(port, "POST", "/webhooks/whatsapp/" + self.ch["id"],
                              body=h.body, timeout=self.timeout,
                              headers={"Content-Type": "application/json",
                                       "X-Hub-Signature-256": h.signature})
            status = r.status
        except OSError:
            status = None
        t1 = time.monotonic()
        h.attempts.append((t0, t1, status))
        if status == 200:
            h.acked = t1
        return status

    def _run(self, k):
        turn = k
        while not self.stopping.is_set():
            h = self._new()
            while True:
                turn += 1
                if self._post(h, self.ports[turn % len(self.ports)]) == 200:
                    break
                if self.give_up and time.monotonic() > self.give_up:
                    return
                time.sleep(RETRY_PAUSE)
            time.sleep(self.interval)

    def start(self):
        for k in range(self.nsenders):
            t = threading.Thread(target=self._run, args=(k,), daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self, drain=60.0):
        """Stops making new webhooks; the pending ones are retried up to drain seconds."""
        self.give_up = time.monotonic() + drain
        self.stopping.set()
        for t in self.threads:
            t.join(drain + 30)

    # --- figures ---
    def acked(self):
        return [h for h in self.hooks if h.acked]

    def statuses(self):
        """{status: count} over every attempt (None: no HTTP answer)."""
        out = {}
        for h in self.hooks:
            for _, _, s in h.attempts:
                out[s] = out.get(s, 0) + 1
        return out

    def failed_attempts(self):
        """(t_start, t_end, status) of every attempt that did not get 200, in time order."""
        return sorted(a for h in self.hooks for a in h.attempts if a[2] != 200)

    def figures(self):
        st = self.statuses()
        return {"webhooks": len(self.hooks), "acked": len(self.acked()),
                "attempts": sum(st.values()), "200": st.get(200, 0), "503": st.get(503, 0),
                "502": st.get(502, 0), "no_answer": st.get(None, 0),
                "other": sum(v for k, v in st.items() if k not in (200, 502, 503, None)),
                "retries": sum(max(0, len(h.attempts) - 1) for h in self.hooks)}

    def recovered_after(self, t):
        """Seconds from t to the end of the first attempt started after t that got 200
        (None if none did)."""
        ends = [a[1] for h in self.hooks for a in h.attempts if a[0] >= t and a[2] == 200]
        return (min(ends) - t) if ends else None

    def wait_acked(self, count, timeout):
        """Waits until count more webhooks than now have been acknowledged."""
        want = len(self.acked()) + count
        end = time.monotonic() + timeout
        while len(self.acked()) < want:
            if time.monotonic() > end:
                raise TimeoutError("only %d of %d webhooks acknowledged; statuses %s"
                                   % (len(self.acked()), want, self.statuses()))
            time.sleep(0.05)
