#!/bin/bash
# Synthesis at the paper's scale on a SLURM cluster: start a Ray cluster over the job's nodes, serve the policy
# (recipes/serving/qwen3_8b_policy.yaml: Qwen3-8B replicas behind one OpenAI-compatible address on Ray Serve
# LLM), wait until it answers, then run synthesis on Ray (executor: ray) against it. The synthesis actors hold
# the scorer (Llama-3-8B, vLLM in-process, one GPU each) on the GPUs the replicas leave free. open-r1's
# generation scripts follow the same pattern.
#
#   sbatch --nodes 4 recipes/llama3-8b/slurm_synthesize.sh
#   sbatch --nodes 4 recipes/llama3-8b/slurm_synthesize.sh --refine_max_steps_per_repo 8   # flags go to synthesize.py
#
# A killed job resubmitted with the same command resumes: the plan (<output_dir>/plan/) is reused and finished
# repositories are skipped. Needs requirements.txt and requirements-gpu.txt installed on every node (the same
# path, e.g. a shared venv activated below) and the output directory on a shared filesystem.
#SBATCH --job-name=retrace-synthesize
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=1
#SBATCH --gres=gpu:8
#SBATCH --exclusive
#SBATCH --time=48:00:00
#SBATCH --output=runs/slurm/%x-%j.out
set -euo pipefail

RECIPE=${RECIPE:-recipes/llama3-8b/synthesize_repo2agent_search.yaml}
SERVE_CONFIG=${SERVE_CONFIG:-recipes/serving/qwen3_8b_policy.yaml}
VENV=${VENV:-.venv}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
POLICY_REPLICAS=${POLICY_REPLICAS:-4}   # the serve config's min_replicas: GPUs the policy holds from the start
RAY_PORT=6379
SERVE_PORT=8000
export RAY_USAGE_STATS_ENABLED=0
# shellcheck disable=SC1091
source "$VENV/bin/activate"

mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
head_node=${nodes[0]}
head_ip=$(srun --nodes=1 --ntasks=1 -w "$head_node" hostname --ip-address | awk '{print $1}')
echo "Ray head: $head_node ($head_ip), $((${#nodes[@]})) nodes"

srun --nodes=1 --ntasks=1 -w "$head_node" \
    ray start --head --node-ip-address="$head_ip" --port=$RAY_PORT --num-gpus="$GPUS_PER_NODE" --block &
sleep 15
for node in "${nodes[@]:1}"; do
    srun --nodes=1 --ntasks=1 -w "$node" \
        ray start --address="$head_ip:$RAY_PORT" --num-gpus="$GPUS_PER_NODE" --block &
done
export RAY_ADDRESS="$head_ip:$RAY_PORT"
until ray status --address "$RAY_ADDRESS" 2>/dev/null | grep -q "GPU"; do sleep 5; done

# the policy server: replicas on Ray Serve, one address; synthesis starts only once it answers
serve run --non-blocking "$SERVE_CONFIG"
base_url="http://$head_ip:$SERVE_PORT/v1"
for _ in $(seq 1 360); do
    curl -sf "$base_url/models" | grep -q '"id"' && break
    sleep 10
done
curl -sf "$base_url/models" > /dev/null || { echo "the policy server at $base_url never answered" >&2; exit 1; }

# every GPU the replicas leave is one model worker holding its scorer (Llama-3-8B on vLLM, in-process)
model_workers=$(( ${#nodes[@]} * GPUS_PER_NODE - POLICY_REPLICAS ))
python synthesize.py --config "$RECIPE" --executor ray --ray_address "$RAY_ADDRESS" \
    --ray_model_workers "$model_workers" --ray_gpus_per_model_worker 1 --num_workers 32 \
    --policy_base_url "$base_url" --policy_model qwen3-8b \
    --proposer_base_url "$base_url" --proposer_model qwen3-8b "$@"
