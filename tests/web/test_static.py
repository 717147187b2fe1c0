"""The console's page: `/` is index.html with the security headers, cached only by validation; assets are
long-lived; only GET and HEAD; same origin only (no CORS headers)."""

from __future__ import annotations

from importlib import resources

import pytest

from communities.web.app import load_static


@pytest.fixture(scope="module")
def database_url(tmp_path_factory):
    """Static files do not touch the database: SQLite only."""
    return f"sqlite:///{tmp_path_factory.mktemp('db')}/communities.db"


INDEX = resources.files("communities.web").joinpath("static", "index.html").read_bytes()


def assert_security_headers(answer) -> None:
    policy = answer.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy, policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, policy
    assert "frame-ancestors 'none'" in policy, policy
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize("path", ["/", "/index.html"])
def test_index_is_served_with_security_headers(console, path):
    answer = console.get(path, headers={"origin": "https://elsewhere.example"})
    assert answer.status_code == 200
    assert answer.content == INDEX
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["cache-control"] == "no-cache"
    assert_security_headers(answer)

    revalidated = console.get(path, headers={"if-none-match": answer.headers["etag"]})
    assert revalidated.status_code == 304 and revalidated.content == b""
    head = console.head(path)
    assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == str(len(INDEX))


def test_api_answers_carry_the_security_headers_and_no_cors(console):
    answer = console.post(
        "/communities.v1.Users/GetSelf",
        content=b"{}",
        headers={"content-type": "application/json", "origin": "https://elsewhere.example"},
    )
    assert answer.status_code == 401
    assert_security_headers(answer)
    preflight = console.options("/communities.v1.Users/GetSelf", headers={"origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in preflight.headers


def test_unknown_paths_and_methods(console):
    assert console.get("/nope").status_code == 404
    assert console.get("/assets/missing.js").status_code == 404
    assert console.get("/../pyproject.toml").status_code == 404
    posted = console.post("/", content=b"x")
    assert posted.status_code == 405 and posted.headers["allow"] == "GET, HEAD"


def test_assets_are_immutable_and_typed(tmp_path):
    """Built assets (content-hashed names under assets/) are cached for a year; index.html is revalidated."""
    static = tmp_path / "pkg" / "static"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_text("<!doctype html>")
    (static / "assets" / "index-abc123.js").write_text("export {}")
    (static / "assets" / "index-abc123.css").write_text("body{}")
    (tmp_path / "pkg" / "__init__.py").write_text("")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        files = load_static("pkg")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("pkg", None)
    assert files["/"] is files["/index.html"] and files["/"].cache_control == b"no-cache"
    script = files["/assets/index-abc123.js"]
    assert script.cache_control == b"public, max-age=31536000, immutable"
    assert script.content_type == b"text/javascript; charset=utf-8"
    assert files["/assets/index-abc123.css"].content_type == b"text/css; charset=utf-8"
