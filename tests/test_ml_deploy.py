"""`deploy` goes by what a node has loaded (its profile), not by the stored `model_state`, which still says
DEPLOYED after a node restart until ML Commons' auto-redeploy reaches the model."""

from __future__ import annotations

import pytest

from lsr.backends.opensearch.ml import ML, deploy


class FakeNode:
    """The ML Commons calls `deploy` makes, against one node whose stored state says DEPLOYED."""

    def __init__(self, loaded: bool, loads_on_deploy: bool = True):
        self.loaded, self.loads_on_deploy, self.calls = loaded, loads_on_deploy, []
        self.transport = self

    def perform_request(self, method: str, path: str, body=None) -> dict:
        self.calls.append((method, path))
        if path == f"{ML}/profile/models/m1":
            models = {"m1": {"model_state": "DEPLOYED"}} if self.loaded else {}
            return {"nodes": {"n1": {"models": models}}}
        if path == f"{ML}/models/m1/_deploy":
            return {"task_id": "t1"}
        if path == f"{ML}/tasks/t1":
            self.loaded = self.loads_on_deploy
            return {"state": "COMPLETED"}
        if path == f"{ML}/models/m1":
            return {"model_state": "DEPLOYED"}  # stale after a restart: never consulted
        raise AssertionError(f"unexpected request {method} {path}")


def test_a_model_the_node_has_not_loaded_is_deployed_although_stored_as_deployed():
    node = FakeNode(loaded=False)
    deploy(node, "m1")
    assert ("POST", f"{ML}/models/m1/_deploy") in node.calls and node.loaded


def test_a_loaded_model_is_not_deployed_again():
    node = FakeNode(loaded=True)
    deploy(node, "m1")
    assert node.calls == [("GET", f"{ML}/profile/models/m1")]


def test_a_deploy_that_never_loads_is_an_error_naming_the_model():
    with pytest.raises(RuntimeError, match="m1 was deployed but no node loaded it"):
        deploy(FakeNode(loaded=False, loads_on_deploy=False), "m1", timeout=0.2)
