"""retrace: reconstruct the development process behind repositories, and pretrain on it.

Stages, one sub-package each, in pipeline order: `repo` (ingest, analysis, order), `agents`
(main agent and sub-agents), `llm` (backends), `refine` (reasoning search), `data` (artifacts,
export), `training` (continued pretraining), `evaluation`.
"""

__version__ = "0.1.0"
