"""What a data scientist types in a notebook, as a plain script (run by test_client_notebook.py).

Settings come from the environment as they would in a notebook kernel: MODENGINE_MODEL,
MODENGINE_S3_ENDPOINT / _ACCESS_KEY / _SECRET_KEY (where s3:// videos are read from), and for
the server AWS_SHARED_CREDENTIALS_FILE (the server's generated credentials file). The video and
the server come as arguments: notebook_client.py VIDEO_URI [ENDPOINT_URL].
Prints one JSON object on its last stdout line: {"ray": ..., "endpoint": ..., "dataframe": ...}.
"""

import json
import sys

# In [1]: moderate a stored video on Ray from this kernel (a local Ray: none is connected).
from engine.client import Client, moderate, moderate_many, to_dataframe

video_uri = sys.argv[1]
endpoint_url = sys.argv[2] if len(sys.argv) > 2 else None
on_ray = moderate(video_uri, min_confidence=50)
print(f"{len(on_ray['ModerationLabels'])} detections on Ray", file=sys.stderr)

# In [1b]: several videos at once; one of them does not exist (its entry is the error).
many = moderate_many([video_uri, "s3://videos/none.mp4"], min_confidence=50)
many_summary = {
    uri: result["ModerationLabels"] if isinstance(result, dict) else type(result).__name__
    for uri, result in many.items()
}

# In [2]: the same video through a server's Rekognition endpoint, one call ...
through_server = moderate(video_uri, endpoint_url=endpoint_url) if endpoint_url else None

# In [3]: ... or step by step, with the results as a DataFrame.
frame_summary = None
if endpoint_url:
    client = Client(endpoint_url)
    job_id = client.start(video_uri, min_confidence=50)
    status = client.wait(job_id, timeout_s=300, poll_s=0.5)
    frame = client.results(job_id, aggregate_by="SEGMENTS", as_dataframe=True)
    frame_summary = {
        "status": status,
        "columns": list(frame.columns),
        "rows": frame.to_dict(orient="records"),
        "video_metadata": frame.attrs["VideoMetadata"],
    }
    # to_dataframe works on any result dict too.
    assert len(to_dataframe(on_ray)) == len(on_ray["ModerationLabels"])

print(json.dumps({"ray": on_ray, "endpoint": through_server, "dataframe": frame_summary,
                  "many": many_summary}))
