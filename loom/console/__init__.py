"""Remote consoles: single-use tokens (``tokens``) and the proxy that lets a
token's holder through to one guest's serial port or VNC display
(``proxy``). See docs/consoles.md."""
