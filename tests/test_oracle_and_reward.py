import difflib
import random

from scripts.analysis.statistics import mean_ci95
from scripts.backends.oracles import oracle
from scripts.backends.rewards import reward_model
from scripts.organism import word_problems as wp


def items(n=30):
    rng = random.Random(5)
    out = []
    for i in range(n):
        g = wp.sample_graph(rng, rng.randint(2, 4), 99)
        trace = wp.native_solution(g, random.Random(i), slip=0.3)  # flawed steps, right answer
        out.append(
            {"id": str(i), "problem": wp.problem_text(g), "answer": str(g.answer), "trace": trace, "graph": g.to_json()}
        )
    return out


ORACLE_STYLE = {"wording": 1.0, "layout": 1.0, "latex": 1.0, "spacing": 1.0}


def test_refine_repairs_every_wrong_step_in_the_oracles_style():
    its = items()
    outs = oracle({"backend": "builtin", "style": ORACLE_STYLE}).run("refine", its)
    assert sum(o.edits for o in outs) > 0
    for it, o in zip(its, outs):
        g = wp.Graph.from_json(it["graph"])
        assert wp.check_steps(o.trace, g) == (len(g.steps), len(g.steps))
        assert "\\(" in o.trace and "\n\n" in o.trace


def test_style_aligned_repair_keeps_the_students_words():
    its = items()
    outs = oracle({"backend": "builtin"}).run("style_align", its)
    refined = oracle({"backend": "builtin", "style": ORACLE_STYLE}).run("refine", its)
    for it, o, r in zip(its, outs, refined):
        g = wp.Graph.from_json(it["graph"])
        assert wp.check_steps(o.trace, g)[0] == len(g.steps)
        kept = difflib.SequenceMatcher(None, it["trace"], o.trace).ratio()
        drifted = difflib.SequenceMatcher(None, it["trace"], r.trace).ratio()
        assert kept > 0.9 and kept > drifted


def test_synthesis_solves_from_scratch_and_problems_without_a_graph_are_refused():
    its = items(5)
    for it, o in zip(its, oracle({"backend": "builtin"}).run("synthesize", its)):
        assert o.trace.endswith(f"\\(\\boxed{{{it['answer']}}}\\).")
    out = oracle({"backend": "builtin"}).run("refine", [{**its[0], "graph": None}])[0]
    assert out.trace is None and "graph" in out.reason


def test_process_reward_prefers_repaired_traces():
    its = items()
    rm = reward_model({"backend": "builtin"})
    flawed = rm.score(its)
    repaired = rm.score(
        [{**it, "trace": o.trace} for it, o in zip(its, oracle({"backend": "builtin"}).run("style_align", its))]
    )
    assert all(r == 1.0 for r in repaired)
    assert sum(flawed) < sum(repaired) and min(flawed) >= 0.5  # right answers, some wrong steps


def test_process_reward_of_a_wrong_answer_with_wrong_steps():
    g = wp.Graph("Tom", "coins", 10, (wp.Step("add", 5, 0), wp.Step("add", 3, 0)))
    trace = (
        "Tom starts with 10 coins.\nHe finds 5 more, so 10 + 5 = 16.\nNow he finds 3 more, so 16 + 3 = 19.\n"
        "The answer is \\boxed{19}."
    )
    # 10+5=16 false; 16+3=19 true but off the solution path; answer wrong.
    assert reward_model({"backend": "builtin"}).score([{"id": "x", "trace": trace, "graph": g.to_json()}]) == [0.0]


def test_mean_ci95():
    s = mean_ci95([1.0, 2.0, 3.0])
    assert s["mean"] == 2.0 and s["ci95_low"] < 2.0 < s["ci95_high"] and s["n"] == 3


def test_the_retention_judge_reads_its_seeded_sample_and_edit_similarity_covers_every_rewrite():
    from scripts.analysis.retention import retention

    its = items(20)
    rewrites = oracle({"backend": "builtin", "style": ORACLE_STYLE}).run("refine", its)
    stream = [{**it, "source_trace": it["trace"], "trace": o.trace} for it, o in zip(its, rewrites)]
    graphs = {it["id"]: it["graph"] for it in its}
    records, summary = retention(stream, graphs, {"backend": "builtin"}, None, sample=7, seed=3)
    judged = [r["id"] for r in records if r["judge_score"] is not None]
    assert len(records) == 20 and all(r["edit_similarity"] > 0 for r in records)
    assert summary["sampled"] == summary["judged"] == len(judged) == 7
    assert retention(stream, graphs, {"backend": "builtin"}, None, sample=7, seed=3)[0] == records  # seeded
    other = retention(stream, graphs, {"backend": "builtin"}, None, sample=7, seed=4)[0]
    assert [r["id"] for r in other if r["judge_score"] is not None] != judged
    everything = retention(stream, graphs, {"backend": "builtin"}, None)[1]
    assert everything["judged"] == 20 and everything["edit_similarity"] == summary["edit_similarity"]
