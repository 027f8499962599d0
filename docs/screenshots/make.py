"""Screenshots of the Prefect UI after a run with failures, taken by headless Chromium.

What a new user sees, reproduced end to end on loopback and stopped at the end:

1. `crmbooks up` on free ports with a temporary CRMBOOKS_HOME (Prefect server and UI, the
   emulators, every deployment served);
2. a CRM account whose Website is 220 characters long, created through the emulated CRM API
   (Books takes at most 200: the record fails, the others sync);
3. a run of the customers deployment (`sync-customers/customers`), waited for: it ends Failed,
   "1 record(s) failed";
4. screenshots (Debian's `chromium --headless`) of the flow runs list, the run's page with its
   artifacts, the summary artifact and the failures artifact;
5. the failure fixed at the source (the Website shortened in the CRM) and `crmbooks retry
   --module customers` run from "another terminal" against the same Prefect, then the runs
   list again;
6. everything stopped; the PNGs land in docs/screenshots/ (the README shows them).

    apt-get install -y chromium          # once
    .venv/bin/python docs/screenshots/make.py [--out docs/screenshots] [--keep-home]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
# The emulators' documented demo credentials (not secrets).
DEMO = {"client_id": "crmbooks-demo", "client_secret": "crmbooks-demo-secret",
        "refresh_token": "crmbooks-demo-refresh"}
LONG_WEBSITE = "https://www.overlong-website.example/" + "a" * (220 - 37)
BROKEN_ACCOUNT = "Overlong Website Ltd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _own_group() -> None:  # in the child, between fork and exec
    os.setsid()
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # die with us


def wait(what: str, check, timeout: float, process: subprocess.Popen | None = None,
         log: Path | None = None):
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            value = check()
            if value:
                return value
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise SystemExit(f"`crmbooks up` exited ({process.returncode}) while waiting for "
                             f"{what}:\n{tail}")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


class Crm:
    """The emulated CRM's public API, as a user's script would call it."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        token = httpx.post(f"{base_url}/oauth/v2/token",
                           data={"grant_type": "refresh_token", **DEMO}).json()["access_token"]
        self.headers = {"Authorization": f"Zoho-oauthtoken {token}"}

    def create_account(self, fields: dict) -> str:
        r = httpx.post(f"{self.base_url}/crm/v8/Accounts", headers=self.headers,
                       json={"data": [fields]})
        r.raise_for_status()
        return r.json()["data"][0]["details"]["id"]

    def update_account(self, record_id: str, fields: dict) -> None:
        r = httpx.put(f"{self.base_url}/crm/v8/Accounts/{record_id}", headers=self.headers,
                      json={"data": [fields]})
        r.raise_for_status()


class Browser:
    """Headless Chromium (Debian's package) driven over the DevTools protocol.

    The Prefect UI is a JavaScript app: a page is photographed once the text that shows it
    has loaded is on it (a DOM wait), not after a guessed delay.
    """

    def __init__(self, chromium: str, profile: Path, width: int = 1400, height: int = 900):
        self.port = free_port()
        self.process = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
             f"--window-size={width},{height}", "--remote-debugging-address=127.0.0.1",
             f"--remote-debugging-port={self.port}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_own_group)
        pages = wait("Chromium", lambda: [t for t in httpx.get(
            f"http://127.0.0.1:{self.port}/json/list", timeout=2).json()
            if t["type"] == "page"], 60)
        from websockets.sync.client import connect

        self.ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=64 * 2**20)
        self.next_id = 0
        self.size(width, height)

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=120))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def size(self, width: int, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def open(self, url: str, *texts: str, timeout: float = 60) -> None:
        """Go to `url` and wait until every one of `texts` shows on the page."""
        self.call("Page.navigate", url=url)
        self.wait_text(*texts, timeout=timeout)

    def wait_text(self, *texts: str, timeout: float = 60) -> None:
        probe = " && ".join(f"document.body.innerText.includes({json.dumps(t)})" for t in texts)
        wait(f"{', '.join(texts)} on the page", lambda: self.js(
            f"!!document.body && {probe}"), timeout)
        time.sleep(1.5)  # the last requests and transitions settle

    def click_text(self, text: str) -> None:
        """Click the innermost visible element whose text is exactly `text`."""
        clicked = self.js(f"""(() => {{
            const all = [...document.querySelectorAll('*')];
            const hit = all.filter(e => (e.innerText || '').trim() === {json.dumps(text)}
                                        && e.getClientRects().length > 0).pop();
            if (hit) {{ hit.click(); return true; }} return false; }})()""")
        if not clicked:
            raise SystemExit(f"nothing to click with the text {text!r}")

    def shoot(self, path: Path) -> None:
        import base64

        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        print(f"  {path.name}")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where the PNGs go")
    parser.add_argument("--keep-home", action="store_true", help="keep CRMBOOKS_HOME")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise SystemExit("chromium is not installed: apt-get install -y chromium")
    args.out.mkdir(parents=True, exist_ok=True)

    home = Path(tempfile.mkdtemp(prefix="crmbooks-screens."))
    port, emu_port = free_port(), free_port()
    ui, api = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/api"
    emu = f"http://127.0.0.1:{emu_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CRMBOOKS_"))}
    env.update({"CRMBOOKS_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "120"})
    log = home / "up.log"
    crmbooks = str(Path(sys.executable).with_name("crmbooks"))
    with open(log, "wb") as out:
        up = subprocess.Popen([crmbooks, "up", "--port", str(port), "--emulators-port",
                               str(emu_port), "--accounts", "12"], cwd=REPO, env=env,
                              stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                              preexec_fn=_own_group)
    try:
        return run(args, chromium, home, up, log, ui, api, emu, env, crmbooks)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(up.pid, signal.SIGINT)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(up.pid, signal.SIGKILL)
            up.wait(timeout=10)
        print(f"`crmbooks up` stopped (exit code {up.returncode})")
        if args.keep_home:
            print(f"kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


def run(args, chromium, home, up, log, ui, api, emu, env, crmbooks) -> int:
    t0 = time.monotonic()
    os.environ.update({"PREFECT_API_URL": api, "PREFECT_HOME": str(home / "client"),
                       "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    def served() -> bool:
        with get_client(sync_client=True) as client:
            return client.read_deployment_by_name("sync-customers/customers") is not None

    # `serve` applies the deployments, then polls for their runs (every 5 s under `up`).
    wait("`crmbooks up` to serve its deployments", served, 240, up, log)
    print(f"`crmbooks up` ready after {time.monotonic() - t0:.0f} s: {ui}")

    crm = Crm(emu)
    broken = crm.create_account({"Account_Name": BROKEN_ACCOUNT, "Website": LONG_WEBSITE,
                                 "Phone": "+1 555 0100", "Billing_City": "Austin"})
    print(f"CRM account {broken} created with a {len(LONG_WEBSITE)}-character Website")

    flow_run = run_deployment("sync-customers/customers", timeout=0)

    def finished():
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(flow_run.id)
        return run if run.state and run.state.is_final() else None

    done = wait("the customers run", finished, 300, up, log)
    print(f"customers run {done.name}: {done.state.name} ({done.state.message})")
    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[done.id])))
    by_key = {a.key: a for a in artifacts if a.key}
    print(f"artifacts: {', '.join(sorted(by_key))}")
    time.sleep(3)  # the UI lists runs and task runs as the server has recorded them

    browser = Browser(chromium, home / "chromium")
    try:
        out = args.out
        browser.open(f"{ui}/runs", done.name, "sync-customers")
        browser.shoot(out / "01-flow-runs.png")
        browser.size(1400, 1200)  # tall enough for the task run's artifacts below the graph
        browser.open(f"{ui}/runs/flow-run/{done.id}", done.name, "Artifacts")
        browser.click_text("Artifacts")
        browser.wait_text("customers-sync-failures", "customers-sync-summary")
        browser.shoot(out / "02-run-artifacts.png")
        browser.size(1800, 700)
        browser.open(f"{ui}/artifacts/artifact/{by_key['customers-sync-summary'].id}",
                     "api_calls", "created")
        browser.shoot(out / "03-summary-artifact.png")
        browser.open(f"{ui}/artifacts/artifact/{by_key['customers-sync-failures'].id}",
                     "TOO_LONG", "what to do")
        # The message quotes the 220-character value: let the cells wrap so the whole row,
        # "what to do" included, fits in the picture (the UI keeps each cell on one line).
        browser.js("document.head.insertAdjacentHTML('beforeend', '<style>td, th "
                   "{white-space: normal !important; overflow-wrap: break-word;}</style>')")
        time.sleep(1)
        browser.shoot(out / "04-failures-artifact.png")
    finally:
        browser.close()

    # The operator's way out, as the README walks it: see the failure, fix it at the source,
    # retry the failed record from another terminal (same CRMBOOKS_HOME, same Prefect).
    cli_env = {**env, "CRMBOOKS_HOME": str(home / "up"), "PREFECT_API_URL": api,
               "CRMBOOKS_CLIENT_SECRET": DEMO["client_secret"],
               "CRMBOOKS_REFRESH_TOKEN": DEMO["refresh_token"]}
    transcript = []
    for command in (["history", "--failures"], None, ["retry", "--module", "customers"],
                    ["history", "--failures"]):
        if command is None:
            crm.update_account(broken, {"Website": "https://www.overlong-website.example"})
            transcript.append("# fixed at the source: the CRM account's Website shortened")
            continue
        done_cli = subprocess.run([crmbooks, *command], cwd=REPO, env=cli_env,
                                  capture_output=True, text=True, timeout=300)
        transcript.append(f"$ crmbooks {' '.join(command)}   # exit code {done_cli.returncode}")
        transcript.append((done_cli.stdout + done_cli.stderr).rstrip())
    (home / "transcript.txt").write_text("\n".join(transcript) + "\n")
    (args.out / "transcript.txt").write_text("\n".join(transcript) + "\n")
    print("\n".join(transcript))
    browser = Browser(chromium, home / "chromium")
    try:
        browser.open(f"{ui}/runs", done.name, "retry-failed-records")
        browser.shoot(args.out / "05-after-retry.png")
    finally:
        browser.close()
    print(f"transcript: {args.out / 'transcript.txt'}")
    print(f"done in {time.monotonic() - t0:.0f} s; PNGs in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
