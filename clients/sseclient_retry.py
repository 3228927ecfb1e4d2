"""Subscribes to the URL given with sseclient-py and prints its first event as one JSON line:
its id, its data and the reconnection time the library read with it (`Event.retry`, in ms;
null when it read none). sseclient-py drops a block without data, `retry:` included, so this
says whether the server's hint reaches an application through it.

Usage: python sseclient_retry.py URL (run by clients/tests/retry.rs, with sseclient-py from
the virtualenv that scripts/lib.sh's ensure_sseclient_py makes under target/).
"""

import json
import sys
import urllib.request

import sseclient


def main() -> int:
    request = urllib.request.Request(sys.argv[1], headers={"Accept": "text/event-stream"})
    with urllib.request.urlopen(request, timeout=30) as response:
        for event in sseclient.SSEClient(response).events():
            retry = None if event.retry is None else int(event.retry)
            print(json.dumps({"id": event.id, "data": event.data, "retry": retry}), flush=True)
            return 0
    print("the stream ended before an event", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
