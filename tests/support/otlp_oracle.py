"""The official OTLP decoders and reference encoders as test oracles for span export.

Run with the interpreter of the venv `.ci/install-otlp-oracles` creates:

  otlp_oracle.py decode proto|json          body on stdin -> normalized JSON on stdout
  otlp_oracle.py reference                  spans (normalized JSON) on stdin -> what the
                                            Python SDK's own encoders make of the same spans,
                                            decoded and normalized: {"proto": .., "json": ..}
  otlp_oracle.py sink PORT_FILE LOG SCRIPT  a loopback OTLP/HTTP receiver; see `serve`

Every body is decoded with the generated classes: protobuf with
`opentelemetry.proto...ExportTraceServiceRequest.FromString`, JSON with the strict OTLP JSON
classes of `opentelemetry-proto-json` (hex ids, integer enums), plus the raw checks those
classes are lenient about (64-bit integers as strings, lowerCamelCase keys, lowercase hex).
The normalized form is the same for both encodings, so the Rust tests compare one shape.
"""

import base64
import json
import math
import re
import socket
import struct
import sys
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as pb
from opentelemetry.proto_json.collector.trace.v1 import trace_service as pj


# ---------------------------------------------------------------- normalization


def _value(v, is_proto):
    if is_proto:
        which = v.WhichOneof("value")
        if which == "string_value":
            return ["string", v.string_value]
        if which == "bool_value":
            return ["bool", v.bool_value]
        if which == "int_value":
            return ["int", v.int_value]
        if which == "double_value":
            return ["double", _double(v.double_value)]
        return ["other", str(which)]
    if v.string_value is not None:
        return ["string", v.string_value]
    if v.bool_value is not None:
        return ["bool", v.bool_value]
    if v.int_value is not None:
        return ["int", v.int_value]
    if v.double_value is not None:
        return ["double", _double(v.double_value)]
    return ["other", None]


def _double(x):
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def _attrs(kvs, is_proto):
    return [[kv.key] + _value(kv.value, is_proto) for kv in kvs]


def _hex(b):
    return (b or b"").hex()


def _status(span, is_proto):
    if is_proto:
        return {"code": int(span.status.code), "message": span.status.message}
    if span.status is None:
        return {"code": 0, "message": ""}
    return {"code": int(span.status.code or 0), "message": span.status.message or ""}


def normalize(req, is_proto):
    out = {"resource_spans": []}
    for rs in req.resource_spans:
        resource = rs.resource
        entry = {
            "resource": _attrs(resource.attributes, is_proto) if resource is not None else [],
            "scopes": [],
        }
        for ss in rs.scope_spans:
            scope = ss.scope
            spans = []
            for s in ss.spans:
                spans.append(
                    {
                        "trace_id": _hex(s.trace_id),
                        "span_id": _hex(s.span_id),
                        "trace_state": s.trace_state or "",
                        "parent_span_id": _hex(s.parent_span_id),
                        "flags": int(s.flags or 0),
                        "name": s.name or "",
                        "kind": int(s.kind or 0),
                        "start": int(s.start_time_unix_nano or 0),
                        "end": int(s.end_time_unix_nano or 0),
                        "attributes": _attrs(s.attributes, is_proto),
                        "dropped_attributes": int(s.dropped_attributes_count or 0),
                        "events": [
                            {
                                "time": int(e.time_unix_nano or 0),
                                "name": e.name or "",
                                "attributes": _attrs(e.attributes, is_proto),
                                "dropped_attributes": int(e.dropped_attributes_count or 0),
                            }
                            for e in s.events
                        ],
                        "dropped_events": int(s.dropped_events_count or 0),
                        "links": [
                            {
                                "trace_id": _hex(l.trace_id),
                                "span_id": _hex(l.span_id),
                                "trace_state": l.trace_state or "",
                                "attributes": _attrs(l.attributes, is_proto),
                                "dropped_attributes": int(l.dropped_attributes_count or 0),
                                "flags": int(l.flags or 0),
                            }
                            for l in s.links
                        ],
                        "dropped_links": int(s.dropped_links_count or 0),
                        "status": _status(s, is_proto),
                    }
                )
            entry["scopes"].append(
                {
                    "name": (scope.name or "") if scope is not None else "",
                    "version": (scope.version or "") if scope is not None else "",
                    "spans": spans,
                }
            )
        out["resource_spans"].append(entry)
    return out


# ---------------------------------------------------------------- strict OTLP JSON checks

_HEX_KEYS = {"traceId": 32, "spanId": 16, "parentSpanId": 16}
_INT64_KEYS = {"startTimeUnixNano", "endTimeUnixNano", "timeUnixNano", "intValue"}
_ENUM_KEYS = {"kind", "code"}


def strict_json_errors(raw):
    """What the generated classes let through but OTLP JSON forbids."""
    errors = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                p = f"{path}.{k}"
                if "_" in k:
                    errors.append(f"{p}: key is not lowerCamelCase")
                if k in _HEX_KEYS:
                    if not (isinstance(v, str) and re.fullmatch("[0-9a-f]{%d}" % _HEX_KEYS[k], v)):
                        errors.append(f"{p}: {v!r} is not {_HEX_KEYS[k]} lowercase hex digits")
                if k in _INT64_KEYS and not (isinstance(v, str) and re.fullmatch("-?[0-9]+", v)):
                    errors.append(f"{p}: 64-bit integer {v!r} is not a decimal string")
                if k in _ENUM_KEYS and not (isinstance(v, int) and not isinstance(v, bool)):
                    errors.append(f"{p}: enum {v!r} is not an integer")
                if k == "doubleValue" and not (
                    isinstance(v, (int, float)) and not isinstance(v, bool)
                    or v in ("NaN", "Infinity", "-Infinity")
                ):
                    errors.append(f"{p}: double {v!r}")
                walk(v, p)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")

    walk(raw, "$")
    return errors


def decode(body, protocol):
    """(normalized, strict_errors) or raises."""
    if protocol == "proto":
        return normalize(pb.ExportTraceServiceRequest.FromString(body), True), []
    raw = json.loads(body)
    return normalize(pj.ExportTraceServiceRequest.from_dict(raw), False), strict_json_errors(raw)


# ---------------------------------------------------------------- reference encoders


def reference(spec):
    """Builds the spans of `spec` (normalized form) as Python SDK ReadableSpans and encodes
    them with the SDK's OTLP encoders (protobuf and JSON)."""
    from opentelemetry.exporter.otlp.json.common.trace_encoder import encode_spans as enc_json
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as enc_proto
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags, TraceState
    from opentelemetry.trace.status import Status, StatusCode

    def attrs(items):
        return {k: (float(v) if t == "double" and isinstance(v, str) else v) for k, t, v in items}

    class DroppedEvent(Event):
        def __init__(self, name, attributes, timestamp, dropped):
            super().__init__(name, attributes, timestamp)
            self._dropped_n = dropped

        @property
        def dropped_attributes(self):
            return self._dropped_n

    class DroppedLink(Link):
        def __init__(self, context, attributes, dropped):
            super().__init__(context, attributes)
            self._dropped_n = dropped

        @property
        def dropped_attributes(self):
            return self._dropped_n

    class DroppedSpan(ReadableSpan):
        def __init__(self, counts, **kw):
            super().__init__(**kw)
            self._counts = counts

        @property
        def dropped_attributes(self):
            return self._counts[0]

        @property
        def dropped_events(self):
            return self._counts[1]

        @property
        def dropped_links(self):
            return self._counts[2]

    rs = spec["resource_spans"][0]
    resource = Resource({k: v for k, _, v in rs["resource"]})
    scope_spec = rs["scopes"][0]
    scope = InstrumentationScope(scope_spec["name"], scope_spec["version"])
    kinds = {1: SpanKind.INTERNAL, 2: SpanKind.SERVER, 3: SpanKind.CLIENT, 4: SpanKind.PRODUCER, 5: SpanKind.CONSUMER}
    codes = {0: StatusCode.UNSET, 1: StatusCode.OK, 2: StatusCode.ERROR}
    spans = []
    for s in scope_spec["spans"]:
        tid = int(s["trace_id"], 16)
        flags = TraceFlags(s["flags"] & 0xFF)
        ts = TraceState(
            [tuple(p.split("=", 1)) for p in s["trace_state"].split(",") if p]
        )
        ctx = SpanContext(tid, int(s["span_id"], 16), is_remote=False, trace_flags=flags, trace_state=ts)
        parent = None
        if s["parent_span_id"]:
            parent = SpanContext(
                tid, int(s["parent_span_id"], 16), is_remote=bool(s["flags"] & 0x200), trace_flags=flags
            )
        events = [
            DroppedEvent(e["name"], attrs(e["attributes"]), e["time"], e["dropped_attributes"])
            for e in s["events"]
        ]
        links = [
            DroppedLink(
                SpanContext(int(l["trace_id"], 16), int(l["span_id"], 16), is_remote=False),
                attrs(l["attributes"]),
                l["dropped_attributes"],
            )
            for l in s["links"]
        ]
        status = Status(codes[s["status"]["code"]], s["status"]["message"] or None)
        spans.append(
            DroppedSpan(
                (s["dropped_attributes"], s["dropped_events"], s["dropped_links"]),
                name=s["name"],
                context=ctx,
                parent=parent,
                resource=resource,
                attributes=attrs(s["attributes"]),
                events=events,
                links=links,
                kind=kinds[s["kind"]],
                status=status,
                start_time=s["start"],
                end_time=s["end"],
                instrumentation_scope=scope,
            )
        )
    proto_body = enc_proto(spans).SerializeToString()
    json_body = enc_json(spans).to_json()
    p, _ = decode(proto_body, "proto")
    j, strict = decode(json_body, "json")
    return {"proto": p, "json": j, "json_strict_errors": strict}


# ---------------------------------------------------------------- the sink


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _rpc_status(code, message, protocol):
    """A google.rpc.Status body (code 1, message 2), hand-encoded."""
    if protocol == "json":
        return json.dumps({"code": code, "message": message}).encode()
    m = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(m)) + m


def _success_body(protocol, rejected, message):
    if protocol == "json":
        resp = pj.ExportTraceServiceResponse()
        if rejected is not None:
            resp.partial_success = pj.ExportTracePartialSuccess(
                rejected_spans=rejected, error_message=message
            )
        return resp.to_json().encode()
    resp = pb.ExportTraceServiceResponse()
    if rejected is not None:
        resp.partial_success.rejected_spans = rejected
        resp.partial_success.error_message = message
    return resp.SerializeToString()


def serve(port_file, log_path, script_path):
    """Answers request N with script[N] (then 200): {"status": 200} | {"status": 200,
    "rejected": 2, "message": ".."} | {"status": 400, "message": ".."} | {"status": 429,
    "retry_after": "1"} | {"status": 503, "retry_after_date_in": 1} | {"delay": 2.5, ...} |
    {"action": "reset"} | {"action": "close"} | {"action": "hang"} | {"action": "raw",
    "bytes": ".."} | {"action": "big_body", "size": N}. Logs one JSON line per
    request: its arrival time, path, headers, size, decoded content or decode error."""
    with open(script_path) as f:
        script = json.load(f)
    lock = threading.Lock()
    counter = [0]
    log = open(log_path, "a", buffering=1)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            arrived = time.time()
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with lock:
                index = counter[0]
                counter[0] += 1
            step = script[index] if index < len(script) else {"status": 200}
            raw = body
            if self.headers.get("Content-Encoding") == "gzip":
                import gzip

                raw = gzip.decompress(body)
            ctype = self.headers.get("Content-Type", "")
            protocol = "json" if ctype == "application/json" else "proto"
            entry = {
                "index": index,
                "time": arrived,
                "client_port": self.client_address[1],
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body_len": len(body),
                "raw_len": len(raw),
                "step": step,
            }
            try:
                entry["decoded"], entry["strict_errors"] = decode(raw, protocol)
            except Exception as e:  # the test sees the error
                entry["decode_error"] = f"{type(e).__name__}: {e}"
            log.write(json.dumps(entry) + "\n")
            if "delay" in step:
                time.sleep(step["delay"])
            action = step.get("action")
            if action == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return
            if action == "close":
                self.close_connection = True
                return
            if action == "raw":
                # Exactly these bytes as the response (chunked bodies, odd framing).
                self.wfile.write(step["bytes"].encode("latin-1"))
                self.wfile.flush()
                self.close_connection = step.get("close", False)
                return
            if action == "big_body":
                out = b"\xff" * step["size"]  # not protobuf, not JSON
                self.send_response(200)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)
                return
            if action == "hang":
                time.sleep(step.get("seconds", 3600))
                self.close_connection = True
                return
            status = step.get("status", 200)
            if 200 <= status < 300:
                out = _success_body(protocol, step.get("rejected"), step.get("message", ""))
            else:
                out = _rpc_status(3, step.get("message", ""), protocol)
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if protocol == "json" else "application/x-protobuf")
            self.send_header("Content-Length", str(len(out)))
            if "retry_after" in step:
                self.send_header("Retry-After", step["retry_after"])
            if "retry_after_date_in" in step:
                self.send_header("Retry-After", formatdate(time.time() + step["retry_after_date_in"], usegmt=True))
            self.end_headers()
            self.wfile.write(out)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os

    os.replace(port_file + ".tmp", port_file)
    server.serve_forever()


def main():
    cmd = sys.argv[1]
    if cmd == "decode":
        body = sys.stdin.buffer.read()
        normalized, strict = decode(body, sys.argv[2])
        json.dump({"decoded": normalized, "strict_errors": strict}, sys.stdout)
    elif cmd == "reference":
        json.dump(reference(json.load(sys.stdin)), sys.stdout)
    elif cmd == "sink":
        serve(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
