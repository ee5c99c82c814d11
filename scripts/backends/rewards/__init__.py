"""Perceived quality: a reward per trace, behind one interface:
``reward_model(spec, name).score(items) -> list[float]`` with items ``{id, problem, answer, trace,
graph}``. A backend may also expose ``details`` (one dict per item, written next to its reward)
and ``info`` (written into the stream's summary).

Backends (``REWARD_MODELS``, chosen by ``rewards.<name>.backend``):
- ``builtin``: the organism's process reward (``scripts.organism.reward``);
- learned reward models through transformers (``learned``): ``sequence_classifier``
  (Skywork-Reward style), ``outcome_reward`` (Qwen2.5-Math-RM style) and ``process_reward``
  (Qwen2.5-Math-PRM style) and ``token_logit`` (Nemotron-Reward style: a causal LM read at one
  token). torch and transformers are imported only when a config names one.
"""

from scripts.infrastructure.registry import Registry

REWARD_MODELS = Registry("reward backend")


@REWARD_MODELS.register("builtin")
def _builtin():
    from scripts.organism.reward import ProcessReward

    return ProcessReward


@REWARD_MODELS.register("sequence_classifier")
def _sequence_classifier():
    from scripts.backends.rewards.learned import SequenceClassifierReward

    return SequenceClassifierReward


@REWARD_MODELS.register("outcome_reward")
def _outcome_reward():
    from scripts.backends.rewards.learned import OutcomeReward

    return OutcomeReward


@REWARD_MODELS.register("process_reward")
def _process_reward():
    from scripts.backends.rewards.learned import ProcessReward

    return ProcessReward


@REWARD_MODELS.register("token_logit")
def _token_logit():
    from scripts.backends.rewards.learned import TokenLogitReward

    return TokenLogitReward


def reward_model(spec: dict, name: str = "reward"):
    return REWARD_MODELS.load(spec.get("backend"), f"rewards.{name}.backend")(spec, name)
