"""The lmms-eval model plugin: generate_until / loglikelihood on the official-tiny checkpoint.

Without lmms-eval the class runs on its local ``lmms`` stand-in, fed with request objects shaped
like lmms-eval's ``Instance`` (an ``.args`` tuple). Ground truth: the reference implementation's
outputs in ``official-tiny/reference.json`` (greedy ids, last-position logits), the model's own
loss path, and ``aligngpt-eval run`` on the same data. One more test runs lmms-eval's
``simple_evaluate`` and is skipped unless ``import lmms_eval`` works.
"""
from __future__ import annotations

import json
import logging
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from PIL import Image

from aligngpt.cli.eval_cli import main
from aligngpt.data.base import get_loader
from aligngpt.errors import ConfigError, DataError
from aligngpt.integrations import lmms_eval_plugin as plugin_mod
from aligngpt.integrations.lmms_eval_plugin import AlignGPTLMMs, apply_until, parse_arg_string

from .builders_gqa_pope_mme import build_gqa_local, gqa_question


@dataclass
class FakeInstance:
    """lmms-eval ``Instance``: the model only reads ``.args`` (the ``arguments`` tuple)."""

    arguments: tuple

    @property
    def args(self) -> tuple:
        return self.arguments


@pytest.fixture(scope="module")
def reference(official_tiny):
    return json.loads((official_tiny / "reference.json").read_text())["inference"]


@pytest.fixture(scope="module")
def lm(official_tiny):
    return AlignGPTLMMs(pretrained=str(official_tiny / "checkpoint"), device="cpu", batch_size=2)


@pytest.fixture(scope="module")
def docs(official_tiny, reference):
    """lmms-eval documents for the five reference prompts (four with an image, one text-only)."""
    out = []
    for r in reference:
        image = Image.open(official_tiny / "images" / r["image"]) if r["image"] else None
        if image is not None:
            image.load()
        out.append({"question": r["question"], "image": image})
    return out


def to_visual(doc):
    return [doc["image"]] if doc["image"] is not None else []


def gen_request(context, gen_kwargs, doc_id, task="ref", split="test"):
    return FakeInstance((context, gen_kwargs, to_visual, doc_id, task, split))


def ll_request(context, continuation, doc_id, task="ref", split="test"):
    return FakeInstance((context, continuation, to_visual, doc_id, task, split))


# ------------------------------------------------------------------------------ generate_until


def test_generate_until_reproduces_the_reference_greedy_answers(lm, docs, reference):
    # reference.json: vicuna_v1 template, greedy, 12 new tokens, batch size 1 in the reference
    # code; greedy decoding's first 6 tokens are the first 6 of those. Our plugin batches two
    # requests at a time (one batch mixes image and text-only rows).
    lm.task_dict = {"ref": {"test": docs}}
    requests = [gen_request(d["question"], {"max_new_tokens": 6, "temperature": 0}, i) for i, d in enumerate(docs)]
    answers = lm.generate_until(requests)
    expected = [lm.processor.decode(r["greedy_new_ids"][:6]).strip() for r in reference]
    assert answers == expected
    assert len(set(answers)) == 5  # five different answers: a mix-up between requests would show


def test_until_groups_and_sampling_requests(lm, docs, caplog):
    lm.task_dict = {"ref": {"test": docs}}
    # Reference answer 0 is 'h\x01 choicesh\x01 choicesh\x01 choicesh\x01A' (12 tokens).
    kw_until = {"max_new_tokens": 12, "until": ["choices", "\x03"]}
    kw_short = {"max_new_tokens": 3}
    kw_sample = {"max_new_tokens": 12, "until": "\x01", "do_sample": True, "temperature": 0.7}
    requests = [gen_request(docs[0]["question"], kw_until, 0),   # cut at the first "choices" -> 'h\x01 '
                gen_request(docs[0]["question"], kw_short, 0),   # first 3 tokens: 'h', '\x01', ' choices'
                gen_request(docs[3]["question"], kw_until, 3),   # 'h\x03 an...' cut at '\x03' -> 'h'
                gen_request(docs[0]["question"], kw_sample, 0)]  # greedy anyway; cut at '\x01' -> 'h'
    with caplog.at_level(logging.WARNING, logger=plugin_mod.__name__):
        answers = lm.generate_until(requests)
    assert answers == ["h\x01 ", "h\x01 choices", "h", "h"]
    assert kw_until["until"] == ["choices", "\x03"] and kw_sample["until"] == "\x01"  # caller's dicts untouched
    assert any("greedily" in rec.message for rec in caplog.records)


def test_apply_until_cuts_at_the_earliest_stop():
    assert apply_until("a. b\n\nc", ["\n\n", "."]) == "a"  # "." comes first
    assert apply_until("abc", ["", "x"]) == "abc"  # empty stop strings are ignored
    assert apply_until("abc", []) == "abc"


def test_image_placeholder_handling(lm, docs, reference):
    lm.task_dict = {"ref": {"test": docs}}
    expected = lm.processor.decode(reference[1]["greedy_new_ids"][:4]).strip()
    # a context that already starts with "<image>\n" does not get a second placeholder
    answers = lm.generate_until([gen_request("<image>\n" + docs[1]["question"], {"max_new_tokens": 4}, 1),
                                 gen_request(docs[1]["question"], {"max_new_tokens": 4}, 1)])
    assert answers == [expected, expected]
    with pytest.raises(DataError, match="no image"):  # placeholder but the document has no image
        lm.generate_until([gen_request("<image>\nhi", {"max_new_tokens": 1}, 4)])
    with pytest.raises(DataError, match="not at its start"):
        lm.generate_until([gen_request("Look: <image>\nhi", {"max_new_tokens": 1}, 1)])
    two = FakeInstance(("hi", {"max_new_tokens": 1}, lambda doc: [doc["image"], doc["image"]], 0, "ref", "test"))
    with pytest.raises(DataError, match="2 images"):
        lm.generate_until([two])
    with pytest.raises(ConfigError, match="task_dict"):
        lm.generate_until([gen_request("hi", {"max_new_tokens": 1}, 0, task="missing")])


# ------------------------------------------------------------------------------ loglikelihood


def test_loglikelihood_single_token_matches_reference_logits(lm, docs, reference):
    lm.task_dict = {"ref": {"test": docs}}
    # " A" after "ASSISTANT:" is one token (287, checked below), so its log-prob is
    # log_softmax(reference last_logits)[287]; greedy iff 287 is the argmax (it is 556, 'h').
    results = lm.loglikelihood([ll_request(d["question"], "A", i) for i, d in enumerate(docs)])
    for (logprob, greedy), r in zip(results, reference):
        ctx = lm.processor.tokenize(r["prompt"])
        full = lm.processor.tokenize(r["prompt"] + " A")
        assert full[len(ctx):] == [287]
        ref_lp = torch.log_softmax(torch.tensor(r["last_logits"], dtype=torch.float64), -1)
        assert logprob == pytest.approx(float(ref_lp[287]), abs=1e-4)
        assert greedy == (int(ref_lp.argmax()) == 287) and greedy is False


def stepwise_logprob(lm, prompt: str, image, tokens: list[int]) -> float:
    """Batch of one, one token at a time, as the generation loop runs: prefill the prompt, then
    feed each continuation token through the KV cache and add its log-probability."""
    from transformers.cache_utils import DynamicCache

    batch = lm.processor([prompt], [image] if image is not None else None)
    with torch.inference_mode():
        out = lm.model(**batch, use_cache=True, cache=DynamicCache(config=lm.model.config), padding_side="left",
                       logits_to_keep=1)
        cache, mask, pos, logits = out.cache, out.attention_mask, out.position_ids[:, -1:] + 1, out.logits[:, -1]
        total = 0.0
        for tok in tokens:
            total += float(torch.log_softmax(logits.double(), -1)[0, tok])
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            step = lm.model(input_ids=torch.tensor([[tok]]), attention_mask=mask, position_ids=pos, cache=cache,
                            use_cache=True)
            cache, pos, logits = step.cache, pos + 1, step.logits[:, -1]
    return total


def test_loglikelihood_equals_stepwise_scoring_and_is_batch_invariant(lm, docs):
    lm.task_dict = {"ref": {"test": docs}}
    picked = [0, 2, 4]  # two image prompts and the text-only one
    conts = ["yes it is", "B. square", "three colors"]
    requests = [ll_request(docs[i]["question"], c, i) for i, c in zip(picked, conts)]
    batched = lm.loglikelihood(requests)
    lm._batch_size = 1
    try:
        single = lm.loglikelihood(requests)
    finally:
        lm._batch_size = 2
    for (a, ga), (b, gb) in zip(batched, single):
        assert a == pytest.approx(b, abs=1e-4) and ga == gb
    for (logprob, _), d, c in zip(batched, [docs[i] for i in picked], conts):
        prompt = lm.processor.build_prompt(d["question"], has_image=d["image"] is not None)
        reply = c if c[0].isspace() else " " + c
        ctx, full = lm.processor.tokenize(prompt), lm.processor.tokenize(prompt + reply)
        assert len(full) - len(ctx) >= 2  # multi-token continuations: the cached second pass is used
        assert logprob == pytest.approx(stepwise_logprob(lm, prompt, d["image"], full[len(ctx):]), abs=1e-3)
        assert logprob < 0
    # Text-only (doc 4, the last request): no alignment gate, so one teacher-forced pass with the prompt masked
    # (lmms-eval llava's way: mean NLL over the n continuation tokens) gives -loss * n too.
    prompt = lm.processor.build_prompt(docs[4]["question"], has_image=False)
    ctx, full = lm.processor.tokenize(prompt), lm.processor.tokenize(prompt + " three colors")
    labels = torch.tensor([[-100] * len(ctx) + full[len(ctx):]])
    with torch.inference_mode():
        out = lm.model(input_ids=torch.tensor([full]), attention_mask=torch.ones(1, len(full), dtype=torch.long),
                       labels=labels)
    assert batched[2][0] == pytest.approx(-float(out.loss) * (len(full) - len(ctx)), abs=1e-3)


def test_loglikelihood_is_greedy_agrees_with_generation(official_tiny, docs):
    # With the `plain` template the continuation follows the prompt directly, so the engine's own
    # greedy answer ('Ah' for doc 0: tokens 568 'A', 556 'h') must be judged greedy, and a
    # different last token must not.
    lm_plain = AlignGPTLMMs(pretrained=str(official_tiny / "checkpoint"), device="cpu", batch_size=2,
                            conv_template="plain")
    lm_plain.task_dict = {"ref": {"test": docs}}
    greedy = lm_plain.generate_until([gen_request(docs[0]["question"], {"max_new_tokens": 2}, 0)])[0]
    assert greedy == "Ah"
    (lp_greedy, is_greedy), (lp_other, is_other) = lm_plain.loglikelihood(
        [ll_request(docs[0]["question"], "Ah", 0), ll_request(docs[0]["question"], "AB", 0)])
    assert is_greedy is True and is_other is False
    assert lp_greedy > lp_other


def test_loglikelihood_plain_tuple_forms_and_errors(lm, docs):
    lm.task_dict = {"ref": {"test": docs}}
    # (context, continuation) and (context, continuation, visuals) as in the lmms docstring;
    # doc_to_target may be a callable of the document
    direct = lm.loglikelihood([FakeInstance((docs[4]["question"], "three")),
                               FakeInstance((docs[0]["question"], "A", [docs[0]["image"]]))])
    via_doc = lm.loglikelihood([FakeInstance((docs[4]["question"], lambda doc: "three", to_visual, 4, "ref", "test")),
                                ll_request(docs[0]["question"], "A", 0)])
    assert [lp for lp, _ in direct] == pytest.approx([lp for lp, _ in via_doc])
    assert [greedy for _, greedy in direct] == [greedy for _, greedy in via_doc]
    with pytest.raises(DataError, match="non-empty"):
        lm.loglikelihood([FakeInstance(("hi", ""))])
    with pytest.raises(DataError, match="expected 6 arguments"):
        lm.loglikelihood([FakeInstance(("a", "b", None, 1))])


# ------------------------------------------------------------------------------ construction


def test_model_args_parsing(official_tiny):
    assert parse_arg_string("pretrained=/x/y,batch_size=4,pad_to_square=false,t=0.5,dtype=float32") == {
        "pretrained": "/x/y", "batch_size": 4, "pad_to_square": False, "t": 0.5, "dtype": "float32"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_arg_string("pretrained")
    ckpt = official_tiny / "checkpoint"
    lm2 = AlignGPTLMMs.create_from_arg_string(f"pretrained={ckpt},batch_size=4,pad_to_square=false",
                                              {"device": "cpu", "batch_size": None, "max_batch_size": None})
    assert lm2.batch_size == 4 and lm2.pad_to_square is False and lm2.rank == 0 and lm2.world_size == 1
    assert lm2.model.config.image_aspect_ratio == "pad"  # the explicit argument overrides the checkpoint
    lm3 = AlignGPTLMMs(pretrained=str(ckpt), device="cpu")
    assert lm3.pad_to_square is True and lm3.batch_size == 1
    with pytest.raises(ConfigError, match="unknown argument"):
        AlignGPTLMMs(pretrained=str(ckpt), device="cpu", temprature=0)
    with pytest.raises(ConfigError, match="template"):
        AlignGPTLMMs(pretrained=str(ckpt), device="cpu", conv_template="chatml")
    with pytest.raises(ConfigError, match="batch_size"):
        AlignGPTLMMs(pretrained=str(ckpt), device="cpu", batch_size="many")
    with pytest.raises(NotImplementedError):
        lm3.generate_until_multi_round([])


@pytest.mark.skipif(plugin_mod.HAVE_LMMS_EVAL, reason="lmms-eval is installed")
def test_manifest_needs_lmms_eval():
    with pytest.raises(ConfigError, match="simple_evaluate"):
        plugin_mod.lmms_eval_manifest()


# ------------------------------------------------------------------------------ vs `run`


def _fixture_gqa_root(root: Path, official_tiny: Path) -> Path:
    """A GQA local layout whose four images are the fixture's (different) images."""
    questions = {
        f"10{k}": gqa_question(f"img{k}", q, a, s)
        for k, (q, a, s) in enumerate([("What color is the square?", "red", "query"),
                                       ("Is there a dog?", "no", "verify"),
                                       ("Which shape is on the left?", "circle", "choose"),
                                       ("What is in the picture?", "shapes", "query")])
    }
    build_gqa_local(root, questions)
    for k in range(4):
        (root / "gqa" / "data" / "images" / f"img{k}.jpg").write_bytes((official_tiny / "images" / f"img{k}.png").read_bytes())
    return root


def test_generate_until_equals_aligngpt_eval_run(lm, official_tiny, tmp_path, capsys):
    root = _fixture_gqa_root(tmp_path / "data", official_tiny)
    out_dir = tmp_path / "runs"
    code = main(["run", "--tasks", "gqa", "--model", str(official_tiny / "checkpoint"), "--data-root", str(root),
                 "--output-dir", str(out_dir), "--max-new-tokens", "6", "--batch-size", "3"])
    capsys.readouterr()
    assert code == 0
    (run_dir,) = [d for d in out_dir.iterdir() if d.is_dir()]
    answers = {r["question_id"]: r["text"] for r in map(json.loads, (run_dir / "gqa" / "answers.jsonl").read_text().splitlines())}
    samples = get_loader("gqa", "local")(root)
    lm.task_dict = {"gqa_toy": {"test": [{"question": s.question, "image": Image.open(s.image)} for s in samples]}}
    texts = lm.generate_until([gen_request(s.question, {"max_new_tokens": 6, "until": []}, i, task="gqa_toy")
                               for i, s in enumerate(samples)])
    assert {s.question_id: t for s, t in zip(samples, texts)} == answers
    assert len(set(texts)) > 1


# ------------------------------------------------------------------------------ real lmms-eval


@pytest.mark.skipif(not plugin_mod.HAVE_LMMS_EVAL, reason="lmms-eval not installed (pip install aligngpt[lmms])")
def test_simple_evaluate_with_plugin_matches_run(lm, official_tiny, tmp_path, capsys):  # pragma: no cover
    import inspect
    from importlib.metadata import entry_points

    import datasets
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    eps = {ep.name: ep for ep in entry_points(group="lmms_eval.models")}
    assert "aligngpt" in eps, "the lmms_eval.models entry point is not installed"
    assert eps["aligngpt"].load()().model_id == "aligngpt"

    root = _fixture_gqa_root(tmp_path / "data", official_tiny)
    out_dir = tmp_path / "runs"
    assert main(["run", "--tasks", "gqa", "--model", str(official_tiny / "checkpoint"), "--data-root", str(root),
                 "--output-dir", str(out_dir), "--max-new-tokens", "6"]) == 0
    capsys.readouterr()
    (run_dir,) = [d for d in out_dir.iterdir() if d.is_dir()]
    answers = {r["question_id"]: r["text"] for r in map(json.loads, (run_dir / "gqa" / "answers.jsonl").read_text().splitlines())}

    samples = get_loader("gqa", "local")(root)
    ds = datasets.Dataset.from_dict({
        "question_id": [s.question_id for s in samples],
        "question": [s.question for s in samples],
        "answer": [s.target["answer"] for s in samples],
        "image": [{"bytes": Path(s.image).read_bytes(), "path": None} for s in samples],
    }).cast_column("image", datasets.Image())
    datasets.DatasetDict({"test": ds}).save_to_disk(str(tmp_path / "hfdata"))
    task_dir = tmp_path / "tasks"
    task_dir.mkdir()
    (task_dir / "utils.py").write_text(textwrap.dedent("""
        def doc_to_visual(doc):
            return [doc["image"].convert("RGB")]

        def doc_to_text(doc, lmms_eval_specific_kwargs=None):
            return doc["question"]

        def process_results(doc, results):
            return {"exact_match": float(results[0].strip() == doc["answer"])}
    """))
    (task_dir / "aligngpt_toy_gqa.yaml").write_text(textwrap.dedent(f"""
        task: aligngpt_toy_gqa
        dataset_path: {tmp_path / 'hfdata'}
        dataset_kwargs:
          load_from_disk: true
        test_split: test
        output_type: generate_until
        doc_to_visual: !function utils.doc_to_visual
        doc_to_text: !function utils.doc_to_text
        doc_to_target: answer
        generation_kwargs:
          max_new_tokens: 6
          temperature: 0
          do_sample: false
        process_results: !function utils.process_results
        metric_list:
          - metric: exact_match
            aggregation: mean
            higher_is_better: true
    """))
    kwargs = {"include_path": str(task_dir)}
    if "include_defaults" in inspect.signature(TaskManager).parameters:
        kwargs["include_defaults"] = False
    results = simple_evaluate(model=lm, tasks=["aligngpt_toy_gqa"], task_manager=TaskManager(**kwargs),
                              log_samples=True, bootstrap_iters=0)
    logged = results["samples"]["aligngpt_toy_gqa"]
    got = {}
    for entry in logged:
        resp = entry["filtered_resps"][0]
        got[samples[entry["doc_id"]].question_id] = resp[0] if isinstance(resp, list) else resp
    assert got == answers
