# Python 2.7 driver: scores predictions with the unmodified GT-Vision-Lab/VQA API.
# usage: python2.7 run_vqa_api_py2.py VQA_CHECKOUT CASES.json OUT.json
# CASES.json: [{"id": int, "res": str, "answers": [10 str], "answer_type": str}]
# The API is imported as is from VQA_CHECKOUT (PythonHelperTools/vqaTools/vqa.py and
# PythonEvaluationTools/vqaEvaluation/vqaEval.py). Only the data files are written here, in the
# real VQA v2 layout (answer dicts carry answer, answer_confidence, answer_id 1..10).
import io
import json
import os
import sys
import tempfile

checkout, cases_path, out_path = sys.argv[1:4]
sys.path.insert(0, os.path.join(checkout, 'PythonHelperTools', 'vqaTools'))
sys.path.insert(0, os.path.join(checkout, 'PythonEvaluationTools'))
from vqa import VQA
from vqaEvaluation.vqaEval import VQAEval

cases = json.load(io.open(cases_path, encoding='utf-8'))
anns, qs, res = [], [], []
for c in cases:
    qid = 1000 + c['id']
    anns.append({'question_id': qid, 'image_id': qid, 'question_type': 'what',
                 'answer_type': c['answer_type'], 'multiple_choice_answer': c['answers'][0],
                 'answers': [{'answer': a, 'answer_confidence': 'yes', 'answer_id': j + 1}
                             for j, a in enumerate(c['answers'])]})
    qs.append({'question_id': qid, 'image_id': qid, 'question': 'q?'})
    res.append({'question_id': qid, 'answer': c['res']})
meta = {'info': {}, 'task_type': 'Open-Ended', 'data_type': 'mscoco', 'data_subtype': 'val2014',
        'license': {}}
tmp = tempfile.mkdtemp()
paths = {}
for name, obj in (('ann', dict(meta, annotations=anns)), ('ques', dict(meta, questions=qs)), ('res', res)):
    paths[name] = os.path.join(tmp, name + '.json')
    with open(paths[name], 'w') as f:
        json.dump(obj, f)
vqa = VQA(paths['ann'], paths['ques'])
vqa_res = vqa.loadRes(paths['res'], paths['ques'])
# n = decimals of the API's rounding; 12 keeps per-question scores exact to < 1e-10.
ev = VQAEval(vqa, vqa_res, n=12)
ev.evaluate()
out = {'per_question': [{'id': c['id'], 'score': ev.evalQA[1000 + c['id']]} for c in cases],
       'overall': ev.accuracy['overall'], 'per_answer_type': ev.accuracy['perAnswerType']}
with io.open(out_path, 'w', encoding='utf-8') as f:
    f.write(unicode(json.dumps(out)))
