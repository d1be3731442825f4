"""The toy GQA testdev-balanced copy in LLaVA-1.5's layout (written by :func:`write_gqa`).

The writer produces the files of the LLaVA-1.5 evaluation layout (docs/protocol/gqa.md) with
the field names, id types and file-name conventions of the real files, and returns a small stats
dict (question/image counts and the task's chance-level baselines).
"""
from __future__ import annotations

from pathlib import Path


from aligngpt.toy import text as T
from aligngpt.toy.layout import SHORT_ANSWER, Out, majority_rate, unique_ints
from aligngpt.toy.world import Scene, Size, render_scene, rng_for, sample_scene

# --- GQA --------------------------------------------------------------------------------------

# family -> (structural, semantic, detailed) GQA types; 'query' questions are the "open" ones.
GQA_TYPES = {
    "exist": ("verify", "obj", "exist"),
    "verify_color": ("verify", "attr", "verifyAttr"),
    "left_of": ("verify", "rel", "relVerify"),
    "above": ("verify", "rel", "relVerify"),
    "both": ("logical", "obj", "existAnd"),
    "same_color": ("compare", "attr", "twoSame"),
    "choose_color": ("choose", "attr", "chooseAttr"),
    "size": ("choose", "attr", "chooseAttr"),
    "color": ("query", "attr", "queryAttr"),
    "relation_shape": ("query", "rel", "relS"),
    "shape_at": ("query", "cat", "category"),
    "side": ("query", "attr", "positionQuery"),
    "background": ("query", "global", "place"),
}


def _gqa_program(qa: T.QA, scene: Scene, obj_ids: dict) -> list[dict]:
    """A short GQA-style semantic program (select -> operation); informative, not executed."""
    structural, _, _ = GQA_TYPES[qa.family]
    cell = qa.meta.get("object") or qa.meta.get("anchor") or qa.meta.get("a")
    ops: list[dict] = []
    if cell is not None:
        o = next(x for x in scene.objects if x.cell == tuple(cell))
        ops.append({"operation": "select", "dependencies": [], "argument": f"{o.shape} ({obj_ids[o.cell]})"})
    elif "shape" in qa.meta:
        ops.append({"operation": "select", "dependencies": [], "argument": f"{qa.meta['shape']} (-)"})
    else:
        ops.append({"operation": "select", "dependencies": [], "argument": "scene"})
    ops.append({"operation": structural if structural != "query" else "query",
                "dependencies": [0], "argument": qa.family})
    return ops


def write_gqa(root: Path, seed: int, n: int, size: Size = 48) -> dict:
    out = Out(root / "gqa")
    rng = rng_for(seed, "gqa")
    families = list(GQA_TYPES)
    questions: dict[str, dict] = {}
    lines = []
    image_nums = unique_ints(rng, n, 1000, 600000)
    qid_pool = unique_ints(rng, 4 * n, 2_000_000, 210_000_000)
    n_img = 0
    while len(lines) < n:
        scene = sample_scene(rng, n_objects=int(rng.integers(2, 5)))
        image_id = f"n{image_nums[n_img]}"
        obj_ids = {o.cell: str(image_nums[n_img] * 10 + k) for k, o in enumerate(scene.objects)}
        n_img += 1
        out.image(f"data/images/{image_id}.jpg", render_scene(scene, size))
        asked: set[str] = set()
        for _ in range(int(rng.integers(3, 7))):
            if len(lines) >= n:
                break
            fam = families[int(rng.integers(len(families)))]
            qa = T.ask(fam, scene, rng)
            if qa is None or qa.question in asked:
                continue
            asked.add(qa.question)
            qid = str(qid_pool[len(lines)])
            structural, semantic, detailed = GQA_TYPES[fam]
            questions[qid] = {
                "semantic": _gqa_program(qa, scene, obj_ids),
                "entailed": [],
                "equivalent": [qid],
                "question": qa.question,
                "imageId": image_id,
                "isBalanced": True,
                "groups": {"global": None if structural != "query" else qa.family, "local": f"{len(lines) % 20:02d}-{fam}"},
                "answer": qa.answer,
                "semanticStr": f"select: {qa.family}",
                "annotations": {"answer": {}, "question": {}, "fullAnswer": {}},
                "types": {"structural": structural, "semantic": semantic, "detailed": detailed},
                "fullAnswer": f"The answer is {qa.answer}.",
            }
            lines.append({"question_id": qid, "image": f"{image_id}.jpg", "text": qa.question + SHORT_ANSWER,
                          "category": "default"})
    out.jsonl("llava_gqa_testdev_balanced.jsonl", lines)
    out.json("data/testdev_balanced_questions.json", questions)
    binary = [q for q in questions.values() if q["types"]["structural"] != "query"]
    open_ = [q for q in questions.values() if q["types"]["structural"] == "query"]
    # Binary questions have two possible answers; open ones are scored against the blind
    # "always say the most common open answer" baseline.
    maj_open = majority_rate([q["answer"] for q in open_])
    acc = (len(binary) * 0.5 + len(open_) * maj_open) / max(1, len(questions))
    return {"questions": len(lines), "images": out.n_images,
            "chance": {"accuracy": 100 * acc, "binary": 50.0, "open": 100 * maj_open}}
