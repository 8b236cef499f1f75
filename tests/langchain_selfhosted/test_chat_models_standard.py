"""LangChain's standard unit suite for `ChatSelfHosted` (no network: nothing here is sent)."""

from __future__ import annotations

import json
import os
from typing import Any
from unittest import mock

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.load import dumpd, load
from langchain_tests.unit_tests import ChatModelUnitTests
from syrupy.assertion import SnapshotAssertion

from langchain_selfhosted import ChatSelfHosted


class TestChatSelfHostedUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatSelfHosted

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "qwen3", "base_url": "http://127.0.0.1:8080"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        env = {
            "SELFHOSTED_BASE_URL": "http://gpu-box.internal:8000/v1",
            "SELFHOSTED_MODEL": "qwen3",
            "SELFHOSTED_API_KEY": "test",
        }
        expected = {
            "base_url": "http://gpu-box.internal:8000/v1",
            "model": "qwen3",
            "api_key": "test",
        }
        return env, {}, expected

    @pytest.mark.xfail(
        reason="langchain-core's load(allowed_objects='all') admits only the classes listed in "
        "langchain-core's own mapping, so no integration outside it can pass; "
        "test_round_trips_through_dumpd_and_load runs the same checks naming the class",
        strict=True,
    )
    def test_serdes(self, model: BaseChatModel, snapshot: SnapshotAssertion) -> None:
        super().test_serdes(model, snapshot)

    @pytest.mark.filterwarnings("ignore:The function `load` is in beta")
    def test_round_trips_through_dumpd_and_load(
        self, model: BaseChatModel, snapshot: SnapshotAssertion
    ) -> None:
        env, _, _ = self.init_from_env_params
        with mock.patch.dict(os.environ, env):
            serialized = dumpd(model)
            assert serialized == snapshot(name="serialized")
            loaded = load(
                serialized,
                valid_namespaces=["langchain_selfhosted"],
                allowed_objects=[ChatSelfHosted],
                secrets_from_env=True,
            )
            assert model.model_dump() == loaded.model_dump()
            assert isinstance(loaded, ChatSelfHosted)
            assert loaded.api_key is not None
            assert loaded.api_key.get_secret_value() == "test"

    def test_serialized_form_holds_no_key(self) -> None:
        model = ChatSelfHosted(**self.chat_model_params, api_key="sk-do-not-dump")
        assert "sk-do-not-dump" not in json.dumps(dumpd(model))
        assert "sk-do-not-dump" not in repr(model)
        assert "sk-do-not-dump" not in str(model.model_dump())
        assert "sk-do-not-dump" not in model.model_dump_json()
