"""ZohoConfig: data centres resolve to Zoho's real hosts; secrets stay redacted."""

from __future__ import annotations

import pytest

from crmbooks.connectors.config import DataCentre, ZohoConfig
from support.connector_fakes import REFRESH, SECRET, config

CREDENTIALS = dict(client_id="cid", client_secret=SECRET, refresh_token=REFRESH)


@pytest.mark.parametrize("dc, api, accounts", [
    ("us", "https://www.zohoapis.com", "https://accounts.zoho.com"),
    ("eu", "https://www.zohoapis.eu", "https://accounts.zoho.eu"),
    ("in", "https://www.zohoapis.in", "https://accounts.zoho.in"),
    ("au", "https://www.zohoapis.com.au", "https://accounts.zoho.com.au"),
    ("cn", "https://www.zohoapis.com.cn", "https://accounts.zoho.com.cn"),
    ("jp", "https://www.zohoapis.jp", "https://accounts.zoho.jp"),
    ("ca", "https://www.zohoapis.ca", "https://accounts.zohocloud.ca"),
    ("sa", "https://www.zohoapis.sa", "https://accounts.zoho.sa"),
])
def test_every_data_centre(dc, api, accounts):
    cfg = ZohoConfig.from_dc(dc, **CREDENTIALS)
    assert (cfg.api_url, cfg.accounts_url) == (api, accounts)
    assert cfg.crm_url == cfg.books_url == api
    assert len(DataCentre) == 8


def test_unknown_data_centre_lists_the_valid_ones():
    with pytest.raises(ValueError, match="us, eu, in"):
        ZohoConfig.from_dc("mars", **CREDENTIALS)


def test_overrides_and_trailing_slashes():
    cfg = config(api_url="http://127.0.0.1:9/", books_api_url="http://127.0.0.1:8/")
    assert cfg.crm_url == "http://127.0.0.1:9" and cfg.books_url == "http://127.0.0.1:8"
    with pytest.raises(ValueError):
        config(api_url="ftp://x")


def test_secrets_are_redacted():
    cfg = config()
    for text in (repr(cfg), str(cfg), cfg.model_dump_json()):
        assert SECRET not in text and REFRESH not in text
    assert cfg.timeout.read == 60 and cfg.timeout.connect == 10
