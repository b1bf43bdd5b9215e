"""The simulated agents: a main agent that plans, sub-agents that read dependencies and write files.

Uses `repo` for grounding, `llm` for model-backed policies and `data` for the trajectory format.
"""

from retrace.agents.config import SimulationArguments
from retrace.agents.policies import ChatPolicy, PolicyRequest, StructuralPolicy, build_policy
from retrace.agents.simulate import SimulationOptions, simulate_repositories

__all__ = [
    "ChatPolicy", "PolicyRequest", "SimulationArguments", "SimulationOptions", "StructuralPolicy", "build_policy",
    "simulate_repositories",
]
