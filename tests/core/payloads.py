"""Exact payloads of servers that cannot run here, each with where its shape is documented.

llama-server payloads are also checked against the real server by the integration tests.
"""

from __future__ import annotations

# --- llama-server (ggml-org/llama.cpp, tools/server) -------------------------------------------

# tools/server/server-common.cpp format_error_response + server-task.cpp (n_prompt_tokens, n_ctx)
# + server-context.cpp (message format string).
LLAMA_CONTEXT_OVERFLOW = (
    b'{"error":{"code":400,"message":"request (13392 tokens) exceeds the available context size '
    b'(8192 tokens), try increasing it","type":"exceed_context_size_error",'
    b'"n_prompt_tokens":13392,"n_ctx":8192}}'
)

# tools/server/server-context.cpp: a prompt longer than the context in a task whose prompt
# cannot be split (embeddings, reranking); the same type in other words.
LLAMA_EMBEDDING_CONTEXT_OVERFLOW = (
    b'{"error":{"code":400,"message":"input (608 tokens) is larger than the max context size '
    b'(512 tokens). skipping","type":"exceed_context_size_error","n_prompt_tokens":608,'
    b'"n_ctx":512}}'
)

# tools/server/server-http.cpp: /health and every route while the model loads; README /health.
LLAMA_LOADING = b'{"error":{"message":"Loading model","type":"unavailable_error","code":503}}'

# tools/server/server-http.cpp: a missing or wrong key.
LLAMA_INVALID_KEY = (
    b'{"error":{"message":"Invalid API Key","type":"authentication_error","code":401}}'
)

# ggml-org/llama.cpp#20198 (build 8233): arguments as a JSON object instead of a string.
LLAMA_OBJECT_ARGUMENTS = (
    b'{"id":"chatcmpl-1","object":"chat.completion","created":1760000000,"model":"qwen3",'
    b'"choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant",'
    b'"content":"","tool_calls":[{"type":"function","id":"call_1","function":{"name":"read_file",'
    b'"arguments":{"path":"/etc/hosts"}}}]}}],'
    b'"usage":{"completion_tokens":12,"prompt_tokens":40,"total_tokens":52,'
    b'"prompt_tokens_details":{"cached_tokens":32}}}'
)

# llama-server before ggml-org/llama.cpp#19361: usage without prompt_tokens_details; the tokens
# reused from the prompt cache only in timings.cache_n (server_slot_stats::to_json).
LLAMA_CACHE_IN_TIMINGS = (
    b'{"id":"chatcmpl-2","object":"chat.completion","created":1760000000,"model":"qwen3",'
    b'"choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant",'
    b'"content":"Hi"}}],"usage":{"completion_tokens":1,"prompt_tokens":1500,'
    b'"total_tokens":1501},"timings":{"cache_n":1472,"prompt_n":28,"prompt_ms":70.1,'
    b'"prompt_per_token_ms":2.5,"prompt_per_second":399.4,"predicted_n":1,'
    b'"predicted_ms":3.2,"predicted_per_token_ms":3.2,"predicted_per_second":312.5}}'
)

# ggml-org/llama.cpp#12279 (build 4856): tool_call.id returned empty (fixed by PR #12292).
LLAMA_EMPTY_IDS = (
    b'{"id":"chatcmpl-2","object":"chat.completion","created":1741000000,"model":"qwen2.5-coder",'
    b'"choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant",'
    b'"content":null,"tool_calls":['
    b'{"type":"function","function":{"name":"a","arguments":"{}"},"id":""},'
    b'{"type":"function","function":{"name":"b","arguments":"{\\"x\\":1}"},"id":""}]}}]}'
)

# tools/server/server-task.cpp to_json_oaicompat_chat_stream(): finish chunk, then usage in a
# separate chunk with "choices": [] (stream_options.include_usage), timings on the last chunk;
# ": " keep-alive comments are sent while a long prompt is processed.
LLAMA_STREAM = (
    b'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}],'
    b'"created":1760000000,"id":"chatcmpl-3","model":"tiny","system_fingerprint":"b6000-abc",'
    b'"object":"chat.completion.chunk"}\n\n'
    b": keep-alive\n\n"
    b'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":"Hello"}}],'
    b'"created":1760000000,"id":"chatcmpl-3","model":"tiny","object":"chat.completion.chunk"}\n\n'
    b'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":" there"}}],'
    b'"created":1760000000,"id":"chatcmpl-3","model":"tiny","object":"chat.completion.chunk"}\n\n'
    b'data: {"choices":[{"finish_reason":"stop","index":0,"delta":{}}],"created":1760000000,'
    b'"id":"chatcmpl-3","model":"tiny","object":"chat.completion.chunk"}\n\n'
    b'data: {"choices":[],"created":1760000000,"id":"chatcmpl-3","model":"tiny",'
    b'"system_fingerprint":"b6000-abc","object":"chat.completion.chunk",'
    b'"usage":{"completion_tokens":2,"prompt_tokens":9,"total_tokens":11},'
    b'"timings":{"cache_n":0,"prompt_n":9,"prompt_ms":1.5,"predicted_n":2,"predicted_ms":0.8}}\n\n'
    b"data: [DONE]\n\n"
)

# Current builds: an error inside a 200 stream is `data: {"error": {...}}`
# (tools/server handlers, format_oai_sse(json {{"error", res_json}})).
LLAMA_STREAM_ERROR_EVENT = (
    b'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":"Partial"}}],'
    b'"id":"chatcmpl-4","model":"tiny","object":"chat.completion.chunk"}\n\n'
    b'data: {"error":{"code":500,"message":"slot crashed","type":"server_error"}}\n\n'
)

# Older builds: the non-standard `error:` SSE field (tools/server/utils.hpp server_sent_event).
LLAMA_STREAM_ERROR_FIELD = (
    b'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":"Partial"}}],'
    b'"id":"chatcmpl-5","model":"tiny","object":"chat.completion.chunk"}\n\n'
    b'error: {"code":400,"message":"the request exceeds the available context size. try '
    b'increasing the context size or enable context shift","type":"invalid_request_error"}\n\n'
)

# tools/server README: /v1/models entry (owned_by "llamacpp", meta.n_ctx_train).
LLAMA_MODELS = (
    b'{"object":"list","data":[{"id":"tiny","object":"model","created":1760000000,'
    b'"owned_by":"llamacpp","meta":{"vocab_type":2,"n_vocab":512,"n_ctx_train":4096,'
    b'"n_embd":64,"n_params":100000,"size":2800000}}]}'
)
# /props of the project's own llama-server (llama-cpp-python 0.3.36 sources), trimmed: the build
# number is 1 because the sdist carries no git history.
LLAMA_PROPS = (
    b'{"default_generation_settings":{"n_ctx":2048},"total_slots":2,"model_alias":"tiny",'
    b'"build_info":"b1-0c1e570","is_sleeping":false}'
)

# tools/server/README.md POST /tokenize (with_pieces false): {"tokens": [123, 456, 789]}.
LLAMA_TOKENIZE = b'{"tokens":[123,456,789]}'

# tools/server/README.md POST /apply-template: {"prompt": ...}, the chat template applied
# (server-context.cpp post_apply_template); a ChatML prompt ending in the generation prompt.
LLAMA_APPLY_TEMPLATE = (
    b'{"prompt":"<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n'
    b'<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n"}'
)

# --- vLLM (vllm-project/vllm) -------------------------------------------------------------------

# vllm/entrypoints/openai/serving_engine.py before v0.10.1: flat error body (PR #22099 nested it).
VLLM_OLD_CONTEXT_OVERFLOW = (
    b'{"object":"error","message":"This model\'s maximum context length is 2048 tokens. However, '
    b"you requested 2723 tokens (1699 in the messages, 1024 in the completion). Please reduce "
    b'the length of the messages or completion.","type":"BadRequestError","param":null,"code":400}'
)

# vllm/renderers/params.py TokenizeParams._token_len_check (the "You passed" wording).
VLLM_NEW_CONTEXT_OVERFLOW = (
    b'{"error":{"message":"You passed 9000 input tokens and requested 0 output tokens. However, '
    b"the model's context length is only 8192 tokens, resulting in a maximum input length of "
    b"8192 tokens. Please reduce the length of the input prompt. (parameter=input_tokens, "
    b'value=9000)","type":"BadRequestError","param":"input_tokens","code":400}}'
)

# vllm/renderers/params.py TokenizeParams: a text refused before tokenizing, counted in
# characters (as quoted in higress-group/hiclaw#346).
VLLM_CHARACTERS_CONTEXT_OVERFLOW = (
    b'{"error":{"message":"You passed 74655 input characters and requested 32000 output tokens. '
    b"However, the model's context length is only 32000 tokens, resulting in a maximum input "
    b"length of 0 tokens (at most 0 characters). Please reduce the length of the input prompt. "
    b'(parameter=input_text, value=74655)","type":"BadRequestError","param":"input_text",'
    b'"code":400}}'
)

# vllm/entrypoints/openai/serving_chat.py: tools without --enable-auto-tool-choice (not overflow).
VLLM_NO_TOOL_PARSER = (
    b'{"error":{"message":"\\"auto\\" tool choice requires --enable-auto-tool-choice and '
    b'--tool-call-parser to be set","type":"BadRequestError","param":null,"code":400}}'
)

# vLLM PR #27752 / #33402: newer versions carry reasoning in `reasoning`.
VLLM_REASONING = (
    b'{"id":"chatcmpl-6","object":"chat.completion","model":"qwen3","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"Paris.","reasoning":"The capital of France."},'
    b'"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":8,'
    b'"total_tokens":18,"completion_tokens_details":{"reasoning_tokens":5}}}'
)

# vllm/entrypoints/openai/protocol.py ModelCard: owned_by "vllm", max_model_len.
VLLM_MODELS = (
    b'{"object":"list","data":[{"id":"qwen3","object":"model","created":1760000000,'
    b'"owned_by":"vllm","root":"Qwen/Qwen3-8B","parent":null,"max_model_len":32768,'
    b'"permission":[]}]}'
)

# vllm/entrypoints/serve/tokenize/protocol.py TokenizeResponse (count, max_model_len, tokens,
# token_strs; entrypoints/openai/protocol.py in older versions).
VLLM_TOKENIZE = (
    b'{"count":4,"max_model_len":32768,"tokens":[151644,872,198,13048],"token_strs":null}'
)

# --- TGI (huggingface/text-generation-inference) ------------------------------------------------

# router/src/validation.rs + server.rs: 422 with {"error", "error_type": "validation"}.
TGI_CONTEXT_OVERFLOW = (
    b'{"error":"Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. '
    b'Given: 17 `inputs` tokens and 10000 `max_new_tokens`","error_type":"validation"}'
)

# router/src/validation.rs ValidationError::InputLength: a prompt over --max-input-tokens.
TGI_INPUT_LENGTH_OVERFLOW = (
    b'{"error":"Input validation error: `inputs` must have less than 4096 tokens. Given: 5000",'
    b'"error_type":"validation"}'
)

# huggingface/text-generation-inference#2019: SSE lines are `data:` without a space.
TGI_STREAM = (
    b'data:{"id":"","object":"text_completion","created":1710508199,'
    b'"model":"HuggingFaceH4/zephyr-7b-beta","system_fingerprint":"1.4.3-sha-e6bb3ff",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":"I"},"logprobs":null,'
    b'"finish_reason":null}]}\n\n'
    b'data:{"id":"","object":"text_completion","created":1710508199,'
    b'"model":"HuggingFaceH4/zephyr-7b-beta","system_fingerprint":"1.4.3-sha-e6bb3ff",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":" am"},"logprobs":null,'
    b'"finish_reason":"eos_token"}]}\n\n'
    b"data:[DONE]\n\n"
)

# --- Ollama (ollama/ollama, openai/openai.go) ---------------------------------------------------

# ollama/ollama#7881 (before v0.4.7): streamed tool calls without `index`, each whole in one chunk.
OLLAMA_STREAM_NO_INDEX = (
    b'data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1732800000,'
    b'"model":"llama3.1","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":'
    b'{"role":"assistant","content":"","tool_calls":['
    b'{"id":"call_a","type":"function","function":{"name":"get_current_weather",'
    b'"arguments":"{\\"location\\":\\"Boston, MA\\"}"}},'
    b'{"id":"call_b","type":"function","function":{"name":"get_current_weather",'
    b'"arguments":"{\\"location\\":\\"Paris\\"}"}}]},"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1732800000,'
    b'"model":"llama3.1","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":'
    b'{"role":"assistant","content":""},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)

# ollama/ollama#15457 (0.20.x): every call with index 0 but its own id, one chunk per call.
OLLAMA_STREAM_INDEX_ZERO = (
    b'data: {"id":"chatcmpl-9","object":"chat.completion.chunk","model":"qwen3","choices":'
    b'[{"index":0,"delta":{"role":"assistant","content":"","tool_calls":[{"id":"abc123",'
    b'"index":0,"type":"function","function":{"name":"read","arguments":'
    b'"{\\"filePath\\":\\"a.txt\\"}"}}]},"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-9","object":"chat.completion.chunk","model":"qwen3","choices":'
    b'[{"index":0,"delta":{"role":"assistant","content":"","tool_calls":[{"id":"def456",'
    b'"index":0,"type":"function","function":{"name":"read","arguments":'
    b'"{\\"filePath\\":\\"b.txt\\"}"}}]},"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-9","object":"chat.completion.chunk","model":"qwen3","choices":'
    b'[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"tool_calls"}]}\n\n'
    b"data: [DONE]\n\n"
)

# ollama/ollama openai/openai.go floatsToBase64: float32 little-endian, base64 ([1.0, 0.5]).
OLLAMA_BASE64_EMBEDDINGS = (
    b'{"object":"list","data":[{"object":"embedding","embedding":"AACAPwAAAD8=","index":0}],'
    b'"model":"nomic","usage":{"prompt_tokens":2,"total_tokens":2}}'
)

# --- LocalAI (mudler/LocalAI) -------------------------------------------------------------------

# LocalAI core/http/endpoints/openai streaming worker: every tool call gets the response id
# (mudler/LocalAI#9722); mudler/LocalAI#9927: zero usage when streaming with tools.
LOCALAI_STREAM_SHARED_ID = (
    b'data: {"id":"LipwoT0puK4","object":"chat.completion.chunk","model":"qwen","choices":'
    b'[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,'
    b'"id":"LipwoT0puK4","type":"function","function":{"name":"a","arguments":"{}"}}]}}]}\n\n'
    b'data: {"id":"LipwoT0puK4","object":"chat.completion.chunk","model":"qwen","choices":'
    b'[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":1,'
    b'"id":"LipwoT0puK4","type":"function","function":{"name":"b","arguments":"{}"}}]}}]}\n\n'
    b'data: {"id":"LipwoT0puK4","object":"chat.completion.chunk","model":"qwen","choices":'
    b'[{"index":0,"delta":{},"finish_reason":"tool_calls"}],'
    b'"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}\n\n'
    b"data: [DONE]\n\n"
)

# --- LM Studio (lmstudio-ai/lmstudio-bug-tracker) -----------------------------------------------

# lmstudio-bug-tracker#546 / dyad-sh/dyad#925: flat-string error body, HTTP 400.
LMSTUDIO_CONTEXT_OVERFLOW = (
    b'{"error":"Trying to keep the first 14538 tokens when context the overflows. However, the '
    b"model is loaded with context length of only 2048 tokens, which is not enough. Try to load "
    b'the model with a larger context length, or provide a shorter input"}'
)

# --- SGLang (sgl-project/sglang) ----------------------------------------------------------------

# python/sglang/srt/managers/tokenizer_manager.py: flat error body, HTTP 400.
SGLANG_CONTEXT_OVERFLOW = (
    b'{"object":"error","message":"The input (400013 tokens) is longer than the model\'s context '
    b'length (262144 tokens).","type":"BadRequestError","param":null,"code":400}'
)

# python/sglang/srt/entrypoints/openai/protocol.py TokenizeResponse (tokens, count,
# max_model_len), answered by serving_tokenize.py for a string prompt.
SGLANG_TOKENIZE = b'{"tokens":[9707,11,1879],"count":3,"max_model_len":131072}'

# --- OpenAI --------------------------------------------------------------------------------------

# The `context_length_exceeded` code as quoted in simonw/llm#15.
OPENAI_CONTEXT_OVERFLOW = (
    b'{"error":{"message":"This model\'s maximum context length is 4097 tokens. However, your '
    b'messages resulted in 27770 tokens. Please reduce the length of the messages.",'
    b'"type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}'
)

# The newer wording, told only by the code (as mocked in openai/codex's tests).
OPENAI_CONTEXT_WINDOW_OVERFLOW = (
    b'{"error":{"code":"context_length_exceeded","message":"Your input exceeds the context '
    b'window of this model. Please adjust your input and try again."}}'
)

# --- version replies (health checks) -------------------------------------------------------------
# vLLM GET /version: vllm/entrypoints/serve/instrumentator/basic.py show_version.
VLLM_VERSION = b'{"version":"0.11.0"}'
# Ollama GET /api/version: docs.ollama.com api-reference/get-version (VersionResponse).
OLLAMA_VERSION = b'{"version":"0.12.6"}'
# LocalAI GET /version: core/http/routes/localai.go; internal/version.go PrintableVersion().
LOCALAI_VERSION = b'{"version":"v3.6.0 (0c1e5700)"}'
# TGI GET /info: router/src/lib.rs `pub struct Info`, trimmed.
TGI_INFO = (
    b'{"model_id":"meta-llama/Llama-3.1-8B-Instruct","model_sha":null,"model_pipeline_tag":'
    b'"text-generation","max_concurrent_requests":128,"max_input_tokens":8191,'
    b'"max_total_tokens":8192,"validation_workers":2,"version":"3.3.6","sha":"a1b2c3d",'
    b'"docker_label":"sha-a1b2c3d"}'
)
# SGLang GET /get_server_info: python/sglang/srt/entrypoints/http_server.py get_server_info(),
# trimmed; the real reply holds every ServerArgs field, api_key included.
SGLANG_SERVER_INFO = (
    b'{"model_path":"Qwen/Qwen3-8B","api_key":"sk-server-secret","context_length":null,'
    b'"internal_states":[{}],"version":"0.5.3"}'
)
