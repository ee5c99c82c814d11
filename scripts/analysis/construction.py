"""What holds in the organism by construction, and so is labelled and never counted as evidence:
the built-in oracle repairs every step from the computation graph that the built-in process reward
checks (C1, perceived quality, with that reward), and the built-in Style-Aligned stream is SLM-RFT
with only its wrong numbers fixed (C4, the repair)."""

SLM_RFT, REFINED, ALIGNED = "slm_rft", "oracle_refined", "style_aligned"


def by_construction(stream_specs: dict, oracle_specs: dict, reward_specs: dict) -> dict[str, dict[str, str]]:
    """Claims that hold by construction of the organism, with why: ``{"C1": {reward: why},
    "C4": {"": why}}``. Such claims are labelled and never counted as evidence."""
    oracles = {s: oracle_specs.get(v.get("oracle"), {}) for s, v in stream_specs.items() if v["kind"] == "oracle"}
    out: dict[str, dict[str, str]] = {"C1": {}, "C4": {}}
    if oracles and all(o.get("backend") == "builtin" for o in oracles.values()):
        for name, r in reward_specs.items():
            if r.get("backend") == "builtin":
                out["C1"][name] = (
                    "the built-in oracle repairs every step from the computation graph that the built-in "
                    "process reward checks, and that reward ignores format"
                )
    aligned = oracles.get(ALIGNED)
    if aligned and aligned.get("backend") == "builtin" and stream_specs[ALIGNED].get("task") == "style_align":
        out["C4"][""] = (
            "the built-in Style-Aligned stream is SLM-RFT with only its wrong numbers fixed, so it trains like SLM-RFT"
        )
    return out
