"""The noVNC page the proxy serves at ``/vnc_lite.html``: noVNC's RFB client
(from npm: scripts/novnc.sh) on the whole window, connecting to this
proxy's websocket. It reads noVNC's own ``vnc_lite.html`` parameters
(``path``, ``host``, ``port``, ``scale``), so Nova's console URLs work
unchanged; the npm package ships no page of its own.

``#status`` says where the connection is ("Connecting", "Connected to
<desktop name>", "Disconnected"); ``window.loomConsole`` holds the same for
scripts (``state``, ``name``) and the RFB object (``rfb``)."""

from __future__ import annotations

VNC_LITE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Loom console</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { margin: 0; background: #282828; height: 100vh; display: flex; flex-direction: column; }
  #top-bar { background: #0a5d8c; color: #fff; font: bold 12px Helvetica, sans-serif; padding: 6px 10px;
             display: flex; justify-content: space-between; }
  #screen { flex: 1; overflow: hidden; }
  button { font: 12px Helvetica, sans-serif; }
</style>
</head>
<body>
<div id="top-bar">
  <div id="status">Loading</div>
  <button id="send-ctrl-alt-del" type="button">Send Ctrl-Alt-Del</button>
</div>
<div id="screen"></div>
<script type="module">
import RFB from "./core/rfb.js";

const state = window.loomConsole = { state: "connecting", name: "", rfb: null };
const status = (text) => { document.getElementById("status").textContent = text; };
const param = (name, fallback) => {
  const value = new URLSearchParams(window.location.search).get(name);
  return value === null ? fallback : value;
};

const host = param("host", window.location.hostname);
const port = param("port", window.location.port);
const path = param("path", "websockify");
const url = (window.location.protocol === "https:" ? "wss" : "ws") + "://" + host + (port ? ":" + port : "")
  + "/" + path;

status("Connecting");
const rfb = state.rfb = new RFB(document.getElementById("screen"), url);
rfb.viewOnly = param("view_only", "false") === "true";
rfb.scaleViewport = param("scale", "false") === "true";
rfb.addEventListener("connect", () => {
  state.state = "connected";
  status("Connected to " + (state.name || "the console"));
});
rfb.addEventListener("disconnect", (e) => {
  state.state = "disconnected";
  status(e.detail.clean ? "Disconnected" : "Something went wrong, the connection was closed");
});
rfb.addEventListener("credentialsrequired", () => { state.state = "credentials"; status("Credentials asked"); });
rfb.addEventListener("securityfailure", (e) => { state.state = "refused"; status("Refused: " + e.detail.reason); });
rfb.addEventListener("desktopname", (e) => {
  state.name = e.detail.name;
  if (state.state === "connected") status("Connected to " + state.name);
});
document.getElementById("send-ctrl-alt-del").onclick = () => rfb.sendCtrlAltDel();
</script>
</body>
</html>
"""
