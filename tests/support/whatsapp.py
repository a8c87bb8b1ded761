"""tests/support/whatsapp.py - WhatsApp Cloud API webhook bodies shaped exactly like
tests/fixtures/whatsapp/text.json, and the X-Hub-Signature-256 signer.

Meta: X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the app secret>.
"""
import copy
import hashlib
import hmac
import json
import os
import time

from . import util

_TEMPLATE = json.loads(util.fixture("whatsapp/text.json"))


def new_wamid():
    """A fresh, realistic-looking message id."""
    return "wamid.HBgLNzcwMTEyMzQ1NjcVAgASGBQz" + os.urandom(10).hex().upper() + "AA=="


def text_body(phone_number_id, text, wa_id="77011234567", name="Aigerim", wamid=None,
              ts=None):
    """The raw bytes of a one-message text webhook (compact JSON, UTF-8, as Meta sends).
    Returns (body, wamid)."""
    doc = copy.deepcopy(_TEMPLATE)
    value = doc["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = phone_number_id
    value["contacts"][0]["profile"]["name"] = name
    value["contacts"][0]["wa_id"] = wa_id
    msg = value["messages"][0]
    msg["from"] = wa_id
    msg["id"] = wamid or new_wamid()
    msg["timestamp"] = str(int(ts if ts is not None else time.time()))
    msg["text"]["body"] = text
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), msg["id"]


def sign(body, app_secret, upper=False):
    """The X-Hub-Signature-256 header value for body."""
    mac = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return "sha256=" + (mac.upper() if upper else mac)


def headers(body, app_secret, upper=False):
    """Request headers of a signed webhook POST."""
    return {"Content-Type": "application/json",
            "X-Hub-Signature-256": sign(body, app_secret, upper)}
