#!/usr/bin/env python3
"""Prints a token for the notifier's /v1/stream, as an app's backend would mint it for a signed-in
user: a JWT signed with HS256 (the secret of [auth] hs256_secrets), valid for a day.

    demo/token.py SECRET USER [TOPIC_PATTERN ...]     (no pattern: "*", every topic)
"""
import base64
import hashlib
import hmac
import json
import sys
import time


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


def token(secret, user, topics):
    header = b64url(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())
    claims = b64url(json.dumps({'sub': user, 'exp': int(time.time()) + 86400, 'topics': topics}).encode())
    signed = header + '.' + claims
    return signed + '.' + b64url(hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest())


if __name__ == '__main__':
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    print(token(sys.argv[1], sys.argv[2], sys.argv[3:] or ['*']))
