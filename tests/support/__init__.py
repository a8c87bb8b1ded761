"""tests/support - the integration-test harness of Bayge Hub (stdlib only).

Private PostgreSQL and Redis servers, hubd/hubctl runners, HTTP and websocket clients,
WhatsApp webhook builder and signer, JWT minter, and HubTestCase that ties them together.
Knows nothing about hubd's internals: it drives the real binaries on loopback.
"""
