"""A small but real OpenID Connect issuer on loopback for tests: discovery, JWKS, token minting
(RS256 and ES256) and key rotation. It counts JWKS fetches so tests can see the cache work."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any

    @classmethod
    def new(cls, alg: str) -> SigningKey:
        if alg == "RS256":
            private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif alg == "ES256":
            private = ec.generate_private_key(ec.SECP256R1())
        else:
            raise ValueError(alg)
        return cls(kid=uuid.uuid4().hex[:12], alg=alg, private=private)

    def jwk(self) -> dict[str, Any]:
        algo = RSAAlgorithm if self.alg == "RS256" else ECAlgorithm
        data = json.loads(algo.to_jwk(self.private.public_key()))
        return {**data, "kid": self.kid, "alg": self.alg, "use": "sig"}


@dataclass
class LocalIssuer:
    """Serves ``/.well-known/openid-configuration`` and ``/jwks``; ``mint`` signs tokens."""

    audience: str = "media-gateway-api"
    keys: list[SigningKey] = field(default_factory=list)
    jwks_fetches: int = 0
    discovery_fetches: int = 0

    def start(self) -> LocalIssuer:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    issuer.discovery_fetches += 1
                    body = {
                        "issuer": issuer.url,
                        "jwks_uri": issuer.url + "/jwks",
                        "token_endpoint": issuer.url + "/token",
                        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                        "grant_types_supported": ["client_credentials", "authorization_code"],
                    }
                elif self.path == "/jwks":
                    issuer.jwks_fetches += 1
                    body = {"keys": [k.jwk() for k in issuer.keys]}
                else:
                    self.send_error(404)
                    return
                raw = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        if not self.keys:
            self.keys.append(SigningKey.new("RS256"))
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def rotate(self, alg: str = "RS256", *, keep_old: bool = False) -> SigningKey:
        """Publish a new signing key (optionally keeping the old ones in the set)."""
        key = SigningKey.new(alg)
        self.keys = [*self.keys, key] if keep_old else [key]
        return key

    def mint(
        self,
        sub: str,
        scopes: list[str],
        *,
        key: SigningKey | None = None,
        ttl: int = 300,
        **claims: Any,
    ) -> str:
        key = key or self.keys[-1]
        now = int(time.time())
        payload = {
            "iss": self.url,
            "aud": self.audience,
            "sub": sub,
            "iat": now,
            "exp": now + ttl,
            **({"scope": " ".join(scopes)} if scopes else {}),
            **claims,
        }
        return jwt.encode(
            payload, key.private, algorithm=key.alg, headers={"kid": key.kid, "typ": "at+jwt"}
        )
