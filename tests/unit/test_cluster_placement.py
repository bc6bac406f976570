"""Where the inference pool puts its actors: one per GPU, else the configured CPU actors."""

from engine.cluster.inference import actor_placement
from engine.config import EngineSettings


def test_inference_actors_follow_the_gpus_of_the_cluster():
    settings = EngineSettings(inference_actors=3, inference_actor_cpus=0.5)
    assert actor_placement(settings, {"CPU": 16, "GPU": 4}) == (4, {"num_gpus": 1, "num_cpus": 1})
    assert actor_placement(settings, {"CPU": 16}) == (3, {"num_cpus": 0.5})
    assert actor_placement(settings.replace(use_gpus="never"), {"CPU": 2, "GPU": 1}) == (3, {"num_cpus": 0.5})
