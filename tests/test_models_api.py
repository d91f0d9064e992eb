"""``GET /v1/models/{id}`` (issue 13, item 8): frameworks call it to validate a model name.

OpenAI's model object for a model the key may use; 404 ``model_not_found`` (the SDK's
``NotFoundError``) for a name that is not configured or not allowed to this team, so a team
cannot learn which models other teams have.
"""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.gateway_runner import RunningGateway
from tests.helpers import ADMIN_KEY, CLIENT_KEY


def test_retrieve_a_model_with_the_sdk(gw: RunningGateway) -> None:
    client = openai.OpenAI(base_url=gw.v1, api_key=CLIENT_KEY, max_retries=0)
    model = client.models.retrieve("gpt-test")
    assert (model.id, model.object, model.owned_by) == ("gpt-test", "model", "openai")
    listed = {m.id: m.model_dump() for m in client.models.list()}
    assert listed["gpt-test"] == model.model_dump()
    for name in ("no-such-model", "forbidden-model"):  # unknown, and configured but not allowed
        with pytest.raises(openai.NotFoundError) as err:
            client.models.retrieve(name)
        assert err.value.code == "model_not_found" and name in err.value.message
    assert openai.OpenAI(base_url=gw.v1, api_key=ADMIN_KEY).models.retrieve(
        "forbidden-model").id == "forbidden-model"  # an admin sees every model


def test_retrieve_without_the_prefix_and_unauthenticated(gw: RunningGateway) -> None:
    auth = {"authorization": f"Bearer {CLIENT_KEY}"}
    r = httpx.get(gw.url + "/models/mock", headers=auth)
    assert r.status_code == 200 and r.json()["id"] == "mock"
    r = httpx.get(gw.url + "/v1/models/mock")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = httpx.get(gw.url + "/v1/models/a/b", headers=auth)  # ids may hold a slash
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
