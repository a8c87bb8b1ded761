"""tests/integration/test_burst.py - a batched webhook of many messages: every item is
stored once, and the burst of events it causes reaches an agent that sends nothing at all
(libwebsockets 4.1.6 can stall server-pushed bursts until the next I/O: INTEGRATION.md).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import whatsapp  # noqa: E402
from support.case import HubTestCase  # noqa: E402

MESSAGES = 300


class Burst(HubTestCase):
    def batch(self, h, n, bad=()):
        """One signed body of n text messages from n senders; indexes in bad lack an id."""
        ch = self.channel(h)
        body, _ = whatsapp.text_body(ch["account_id"], "x")
        doc = json.loads(body)
        value = doc["entry"][0]["changes"][0]["value"]
        value["contacts"], value["messages"] = [], []
        for i in range(n):
            wa_id = "7701%07d" % i
            value["contacts"].append({"profile": {"name": "Customer %d" % i}, "wa_id": wa_id})
            msg = {"from": wa_id, "id": whatsapp.new_wamid(), "timestamp": "1749416383",
                   "type": "text", "text": {"body": "burst message %d" % i}}
            if i in bad:
                del msg["id"]
            value["messages"].append(msg)
        raw = json.dumps(doc, ensure_ascii=False).encode()
        return raw, whatsapp.sign(raw, ch["app_secret"])

    def test_burst_reaches_a_silent_agent_and_batch_is_stored_once(self):
        h = self.start_hubd(overrides={"http.body_max": 4 << 20})
        agent = self.agent(h)
        body, sig = self.batch(h, MESSAGES, bad={7})
        r = self.post_webhook(h, "demo-whatsapp", body, sig)
        self.assertEqual(r.status, 200, r)
        reply = json.loads(r.body)
        self.assertEqual((reply["stored"], reply["bad"]), (MESSAGES - 1, 1), reply)
        self.assertEqual(self.count("messages"), MESSAGES - 1)
        # the agent only reads: every message.created arrives, in id order
        texts, last_id = [], 0
        while len(texts) < MESSAGES - 1:
            ev = agent.recv_json()
            self.assertGreater(ev["id"], last_id)
            last_id = ev["id"]
            if ev["event"] == "message.created":
                texts.append(ev["data"]["text"])
        self.assertEqual(texts, ["burst message %d" % i for i in range(MESSAGES) if i != 7])
        # the same body again (Meta retries) stores nothing new
        r = self.post_webhook(h, "demo-whatsapp", body, sig)
        self.assertEqual(json.loads(r.body)["duplicates"], MESSAGES - 1)
        self.assertEqual(self.count("messages"), MESSAGES - 1)
