"""The listening test's local web server: one page (page.html, no network beyond this
server) and a small JSON API over a review session (session.py).

  GET  /                        the page
  GET  /api/start               the first unanswered candidate and the counts
  GET  /api/candidate?pos=N     what the page shows of candidate N, and the counts
  POST /api/answer              {"pos": N, "verdict": "present"|"absent"|"unsure"}: appended
                                to the verdicts file (fsynced) before the reply
  GET  /api/audio/<clip>.wav    the clip's audio; /api/logmel/<clip>.png its log-mel

Each request is answered by its own thread; answers are serialised by the session's lock
and the file's (verdicts.py), so several tabs may answer at once.
"""

import http.server
import json
import os
import re
import urllib.parse

from tf_skeptical import errors
from tf_skeptical.review import verdicts
from tf_skeptical.review.session import Session
from tf_skeptical.util import stopping

PAGE = os.path.join(os.path.dirname(__file__), "page.html")


def handler_for(session: Session):
  class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # the terminal shows the counts, not every request
      pass

    def _send(self, body: bytes, content_type: str, status: int = 200):
      self.send_response(status)
      self.send_header("Content-Type", content_type)
      self.send_header("Content-Length", str(len(body)))
      self.send_header("Cache-Control", "no-store")
      self.end_headers()
      self.wfile.write(body)

    def _json(self, obj, status: int = 200):
      self._send(json.dumps(obj).encode("utf-8"), "application/json", status)

    def _error(self, e: Exception, status: int = 400):
      self._json({"error": str(e)}, status)

    def do_GET(self):  # noqa: N802  (http.server's name)
      url = urllib.parse.urlparse(self.path)
      try:
        if url.path in ("/", "/index.html"):
          with open(PAGE, "rb") as f:
            return self._send(f.read(), "text/html; charset=utf-8")
        if url.path == "/api/start":
          session.refresh()
          return self._json(dict(first=session.first_unanswered(), counts=session.counts(),
                                 flags=session.flags_path, verdicts=session.verdicts_path,
                                 percent=session.percent, order=session.cfg.order))
        if url.path == "/api/candidate":
          pos = int(urllib.parse.parse_qs(url.query).get("pos", ["0"])[0])
          if not 0 <= pos < len(session.order):
            return self._json({"error": f"no candidate {pos}"}, 404)
          return self._json(dict(candidate=session.candidate(pos), counts=session.counts()))
        match = re.fullmatch(r"/api/(audio|logmel)/(.+)\.(wav|png)", url.path)
        if match:
          clip_id = urllib.parse.unquote(match.group(2))
          if match.group(1) == "audio":
            return self._send(session.audio_wav(clip_id), "audio/wav")
          return self._send(session.log_mel_png(clip_id), "image/png")
        self._json({"error": f"no such page: {url.path}"}, 404)
      except (errors.UserError, KeyError, ValueError) as e:
        self._error(e)

    def do_POST(self):  # noqa: N802
      if urllib.parse.urlparse(self.path).path != "/api/answer":
        return self._json({"error": "no such endpoint"}, 404)
      try:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        verdict = body.get("verdict")
        if verdict not in verdicts.VERDICTS:
          raise errors.BadValue(f"verdict {verdict!r} is none of {', '.join(verdicts.VERDICTS)}")
        with stopping.critical():  # a stop waits for the answer to be on disk
          reply = session.answer(int(body.get("pos", -1)), verdict)
        self._json(reply)
      except (errors.UserError, ValueError, json.JSONDecodeError) as e:
        self._error(e)

  return Handler


def serve(session: Session, host: str = "127.0.0.1", port: int = 8000,
          on_ready=None) -> None:
  """Serves until stopped (SIGINT/SIGTERM: util/stopping.py ends the process); on_ready is
  called with the page's address once the socket listens."""
  server = http.server.ThreadingHTTPServer((host, port), handler_for(session))
  server.daemon_threads = True
  if on_ready:
    on_ready(f"http://{host}:{server.server_address[1]}/")
  server.serve_forever()
