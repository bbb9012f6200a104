"""The local MPS-compatible HTTP service: the same API as Alibaba's `mts` endpoint, served by the engine.

`engine.service.auth` verifies both request signature styles the official SDKs send (RPC v1 HMAC-SHA1 and
ACS3-HMAC-SHA256) and builds Alibaba's error bodies.
"""
