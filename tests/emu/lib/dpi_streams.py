#!/usr/bin/env python3
"""Per-TCP-stream classification of one capture, for dpi_check.sh.

usage: dpi_streams.py TSHARK_FIELDS.tsv [NDPI_FLOWS.csv]

TSHARK_FIELDS.tsv: tshark -T fields output of tcp.stream, ip.src, tcp.srcport, ip.dst,
tcp.dstport, tcp.len, bittorrent.protocol.name for the frames that carry payload.
NDPI_FLOWS.csv: ndpiReader -C output (optional); it lists only the flows nDPI detected, so a
stream missing from it is reported as Unknown. A CSV without the expected columns is an error
(exit 1): nDPI's answer could not be read.
Prints one line per stream and, last, one JSON summary line:
  {"streams": N, "tshark_bt": K, "ndpi_bt": M or null, "ndpi_flows": F or null}
where K counts streams in which tshark dissected a BitTorrent handshake, M the streams nDPI
labelled BitTorrent and F the flows in nDPI's CSV.
"""

import csv
import json
import sys


def endpoints_key(a, pa, b, pb):
    return tuple(sorted([(a, int(pa)), (b, int(pb))]))


def main():
    streams = {}
    with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) < 6 or not cols[0]:
                continue
            sid, src, sport, dst, dport, length = cols[:6]
            name = cols[6] if len(cols) > 6 else ""
            s = streams.setdefault(sid, {"key": endpoints_key(src, sport, dst, dport),
                                         "bytes": 0, "handshake": False})
            s["bytes"] += int(length or 0)
            if "BitTorrent protocol" in name:
                s["handshake"] = True

    ndpi = None
    if len(sys.argv) > 2:
        ndpi = {}
        with open(sys.argv[2], encoding="utf-8", errors="replace") as f:
            rows = csv.reader(f)
            header = next(rows, [])
            header = [h.lstrip("#") for h in header]
            try:
                i_src, i_sport = header.index("src_ip"), header.index("src_port")
                i_dst, i_dport = header.index("dst_ip"), header.index("dst_port")
                i_proto = header.index("ndpi_proto")
            except ValueError:
                print("dpi_streams: %s has no src_ip/src_port/dst_ip/dst_port/ndpi_proto "
                      "columns (header %r)" % (sys.argv[2], header), file=sys.stderr)
                return 1
            for row in rows:
                if len(row) <= i_proto:
                    continue
                key = endpoints_key(row[i_src], row[i_sport], row[i_dst], row[i_dport])
                ndpi[key] = row[i_proto]

    tshark_bt = 0
    ndpi_bt = 0
    for sid in sorted(streams, key=int):
        s = streams[sid]
        (a, pa), (b, pb) = s["key"]
        label = ndpi.get(s["key"], "Unknown") if ndpi is not None else "n/a"
        tshark_bt += s["handshake"]
        ndpi_bt += "bittorrent" in label.lower()
        print("  stream %-4s %s:%d <-> %s:%d  %10d payload bytes  tshark: %-10s nDPI: %s" % (
            sid, a, pa, b, pb, s["bytes"],
            "BitTorrent" if s["handshake"] else "-", label))
    summary = {"streams": len(streams), "tshark_bt": tshark_bt,
               "ndpi_bt": None if ndpi is None else ndpi_bt,
               "ndpi_flows": None if ndpi is None else len(ndpi)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
