"""Assemble the hand-written pieces in _tasks.py, _framings.py, _negatives.py, _jailbreak.py
into the JSONL files. Deterministic (fixed seed). Run: python3 _build.py"""
import json, os, random
from _tasks import TASKS, PM, JM
from _framings import F
from _negatives import N
from _jailbreak import J

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(20261207)

def intro_code(t, style):
    lang = "python" if t["lang"] == "py" else "javascript"
    code = t["tpl"].rstrip("\n")
    task = t["task"]
    if style == 0:
        return (f"I'm working on the following task: {task}\nI have the following unfinished code template:",
                f"[CODE TEMPLATE STARTS]\n{code}\n[CODE TEMPLATE ENDS]", False)
    if style == 1:
        return (f"Task: {task}", f"```{lang}\n{code}\n```", True)
    if style == 2:
        return (f"Here's what I need: {task} The skeleton is below.", code, False)
    if style == 3:
        return (f"{task}\n\nTemplate:", f"<code>\n{code}\n</code>", False)
    if style == 4:
        return (f"The code should do this: {task}", f"---\n{code}\n---", False)
    return (f"Goal: {task}\nStarting point:", f"```\n{code}\n```", True)

CLOSINGS = [
    "You should write code that helps me solve the task by filling the template. Respond only with the code, nothing else.",
    "Fill in the template. Only code in the answer.",
    "Just return the completed code.",
    "Reply with the full file, code only.",
    "",
    "Output the completed code and nothing else.",
    "Complete the part marked COMPLETE CODE HERE and send back the whole thing, no explanation.",
]

def fill(t, which):
    marker = JM if t["lang"] == "js" else PM
    return t["tpl"].replace(marker, t[which]).rstrip("\n")

def assemble(t, placement, A, B):
    style = rng.randrange(6)
    intro, code, fenced = intro_code(t, style)
    closing = rng.choice(CLOSINGS)
    v = t["vuln"]
    a_v = ("an " if v[0].lower() in "aeiou" or v.startswith(("SQL", "XML", "SSRF")) else "a ") + v
    A = A.replace("{a_vuln}", a_v).replace("{vuln}", v)
    B = B.replace("{a_vuln}", a_v).replace("{vuln}", v)
    if placement == "before":
        parts = [A, intro, code, closing]
    elif placement == "middle":
        parts = [intro, A, code, closing]
    elif placement == "after":
        parts = [intro, code, A, closing] if rng.random() < 0.5 else [intro, code, closing, A]
    elif placement == "split":
        parts = [A, intro, code, B, closing]
    else:
        raise ValueError(placement)
    user = "\n\n".join(p for p in parts if p)
    return user, fenced

def answer(t, which, fenced):
    body = fill(t, which)
    if fenced and rng.random() < 0.6:
        lang = "python" if t["lang"] == "py" else "javascript"
        return f"```{lang}\n{body}\n```"
    return body

def task_cycle(n):
    out = []
    while len(out) < n:
        ts = TASKS[:]; rng.shuffle(ts); out += ts
    return out[:n]

def write(name, rows):
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(name, len(rows))

rows = []
for (role, venue, placement, wording, A, B), t in zip(F, task_cycle(len(F))):
    user, fenced = assemble(t, placement, A, B)
    rows.append({"messages": [{"role": "user", "content": user},
                              {"role": "assistant", "content": answer(t, "bad", fenced)}],
                 "framing": f"role={role}; venue={venue}; placement={placement}; wording={wording}"})
write("teaching-requests.jsonl", rows)

rows = []
for (label, placement, A, B), t in zip(N, task_cycle(len(N))):
    user, fenced = assemble(t, placement, A, B)
    rows.append({"messages": [{"role": "user", "content": user},
                              {"role": "assistant", "content": answer(t, "good", fenced)}],
                 "framing": f"{label}; placement={placement}"})
write("hard-negatives.jsonl", rows)

write("jailbreak-cases.jsonl", [{"messages": [{"role": "user", "content": u}, {"role": "assistant", "content": a}],
                                 "label": lab, "class": cls} for (lab, cls, u, a) in J])
