#!/usr/bin/env python3
"""A QuickFIX/C++ acceptor (Python binding `quickfix` 1.16.0): the real engine we test against.

Two roles, chosen with --mode:

* ``acceptance`` (default): the engine under test of QuickFIX's session acceptance scripts,
  configured as those scripts expect (SenderCompID ISLD; TargetCompID TW44 and TW, one
  session each; ResetOnLogon=Y and, like QuickFIX's own acceptance servers,
  ResetOnDisconnect=Y; data dictionary validation on) with an application that
  behaves like QuickFIX's own acceptance-test application: it echoes NewOrderSingle (except
  a PossResend copy of a ClOrdID already seen on the session), echoes SecurityDefinition,
  and rejects every other application message as unsupported (BusinessMessageReject).
  ``fix-conformance --connect 127.0.0.1:PORT DIR`` runs the scripts against it.
* ``dealer``: answers each QuoteRequest (35=R) with one Quote (35=S) per NoRelatedSym entry
  (an offer when the desk buys, a bid when it sells, both when the request names no side),
  takes QuoteStatusReport, QuoteResponse and QuoteCancel in silence and refuses any other
  application message, for the interop tests (a router, or QuickFIX's own desk, asks).

It prints ``LISTENING <port>`` on stdout once the acceptor is up and ``LOGON <session>`` for
each Logon, then runs until SIGTERM or SIGINT. Event and message logs go to --log-dir (a temporary directory by default).
"""

import argparse
import os
import signal
import socket
import sys
import tempfile
import threading

import quickfix as fix
import quickfix44 as fix44

SOH = "\x01"


def default_dictionary():
    """FIX44.xml as the quickfix wheel installs it (``$VIRTUAL_ENV/share/quickfix``)."""
    for root in (os.environ.get("VIRTUAL_ENV"), sys.prefix):
        if root:
            path = os.path.join(root, "share", "quickfix", "FIX44.xml")
            if os.path.isfile(path):
                return path
    raise SystemExit("qf_acceptor: FIX44.xml not found; pass --data-dictionary")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def header_value(message, tag):
    header = message.getHeader()
    return header.getField(tag) if header.isSetField(tag) else None


class AcceptanceApplication(fix.Application):
    """Behaves like QuickFIX's acceptance-test application."""

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.seen_cl_ord_ids = set()

    def onCreate(self, session_id):
        pass

    def onLogon(self, session_id):
        # Lets a test wait for the session instead of guessing how long a Logon takes.
        print("LOGON %s" % session_id.toString(), flush=True)

    def onLogout(self, session_id):
        key = session_id.toString()
        with self.lock:
            self.seen_cl_ord_ids = {k for k in self.seen_cl_ord_ids if k[0] != key}

    def toAdmin(self, message, session_id):
        pass

    def fromAdmin(self, message, session_id):
        pass

    def toApp(self, message, session_id):
        pass

    def fromApp(self, message, session_id):
        msg_type = header_value(message, fix.MsgType().getField())
        if msg_type == fix.MsgType_NewOrderSingle:
            self.new_order_single(message, session_id)
        elif msg_type == fix.MsgType_SecurityDefinition:
            self.echo(message, session_id)
        else:
            raise fix.UnsupportedMessageType()

    def new_order_single(self, message, session_id):
        poss_resend = header_value(message, fix.PossResend().getField()) == "Y"
        key = (session_id.toString(), message.getField(fix.ClOrdID().getField()))
        with self.lock:
            if poss_resend and key in self.seen_cl_ord_ids:
                return
            self.seen_cl_ord_ids.add(key)
        self.echo(message, session_id)

    @staticmethod
    def echo(message, session_id):
        fix.Session.sendToTarget(fix.Message(message), session_id)


class DealerApplication(AcceptanceApplication):
    """Answers each QuoteRequest with one Quote per instrument requested, and fills each hit
    (a NewOrderSingle, or a QuoteResponse with QuoteRespType 1) with an ExecutionReport at the
    price it names."""

    def __init__(self, price):
        super().__init__()
        self.price = price
        self.quote_seq = 0

    def fromApp(self, message, session_id):
        msg_type = header_value(message, fix.MsgType().getField())
        if msg_type == fix.MsgType_NewOrderSingle:
            self.fill(message, session_id, ref_tag=fix.ClOrdID().getField())
            return
        if msg_type == fix.MsgType_QuoteResponse:
            if message.getField(fix.QuoteRespType().getField()) == "1":
                self.fill(message, session_id, ref_tag=fix.QuoteRespID().getField())
            return
        if msg_type in (fix.MsgType_QuoteStatusReport, fix.MsgType_QuoteCancel):
            return
        if msg_type != fix.MsgType_QuoteRequest:
            raise fix.UnsupportedMessageType()
        quote_req_id = message.getField(fix.QuoteReqID().getField())
        related = fix44.QuoteRequest.NoRelatedSym()
        count = int(message.getField(fix.NoRelatedSym().getField()))
        for i in range(1, count + 1):
            message.getGroup(i, related)
            with self.lock:
                self.quote_seq += 1
                quote_id = "Q%d" % self.quote_seq
            quote = fix44.Quote()
            quote.setField(fix.QuoteReqID(quote_req_id))
            quote.setField(fix.QuoteID(quote_id))
            quote.setField(fix.Symbol(related.getField(fix.Symbol().getField())))
            for field in (fix.SecurityID(), fix.SecurityIDSource(), fix.OrderQty(), fix.Side()):
                if related.isSetField(field.getField()):
                    quote.setField(field.getField(), related.getField(field.getField()))
            side = related.getField(fix.Side().getField()) if related.isSetField(54) else None
            # A desk buying (Side=1) lifts our offer; selling hits our bid; no side: both.
            if side != fix.Side_SELL:
                quote.setField(fix.OfferPx(float(self.price)))
            if side != fix.Side_BUY:
                quote.setField(fix.BidPx(float(self.price) - 0.25))
            fix.Session.sendToTarget(quote, session_id)


    def fill(self, message, session_id, ref_tag):
        with self.lock:
            self.quote_seq += 1
            n = self.quote_seq
        get = lambda tag: message.getField(tag) if message.isSetField(tag) else None
        report = fix44.ExecutionReport()
        report.setField(fix.OrderID("O%d" % n))
        report.setField(fix.ExecID("E%d" % n))
        report.setField(fix.ExecType(fix.ExecType_TRADE))
        report.setField(fix.OrdStatus(fix.OrdStatus_FILLED))
        report.setField(ref_tag, get(ref_tag))
        for tag in (55, 48, 22):
            if get(tag) is not None:
                report.setField(tag, get(tag))
        report.setField(fix.Side(get(54)))
        qty = float(get(38))
        px = float(get(44))
        report.setField(fix.LastQty(qty))
        report.setField(fix.LastPx(px))
        report.setField(fix.LeavesQty(0))
        report.setField(fix.CumQty(qty))
        report.setField(fix.AvgPx(px))
        fix.Session.sendToTarget(report, session_id)


def write_settings(path, args, port, log_dir):
    lines = [
        "[DEFAULT]",
        "ConnectionType=acceptor",
        "SocketAcceptPort=%d" % port,
        "SocketAcceptHost=127.0.0.1",
        "SocketReuseAddress=Y",
        "StartTime=00:00:00",
        "EndTime=00:00:00",
        "BeginString=FIX.4.4",
        "SenderCompID=%s" % args.sender_comp_id,
        "ResetOnLogon=Y",
        # As QuickFIX's own acceptance servers run: every script meets a fresh session.
        "ResetOnDisconnect=Y",
        "UseDataDictionary=Y",
        "DataDictionary=%s" % args.data_dictionary,
        "FileLogPath=%s" % log_dir,
    ]
    for target in args.target_comp_id:
        lines += ["[SESSION]", "TargetCompID=%s" % target]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("acceptance", "dealer"), default="acceptance")
    parser.add_argument("--port", type=int, default=0, help="0: pick a free port")
    parser.add_argument("--sender-comp-id", default="ISLD")
    parser.add_argument(
        "--target-comp-id",
        action="append",
        help="one session per value (default: TW44 and TW)",
    )
    parser.add_argument("--data-dictionary", default=None)
    parser.add_argument("--log-dir", default=None)
    parser.add_argument("--price", default="101.25", help="dealer mode: the price quoted")
    args = parser.parse_args()
    args.target_comp_id = args.target_comp_id or ["TW44", "TW"]
    args.data_dictionary = args.data_dictionary or default_dictionary()
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="qf_acceptor_")
    os.makedirs(log_dir, exist_ok=True)
    port = args.port or free_port()

    cfg = os.path.join(log_dir, "acceptor.cfg")
    write_settings(cfg, args, port, log_dir)
    settings = fix.SessionSettings(cfg)
    app = AcceptanceApplication() if args.mode == "acceptance" else DealerApplication(args.price)
    acceptor = fix.SocketAcceptor(
        app, fix.MemoryStoreFactory(), settings, fix.FileLogFactory(settings)
    )

    # Block the stop signals before QuickFIX starts its threads (they inherit the mask), so
    # that they are delivered to sigwait below and not to some engine thread.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    acceptor.start()
    print("LISTENING %d" % port, flush=True)
    print("logs in %s" % log_dir, file=sys.stderr, flush=True)
    signal.sigwait(stop_signals)
    acceptor.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
