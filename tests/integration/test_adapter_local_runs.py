"""Local runs with a Custom Moderation adapter from the data dir (`--adapter ARN`): the CLI's
`modengine moderate`, the notebook client and engine.batch score a video's frames with it,
flag its positive stretch, and name the adapter in their result JSON (ProjectVersion).

The adapter is trained here by the engine's own training code (engine/cluster/adapter_training.py,
fed the colour test double's features) and stored where a server's training puts it
(engine.cluster.adapter_file), exactly as a server on that data dir would leave it.
"""

from __future__ import annotations

import json

import pytest

from engine.cluster import AdapterExample, AdapterTrainingRequest, adapter_file, train_adapter
from engine.config import EngineSettings
from engine.video.image import ImageLimits
from models.adapter import model_identity, outputs_and_features
from tests.doubles.colour_classifier import INPUT_SIZE, ColourTestDoubleClassifier
from tests.integration.api_fixtures import TEST_DOUBLE_MODEL
from tests.integration.test_api_adapters import LABEL, picture
from tests.media import make_colour_video

pytestmark = [pytest.mark.integration, pytest.mark.ray]

ARN = "arn:aws:rekognition:us-east-1:123456789012:project/local/version/v1/1700000000000"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(settings, the data dir's adapter ARN, a video whose middle third is red)."""
    root = tmp_path_factory.mktemp("adapter-local")
    classifier = ColourTestDoubleClassifier()
    examples = tuple(
        AdapterExample(f"s3://data/{colour}{number}.png", picture(colour, seed),
                       (LABEL,) if colour == "red" else (), testing=number >= 6)
        for colour, base in (("red", 0), ("blue", 100), ("green", 200), ("white", 300))
        for number, seed in enumerate(range(base, base + 8)))
    result = train_adapter(
        AdapterTrainingRequest(((LABEL, ""),), examples, 50.0),
        lambda frames: outputs_and_features(classifier, frames)[1], INPUT_SIZE,
        ImageLimits(10**7, 10_000, 10**8), model_identity(classifier))
    assert result.f1 == 1.0
    settings = EngineSettings(data_dir=root / "data", model=TEST_DOUBLE_MODEL, segment_length_s=2)
    path = adapter_file(settings.data_dir, ARN)
    path.parent.mkdir(parents=True)
    path.write_bytes(result.adapter_file)
    video = root / "videos" / "thirds.mp4"
    video.parent.mkdir()
    make_colour_video(video, [("blue", 3), ("red", 3), ("green", 3)])
    return settings, video


def flagged(result: dict) -> list[tuple[int, int]]:
    return [(d["StartTimestampMillis"], d["EndTimestampMillis"])
            for d in result["ModerationLabels"] if d["ModerationLabel"]["Name"] == LABEL]


def test_the_cli_client_and_batch_apply_the_adapter_and_name_it(trained, ray_session, capsys,
                                                                 tmp_path):
    from engine.batch import BatchRequest, run_batch
    from engine.cli import main
    from engine.client import close, moderate

    settings, video = trained
    assert main(["moderate", str(video), "--adapter", ARN, "--json", "--model",
                 TEST_DOUBLE_MODEL, "--data-dir", str(settings.data_dir),
                 "--aggregate-by", "SEGMENTS"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert cli["ProjectVersion"] == ARN
    assert flagged(cli) == [(3000, 6000)]

    client = moderate(str(video), settings=settings, aggregate_by="SEGMENTS", adapter=ARN)
    assert client["ProjectVersion"] == ARN
    assert client["ModerationLabels"] == cli["ModerationLabels"]
    plain = moderate(str(video), settings=settings, aggregate_by="SEGMENTS")
    assert "ProjectVersion" not in plain and flagged(plain) == []

    videos, results = video.parent, tmp_path / "results"
    summary = run_batch(settings, BatchRequest(str(videos), str(results),
                                               aggregate_by="SEGMENTS", adapter=ARN),
                        report=lambda line: None)
    assert summary["Counts"]["Succeeded"] == 1 and summary["Request"]["ProjectVersion"] == ARN
    batch = json.loads((results / "thirds.mp4.json").read_text())
    assert batch["ProjectVersion"] == ARN and batch["Batch"]["Request"]["ProjectVersion"] == ARN
    assert batch["ModerationLabels"] == cli["ModerationLabels"]
    # Without the adapter the stored result no longer counts as done: it is moderated again.
    again = run_batch(settings, BatchRequest(str(videos), str(results), aggregate_by="SEGMENTS"),
                      report=lambda line: None)
    assert again["Counts"]["Succeeded"] == 1
    assert "ProjectVersion" not in json.loads((results / "thirds.mp4.json").read_text())
    close()  # the warm runners the client kept


def test_an_adapter_the_data_dir_does_not_hold_is_refused_before_any_work(trained, capsys):
    from engine.batch import BatchRequest, run_batch
    from engine.cli import main
    from engine.client import moderate
    from models.adapter import AdapterError

    settings, video = trained
    unknown = ARN.replace("/v1/", "/v2/")
    assert main(["moderate", str(video), "--adapter", unknown, "--model", TEST_DOUBLE_MODEL,
                 "--data-dir", str(settings.data_dir)]) == 2
    assert "no trained adapter" in capsys.readouterr().err
    with pytest.raises(AdapterError, match="no trained adapter"):
        moderate(str(video), settings=settings, adapter=unknown)
    with pytest.raises(AdapterError, match="no trained adapter"):
        run_batch(settings, BatchRequest(str(video.parent), str(video.parent / "out"),
                                         adapter=unknown), report=lambda line: None)
    with pytest.raises(TypeError, match="account's"):
        moderate("s3://videos/a.mp4", endpoint_url="http://127.0.0.1:9", adapter=ARN)


def test_bulk_images_outside_a_server_score_as_the_model_and_adapter_do(trained, ray_session):
    """engine.batch's image stages without a server's pool: BatchClassifier actors of their
    own, the adapter merged in, a bad image an error row of its own."""
    from engine.batch.images import image_limits, score_images
    from engine.cluster import FrameScorer
    from engine.video.image import image_frame

    settings, _ = trained
    images = [(number, picture(colour, 40 + number))
              for number, colour in enumerate(("red", "blue", "green", "white"))]
    images.append((9, b"not an image"))
    path = str(adapter_file(settings.data_dir, ARN))
    scored = {item.key: item for item in score_images(settings, images, INPUT_SIZE, path)}
    scorer = FrameScorer(ColourTestDoubleClassifier())
    for key, data in images[:4]:
        frame = image_frame(data, INPUT_SIZE, image_limits(settings))
        expected = scorer.adapted(scorer.rows(frame[None]), path)[0]
        assert scored[key].scores.tolist() == expected.tolist()
    assert scored[9].scores is None and scored[9].error and not scored[9].too_large
